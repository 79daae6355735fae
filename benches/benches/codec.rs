//! Encoding and decoding cost of the messages on the hot path: an arena
//! state of 20 and 200 visible entities (bincode, the server's in-place
//! writer, and a client's decode of the envelope and the state), and a
//! game message (a move) both ways.

use benches::sample_state;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use game_api::replication::EncodedEntities;
use protocol::{ClientMsg, GameMsg, ServerMsg, State};
use std::hint::black_box;

fn state(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec/state");
    for n in [20u32, 200] {
        let sample = sample_state(n);
        let msg = ServerMsg::State(State {
            tick: 54_000,
            ack: 36_000,
            data: game_api::codec::to_vec(&sample),
        });
        let mut bytes = Vec::new();
        protocol::encode_server(&msg, &mut bytes);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut out = Vec::with_capacity(bytes.len());
        group.bench_function(BenchmarkId::new("encode_bincode", n), |b| {
            b.iter(|| {
                out.clear();
                protocol::encode_server(black_box(&msg), &mut out)
            })
        });
        let mut encoded = EncodedEntities::<{ arena::msg::MAX_ENTITY_BYTES }>::default();
        encoded.encode_all(&sample.entities, arena::msg::encode_entity);
        let view: Vec<u32> = (0..n).collect();
        group.bench_function(BenchmarkId::new("encode_wire", n), |b| {
            b.iter(|| {
                out.clear();
                let mark = protocol::wire::begin_state(54_000, 36_000, &mut out);
                game_api::codec::put_varint(&mut out, 100);
                encoded.write_view(black_box(&view), &mut out);
                protocol::wire::finish_state(mark, &mut out);
                out.len()
            })
        });
        group.bench_function(BenchmarkId::new("decode", n), |b| {
            b.iter(
                || match protocol::decode_server(black_box(&bytes)).unwrap() {
                    ServerMsg::State(s) => {
                        game_api::codec::decode::<arena::msg::ArenaState>(&s.data).unwrap()
                    }
                    _ => unreachable!("a state"),
                },
            )
        });
    }
    group.finish();
}

fn message(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec/message");
    let msg = ClientMsg::Game(GameMsg {
        seq: 123_456,
        data: game_api::codec::to_vec(&arena::msg::Move { dx: -90, dy: 90 }),
    });
    let mut bytes = Vec::new();
    protocol::encode_client(&msg, &mut bytes);
    group.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(16);
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            protocol::encode_client(black_box(&msg), &mut out)
        })
    });
    group.bench_function("decode", |b| {
        b.iter(
            || match protocol::decode_client(black_box(&bytes)).unwrap() {
                ClientMsg::Game(g) => {
                    game_api::codec::decode_message::<arena::msg::Move>(&g.data).unwrap()
                }
                _ => unreachable!("a game message"),
            },
        )
    });
    group.finish();
}

criterion_group!(benches, state, message);
criterion_main!(benches);

//! Encoding and decoding cost of the messages on the hot path: a snapshot
//! (20 and 200 visible entities, through bincode and through the server's
//! hand-written encoder) and an input.

use benches::sample_snapshot;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use protocol::{ClientMsg, Input, ServerMsg};
use std::hint::black_box;

fn snapshot(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec/snapshot");
    for n in [20u32, 200] {
        let snap = sample_snapshot(n);
        let msg = ServerMsg::Snapshot(snap.clone());
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
        group.bench_function(BenchmarkId::new("encode_wire", n), |b| {
            b.iter(|| {
                out.clear();
                protocol::wire::encode_snapshot_header(
                    snap.tick,
                    snap.ack,
                    snap.players,
                    snap.entities.len(),
                    &mut out,
                );
                for e in black_box(&snap.entities) {
                    protocol::wire::encode_entity(e, &mut out);
                }
                out.len()
            })
        });
        group.bench_function(BenchmarkId::new("decode", n), |b| {
            b.iter(|| protocol::decode_server(black_box(&bytes)).unwrap())
        });
    }
    group.finish();
}

fn input(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec/input");
    let msg = ClientMsg::Input(Input {
        seq: 123_456,
        dx: -90,
        dy: 90,
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
        b.iter(|| protocol::decode_client(black_box(&bytes)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, snapshot, input);
criterion_main!(benches);

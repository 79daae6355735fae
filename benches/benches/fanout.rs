//! Fan-out: building every player's `State` for one tick (each entity
//! encoded once, each state a header plus copied bytes, all in one buffer),
//! at 1,000 and 5,000 arena players.

use benches::arena_room;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use server::room::fanout::StateBuilder;
use std::hint::black_box;

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    for players in [1_000u32, 5_000] {
        let mut game = arena_room(players);
        let mut builder = StateBuilder::default();
        group.throughput(Throughput::Elements(u64::from(players)));
        group.bench_function(BenchmarkId::new("build_all_states", players), |b| {
            b.iter(|| {
                let states =
                    builder.build(black_box(&mut *game), 54_000, (1..=players).map(|p| (p, p)));
                states.bytes.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);

//! Fan-out: building and encoding every player's snapshot for one tick
//! (each entity encoded once, each snapshot a header plus copied bytes, all
//! in one buffer), at 1,000 and 5,000 players.

use benches::populated_arena;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use server::room::fanout::SnapshotBuilder;
use std::hint::black_box;

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    for players in [1_000u32, 5_000] {
        let arena = populated_arena(players);
        let mut builder = SnapshotBuilder::default();
        group.throughput(Throughput::Elements(u64::from(players)));
        group.bench_function(BenchmarkId::new("build_all_snapshots", players), |b| {
            b.iter(|| {
                let snaps = builder.build(
                    black_box(&arena),
                    54_000,
                    u16::MAX,
                    (1..=players).map(|p| (p, p)),
                );
                snaps.bytes.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);

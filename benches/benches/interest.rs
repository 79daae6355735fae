//! Interest management: every player's view query for one tick, at 1,000
//! and 5,000 players (density of a full default room).

use benches::populated_arena;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn views(c: &mut Criterion) {
    let mut group = c.benchmark_group("interest");
    for players in [1_000u32, 5_000] {
        let arena = populated_arena(players);
        let mut view = Vec::new();
        group.throughput(Throughput::Elements(u64::from(players)));
        group.bench_function(BenchmarkId::new("views_per_tick", players), |b| {
            b.iter(|| {
                let mut seen = 0;
                for p in 1..=players {
                    view.clear();
                    arena.view(black_box(p), &mut view);
                    seen += view.len();
                }
                seen
            })
        });
    }
    group.finish();
}

criterion_group!(benches, views);
criterion_main!(benches);

//! Cost of a room tick: the simulation step alone, and the step plus
//! building every player's snapshot (what the room task does each tick
//! before handing snapshots to connections).

use benches::populated_arena;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use protocol::Input;
use server::game::Game;
use server::room::fanout::SnapshotBuilder;
use std::hint::black_box;

fn inputs_for(players: u32, round: u32) -> Vec<(u32, Input)> {
    (1..=players)
        .map(|p| {
            let phase = (p + round) % 8;
            let dx = [127, 90, 0, -90, -127, -90, 0, 90][phase as usize];
            let dy = [0, 90, 127, 90, 0, -90, -127, -90][phase as usize];
            (p, Input { seq: round, dx, dy })
        })
        .collect()
}

fn tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick");
    for players in [100u32, 1_000, 5_000] {
        group.throughput(Throughput::Elements(u64::from(players)));
        let mut arena = populated_arena(players);
        let mut round = 0;
        group.bench_function(BenchmarkId::new("step", players), |b| {
            b.iter(|| {
                round += 1;
                let inputs = inputs_for(players, round);
                arena.step(black_box(&inputs));
            })
        });
        let mut arena = populated_arena(players);
        let mut builder = SnapshotBuilder::default();
        let mut tick = 0u32;
        group.bench_function(BenchmarkId::new("step_and_snapshots", players), |b| {
            b.iter(|| {
                tick += 1;
                let inputs = inputs_for(players, tick);
                arena.step(&inputs);
                let viewers = (1..=players).map(|p| (p, tick));
                let snaps = builder.build(
                    &arena,
                    tick,
                    players.min(u32::from(u16::MAX)) as u16,
                    viewers,
                );
                black_box(snaps.bytes.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, tick);
criterion_main!(benches);

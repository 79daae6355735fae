//! Cost of a room tick: the arena's simulation step alone, and the step
//! plus building every player's `State` through the erased game (what the
//! room task does each tick before handing states to connections).

use benches::{arena_room, encoded_moves, moves, populated_arena};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use game_api::Effects;
use game_api::room_type::Sender;
use server::room::fanout::StateBuilder;
use std::hint::black_box;

fn tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick");
    for players in [100u32, 1_000, 5_000] {
        group.throughput(Throughput::Elements(u64::from(players)));
        let mut arena = populated_arena(players);
        let mut round = 0;
        group.bench_function(BenchmarkId::new("step", players), |b| {
            b.iter(|| {
                round += 1;
                let moves = moves(players, round);
                arena.step(black_box(&moves));
            })
        });
        let mut game = arena_room(players);
        let inbox = game.inbox();
        let mut builder = StateBuilder::default();
        let mut tick = 0u32;
        let rounds: Vec<_> = (0..8).map(|r| encoded_moves(players, r)).collect();
        group.bench_function(BenchmarkId::new("step_and_states", players), |b| {
            b.iter(|| {
                tick += 1;
                for (player, data) in &rounds[tick as usize % rounds.len()] {
                    let from = Sender {
                        player: *player,
                        conn: 0,
                    };
                    inbox.push(from, tick, data).expect("room in the inbox");
                }
                let mut fx = Effects::new(tick, 30);
                game.take_messages(&mut |_, _, _| true);
                game.step(&mut fx);
                let viewers = (1..=players).map(|p| (p, tick));
                black_box(builder.build(&mut *game, tick, viewers).bytes.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, tick);
criterion_main!(benches);

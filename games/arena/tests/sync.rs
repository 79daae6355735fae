//! The game is deterministic: runs of its bots, replayed from the start
//! twice and once from a keyframe taken half way, reach the same state
//! hash after every step (`game_api::replay`). A game that read a clock,
//! iterated a randomly seeded map, or left something out of its `save`
//! would fail here.

#[test]
fn recorded_runs_replay_to_the_same_hash_at_every_tick() {
    game_api::replay::assert_deterministic(
        &arena::room_type(arena::ArenaConfig::default()),
        arena::bot::SPEC.make,
        12,
        300,
    );
}

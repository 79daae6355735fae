//! Shared set-up for the criterion benches in `benches/`: worlds of a given
//! size in the shape the server runs them. Not a library for anything else.

use server::game::Game;
use server::game::arena::{Arena, ArenaConfig};

/// An arena with `players` joined, and stepped once so that its entities
/// and spatial index are current. The field grows with the player count so
/// that density (and so the view size) stays that of a full default room:
/// 100 players on 2000 × 2000.
pub fn populated_arena(players: u32) -> Arena {
    let side = (2000.0 * (f64::from(players) / 100.0).sqrt()).clamp(2000.0, 65_535.0) as u16;
    let config = ArenaConfig {
        world_width: side,
        world_height: side,
        pickups: players * 6 / 10,
        ..ArenaConfig::default()
    };
    let mut arena = Arena::new(config, 42);
    for p in 1..=players {
        arena.join(p);
    }
    arena.step(&[]);
    arena
}

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

/// A snapshot with `entities` entities of typical values: ids, positions,
/// tick and ack past 250, small scores (11 bytes an entity on the wire).
pub fn sample_snapshot(entities: u32) -> protocol::Snapshot {
    protocol::Snapshot {
        tick: 54_000,
        ack: 36_000,
        players: 100,
        entities: (0..entities)
            .map(|i| protocol::Entity {
                id: 300 + i,
                kind: if i % 3 == 0 {
                    protocol::EntityKind::Pickup
                } else {
                    protocol::EntityKind::Player
                },
                x: 251 + (i * 37 % 1700) as u16,
                y: 251 + (i * 91 % 1700) as u16,
                score: i % 200,
            })
            .collect(),
    }
}

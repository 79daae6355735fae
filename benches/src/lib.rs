//! Shared set-up for the criterion benches and the gate in `benches/`:
//! arena rooms of a given size in the shape the server runs them, and
//! their messages and states. Not a library for anything else.

use arena::msg::{ArenaState, Entity, EntityKind, Move};
use arena::{Arena, ArenaConfig};
use game_api::{DynGame, Effects, PlayerId, RoomOptions};

/// The arena configuration for `players` at the density of a full default
/// room (100 players on 2000 × 2000): the field grows with the player
/// count, so the view size stays that of a default room.
pub fn config_for(players: u32) -> ArenaConfig {
    let side = (2000.0 * (f64::from(players) / 100.0).sqrt()).clamp(2000.0, 65_535.0) as u16;
    ArenaConfig {
        world_width: side,
        world_height: side,
        pickups: players * 6 / 10,
        ..ArenaConfig::default()
    }
}

/// An arena with `players` joined, and stepped once so that its entities
/// and spatial index are current.
pub fn populated_arena(players: u32) -> Arena {
    let mut arena = Arena::new(config_for(players), 42);
    for p in 1..=players {
        arena.join(p);
    }
    arena.step(&[]);
    arena
}

/// The same arena as the server holds it: made by the arena's room type
/// and driven through `DynGame`, its inbox sized for one message per
/// player per tick.
pub fn arena_room(players: u32) -> Box<dyn DynGame> {
    let room_type = arena::room_type(config_for(players));
    let mut game = room_type
        .create(&RoomOptions::default(), 42, players as usize * 2)
        .expect("default options");
    let mut fx = Effects::new(0, 30);
    for p in 1..=players {
        game.join(p, &mut fx);
    }
    game.step(&mut fx);
    game
}

/// Each player's move for `round`: eight directions, changing every round.
pub fn moves(players: u32, round: u32) -> Vec<(PlayerId, Move)> {
    (1..=players)
        .map(|p| {
            let phase = ((p + round) % 8) as usize;
            let dx = [127, 90, 0, -90, -127, -90, 0, 90][phase];
            let dy = [0, 90, 127, 90, 0, -90, -127, -90][phase];
            (p, Move { dx, dy })
        })
        .collect()
}

/// The moves of [`moves`] in the game's encoding, as clients send them.
pub fn encoded_moves(players: u32, round: u32) -> Vec<(PlayerId, Vec<u8>)> {
    moves(players, round)
        .into_iter()
        .map(|(p, m)| (p, game_api::codec::to_vec(&m)))
        .collect()
}

/// An arena state with `entities` entities of typical values: ids,
/// positions past 250, small scores (11 bytes an entity on the wire).
pub fn sample_state(entities: u32) -> ArenaState {
    ArenaState {
        players: 100,
        entities: (0..entities)
            .map(|i| Entity {
                id: 300 + i,
                kind: if i % 3 == 0 {
                    EntityKind::Pickup
                } else {
                    EntityKind::Player
                },
                x: 251 + (i * 37 % 1700) as u16,
                y: 251 + (i * 91 % 1700) as u16,
                score: i % 200,
            })
            .collect(),
    }
}

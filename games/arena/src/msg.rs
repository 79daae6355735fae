//! What arena clients send and receive, inside the platform's envelope:
//! [`Move`] (the game message), [`ArenaWelcome`] (the game's part of
//! `Welcome`), [`ArenaState`] (each player's state: the room's head count
//! and the entities in view). All are bincode in the standard
//! configuration; `games/arena/web/codec.js` is the same in JavaScript.
//!
//! The server writes states by hand ([`encode_entity`], through
//! `game_api::replication`) for speed; the tests below hold that encoding
//! equal to bincode's, byte for byte.

use game_api::codec::put_varint;
use game_api::grid::Positioned;
use serde::{Deserialize, Serialize};

/// The player's wish to move: a stick deflection per axis, -127 (left, up)
/// to 127 (right, down); -128 is read as -127. The player keeps moving with
/// the velocity of its last move until the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// Horizontal deflection.
    pub dx: i8,
    /// Vertical deflection.
    pub dy: i8,
}

/// The arena's part of `Welcome`: what a client needs to draw the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArenaWelcome {
    /// Width of the field in world units (x runs 0..=width).
    pub world_width: u16,
    /// Height of the field in world units (y runs 0..=height).
    pub world_height: u16,
    /// Entities farther than this from the player are not in its states.
    pub view_radius: u16,
    /// Top speed of a player, in world units per tick.
    pub player_speed: u16,
}

/// What one player sees at one tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArenaState {
    /// Players in the room, dropped ones waiting to resume included.
    pub players: u16,
    /// Every entity within the view radius, the player's own included.
    pub entities: Vec<Entity>,
}

/// One thing on the field, as a client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Unique among entities of the same kind in the room; for a player it
    /// is the player id.
    pub id: u32,
    /// What the entity is.
    pub kind: EntityKind,
    /// Horizontal position in world units.
    pub x: u16,
    /// Vertical position in world units.
    pub y: u16,
    /// A player's score; 0 for other kinds.
    pub score: u32,
}

impl Positioned for Entity {
    #[inline]
    fn position(&self) -> (u16, u16) {
        (self.x, self.y)
    }
}

/// Kinds of entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntityKind {
    /// A connected player.
    Player,
    /// Something a player collects for a point.
    Pickup,
    /// A player whose connection dropped; frozen until it resumes or its
    /// grace period ends.
    DroppedPlayer,
}

/// Largest encoding of one [`Entity`]: id (5) + kind (1) + x (3) + y (3) +
/// score (5). With ids below 65,536 and scores below 251 it is at most 11
/// bytes (exactly 11 when id, x and y are all 251 or more).
pub const MAX_ENTITY_BYTES: usize = 17;

/// Variant index of an [`EntityKind`] (its declaration order).
#[inline]
const fn kind_index(kind: EntityKind) -> u8 {
    match kind {
        EntityKind::Player => 0,
        EntityKind::Pickup => 1,
        EntityKind::DroppedPlayer => 2,
    }
}

/// Appends the bincode encoding of one entity, written by hand.
#[inline]
pub fn encode_entity(e: &Entity, out: &mut Vec<u8>) {
    put_varint(out, u64::from(e.id));
    out.push(kind_index(e.kind));
    put_varint(out, u64::from(e.x));
    put_varint(out, u64::from(e.y));
    put_varint(out, u64::from(e.score));
}

#[cfg(test)]
mod tests {
    use super::*;
    use game_api::replication::EncodedEntities;

    const EDGES: [u32; 9] = [0, 1, 250, 251, 252, 65_535, 65_536, 1 << 24, u32::MAX];

    /// A state written the way the server writes it: the head count by
    /// hand, the entities through the shared encodings.
    fn by_hand(s: &ArenaState) -> Vec<u8> {
        let mut enc = EncodedEntities::<MAX_ENTITY_BYTES>::default();
        enc.encode_all(&s.entities, encode_entity);
        let mut out = Vec::new();
        put_varint(&mut out, u64::from(s.players));
        let all: Vec<u32> = (0..s.entities.len() as u32).collect();
        enc.write_view(&all, &mut out);
        out
    }

    #[test]
    fn hand_encoding_equals_bincode_at_every_varint_edge() {
        let kinds = [
            EntityKind::Player,
            EntityKind::Pickup,
            EntityKind::DroppedPlayer,
        ];
        for (i, &v) in EDGES.iter().enumerate() {
            let small = v as u16;
            let entities = (0..i + 1)
                .map(|j| Entity {
                    id: EDGES[(i + j) % EDGES.len()],
                    kind: kinds[j % 3],
                    x: small,
                    y: EDGES[j % EDGES.len()] as u16,
                    score: v,
                })
                .collect();
            let s = ArenaState {
                players: small,
                entities,
            };
            assert_eq!(by_hand(&s), game_api::codec::to_vec(&s), "{s:?}");
        }
    }

    #[test]
    fn entity_sizes_match_the_documented_bounds() {
        let mut out = Vec::new();
        encode_entity(
            &Entity {
                id: u32::MAX,
                kind: EntityKind::DroppedPlayer,
                x: u16::MAX,
                y: u16::MAX,
                score: u32::MAX,
            },
            &mut out,
        );
        assert_eq!(out.len(), MAX_ENTITY_BYTES);
        out.clear();
        encode_entity(
            &Entity {
                id: 65_535,
                kind: EntityKind::Player,
                x: 1999,
                y: 1999,
                score: 250,
            },
            &mut out,
        );
        assert_eq!(out.len(), 11);
    }

    #[test]
    fn a_typical_state_of_twenty_entities_is_222_bytes() {
        // 100 players in the room, ids, x and y past 250, small scores:
        // the common case. 2 bytes of head count and entity count, then
        // 20 entities of 11 bytes.
        let entities = (0..20)
            .map(|i| Entity {
                id: 300 + i,
                kind: EntityKind::Player,
                x: 1000 + i as u16,
                y: 700,
                score: 12,
            })
            .collect::<Vec<_>>();
        let s = ArenaState {
            players: 100,
            entities,
        };
        assert_eq!(by_hand(&s).len(), 2 + 20 * 11);
    }

    #[test]
    fn a_move_is_two_bytes_and_minus_128_decodes() {
        let bytes = game_api::codec::to_vec(&Move { dx: -128, dy: 127 });
        assert_eq!(bytes, vec![0x80, 0x7f]);
        assert_eq!(
            game_api::codec::decode_message::<Move>(&bytes),
            Ok(Move { dx: -128, dy: 127 })
        );
    }
}

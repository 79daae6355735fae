//! Hand-written encoding of snapshots for the server's hot path.
//!
//! Each tick the server encodes every visible entity once, then builds each
//! player's snapshot by copying the bytes of the entities that player sees
//! behind a small header. That only works because bincode's encoding of a
//! struct is the concatenation of its fields' encodings, which is what this
//! module writes by hand. The tests below check it against bincode itself,
//! byte for byte, so the two cannot drift apart.

use crate::msg::{Entity, EntityKind};

/// Index of `ServerMsg::Snapshot` among `ServerMsg`'s variants.
const SNAPSHOT_VARIANT: u64 = 1;

/// Largest encoding of one [`Entity`]: id (5) + kind (1) + x (3) + y (3) +
/// score (5). With ids below 65,536 and scores below 251 it is at most 11
/// bytes (exactly 11 when id, x and y are all 251 or more).
pub const MAX_ENTITY_BYTES: usize = 17;

/// Largest encoding of a snapshot header: variant (1) + tick (5) + ack (5) +
/// players (3) + entity count (9).
pub const MAX_SNAPSHOT_HEADER_BYTES: usize = 23;

/// Appends `v` as a bincode `standard()` varint: values below 251 are one
/// byte; larger ones are a marker byte (251, 252, 253) and then the value as
/// a little-endian u16, u32 or u64.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v < 251 {
        out.push(v as u8);
    } else if v <= u64::from(u16::MAX) {
        out.push(251);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v <= u64::from(u32::MAX) {
        out.push(252);
        out.extend_from_slice(&(v as u32).to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Variant index of an [`EntityKind`] (its declaration order).
#[inline]
const fn kind_index(kind: EntityKind) -> u8 {
    match kind {
        EntityKind::Player => 0,
        EntityKind::Pickup => 1,
        EntityKind::DroppedPlayer => 2,
    }
}

/// Appends the bincode encoding of one entity.
#[inline]
pub fn encode_entity(e: &Entity, out: &mut Vec<u8>) {
    put_varint(out, u64::from(e.id));
    out.push(kind_index(e.kind));
    put_varint(out, u64::from(e.x));
    put_varint(out, u64::from(e.y));
    put_varint(out, u64::from(e.score));
}

/// Appends everything of a `ServerMsg::Snapshot` that precedes its entities.
/// Follow it with exactly `entity_count` encoded entities.
#[inline]
pub fn encode_snapshot_header(
    tick: u32,
    ack: u32,
    players: u16,
    entity_count: usize,
    out: &mut Vec<u8>,
) {
    put_varint(out, SNAPSHOT_VARIANT);
    put_varint(out, u64::from(tick));
    put_varint(out, u64::from(ack));
    put_varint(out, u64::from(players));
    put_varint(out, entity_count as u64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ServerMsg, Snapshot, encode_server};

    const EDGES: [u32; 9] = [0, 1, 250, 251, 252, 65_535, 65_536, 1 << 24, u32::MAX];

    fn by_hand(s: &Snapshot) -> Vec<u8> {
        let mut out = Vec::new();
        encode_snapshot_header(s.tick, s.ack, s.players, s.entities.len(), &mut out);
        for e in &s.entities {
            encode_entity(e, &mut out);
        }
        out
    }

    fn by_bincode(s: &Snapshot) -> Vec<u8> {
        let mut out = Vec::new();
        encode_server(&ServerMsg::Snapshot(s.clone()), &mut out);
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
            let s = Snapshot {
                tick: v,
                ack: EDGES[EDGES.len() - 1 - i],
                players: small,
                entities,
            };
            assert_eq!(by_hand(&s), by_bincode(&s), "{s:?}");
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
        out.clear();
        encode_snapshot_header(u32::MAX, u32::MAX, u16::MAX, usize::MAX, &mut out);
        assert_eq!(out.len(), MAX_SNAPSHOT_HEADER_BYTES);
    }

    #[test]
    fn a_typical_snapshot_of_twenty_entities_is_229_bytes() {
        // A room a few minutes old (tick and ack past 250), 100 players,
        // ids, x and y past 250, small scores: the common case.
        let entities = (0..20)
            .map(|i| Entity {
                id: 300 + i,
                kind: EntityKind::Player,
                x: 1000 + i as u16,
                y: 700,
                score: 12,
            })
            .collect::<Vec<_>>();
        let s = Snapshot {
            tick: 5_400,
            ack: 3_600,
            players: 100,
            entities,
        };
        assert_eq!(by_hand(&s).len(), 9 + 20 * 11);
    }
}

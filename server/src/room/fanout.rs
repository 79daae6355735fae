//! Building every player's snapshot for one tick: the hot path.
//!
//! Each entity of the world is encoded once per tick; each player's
//! snapshot is a header plus copies of the encoded bytes of the entities in
//! its view; all snapshots of the tick are written into one buffer, which
//! becomes one shared `Bytes` that each player's snapshot is a slice of.
//! So a tick costs one allocation, and per player one view query and a few
//! memcpys, whatever the number of players.
//!
//! Public so that the benches measure exactly what the room runs. Not for
//! delivering snapshots (that is the room's mailbox hand-off) or deciding
//! who gets one.

use crate::game::{Game, PlayerId};
use bytes::Bytes;
use std::ops::Range;

use protocol::wire::MAX_ENTITY_BYTES;

/// One entity's encoding in a fixed-size slot, with its length. Copying a
/// whole slot is a fixed-size copy the compiler turns into two moves, where
/// copying an 11-byte slice of varying length is a call to `memcpy`: at
/// 5,000 players that call was a sixth of the fan-out's instructions.
#[derive(Clone, Copy)]
struct Slot {
    bytes: [u8; MAX_ENTITY_BYTES],
    len: u8,
}

/// Reusable buffers for building a tick's snapshots.
#[derive(Default)]
pub struct SnapshotBuilder {
    /// Every entity's encoding, by entity index.
    slots: Vec<Slot>,
    /// Scratch for encoding one entity.
    scratch: Vec<u8>,
    /// The view of the player being built.
    view: Vec<u32>,
    /// Where each player's snapshot lies in the tick's buffer.
    ranges: Vec<(PlayerId, Range<usize>)>,
    /// Size of the previous tick's buffer, to size the next one.
    last_tick_bytes: usize,
    /// Largest slack a snapshot needed while being built in the previous
    /// tick (whole slots before the cut), added to the next tick's size so
    /// that steady state allocates the buffer once.
    last_slack: usize,
}

/// The snapshots of one tick: one shared buffer, sliced per player.
pub struct TickSnapshots<'a> {
    /// All snapshots of the tick.
    pub bytes: Bytes,
    /// Each player's slice of `bytes`.
    pub ranges: &'a [(PlayerId, Range<usize>)],
}

impl TickSnapshots<'_> {
    /// Each player with its snapshot.
    pub fn iter(&self) -> impl Iterator<Item = (PlayerId, Bytes)> + '_ {
        self.ranges
            .iter()
            .map(|(p, r)| (*p, self.bytes.slice(r.clone())))
    }
}

impl SnapshotBuilder {
    /// Builds the snapshot of each `(player, ack)` in `viewers` for `tick`.
    /// `players` is the room's head count reported in every snapshot.
    pub fn build(
        &mut self,
        game: &dyn Game,
        tick: u32,
        players: u16,
        viewers: impl Iterator<Item = (PlayerId, u32)>,
    ) -> TickSnapshots<'_> {
        self.slots.clear();
        for e in game.entities() {
            self.scratch.clear();
            protocol::wire::encode_entity(e, &mut self.scratch);
            let mut slot = Slot {
                bytes: [0; MAX_ENTITY_BYTES],
                len: self.scratch.len() as u8,
            };
            slot.bytes[..self.scratch.len()].copy_from_slice(&self.scratch);
            self.slots.push(slot);
        }

        let mut buf = Vec::with_capacity(self.last_tick_bytes + self.last_slack + 256);
        let mut slack = 0;
        self.ranges.clear();
        for (player, ack) in viewers {
            self.view.clear();
            game.view(player, &mut self.view);
            let start = buf.len();
            protocol::wire::encode_snapshot_header(tick, ack, players, self.view.len(), &mut buf);
            // Room for every slot whole; the tail past the last entity's
            // real length is cut off below.
            let mut at = buf.len();
            buf.resize(at + self.view.len() * MAX_ENTITY_BYTES, 0);
            for &i in &self.view {
                let slot = &self.slots[i as usize];
                buf[at..at + MAX_ENTITY_BYTES].copy_from_slice(&slot.bytes);
                at += usize::from(slot.len);
            }
            slack = slack.max(buf.len() - at);
            buf.truncate(at);
            self.ranges.push((player, start..buf.len()));
        }
        self.last_tick_bytes = buf.len();
        self.last_slack = slack;
        TickSnapshots {
            bytes: Bytes::from(buf),
            ranges: &self.ranges,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::arena::{Arena, ArenaConfig};
    use protocol::{ServerMsg, Snapshot};

    #[test]
    fn each_snapshot_decodes_to_exactly_that_players_view() {
        let mut arena = Arena::new(ArenaConfig::default(), 3);
        for p in 1..=50 {
            arena.join(p);
        }
        arena.step(&[]);
        let mut builder = SnapshotBuilder::default();
        let viewers = (1..=50).map(|p| (p, p * 10));
        let snaps = builder.build(&arena, 77, 50, viewers);
        assert_eq!(snaps.ranges.len(), 50);
        for (player, bytes) in snaps.iter() {
            let mut view = Vec::new();
            arena.view(player, &mut view);
            let expected = Snapshot {
                tick: 77,
                ack: player * 10,
                players: 50,
                entities: view.iter().map(|&i| arena.entities()[i as usize]).collect(),
            };
            assert_eq!(
                protocol::decode_server(&bytes),
                Ok(ServerMsg::Snapshot(expected))
            );
        }
    }
}

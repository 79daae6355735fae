//! Building every player's `State` for one tick: the hot path.
//!
//! All states of a tick are written into one buffer, which becomes one
//! shared `Bytes` that each player's state is a slice of. For each player
//! the builder writes the message's start (tick, ack, a length byte), lets
//! the game append its bytes in place (`DynGame::state`), and fixes the
//! length up (`protocol::wire`). So a tick costs one allocation and, per
//! player, the game's own work and a few copies, whatever the number of
//! players. A game with many entities encodes each of them once per tick
//! (`DynGame::prepare_states`, see `game_api::replication`) and copies the
//! bytes into every view that holds them.
//!
//! Public so that the benches measure exactly what the room runs. Not for
//! delivering states (that is the room's mailbox hand-off) or deciding who
//! gets one.

use bytes::Bytes;
use game_api::{DynGame, PlayerId};
use protocol::wire::{begin_state, finish_state, varint_len};
use std::ops::Range;

/// Reusable buffers for building a tick's states.
#[derive(Default)]
pub struct StateBuilder {
    /// Where each player's state lies in the tick's buffer, and where its
    /// game data starts.
    ranges: Vec<(PlayerId, Range<usize>, usize)>,
    /// Size of the previous tick's buffer, to size the next one so that
    /// steady state allocates the buffer once.
    last_tick_bytes: usize,
}

/// The states of one tick: one shared buffer, sliced per player.
pub struct TickStates<'a> {
    /// All states of the tick, each a whole `ServerMsg::State`.
    pub bytes: Bytes,
    /// Each player's slice of `bytes`, and where its game data starts.
    ranges: &'a [(PlayerId, Range<usize>, usize)],
}

impl TickStates<'_> {
    /// Each player with its state message and, within it, the game's data.
    pub fn iter(&self) -> impl Iterator<Item = (PlayerId, Bytes, Bytes)> + '_ {
        self.ranges.iter().map(|(p, r, data)| {
            (
                *p,
                self.bytes.slice(r.clone()),
                self.bytes.slice(*data..r.end),
            )
        })
    }

    /// Number of states.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True when no player got a state.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

impl StateBuilder {
    /// Builds the state of each `(player, ack)` in `viewers` for `tick`.
    pub fn build(
        &mut self,
        game: &mut dyn DynGame,
        tick: u32,
        viewers: impl Iterator<Item = (PlayerId, u32)>,
    ) -> TickStates<'_> {
        game.prepare_states();
        let mut buf = Vec::with_capacity(self.last_tick_bytes + 256);
        self.ranges.clear();
        for (player, ack) in viewers {
            let start = buf.len();
            let mark = begin_state(tick, ack, &mut buf);
            game.state(player, &mut buf);
            let len = buf.len() - mark;
            finish_state(mark, &mut buf);
            // The data follows its length, which finish_state may have made
            // longer than the one byte reserved before `mark`.
            let data = mark - 1 + varint_len(len as u64);
            self.ranges.push((player, start..buf.len(), data));
        }
        self.last_tick_bytes = buf.len();
        TickStates {
            bytes: Bytes::from(buf),
            ranges: &self.ranges,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use game_api::{Ctx, Game, RoomOptions, RoomType};
    use protocol::{ServerMsg, State};

    /// A game whose state for player p is p copies of the byte p, so that
    /// states cross the one-byte length boundary (251 bytes and more).
    struct Echo;

    impl Game for Echo {
        type Config = ();
        type Message = ();
        type Event = ();
        fn create(_: &(), _: &RoomOptions, _: u64) -> Result<Self, String> {
            Ok(Echo)
        }
        fn restore(_: &(), _: &RoomOptions, _: &[u8]) -> Result<Self, String> {
            Ok(Echo)
        }
        fn save(&self) -> Vec<u8> {
            Vec::new()
        }
        fn join(&mut self, _: PlayerId, _: &mut Ctx<'_, ()>) {}
        fn leave(&mut self, _: PlayerId, _: &mut Ctx<'_, ()>) {}
        fn step(&mut self, _: &[(PlayerId, ())], _: &mut Ctx<'_, ()>) {}
        fn state(&mut self, player: PlayerId, out: &mut Vec<u8>) {
            out.extend(std::iter::repeat_n(player as u8, player as usize));
        }
    }

    #[test]
    fn each_state_decodes_to_that_players_tick_ack_and_data() {
        let mut game = RoomType::new::<Echo>("echo", ())
            .create(&RoomOptions::default(), 1, 1)
            .unwrap();
        let mut builder = StateBuilder::default();
        let players = [0u32, 1, 250, 251, 252, 300, 7];
        for tick in [5u32, 70_000] {
            let states = builder.build(&mut *game, tick, players.iter().map(|&p| (p, p * 3)));
            assert_eq!(states.len(), players.len());
            for (player, frame, data) in states.iter() {
                let want = vec![player as u8; player as usize];
                assert_eq!(&data[..], &want[..], "data of {player}");
                assert_eq!(
                    protocol::decode_server(&frame),
                    Ok(ServerMsg::State(State {
                        tick,
                        ack: player * 3,
                        data: want
                    }))
                );
            }
        }
    }
}

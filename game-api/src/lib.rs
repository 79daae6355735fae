//! The game API: what a game developer writes against to host a game on the
//! platform, and nothing that does I/O.
//!
//! A game implements [`Game`]: rooms are created with options, players try
//! to join (the game may refuse with a reason), join, drop, resume and
//! leave; the room steps the game at a fixed tick with the messages its
//! players sent since the last step; each player gets the game's state for
//! them (latest wins) and the events the game sends them (reliable, in
//! order). Through the room context ([`Ctx`]) a game sends events, kicks a
//! player with a reason, sets the room's metadata (shown in the public room
//! list), locks and unlocks the room, makes it private, changes its
//! capacity, and ends it. The lifecycle will feel familiar from Colyseus'
//! rooms and Nakama's match handlers; see `docs/your-own-game.md`.
//!
//! A game is registered under a name as a [`RoomType`], which also carries
//! the room settings (capacity, tick rate, how long an empty room lingers,
//! which options quick join must match, whether unchanged states are sent
//! again) and the game's web page. The server drives every room type
//! through the type-erased [`DynGame`]; it never learns a game's types.
//!
//! Layout:
//! - [`Game`], [`RoomOptions`], [`PlayerId`] (here);
//! - [`ctx`]: the room context and the effects a game asks for;
//! - [`room_type`]: registration, settings and the erased game;
//! - [`replication`] and [`grid`]: helpers for games with many entities
//!   (encode each entity once per tick and share the bytes among all the
//!   views that hold it; a spatial index for per-player views);
//! - [`bot`]: the I/O-free simulated player that `loadgen` drives;
//! - [`codec`]: encoding the game's own bytes (bincode with limits).
//!
//! **No I/O, no tokio, no clocks.** Time reaches a game as tick numbers, and
//! randomness as a seed: a game is deterministic for its seed and the calls
//! made on it, which is what lets rooms be saved across restarts (and, in
//! time, replayed).

pub mod bot;
pub mod codec;
pub mod ctx;
pub mod grid;
pub mod replay;
pub mod replication;
pub mod room_type;

pub use bot::{Bot, BotSpec};
pub use ctx::{Ctx, Effects, Metadata, Target};
pub use room_type::{DynGame, RoomSettings, RoomType, WebAsset};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Identifies a player for the whole life of its session, across resumes.
pub type PlayerId = u32;

/// The rules of one room's game. Only the room's task calls these methods,
/// so an implementation needs no locking.
///
/// Calls that name a player the game does not hold (or, for `join`, one it
/// already holds) must do nothing: the room may race a leave against a late
/// message. The room owns the tick counter (`Ctx::tick`).
pub trait Game: Sized + Send + 'static {
    /// Settings fixed when the room type is registered (from the server's
    /// command line, say), shared by every room of the type. Serializable
    /// because a room's recording carries them: a replay makes the game
    /// with the configuration it ran with, whatever the replaying
    /// process's flags.
    type Config: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What a client sends the game. Decoded from the game bytes of each
    /// client message with [`codec::decode`]; a message that does not decode
    /// closes the sender's connection with 1007 before the game sees it.
    type Message: DeserializeOwned + Send + 'static;
    /// What the game sends clients as reliable events.
    type Event: Serialize;

    /// A fresh game for a new room created with `options`, or the reason
    /// the options are refused (the creating client gets close 4014 with
    /// it). `seed` is the room's seed: a game must draw every random choice
    /// from it.
    fn create(config: &Self::Config, options: &RoomOptions, seed: u64) -> Result<Self, String>;

    /// Rebuilds a game from the bytes of [`Game::save`] (a room carried over
    /// a planned restart). The bytes come from a file and are input like any
    /// other: bytes this build cannot continue must give an error, never a
    /// panic.
    fn restore(config: &Self::Config, options: &RoomOptions, saved: &[u8]) -> Result<Self, String>;

    /// Everything that makes this game what it is, as bytes from which
    /// [`Game::restore`] rebuilds a game that continues exactly as this one
    /// would.
    fn save(&self) -> Vec<u8>;

    /// A player asks to join; `Err` refuses it with a reason (close 4014).
    /// Nothing is changed by a refusal; on `Ok`, [`Game::join`] follows.
    fn join_attempt(
        &mut self,
        player: PlayerId,
        ctx: &mut Ctx<'_, Self::Event>,
    ) -> Result<(), String> {
        let _ = (player, ctx);
        Ok(())
    }

    /// A new player enters the game.
    fn join(&mut self, player: PlayerId, ctx: &mut Ctx<'_, Self::Event>);

    /// The player's connection dropped without a clean leave. It keeps its
    /// place until [`Game::resume`] or, after the room's grace period,
    /// [`Game::leave`].
    fn drop_player(&mut self, player: PlayerId, ctx: &mut Ctx<'_, Self::Event>) {
        let _ = (player, ctx);
    }

    /// A dropped player resumed its session.
    fn resume(&mut self, player: PlayerId, ctx: &mut Ctx<'_, Self::Event>) {
        let _ = (player, ctx);
    }

    /// The player is gone for good: a clean leave, a kick, or its grace
    /// period ended.
    fn leave(&mut self, player: PlayerId, ctx: &mut Ctx<'_, Self::Event>);

    /// Advances the game by one fixed step, applying the messages that
    /// arrived since the previous step, in arrival order. Messages of
    /// dropped or departed players never reach it.
    fn step(&mut self, messages: &[(PlayerId, Self::Message)], ctx: &mut Ctx<'_, Self::Event>);

    /// The game's part of the player's `Welcome` (sent on every join and
    /// resume), appended to `out`; nothing by default.
    fn welcome(&self, player: PlayerId, out: &mut Vec<u8>) {
        let _ = (player, out);
    }

    /// Called once per tick before the [`Game::state`] calls of that tick:
    /// the place to encode what every view shares (see [`replication`]).
    fn prepare_states(&mut self) {}

    /// Appends the player's state to `out`, in the game's encoding. Called
    /// for every connected player each tick the room sends states; must
    /// cost about the size of the player's view, not the size of the game.
    fn state(&mut self, player: PlayerId, out: &mut Vec<u8>);

    /// The room is closing; release anything held outside the game.
    fn end(&mut self) {}
}

/// The options a room was created with, as the client sent them: key/value
/// pairs with unique keys (the protocol bounds their number and size).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RoomOptions(Vec<(String, String)>);

impl RoomOptions {
    /// Options from pairs; the protocol has checked keys are unique.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The value of `key`, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` parsed as `T`, or `default` when not given; the
    /// error names the key and the value.
    pub fn parse_or<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("option {key}={v:?} is not a valid value")),
        }
    }

    /// Refuses any key not in `known`, so that a typo is an error instead
    /// of a silently different room.
    pub fn only(&self, known: &[&str]) -> Result<(), String> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some((k, _)) if known.is_empty() => {
                Err(format!("unknown option {k:?}: this game takes none"))
            }
            Some((k, _)) => Err(format!("unknown option {k:?}; known: {}", known.join(", "))),
        }
    }

    /// Every pair, in the order given.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> RoomOptions {
        RoomOptions::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        )
    }

    #[test]
    fn options_parse_with_defaults_and_refuse_unknown_keys() {
        let o = options(&[("speed", "480"), ("mode", "ffa")]);
        assert_eq!(o.get("mode"), Some("ffa"));
        assert_eq!(o.get("map"), None);
        assert_eq!(o.parse_or("speed", 240u32), Ok(480));
        assert_eq!(o.parse_or("rounds", 60u32), Ok(60));
        let err = o.parse_or::<u8>("speed", 1).unwrap_err();
        assert!(err.contains("speed") && err.contains("480"), "{err}");
        assert_eq!(o.only(&["speed", "mode"]), Ok(()));
        assert!(o.only(&["speed"]).unwrap_err().contains("\"mode\""));
        assert!(o.only(&[]).unwrap_err().contains("takes none"));
        assert_eq!(options(&[]).only(&[]), Ok(()));
    }
}

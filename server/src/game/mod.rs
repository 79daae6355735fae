//! Game rules, behind the [`Game`] trait.
//!
//! The room machinery (`crate::room`) drives a `Game` through a lifecycle
//! modelled on Nakama's match handler and Colyseus's room: players join,
//! drop and reconnect, leave; the world advances one fixed step per tick with
//! the inputs queued since the last one; each player gets a view; the game
//! ends when its room closes. The game never sees a socket, a channel or a
//! clock, which keeps it deterministic and unit-testable; the network layer
//! never learns what a pickup is.
//!
//! A game also saves itself as bytes ([`Game::save`]) and is rebuilt from
//! them ([`GameFactory::restore`]), which is how a planned restart carries
//! every room's world over to the next process (see `crate::state`). What
//! the bytes hold is the game's business; the room stores them opaquely.
//!
//! [`arena`] is the built-in game; [`grid`] is the spatial index it uses for
//! interest management.

pub mod arena;
pub mod grid;

use protocol::{Entity, Input};

/// Identifies a player for the whole life of its session, across resumes.
pub type PlayerId = u32;

/// The rules of one room's world. Only the room task calls these methods,
/// so an implementation needs no locking.
///
/// Calls that name a player the world does not hold (or, for `join`, one it
/// already holds, or `reconnect` on a player that is not dropped) must do
/// nothing: the room may race a leave against a late message. The room owns
/// the tick counter; a game needs none unless its rules do.
pub trait Game: Send + 'static {
    /// A new player enters the world.
    fn join(&mut self, player: PlayerId);

    /// The player's connection dropped without a clean leave. Its state stays
    /// in the world, frozen, until [`Game::reconnect`] or [`Game::leave`].
    fn drop_player(&mut self, player: PlayerId);

    /// A dropped player resumed its session.
    fn reconnect(&mut self, player: PlayerId);

    /// The player is gone for good (clean leave, or its grace period ended).
    fn leave(&mut self, player: PlayerId);

    /// Advances the world by one fixed step, applying `inputs` (those that
    /// arrived since the previous step, in arrival order). Inputs of players
    /// that are not in the world, or are dropped, must be ignored.
    fn step(&mut self, inputs: &[(PlayerId, Input)]);

    /// Every entity of the world as of the last call that changed it (a step,
    /// join, leave, drop or reconnect), in wire form. The room encodes each
    /// of them once per tick and shares the bytes among all the views that
    /// contain it.
    fn entities(&self) -> &[Entity];

    /// Appends to `out` the indices into [`Game::entities`] of what `player`
    /// sees, its own entity included. The indices are valid until the next
    /// call that changes the world. Must cost about the size of the view,
    /// not the size of the world.
    fn view(&self, player: PlayerId, out: &mut Vec<u32>);

    /// The player's own entity, if it is in the world.
    fn player(&self, player: PlayerId) -> Option<Entity>;

    /// The room is closing; release anything held outside the world.
    fn end(&mut self) {}

    /// Everything that makes this world what it is, as bytes from which
    /// [`GameFactory::restore`] rebuilds a world that continues exactly as
    /// this one would: given the same calls afterwards, both produce the
    /// same [`Game::entities`]. Called once, when the room stops for a
    /// planned restart.
    fn save(&self) -> Vec<u8>;
}

/// Makes the game of each room: a fresh world for a new room, or a saved
/// one for a room carried over a restart.
pub trait GameFactory: Send + Sync + 'static {
    /// A fresh world. `room_seed` is derived from the server's seed and the
    /// room id, so a server started with the same seed replays the same
    /// worlds for the same inputs.
    fn create(&self, room_seed: u64) -> Box<dyn Game>;

    /// Rebuilds a world from the bytes of [`Game::save`]; `room_seed` is
    /// the seed the saved world was created with. The bytes come from a file
    /// and are input like any other: bytes that do not describe a world
    /// this factory can continue (corrupt, from another version, or not
    /// fitting its configuration) must give an error, never a panic.
    fn restore(&self, room_seed: u64, saved: &[u8]) -> Result<Box<dyn Game>, String>;
}

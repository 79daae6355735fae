//! Bots: simulated players that `loadgen` drives, one per connection, each
//! living with its game.
//!
//! A bot is as I/O-free as a game: `loadgen` owns the socket, the schedule
//! and the reconnects, and hands the bot what arrived (the game's part of
//! `Welcome`, states, events) and asks it, on the input schedule, what to
//! send. A bot decodes with the game's own codec, so a run checks the
//! game's bytes as well as the server's.

use crate::PlayerId;

/// A simulated player of one game.
pub trait Bot: Send {
    /// A session opened (new, or resumed); `data` is the game's part of the
    /// `Welcome`. An error is counted and ends the connection.
    fn welcome(&mut self, player: PlayerId, resumed: bool, data: &[u8]) -> Result<(), String>;

    /// A state arrived.
    fn state(&mut self, tick: u32, data: &[u8]) -> Result<(), String>;

    /// An event arrived (the client has checked its sequence number).
    fn event(&mut self, data: &[u8]) -> Result<(), String>;

    /// The input schedule fired: the game message to send now, if any.
    /// `random` is a fresh random number for the bot's choices.
    fn act(&mut self, random: u64) -> Option<Vec<u8>>;

    /// A number the player's session must never lose across a resume (the
    /// arena's score): `loadgen` compares it before a drop and after the
    /// resume. `None` when the game has no such number, or none is known
    /// yet on this connection.
    fn progress(&self) -> Option<u64> {
        None
    }

    /// Whether the bot sends a steady stream (a message nearly every time
    /// it is asked, such as the direction it moves in), which `loadgen`
    /// may write several at a time when the server sends states less
    /// often than the bot acts (`--input-batching per-state`). False, the
    /// default, for a bot that acts on its turn or on an event: each of its
    /// messages is written when due, since holding a move back would only
    /// slow the game down.
    fn streams(&self) -> bool {
        false
    }
}

/// How `loadgen` plays a game: the room type to quick-join, with what
/// options, and how to make a bot.
#[derive(Clone, Copy)]
pub struct BotSpec {
    /// The name `--game` selects, and the room type quick-joined.
    pub room_type: &'static str,
    /// Options of the quick join.
    pub options: &'static [(&'static str, &'static str)],
    /// A new bot, from a seed for its choices.
    pub make: fn(seed: u64) -> Box<dyn Bot>,
}

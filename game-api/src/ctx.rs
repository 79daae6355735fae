//! The room context: how a game acts on its room and its players.
//!
//! A game never holds a connection, a channel or the room. Each call the
//! room makes on a game comes with a [`Ctx`], and what the game does
//! through it (send an event, kick a player, change the room's metadata,
//! lock, privacy or capacity, end the room) is recorded as [`Effects`],
//! which the room applies when the call returns. So a game stays
//! deterministic and testable without a server: a test makes an `Effects`,
//! calls the game, and looks at what it asked for.

use crate::PlayerId;
use bytes::Bytes;
use serde::Serialize;
use std::collections::BTreeMap;
use std::marker::PhantomData;

/// A room's metadata: shown with the room in the public room list
/// (`GET /rooms`), never to be trusted with secrets.
pub type Metadata = BTreeMap<String, String>;

/// Largest metadata, in bytes of keys and values together: like Nakama's
/// 2 KB match label, enough to describe a room, too little to abuse the
/// room list as a data channel.
pub const MAX_METADATA_BYTES: usize = 2048;

/// Most metadata entries.
pub const MAX_METADATA_ENTRIES: usize = 32;

/// Largest event, encoded. Events queue per player until acknowledged,
/// so their size bounds memory; a larger one is a bug in the game, and is
/// dropped (counted in [`Effects::oversized_events`]) rather than sent.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// Who receives an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// One player.
    Player(PlayerId),
    /// Every player in the room, dropped ones included (they get it when
    /// they resume).
    All,
    /// Every player but one.
    AllExcept(PlayerId),
}

/// What a game asked of its room during one call, in the order asked.
#[derive(Debug, Default)]
pub struct Effects {
    /// The room's tick when the call was made (set by the room).
    pub tick: u32,
    /// The room's ticks per second (set by the room).
    pub tick_hz: u16,
    /// Events to deliver, each encoded once and shared among its targets.
    pub events: Vec<(Target, Bytes)>,
    /// Players to remove, with the reason their connection is closed with.
    pub kicks: Vec<(PlayerId, String)>,
    /// New metadata for the room, replacing the old.
    pub metadata: Option<Metadata>,
    /// Lock (`true`) or unlock the room: a locked room takes no new players.
    pub locked: Option<bool>,
    /// Make the room private (`true`) or public.
    pub private: Option<bool>,
    /// A new player capacity for the room.
    pub capacity: Option<u16>,
    /// End the room, closing every player's connection with this reason.
    pub end: Option<String>,
    /// Events dropped for being larger than [`MAX_EVENT_BYTES`].
    pub oversized_events: u32,
}

impl Effects {
    /// Effects for a call made at `tick` in a room of `tick_hz`.
    pub fn new(tick: u32, tick_hz: u16) -> Self {
        Self {
            tick,
            tick_hz,
            ..Self::default()
        }
    }

    /// Sets the tick of the next call, keeping what earlier calls asked for
    /// and has not been applied yet.
    pub fn at(&mut self, tick: u32) -> &mut Self {
        self.tick = tick;
        self
    }

    /// True when the game asked for nothing.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.kicks.is_empty()
            && self.metadata.is_none()
            && self.locked.is_none()
            && self.private.is_none()
            && self.capacity.is_none()
            && self.end.is_none()
            && self.oversized_events == 0
    }
}

/// The room, as a game of event type `E` sees it during one call.
pub struct Ctx<'a, E> {
    /// Where requests are recorded.
    fx: &'a mut Effects,
    /// The game's event type, for typed sends.
    event: PhantomData<fn(&E)>,
}

impl<'a, E: Serialize> Ctx<'a, E> {
    /// A context recording into `fx`.
    pub fn new(fx: &'a mut Effects) -> Self {
        Self {
            fx,
            event: PhantomData,
        }
    }

    /// The room's tick: the number of the step being run (or of the last
    /// one, outside `step`). A game's clock.
    pub fn tick(&self) -> u32 {
        self.fx.tick
    }

    /// Ticks per second, to turn durations into tick counts.
    pub fn tick_hz(&self) -> u16 {
        self.fx.tick_hz
    }

    /// Sends `event` to one player, reliably and in order (a dropped player
    /// gets it when it resumes).
    pub fn send(&mut self, player: PlayerId, event: &E) {
        self.push(Target::Player(player), event);
    }

    /// Sends `event` to every player in the room, encoded once.
    pub fn broadcast(&mut self, event: &E) {
        self.push(Target::All, event);
    }

    /// Sends `event` to every player but `player`.
    pub fn broadcast_except(&mut self, player: PlayerId, event: &E) {
        self.push(Target::AllExcept(player), event);
    }

    fn push(&mut self, target: Target, event: &E) {
        let mut bytes = Vec::new();
        protocol::encode_value(event, &mut bytes);
        if bytes.len() > MAX_EVENT_BYTES {
            self.fx.oversized_events += 1;
            return;
        }
        self.fx.events.push((target, Bytes::from(bytes)));
    }

    /// Removes `player` from the room: the game's [`crate::Game::leave`] is
    /// called for it, and its connection is closed with 4015 and `reason`
    /// (kept under 120 bytes by the server).
    pub fn kick(&mut self, player: PlayerId, reason: impl Into<String>) {
        self.fx.kicks.push((player, reason.into()));
    }

    /// Replaces the room's metadata, shown in the public room list. Refused
    /// (nothing changes) past [`MAX_METADATA_ENTRIES`] entries or
    /// [`MAX_METADATA_BYTES`] bytes.
    pub fn set_metadata(&mut self, metadata: Metadata) -> Result<(), String> {
        let bytes: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if metadata.len() > MAX_METADATA_ENTRIES || bytes > MAX_METADATA_BYTES {
            return Err(format!(
                "metadata of {} entries and {bytes} bytes exceeds {MAX_METADATA_ENTRIES} entries or {MAX_METADATA_BYTES} bytes",
                metadata.len()
            ));
        }
        self.fx.metadata = Some(metadata);
        Ok(())
    }

    /// Locks the room: quick join skips it, joins by id or code are refused
    /// with 4011; its players may still resume.
    pub fn lock(&mut self) {
        self.fx.locked = Some(true);
    }

    /// Unlocks the room.
    pub fn unlock(&mut self) {
        self.fx.locked = Some(false);
    }

    /// Makes the room private (reached only by its invite code, which it
    /// gets if it had none) or public (listed, and open to quick join).
    pub fn set_private(&mut self, private: bool) {
        self.fx.private = Some(private);
    }

    /// Changes how many players the room seats (at least 1). Players already
    /// in a room above the new capacity stay.
    pub fn set_capacity(&mut self, capacity: u16) {
        self.fx.capacity = Some(capacity.max(1));
    }

    /// Ends the room: every player's connection is closed with 4016 and
    /// `reason`, and the room closes.
    pub fn end(&mut self, reason: impl Into<String>) {
        self.fx.end = Some(reason.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_recorded_in_order_and_events_encoded_once() {
        let mut fx = Effects::new(42, 30);
        let mut ctx = Ctx::<(u8, String)>::new(&mut fx);
        assert_eq!((ctx.tick(), ctx.tick_hz()), (42, 30));
        ctx.send(7, &(1, "to seven".into()));
        ctx.broadcast(&(2, "all".into()));
        ctx.broadcast_except(7, &(3, "not seven".into()));
        ctx.kick(9, "cheating");
        ctx.lock();
        ctx.set_private(true);
        ctx.set_capacity(0);
        ctx.end("match over");
        let mut meta = Metadata::new();
        meta.insert("map".into(), "forest".into());
        assert_eq!(ctx.set_metadata(meta.clone()), Ok(()));
        assert_eq!(fx.events.len(), 3);
        assert_eq!(fx.events[0].0, Target::Player(7));
        assert_eq!(fx.events[2].0, Target::AllExcept(7));
        let (first, _): ((u8, String), _) = (
            protocol::decode_value::<_, 64>(&fx.events[0].1).unwrap(),
            (),
        );
        assert_eq!(first, (1, "to seven".to_owned()));
        assert_eq!(fx.kicks, vec![(9, "cheating".to_owned())]);
        assert_eq!(
            (fx.locked, fx.private, fx.capacity),
            (Some(true), Some(true), Some(1))
        );
        assert_eq!(fx.end.as_deref(), Some("match over"));
        assert_eq!(fx.metadata, Some(meta));
        assert!(!fx.is_empty());
        assert!(Effects::new(0, 30).is_empty());
    }

    #[test]
    fn oversized_metadata_and_events_are_refused() {
        let mut fx = Effects::new(0, 30);
        let mut ctx = Ctx::<Vec<u8>>::new(&mut fx);
        let mut big = Metadata::new();
        big.insert("k".into(), "v".repeat(MAX_METADATA_BYTES));
        assert!(ctx.set_metadata(big).is_err());
        let many: Metadata = (0..=MAX_METADATA_ENTRIES)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        assert!(ctx.set_metadata(many).is_err());
        ctx.broadcast(&vec![0; MAX_EVENT_BYTES + 1]);
        assert_eq!(fx.metadata, None);
        assert!(fx.events.is_empty());
        assert_eq!(fx.oversized_events, 1);
    }
}

//! Registering a game as a room type, and the type-erased game the server
//! drives.
//!
//! [`RoomType::new`] takes a [`Game`] type and its configuration and gives
//! a value the server registers under a name; from then on the server
//! makes each room's game through it ([`RoomType::create`],
//! [`RoomType::restore`]) and calls it only through [`DynGame`], so the
//! server never learns a game's message, event or state types.
//!
//! A game's incoming messages are decoded by the connection that received
//! them, not by the room: each room has an [`Inbox`] that connections push
//! raw bytes into ([`Inbox::push`] decodes them as the game's message type
//! and queues the typed value), and the room takes the queue whole at the
//! start of each tick. Decoding stays off the room's tick (spread over the
//! connections' threads), a message that does not decode is refused at
//! once with its connection's close, and no allocation is made per message.

use crate::ctx::{Ctx, Effects};
use crate::{Game, PlayerId, RoomOptions};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One file of a game's web page, embedded in the binary.
#[derive(Clone, Copy, Debug)]
pub struct WebAsset {
    /// The request path that serves it, e.g. `/arena/game.js`.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

impl WebAsset {
    /// An HTML page.
    pub const fn html(path: &'static str, body: &'static [u8]) -> Self {
        Self {
            path,
            content_type: "text/html; charset=utf-8",
            body,
        }
    }

    /// A JavaScript module. Browsers refuse to run a module served with
    /// another content type, so this one matters.
    pub const fn js(path: &'static str, body: &'static [u8]) -> Self {
        Self {
            path,
            content_type: "text/javascript; charset=utf-8",
            body,
        }
    }

    /// A style sheet.
    pub const fn css(path: &'static str, body: &'static [u8]) -> Self {
        Self {
            path,
            content_type: "text/css; charset=utf-8",
            body,
        }
    }
}

/// How the server runs the rooms of a type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomSettings {
    /// Players a new room seats (the game may change it per room).
    pub capacity: u16,
    /// Simulation steps per second; `None` takes the server's default
    /// (`--tick-hz`).
    pub tick_hz: Option<u16>,
    /// How long a room stays open once empty, waiting for someone to join
    /// (a private room whose host reloads the page, say). Zero closes an
    /// empty room at once.
    pub linger: Duration,
    /// Option keys a quick join must match: a quick join goes only to
    /// rooms created with the same values for these keys (a key missing on
    /// both sides matches), like Colyseus' `filterBy`.
    pub filter_by: Vec<String>,
    /// Send a player's state only when its bytes or its ack changed since
    /// the last one sent (for turn-based games whose state rarely moves);
    /// otherwise every tick.
    pub skip_unchanged_states: bool,
    /// Whether a live room of this type may be watched by spectators (who
    /// are not players: they take no seat and send the game nothing); off
    /// unless the type allows it, since a game's states may show what its
    /// players should not see of each other.
    pub spectators: bool,
}

impl Default for RoomSettings {
    fn default() -> Self {
        Self {
            capacity: 100,
            tick_hz: None,
            linger: Duration::ZERO,
            filter_by: Vec::new(),
            skip_unchanged_states: false,
            spectators: false,
        }
    }
}

/// A game registered under a name, with its settings and web page.
#[derive(Clone)]
pub struct RoomType {
    /// The name clients ask for (`[a-z0-9_-]`, at most 32 bytes).
    name: String,
    /// How rooms of this type run.
    settings: RoomSettings,
    /// Where the game's page is served (e.g. `/arena/`), if it has one.
    page: Option<&'static str>,
    /// The page's files.
    assets: &'static [WebAsset],
    /// Makes the games.
    factory: Arc<dyn Factory>,
}

impl std::fmt::Debug for RoomType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomType")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("page", &self.page)
            .finish_non_exhaustive()
    }
}

impl RoomType {
    /// The game `G`, configured with `config`, under `name`, with default
    /// settings (100 seats, the server's tick rate, no linger).
    ///
    /// # Panics
    ///
    /// If `name` is not 1 to 32 characters of `a-z`, `0-9`, `_` and `-`:
    /// registration is code, and a name clients could never ask for is a
    /// bug to find at start-up.
    pub fn new<G: Game>(name: &str, config: G::Config) -> Self {
        assert!(
            protocol::limits::is_name(name, protocol::limits::MAX_ROOM_TYPE_BYTES),
            "room type name {name:?} must be 1 to {} characters of a-z, 0-9, _ and -",
            protocol::limits::MAX_ROOM_TYPE_BYTES
        );
        Self {
            name: name.to_owned(),
            settings: RoomSettings::default(),
            page: None,
            assets: &[],
            factory: Arc::new(Typed::<G> { config }),
        }
    }

    /// Seats per new room (at least 1).
    pub fn capacity(mut self, capacity: u16) -> Self {
        self.settings.capacity = capacity.max(1);
        self
    }

    /// The rooms' own tick rate (1 to 240 Hz) instead of the server's.
    pub fn tick_hz(mut self, hz: u16) -> Self {
        self.settings.tick_hz = Some(hz.clamp(1, 240));
        self
    }

    /// How long an empty room stays open.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.settings.linger = linger;
        self
    }

    /// Option keys quick join must match.
    pub fn filter_by(mut self, keys: &[&str]) -> Self {
        self.settings.filter_by = keys.iter().map(|k| (*k).to_owned()).collect();
        self
    }

    /// Sends states only when they change (see [`RoomSettings`]).
    pub fn skip_unchanged_states(mut self) -> Self {
        self.settings.skip_unchanged_states = true;
        self
    }

    /// Lets spectators watch live rooms of this type (public rooms only),
    /// each following a player and seeing what that player sees.
    pub fn spectators(mut self) -> Self {
        self.settings.spectators = true;
        self
    }

    /// The game's page: served at `page` (a path ending in `/`), made of
    /// `assets` (whose paths start with `page`).
    pub fn page(mut self, page: &'static str, assets: &'static [WebAsset]) -> Self {
        self.page = Some(page);
        self.assets = assets;
        self
    }

    /// Replaces the settings whole (for a server that reads them from its
    /// command line).
    pub fn with_settings(mut self, settings: RoomSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The type's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How rooms of this type run.
    pub fn settings(&self) -> &RoomSettings {
        &self.settings
    }

    /// Where the game's page is served, if it has one.
    pub fn page_path(&self) -> Option<&'static str> {
        self.page
    }

    /// The page's files.
    pub fn assets(&self) -> &'static [WebAsset] {
        self.assets
    }

    /// A fresh game for a room created with `options`; its inbox holds at
    /// most `inbox_capacity` messages between two ticks.
    pub fn create(
        &self,
        options: &RoomOptions,
        seed: u64,
        inbox_capacity: usize,
    ) -> Result<Box<dyn DynGame>, String> {
        self.factory.create(options, seed, inbox_capacity)
    }

    /// A game rebuilt from the bytes of its `save`.
    pub fn restore(
        &self,
        options: &RoomOptions,
        saved: &[u8],
        inbox_capacity: usize,
    ) -> Result<Box<dyn DynGame>, String> {
        self.factory.restore(options, saved, inbox_capacity)
    }

    /// The type's game configuration (its `Game::Config`), encoded: what a
    /// room's recording keeps so that a replay makes the same game.
    pub fn config_bytes(&self) -> Vec<u8> {
        self.factory.config_bytes()
    }

    /// This room type with the game configuration `bytes` (from
    /// [`RoomType::config_bytes`], of this same game) instead of its own;
    /// an error if they are not this game's configuration.
    pub fn with_config_bytes(&self, bytes: &[u8]) -> Result<RoomType, String> {
        Ok(Self {
            factory: self.factory.with_config_bytes(bytes)?,
            ..self.clone()
        })
    }
}

/// Makes the games of one room type.
trait Factory: Send + Sync {
    fn create(
        &self,
        options: &RoomOptions,
        seed: u64,
        inbox_capacity: usize,
    ) -> Result<Box<dyn DynGame>, String>;
    fn restore(
        &self,
        options: &RoomOptions,
        saved: &[u8],
        inbox_capacity: usize,
    ) -> Result<Box<dyn DynGame>, String>;
    fn config_bytes(&self) -> Vec<u8>;
    fn with_config_bytes(&self, bytes: &[u8]) -> Result<Arc<dyn Factory>, String>;
}

/// The factory of game `G`.
struct Typed<G: Game> {
    /// The configuration every room of the type is made with.
    config: G::Config,
}

impl<G: Game> Factory for Typed<G> {
    fn create(
        &self,
        options: &RoomOptions,
        seed: u64,
        inbox_capacity: usize,
    ) -> Result<Box<dyn DynGame>, String> {
        let game = G::create(&self.config, options, seed)?;
        Ok(Box::new(Erased::new(game, inbox_capacity)))
    }

    fn restore(
        &self,
        options: &RoomOptions,
        saved: &[u8],
        inbox_capacity: usize,
    ) -> Result<Box<dyn DynGame>, String> {
        let game = G::restore(&self.config, options, saved)?;
        Ok(Box::new(Erased::new(game, inbox_capacity)))
    }

    fn config_bytes(&self) -> Vec<u8> {
        crate::codec::to_vec(&self.config)
    }

    fn with_config_bytes(&self, bytes: &[u8]) -> Result<Arc<dyn Factory>, String> {
        let config = crate::codec::decode_limited::<G::Config, MAX_CONFIG_BYTES>(bytes)
            .map_err(|e| format!("not this game's configuration: {e}"))?;
        Ok(Arc::new(Typed::<G> { config }))
    }
}

/// Largest encoded game configuration [`RoomType::with_config_bytes`]
/// decodes: configurations are a few numbers and names.
const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// Who sent a message: the player, and the connection it came on (the
/// server's number for it), so that a room can drop messages from a
/// connection that a resume has since replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sender {
    /// The player.
    pub player: PlayerId,
    /// The connection.
    pub conn: u64,
}

/// Why [`Inbox::push`] refused a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxError {
    /// The bytes are not one of the game's messages; the sender broke the
    /// protocol.
    Malformed(String),
    /// The inbox holds its capacity until the next tick: the message is
    /// dropped (a room that far behind is overloaded, not the sender's
    /// fault).
    Full,
}

/// A room's incoming game messages, decoded, waiting for its next tick.
/// Shared by the room and every connection of its players.
pub trait Inbox: Send + Sync {
    /// Decodes `bytes` as the game's message and queues it with its
    /// sender and sequence number.
    fn push(&self, from: Sender, seq: u32, bytes: &[u8]) -> Result<(), InboxError>;
}

/// The inbox of a game whose messages are `M`.
struct TypedInbox<M> {
    /// Messages in arrival order. The lock is held to push one message, or
    /// to swap the whole queue out at a tick.
    queue: Mutex<Queue<M>>,
    /// Most messages held between two ticks.
    capacity: usize,
    /// Whether each message's bytes are kept beside it (for a recording).
    keep_bytes: AtomicBool,
}

/// Messages between two ticks.
struct Queue<M> {
    /// Each message with its sender and sequence number.
    items: Vec<(Sender, u32, M)>,
    /// With `keep_bytes`, the messages' bytes as they arrived, back to
    /// back: message `i` ends at `ends[i]`.
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl<M> Default for Queue<M> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            bytes: Vec::new(),
            ends: Vec::new(),
        }
    }
}

impl<M: serde::de::DeserializeOwned + Send> Inbox for TypedInbox<M> {
    fn push(&self, from: Sender, seq: u32, bytes: &[u8]) -> Result<(), InboxError> {
        let msg = crate::codec::decode_message::<M>(bytes)
            .map_err(|e| InboxError::Malformed(e.to_string()))?;
        let keep = self.keep_bytes.load(Relaxed);
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.items.len() >= self.capacity {
            return Err(InboxError::Full);
        }
        queue.items.push((from, seq, msg));
        if keep {
            queue.bytes.extend_from_slice(bytes);
            let end = queue.bytes.len();
            queue.ends.push(end);
        }
        Ok(())
    }
}

/// A game as the server drives it: every [`Game`] call with the types
/// erased. Implemented for every game by [`RoomType`]; a server never
/// implements it itself.
pub trait DynGame: Send {
    /// Where connections push this room's messages.
    fn inbox(&self) -> Arc<dyn Inbox>;
    /// [`Game::join_attempt`].
    fn join_attempt(&mut self, player: PlayerId, fx: &mut Effects) -> Result<(), String>;
    /// [`Game::join`].
    fn join(&mut self, player: PlayerId, fx: &mut Effects);
    /// [`Game::drop_player`].
    fn drop_player(&mut self, player: PlayerId, fx: &mut Effects);
    /// [`Game::resume`].
    fn resume(&mut self, player: PlayerId, fx: &mut Effects);
    /// [`Game::leave`].
    fn leave(&mut self, player: PlayerId, fx: &mut Effects);
    /// Has the inbox keep every message's bytes from now on, for
    /// [`DynGame::take_messages`] to show (a room being recorded).
    fn keep_message_bytes(&self);
    /// Takes every queued message, in arrival order, for the next
    /// [`DynGame::step`]; `accept` is asked about each (its sender,
    /// sequence number, and its bytes as they arrived if
    /// [`DynGame::keep_message_bytes`] was called, empty otherwise) and
    /// says whether the game may see it.
    fn take_messages(&mut self, accept: &mut dyn FnMut(Sender, u32, &[u8]) -> bool);
    /// [`Game::step`] with the messages taken since the last step.
    fn step(&mut self, fx: &mut Effects);
    /// [`Game::welcome`].
    fn welcome(&self, player: PlayerId, out: &mut Vec<u8>);
    /// [`Game::prepare_states`].
    fn prepare_states(&mut self);
    /// [`Game::state`].
    fn state(&mut self, player: PlayerId, out: &mut Vec<u8>);
    /// [`Game::save`].
    fn save(&self) -> Vec<u8>;
    /// [`Game::end`].
    fn end(&mut self);
}

/// A game with its inbox and message buffers.
struct Erased<G: Game> {
    game: G,
    inbox: Arc<TypedInbox<G::Message>>,
    /// The queue swapped out of the inbox at a tick (its buffers return to
    /// the inbox at the next swap, so neither side allocates in steady
    /// state).
    taken: Queue<G::Message>,
    /// The accepted messages of the next step.
    batch: Vec<(PlayerId, G::Message)>,
}

impl<G: Game> Erased<G> {
    fn new(game: G, capacity: usize) -> Self {
        Self {
            game,
            inbox: Arc::new(TypedInbox {
                queue: Mutex::new(Queue::default()),
                capacity,
                keep_bytes: AtomicBool::new(false),
            }),
            taken: Queue::default(),
            batch: Vec::new(),
        }
    }
}

impl<G: Game> DynGame for Erased<G> {
    fn inbox(&self) -> Arc<dyn Inbox> {
        self.inbox.clone()
    }

    fn join_attempt(&mut self, player: PlayerId, fx: &mut Effects) -> Result<(), String> {
        self.game.join_attempt(player, &mut Ctx::new(fx))
    }

    fn join(&mut self, player: PlayerId, fx: &mut Effects) {
        self.game.join(player, &mut Ctx::new(fx));
    }

    fn drop_player(&mut self, player: PlayerId, fx: &mut Effects) {
        self.game.drop_player(player, &mut Ctx::new(fx));
    }

    fn resume(&mut self, player: PlayerId, fx: &mut Effects) {
        self.game.resume(player, &mut Ctx::new(fx));
    }

    fn leave(&mut self, player: PlayerId, fx: &mut Effects) {
        self.game.leave(player, &mut Ctx::new(fx));
    }

    fn keep_message_bytes(&self) {
        self.inbox.keep_bytes.store(true, Relaxed);
    }

    fn take_messages(&mut self, accept: &mut dyn FnMut(Sender, u32, &[u8]) -> bool) {
        {
            let mut queue = self.inbox.queue.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut *queue, &mut self.taken);
        }
        let Queue { items, bytes, ends } = &mut self.taken;
        // Bytes are shown only if kept for the whole batch (the switch is
        // made before a room's first message; a batch that straddled it
        // shows none rather than misplaced ones).
        let kept = ends.len() == items.len();
        let mut start = 0;
        for (i, (from, seq, msg)) in items.drain(..).enumerate() {
            let data = match ends.get(i) {
                Some(&end) if kept => &bytes[start..end],
                _ => &[],
            };
            if kept {
                start = ends[i];
            }
            if accept(from, seq, data) {
                self.batch.push((from.player, msg));
            }
        }
        bytes.clear();
        ends.clear();
    }

    fn step(&mut self, fx: &mut Effects) {
        self.game.step(&self.batch, &mut Ctx::new(fx));
        self.batch.clear();
    }

    fn welcome(&self, player: PlayerId, out: &mut Vec<u8>) {
        self.game.welcome(player, out);
    }

    fn prepare_states(&mut self) {
        self.game.prepare_states();
    }

    fn state(&mut self, player: PlayerId, out: &mut Vec<u8>) {
        self.game.state(player, out);
    }

    fn save(&self) -> Vec<u8> {
        self.game.save()
    }

    fn end(&mut self) {
        self.game.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    /// A counter game: each message adds its value to the sender's total;
    /// the state is the sender's total; joins over 3 are refused.
    struct Counter {
        totals: Vec<(PlayerId, u32)>,
        seen: Vec<Vec<(PlayerId, u32)>>,
    }

    #[derive(Serialize, Deserialize)]
    struct Add(u32);

    impl Game for Counter {
        type Config = u32;
        type Message = Add;
        type Event = String;

        fn create(start: &u32, options: &RoomOptions, _seed: u64) -> Result<Self, String> {
            options.only(&[])?;
            Ok(Self {
                totals: vec![(0, *start)],
                seen: Vec::new(),
            })
        }
        fn restore(_: &u32, _: &RoomOptions, _: &[u8]) -> Result<Self, String> {
            Err("not saved".into())
        }
        fn save(&self) -> Vec<u8> {
            Vec::new()
        }
        fn join_attempt(&mut self, _: PlayerId, _: &mut Ctx<'_, String>) -> Result<(), String> {
            if self.totals.len() > 3 {
                return Err("three is company".into());
            }
            Ok(())
        }
        fn join(&mut self, player: PlayerId, ctx: &mut Ctx<'_, String>) {
            self.totals.push((player, 0));
            ctx.broadcast(&format!("{player} joined"));
        }
        fn leave(&mut self, player: PlayerId, _: &mut Ctx<'_, String>) {
            self.totals.retain(|(p, _)| *p != player);
        }
        fn step(&mut self, messages: &[(PlayerId, Add)], _: &mut Ctx<'_, String>) {
            self.seen
                .push(messages.iter().map(|(p, Add(n))| (*p, *n)).collect());
            for (p, Add(n)) in messages {
                if let Some(t) = self.totals.iter_mut().find(|(q, _)| q == p) {
                    t.1 += n;
                }
            }
        }
        fn state(&mut self, player: PlayerId, out: &mut Vec<u8>) {
            let total = self
                .totals
                .iter()
                .find(|(p, _)| *p == player)
                .map_or(0, |t| t.1);
            crate::codec::encode(&total, out);
        }
    }

    fn add(n: u32) -> Vec<u8> {
        let mut out = Vec::new();
        crate::codec::encode(&Add(n), &mut out);
        out
    }

    #[test]
    fn a_registered_game_runs_through_the_erased_interface() {
        let kind = RoomType::new::<Counter>("counter", 5)
            .capacity(0)
            .tick_hz(500);
        assert_eq!(kind.name(), "counter");
        assert_eq!(kind.settings().capacity, 1, "at least one seat");
        assert_eq!(kind.settings().tick_hz, Some(240), "clamped");
        let refused = kind.create(&RoomOptions::new(vec![("x".into(), "1".into())]), 1, 8);
        assert!(refused.err().unwrap().contains("unknown option"));
        let mut game = kind.create(&RoomOptions::default(), 1, 3).unwrap();
        let mut fx = Effects::new(0, 30);
        for p in [1, 2, 3] {
            assert_eq!(game.join_attempt(p, &mut fx), Ok(()));
            game.join(p, &mut fx);
        }
        assert_eq!(fx.events.len(), 3);
        assert_eq!(
            game.join_attempt(4, &mut fx),
            Err("three is company".to_owned())
        );

        let inbox = game.inbox();
        let from = |player, conn| Sender { player, conn };
        assert_eq!(inbox.push(from(1, 10), 1, &add(5)), Ok(()));
        assert_eq!(inbox.push(from(2, 20), 1, &add(7)), Ok(()));
        assert_eq!(inbox.push(from(2, 99), 2, &add(100)), Ok(()));
        assert_eq!(inbox.push(from(3, 30), 1, &add(1)), Err(InboxError::Full));
        assert!(matches!(
            inbox.push(from(3, 30), 1, &[0xff]),
            Err(InboxError::Malformed(_))
        ));
        // The room drops the message of a replaced connection (conn 99).
        let mut asked = Vec::new();
        game.take_messages(&mut |s, seq, bytes| {
            assert!(bytes.is_empty(), "bytes are kept only when asked");
            asked.push((s.player, seq));
            s.conn != 99
        });
        assert_eq!(asked, vec![(1, 1), (2, 1), (2, 2)]);
        game.step(&mut fx);
        game.step(&mut fx);
        let mut out = Vec::new();
        game.state(2, &mut out);
        assert_eq!(crate::codec::decode::<u32>(&out), Ok(7));
        // The inbox takes messages again after the swap.
        assert_eq!(inbox.push(from(3, 30), 2, &add(1)), Ok(()));
    }

    #[test]
    fn kept_bytes_come_with_their_messages_and_configs_travel_as_bytes() {
        let kind = RoomType::new::<Counter>("counter", 5);
        let mut game = kind.create(&RoomOptions::default(), 1, 8).unwrap();
        game.keep_message_bytes();
        let inbox = game.inbox();
        let from = |player| Sender { player, conn: 1 };
        for (player, n) in [(1, 5), (2, 300), (1, 70_000)] {
            assert_eq!(inbox.push(from(player), n, &add(n)), Ok(()));
        }
        let mut seen = Vec::new();
        game.take_messages(&mut |s, seq, bytes| {
            seen.push((s.player, seq, bytes.to_vec()));
            true
        });
        let expected: Vec<_> = [(1, 5), (2, 300), (1, 70_000)]
            .into_iter()
            .map(|(p, n)| (p, n, add(n)))
            .collect();
        assert_eq!(seen, expected);
        // The buffers are reused: the next batch shows only its own bytes.
        assert_eq!(inbox.push(from(2), 9, &add(9)), Ok(()));
        seen.clear();
        game.take_messages(&mut |s, seq, bytes| {
            seen.push((s.player, seq, bytes.to_vec()));
            true
        });
        assert_eq!(seen, vec![(2, 9, add(9))]);

        // A configuration read back makes the same games; another game's
        // bytes are refused.
        let other = RoomType::new::<Counter>("counter", 40);
        let copied = kind.with_config_bytes(&other.config_bytes()).unwrap();
        assert_eq!(copied.config_bytes(), other.config_bytes());
        assert_eq!(copied.name(), "counter");
        let mut game = copied.create(&RoomOptions::default(), 1, 8).unwrap();
        let mut fx = Effects::new(0, 30);
        game.join(1, &mut fx);
        let mut out = Vec::new();
        game.state(0, &mut out);
        assert_eq!(crate::codec::decode::<u32>(&out), Ok(40));
        assert!(kind.with_config_bytes(&[0xff; 9]).is_err());
    }
}

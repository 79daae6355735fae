//! Rooms: the fixed-tick loop that owns a game, and the sessions in it.
//!
//! Each room is one tokio task and the only writer of its game (a
//! `DynGame` made by its room type); nothing else holds a reference to it,
//! so there is no lock around game state. Connections reach a room two
//! ways: commands (join, resume, disconnect, event acknowledgements), which
//! wake the room at once, and the game's inbox, where connections push
//! messages they have already decoded and which the room empties only at
//! the start of each tick, so thousands of messages a second cost no
//! wake-ups. The room talks back through each connection's [`Mailbox`].
//!
//! Per tick: take the messages (advancing each sender's ack), run the due
//! simulation steps (see [`clock`]), apply what the game asked for through
//! its context (events, kicks, room properties, the end), expire dropped
//! players past their grace period, then build every connected player's
//! state into one shared buffer ([`fanout`]) and put each in its mailbox.
//! Writing to sockets is the connection tasks' job, spread over the
//! runtime's worker threads; the room never waits for a socket.
//!
//! Events are reliable: each session numbers and keeps them ([`events`])
//! until the client acknowledges them, and a resume replays what the client
//! has not seen.
//!
//! At shutdown with a state file configured, a room hands its state (game,
//! tick, properties, sessions with their events) to the lobby as it stops;
//! at the next start the lobby reopens it from that state with every player
//! dropped, waiting to be resumed (see `crate::state`).

pub mod clock;
pub mod events;
pub mod fanout;
pub mod lobby;
pub mod mailbox;
pub mod saved;
pub mod send_rate;

use crate::metrics::Metrics;
use crate::record::format::{EndKind, Header};
use crate::record::{Recorder, Recordings};
use crate::shutdown::{DoneGuard, Shutdown};
use clock::Due;
use events::EventQueue;
use fanout::StateBuilder;
use game_api::replay::Input;
use game_api::room_type::{Inbox, Sender};
use game_api::{DynGame, Effects, PlayerId, RoomOptions, RoomType, Target};
use lobby::{Lobby, Released, Reservation};
use mailbox::{Mailbox, Put};
use protocol::{CloseCode, ResumeToken, Welcome};
use saved::{RoomState, SessionState};
use send_rate::{Change, Lateness, SendRate};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
// Every time the room reads is tokio's: the standard clock in production,
// and the runtime's paused clock in tests (`tokio::time::pause`), so that
// ticks, grace periods and linger are tested without waiting.
use tokio::time::Instant;

/// Identifies a room for the life of the process, and across planned
/// restarts.
pub type RoomId = u32;

/// Commands waiting for a room beyond this are refused; a room answers a
/// command in microseconds, so a full queue means the room is stuck (event
/// acknowledgements, sent with `try_send`, are then dropped: a later one
/// covers them).
const ROOM_COMMAND_QUEUE: usize = 256;

/// Identifies one WebSocket connection for the life of the process, so that
/// a room can tell a resumed session's new connection from its old one.
pub type ConnId = u64;

/// Why a player could not be placed or resumed: the close code and reason
/// its connection is closed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The close code.
    pub code: CloseCode,
    /// The close reason (a game's own words for 4014).
    pub reason: Cow<'static, str>,
}

impl Refusal {
    /// A refusal with this code and reason.
    pub fn new(code: CloseCode, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

/// What every room shares, from the server's configuration.
pub struct RoomDefaults {
    /// Tick rate of room types that do not set their own.
    pub tick_hz: u16,
    /// How long a dropped player waits for a resume.
    pub resume_grace: Duration,
    /// How long a connection may leave states untaken before it is closed
    /// as too slow.
    pub slow_timeout: Duration,
    /// Most rooms open at once.
    pub max_rooms: u32,
    /// Game messages a connection may send per second (the rate limit);
    /// with the tick rate it sizes each room's inbox.
    pub max_inputs_per_sec: u32,
    /// Server-wide seed; each room's game is seeded from it and the room id.
    pub seed: u64,
    /// Whether rooms hand their state to the lobby when they stop at
    /// shutdown (true when a state file is configured).
    pub save_on_shutdown: bool,
    /// States per second (`--snapshot-hz`), or every tick.
    pub snapshot_hz: Option<u16>,
    /// Whether a room lowers its send rate under overload.
    pub adaptive_send_rate: bool,
    /// Where rooms are recorded (`--record`), if they are.
    pub recordings: Option<Arc<Recordings>>,
    /// Where resume tokens come from: the OS random source, except in
    /// tests.
    pub tokens: TokenSource,
}

/// A registered room type with what the server derived for it.
pub struct Kind {
    /// The game and its settings.
    pub room_type: RoomType,
    /// Its tick rate (its own, or the server's default).
    pub tick_hz: u16,
    /// How long its empty rooms stay open (its own, or the command line's).
    pub linger: Duration,
}

impl Kind {
    /// The type's name.
    pub fn name(&self) -> &str {
        self.room_type.name()
    }

    /// Length of one tick.
    pub fn tick_period(&self) -> Duration {
        Duration::from_secs(1) / u32::from(self.tick_hz)
    }

    /// A duration in whole ticks of this type, at least one.
    pub fn ticks_in(&self, d: Duration) -> u32 {
        let ticks = (d.as_secs_f64() * f64::from(self.tick_hz)).round();
        (ticks as u32).max(1)
    }

    /// Ticks between two rounds of states as configured: `--snapshot-hz`
    /// rounded to whole ticks of this type, every tick without it.
    pub fn send_every(&self, defaults: &RoomDefaults) -> u32 {
        crate::config::send_every(self.tick_hz, defaults.snapshot_hz)
    }

    /// How many messages a room's inbox holds between two ticks: per seat,
    /// the rate limit spread over the ticks, plus the limiter's burst, plus
    /// one.
    pub(crate) fn inbox_capacity(&self, defaults: &RoomDefaults) -> usize {
        let rate = defaults.max_inputs_per_sec;
        let per_tick = rate.div_ceil(u32::from(self.tick_hz));
        let burst = (rate / 4).max(4);
        usize::from(self.room_type.settings().capacity) * (per_tick + burst + 1) as usize
    }
}

/// What a room's game controls about the room, and the lobby publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomProps {
    /// Seats.
    pub capacity: u16,
    /// A locked room takes no new players.
    pub locked: bool,
    /// A private room is reached only by its invite code.
    pub private: bool,
    /// Shown in the public room list.
    pub metadata: BTreeMap<String, String>,
    /// The invite code (private rooms, and rooms that were private).
    pub invite_code: Option<String>,
}

/// How connections reach a room.
#[derive(Clone)]
pub struct RoomHandle {
    /// The room's id.
    pub id: RoomId,
    /// Commands; the room wakes for each.
    pub(crate) ctrl: mpsc::Sender<RoomCmd>,
    /// Game messages; taken at each tick.
    pub inbox: Arc<dyn Inbox>,
}

impl RoomHandle {
    /// Tells the room that a connection ended. `leave` removes the player at
    /// once; otherwise it is kept, frozen, for the grace period. Ignored if
    /// the player has since been taken over by another connection.
    pub async fn disconnected(&self, player: PlayerId, conn: ConnId, leave: bool) {
        // An error means the room is gone, and the player with it.
        let _ = self
            .ctrl
            .send(RoomCmd::Disconnected {
                player,
                conn,
                leave,
            })
            .await;
    }

    /// Tells the room that the client has every event up to `upto`. Never
    /// waits: when the room's queue is full the acknowledgement is dropped,
    /// and the client's next one covers it.
    pub fn acknowledge(&self, player: PlayerId, conn: ConnId, upto: u32) {
        let _ = self.ctrl.try_send(RoomCmd::EventAck { player, conn, upto });
    }

    /// Adds a spectator on `link`, following `follow` (by default the
    /// player with the lowest id): it gets that player's states, takes no
    /// seat, and sends the game nothing. The `Welcome` is the followed
    /// player's, without a resume token.
    pub async fn watch(
        &self,
        follow: Option<PlayerId>,
        link: ConnLink,
    ) -> Result<Welcome, Refusal> {
        let gone = || Refusal::new(CloseCode::NoSuchRoom, "the room closed");
        let (reply, rx) = oneshot::channel();
        let cmd = RoomCmd::Watch {
            follow,
            link,
            reply,
        };
        if self.ctrl.send(cmd).await.is_err() {
            return Err(gone());
        }
        answer(&self.ctrl, rx).await.unwrap_or_else(|| Err(gone()))
    }

    /// The spectator on connection `conn` is gone.
    pub async fn unwatch(&self, conn: ConnId) {
        let _ = self.ctrl.send(RoomCmd::Unwatch { conn }).await;
    }

    /// Asks the room to take `player` back for a new connection; events
    /// after `last_event` are replayed to it.
    pub async fn resume(
        &self,
        player: PlayerId,
        token: ResumeToken,
        last_event: u32,
        link: ConnLink,
    ) -> Result<Welcome, Refusal> {
        let gone = || Refusal::new(CloseCode::InvalidResumeToken, "the session has ended");
        let (reply, rx) = oneshot::channel();
        let cmd = RoomCmd::Resume {
            player,
            token,
            last_event,
            link,
            reply,
        };
        if self.ctrl.send(cmd).await.is_err() {
            // The room closed between the lookup and now: the session ended.
            return Err(gone());
        }
        answer(&self.ctrl, rx).await.unwrap_or_else(|| Err(gone()))
    }
}

/// Waits for a room's answer to a command, or for the room to be gone.
///
/// A send that races with the room's end can land in a queue nobody reads
/// any more (tokio lets a send that got its permit before the receiver
/// closed complete after the receiver's drain), and the caller's own handle
/// keeps that queue, and the reply sender in it, alive: waiting for the
/// reply alone would wait forever. The fuzzer found this with a resume
/// racing the close of a room whose last player had just left.
async fn answer<T>(ctrl: &mpsc::Sender<RoomCmd>, mut rx: oneshot::Receiver<T>) -> Option<T> {
    tokio::select! {
        reply = &mut rx => reply.ok(),
        () = ctrl.closed() => rx.try_recv().ok(),
    }
}

/// Sends a join for a reserved place and waits for the `Welcome`.
pub async fn join(
    reservation: Reservation,
    link: ConnLink,
) -> Result<(Welcome, RoomHandle), Refusal> {
    let room = reservation.room().clone();
    let closed = || Refusal::new(CloseCode::NoSuchRoom, "the room closed");
    let (reply, rx) = oneshot::channel();
    let cmd = RoomCmd::Join {
        reservation,
        link,
        reply,
    };
    if room.ctrl.send(cmd).await.is_err() {
        return Err(closed());
    }
    match answer(&room.ctrl, rx).await {
        Some(Ok(welcome)) => Ok((welcome, room)),
        Some(Err(refusal)) => Err(refusal),
        None => Err(closed()),
    }
}

/// A connection as a room sees it.
#[derive(Clone)]
pub struct ConnLink {
    /// The connection's id.
    pub conn: ConnId,
    /// Where the room puts the connection's events, states and kicks.
    pub mailbox: Arc<Mailbox>,
}

/// Commands to a room.
pub(crate) enum RoomCmd {
    /// A new player takes its reserved place.
    Join {
        reservation: Reservation,
        link: ConnLink,
        reply: oneshot::Sender<Result<Welcome, Refusal>>,
    },
    /// A session comes back on a new connection.
    Resume {
        player: PlayerId,
        token: ResumeToken,
        last_event: u32,
        link: ConnLink,
        reply: oneshot::Sender<Result<Welcome, Refusal>>,
    },
    /// A connection ended.
    Disconnected {
        player: PlayerId,
        conn: ConnId,
        leave: bool,
    },
    /// The client has every event up to `upto`.
    EventAck {
        player: PlayerId,
        conn: ConnId,
        upto: u32,
    },
    /// A spectator comes.
    Watch {
        follow: Option<PlayerId>,
        link: ConnLink,
        reply: oneshot::Sender<Result<Welcome, Refusal>>,
    },
    /// A spectator's connection ended.
    Unwatch { conn: ConnId },
    /// A dropped reservation left the room empty: its linger starts.
    Emptied,
    /// The lobby closed the room before any player arrived.
    Close,
}

/// A player's session as the room keeps it.
struct Session {
    /// Secret that resumes this session.
    token: ResumeToken,
    /// The live connection, or `None` while dropped.
    link: Option<ConnLink>,
    /// Highest game message sequence applied.
    ack: u32,
    /// When the connection dropped, while it is dropped.
    dropped_at: Option<Instant>,
    /// Events kept until acknowledged.
    events: EventQueue,
    /// A hash of the last state sent and its ack, for room types that skip
    /// unchanged states.
    last_state: Option<u64>,
}

pub(crate) struct Room {
    id: RoomId,
    /// The room's type.
    kind: Arc<Kind>,
    /// The seed the game was created with, saved with the room.
    seed: u64,
    /// The options the room was created with, saved with the room.
    options: RoomOptions,
    /// What the game controls; the lobby holds a copy for matchmaking.
    props: RoomProps,
    game: Box<dyn DynGame>,
    sessions: HashMap<PlayerId, Session>,
    lobby: Arc<Lobby>,
    defaults: Arc<RoomDefaults>,
    metrics: Arc<Metrics>,
    ctrl_rx: mpsc::Receiver<RoomCmd>,
    /// Ticks run so far; the number in states.
    tick: u32,
    /// Set when the room closed (emptied past its linger, or ended).
    closed: bool,
    /// When the room became empty, while it lingers.
    empty_since: Option<Instant>,
    /// What the game asked for in the call being made (reused).
    fx: Effects,
    /// Builds each tick's states, reusing its buffers.
    builder: StateBuilder,
    /// Players whose grace period ended this tick (reused).
    expired: Vec<PlayerId>,
    /// Sessions to end for an event backlog, found while applying effects
    /// (reused).
    backlogged: Vec<PlayerId>,
    /// How often states go out, following load.
    send_rate: SendRate,
    /// Records every call on the game (`--record`).
    recorder: Option<Recorder>,
    /// Why the game ended the room, once it did.
    ended: Option<String>,
    /// Spectators: their connection and the player each follows.
    spectators: Vec<(ConnLink, PlayerId)>,
    /// The game panicked: it is not called again.
    panicked: bool,
}

impl Room {
    /// A room around `game` with no sessions yet, and the handle that
    /// reaches it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: RoomId,
        kind: Arc<Kind>,
        seed: u64,
        options: RoomOptions,
        props: RoomProps,
        game: Box<dyn DynGame>,
        lobby: Arc<Lobby>,
        defaults: Arc<RoomDefaults>,
        metrics: Arc<Metrics>,
    ) -> (Self, RoomHandle) {
        let (ctrl_tx, ctrl_rx) = mpsc::channel(ROOM_COMMAND_QUEUE);
        let handle = RoomHandle {
            id,
            ctrl: ctrl_tx,
            inbox: game.inbox(),
        };
        let tick_hz = kind.tick_hz;
        let recorder = defaults.recordings.as_ref().map(|recordings| {
            let header = Header {
                server_version: env!("CARGO_PKG_VERSION").to_owned(),
                room_type: kind.name().to_owned(),
                config: kind.room_type.config_bytes(),
                room: id,
                options: options.pairs().to_vec(),
                seed,
                tick_hz,
                start_tick: 0,
                restored: false,
                hash_every: 1,
                started_unix_ms: crate::wall::unix_millis(),
            };
            recordings.recorder(header, &*game)
        });
        let send_rate = SendRate::new(
            kind.send_every(&defaults),
            tick_hz,
            defaults.adaptive_send_rate,
        );
        let room = Self {
            id,
            kind,
            seed,
            options,
            props,
            game,
            sessions: HashMap::new(),
            lobby,
            defaults,
            metrics,
            ctrl_rx,
            tick: 0,
            closed: false,
            empty_since: None,
            fx: Effects::new(0, tick_hz),
            builder: StateBuilder::default(),
            expired: Vec::new(),
            backlogged: Vec::new(),
            send_rate,
            recorder,
            ended: None,
            spectators: Vec::new(),
            panicked: false,
        };
        (room, handle)
    }

    /// Continues the tick count of a restored room (its recording starts
    /// there, from the restored game's state).
    pub(crate) fn set_tick(&mut self, tick: u32) {
        self.tick = tick;
        if let Some(recorder) = &mut self.recorder {
            recorder.restart_at(tick, &*self.game);
        }
    }

    /// Sets the invite code the lobby gave a restored room.
    pub(crate) fn set_invite_code(&mut self, code: Option<String>) {
        self.props.invite_code = code;
    }

    /// Adds a session carried over a restart: the player, which the restored
    /// game must hold, is dropped and waits a whole grace period from now
    /// for its client to resume. Returns false, adding nothing, if the room
    /// already has the player or its saved events are inconsistent.
    pub(crate) fn restore_session(&mut self, saved: SessionState) -> bool {
        if self.sessions.contains_key(&saved.player) {
            return false;
        }
        let Some(events) = EventQueue::restore(saved.events) else {
            return false;
        };
        if let Some(r) = &mut self.recorder {
            r.call(&Input::Drop(saved.player));
        }
        self.game.drop_player(saved.player, self.fx.at(self.tick));
        self.sessions.insert(
            saved.player,
            Session {
                token: saved.token,
                link: None,
                ack: saved.ack,
                dropped_at: Some(Instant::now()),
                events,
                last_state: None,
            },
        );
        self.apply_effects();
        self.metrics.players.fetch_add(1, Relaxed);
        self.metrics.players_dropped.fetch_add(1, Relaxed);
        true
    }

    /// The room as it stands, for the state file.
    fn state(&self) -> RoomState {
        let mut sessions: Vec<SessionState> = self
            .sessions
            .iter()
            .map(|(&player, s)| SessionState {
                player,
                token: s.token,
                ack: s.ack,
                connected: s.link.is_some(),
                events: s.events.save(),
            })
            .collect();
        // Map order is random; a sorted file is easier to compare and debug.
        sessions.sort_unstable_by_key(|s| s.player);
        RoomState {
            id: self.id,
            room_type: self.kind.name().to_owned(),
            options: self.options.pairs().to_vec(),
            seed: self.seed,
            tick: self.tick,
            props: self.props.clone(),
            game: self.game.save(),
            sessions,
        }
    }

    /// The room's task: ticks on schedule, answers commands in between.
    pub(crate) async fn run(mut self, mut shutdown: Shutdown, _done: DoneGuard) {
        let phase = self.lobby.claim_phase(self.kind.tick_period());
        let mut clock = phase.clock(Instant::now());
        // A restored room may hold no connected player and expire them all
        // before anyone resumes; a room reopened from a file is never empty.
        while !self.closed {
            let linger_end = self.empty_since.map(|t| t + self.kind.linger);
            tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                _ = tokio::time::sleep_until(clock.deadline()) => {
                    let due = clock.advance(Instant::now());
                    self.guarded(|room| room.run_tick(due));
                }
                _ = sleep_until_opt(linger_end) => {
                    self.empty_since = None;
                    if self.lobby.close_if_empty(self.id) {
                        self.closed = true;
                    }
                }
                cmd = self.ctrl_rx.recv() => match cmd {
                    Some(cmd) => self.guarded(|room| room.handle(cmd)),
                    None => break,
                },
            }
        }
        // Saved before `_done` drops, so the state is with the lobby by the
        // time shutdown completes and the server writes the file. Only a
        // planned stop saves: a room that closed has nothing to keep, and
        // one whose controller vanished (the server was dropped without
        // shutting down) was not asked to stop.
        if self.defaults.save_on_shutdown
            && shutdown.is_shutting_down()
            && !self.closed
            && !self.sessions.is_empty()
        {
            self.lobby.keep(self.state());
        }
        self.end();
    }

    /// Runs `f`, which calls the game, catching a panic: the game is not
    /// called again, its recording ends with the panic's message (the file
    /// is named in the log), every player is closed with 1011, and the
    /// room closes. Other rooms never notice.
    fn guarded(&mut self, f: impl FnOnce(&mut Self)) {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        let Err(panic) = caught else {
            return;
        };
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        self.panicked = true;
        self.metrics.room_panics.fetch_add(1, Relaxed);
        let recording = self.recorder.as_mut().map(|r| {
            r.end(EndKind::Panicked, &message);
            r.path().display().to_string()
        });
        tracing::error!(
            room = self.id,
            room_type = self.kind.name(),
            tick = self.tick,
            panic = %message,
            recording = recording.as_deref().unwrap_or("none (run with --record DIR to keep one)"),
            "the room's game panicked: the room is closed; `server replay` of its recording reproduces the panic"
        );
        let tokens: Vec<ResumeToken> = self.sessions.values().map(|s| s.token).collect();
        for session in self.sessions.values() {
            if let Some(link) = &session.link {
                link.mailbox
                    .kick(CloseCode::InternalError, "the room failed and was closed");
            }
        }
        self.lobby.end_room(self.id, &tokens);
        self.closed = true;
    }

    fn handle(&mut self, cmd: RoomCmd) {
        match cmd {
            RoomCmd::Join {
                reservation,
                link,
                reply,
            } => self.join(reservation, link, reply),
            RoomCmd::Resume {
                player,
                token,
                last_event,
                link,
                reply,
            } => self.resume(player, token, last_event, link, reply),
            RoomCmd::Disconnected {
                player,
                conn,
                leave,
            } => {
                if !self.attached(player, conn) {
                    return;
                }
                if leave {
                    self.remove(player);
                } else {
                    self.drop_session(player);
                }
                self.apply_effects();
            }
            RoomCmd::EventAck { player, conn, upto } => {
                if self.attached(player, conn)
                    && let Some(session) = self.sessions.get_mut(&player)
                {
                    session.events.ack(upto);
                }
            }
            RoomCmd::Watch {
                follow,
                link,
                reply,
            } => {
                let _ = reply.send(self.watch(follow, link));
            }
            RoomCmd::Unwatch { conn } => {
                let before = self.spectators.len();
                self.spectators.retain(|(l, _)| l.conn != conn);
                let gone = before - self.spectators.len();
                self.metrics.spectators.fetch_sub(gone as i64, Relaxed);
            }
            RoomCmd::Emptied => {
                if self.sessions.is_empty() && self.empty_since.is_none() {
                    self.empty_since = Some(Instant::now());
                }
            }
            RoomCmd::Close => {
                if self.sessions.is_empty() {
                    self.closed = true;
                }
            }
        }
    }

    /// Takes a spectator following `follow`, or the player with the lowest
    /// id.
    fn watch(&mut self, follow: Option<PlayerId>, link: ConnLink) -> Result<Welcome, Refusal> {
        let follow = match follow {
            Some(p) if self.sessions.contains_key(&p) => p,
            Some(p) => {
                return Err(Refusal::new(
                    CloseCode::NoSuchRoom,
                    format!("player {p} is not in room {}", self.id),
                ));
            }
            None => *self.sessions.keys().min().ok_or_else(|| {
                Refusal::new(CloseCode::NoSuchRoom, "nobody is playing in this room")
            })?,
        };
        self.spectators.push((link, follow));
        self.metrics.spectators.fetch_add(1, Relaxed);
        let mut welcome = self.welcome(follow, ResumeToken([0; 16]), false);
        welcome.invite_code = None;
        Ok(welcome)
    }

    /// Closes every spectator's connection (following `player` only, if
    /// given) with `code` and `reason`.
    fn dismiss_spectators(&mut self, player: Option<PlayerId>, code: CloseCode, reason: &str) {
        let before = self.spectators.len();
        self.spectators.retain(|(link, follows)| {
            if player.is_some_and(|p| p != *follows) {
                return true;
            }
            link.mailbox.kick(code, reason.to_owned());
            false
        });
        let gone = before - self.spectators.len();
        self.metrics.spectators.fetch_sub(gone as i64, Relaxed);
    }

    /// Whether `conn` is the live connection of `player`.
    fn attached(&self, player: PlayerId, conn: ConnId) -> bool {
        self.sessions
            .get(&player)
            .and_then(|s| s.link.as_ref())
            .is_some_and(|l| l.conn == conn)
    }

    fn welcome(&self, player_id: PlayerId, resume_token: ResumeToken, resumed: bool) -> Welcome {
        let mut game = Vec::new();
        self.game.welcome(player_id, &mut game);
        Welcome {
            version: protocol::PROTOCOL_VERSION,
            player_id,
            room_id: self.id,
            room_type: self.kind.name().to_owned(),
            invite_code: self.props.invite_code.clone(),
            resume_token,
            resumed,
            tick_hz: self.kind.tick_hz,
            game,
        }
    }

    fn join(
        &mut self,
        reservation: Reservation,
        link: ConnLink,
        reply: oneshot::Sender<Result<Welcome, Refusal>>,
    ) {
        let player = self.lobby.next_player_id();
        if let Some(r) = &mut self.recorder {
            r.call(&Input::JoinAttempt(player));
        }
        let attempt = self.game.join_attempt(player, self.fx.at(self.tick));
        self.apply_effects();
        if let Err(reason) = attempt {
            // The reservation drops here and gives its place back.
            let _ = reply.send(Err(Refusal::new(CloseCode::RefusedByGame, reason)));
            return;
        }
        if self.closed {
            let _ = reply.send(Err(Refusal::new(CloseCode::NoSuchRoom, "the room closed")));
            return;
        }
        let token = self.defaults.tokens.token();
        self.lobby.register(token, self.id, player);
        reservation.consume();
        self.empty_since = None;
        self.sessions.insert(
            player,
            Session {
                token,
                link: Some(link),
                ack: 0,
                dropped_at: None,
                events: EventQueue::default(),
                last_state: None,
            },
        );
        self.metrics.players.fetch_add(1, Relaxed);
        if let Some(r) = &mut self.recorder {
            r.call(&Input::Join(player));
        }
        self.game.join(player, self.fx.at(self.tick));
        // The Welcome carries the invite code, which the join may have
        // brought (a game that makes its room private); effects first.
        self.apply_effects();
        if !self.sessions.contains_key(&player) {
            // The game kicked the player, or ended the room, as it joined.
            let _ = reply.send(Err(Refusal::new(CloseCode::Kicked, "removed as it joined")));
            return;
        }
        if reply.send(Ok(self.welcome(player, token, false))).is_err() {
            // The connection vanished before it learnt its token, so nobody
            // can ever resume this player.
            self.remove(player);
            self.apply_effects();
        }
    }

    fn resume(
        &mut self,
        player: PlayerId,
        token: ResumeToken,
        last_event: u32,
        link: ConnLink,
        reply: oneshot::Sender<Result<Welcome, Refusal>>,
    ) {
        let Some(session) = self
            .sessions
            .get_mut(&player)
            .filter(|s| tokens_equal(&s.token, &token))
        else {
            let _ = reply.send(Err(Refusal::new(
                CloseCode::InvalidResumeToken,
                "resume token unknown or expired: join as a new player",
            )));
            return;
        };
        let replay = session.events.replay_after(last_event);
        self.metrics
            .events_replayed
            .fetch_add(replay.len() as u64, Relaxed);
        link.mailbox.push_events(replay);
        session.last_state = None;
        let was_dropped = match session.link.replace(link) {
            // Still attached: the client came back before we noticed the
            // drop. The old connection is obsolete.
            Some(old) => {
                old.mailbox.kick(
                    CloseCode::SessionTakenOver,
                    CloseCode::SessionTakenOver.name(),
                );
                false
            }
            None => {
                session.dropped_at = None;
                self.metrics.players_dropped.fetch_sub(1, Relaxed);
                true
            }
        };
        if was_dropped {
            if let Some(r) = &mut self.recorder {
                r.call(&Input::Resume(player));
            }
            self.game.resume(player, self.fx.at(self.tick));
            self.apply_effects();
        }
        if !self.sessions.contains_key(&player) {
            let _ = reply.send(Err(Refusal::new(
                CloseCode::Kicked,
                "removed as it resumed",
            )));
            return;
        }
        if reply.send(Ok(self.welcome(player, token, true))).is_err() {
            // The new connection vanished while resuming: dropped again.
            self.drop_session(player);
            self.apply_effects();
        }
    }

    /// Detaches the player's connection and freezes it for the grace period.
    fn drop_session(&mut self, player: PlayerId) {
        let Some(session) = self.sessions.get_mut(&player) else {
            return;
        };
        if session.link.take().is_some() {
            session.dropped_at = Some(Instant::now());
            self.metrics.players_dropped.fetch_add(1, Relaxed);
            if let Some(r) = &mut self.recorder {
                r.call(&Input::Drop(player));
            }
            self.game.drop_player(player, self.fx.at(self.tick));
        }
    }

    /// Removes the player for good; the room empties (and lingers or
    /// closes) if it was the last. Effects of the game's `leave` are left
    /// for the caller to apply.
    fn remove(&mut self, player: PlayerId) {
        let Some(session) = self.sessions.remove(&player) else {
            return;
        };
        self.metrics.players.fetch_sub(1, Relaxed);
        if session.link.is_none() {
            self.metrics.players_dropped.fetch_sub(1, Relaxed);
        }
        if let Some(r) = &mut self.recorder {
            r.call(&Input::Leave(player));
        }
        self.dismiss_spectators(
            Some(player),
            CloseCode::Kicked,
            "the player you were watching left",
        );
        self.game.leave(player, self.fx.at(self.tick));
        match self.lobby.release(self.id, Some(&session.token)) {
            Released::Remaining => {}
            Released::Empty => self.empty_since = Some(Instant::now()),
            Released::Closed => self.closed = true,
        }
    }

    /// Carries out what the game asked for in the calls since the last
    /// time: events, kicks, room properties, the end. A kick runs the
    /// game's `leave`, which may ask for more, so this repeats until the
    /// game asks for nothing.
    fn apply_effects(&mut self) {
        while !self.fx.is_empty() {
            let Effects {
                events,
                kicks,
                metadata,
                locked,
                private,
                capacity,
                end,
                oversized_events,
                ..
            } = std::mem::replace(&mut self.fx, Effects::new(self.tick, self.kind.tick_hz));
            if oversized_events > 0 {
                tracing::warn!(
                    room = self.id,
                    dropped = oversized_events,
                    "the game sent events larger than the limit: dropped"
                );
            }
            for (target, data) in events {
                self.deliver(target, data);
            }
            for i in 0..self.backlogged.len() {
                let player = self.backlogged[i];
                self.end_session(
                    player,
                    CloseCode::EventBacklog,
                    "too many unacknowledged events".into(),
                );
            }
            self.backlogged.clear();
            for (player, reason) in kicks {
                self.end_session(player, CloseCode::Kicked, reason.into());
            }
            let before = self.props.clone();
            if let Some(metadata) = metadata {
                self.props.metadata = metadata;
            }
            if let Some(locked) = locked {
                self.props.locked = locked;
            }
            if let Some(private) = private {
                self.props.private = private;
            }
            if let Some(capacity) = capacity {
                self.props.capacity = capacity;
            }
            if self.props != before {
                self.props.invite_code = self.lobby.update(self.id, self.props.clone());
            }
            if let Some(reason) = end {
                self.end_room(reason);
                return;
            }
        }
    }

    /// Numbers and keeps an event for each of its targets and hands it to
    /// their connections.
    fn deliver(&mut self, target: Target, data: bytes::Bytes) {
        let mut send = |player: PlayerId, session: &mut Session| {
            let seq = session.events.push(data.clone());
            if let Some(link) = &session.link {
                link.mailbox.push_events([(seq, data.clone())]);
            }
            if session.events.over_limit() {
                self.backlogged.push(player);
            }
        };
        match target {
            Target::Player(player) => {
                if let Some(session) = self.sessions.get_mut(&player) {
                    send(player, session);
                }
            }
            Target::All => {
                for (&player, session) in &mut self.sessions {
                    send(player, session);
                }
            }
            Target::AllExcept(except) => {
                for (&player, session) in &mut self.sessions {
                    if player != except {
                        send(player, session);
                    }
                }
            }
        }
    }

    /// Removes a player on the game's or the server's initiative, closing
    /// its connection with `code` and `reason`.
    fn end_session(&mut self, player: PlayerId, code: CloseCode, reason: Cow<'static, str>) {
        let Some(session) = self.sessions.get(&player) else {
            return;
        };
        if let Some(link) = &session.link {
            link.mailbox.kick(code, reason);
        }
        tracing::debug!(
            room = self.id,
            player,
            code = code.name(),
            "session ended by the room"
        );
        self.remove(player);
    }

    /// The game ended the room: every connection is closed with 4016 and
    /// the game's reason, every session forgotten, and the room closes.
    fn end_room(&mut self, reason: String) {
        let tokens: Vec<ResumeToken> = self.sessions.values().map(|s| s.token).collect();
        for session in self.sessions.values() {
            if let Some(link) = &session.link {
                link.mailbox.kick(CloseCode::RoomEnded, reason.clone());
            }
        }
        self.lobby.end_room(self.id, &tokens);
        tracing::info!(room = self.id, reason = %reason, "room ended by its game");
        self.ended = Some(reason);
        self.closed = true;
    }

    fn run_tick(&mut self, due: Due) {
        let started = Instant::now();
        self.metrics.tick_lateness.observe(due.lateness);
        if due.skipped > 0 {
            self.metrics
                .ticks_skipped
                .fetch_add(u64::from(due.skipped), Relaxed);
        }
        let period = self.kind.tick_period();
        let lateness = Lateness::of(due.lateness, period, due.skipped);

        self.take_messages();
        for _ in 0..due.steps {
            self.tick = self.tick.wrapping_add(1);
            if let Some(r) = &mut self.recorder {
                r.step();
            }
            self.game.step(self.fx.at(self.tick));
            self.apply_effects();
            if let Some(r) = &mut self.recorder {
                r.stepped(&*self.game);
            }
            if self.closed {
                return;
            }
        }
        self.expire_dropped(started);
        if self.closed {
            return;
        }
        if self.send_rate.tick(due.steps, lateness) {
            let (planned, skipped) = self.fan_out();
            self.send_rate.sent(planned, skipped);
        }
        if let Some(change) = self.send_rate.judge(self.metrics.cpu_wait.ratio()) {
            self.send_rate_changed(change);
        }

        let took = started.elapsed();
        self.metrics.tick_duration.observe(took);
        if took > period {
            self.metrics.tick_overruns.fetch_add(1, Relaxed);
        }
    }

    /// Logs and counts a change of the room's send rate.
    fn send_rate_changed(&mut self, change: Change) {
        let hz = |every: u32| f64::from(self.kind.tick_hz) / f64::from(every);
        match change {
            Change::Lowered {
                every,
                skipped,
                late,
                behind,
                cpu_wait,
            } => {
                self.metrics.send_rate_lowered.fetch_add(1, Relaxed);
                tracing::info!(
                    room = self.id,
                    every,
                    hz = hz(every),
                    skipped,
                    late,
                    behind,
                    cpu_wait,
                    "room overloaded: states now every {every} ticks, to all players alike"
                );
            }
            Change::Raised { every } => {
                self.metrics.send_rate_raised.fetch_add(1, Relaxed);
                tracing::info!(
                    room = self.id,
                    every,
                    hz = hz(every),
                    "room recovered: states every {every} ticks"
                );
            }
        }
        let degraded_now = self.send_rate.degraded();
        let degraded_before = match change {
            Change::Lowered { every, .. } => every - 1 > self.kind.send_every(&self.defaults),
            Change::Raised { .. } => true,
        };
        if degraded_now && !degraded_before {
            self.metrics.rooms_degraded.fetch_add(1, Relaxed);
        } else if !degraded_now && degraded_before {
            self.metrics.rooms_degraded.fetch_sub(1, Relaxed);
        }
    }

    /// Takes the queued messages of attached players for the next step and
    /// advances their acks; messages from a connection a resume replaced
    /// are dropped.
    fn take_messages(&mut self) {
        let sessions = &mut self.sessions;
        let recorder = &mut self.recorder;
        self.game
            .take_messages(&mut |from: Sender, seq: u32, data: &[u8]| {
                let Some(session) = sessions.get_mut(&from.player) else {
                    return false;
                };
                if session.link.as_ref().is_none_or(|l| l.conn != from.conn) {
                    return false;
                }
                session.ack = session.ack.max(seq);
                if let Some(r) = recorder {
                    r.message(from.player, seq, data);
                }
                true
            });
    }

    fn expire_dropped(&mut self, now: Instant) {
        let grace = self.defaults.resume_grace;
        self.expired.clear();
        self.expired.extend(
            self.sessions
                .iter()
                .filter(|(_, s)| s.dropped_at.is_some_and(|t| now.duration_since(t) >= grace))
                .map(|(&id, _)| id),
        );
        for i in 0..self.expired.len() {
            let player = self.expired[i];
            tracing::debug!(room = self.id, player, "resume grace expired");
            self.remove(player);
            self.apply_effects();
        }
    }

    /// Builds every attached player's state and posts it; returns how many
    /// states were put and how many of them replaced one the server had not
    /// got round to writing.
    fn fan_out(&mut self) -> (u32, u32) {
        let viewers = self
            .sessions
            .iter()
            .filter(|(_, s)| s.link.is_some())
            .map(|(&id, s)| (id, s.ack));
        let states = self.builder.build(&mut *self.game, self.tick, viewers);
        let skip_unchanged = self.kind.room_type.settings().skip_unchanged_states;
        // The too-slow bound counts states replaced in a row, so it is the
        // slow timeout in rounds of states at the current rate.
        let slow_rounds =
            (self.kind.ticks_in(self.defaults.slow_timeout) / self.send_rate.every()).max(1);
        let (mut planned, mut skipped_now) = (0, 0);
        let (mut written, mut written_bytes) = (0u64, 0u64);
        for (player, frame, data) in states.iter() {
            for (link, _) in self.spectators.iter().filter(|(_, f)| *f == player) {
                // A spectator's view is the player's; a slow one only
                // skips states (its own connection's too-slow bound).
                link.mailbox.put(frame.clone());
            }
            let Some(session) = self.sessions.get_mut(&player) else {
                continue;
            };
            let Some(link) = &session.link else {
                continue;
            };
            if skip_unchanged {
                let hash = state_hash(session.ack, &data);
                if session.last_state == Some(hash) {
                    self.metrics.states_unchanged.fetch_add(1, Relaxed);
                    continue;
                }
                session.last_state = Some(hash);
            }
            planned += 1;
            let len = frame.len() as u64;
            match link.mailbox.put(frame) {
                Put::Written => {
                    written += 1;
                    written_bytes += len;
                }
                Put::Queued { replaced: 0, .. } => {}
                Put::Queued {
                    replaced,
                    writer_busy,
                } => {
                    // Only a state the server did not get round to writing
                    // says the room is overloaded; one skipped while the
                    // connection is stuck writing is that client's
                    // slowness, which must not slow the room down for
                    // everyone (its own bound is below).
                    if !writer_busy {
                        skipped_now += 1;
                    }
                    self.metrics.states_skipped.fetch_add(1, Relaxed);
                    if replaced >= slow_rounds {
                        link.mailbox
                            .kick(CloseCode::TooSlow, CloseCode::TooSlow.name());
                    }
                }
            }
        }
        // States the room wrote itself (see `mailbox`); the connections
        // count the ones they write.
        let m = &self.metrics;
        m.states_written.fetch_add(written, Relaxed);
        m.messages_out.fetch_add(written, Relaxed);
        m.bytes_out.fetch_add(written_bytes, Relaxed);
        self.metrics
            .states_planned
            .fetch_add(u64::from(planned), Relaxed);
        (planned, skipped_now)
    }

    fn end(&mut self) {
        let attached = self.sessions.values().filter(|s| s.link.is_some()).count();
        let dropped = self.sessions.len() - attached;
        self.metrics
            .players
            .fetch_sub(self.sessions.len() as i64, Relaxed);
        self.metrics
            .players_dropped
            .fetch_sub(dropped as i64, Relaxed);
        if self.send_rate.degraded() {
            self.metrics.rooms_degraded.fetch_sub(1, Relaxed);
        }
        let reason = match &self.ended {
            Some(_) => "the game ended the room",
            None if self.closed => "the room closed",
            None => "the server is stopping",
        };
        self.dismiss_spectators(None, CloseCode::RoomEnded, reason);
        if let Some(r) = &mut self.recorder {
            match &self.ended {
                Some(reason) => r.end(EndKind::Ended, reason),
                None if self.closed => r.end(EndKind::Closed, ""),
                None => r.end(EndKind::Stopped, ""),
            }
        }
        if self.panicked {
            // A game that panicked is not called again.
            return;
        }
        self.game.end();
        tracing::debug!(
            room = self.id,
            players = self.sessions.len(),
            "room stopped"
        );
    }
}

/// Completes at `at`, or never when there is no deadline.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What a state is compared by when unchanged states are skipped: its ack
/// and its data (not its tick, which always moves).
fn state_hash(ack: u32, data: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ack.hash(&mut h);
    data.hash(&mut h);
    h.finish()
}

/// Each room's game seed: the server seed and the room id, mixed
/// (SplitMix64's finaliser) so neighbouring rooms get unrelated games.
fn room_seed(seed: u64, room: RoomId) -> u64 {
    let mut z = seed ^ u64::from(room).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A fresh resume token from the operating system's random source.
fn new_token() -> ResumeToken {
    ResumeToken(random_bytes())
}

/// Where a room's resume tokens come from: the operating system's random
/// source in production ([`TokenSource::os`]), or a source a test gives
/// ([`TokenSource::from_fn`]) so that it knows the token each player gets.
#[derive(Clone, Default)]
pub struct TokenSource {
    /// Makes each token; `None` is the OS random source, called directly
    /// (no indirect call outside tests).
    make: Option<Arc<dyn Fn() -> ResumeToken + Send + Sync>>,
}

impl TokenSource {
    /// 128 unguessable bits from the OS for every token.
    pub fn os() -> Self {
        Self::default()
    }

    /// Tokens made by `make`. For tests: a token that can be guessed lets
    /// anyone take over its session, so production uses [`TokenSource::os`].
    pub fn from_fn(make: impl Fn() -> ResumeToken + Send + Sync + 'static) -> Self {
        Self {
            make: Some(Arc::new(make)),
        }
    }

    /// The next token.
    pub fn token(&self) -> ResumeToken {
        match &self.make {
            Some(make) => make(),
            None => new_token(),
        }
    }
}

/// 128 unguessable bits from the OS, for resume tokens and seat tickets.
pub(crate) fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    // The OS RNG failing is not something a game server can work around:
    // without unguessable tokens, sessions could be stolen.
    getrandom::fill(&mut bytes).expect("the OS random number generator is available");
    bytes
}

/// Compares tokens in time independent of where they differ.
fn tokens_equal(a: &ResumeToken, b: &ResumeToken) -> bool {
    a.0.iter().zip(&b.0).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;

//! Rooms: the fixed-tick loop that owns a world, and the sessions in it.
//!
//! Each room is one tokio task and the only writer of its world (a
//! [`Game`]); nothing else holds a reference to it, so there is no lock
//! around world state. Connections talk to a room through two channels:
//! commands (join, resume, disconnect), which wake the room at once, and
//! inputs, which the room drains only at the start of each tick, so that
//! thousands of inputs per second cost no wake-ups. The room talks back
//! through each connection's [`Mailbox`].
//!
//! Per tick: drain inputs, run the due simulation steps (see [`clock`]),
//! expire dropped players past their grace period, then fan out: every
//! entity is encoded once, each player's snapshot is its header plus a copy
//! of the bytes of the entities it sees, all players' snapshots of the tick
//! share one buffer, and each goes to its mailbox. Writing to sockets is
//! the connection tasks' job, spread over the runtime's worker threads;
//! the room never waits for a socket.
//!
//! At shutdown with a state file configured, a room hands its state (world,
//! tick, sessions) to the lobby as it stops; at the next start the lobby
//! reopens it from that state with every player dropped, waiting to be
//! resumed (see `crate::state`).

pub mod clock;
pub mod fanout;
pub mod lobby;
pub mod mailbox;

use crate::game::{Game, GameFactory, PlayerId};
use crate::metrics::Metrics;
use crate::shutdown::{DoneGuard, Shutdown};
use crate::state::{RoomState, SessionState};
use clock::{Due, TickClock};
use fanout::SnapshotBuilder;
use lobby::{Lobby, Reservation};
use mailbox::Mailbox;
use protocol::{CloseCode, Input, ResumeToken, Welcome};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Identifies a room for the life of the process, and across planned
/// restarts.
pub type RoomId = u32;

/// Commands waiting for a room beyond this are refused; a room answers a
/// command in microseconds, so a full queue means the room is stuck.
const ROOM_COMMAND_QUEUE: usize = 256;

/// Identifies one WebSocket connection for the life of the process, so that
/// a room can tell a resumed session's new connection from its old one.
pub type ConnId = u64;

/// What every room is opened with (derived from the server's config).
pub struct RoomSettings {
    /// Length of one tick.
    pub tick_period: Duration,
    /// Ticks per second, as announced in `Welcome`.
    pub tick_hz: u16,
    /// Players per room.
    pub capacity: u16,
    /// Most rooms open at once.
    pub max_rooms: u32,
    /// How long a dropped player waits for a resume.
    pub resume_grace: Duration,
    /// Snapshots a connection may leave untaken in a row before it is
    /// closed as too slow.
    pub slow_ticks: u32,
    /// Capacity of each room's input queue.
    pub input_queue: usize,
    /// Server-wide seed; each room's game is seeded from it and the room id.
    pub seed: u64,
    /// Makes each room's game, fresh or restored.
    pub game: Arc<dyn GameFactory>,
    /// World facts announced in `Welcome`: width, height, view radius.
    pub world: (u16, u16, u16),
    /// Whether rooms hand their state to the lobby when they stop at
    /// shutdown (true when a state file is configured).
    pub save_on_shutdown: bool,
}

/// How connections reach a room.
#[derive(Clone)]
pub struct RoomHandle {
    /// The room's id.
    pub id: RoomId,
    /// Commands; the room wakes for each.
    pub(crate) ctrl: mpsc::Sender<RoomCmd>,
    /// Inputs; drained at each tick.
    pub inputs: mpsc::Sender<RoomInput>,
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

    /// Asks the room to take `player` back for a new connection.
    pub async fn resume(
        &self,
        player: PlayerId,
        token: ResumeToken,
        link: ConnLink,
    ) -> Result<Welcome, CloseCode> {
        let (reply, rx) = oneshot::channel();
        let cmd = RoomCmd::Resume {
            player,
            token,
            link,
            reply,
        };
        if self.ctrl.send(cmd).await.is_err() {
            // The room closed between the lookup and now: the session ended.
            return Err(CloseCode::InvalidResumeToken);
        }
        answer(&self.ctrl, rx)
            .await
            .unwrap_or(Err(CloseCode::InvalidResumeToken))
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
) -> Result<(Welcome, RoomHandle), CloseCode> {
    let room = reservation.room().clone();
    let (reply, rx) = oneshot::channel();
    let cmd = RoomCmd::Join {
        reservation,
        link,
        reply,
    };
    if room.ctrl.send(cmd).await.is_err() {
        return Err(CloseCode::InternalError);
    }
    match answer(&room.ctrl, rx).await {
        Some(welcome) => Ok((welcome, room)),
        None => Err(CloseCode::InternalError),
    }
}

/// One input on its way to a room.
#[derive(Debug, Clone, Copy)]
pub struct RoomInput {
    /// Whose input.
    pub player: PlayerId,
    /// Which connection sent it; inputs from a superseded connection are
    /// dropped.
    pub conn: ConnId,
    /// The input.
    pub input: Input,
}

/// A connection as a room sees it.
#[derive(Clone)]
pub struct ConnLink {
    /// The connection's id.
    pub conn: ConnId,
    /// Where the room puts the connection's snapshots and kicks.
    pub mailbox: Arc<Mailbox>,
}

/// Commands to a room.
pub(crate) enum RoomCmd {
    /// A new player takes its reserved place.
    Join {
        reservation: Reservation,
        link: ConnLink,
        reply: oneshot::Sender<Welcome>,
    },
    /// A session comes back on a new connection.
    Resume {
        player: PlayerId,
        token: ResumeToken,
        link: ConnLink,
        reply: oneshot::Sender<Result<Welcome, CloseCode>>,
    },
    /// A connection ended.
    Disconnected {
        player: PlayerId,
        conn: ConnId,
        leave: bool,
    },
    /// The lobby closed the room before any player arrived.
    Close,
}

/// A player's session as the room keeps it.
struct Session {
    /// Secret that resumes this session.
    token: ResumeToken,
    /// The live connection, or `None` while dropped.
    link: Option<ConnLink>,
    /// Highest input sequence applied.
    ack: u32,
    /// When the connection dropped, while it is dropped.
    dropped_at: Option<Instant>,
}

pub(crate) struct Room {
    id: RoomId,
    /// The seed the game was created with, saved with the room.
    seed: u64,
    game: Box<dyn Game>,
    sessions: HashMap<PlayerId, Session>,
    lobby: Arc<Lobby>,
    settings: Arc<RoomSettings>,
    metrics: Arc<Metrics>,
    ctrl_rx: mpsc::Receiver<RoomCmd>,
    input_rx: mpsc::Receiver<RoomInput>,
    /// Ticks run so far; the number in snapshots.
    tick: u32,
    /// Set when the room emptied and the lobby closed it.
    closed: bool,
    /// Builds each tick's snapshots, reusing its buffers.
    builder: SnapshotBuilder,
    /// Inputs of the tick being run (reused).
    inputs: Vec<(PlayerId, Input)>,
    /// Players whose grace period ended this tick (reused).
    expired: Vec<PlayerId>,
}

impl Room {
    /// A room around `game` (made with `seed`) with no sessions yet, and
    /// the handle that reaches it.
    pub(crate) fn new(
        id: RoomId,
        seed: u64,
        game: Box<dyn Game>,
        lobby: Arc<Lobby>,
        settings: Arc<RoomSettings>,
        metrics: Arc<Metrics>,
    ) -> (Self, RoomHandle) {
        let (ctrl_tx, ctrl_rx) = mpsc::channel(ROOM_COMMAND_QUEUE);
        let (input_tx, input_rx) = mpsc::channel(settings.input_queue);
        let handle = RoomHandle {
            id,
            ctrl: ctrl_tx,
            inputs: input_tx,
        };
        let room = Self {
            id,
            seed,
            game,
            sessions: HashMap::new(),
            lobby,
            settings,
            metrics,
            ctrl_rx,
            input_rx,
            tick: 0,
            closed: false,
            builder: SnapshotBuilder::default(),
            inputs: Vec::new(),
            expired: Vec::new(),
        };
        (room, handle)
    }

    /// Continues the tick count of a restored room.
    pub(crate) fn set_tick(&mut self, tick: u32) {
        self.tick = tick;
    }

    /// Adds a session carried over a restart: the player, which the restored
    /// game must hold, is dropped and waits a whole grace period from now
    /// for its client to resume. Returns false, adding nothing, if the game
    /// does not hold the player or the room already has it.
    pub(crate) fn restore_session(&mut self, saved: &SessionState) -> bool {
        if self.game.player(saved.player).is_none() || self.sessions.contains_key(&saved.player) {
            return false;
        }
        self.game.drop_player(saved.player);
        self.sessions.insert(
            saved.player,
            Session {
                token: saved.token,
                link: None,
                ack: saved.ack,
                dropped_at: Some(Instant::now()),
            },
        );
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
            })
            .collect();
        // Map order is random; a sorted file is easier to compare and debug.
        sessions.sort_unstable_by_key(|s| s.player);
        RoomState {
            id: self.id,
            seed: self.seed,
            tick: self.tick,
            game: self.game.save(),
            sessions,
        }
    }

    /// The room's task: ticks on schedule, answers commands in between.
    pub(crate) async fn run(mut self, mut shutdown: Shutdown, _done: DoneGuard) {
        let mut clock = TickClock::new(Instant::now(), self.settings.tick_period);
        while !self.closed {
            tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                _ = tokio::time::sleep_until(clock.deadline().into()) => {
                    let due = clock.advance(Instant::now());
                    self.run_tick(due);
                }
                cmd = self.ctrl_rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
            }
        }
        // Saved before `_done` drops, so the state is with the lobby by the
        // time shutdown completes and the server writes the file. Only a
        // planned stop saves: a room that emptied has nothing to keep, and
        // one whose controller vanished (the server was dropped without
        // shutting down) was not asked to stop.
        if self.settings.save_on_shutdown
            && shutdown.is_shutting_down()
            && !self.sessions.is_empty()
        {
            self.lobby.keep(self.state());
        }
        self.end();
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
                link,
                reply,
            } => self.resume(player, token, link, reply),
            RoomCmd::Disconnected {
                player,
                conn,
                leave,
            } => {
                let Some(session) = self.sessions.get_mut(&player) else {
                    return;
                };
                if session.link.as_ref().is_none_or(|l| l.conn != conn) {
                    return;
                }
                if leave {
                    self.remove(player);
                } else {
                    self.drop_session(player);
                }
            }
            RoomCmd::Close => {
                if self.sessions.is_empty() {
                    self.closed = true;
                }
            }
        }
    }

    fn welcome(&self, player_id: PlayerId, resume_token: ResumeToken, resumed: bool) -> Welcome {
        let (world_width, world_height, view_radius) = self.settings.world;
        Welcome {
            version: protocol::PROTOCOL_VERSION,
            player_id,
            room_id: self.id,
            resume_token,
            resumed,
            tick_hz: self.settings.tick_hz,
            world_width,
            world_height,
            view_radius,
        }
    }

    fn join(&mut self, reservation: Reservation, link: ConnLink, reply: oneshot::Sender<Welcome>) {
        let player = self.lobby.next_player_id();
        let token = new_token();
        self.game.join(player);
        self.lobby.register(token, self.id, player);
        reservation.consume();
        self.sessions.insert(
            player,
            Session {
                token,
                link: Some(link),
                ack: 0,
                dropped_at: None,
            },
        );
        self.metrics.players.fetch_add(1, Relaxed);
        if reply.send(self.welcome(player, token, false)).is_err() {
            // The connection vanished before it learnt its token, so nobody
            // can ever resume this player.
            self.remove(player);
        }
    }

    fn resume(
        &mut self,
        player: PlayerId,
        token: ResumeToken,
        link: ConnLink,
        reply: oneshot::Sender<Result<Welcome, CloseCode>>,
    ) {
        let valid = self
            .sessions
            .get(&player)
            .is_some_and(|s| tokens_equal(&s.token, &token));
        if !valid {
            let _ = reply.send(Err(CloseCode::InvalidResumeToken));
            return;
        }
        let session = self.sessions.get_mut(&player).expect("checked above");
        match session.link.replace(link) {
            // Still attached: the client came back before we noticed the
            // drop. The old connection is obsolete.
            Some(old) => old.mailbox.kick(CloseCode::SessionTakenOver),
            None => {
                session.dropped_at = None;
                self.game.reconnect(player);
                self.metrics.players_dropped.fetch_sub(1, Relaxed);
            }
        }
        if reply.send(Ok(self.welcome(player, token, true))).is_err() {
            // The new connection vanished while resuming: dropped again.
            self.drop_session(player);
        }
    }

    /// Detaches the player's connection and freezes it for the grace period.
    fn drop_session(&mut self, player: PlayerId) {
        let Some(session) = self.sessions.get_mut(&player) else {
            return;
        };
        if session.link.take().is_some() {
            session.dropped_at = Some(Instant::now());
            self.game.drop_player(player);
            self.metrics.players_dropped.fetch_add(1, Relaxed);
        }
    }

    /// Removes the player for good; closes the room if it was the last.
    fn remove(&mut self, player: PlayerId) {
        let Some(session) = self.sessions.remove(&player) else {
            return;
        };
        self.game.leave(player);
        self.metrics.players.fetch_sub(1, Relaxed);
        if session.link.is_none() {
            self.metrics.players_dropped.fetch_sub(1, Relaxed);
        }
        if self.lobby.release(self.id, Some(&session.token)) {
            self.closed = true;
        }
    }

    fn run_tick(&mut self, due: Due) {
        let started = Instant::now();
        self.metrics.tick_lateness.observe(due.lateness);
        if due.skipped > 0 {
            self.metrics
                .ticks_skipped
                .fetch_add(u64::from(due.skipped), Relaxed);
        }

        self.drain_inputs();
        for step in 0..due.steps {
            let inputs: &[_] = if step == 0 { &self.inputs } else { &[] };
            self.game.step(inputs);
            self.tick = self.tick.wrapping_add(1);
        }
        self.expire_dropped(started);
        self.fan_out();

        let took = started.elapsed();
        self.metrics.tick_duration.observe(took);
        if took > self.settings.tick_period {
            self.metrics.tick_overruns.fetch_add(1, Relaxed);
        }
    }

    /// Moves queued inputs of attached players into the step's input list
    /// and advances their acks.
    fn drain_inputs(&mut self) {
        self.inputs.clear();
        while let Ok(msg) = self.input_rx.try_recv() {
            let Some(session) = self.sessions.get_mut(&msg.player) else {
                continue;
            };
            if session.link.as_ref().is_none_or(|l| l.conn != msg.conn) {
                continue;
            }
            session.ack = session.ack.max(msg.input.seq);
            self.inputs.push((msg.player, msg.input));
        }
    }

    fn expire_dropped(&mut self, now: Instant) {
        let grace = self.settings.resume_grace;
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
        }
    }

    /// Builds every attached player's snapshot and posts it.
    fn fan_out(&mut self) {
        let players = u16::try_from(self.sessions.len()).unwrap_or(u16::MAX);
        let viewers = self
            .sessions
            .iter()
            .filter(|(_, s)| s.link.is_some())
            .map(|(&id, s)| (id, s.ack));
        let snapshots = self.builder.build(&*self.game, self.tick, players, viewers);
        for (player, snapshot) in snapshots.iter() {
            let Some(link) = self.sessions.get(&player).and_then(|s| s.link.as_ref()) else {
                continue;
            };
            let skipped = link.mailbox.put(snapshot);
            if skipped > 0 {
                self.metrics.snapshots_skipped.fetch_add(1, Relaxed);
                if skipped >= self.settings.slow_ticks {
                    link.mailbox.kick(CloseCode::TooSlow);
                }
            }
        }
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
        self.game.end();
        tracing::debug!(
            room = self.id,
            players = self.sessions.len(),
            "room stopped"
        );
    }
}

/// Each room's game seed: the server seed and the room id, mixed
/// (SplitMix64's finaliser) so neighbouring rooms get unrelated worlds.
fn room_seed(seed: u64, room: RoomId) -> u64 {
    let mut z = seed ^ u64::from(room).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A fresh resume token from the operating system's random source.
fn new_token() -> ResumeToken {
    let mut bytes = [0u8; 16];
    // The OS RNG failing is not something a game server can work around:
    // without unguessable tokens, sessions could be stolen.
    getrandom::fill(&mut bytes).expect("the OS random number generator is available");
    ResumeToken(bytes)
}

/// Compares tokens in time independent of where they differ.
fn tokens_equal(a: &ResumeToken, b: &ResumeToken) -> bool {
    a.0.iter().zip(&b.0).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_and_seeds() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b, "128 random bits do not repeat");
        assert!(tokens_equal(&a, &a));
        assert!(!tokens_equal(&a, &b));
        assert_ne!(room_seed(1, 1), room_seed(1, 2));
        assert_ne!(room_seed(1, 1), room_seed(2, 1));
        assert_eq!(room_seed(7, 3), room_seed(7, 3));
    }
}

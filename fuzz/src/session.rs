//! The `session` target's machinery: one live server with both games for
//! the whole fuzz run, a client that plays a [`Plan`] against it over
//! in-memory streams, and the checks on what the server sent back.
//!
//! Each iteration hands the server end of a `tokio::io::duplex` pair to
//! [`Sessions::serve`], exactly as `/ws` does after its upgrade, writes the
//! plan's bytes into the client end, closes the client's write side and
//! reads until the server closes the stream. A takeover step opens a second
//! connection that resumes the first one's session; an opponent step opens
//! one that joins the first one's room as another player and plays. The
//! harness remembers the rooms, invite codes and sessions the server gave
//! out recently, and the last event it saw of each session, so that later
//! inputs can join those rooms and resume those sessions. Not a test of
//! HTTP or the upgrade: those live in the integration tests.
//!
//! What is checked, beyond "no panic" (the target aborts on any panic,
//! including one in a server task) and "done within [`ITERATION_LIMIT`]":
//! - the server's bytes are valid server-to-client WebSocket frames
//!   ([`ws::parse_server_frames`]), fastwebsockets' own client parser reads
//!   the same frames, at most one close frame is sent and nothing follows it;
//! - a close frame carries a code the server sends ([`CloseCode::ALL`]) or
//!   the echo of a valid code the client sent, and a UTF-8 reason; 4007
//!   (session taken over) appears only when the input made a takeover;
//! - a connection that opened with a `Hello` gets, as its very first frame,
//!   a `Welcome` or one of the refusals that apply to its request (4001,
//!   4009–4014, 4018 for a new player, computed per request; 4002 for a
//!   resume; 1007 or 1009 for a `Hello` that breaks the protocol's bounds);
//! - every binary frame decodes as a `ServerMsg`; a `Welcome` comes first
//!   and once, with the server's protocol version, the tick rate of its
//!   room's type, the requested room type (and room, player, token, invite
//!   code, where the request names them), and game data its game decodes;
//! - every `State` decodes as its room's game state: an arena state holds
//!   the player's own entity, a four state seats the player; ticks rise and
//!   acks never fall; every `Event` decodes as its game's event (the arena
//!   sends none);
//! - events arrive numbered consecutively: a new session's from 1, a
//!   resumed one's from `last_event + 1` when the resume claimed the last
//!   event this harness saw and nothing since acknowledged more;
//! - pongs echo a ping the client sent (when the input keeps its framing);
//! - the player and room gauges never go negative.

use crate::script::{
    self, GameKind, LastEvent, MAX_AWAIT, Opening, Opponent, Plan, Request, Seat, Second, Step,
    TokenChoice,
};
use crate::ws::{self, ServerFrame};
use arena::ArenaConfig;
use arena::msg::{ArenaState, ArenaWelcome, EntityKind, Move};
use fastwebsockets::{Role, WebSocketError};
use four::msg::{CELLS, COLUMNS, FourEvent, FourMsg, FourState, FourWelcome, ROWS, Status};
use game_api::{RoomOptions, RoomType};
use protocol::limits::normalize_code;
use protocol::{
    ClientMsg, CloseCode, EventAck, Ping, ResumeToken, RoomRequest, ServerMsg, Welcome,
};
use server::Server;
use server::Sessions;
use server::config::Config;
use server::metrics::Metrics;
use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, WriteHalf};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The fuzz server's options (over the defaults). Timeouts are short so
/// that a timed input's pauses ([`script::MAX_PAUSE`] in all) reach them
/// (handshake, idle) and see ticks (120 Hz) and WebSocket pings (every
/// 8 ms); a dropped player's grace (1 s) outlives its iteration, so later
/// inputs can resume it; empty rooms linger 50 ms (four's own two minutes
/// would fill the room limit with the fuzzer's abandoned tables), long
/// enough for the next inputs to join them by id or code.
pub const SERVER_ARGS: &[&str] = &[
    "--listen",
    "127.0.0.1:0",
    "--seed",
    "7",
    "--tick-hz",
    "120",
    "--max-rooms",
    "256",
    "--room-linger",
    "50ms",
    "--handshake-timeout",
    "10ms",
    "--idle-timeout",
    "20ms",
    "--ping-interval",
    "8ms",
    "--resume-grace",
    "1s",
];

/// Seats of a fuzz arena room: small, so that rooms fill, open and close
/// often.
pub const ARENA_CAPACITY: u16 = 16;

/// Tick rate of the fuzz server's four rooms (the game's own is 20 Hz, the
/// most a room type may ask for 240): a move is applied at the next tick,
/// and a played game should cost the fuzzer tens of milliseconds, not
/// seconds. An idle four room's tick is cheap (its states are sent only
/// when they change).
pub const FOUR_TICK_HZ: u16 = 240;

/// The fuzz server's arena: a small field with few pickups, so that a
/// player's view holds a handful of entities and states stay cheap.
pub fn arena_config() -> ArenaConfig {
    ArenaConfig {
        world_width: 600,
        world_height: 600,
        view_radius: 150,
        pickups: 12,
        pickup_respawn_ticks: 30,
        ..ArenaConfig::default()
    }
}

/// The room types the fuzz server registers.
pub fn room_types() -> Vec<RoomType> {
    vec![
        arena::room_type(arena_config()).capacity(ARENA_CAPACITY),
        four::room_type().tick_hz(FOUR_TICK_HZ),
    ]
}

/// Longest an iteration may take. The server's own bounds (a close
/// handshake waits at most 1 s to write and 2 s for the answer; the
/// handshake and idle timeouts are tens of milliseconds here) plus the
/// input's pauses and plays fit well inside it; going past it means a task
/// waits for something that never comes.
pub const ITERATION_LIMIT: Duration = Duration::from_secs(5);

/// How long a takeover or an opponent waits for the `Welcome` of a first
/// connection that opened with a `Hello`. A `Welcome` that is coming
/// arrives within a millisecond, and a refusal ends the wait at once; the
/// bound only matters when the server answers nothing.
const WELCOME_WAIT: Duration = Duration::from_millis(20);

/// Capacity of each in-memory stream, per direction: more than a frame the
/// server accepts, so that writes rarely wait.
const DUPLEX_CAPACITY: usize = 128 * 1024;

/// Rooms and sessions remembered for joins by id or code and for resumes.
/// A few dozen: the fuzzer runs thousands of inputs a second, so the
/// oldest of these are tens of milliseconds old, well within the resume
/// grace.
const RECENT: usize = 32;

/// A code no room has: what a join by a recent code sends before any room
/// has one.
const NO_CODE: &str = "2222-2222";

/// The server and the runtime it runs on, built once per fuzz process.
pub struct Harness {
    /// Runs the server's tasks (two workers, like the 2-core machines this
    /// runs on) and each iteration's clients.
    runtime: tokio::runtime::Runtime,
    /// Serves each in-memory connection, as `/ws` does after its upgrade.
    sessions: Sessions,
    /// The server's metrics, for the gauge checks.
    metrics: Arc<Metrics>,
    /// Each registered game's tick rate, for the `Welcome` checks.
    tick_hz: Vec<(GameKind, u16)>,
    /// Kept alive so that its shutdown controller never fires.
    _server: Mutex<Server>,
    /// Rooms and sessions from recent `Welcome`s.
    memory: Mutex<Memory>,
    /// Held by the iteration that runs: the checks assume that no other
    /// client touches this one's sessions meanwhile (libFuzzer runs one
    /// input at a time; tests may not).
    running: Mutex<()>,
    /// Print each connection's frames to stderr (`FUZZ_TRACE=1`), for
    /// reading what a crashing input did.
    trace: bool,
    /// Print the server's gauges every this many iterations
    /// (`FUZZ_STATS=N`), to see what state the fuzzing leaves behind.
    stats_every: u64,
    /// Print every input that takes longer than this many microseconds
    /// (`FUZZ_SLOW=N`), to see what the fuzzer's time goes to.
    slow_us: Option<u64>,
    /// Iterations so far.
    iterations: std::sync::atomic::AtomicU64,
    /// Microseconds spent in iterations so far, for `FUZZ_STATS`.
    busy_us: std::sync::atomic::AtomicU64,
}

/// The process-wide harness, created on first use.
pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(Harness::new)
}

/// Makes any panic, on any thread, abort the process after the usual
/// message. Without it a panic in a server task would only end that task,
/// and the fuzzer would never hear of it. (libfuzzer-sys installs the same
/// hook; this one does not depend on that.)
pub fn abort_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        std::process::abort();
    }));
}

/// A room the server welcomed a player into.
#[derive(Clone, Debug)]
struct RoomRecord {
    /// Its id.
    id: u32,
    /// Its game.
    game: GameKind,
    /// Its invite code, if private.
    invite_code: Option<String>,
    /// The game's part of its `Welcome`s (the same for every player).
    welcome: Vec<u8>,
}

impl RoomRecord {
    /// The room `w` welcomed a player into, of `game`.
    fn of(w: &Welcome, game: GameKind) -> Self {
        Self {
            id: w.room_id,
            game,
            invite_code: w.invite_code.clone(),
            welcome: w.game.clone(),
        }
    }
}

/// A session the server opened.
#[derive(Clone, Debug)]
struct SessionRecord {
    /// Resumes it.
    token: ResumeToken,
    /// Its player.
    player: u32,
    /// Its room.
    room: RoomRecord,
    /// The last event any of its connections received (0 for none).
    last_event: u32,
    /// No acknowledgement or resume ever claimed more than
    /// [`SessionRecord::last_event`] at the time: every later event is
    /// still held by the server.
    exact: bool,
}

/// What the harness remembers between iterations, newest last.
#[derive(Default)]
struct Memory {
    /// Rooms from recent `Welcome`s.
    rooms: VecDeque<RoomRecord>,
    /// Sessions from recent `Welcome`s.
    sessions: VecDeque<SessionRecord>,
}

/// The `i`-th newest of `items` that `keep` accepts, wrapping around.
fn nth_newest<T>(items: &VecDeque<T>, i: u8, keep: impl Fn(&T) -> bool) -> Option<&T> {
    let count = items.iter().filter(|t| keep(t)).count();
    items
        .iter()
        .rev()
        .filter(|t| keep(t))
        .nth(usize::from(i) % count.max(1))
}

impl Memory {
    /// Remembers what a connection's `Welcome` opened, merging with what
    /// is known of its session.
    fn note(&mut self, joined: Joined) {
        let Joined {
            welcome: w,
            game,
            last_event,
            exact,
        } = joined;
        let room = RoomRecord::of(&w, game);
        self.rooms.retain(|r| r.id != room.id);
        self.rooms.push_back(room.clone());
        let old = self
            .sessions
            .iter()
            .position(|s| s.token == w.resume_token)
            .and_then(|i| self.sessions.remove(i));
        let session = match old {
            Some(old) => SessionRecord {
                last_event: old.last_event.max(last_event.unwrap_or(0)),
                exact: old.exact && exact,
                room,
                ..old
            },
            None => SessionRecord {
                token: w.resume_token,
                player: w.player_id,
                room,
                last_event: last_event.unwrap_or(0),
                // A resumed session this harness never saw (or forgot) may
                // have had events it does not know of.
                exact: exact && !w.resumed,
            },
        };
        self.sessions.push_back(session);
        if self.rooms.len() > RECENT {
            self.rooms.pop_front();
        }
        if self.sessions.len() > RECENT {
            self.sessions.pop_front();
        }
    }
}

/// What a connection's `Welcome` opened, for [`Memory::note`].
struct Joined {
    /// The `Welcome`.
    welcome: Welcome,
    /// Its room's game.
    game: GameKind,
    /// The last event the connection received.
    last_event: Option<u32>,
    /// Whether this connection kept the session's events exact (see
    /// [`SessionRecord::exact`]).
    exact: bool,
}

/// The invite code a `Welcome` must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Invite {
    /// Any (a valid code, if there is one).
    Any,
    /// None: the room is public.
    Absent,
    /// A code: a new private room.
    Fresh,
    /// This code.
    Is(String),
}

impl Invite {
    /// The code of a room known to have `code`.
    fn of(code: &Option<String>) -> Self {
        code.clone().map_or(Invite::Absent, Invite::Is)
    }
}

/// What a connection that opened with a `Hello` must be answered with.
#[derive(Clone, Debug)]
struct Expected {
    /// Close codes that may answer the `Hello` instead of a `Welcome`.
    refusals: Vec<u16>,
    /// The game of the room the `Welcome` names (`None`: any registered).
    game: Option<GameKind>,
    /// The room it names.
    room_id: Option<u32>,
    /// For a resume: the player (when known) and the token it resumes.
    resumes: Option<(Option<u32>, ResumeToken)>,
    /// The invite code it carries.
    invite: Invite,
    /// The game's part of it, when known exactly (otherwise it must only
    /// be valid for its game).
    welcome: Option<Vec<u8>>,
}

impl Expected {
    /// A refusal with one of `refusals`, or a `Welcome` for a new player
    /// about which nothing else is known.
    fn new_player(refusals: &[CloseCode]) -> Self {
        Self {
            refusals: refusals.iter().map(|c| c.code()).collect(),
            game: None,
            room_id: None,
            resumes: None,
            invite: Invite::Any,
            welcome: None,
        }
    }

    /// What a `Hello` for a new player with `request` must get, from the
    /// request alone (and the size of the `Hello`).
    fn for_request(request: &RoomRequest, hello_len: usize) -> Self {
        use CloseCode::*;
        if hello_len > protocol::MAX_CLIENT_MSG_BYTES {
            return Self::new_player(&[MessageTooBig]);
        }
        if protocol::limits::check_request(request).is_err() {
            return Self::new_player(&[InvalidPayload]);
        }
        match request {
            RoomRequest::QuickJoin { room_type, options }
            | RoomRequest::Create {
                room_type, options, ..
            } => {
                let Some(game) = GameKind::from_name(room_type) else {
                    return Self::new_player(&[UnknownRoomType]);
                };
                let private = matches!(request, RoomRequest::Create { private: true, .. });
                // A game refuses options it does not take (4014) when it
                // makes a room; a quick join may still find a room of the
                // type to join, and then the game never sees them.
                let welcome = expected_game_welcome(game, options);
                let mut e = if welcome.is_some() {
                    Self::new_player(&[RoomFull])
                } else {
                    Self::new_player(&[RoomFull, RefusedByGame])
                };
                e.game = Some(game);
                e.invite = if private {
                    Invite::Fresh
                } else {
                    Invite::Absent
                };
                e.welcome = welcome;
                e
            }
            RoomRequest::JoinById { room_id } => {
                let mut e = Self::new_player(&[
                    NoSuchRoom,
                    RoomLocked,
                    RoomAtCapacity,
                    RoomPrivate,
                    RefusedByGame,
                ]);
                e.room_id = Some(*room_id);
                // A join by id reaches public rooms only, and no game here
                // makes a private room public.
                e.invite = Invite::Absent;
                e
            }
            RoomRequest::JoinByCode { code } => {
                let mut e = Self::new_player(&[
                    NoSuchRoom,
                    RoomLocked,
                    RoomAtCapacity,
                    RefusedByGame,
                    TooManyAttempts,
                ]);
                if let Some(code) = normalize_code(code) {
                    e.invite = Invite::Is(code);
                }
                e
            }
            // The fuzzed server is one process, with no directory: no
            // ticket is valid there.
            RoomRequest::Reserved { .. } => Self::new_player(&[InvalidTicket]),
        }
    }

    /// Narrows a join of `room` to what is known of it.
    fn in_room(mut self, room: &RoomRecord) -> Self {
        self.game = Some(room.game);
        self.welcome = Some(room.welcome.clone());
        self
    }

    /// A resume with `token`, of `player` in `room` when known: its
    /// `Welcome` or 4002.
    fn resuming(token: ResumeToken, known: Option<(u32, &RoomRecord)>) -> Self {
        let mut e = Self::new_player(&[CloseCode::InvalidResumeToken]);
        e.resumes = Some((known.map(|(player, _)| player), token));
        if let Some((_, room)) = known {
            e.room_id = Some(room.id);
            e.invite = Invite::of(&room.invite_code);
            e = e.in_room(room);
        }
        e
    }
}

/// The game's part of the `Welcome` of a room of `game` created with
/// `options`, or `None` if the game refuses those options.
fn expected_game_welcome(game: GameKind, options: &[(String, String)]) -> Option<Vec<u8>> {
    match game {
        GameKind::Arena => {
            let config = arena_config()
                .for_options(&RoomOptions::new(options.to_vec()))
                .ok()?;
            Some(game_api::codec::to_vec(&ArenaWelcome {
                world_width: config.world_width,
                world_height: config.world_height,
                view_radius: config.view_radius,
                player_speed: config.player_speed,
            }))
        }
        GameKind::Four => options.is_empty().then(|| {
            game_api::codec::to_vec(&FourWelcome {
                columns: COLUMNS as u8,
                rows: ROWS as u8,
            })
        }),
    }
}

/// How the first connection opens, resolved against the harness's memory.
struct Opened {
    /// The bytes it opens with.
    bytes: Vec<u8>,
    /// What it must be answered with (`None`: it opened with no `Hello`).
    expect: Option<Expected>,
    /// The numbers its first event may have, when known (a resume that
    /// claimed the true last event).
    events: Option<RangeInclusive<u32>>,
    /// Whether its session's events are exact so far: the resumed session
    /// was, and this resume claimed the last event seen.
    exact: bool,
    /// The `last_event` its resume claimed (0 for a new player): the
    /// server forgets the events up to it, whether or not any later one
    /// arrives on this connection.
    claim: u32,
}

/// What one connection needs for its checks.
struct Checks<'a> {
    /// Names the connection in failure messages.
    what: &'static str,
    /// What its first frame must be (`None`: it opened with no `Hello`).
    expect: Option<Expected>,
    /// The numbers its first event may have after a resume, when known.
    events: Option<RangeInclusive<u32>>,
    /// The input being played (pings and close codes sent, takeovers).
    plan: &'a Plan,
    /// False for the other connections, whose pongs answer their own pings
    /// rather than the plan's.
    plan_pings: bool,
}

/// What the checks saw on one connection.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Names the connection.
    pub what: &'static str,
    /// The `Welcome`, with its room's game.
    pub welcome: Option<(Welcome, GameKind)>,
    /// The last event received.
    pub last_event: Option<u32>,
    /// The data of every event received, in order.
    pub events: Vec<Vec<u8>>,
    /// The code of the server's close frame, if it sent one with a code.
    pub close: Option<u16>,
}

/// A takeover connection on its way.
struct TakeoverRun {
    /// What its resume must be answered with.
    expect: Expected,
    /// The `last_event` its resume claimed: the last event the session had
    /// seen when it opened.
    claim: u32,
    /// Runs it; returns what the server sent it.
    task: JoinHandle<Vec<u8>>,
}

/// An opponent connection on its way.
struct OpponentRun {
    /// What its `Hello` must be answered with.
    expect: Expected,
    /// Tells it that the script has ended.
    stop: watch::Sender<bool>,
    /// What it has received, when it plays: a play waits for its moves.
    partner: Option<Partner>,
    /// Runs it; returns what the server sent it.
    task: JoinHandle<Vec<u8>>,
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let config = Config::from_args(SERVER_ARGS).expect("the fuzz server's options are valid");
        let types = room_types();
        let tick_hz = types
            .iter()
            .map(|t| {
                let game = GameKind::from_name(t.name()).expect("only the two games");
                (game, t.settings().tick_hz.unwrap_or(config.tick_hz))
            })
            .collect();
        let server = runtime
            .block_on(Server::builder(config.clone()).room_types(types).bind())
            .expect("bind 127.0.0.1:0");
        Self {
            sessions: server.sessions(),
            metrics: server.metrics(),
            tick_hz,
            _server: Mutex::new(server),
            runtime,
            memory: Mutex::new(Memory::default()),
            running: Mutex::new(()),
            trace: std::env::var_os("FUZZ_TRACE").is_some(),
            stats_every: std::env::var("FUZZ_STATS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            slow_us: std::env::var("FUZZ_SLOW").ok().and_then(|n| n.parse().ok()),
            iterations: std::sync::atomic::AtomicU64::new(0),
            busy_us: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Plays one input against the server; panics on any finding. Returns
    /// what each connection saw (first, takeovers, opponent), for tests.
    pub fn run(&self, data: &[u8]) -> Vec<Seen> {
        let _running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let plan = script::parse(data);
        let progress = Arc::new(Progress::default());
        let started = std::time::Instant::now();
        let seen = self.runtime.block_on(async {
            match tokio::time::timeout(ITERATION_LIMIT, self.play(&plan, &progress)).await {
                Ok(seen) => seen,
                Err(_) => panic!(
                    "hang: the iteration took longer than {ITERATION_LIMIT:?}\nplan: {plan:?}\n{}",
                    progress.report()
                ),
            }
        });
        if self.trace {
            eprintln!("{}", progress.report());
        }
        let m = &self.metrics;
        let n = self.iterations.fetch_add(1, Relaxed) + 1;
        let took = started.elapsed().as_micros() as u64;
        let busy = self.busy_us.fetch_add(took, Relaxed) + took;
        if self.slow_us.is_some_and(|slow| took > slow) {
            eprintln!("slow input ({took} us): {data:02x?}");
        }
        if self.stats_every > 0 && n.is_multiple_of(self.stats_every) {
            eprintln!(
                "session stats after {n} iterations ({} us each on average): players {} \
                 (dropped {}), rooms {}, resumes {}, resumes refused {}, events sent {}",
                busy / n,
                m.players.load(Relaxed),
                m.players_dropped.load(Relaxed),
                m.rooms.load(Relaxed),
                m.resumes.load(Relaxed),
                m.resumes_refused.load(Relaxed),
                m.events_sent.load(Relaxed),
            );
        }
        for (name, gauge) in [
            ("players", &m.players),
            ("players_dropped", &m.players_dropped),
            ("rooms", &m.rooms),
        ] {
            let v = gauge.load(Relaxed);
            assert!(v >= 0, "gauge {name} went negative: {v}");
        }
        seen
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tick rate of `game`'s rooms.
    fn tick_hz(&self, game: GameKind) -> u16 {
        self.tick_hz
            .iter()
            .find(|(g, _)| *g == game)
            .map(|(_, hz)| *hz)
            .expect("every game is registered")
    }

    /// The bytes that open a connection, and what they must be answered
    /// with.
    fn opening(&self, opening: &Opening) -> Opened {
        let memory = self.memory();
        match opening {
            Opening::None => Opened {
                bytes: Vec::new(),
                expect: None,
                events: None,
                exact: true,
                claim: 0,
            },
            Opening::Hello(request) => {
                let (room, known) = match request {
                    Request::RecentRoom(i) => match nth_newest(&memory.rooms, *i, |_| true) {
                        Some(r) => (RoomRequest::JoinById { room_id: r.id }, Some(r)),
                        // No room has id 0: room ids start at 1.
                        None => (RoomRequest::JoinById { room_id: 0 }, None),
                    },
                    Request::RecentCode(i) => {
                        match nth_newest(&memory.rooms, *i, |r| r.invite_code.is_some()) {
                            Some(r) => {
                                let code = r.invite_code.clone().expect("filtered");
                                (RoomRequest::JoinByCode { code }, Some(r))
                            }
                            None => (
                                RoomRequest::JoinByCode {
                                    code: NO_CODE.into(),
                                },
                                None,
                            ),
                        }
                    }
                    fixed => (fixed.fixed().expect("not a recent one"), None),
                };
                let msg = script::hello(room.clone());
                let mut expect = Expected::for_request(&room, script::message_bytes(&msg).len());
                if let Some(known) = known {
                    expect = expect.in_room(known);
                }
                Opened {
                    bytes: script::msg_frame(&msg),
                    expect: Some(expect),
                    events: None,
                    exact: true,
                    claim: 0,
                }
            }
            Opening::Resume { token, last_event } => {
                let session = match token {
                    TokenChoice::Recent(i) => nth_newest(&memory.sessions, *i, |_| true),
                    TokenChoice::Given(_) => None,
                };
                let token = match (token, session) {
                    (_, Some(s)) => s.token,
                    (TokenChoice::Given(t), None) => ResumeToken(*t),
                    (TokenChoice::Recent(_), None) => ResumeToken([0; 16]),
                };
                let (claim, exact) = match last_event {
                    LastEvent::Seen => session.map_or((0, true), |s| (s.last_event, s.exact)),
                    LastEvent::Given(n) => (*n, false),
                };
                let next = claim.wrapping_add(1);
                let events = (exact && session.is_some()).then_some(next..=next);
                Opened {
                    bytes: script::msg_frame(&script::resume_hello(token, claim)),
                    expect: Some(Expected::resuming(
                        token,
                        session.map(|s| (s.player, &s.room)),
                    )),
                    events,
                    exact,
                    claim,
                }
            }
        }
    }

    /// The request an opponent sends to join the room `w` welcomed the
    /// first connection into, and what it must be answered with.
    fn opponent_request(o: &Opponent, w: &Welcome, game: GameKind) -> (RoomRequest, Expected) {
        let room = RoomRecord::of(w, game);
        let request = match (o.seat, &w.invite_code) {
            (Seat::ByCode, Some(code)) => RoomRequest::JoinByCode { code: code.clone() },
            (Seat::Quick, _) => RoomRequest::quick(game.name()),
            _ => RoomRequest::JoinById { room_id: w.room_id },
        };
        let len = script::message_bytes(&script::hello(request.clone())).len();
        let expect = Expected::for_request(&request, len);
        let expect = match request {
            RoomRequest::QuickJoin { .. } => expect,
            _ => expect.in_room(&room),
        };
        (request, expect)
    }

    async fn play(&self, plan: &Plan, progress: &Arc<Progress>) -> Vec<Seen> {
        let opened = self.opening(&plan.opening);
        let mut first = Client::open(&self.sessions, "first", progress, &opened.bytes).await;
        // Only a connection that opened with a `Hello` is worth waiting
        // for; a later `Hello` may still have been answered by now.
        let welcome_wait = if plan.opening == Opening::None {
            Duration::ZERO
        } else {
            WELCOME_WAIT
        };
        let mut takeovers: Vec<TakeoverRun> = Vec::new();
        let mut opponent: Option<OpponentRun> = None;
        let mut budget = MAX_AWAIT;
        for (i, step) in plan.steps.iter().enumerate() {
            if first.broken {
                // The server dropped the stream: nothing more can arrive.
                progress.note("first", "write failed: the server dropped the stream");
                break;
            }
            progress.note("first", &format!("step {i}"));
            match step {
                Step::Write(bytes) => first.write(bytes).await,
                Step::Pause(d) => tokio::time::sleep(*d).await,
                Step::Yield => tokio::task::yield_now().await,
                Step::AckSeen => first.ack_seen().await,
                Step::Play {
                    moves,
                    column,
                    first_seq,
                } => {
                    let partner = opponent.as_ref().and_then(|o| o.partner.clone());
                    first
                        .play(*moves, *column, *first_seq, &mut budget, partner)
                        .await;
                }
                Step::Takeover(second) => {
                    let Some(w) = first.welcome(welcome_wait).await else {
                        continue;
                    };
                    // What the session has seen: what its resume claimed,
                    // or a later event this connection received.
                    let claim = first.last_seen().max(opened.claim);
                    let name = if takeovers.is_empty() {
                        "takeover 1"
                    } else {
                        "takeover 2"
                    };
                    let hello = script::msg_frame(&script::resume_hello(w.resume_token, claim));
                    let client = Client::open(&self.sessions, name, progress, &hello).await;
                    // A room of no registered game fails the first
                    // connection's checks; resume it all the same.
                    let room =
                        GameKind::from_name(&w.room_type).map(|game| RoomRecord::of(&w, game));
                    let known = room.as_ref().map(|room| (w.player_id, room));
                    let game = room.as_ref().map(|room| room.game);
                    takeovers.push(TakeoverRun {
                        expect: Expected::resuming(w.resume_token, known),
                        claim,
                        task: tokio::spawn(take_over(client, *second, game)),
                    });
                }
                Step::Opponent(o) => {
                    if opponent.is_some() {
                        continue;
                    }
                    let Some(w) = first.welcome(welcome_wait).await else {
                        continue;
                    };
                    // A room of no registered game fails the first
                    // connection's checks; there is nothing to join.
                    let Some(game) = GameKind::from_name(&w.room_type) else {
                        continue;
                    };
                    let (request, expect) = Self::opponent_request(o, &w, game);
                    let hello = script::msg_frame(&script::hello(request));
                    let client = Client::open(&self.sessions, "opponent", progress, &hello).await;
                    let (stop, stopped) = watch::channel(false);
                    opponent = Some(OpponentRun {
                        expect,
                        stop,
                        partner: o.plays.then(|| Partner {
                            live: client.live.clone(),
                            rematch: o.rematch,
                        }),
                        task: tokio::spawn(play_opponent(client, *o, game, stopped)),
                    });
                }
            }
        }
        let acked = first.acked;
        let out = first.finish().await;
        if let Some(o) = &opponent {
            let _ = o.stop.send(true);
        }
        // The takeovers resume the first connection's session, whose
        // events stay exact only if this plan's acknowledgements are.
        let session_exact = opened.exact && plan.acks_exact;
        // What each connection saw, with whether it kept its session's
        // events exact.
        let mut all = Vec::new();
        let seen = self
            .check(
                &out,
                Checks {
                    what: "first connection",
                    expect: opened.expect,
                    events: opened.events,
                    plan,
                    plan_pings: true,
                },
            )
            .await;
        all.push((seen, session_exact));
        for t in takeovers {
            let out = t.task.await.expect("the takeover task does not panic");
            // The resume claimed what the first connection had received;
            // an acknowledgement it wrote later may have reached the room
            // before the resume did, and forgotten more.
            let events =
                session_exact.then(|| t.claim.wrapping_add(1)..=t.claim.max(acked).wrapping_add(1));
            let seen = self
                .check(
                    &out,
                    Checks {
                        what: "takeover connection",
                        expect: Some(t.expect),
                        events,
                        plan,
                        plan_pings: false,
                    },
                )
                .await;
            all.push((seen, session_exact));
        }
        if let Some(o) = opponent {
            let out = o.task.await.expect("the opponent task does not panic");
            let seen = self
                .check(
                    &out,
                    Checks {
                        what: "opponent",
                        expect: Some(o.expect),
                        events: None,
                        plan,
                        plan_pings: false,
                    },
                )
                .await;
            // The opponent acknowledges only what it received.
            all.push((seen, true));
        }
        let mut memory = self.memory();
        for (seen, exact) in &all {
            if let Some(joined) = seen.joined(*exact) {
                memory.note(joined);
            }
        }
        all.into_iter().map(|(seen, _)| seen).collect()
    }

    /// Checks everything the server sent on one connection.
    async fn check(&self, out: &[u8], c: Checks<'_>) -> Seen {
        let what = c.what;
        let frames = ws::parse_server_frames(out)
            .unwrap_or_else(|e| panic!("{what}: invalid server frames: {e}; bytes: {out:02x?}"));
        if self.trace {
            trace(what, c.plan, &frames);
        }
        let theirs = fastwebsockets_frames(out).await;
        assert_eq!(
            frames, theirs,
            "{what}: fastwebsockets reads the server's bytes differently"
        );
        let mut welcome: Option<(Welcome, GameKind)> = None;
        let mut closed = false;
        let mut last_tick: Option<u32> = None;
        let mut last_ack = 0;
        let mut last_event: Option<u32> = None;
        let mut events = Vec::new();
        let mut close = None;
        for (i, f) in frames.iter().enumerate() {
            assert!(
                !closed,
                "{what}: frame {i} follows the close frame: {frames:?}"
            );
            match f.opcode {
                ws::CLOSE => {
                    closed = true;
                    let code = check_close(&c, &f.payload);
                    close = code;
                    assert!(
                        code != Some(CloseCode::SessionTakenOver.code()) || c.plan.has_takeover(),
                        "{what}: closed as taken over, but nothing took it over"
                    );
                }
                ws::BINARY => {
                    let msg = protocol::decode_server(&f.payload).unwrap_or_else(|e| {
                        panic!(
                            "{what}: frame {i} is not a ServerMsg: {e}: {:02x?}",
                            f.payload
                        )
                    });
                    if let ServerMsg::Welcome(w) = msg {
                        assert!(welcome.is_none(), "{what}: a second Welcome");
                        let game = self.check_welcome(&c, &w);
                        welcome = Some((w, game));
                        continue;
                    }
                    let Some((w, game)) = &welcome else {
                        panic!("{what}: {msg:?} before the Welcome")
                    };
                    match msg {
                        ServerMsg::Welcome(_) => unreachable!("handled above"),
                        ServerMsg::State(s) => {
                            assert!(
                                last_tick.is_none_or(|t| s.tick > t),
                                "{what}: state of tick {} after tick {last_tick:?}",
                                s.tick
                            );
                            assert!(
                                s.ack >= last_ack,
                                "{what}: ack {} after ack {last_ack}",
                                s.ack
                            );
                            (last_tick, last_ack) = (Some(s.tick), s.ack);
                            check_state(what, *game, w.player_id, &s.data);
                        }
                        ServerMsg::Event(e) => {
                            match last_event {
                                Some(prev) => assert_eq!(
                                    e.seq,
                                    prev.wrapping_add(1),
                                    "{what}: event {} after event {prev}",
                                    e.seq
                                ),
                                None if !w.resumed => assert_eq!(
                                    e.seq, 1,
                                    "{what}: a new session's first event is {}",
                                    e.seq
                                ),
                                None => {
                                    if let Some(range) = &c.events {
                                        assert!(
                                            range.contains(&e.seq),
                                            "{what}: the first event after a resume is {}, \
                                             not in {range:?}",
                                            e.seq
                                        );
                                    }
                                }
                            }
                            last_event = Some(e.seq);
                            check_event(what, *game, &e.data);
                            events.push(e.data);
                        }
                        ServerMsg::Redirect(r) => {
                            panic!("{what}: {r:?} from a server without a directory")
                        }
                        ServerMsg::Pong(p) => {
                            if c.plan_pings && c.plan.exact {
                                assert!(
                                    c.plan.app_pings.contains(&p.t),
                                    "{what}: Pong {} answers no ping sent",
                                    p.t
                                );
                            }
                        }
                    }
                }
                ws::PING => {
                    assert!(welcome.is_some(), "{what}: a ping before the Welcome");
                    assert!(f.payload.is_empty(), "{what}: a ping with a payload");
                }
                ws::PONG => {
                    if c.plan_pings && c.plan.exact {
                        assert!(
                            c.plan.ws_pings.contains(&f.payload),
                            "{what}: pong {:02x?} echoes no ping sent",
                            f.payload
                        );
                    }
                }
                other => unreachable!("parse_server_frames refuses opcode {other}"),
            }
        }
        check_first(&c, &frames);
        Seen {
            what,
            welcome,
            last_event,
            events,
            close,
        }
    }

    /// Checks a `Welcome` against the server's settings and what the
    /// connection asked for; returns its room's game.
    fn check_welcome(&self, c: &Checks<'_>, w: &Welcome) -> GameKind {
        let what = c.what;
        assert_eq!(w.version, protocol::PROTOCOL_VERSION, "{what}: {w:?}");
        let game = GameKind::from_name(&w.room_type)
            .unwrap_or_else(|| panic!("{what}: a room of no registered type: {w:?}"));
        assert_eq!(w.tick_hz, self.tick_hz(game), "{what}: {w:?}");
        check_game_welcome(what, game, &w.game);
        if let Some(code) = &w.invite_code {
            assert_eq!(
                normalize_code(code).as_deref(),
                Some(code.as_str()),
                "{what}: invite code {code:?} is not in its canonical form"
            );
        }
        let Some(e) = &c.expect else {
            return game;
        };
        let context = || format!("{what}: {w:?}, expected {e:?}");
        assert!(e.game.is_none_or(|g| g == game), "{}", context());
        assert!(e.room_id.is_none_or(|r| r == w.room_id), "{}", context());
        assert!(
            e.welcome.as_ref().is_none_or(|g| *g == w.game),
            "{}",
            context()
        );
        match &e.invite {
            Invite::Any => {}
            Invite::Absent => assert_eq!(w.invite_code, None, "{}", context()),
            Invite::Fresh => assert!(w.invite_code.is_some(), "{}", context()),
            Invite::Is(code) => assert_eq!(w.invite_code.as_ref(), Some(code), "{}", context()),
        }
        match e.resumes {
            None => assert!(!w.resumed, "{}", context()),
            Some((player, token)) => {
                assert!(w.resumed, "{}", context());
                assert_eq!(w.resume_token, token, "{}", context());
                assert!(player.is_none_or(|p| p == w.player_id), "{}", context());
            }
        }
        game
    }
}

impl Seen {
    /// What to remember of this connection's session, if it had one.
    fn joined(&self, exact: bool) -> Option<Joined> {
        let (welcome, game) = self.welcome.clone()?;
        Some(Joined {
            welcome,
            game,
            last_event: self.last_event,
            exact,
        })
    }
}

/// Prints what a connection received (`FUZZ_TRACE=1`).
fn trace(what: &str, plan: &Plan, frames: &[ServerFrame]) {
    eprintln!("{what}: plan {plan:?}");
    for f in frames {
        let msg = (f.opcode == ws::BINARY).then(|| protocol::decode_server(&f.payload));
        match (f.opcode, msg) {
            (_, Some(msg)) => eprintln!("  <- {msg:?}"),
            (ws::CLOSE, None) => eprintln!(
                "  <- close {:?} {:?}",
                close_code(&f.payload),
                String::from_utf8_lossy(f.payload.get(2..).unwrap_or_default())
            ),
            (op, None) => eprintln!("  <- opcode {op:#x} {:02x?}", f.payload),
        }
    }
}

/// The game's part of a `Welcome` must be what its game sends: the fuzz
/// arena's field (at either pace) or four's board size.
fn check_game_welcome(what: &str, game: GameKind, bytes: &[u8]) {
    match game {
        GameKind::Arena => {
            let w: ArenaWelcome = game_api::codec::decode(bytes)
                .unwrap_or_else(|e| panic!("{what}: arena welcome data: {e}: {bytes:02x?}"));
            let c = arena_config();
            assert_eq!(
                (w.world_width, w.world_height, w.view_radius),
                (c.world_width, c.world_height, c.view_radius),
                "{what}: {w:?}"
            );
            assert!(
                [c.player_speed, c.player_speed * 2].contains(&w.player_speed),
                "{what}: {w:?}"
            );
        }
        GameKind::Four => {
            let w: FourWelcome = game_api::codec::decode(bytes)
                .unwrap_or_else(|e| panic!("{what}: four welcome data: {e}: {bytes:02x?}"));
            assert_eq!((w.columns, w.rows), (COLUMNS as u8, ROWS as u8), "{what}");
        }
    }
}

/// A state must be its game's state for this player: the arena shows the
/// player's own entity, four seats the player and keeps its board sound.
fn check_state(what: &str, game: GameKind, player: u32, data: &[u8]) {
    match game {
        GameKind::Arena => {
            let s: ArenaState = game_api::codec::decode(data)
                .unwrap_or_else(|e| panic!("{what}: arena state: {e}: {data:02x?}"));
            assert!(
                s.entities
                    .iter()
                    .any(|e| e.id == player && e.kind == EntityKind::Player),
                "{what}: state without player {player}'s own entity: {s:?}"
            );
            assert!(s.players >= 1, "{what}: a state for an empty room: {s:?}");
        }
        GameKind::Four => {
            let s: FourState = game_api::codec::decode(data)
                .unwrap_or_else(|e| panic!("{what}: four state: {e}: {data:02x?}"));
            assert!(
                s.board.len() == CELLS && s.board.iter().all(|&c| c <= 2),
                "{what}: board {:?}",
                s.board
            );
            let seat = s
                .you
                .unwrap_or_else(|| panic!("{what}: player {player} has no seat: {s:?}"));
            let mine = &s.seats[seat.index()];
            assert!(
                mine.player == Some(player) && mine.connected,
                "{what}: player {player}'s seat: {s:?}"
            );
            assert_eq!(
                s.turn.is_some(),
                s.status == Status::Playing,
                "{what}: a turn only while playing: {s:?}"
            );
        }
    }
}

/// An event must be its game's event; the arena sends none.
fn check_event(what: &str, game: GameKind, data: &[u8]) {
    match game {
        GameKind::Arena => panic!("{what}: the arena sends no events, got {data:02x?}"),
        GameKind::Four => {
            if let Err(e) = game_api::codec::decode::<FourEvent>(data) {
                panic!("{what}: four event: {e}: {data:02x?}");
            }
        }
    }
}

/// A connection that opened with a `Hello` is answered with a `Welcome`
/// or a refusal that applies, before anything else.
fn check_first(c: &Checks<'_>, frames: &[ServerFrame]) {
    let Some(e) = &c.expect else {
        return;
    };
    let first = frames.first().map(|f| match f.opcode {
        ws::BINARY => Ok(protocol::decode_server(&f.payload).expect("checked above")),
        ws::CLOSE => Err(close_code(&f.payload)),
        other => Err(Some(u16::from(other) << 8)),
    });
    match first {
        Some(Ok(ServerMsg::Welcome(_))) => {}
        Some(Err(Some(code))) if e.refusals.contains(&code) => {}
        other => panic!(
            "{}: a Hello answered with {other:?}; expected a Welcome or one of {:?}",
            c.what, e.refusals
        ),
    }
}

/// The code of a close payload, if it has one.
fn close_code(payload: &[u8]) -> Option<u16> {
    payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]))
}

/// A server close frame: no payload, or a code valid on the wire (RFC 6455
/// §7.4) and a UTF-8 reason. A code the server does not send of its own
/// accord must be the echo of one the client sent (checked when the plan
/// kept its framing). Returns the code.
fn check_close(c: &Checks<'_>, payload: &[u8]) -> Option<u16> {
    let what = c.what;
    assert!(
        payload.len() != 1,
        "{what}: close frame with a one-byte payload"
    );
    let code = close_code(payload)?;
    assert!(
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999),
        "{what}: close code {code} may not be sent"
    );
    if CloseCode::from_code(code).is_none() && c.plan_pings && c.plan.exact {
        assert!(
            c.plan.close_codes.contains(&code),
            "{what}: close code {code} is neither the server's nor an echo"
        );
    }
    assert!(
        std::str::from_utf8(&payload[2..]).is_ok(),
        "{what}: close reason is not UTF-8: {payload:02x?}"
    );
    Some(code)
}

/// The frames fastwebsockets' client side reads from `out`.
async fn fastwebsockets_frames(out: &[u8]) -> Vec<ServerFrame> {
    let (mut rd, _wr) = fastwebsockets::after_handshake_split(out, tokio::io::sink(), Role::Client);
    rd.set_auto_close(false);
    rd.set_auto_pong(false);
    let mut frames = Vec::new();
    let mut ignore = |_| async { Ok::<_, std::io::Error>(()) };
    loop {
        match rd.read_frame(&mut ignore).await {
            Ok(f) => frames.push(ServerFrame {
                opcode: f.opcode as u8,
                payload: f.payload.to_vec(),
            }),
            Err(WebSocketError::UnexpectedEOF) => return frames,
            Err(e) => panic!("fastwebsockets refuses the server's frames: {e}"),
        }
    }
}

/// What the reader has seen of the `Welcome`.
#[derive(Clone, Debug, Default)]
enum WelcomeState {
    /// The first frame has not fully arrived.
    #[default]
    Waiting,
    /// The first frame was this `Welcome`.
    Got(Box<Welcome>),
    /// The first frame was something else, or the stream ended.
    Never,
}

/// What a connection has received so far, as its reader sees it arrive:
/// what the steps that react to the server (takeovers, opponents, plays,
/// acknowledgements) act on.
#[derive(Clone, Debug, Default)]
struct Live {
    /// The `Welcome`, if it came first.
    welcome: WelcomeState,
    /// The number of the last event received (0 before any).
    last_event: u32,
    /// The latest four-in-a-row state, in a four room.
    four: Option<Box<FourState>>,
    /// WebSocket pings received.
    pings: u32,
    /// A close frame arrived, or the stream ended.
    ended: bool,
}

impl Live {
    /// Takes in one frame; true if anything changed.
    fn observe(&mut self, opcode: u8, payload: &[u8]) -> bool {
        let msg = (opcode == ws::BINARY)
            .then(|| protocol::decode_server(payload).ok())
            .flatten();
        if matches!(self.welcome, WelcomeState::Waiting) {
            self.welcome = match &msg {
                Some(ServerMsg::Welcome(w)) => WelcomeState::Got(Box::new(w.clone())),
                _ => WelcomeState::Never,
            };
        }
        match (opcode, msg) {
            (ws::CLOSE, _) => self.ended = true,
            (ws::PING, _) => self.pings += 1,
            (_, Some(ServerMsg::Welcome(_))) => {}
            (_, Some(ServerMsg::Event(e))) => self.last_event = e.seq,
            (_, Some(ServerMsg::State(s))) => {
                let four = matches!(&self.welcome,
                    WelcomeState::Got(w) if w.room_type == GameKind::Four.name());
                if !four {
                    return false;
                }
                // An undecodable state fails the checks afterwards.
                self.four = game_api::codec::decode(&s.data).ok().map(Box::new);
            }
            _ => return false,
        }
        true
    }

    /// Whether this connection is, or may yet be, a player of `room`: its
    /// `Welcome` names the room or has not come yet, and it has not ended.
    fn plays_in(&self, room: u32) -> bool {
        let here = match &self.welcome {
            WelcomeState::Waiting => true,
            WelcomeState::Got(w) => w.room_id == room,
            WelcomeState::Never => false,
        };
        here && !self.ended
    }

    /// What this player does next at four, given the game and move count
    /// of its last drop (`acted`): drop a disc into the first column from
    /// `column` on that has room when it is its turn and it has not moved
    /// at this point of the game yet; stop once a game it played in is
    /// over; otherwise wait (for the opponent's move, for a game to start,
    /// for a rematch).
    fn next_move(&self, column: u8, acted: Option<(u32, u8)>) -> Turn {
        let Some(s) = self.four.as_ref() else {
            return Turn::Wait;
        };
        let now = (s.game, s.moves);
        match s.status {
            Status::Waiting => Turn::Wait,
            Status::Playing if s.turn.is_none() || s.turn != s.you || acted == Some(now) => {
                Turn::Wait
            }
            Status::Playing => {
                let top = (ROWS - 1) * COLUMNS;
                let columns = COLUMNS as u8;
                (0..columns)
                    .map(|k| (column % columns + k) % columns)
                    .find(|&c| s.board.get(top + usize::from(c)) == Some(&0))
                    .map_or(Turn::Wait, |c| Turn::Drop(c, now))
            }
            Status::Won { .. } | Status::Draw | Status::Forfeit { .. } => {
                if acted.is_some_and(|(game, _)| game == s.game) {
                    Turn::Over
                } else {
                    Turn::Finished
                }
            }
        }
    }
}

/// What a player of four does next (see [`Live::next_move`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Turn {
    /// Drop a disc into this column; the pair is the game and move count
    /// it answers.
    Drop(u8, (u32, u8)),
    /// Wait for the state to change.
    Wait,
    /// The game it played in is over.
    Over,
    /// A game it did not play in is over: only a rematch brings another.
    Finished,
}

/// A playing opponent, as a play of the first connection waits for it.
#[derive(Clone)]
struct Partner {
    /// What it has received.
    live: watch::Receiver<Live>,
    /// It asks for a rematch when a game ends.
    rematch: bool,
}

/// What happened so far in an iteration, for the report of a hang.
#[derive(Default)]
struct Progress {
    /// Events in order, each with the time since the iteration started.
    events: Mutex<Vec<(Duration, String)>>,
    /// What each connection received so far, by name.
    received: Mutex<Vec<(&'static str, Received)>>,
    /// When the iteration started (set by the first event).
    start: OnceLock<Instant>,
}

impl Progress {
    fn note(&self, who: &str, what: &str) {
        let start = *self.start.get_or_init(Instant::now);
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.push((start.elapsed(), format!("{who}: {what}")));
    }

    /// The events, and the frames each connection received.
    fn report(&self) -> String {
        let mut out = String::from("events:\n");
        for (at, what) in self.events.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            out.push_str(&format!("  {at:>10.3?}  {what}\n"));
        }
        for (name, bytes) in self
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let bytes = bytes.lock().unwrap_or_else(|e| e.into_inner());
            out.push_str(&format!("{name} received {} bytes:\n", bytes.len()));
            let mut rest = &bytes[..];
            while let Some((opcode, payload, used)) = ws::next_frame(rest) {
                let msg = (opcode == ws::BINARY).then(|| protocol::decode_server(&payload));
                out.push_str(&format!("  opcode {opcode:#x} {payload:02x?} {msg:?}\n"));
                rest = &rest[used..];
            }
        }
        out
    }
}

/// The bytes a connection has received, shared by its reader task and
/// the iteration's [`Progress`].
type Received = Arc<Mutex<Vec<u8>>>;

/// The client end of one in-memory connection.
struct Client {
    /// Names the connection in reports.
    name: &'static str,
    /// The client's write side.
    write: WriteHalf<DuplexStream>,
    /// Set once a write failed: the server dropped the stream.
    broken: bool,
    /// Everything the server sent so far.
    received: Received,
    /// Reads the server's bytes until the end of the stream.
    reader: JoinHandle<()>,
    /// Runs `Sessions::serve` for this connection.
    server: JoinHandle<()>,
    /// What the reader has seen so far.
    live: watch::Receiver<Live>,
    /// Server pings answered so far (by plays and opponents, which behave
    /// like browsers; a script answers pings only if it says so).
    pings_answered: u32,
    /// The highest event this connection acknowledged.
    acked: u32,
    /// The iteration's record, for the report of a hang.
    progress: Arc<Progress>,
}

impl Client {
    /// Opens a connection served by `sessions`, with `opening` already in
    /// the stream when the server starts: the handshake timeout runs from
    /// the server task's start, and a client task that the scheduler held
    /// back for longer than that would otherwise be refused with 4008 in
    /// spite of a `Hello` sent first.
    async fn open(
        sessions: &Sessions,
        name: &'static str,
        progress: &Arc<Progress>,
        opening: &[u8],
    ) -> Self {
        let (client, server) = tokio::io::duplex(DUPLEX_CAPACITY);
        let (mut read, mut write) = tokio::io::split(client);
        // A few bytes into an empty stream of DUPLEX_CAPACITY: never waits.
        write
            .write_all(opening)
            .await
            .expect("the server end is open");
        let sessions = sessions.clone();
        let server = {
            let progress = progress.clone();
            tokio::spawn(async move {
                let (rd, wr) = tokio::io::split(server);
                sessions.serve(rd, wr).await;
                progress.note(name, "Sessions::serve returned");
            })
        };
        let (tx, live) = watch::channel(Live::default());
        let received = Arc::new(Mutex::new(Vec::new()));
        progress
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name, received.clone()));
        let reader = {
            let received = received.clone();
            let progress = progress.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                // Bytes of `received` already taken in as whole frames.
                let mut parsed = 0;
                loop {
                    let n = match read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let mut out = received.lock().unwrap_or_else(|e| e.into_inner());
                    out.extend_from_slice(&buf[..n]);
                    while let Some((opcode, payload, used)) = ws::next_frame(&out[parsed..]) {
                        parsed += used;
                        tx.send_if_modified(|live| live.observe(opcode, &payload));
                    }
                }
                progress.note(name, "end of the server's stream");
                tx.send_modify(|live| {
                    live.ended = true;
                    if matches!(live.welcome, WelcomeState::Waiting) {
                        live.welcome = WelcomeState::Never;
                    }
                });
            })
        };
        progress.note(name, &format!("opened with {} bytes", opening.len()));
        Self {
            name,
            write,
            broken: false,
            received,
            reader,
            server,
            live,
            pings_answered: 0,
            acked: 0,
            progress: progress.clone(),
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.broken {
            return;
        }
        if self.write.write_all(bytes).await.is_err() {
            self.broken = true;
        }
        self.progress
            .note(self.name, &format!("wrote {} bytes", bytes.len()));
    }

    /// Writes one client message as a whole masked frame.
    async fn send(&mut self, msg: &ClientMsg) {
        self.write(&script::msg_frame(msg)).await;
    }

    /// The `Welcome` this connection got, waiting up to `wait` for it.
    async fn welcome(&mut self, wait: Duration) -> Option<Welcome> {
        let live = tokio::time::timeout(
            wait,
            self.live
                .wait_for(|l| !matches!(l.welcome, WelcomeState::Waiting)),
        )
        .await
        .ok()?
        .ok()?
        .clone();
        match live.welcome {
            WelcomeState::Got(w) => Some(*w),
            _ => None,
        }
    }

    /// The number of the last event received so far.
    fn last_seen(&self) -> u32 {
        self.live.borrow().last_event
    }

    /// Acknowledges every event received so far.
    async fn ack_seen(&mut self) {
        let upto = self.last_seen();
        self.acked = self.acked.max(upto);
        self.send(&ClientMsg::EventAck(EventAck { upto })).await;
    }

    /// Answers the server's WebSocket pings received since the last call,
    /// as a browser does.
    async fn answer_pings(&mut self) {
        let pings = self.live.borrow().pings;
        let mut bytes = Vec::new();
        for _ in self.pings_answered..pings {
            ws::put_client_frame(&mut bytes, true, ws::PONG, b"");
        }
        self.pings_answered = pings;
        self.write(&bytes).await;
    }

    /// Plays four: up to `moves` times, waits for this player's turn
    /// (within `budget`, which it uses up) and drops a disc, numbering the
    /// drops from `first_seq`. Waits only while `partner`, a playing
    /// opponent, is connected in the same room: no one else is sure to
    /// move. Stops early when the wait runs out or the connection ends.
    async fn play(
        &mut self,
        moves: u8,
        column: u8,
        first_seq: u32,
        budget: &mut Duration,
        mut partner: Option<Partner>,
    ) {
        let room = match &self.live.borrow().welcome {
            WelcomeState::Got(w) => w.room_id,
            _ => return,
        };
        let mut acted = None;
        for k in 0..moves {
            let (column, now) = loop {
                let (turn, ended) = {
                    let live = self.live.borrow_and_update();
                    (live.next_move(column, acted), live.ended)
                };
                let rematch = partner.as_ref().is_some_and(|p| p.rematch);
                match turn {
                    _ if ended => return,
                    Turn::Drop(column, now) => break (column, now),
                    Turn::Over => return,
                    Turn::Finished if !rematch => return,
                    Turn::Finished | Turn::Wait => {}
                }
                let Some(partner) = partner
                    .as_mut()
                    .map(|p| &mut p.live)
                    .filter(|p| p.borrow().plays_in(room))
                else {
                    return;
                };
                // Idle waiting would end in 4005: answer pings meanwhile.
                self.answer_pings().await;
                let start = Instant::now();
                let changed = tokio::time::timeout(*budget, async {
                    tokio::select! {
                        changed = self.live.changed() => changed,
                        changed = partner.changed() => changed,
                    }
                })
                .await;
                *budget = budget.saturating_sub(start.elapsed());
                if !matches!(changed, Ok(Ok(()))) {
                    *budget = Duration::ZERO;
                    return;
                }
            };
            acted = Some(now);
            let seq = first_seq.wrapping_add(u32::from(k));
            self.send(&script::game_message(seq, &FourMsg::Drop { column }))
                .await;
        }
    }

    /// Closes the write side, then returns everything the server sent
    /// once it has closed the stream and its task has finished.
    async fn finish(mut self) -> Vec<u8> {
        let _ = self.write.shutdown().await;
        self.progress.note(self.name, "closed its write side");
        self.reader.await.expect("the client reader does not panic");
        if let Err(e) = self.server.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
        let out = self.received.lock().unwrap_or_else(|e| e.into_inner());
        out.clone()
    }
}

/// The second connection of a takeover, opened with a resume `Hello`:
/// does what `second` says, and returns what the server sent it.
async fn take_over(mut client: Client, second: Second, game: Option<GameKind>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if second.input {
        let msg = match game {
            Some(GameKind::Four) => script::game_message(1, &FourMsg::Drop { column: 0 }),
            _ => script::game_message(1, &Move { dx: -1, dy: 1 }),
        };
        bytes.extend(script::msg_frame(&msg));
    }
    if second.ping {
        bytes.extend(script::msg_frame(&ClientMsg::Ping(Ping { t: 0 })));
    }
    if second.close {
        ws::put_client_frame(&mut bytes, true, ws::CLOSE, &1000u16.to_be_bytes());
    }
    client.write(&bytes).await;
    client.finish().await
}

/// An opponent, opened with its `Hello`: answers pings, plays and
/// acknowledges as `o` says until `stop` fires (or the server ends the
/// connection), then leaves or just goes; returns what the server sent it.
async fn play_opponent(
    mut client: Client,
    o: Opponent,
    game: GameKind,
    mut stop: watch::Receiver<bool>,
) -> Vec<u8> {
    let mut seq = 1u32;
    let mut next_seq = || {
        let this = seq;
        seq = seq.wrapping_add(1);
        this
    };
    if game == GameKind::Arena && o.plays {
        let msg = script::game_message(next_seq(), &Move { dx: 1, dy: -1 });
        client.send(&msg).await;
    }
    let mut acted = None;
    let mut asked_rematch: Option<u32> = None;
    loop {
        let (ended, last_event, turn, finished) = {
            let live = client.live.borrow_and_update();
            let finished = live
                .four
                .as_ref()
                .filter(|s| matches!(s.status, Status::Won { .. } | Status::Draw))
                .map(|s| s.game);
            (
                live.ended,
                live.last_event,
                live.next_move(o.column, acted),
                finished,
            )
        };
        if ended {
            break;
        }
        client.answer_pings().await;
        if o.acks && last_event > client.acked {
            client.ack_seen().await;
        }
        if let (Turn::Drop(column, now), true) = (turn, o.plays) {
            acted = Some(now);
            let msg = script::game_message(next_seq(), &FourMsg::Drop { column });
            client.send(&msg).await;
        }
        if let Some(game) = finished.filter(|g| o.rematch && asked_rematch != Some(*g)) {
            asked_rematch = Some(game);
            let msg = script::game_message(next_seq(), &FourMsg::Rematch);
            client.send(&msg).await;
        }
        if client.broken {
            break;
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            changed = client.live.changed() => if changed.is_err() { break },
        }
    }
    if o.leaves {
        client.send(&ClientMsg::Leave).await;
    }
    client.finish().await
}

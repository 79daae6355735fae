//! The `session` target's machinery: one live server for the whole fuzz
//! run, a client that plays a [`Plan`] against it over in-memory streams,
//! and the checks on what the server sent back.
//!
//! Each iteration hands the server end of a `tokio::io::duplex` pair to
//! [`Sessions::serve`], exactly as `/ws` does after its upgrade, writes the
//! plan's bytes into the client end, closes the client's write side and
//! reads until the server closes the stream. A takeover step opens a second
//! connection that resumes the first one's session. Not a test of HTTP or
//! the upgrade: those live in the integration tests.
//!
//! What is checked, beyond "no panic" (the target aborts on any panic,
//! including one in a server task) and "done within [`ITERATION_LIMIT`]":
//! - the server's bytes are valid server-to-client WebSocket frames
//!   ([`ws::parse_server_frames`]), fastwebsockets' own client parser reads
//!   the same frames, at most one close frame is sent and nothing follows it;
//! - a close frame carries a code the server sends ([`CloseCode::ALL`]) or
//!   the echo of a valid code the client sent, and a UTF-8 reason; 4007
//!   (session taken over) appears only when the input made a takeover;
//! - every binary frame decodes as a `ServerMsg`; a `Welcome` comes first,
//!   once, with this server's settings; a connection that opened with a
//!   valid `Hello` gets a `Welcome` (or 4001 room full; 4002 for a resume)
//!   as its very first frame; every snapshot holds the player's own entity;
//!   pongs echo a ping the client sent (when the input keeps its framing);
//! - the player and room gauges never go negative.

use crate::script::{self, HelloChoice, Plan, Second, Step};
use crate::ws::{self, ServerFrame};
use fastwebsockets::{Role, WebSocketError};
use protocol::{ClientMsg, CloseCode, EntityKind, Input, Ping, ResumeToken, ServerMsg, Welcome};
use server::Server;
use server::Sessions;
use server::config::Config;
use server::metrics::Metrics;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, WriteHalf};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The fuzz server's options. Timeouts are short so that a timed input's
/// pauses ([`script::MAX_PAUSE`] in all) reach them (handshake, idle) and
/// see ticks (120 Hz) and WebSocket pings (every 8 ms); a dropped player's
/// grace (1 s) outlives its iteration, so later inputs can resume it;
/// rooms are small so that rooms open and close often.
pub const SERVER_ARGS: &[&str] = &[
    "server",
    "--listen",
    "127.0.0.1:0",
    "--seed",
    "7",
    "--tick-hz",
    "120",
    "--room-capacity",
    "16",
    "--max-rooms",
    "256",
    "--handshake-timeout",
    "10ms",
    "--idle-timeout",
    "20ms",
    "--ping-interval",
    "8ms",
    "--resume-grace",
    "1s",
];

/// Longest an iteration may take. The server's own bounds (a close
/// handshake waits at most 1 s to write and 2 s for the answer; the
/// handshake and idle timeouts are tens of milliseconds here) plus the
/// input's pauses fit well inside it; going past it means a task waits for
/// something that never comes.
pub const ITERATION_LIMIT: Duration = Duration::from_secs(5);

/// How long a takeover waits for the `Welcome` of a first connection that
/// opened with a `Hello`. A `Welcome` that is coming arrives within a
/// millisecond; a connection refused without one would otherwise hold the
/// iteration for the whole handshake timeout, and takeovers are common in
/// the corpus.
const WELCOME_WAIT: Duration = Duration::from_millis(5);

/// Capacity of each in-memory stream, per direction: more than a frame the
/// server accepts, so that writes rarely wait.
const DUPLEX_CAPACITY: usize = 128 * 1024;

/// Resume tokens remembered for [`HelloChoice::ResumeRecent`].
const RECENT_TOKENS: usize = 32;

/// The server and the runtime it runs on, built once per fuzz process.
pub struct Harness {
    /// Runs the server's tasks (two workers, like the 2-core machines this
    /// runs on) and each iteration's client.
    runtime: tokio::runtime::Runtime,
    /// Serves each in-memory connection, as `/ws` does after its upgrade.
    sessions: Sessions,
    /// The server's metrics, for the gauge checks.
    metrics: Arc<Metrics>,
    /// The server's options, for the `Welcome` checks.
    config: Config,
    /// Kept alive so that its shutdown controller never fires.
    _server: Mutex<Server>,
    /// Tokens from recent `Welcome`s, newest last, with their player ids.
    recent: Mutex<VecDeque<(ResumeToken, u32)>>,
    /// Print each connection's frames to stderr (`FUZZ_TRACE=1`), for
    /// reading what a crashing input did.
    trace: bool,
    /// Print the server's gauges every this many iterations
    /// (`FUZZ_STATS=N`), to see what state the fuzzing leaves behind.
    stats_every: u64,
    /// Iterations so far.
    iterations: std::sync::atomic::AtomicU64,
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

/// What the server's first frame must be.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Nothing in particular: the connection did not open with a `Hello`.
    Anything,
    /// A `Welcome` for a new player, or 4001 (room full).
    Joined,
    /// A `Welcome` resuming this player (any, if `None`), or 4002.
    Resumed(Option<u32>),
}

/// What one connection needs for its checks.
struct Checks<'a> {
    /// Names the connection in failure messages.
    what: &'static str,
    /// What its first frame must be.
    expect: Expect,
    /// The input being played (pings and close codes sent, takeovers).
    plan: &'a Plan,
    /// False for the second connection of a takeover, whose pongs answer
    /// its own pings rather than the plan's.
    plan_pings: bool,
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let config = <Config as clap::Parser>::try_parse_from(SERVER_ARGS)
            .expect("the fuzz server's options are valid");
        let server = runtime
            .block_on(Server::bind(config.clone()))
            .expect("bind 127.0.0.1:0");
        Self {
            sessions: server.sessions(),
            metrics: server.metrics(),
            config,
            _server: Mutex::new(server),
            runtime,
            recent: Mutex::new(VecDeque::new()),
            trace: std::env::var_os("FUZZ_TRACE").is_some(),
            stats_every: std::env::var("FUZZ_STATS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            iterations: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Plays one input against the server; panics on any finding.
    pub fn run(&self, data: &[u8]) {
        let plan = script::parse(data);
        let progress = Arc::new(Progress::default());
        self.runtime.block_on(async {
            if tokio::time::timeout(ITERATION_LIMIT, self.play(&plan, &progress))
                .await
                .is_err()
            {
                panic!(
                    "hang: the iteration took longer than {ITERATION_LIMIT:?}\nplan: {plan:?}\n{}",
                    progress.report()
                );
            }
        });
        let m = &self.metrics;
        let n = self.iterations.fetch_add(1, Relaxed) + 1;
        if self.stats_every > 0 && n.is_multiple_of(self.stats_every) {
            eprintln!(
                "session stats after {n} iterations: players {} (dropped {}), rooms {}, \
                 resumes {}, resumes refused {}",
                m.players.load(Relaxed),
                m.players_dropped.load(Relaxed),
                m.rooms.load(Relaxed),
                m.resumes.load(Relaxed),
                m.resumes_refused.load(Relaxed),
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
    }

    /// Remembers a token the server issued.
    fn remember(&self, welcome: &Welcome) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT_TOKENS {
            recent.pop_front();
        }
        recent.push_back((welcome.resume_token, welcome.player_id));
    }

    /// The bytes that open a connection, and what they must be answered with.
    fn opening(&self, hello: HelloChoice) -> (Vec<u8>, Expect) {
        match hello {
            HelloChoice::None => (Vec::new(), Expect::Anything),
            HelloChoice::New => (script::hello_frame(None), Expect::Joined),
            HelloChoice::Resume(token) => (
                script::hello_frame(Some(ResumeToken(token))),
                Expect::Resumed(None),
            ),
            HelloChoice::ResumeRecent(i) => {
                let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
                // Newest first: index 0 is the last token issued, whose
                // player is the likeliest to be still waiting for a resume.
                match recent
                    .iter()
                    .rev()
                    .nth(usize::from(i) % recent.len().max(1))
                {
                    Some(&(token, player)) => (
                        script::hello_frame(Some(token)),
                        Expect::Resumed(Some(player)),
                    ),
                    None => (
                        script::hello_frame(Some(ResumeToken([0; 16]))),
                        Expect::Resumed(None),
                    ),
                }
            }
        }
    }

    async fn play(&self, plan: &Plan, progress: &Arc<Progress>) {
        let (opening, expect) = self.opening(plan.hello);
        let mut first = Client::open(&self.sessions, "first", progress, &opening).await;
        let mut seconds = Vec::new();
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
                Step::Takeover(second) => {
                    // Only a connection that opened with a `Hello` is worth
                    // waiting for; a later `Hello` may still have been
                    // answered by now.
                    let wait = if plan.hello == HelloChoice::None {
                        Duration::ZERO
                    } else {
                        WELCOME_WAIT
                    };
                    if let Some(welcome) = first.welcome(wait).await {
                        let sessions = self.sessions.clone();
                        let name = if seconds.is_empty() {
                            "takeover 1"
                        } else {
                            "takeover 2"
                        };
                        let hello = script::hello_frame(Some(welcome.resume_token));
                        let client = Client::open(&sessions, name, progress, &hello).await;
                        seconds.push((welcome.player_id, tokio::spawn(take_over(client, *second))));
                    }
                }
            }
        }
        let out = first.finish().await;
        self.check(
            &out,
            &Checks {
                what: "first connection",
                expect,
                plan,
                plan_pings: true,
            },
        )
        .await;
        for (player, second) in seconds {
            let out = second.await.expect("the takeover task does not panic");
            self.check(
                &out,
                &Checks {
                    what: "takeover connection",
                    expect: Expect::Resumed(Some(player)),
                    plan,
                    plan_pings: false,
                },
            )
            .await;
        }
    }

    /// Checks everything the server sent on one connection.
    async fn check(&self, out: &[u8], c: &Checks<'_>) {
        let what = c.what;
        let frames = ws::parse_server_frames(out)
            .unwrap_or_else(|e| panic!("{what}: invalid server frames: {e}; bytes: {out:02x?}"));
        if self.trace {
            eprintln!("{what}: plan {:?}", c.plan);
            for f in &frames {
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
        let theirs = fastwebsockets_frames(out).await;
        assert_eq!(
            frames, theirs,
            "{what}: fastwebsockets reads the server's bytes differently"
        );
        let mut welcome: Option<Welcome> = None;
        let mut closed = false;
        for (i, f) in frames.iter().enumerate() {
            assert!(
                !closed,
                "{what}: frame {i} follows the close frame: {frames:?}"
            );
            match f.opcode {
                ws::CLOSE => {
                    closed = true;
                    let code = check_close(c, &f.payload);
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
                    match msg {
                        ServerMsg::Welcome(w) => {
                            assert!(welcome.is_none(), "{what}: a second Welcome");
                            self.check_welcome(what, &w);
                            welcome = Some(w);
                        }
                        ServerMsg::Snapshot(s) => {
                            let Some(w) = &welcome else {
                                panic!("{what}: a snapshot before the Welcome")
                            };
                            assert!(
                                s.entities
                                    .iter()
                                    .any(|e| e.id == w.player_id && e.kind == EntityKind::Player),
                                "{what}: snapshot without player {}'s own entity: {s:?}",
                                w.player_id
                            );
                        }
                        ServerMsg::Pong(p) => {
                            assert!(welcome.is_some(), "{what}: a Pong before the Welcome");
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
        self.check_first(c, &frames);
    }

    fn check_welcome(&self, what: &str, w: &Welcome) {
        let c = &self.config;
        assert_eq!(w.version, protocol::PROTOCOL_VERSION, "{what}: {w:?}");
        assert_eq!(w.tick_hz, c.tick_hz, "{what}: {w:?}");
        assert_eq!(
            (w.world_width, w.world_height, w.view_radius),
            (c.world_width, c.world_height, c.view_radius),
            "{what}: {w:?}"
        );
        self.remember(w);
    }

    /// A connection that opened with a valid `Hello` is answered with a
    /// `Welcome` or the one refusal that applies, before anything else.
    fn check_first(&self, c: &Checks<'_>, frames: &[ServerFrame]) {
        let what = c.what;
        let first = frames.first().map(|f| match f.opcode {
            ws::BINARY => Ok(protocol::decode_server(&f.payload).expect("checked above")),
            ws::CLOSE => Err(close_code(&f.payload)),
            other => Err(Some(u16::from(other) << 8)),
        });
        match c.expect {
            Expect::Anything => {}
            Expect::Joined => match first {
                Some(Ok(ServerMsg::Welcome(w))) if !w.resumed => {}
                Some(Err(Some(code))) if code == CloseCode::RoomFull.code() => {}
                other => panic!("{what}: a new Hello answered with {other:?}"),
            },
            Expect::Resumed(player) => match first {
                Some(Ok(ServerMsg::Welcome(w)))
                    if w.resumed && player.is_none_or(|p| p == w.player_id) => {}
                Some(Err(Some(code))) if code == CloseCode::InvalidResumeToken.code() => {}
                other => panic!("{what}: a resume of player {player:?} answered with {other:?}"),
            },
        }
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
#[derive(Clone, Debug)]
enum WelcomeState {
    /// The first frame has not fully arrived.
    Waiting,
    /// The first frame was this `Welcome`.
    Got(Box<Welcome>),
    /// The first frame was something else, or the stream ended.
    Never,
}

/// What happened so far in an iteration, for the report of a hang.
#[derive(Default)]
struct Progress {
    /// Events in order, each with the time since the iteration started.
    events: Mutex<Vec<(Duration, String)>>,
    /// What each connection received so far, by name.
    received: Mutex<Vec<(&'static str, Received)>>,
    /// When the iteration started (set by the first event).
    start: OnceLock<tokio::time::Instant>,
}

impl Progress {
    fn note(&self, who: &str, what: &str) {
        let start = *self.start.get_or_init(tokio::time::Instant::now);
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
            while let Some((opcode, payload)) = ws::first_frame(rest) {
                let msg = (opcode == ws::BINARY).then(|| protocol::decode_server(payload));
                out.push_str(&format!("  opcode {opcode:#x} {payload:02x?} {msg:?}\n"));
                // The payload ends the frame: skip the header and it.
                let end = payload.as_ptr() as usize - rest.as_ptr() as usize + payload.len();
                rest = &rest[end..];
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
    /// What the reader has seen of the `Welcome`.
    welcome: watch::Receiver<WelcomeState>,
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
        let (tx, welcome) = watch::channel(WelcomeState::Waiting);
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
                loop {
                    let n = match read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let mut out = received.lock().unwrap_or_else(|e| e.into_inner());
                    out.extend_from_slice(&buf[..n]);
                    if matches!(*tx.borrow(), WelcomeState::Waiting)
                        && let Some((opcode, payload)) = ws::first_frame(&out)
                    {
                        let state = match protocol::decode_server(payload) {
                            Ok(ServerMsg::Welcome(w)) if opcode == ws::BINARY => {
                                WelcomeState::Got(Box::new(w))
                            }
                            _ => WelcomeState::Never,
                        };
                        tx.send_replace(state);
                    }
                }
                progress.note(name, "end of the server's stream");
                if matches!(*tx.borrow(), WelcomeState::Waiting) {
                    tx.send_replace(WelcomeState::Never);
                }
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
            welcome,
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

    /// The `Welcome` this connection got, waiting up to `wait` for it.
    async fn welcome(&mut self, wait: Duration) -> Option<Welcome> {
        let state = tokio::time::timeout(
            wait,
            self.welcome
                .wait_for(|s| !matches!(s, WelcomeState::Waiting)),
        )
        .await
        .ok()?
        .ok()?
        .clone();
        match state {
            WelcomeState::Got(w) => Some(*w),
            _ => None,
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
async fn take_over(mut client: Client, second: Second) -> Vec<u8> {
    let mut bytes = Vec::new();
    if second.input {
        let input = ClientMsg::Input(Input {
            seq: 1,
            dx: -1,
            dy: 1,
        });
        ws::put_client_frame(&mut bytes, true, ws::BINARY, &script::message_bytes(&input));
    }
    if second.ping {
        let ping = ClientMsg::Ping(Ping { t: 0 });
        ws::put_client_frame(&mut bytes, true, ws::BINARY, &script::message_bytes(&ping));
    }
    if second.close {
        ws::put_client_frame(&mut bytes, true, ws::CLOSE, &1000u16.to_be_bytes());
    }
    client.write(&bytes).await;
    client.finish().await
}

//! One simulated player: connects, plays its game through the game's bot,
//! and comes back after drops the way the browser client does.
//!
//! A player loops over connections. Each connection runs a writer future
//! (the bot's messages on a fixed `--input-hz` schedule, pings at
//! `--ping-hz`, event acknowledgements, chaos drops, the final clean leave)
//! and a reader future (every state, event and pong: acks, jitter, the
//! event order, the bot's own checks) in one task; the reader's `recv` is
//! never cancelled mid-connection. Between connections it waits out an
//! exponential back-off with full jitter, reset by every successful
//! handshake, and resumes with its token and the last event it processed.
//!
//! On a cluster, a player follows the browser client's rules: a new player
//! joins through the entry URL (`--url`) and follows a node's redirect at
//! once; its session's *home* is the node that welcomed it, and resumes go
//! there. When the home is gone ([`HOME_ATTEMPTS`] resumes in a row got no
//! answer, and, after a 1012 that promised its return, for
//! [`HOME_RESTART_PATIENCE`]) or has forgotten the session (4002), and when a node reports
//! its room directory down (4020) or a ticket invalid (4021), the player
//! forgets its session and joins again as a new one through the entry URL.
//! On a single server the home is the entry URL, and it is never given up:
//! a restarting server comes back with its sessions. A connection to a
//! home node other than the entry's that is lost without a close frame is
//! an error only once the node answers again: if the node turns out to be
//! gone, the loss was its death, counted in `home_lost`.
//!
//! Latencies are measured from *scheduled* times: a message scheduled at
//! t₀ but sent late because the generator stalled still counts from t₀, so
//! a stalled generator cannot hide latency (coordinated omission).
//!
//! The player checks the platform's promises as it goes: a resume returns
//! the same player with its progress (the bot's own number, the arena's
//! score) intact, and events arrive each exactly once and in order, across
//! any number of drops; a break of either is counted as an error.

use crate::stats::{Local, Metric};
use crate::{InputBatching, RunCtx};
use client::{ClientError, ConnectOptions, Connection, Event, Joined, Reader, Writer};
use game_api::{Bot, BotSpec};
use protocol::{
    ClientMsg, CloseCode, GameMsg, Ping, Resume, ResumeToken, Retry, RoomRequest, ServerMsg,
    Welcome,
};
use race::{Finished, race};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often a client moves its batch into the shared stats even when the
/// batch is not full, so the live view and interval logs stay current.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Messages a connection keeps waiting for their ack; past it the oldest is
/// counted lost. A server that acks nothing for this long (50 s at 20 Hz)
/// has failed anyway.
const MAX_PENDING_INPUTS: usize = 1000;

/// The longest an input is held for the next write under
/// [`InputBatching::PerState`], however rarely states come (a game that
/// sends states only on a change): the arena's browser client repeats a
/// held move this often, so a real player writes at least as often.
const MAX_HOLD: Duration = Duration::from_millis(250);

/// How long the final clean leave may take.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Resumes in a row at a home node (other than the entry URL's) that may
/// fail without any answer (connect refused or failed, no `Welcome` in
/// time) before the node counts as gone. The same number as the browser
/// client's: one failure is a blip, three with back-off between them span
/// seconds, longer than a live node takes to accept.
pub const HOME_ATTEMPTS: u32 = 3;

/// How long a home node that closed with 1012 (a planned restart that
/// keeps its sessions) is waited for before it counts as gone, however
/// many resumes failed meanwhile: the server's default resume grace, as
/// the browser client does.
pub const HOME_RESTART_PATIENCE: Duration = Duration::from_secs(15);

/// How the run controls one player from outside.
#[derive(Default)]
pub struct PlayerCtl {
    /// True while the player has a live session.
    pub connected: AtomicBool,
    /// Set by the chaos task to cut the connection.
    pub kill: AtomicBool,
    /// Wakes the player's writer when `kill` is set.
    pub wake: Notify,
    /// The URL of the node that welcomed the player last: where its
    /// session lives while `connected`.
    home: Mutex<Option<Arc<str>>>,
}

impl PlayerCtl {
    /// The node the player's session lives on (or last lived on).
    pub fn home(&self) -> Option<Arc<str>> {
        self.home.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_home(&self, url: Arc<str>) {
        *self.home.lock().unwrap_or_else(|e| e.into_inner()) = Some(url);
    }
}

/// The delay before reconnect attempt `attempt` (0-based): uniformly random
/// in `[0, min(max, base × 2^attempt))` — "full jitter", which spreads a
/// crowd of reconnecting clients instead of letting them retry in waves.
pub fn backoff_delay(attempt: u32, base: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let cap = base
        .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
        .min(max);
    cap.mul_f64(rng.random::<f64>())
}

/// What a player remembers of its session across connections.
#[derive(Clone, Copy, Debug)]
struct Memory {
    /// Token to resume with.
    token: ResumeToken,
    /// The player id the session must keep.
    player: u32,
    /// The bot's progress when last known; a resume must not lose it.
    progress: Option<u64>,
    /// The sequence number of the last event processed.
    last_event: u32,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// The run is over and the player left cleanly.
    Stopped,
    /// Cut on purpose by chaos.
    ChaosDrop,
    /// The server closed with this code.
    Closed(u16),
    /// The connection failed without a close frame.
    Lost(&'static str),
}

/// Counts kept by the writer future while the reader records the rest.
#[derive(Default)]
struct WriterCounts {
    inputs: u64,
    pings: u64,
    acks: u64,
    writes: u64,
    bytes: u64,
}

/// What the reader tells the writer.
struct ReaderNews {
    /// Acknowledge events up to here: the last event processed.
    upto: AtomicU32,
    /// Wakes the writer to send the acknowledgement.
    wake: Notify,
    /// Ticks between the states lately received ([`StateGaps::median`]):
    /// how often the writer may write inputs under
    /// [`InputBatching::PerState`].
    state_gap: AtomicU32,
}

impl Default for ReaderNews {
    fn default() -> Self {
        Self {
            upto: AtomicU32::new(0),
            wake: Notify::new(),
            state_gap: AtomicU32::new(1),
        }
    }
}

/// The gaps, in ticks, between the last [`StateGaps::KEPT`] states a
/// connection received, and their median: the server's send interval (its
/// `--snapshot-hz`, lowered by the server itself under overload) with an
/// odd skip of a slow reader's left out. The browser client's
/// interpolation estimates it the same way (`games/arena/web/motion.js`).
#[derive(Default)]
struct StateGaps {
    gaps: [u32; Self::KEPT],
    seen: usize,
}

impl StateGaps {
    /// Half a second of states at 30 a second: a change of the send rate
    /// is followed within a second either way.
    const KEPT: usize = 16;

    /// Adds the gap between two states received one after the other.
    fn push(&mut self, ticks: u32) {
        self.gaps[self.seen % Self::KEPT] = ticks.max(1);
        self.seen += 1;
    }

    /// The median gap; 1 until three gaps have been seen (one or two could
    /// be skips rather than the rate).
    fn median(&self) -> u32 {
        if self.seen < 3 {
            return 1;
        }
        let mut sorted = self.gaps;
        let sorted = &mut sorted[..self.seen.min(Self::KEPT)];
        sorted.sort_unstable();
        sorted[sorted.len() / 2]
    }
}

/// The room request of a bot's game: a quick join with its options.
fn request(spec: &BotSpec) -> RoomRequest {
    RoomRequest::QuickJoin {
        room_type: spec.room_type.to_owned(),
        options: spec
            .options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// Runs player `id` until the run stops.
pub async fn run_player(id: usize, ctx: Arc<RunCtx>) {
    let ctl = ctx.players[id].clone();
    let cfg = &ctx.config;
    let spec = cfg.game;
    let mut rng =
        SmallRng::seed_from_u64(cfg.seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut bot = (spec.make)(rng.random());
    let mut local = Local::default();
    let mut stop = ctx.stop.clone();
    let mut memory: Option<Memory> = None;
    let mut attempt = 0u32;
    let mut lost_at: Option<Instant> = None;
    let mut ever_connected = false;
    let mut seq = 0u32;
    let mut rejoining = false;
    let entry: Arc<str> = cfg.url.as_str().into();
    let options = ConnectOptions::default();
    // The node that welcomed the session in `memory`, and the resumes in a
    // row that found it gone.
    let mut home = entry.clone();
    let mut home_failures = 0u32;
    // A connection to a home node lost without a close frame: an error
    // unless the node turns out to be gone.
    let mut unexplained_loss: Option<&'static str> = None;
    // When the home said it restarts with its sessions (1012).
    let mut home_restarting: Option<Instant> = None;
    while !*stop.borrow() {
        let started = Instant::now();
        if lost_at.is_some() {
            local.counters.reconnect_attempts += 1;
        }
        let resume = memory.map(|m| Resume {
            token: m.token,
            last_event: m.last_event,
        });
        // A session resumes on its home node; a new player starts at the
        // entry URL.
        let url = if resume.is_some() { &home } else { &entry };
        let away_from_entry = resume.is_some() && home != entry;
        let handshake = tokio::time::timeout(
            cfg.connect_timeout,
            client::join_following(url, request(&spec), resume, &options),
        )
        .await;
        match handshake {
            Ok(Ok(Joined {
                conn,
                welcome,
                url,
                redirects,
            })) => {
                let metric = if redirects > 0 {
                    Metric::ConnectRedirected
                } else {
                    Metric::Connect
                };
                local.record(metric, micros(started.elapsed()));
                local.counters.connects += 1;
                local.counters.redirects += u64::from(redirects);
                home = if *url == *entry {
                    entry.clone()
                } else {
                    url.into()
                };
                home_failures = 0;
                home_restarting = None;
                if let Some(kind) = unexplained_loss.take() {
                    local.error(kind);
                }
                local.welcomed(home.clone());
                ctl.set_home(home.clone());
                if let Some(at) = lost_at.take() {
                    local.record(Metric::Reconnect, micros(at.elapsed()));
                }
                if rejoining {
                    local.counters.rejoins += 1;
                    rejoining = false;
                }
                let resumed_from = match memory {
                    Some(m) if welcome.resumed => {
                        if m.player != welcome.player_id {
                            local.error("resume_wrong_player");
                        }
                        m.progress
                    }
                    _ => None,
                };
                if !welcome.resumed {
                    // A new session: a new player, whose bot starts afresh
                    // and whose events are numbered from 1 again.
                    if memory.is_some() {
                        bot = (spec.make)(rng.random());
                    }
                    memory = None;
                    seq = 0;
                }
                if let Err(e) = bot.welcome(welcome.player_id, welcome.resumed, &welcome.game) {
                    tracing_error(&mut local, "bot_welcome", &e);
                }
                memory = Some(Memory {
                    token: welcome.resume_token,
                    player: welcome.player_id,
                    progress: memory.and_then(|m| m.progress),
                    last_event: memory.map_or(0, |m| m.last_event),
                });
                ever_connected = true;
                attempt = 0;
                ctl.kill.store(false, Relaxed);
                ctl.connected.store(true, Relaxed);
                ctx.stats.connected.fetch_add(1, Relaxed);
                let mem = memory.as_mut().expect("set above");
                let end = play(
                    conn,
                    &welcome,
                    Session {
                        ctx: &ctx,
                        ctl: &ctl,
                        id,
                        bot: Mutex::new(&mut bot),
                        joined: (!welcome.resumed).then_some((
                            started,
                            if redirects > 0 {
                                Metric::JoinFirstStateRedirected
                            } else {
                                Metric::JoinFirstState
                            },
                        )),
                    },
                    &mut rng,
                    &mut local,
                    &mut seq,
                    mem,
                    resumed_from,
                )
                .await;
                ctx.stats.connected.fetch_sub(1, Relaxed);
                ctl.connected.store(false, Relaxed);
                match end {
                    End::Stopped => break,
                    End::ChaosDrop => {
                        local.counters.drops += 1;
                        lost_at = Some(Instant::now());
                    }
                    End::Lost(kind) => {
                        if kind == "connection_lost" && home != entry {
                            unexplained_loss = Some(kind);
                        } else {
                            local.error(kind);
                        }
                        lost_at = Some(Instant::now());
                    }
                    End::Closed(code) => {
                        let retry =
                            CloseCode::from_code(code).map_or(Retry::Resume, CloseCode::retry);
                        if code == CloseCode::GoingAway.code()
                            || code == CloseCode::ServiceRestart.code()
                        {
                            local.counters.server_restarts_seen += 1;
                            if code == CloseCode::ServiceRestart.code() {
                                home_restarting = Some(Instant::now());
                            }
                        } else if code == CloseCode::Normal.code() && *stop.borrow() {
                            break;
                        } else if !cluster_close(code, &mut local) {
                            local.error(format!("close_{code}"));
                        }
                        match retry {
                            Retry::Resume => {}
                            Retry::Rejoin => {
                                memory = None;
                                rejoining = true;
                            }
                            Retry::Stop => {
                                // A client told not to come back stays out
                                // for the rest of the run, as a browser would.
                                ctx.stats.flush(id, &mut local);
                                crate::stopped(&mut stop).await;
                                break;
                            }
                        }
                        lost_at = Some(Instant::now());
                    }
                }
            }
            Ok(Err(ClientError::Closed { code, .. }))
                if code == CloseCode::InvalidResumeToken.code() =>
            {
                // The session is gone (expired, or the server restarted
                // without it): join again as a new player.
                if let Some(kind) = unexplained_loss.take() {
                    local.error(kind);
                }
                local.counters.resumes_failed += 1;
                memory = None;
                home_failures = 0;
                rejoining = true;
                continue;
            }
            Ok(Err(ClientError::Closed { code, .. })) if cluster_close(code, &mut local) => {
                // The directory is down, or the ticket's place is gone:
                // join again as a new player after the back-off.
                if let Some(kind) = unexplained_loss.take() {
                    local.error(kind);
                }
                memory = None;
                home_failures = 0;
                rejoining = true;
            }
            Ok(Err(ClientError::TooManyRedirects)) => {
                // Nodes that send a player round in circles are broken,
                // whatever the moment.
                local.error("too_many_redirects");
            }
            Ok(Err(e)) => {
                if ever_connected {
                    local.counters.reconnect_failures += 1;
                } else {
                    local.error(connect_error_kind(&e));
                }
                if away_from_entry && node_gone(&e) {
                    home_failures += 1;
                }
            }
            Err(_) => {
                if ever_connected {
                    local.counters.reconnect_failures += 1;
                } else {
                    local.error("connect_timeout");
                }
                if away_from_entry {
                    home_failures += 1;
                }
            }
        }
        if home_failures >= HOME_ATTEMPTS
            && home_restarting.is_none_or(|at| at.elapsed() >= HOME_RESTART_PATIENCE)
        {
            // The home node is gone, and the session with it: join again
            // as a new player through the entry URL, at once (the failed
            // attempts have waited out their back-off already). A lost
            // connection to it is explained.
            local.counters.home_lost += 1;
            home_failures = 0;
            unexplained_loss = None;
            memory = None;
            rejoining = true;
            continue;
        }
        let delay = backoff_delay(attempt, cfg.backoff_base, cfg.backoff_max, &mut rng);
        attempt = attempt.saturating_add(1);
        ctx.stats.flush(id, &mut local);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = crate::stopped(&mut stop) => break,
        }
    }
    if let Some(kind) = unexplained_loss {
        // The run ended before the node could be judged gone or alive.
        local.error(kind);
    }
    ctx.stats.flush(id, &mut local);
}

/// Counts a bot's complaint as an error of `kind`; the first few are also
/// printed, so that a broken game's run says what broke.
fn tracing_error(local: &mut Local, kind: &str, detail: &str) {
    static SHOWN: AtomicU32 = AtomicU32::new(0);
    if SHOWN.fetch_add(1, Relaxed) < 5 {
        eprintln!("loadgen: {kind}: {detail}");
    }
    local.error(kind.to_owned());
}

/// Counts a close that a node of a cluster makes when the cluster itself
/// is in trouble (4020, its room directory is down; 4021, a ticket's place
/// is gone) under its own counter; false for any other code. Both send the
/// player back to the entry URL as a new player.
fn cluster_close(code: u16, local: &mut Local) -> bool {
    if code == CloseCode::DirectoryUnavailable.code() {
        local.counters.directory_unavailable += 1;
    } else if code == CloseCode::InvalidTicket.code() {
        local.counters.invalid_tickets += 1;
    } else {
        return false;
    }
    true
}

/// Whether a failed handshake got no answer from the node at all: it is
/// down or unreachable (a refusal with a close code is an answer).
fn node_gone(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Connect(_) | ClientError::WebSocket(_) | ClientError::Tls(_)
    )
}

fn connect_error_kind(e: &ClientError) -> String {
    match e {
        ClientError::Connect(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connect_refused".into()
        }
        ClientError::Connect(_) => "connect_io".into(),
        ClientError::Closed { code, .. } => format!("refused_{code}"),
        ClientError::WebSocket(_) => "handshake_failed".into(),
        ClientError::Decode(_) | ClientError::Unexpected(_) | ClientError::Redirected(_) => {
            "protocol_error".into()
        }
        ClientError::TooManyRedirects => "too_many_redirects".into(),
        ClientError::BadUrl(_) => "bad_url".into(),
        ClientError::Tls(_) => "tls_failed".into(),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// What a connection's two halves share.
struct Session<'a> {
    ctx: &'a RunCtx,
    ctl: &'a PlayerCtl,
    /// The player's index in the run.
    id: usize,
    /// The bot: the reader feeds it, the writer asks it what to send. Both
    /// run in one task, so the lock is never contended.
    bot: Mutex<&'a mut Box<dyn Bot>>,
    /// For a new player: when its join began, and the metric its first
    /// `State` is recorded in.
    joined: Option<(Instant, Metric)>,
}

impl<'a> Session<'a> {
    fn bot(&self) -> std::sync::MutexGuard<'_, &'a mut Box<dyn Bot>> {
        self.bot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A game message sent and not yet acknowledged.
struct Pending {
    /// Its sequence number.
    seq: u32,
    /// When the schedule said to send it: input→ack counts from here.
    due: Instant,
    /// When loadgen wrote it to the socket (its own lag is `taken - due`:
    /// a busy loadgen's delay, and the holding of
    /// [`InputBatching::PerState`]).
    taken: Instant,
}

/// Plays one connection until it ends.
#[allow(clippy::too_many_arguments)]
async fn play(
    conn: Connection,
    welcome: &Welcome,
    session: Session<'_>,
    rng: &mut SmallRng,
    local: &mut Local,
    seq: &mut u32,
    memory: &mut Memory,
    resumed_from: Option<u64>,
) -> End {
    let (reader, writer) = conn.split();
    let pending = Mutex::new(VecDeque::<Pending>::new());
    let tick_period = Duration::from_secs(1) / u32::from(welcome.tick_hz.max(1));
    let news = ReaderNews::default();
    // Only a bot that streams its inputs is batched; the reader tracks the
    // state interval for it alone.
    let batching =
        session.ctx.config.input_batching == InputBatching::PerState && session.bot().streams();
    let mut wcounts = WriterCounts::default();
    let mut lost = 0u64;
    let ctx = session.ctx;
    let end = {
        let reading = read_loop(
            reader,
            &session,
            local,
            &pending,
            &news,
            batching,
            tick_period,
            memory,
            resumed_from,
        );
        let writing = write_loop(
            writer,
            &session,
            rng,
            seq,
            &pending,
            &news,
            batching,
            tick_period,
            &mut wcounts,
            &mut lost,
        );
        tokio::pin!(reading);
        tokio::pin!(writing);
        // The writer is polled only when it was woken, not at every state
        // the reader is woken for (see `race`).
        let end = match race(reading.as_mut(), writing.as_mut()).await {
            Finished::Main(end) | Finished::Side(end) => end,
        };
        if end == End::Stopped {
            // The writer sent the leave; let the reader see the answer.
            let _ = tokio::time::timeout(LEAVE_TIMEOUT, &mut reading).await;
            End::Stopped
        } else if *ctx.stop.borrow() && end == End::Closed(CloseCode::Normal.code()) {
            End::Stopped
        } else {
            end
        }
    };
    let left = pending
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .len() as u64;
    let c = &mut local.counters;
    c.inputs_sent += wcounts.inputs;
    c.pings += wcounts.pings;
    c.msgs_out += wcounts.inputs + wcounts.pings + wcounts.acks;
    c.writes_out += wcounts.writes;
    c.bytes_out += wcounts.bytes;
    c.inputs_lost += lost;
    if end == End::Stopped {
        c.inputs_in_flight_at_end += left;
    } else {
        c.inputs_lost += left;
    }
    end
}

/// Sends the player's messages: its inputs on the `--input-hz` schedule,
/// pings on the `--ping-hz` one, event acknowledgements when the reader
/// asks, the leave at the end.
///
/// Inputs and pings are written in rounds. A round takes every input and
/// ping due by now, in order and each with its own due time (the bot is
/// asked once per input), and writes them in one go. It runs when the next
/// of them falls due, or under [`InputBatching::PerState`] not before one
/// state interval (the median gap of the states received, at most
/// [`MAX_HOLD`]) after the last write. So a player writes once per input
/// while the server sends states faster than the bot acts, and once per
/// state interval, several messages a write, when the server sends less
/// often; either way an input's latency and a ping's round trip count from
/// their due times, so the holding is measured, not hidden. An
/// acknowledgement is written at once, with nothing held.
#[allow(clippy::too_many_arguments)]
async fn write_loop(
    mut writer: Writer,
    session: &Session<'_>,
    rng: &mut SmallRng,
    seq: &mut u32,
    pending: &Mutex<VecDeque<Pending>>,
    news: &ReaderNews,
    batching: bool,
    tick_period: Duration,
    counts: &mut WriterCounts,
    lost: &mut u64,
) -> End {
    let (ctx, ctl) = (session.ctx, session.ctl);
    let cfg = &ctx.config;
    let mut stop = ctx.stop.clone();
    let now = tokio::time::Instant::now();
    // Each client starts its schedules at a random phase so that thousands
    // of clients do not send in lock-step.
    let input_period = Duration::from_secs_f64(1.0 / cfg.input_hz);
    let mut next_input = now + input_period.mul_f64(rng.random());
    let ping_period = Duration::from_secs_f64(1.0 / cfg.ping_hz);
    let mut next_ping = now + ping_period.mul_f64(rng.random());
    let mut last_write = now;
    let mut acked = 0u32;
    // Long-lived futures, polled again after each wake-up instead of being
    // rebuilt: this loop runs up to 20 times a second for every client.
    let round = tokio::time::sleep_until(next_input.min(next_ping));
    tokio::pin!(round);
    let stopping = crate::stopped(&mut stop);
    tokio::pin!(stopping);
    let woken = ctl.wake.notified();
    tokio::pin!(woken);
    let ack_woken = news.wake.notified();
    tokio::pin!(ack_woken);
    loop {
        tokio::select! {
            biased;
            _ = &mut stopping => {
                let _ = writer.close(CloseCode::Normal.code(), "run over").await;
                return End::Stopped;
            }
            _ = &mut woken => {
                woken.set(ctl.wake.notified());
                if ctl.kill.swap(false, Relaxed) {
                    return End::ChaosDrop;
                }
            }
            _ = &mut ack_woken => {
                ack_woken.set(news.wake.notified());
                let upto = news.upto.load(Relaxed);
                if upto > acked {
                    match writer.ack_events(upto).await {
                        Ok(n) => {
                            acked = upto;
                            counts.acks += 1;
                            counts.writes += 1;
                            counts.bytes += n as u64;
                        }
                        Err(_) => return End::Lost("connection_lost"),
                    }
                }
            }
            () = &mut round => {
                let now = tokio::time::Instant::now();
                let mut queued = 0;
                while next_input <= now {
                    let due = next_input.into_std();
                    next_input += input_period;
                    let Some(data) = session.bot().act(rng.random()) else { continue };
                    *seq = seq.wrapping_add(1);
                    {
                        let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                        if p.len() >= MAX_PENDING_INPUTS {
                            p.pop_front();
                            *lost += 1;
                        }
                        p.push_back(Pending { seq: *seq, due, taken: now.into_std() });
                    }
                    match writer.queue(&ClientMsg::Game(GameMsg { seq: *seq, data })).await {
                        Ok(n) => {
                            counts.inputs += 1;
                            counts.bytes += n as u64;
                            queued += 1;
                        }
                        Err(_) => return End::Lost("connection_lost"),
                    }
                }
                if next_ping <= now {
                    let t = micros(next_ping.into_std().saturating_duration_since(ctx.start));
                    // One ping for however many were missed: a ping
                    // measures the round trip now, not a backlog.
                    while next_ping <= now {
                        next_ping += ping_period;
                    }
                    match writer.queue(&ClientMsg::Ping(Ping { t })).await {
                        Ok(n) => {
                            counts.pings += 1;
                            counts.bytes += n as u64;
                            queued += 1;
                        }
                        Err(_) => return End::Lost("connection_lost"),
                    }
                }
                if queued > 0 {
                    if writer.flush().await.is_err() {
                        return End::Lost("connection_lost");
                    }
                    counts.writes += 1;
                    last_write = now;
                }
                let mut at = next_input.min(next_ping);
                if batching {
                    let hold = (tick_period * news.state_gap.load(Relaxed)).min(MAX_HOLD);
                    at = at.max(last_write + hold);
                }
                round.as_mut().reset(at);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn read_loop(
    mut reader: Reader,
    session: &Session<'_>,
    local: &mut Local,
    pending: &Mutex<VecDeque<Pending>>,
    news: &ReaderNews,
    batching: bool,
    tick_period: Duration,
    memory: &mut Memory,
    mut resumed_from: Option<u64>,
) -> End {
    let ctx = session.ctx;
    let mut joined = session.joined;
    let mut last_state: Option<(u32, Instant)> = None;
    let mut gaps = StateGaps::default();
    let mut last_flush = Instant::now();
    loop {
        let event = reader.recv().await;
        let now = Instant::now();
        let mut full = false;
        match event {
            Ok(Event::Msg(ServerMsg::State(s))) => {
                if let Some((started, metric)) = joined.take() {
                    full |= local.record(metric, micros(now.saturating_duration_since(started)));
                }
                let c = &mut local.counters;
                c.states += 1;
                c.msgs_in += 1;
                {
                    let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                    while p.front().is_some_and(|input| input.seq <= s.ack) {
                        let input = p.pop_front().expect("checked");
                        local.counters.inputs_acked += 1;
                        full |= local.record(
                            Metric::InputAck,
                            micros(now.saturating_duration_since(input.due)),
                        );
                        full |= local.record(
                            Metric::SendLag,
                            micros(input.taken.saturating_duration_since(input.due)),
                        );
                    }
                }
                // Jitter is measured between states of consecutive ticks
                // only: a game that skips unchanged states, or a slow
                // reader that skipped some, says nothing about jitter.
                if let Some((tick, at)) = last_state {
                    let gap = s.tick.wrapping_sub(tick);
                    if batching && gap > 0 {
                        gaps.push(gap);
                        news.state_gap.store(gaps.median(), Relaxed);
                    }
                    if s.tick == tick.wrapping_add(1) {
                        let gap = now.saturating_duration_since(at);
                        full |=
                            local.record(Metric::StateJitter, micros(gap.abs_diff(tick_period)));
                    } else {
                        local.counters.state_gaps += 1;
                    }
                }
                last_state = Some((s.tick, now));
                let progress = {
                    let mut bot = session.bot();
                    if let Err(e) = bot.state(s.tick, &s.data) {
                        tracing_error(local, "bot_state", &e);
                    }
                    bot.progress()
                };
                if let Some(progress) = progress {
                    if let Some(before) = resumed_from.take() {
                        if progress >= before {
                            local.counters.resumes_ok += 1;
                        } else {
                            local.counters.resumes_lost_state += 1;
                            local.error("resume_lost_progress");
                        }
                    }
                    memory.progress = Some(progress);
                }
            }
            Ok(Event::Msg(ServerMsg::Event(e))) => {
                local.counters.events += 1;
                local.counters.msgs_in += 1;
                let expected = memory.last_event.wrapping_add(1);
                if e.seq != expected {
                    // An event seen twice, or one never seen: the platform
                    // promises exactly once, in order.
                    let kind = if e.seq < expected {
                        "event_repeated"
                    } else {
                        "event_missing"
                    };
                    tracing_error(
                        local,
                        kind,
                        &format!("event {} after {}", e.seq, memory.last_event),
                    );
                }
                if e.seq > memory.last_event {
                    memory.last_event = e.seq;
                }
                if let Err(err) = session.bot().event(&e.data) {
                    tracing_error(local, "bot_event", &err);
                }
                news.upto.store(memory.last_event, Relaxed);
                news.wake.notify_one();
            }
            Ok(Event::Msg(ServerMsg::Pong(p))) => {
                local.counters.pongs += 1;
                local.counters.msgs_in += 1;
                let sent = ctx.start + Duration::from_micros(p.t);
                full |= local.record(Metric::PingRtt, micros(now.saturating_duration_since(sent)));
            }
            // Only a `Hello` is answered with these.
            Ok(Event::Msg(ServerMsg::Welcome(_) | ServerMsg::Redirect(_))) => {
                return End::Lost("protocol_error");
            }
            Ok(Event::Closed { code, .. }) | Err(ClientError::Closed { code, .. }) => {
                local.counters.bytes_in += reader.take_bytes_received();
                return End::Closed(code);
            }
            Err(ClientError::Decode(_) | ClientError::Unexpected(_)) => {
                return End::Lost("protocol_error");
            }
            Err(_) => {
                local.counters.bytes_in += reader.take_bytes_received();
                return End::Lost("connection_lost");
            }
        }
        if full || now.duration_since(last_flush) >= FLUSH_EVERY {
            local.counters.bytes_in += reader.take_bytes_received();
            ctx.stats.flush(session.id, local);
            last_flush = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_gap_is_the_median_of_the_recent_gaps() {
        let median_after = |gaps: &[u32]| {
            let mut g = StateGaps::default();
            for &gap in gaps {
                g.push(gap);
            }
            g.median()
        };
        // Until three gaps are in, one or two could be skips: every tick.
        assert_eq!(median_after(&[]), 1);
        assert_eq!(median_after(&[6, 6]), 1);
        assert_eq!(median_after(&[6, 6, 6]), 6);
        // An odd skip of a slow reader's does not count as the rate.
        assert_eq!(median_after(&[2, 2, 9, 2, 2]), 2);
        // A gap of 0 (no new tick) counts as 1.
        assert_eq!(median_after(&[0, 0, 0]), 1);
        // A new send rate is followed once it holds for half the window.
        let mut gaps = vec![2; StateGaps::KEPT];
        gaps.extend([5; StateGaps::KEPT / 2 - 1]);
        assert_eq!(median_after(&gaps), 2);
        gaps.extend([5; 2]);
        assert_eq!(median_after(&gaps), 5);
        // And only the last KEPT count.
        gaps.extend([3; StateGaps::KEPT]);
        assert_eq!(median_after(&gaps), 3);
    }

    #[test]
    fn backoff_is_full_jitter_below_a_doubling_cap() {
        let mut rng = SmallRng::seed_from_u64(1);
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 0..10 {
            let cap = (base * 2u32.pow(attempt)).min(max);
            let delays: Vec<_> = (0..2000)
                .map(|_| backoff_delay(attempt, base, max, &mut rng))
                .collect();
            assert!(delays.iter().all(|d| *d < cap), "attempt {attempt}");
            // Full jitter: the delays spread over the whole range.
            assert!(delays.iter().any(|d| *d < cap / 10), "attempt {attempt}");
            assert!(
                delays.iter().any(|d| *d > cap * 9 / 10),
                "attempt {attempt}"
            );
        }
        assert!(
            backoff_delay(200, base, max, &mut rng) < max,
            "huge attempts stay capped"
        );
    }
}

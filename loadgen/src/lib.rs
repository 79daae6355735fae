//! `loadgen`: plays thousands of simulated players of any game against the
//! game server and measures how it holds up.
//!
//! Layout:
//! - [`bots`]: the games it can play, each through the bot that lives with
//!   the game;
//! - [`player`]: one simulated player (connect, play, reconnect, resume);
//! - [`stats`]: per-client batches merged into sharded HdrHistograms;
//! - [`report`]: the run's report (human table, JSON) and `merge`;
//! - [`verdict`]: `--assert` and `--baseline` checks for CI;
//! - [`plot`], [`hdrlog`]: the SVG percentile plot and interval logs;
//! - [`sys`]: open-file limit, own CPU and memory, the server's.
//!
//! [`run`] drives a whole run inside the caller's tokio runtime, so tests
//! can run it next to an in-process server; `main.rs` is the CLI.

pub mod bots;
pub mod hdrlog;
pub mod player;
pub mod plot;
pub mod report;
pub mod stats;
pub mod sys;
pub mod verdict;

use player::PlayerCtl;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use report::{NodeCounts, Outage, Report, Resources};
use stats::{Interval, Stats};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Shards of the stats: a few per core keeps flush contention negligible.
const STATS_SHARDS: usize = 16;

/// How often the connected count is sampled for outage detection.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// How often shards are collected, logs written and progress shown.
const COLLECT_EVERY: Duration = Duration::from_secs(1);

/// A fall below this share of the clients connected just before is an
/// outage (a server restart, a network cut), not chaos or churn.
const OUTAGE_FRACTION: f64 = 0.9;

/// How long players get to leave cleanly at the end of a run.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How a player writes its inputs to the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InputBatching {
    /// Every input and ping is written the moment it is due (those a busy
    /// loadgen finds already due when it gets round to them go out
    /// together).
    Off,
    /// For a bot that streams its inputs ([`game_api::Bot::streams`], the
    /// arena's), at most one write of inputs and pings per state interval:
    /// the median gap between the last 16 states the player received, in
    /// ticks, times the tick period (at most 250 ms). Those due sooner
    /// after the last write wait for the next one and go out together,
    /// several frames in one system call, the way Quake's `cl_maxpackets`
    /// packs user commands into packets. While the server sends states
    /// faster than the bot acts (the normal case: 30 states and 20 inputs
    /// a second) nothing waits; when the server lowers its send rate under
    /// overload, the players' writes follow it down and free the CPU both
    /// sides spend per write. Latencies still count from the due times, so
    /// the waiting is measured. An event acknowledgement is written at
    /// once. Any other bot (one that acts on turns) writes as with `Off`.
    PerState,
}

impl InputBatching {
    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::PerState => "per-state",
        }
    }
}

/// What to run.
#[derive(Clone)]
pub struct RunConfig {
    /// WebSocket URL of the server's game endpoint; on a cluster, the entry
    /// URL where every new player starts (resumes go to the node that
    /// welcomed the player).
    pub url: String,
    /// The game to play, and how.
    pub game: game_api::BotSpec,
    /// Simulated players.
    pub clients: usize,
    /// Players start evenly spread over this time.
    pub ramp_up: Duration,
    /// How long the run lasts after the ramp-up.
    pub duration: Duration,
    /// Times per second each player's bot is asked for a message (it may
    /// have none to send, a turn-based bot waiting for its turn).
    pub input_hz: f64,
    /// App-level pings per second per player.
    pub ping_hz: f64,
    /// How a player writes its inputs to the socket.
    pub input_batching: InputBatching,
    /// First reconnect delay bound; doubles per attempt.
    pub backoff_base: Duration,
    /// Largest reconnect delay bound.
    pub backoff_max: Duration,
    /// Share of connected players cut abruptly each second.
    pub chaos_drop_rate: f64,
    /// The chaos stops this long before the end of the run, so that every
    /// player cut can be back by the end (zero: it goes on to the end).
    pub chaos_calm: Duration,
    /// Seed of movement patterns, schedules' phases and chaos choices.
    pub seed: u64,
    /// Deadline for connect + upgrade + Hello/Welcome.
    pub connect_timeout: Duration,
    /// Directory for HdrHistogram interval logs, one file per metric.
    pub hdr_log_dir: Option<PathBuf>,
    /// Show a live progress line on stderr.
    pub progress: bool,
}

impl RunConfig {
    /// A configuration with the CLI's defaults for `url` and `clients`.
    pub fn new(url: impl Into<String>, clients: usize) -> Self {
        Self {
            url: url.into(),
            game: arena::bot::SPEC,
            clients,
            ramp_up: Duration::from_secs(1),
            duration: Duration::from_secs(10),
            input_hz: 20.0,
            ping_hz: 1.0,
            input_batching: InputBatching::Off,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            chaos_drop_rate: 0.0,
            chaos_calm: Duration::ZERO,
            seed: 1,
            connect_timeout: Duration::from_secs(10),
            hdr_log_dir: None,
            progress: false,
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.clients > 0, "--clients must be at least 1");
        anyhow::ensure!(
            self.input_hz > 0.0 && self.input_hz <= 1000.0,
            "--input-hz must be in (0, 1000]"
        );
        anyhow::ensure!(
            self.ping_hz > 0.0 && self.ping_hz <= 100.0,
            "--ping-hz must be in (0, 100]"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.chaos_drop_rate),
            "--chaos-drop-rate must be between 0 and 1"
        );
        anyhow::ensure!(
            !self.backoff_base.is_zero(),
            "--backoff-base must be positive"
        );
        anyhow::ensure!(
            self.backoff_max >= self.backoff_base,
            "--backoff-max must be at least --backoff-base"
        );
        client::WsUrl::parse(&self.url).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }
}

/// State shared by the players and the run loop.
pub struct RunCtx {
    /// The run's configuration.
    pub config: RunConfig,
    /// Measurements.
    pub stats: Stats,
    /// When the run started; ping timestamps are relative to it.
    pub start: Instant,
    /// Becomes true when players must leave.
    pub stop: watch::Receiver<bool>,
    /// Per-player controls, by player index.
    pub players: Vec<Arc<PlayerCtl>>,
}

/// Completes once the run is stopping. Cancel-safe; unlike `wait_for`, it
/// holds no lock guard across an `.await` in the caller.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs the load and returns the report. Must be called inside a tokio
/// runtime; spawns one task per player on it.
pub async fn run(config: RunConfig) -> anyhow::Result<Report> {
    config.validate()?;
    sys::check_fd_budget(config.clients).map_err(|e| anyhow::anyhow!(e))?;
    let authority = client::WsUrl::parse(&config.url)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .authority;
    let mut logs = match &config.hdr_log_dir {
        Some(dir) => Some(hdrlog::HdrLogs::create(dir)?),
        None => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let start = Instant::now();
    let ctx = Arc::new(RunCtx {
        players: (0..config.clients)
            .map(|_| Arc::new(PlayerCtl::default()))
            .collect(),
        config,
        stats: Stats::new(STATS_SHARDS),
        start,
        stop: stop_rx,
    });
    let cfg = &ctx.config;
    let (cpu_at_start, _) = sys::own_usage();
    let server_at_start = sys::scrape_server(&authority).await;

    let mut tasks = JoinSet::new();
    for id in 0..cfg.clients {
        let ctx = ctx.clone();
        let offset = cfg.ramp_up.mul_f64(id as f64 / cfg.clients as f64);
        tasks.spawn(async move {
            let mut stop = ctx.stop.clone();
            tokio::select! {
                _ = tokio::time::sleep_until((ctx.start + offset).into()) => {}
                _ = crate::stopped(&mut stop) => return,
            }
            player::run_player(id, ctx).await;
        });
    }
    if cfg.chaos_drop_rate > 0.0 {
        tokio::spawn(chaos(ctx.clone()));
    }

    let end = start + cfg.ramp_up + cfg.duration;
    let mut total = Interval::new();
    let mut interval = Interval::new();
    let mut watch = OutageWatch::new(tolerance(cfg));
    let mut peak = 0usize;
    let mut server_peak_rss = server_at_start.map_or(0, |s| s.rss_bytes);
    let mut server_last = server_at_start;
    let mut sampler = tokio::time::interval(SAMPLE_EVERY);
    let mut last_collect = Instant::now();
    let mut last_log = start;
    while Instant::now() < end {
        sampler.tick().await;
        let now = Instant::now();
        let connected = ctx.stats.connected.load(Relaxed);
        peak = peak.max(connected);
        watch.sample(now.duration_since(start), connected);
        if now.duration_since(last_collect) < COLLECT_EVERY {
            continue;
        }
        last_collect = now;
        ctx.stats.collect(&mut interval);
        if let Some(logs) = logs.as_mut() {
            logs.write(
                &interval,
                last_log.duration_since(start),
                now.duration_since(last_log),
            )?;
        }
        last_log = now;
        total.add(&interval);
        if cfg.progress {
            progress_line(
                &ctx,
                &total,
                &interval,
                connected,
                now.duration_since(start),
            );
        }
        interval.clear();
        if let Some(s) = sys::scrape_server(&authority).await {
            server_peak_rss = server_peak_rss.max(s.rss_bytes);
            server_last = Some(s);
        }
    }
    let connected_at_end = ctx.stats.connected.load(Relaxed);
    let nodes = connected_by_node(&ctx.players);
    let elapsed = start.elapsed();
    stop_tx.send_replace(true);
    let leave = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(STOP_GRACE, leave).await.is_err() {
        tasks.abort_all();
    }
    if cfg.progress {
        eprintln!();
    }
    ctx.stats.collect(&mut interval);
    if let Some(logs) = logs.as_mut() {
        let now = Instant::now();
        logs.write(
            &interval,
            last_log.duration_since(start),
            now.duration_since(last_log),
        )?;
        logs.finish()?;
    }
    total.add(&interval);

    let (cpu_now, rss) = sys::own_usage();
    let secs = elapsed.as_secs_f64();
    let server = match (server_at_start, server_last) {
        (Some(a), Some(b)) => {
            // A restarted server's CPU counter starts again from zero.
            let cpu_s = if b.cpu_s >= a.cpu_s {
                b.cpu_s - a.cpu_s
            } else {
                b.cpu_s
            };
            Some(Resources {
                cpu_s,
                cpu_cores: cpu_s / secs,
                peak_rss_bytes: server_peak_rss,
            })
        }
        _ => None,
    };
    let mut report = Report {
        loadgen_version: env!("CARGO_PKG_VERSION").to_owned(),
        url: cfg.url.clone(),
        clients: cfg.clients,
        elapsed_s: secs,
        settings: settings_of(cfg),
        counters: Default::default(),
        connected_peak: peak,
        connected_at_end,
        nodes,
        errors: BTreeMap::new(),
        error_count: 0,
        latency: BTreeMap::new(),
        throughput: Default::default(),
        outages: watch.finish(),
        loadgen: Resources {
            cpu_s: cpu_now - cpu_at_start,
            cpu_cores: (cpu_now - cpu_at_start) / secs,
            peak_rss_bytes: rss,
        },
        server,
        runs_merged: 1,
    };
    report.fill_from(&total);
    Ok(report)
}

impl std::fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunConfig")
            .field("url", &self.url)
            .field("game", &self.game.room_type)
            .field("clients", &self.clients)
            .field("settings", &settings_of(self))
            .finish_non_exhaustive()
    }
}

/// The players connected right now, by the node their session lives on.
fn connected_by_node(players: &[Arc<PlayerCtl>]) -> BTreeMap<String, NodeCounts> {
    let mut nodes: BTreeMap<String, NodeCounts> = BTreeMap::new();
    for p in players {
        if !p.connected.load(Relaxed) {
            continue;
        }
        if let Some(home) = p.home() {
            nodes.entry(home.to_string()).or_default().connected_at_end += 1;
        }
    }
    nodes
}

fn settings_of(cfg: &RunConfig) -> BTreeMap<String, String> {
    let d = |d: Duration| humantime::format_duration(d).to_string();
    [
        ("game", cfg.game.room_type.to_owned()),
        ("ramp_up", d(cfg.ramp_up)),
        ("duration", d(cfg.duration)),
        ("input_hz", cfg.input_hz.to_string()),
        ("ping_hz", cfg.ping_hz.to_string()),
        ("input_batching", cfg.input_batching.name().to_owned()),
        ("backoff_base", d(cfg.backoff_base)),
        ("backoff_max", d(cfg.backoff_max)),
        ("chaos_drop_rate", cfg.chaos_drop_rate.to_string()),
        ("chaos_calm", d(cfg.chaos_calm)),
        ("seed", cfg.seed.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// How far below its earlier level the connected count may stay and still
/// count as "all back": the players that chaos keeps disconnected at any
/// moment (cut per second times a few seconds of back-off), at least one.
fn tolerance(cfg: &RunConfig) -> usize {
    let churn =
        cfg.chaos_drop_rate * cfg.clients as f64 * (cfg.backoff_base.as_secs_f64() * 2.0).max(1.0);
    (churn.ceil() as usize).max(1)
}

fn progress_line(
    ctx: &RunCtx,
    total: &Interval,
    interval: &Interval,
    connected: usize,
    at: Duration,
) {
    let c = &interval.counters;
    let h = &total.hist[stats::Metric::InputAck as usize];
    let p99 = if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(0.99) as f64 / 1000.0
    };
    eprint!(
        "\r{:>5.0}s connected {:>6}/{:<6} in {:>7} msg/s out {:>7} msg/s  input_ack p99 {:>7.2} ms  errors {:<6}",
        at.as_secs_f64(),
        connected,
        ctx.config.clients,
        c.msgs_in,
        c.msgs_out,
        p99,
        total.error_count()
    );
    let _ = std::io::stderr().flush();
}

/// Every second, cuts a `chaos_drop_rate` share of the connected players
/// abruptly (their socket is dropped with no close frame), until
/// `chaos_calm` before the end of the run.
async fn chaos(ctx: Arc<RunCtx>) {
    let cfg = &ctx.config;
    let mut rng = SmallRng::seed_from_u64(cfg.seed.wrapping_add(0xC4A0_5EED));
    let mut stop = ctx.stop.clone();
    let calm = ctx.start + (cfg.ramp_up + cfg.duration).saturating_sub(cfg.chaos_calm);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    // Fractions of a player carry over, so low rates still cut someone.
    let mut owed = 0.0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = crate::stopped(&mut stop) => return,
        }
        if Instant::now() >= calm {
            return;
        }
        let mut live: Vec<&Arc<PlayerCtl>> = ctx
            .players
            .iter()
            .filter(|p| p.connected.load(Relaxed))
            .collect();
        owed += ctx.config.chaos_drop_rate * live.len() as f64;
        let cut = (owed.floor() as usize).min(live.len());
        owed -= cut as f64;
        for i in 0..cut {
            let j = rng.random_range(i..live.len());
            live.swap(i, j);
            live[i].kill.store(true, Relaxed);
            live[i].wake.notify_one();
        }
    }
}

/// Watches the connected count for outages.
struct OutageWatch {
    /// Recent samples (about a second's worth).
    recent: VecDeque<usize>,
    /// The outage in progress, if any.
    current: Option<Outage>,
    /// Finished outages.
    done: Vec<Outage>,
    /// See [`tolerance`].
    tolerance: usize,
}

impl OutageWatch {
    fn new(tolerance: usize) -> Self {
        Self {
            recent: VecDeque::new(),
            current: None,
            done: Vec::new(),
            tolerance,
        }
    }

    fn sample(&mut self, at: Duration, connected: usize) {
        let at_s = at.as_secs_f64();
        match &mut self.current {
            Some(o) => {
                o.lowest_connected = o.lowest_connected.min(connected);
                if connected + self.tolerance >= o.connected_before {
                    o.all_back_after_s = Some(at_s - o.started_at_s);
                    self.done.push(self.current.take().expect("matched"));
                    self.recent.clear();
                }
            }
            None => {
                let before = self.recent.iter().copied().max().unwrap_or(0);
                // Small counts (the start of a ramp) are too noisy to judge.
                if before >= 10 && (connected as f64) < before as f64 * OUTAGE_FRACTION {
                    self.current = Some(Outage {
                        started_at_s: at_s,
                        connected_before: before,
                        lowest_connected: connected,
                        all_back_after_s: None,
                    });
                }
            }
        }
        self.recent.push_back(connected);
        if self.recent.len() > (COLLECT_EVERY.as_millis() / SAMPLE_EVERY.as_millis()) as usize {
            self.recent.pop_front();
        }
    }

    fn finish(mut self) -> Vec<Outage> {
        self.done.extend(self.current.take());
        self.done
    }
}

/// A report with empty measurements, for unit tests of the output code.
#[cfg(test)]
pub(crate) fn test_report() -> Report {
    Report {
        loadgen_version: "test".into(),
        url: "ws://127.0.0.1:1/ws".into(),
        clients: 10,
        elapsed_s: 10.0,
        settings: BTreeMap::new(),
        counters: Default::default(),
        connected_peak: 10,
        connected_at_end: 10,
        nodes: BTreeMap::new(),
        errors: BTreeMap::new(),
        error_count: 0,
        latency: BTreeMap::new(),
        throughput: Default::default(),
        outages: vec![],
        loadgen: Resources::default(),
        server: None,
        runs_merged: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn an_outage_is_timed_until_the_clients_are_back() {
        let mut w = OutageWatch::new(1);
        let mut t = 0;
        let mut feed = |w: &mut OutageWatch, connected: usize, samples: u32| {
            for _ in 0..samples {
                t += 100;
                w.sample(ms(t), connected);
            }
        };
        feed(&mut w, 100, 20);
        feed(&mut w, 95, 5); // churn, not an outage
        feed(&mut w, 100, 5);
        feed(&mut w, 0, 30); // the server went down at 3.1 s
        feed(&mut w, 60, 5);
        feed(&mut w, 99, 1); // back within the tolerance at 6.6 s
        feed(&mut w, 100, 5);
        let outages = w.finish();
        assert_eq!(outages.len(), 1, "{outages:?}");
        let o = &outages[0];
        assert_eq!((o.connected_before, o.lowest_connected), (100, 0));
        assert!((o.started_at_s - 3.1).abs() < 1e-9, "{o:?}");
        assert!((o.all_back_after_s.unwrap() - 3.5).abs() < 1e-9, "{o:?}");
    }

    #[test]
    fn an_outage_that_never_ends_is_reported_open() {
        let mut w = OutageWatch::new(1);
        for i in 0..20 {
            w.sample(ms(i * 100), 50);
        }
        w.sample(ms(2100), 3);
        let outages = w.finish();
        assert_eq!(outages.len(), 1);
        assert_eq!(outages[0].all_back_after_s, None);
    }

    #[test]
    fn invalid_configurations_are_refused() {
        let ok = RunConfig::new("ws://127.0.0.1:9/ws", 1);
        assert!(ok.validate().is_ok());
        let bad = [
            RunConfig {
                clients: 0,
                ..ok.clone()
            },
            RunConfig {
                input_hz: 0.0,
                ..ok.clone()
            },
            RunConfig {
                chaos_drop_rate: 1.5,
                ..ok.clone()
            },
            RunConfig {
                url: "http://x".into(),
                ..ok.clone()
            },
            RunConfig {
                backoff_max: Duration::from_millis(1),
                ..ok.clone()
            },
        ];
        for cfg in bad {
            assert!(cfg.validate().is_err(), "{cfg:?}");
        }
    }
}

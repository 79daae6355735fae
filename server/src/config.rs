//! The server's options: command-line flags with `GAME_*` environment
//! fallbacks, and the settings derived from them.
//!
//! Every server limit lives here with a default and a reason; a game's own
//! options (the arena's field size, say) belong to the game and to the
//! binary that registers it. [`Config::default`] is the documented defaults
//! and nothing else: only `main` reads the environment and the command line
//! (through clap), so a server embedded in a test does not change with the
//! shell it runs in.

use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::time::Duration;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Ticks between two states in a room ticking `tick_hz` times a second:
/// `snapshot_hz` rounded to whole ticks (at least one), every tick without
/// it.
pub fn send_every(tick_hz: u16, snapshot_hz: Option<u16>) -> u32 {
    match snapshot_hz {
        None => 1,
        Some(hz) => ((f64::from(tick_hz) / f64::from(hz)).round() as u32).max(1),
    }
}

/// How a room's send rate follows load (see `--send-rate-policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SendRatePolicy {
    /// Lower the room's send rate evenly under overload, raise it back after.
    Adaptive,
    /// Keep the configured rate whatever happens.
    Fixed,
}

/// Upper bound of --max-message-size: a message is reassembled in memory,
/// so the bound caps what one connection can make the server hold.
pub const MAX_MESSAGE_SIZE_LIMIT: usize = 64 << 20;

fn duration(s: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(s)
}

/// Authoritative fixed-tick game server: HTTP, WebSocket game sessions at
/// /ws, the browser game at /, /healthz and /metrics, all on one port.
#[derive(Parser, Debug, Clone)]
#[command(name = "server", version, about, long_about = None)]
// The field docs are the --help text, where a URL is written bare.
#[allow(rustdoc::bare_urls)]
pub struct Config {
    /// Address to listen on (HTTP and WebSocket share it).
    #[arg(long, env = "GAME_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Simulation steps, and states, per second in rooms whose type sets no
    /// rate of its own.
    #[arg(help_heading = "Rooms", long, env = "GAME_TICK_HZ", default_value_t = 30,
          value_parser = clap::value_parser!(u16).range(1..=240))]
    pub tick_hz: u16,

    /// States sent to each player per second: a state every
    /// round(tick rate / this) ticks (at least every tick). The default
    /// sends one every tick. Like Source, Unity Netcode or Colyseus (60 Hz
    /// simulation, 20 Hz patches), a lower rate costs clients a little
    /// latency and saves the server most of its work, which is writing.
    #[arg(help_heading = "Rooms", long, env = "GAME_SNAPSHOT_HZ",
          value_parser = clap::value_parser!(u16).range(1..=240))]
    pub snapshot_hz: Option<u16>,

    /// What a room does when it cannot send its states in time (states
    /// replaced before their connection took them, ticks late): `adaptive`
    /// sends every 2nd, 3rd, ... tick to all its players alike until load
    /// falls, then back; `fixed` keeps the rate and lets each slow
    /// connection skip states on its own.
    #[arg(help_heading = "Rooms", long, env = "GAME_SEND_RATE_POLICY", value_enum, default_value_t = SendRatePolicy::Adaptive)]
    pub send_rate_policy: SendRatePolicy,

    /// Most rooms open at once, of all types; past it, new rooms are
    /// refused with 4001.
    #[arg(
        help_heading = "Rooms",
        long,
        env = "GAME_MAX_ROOMS",
        default_value_t = 1000
    )]
    pub max_rooms: u32,

    /// How long an empty room stays open for someone to join, as DURATION
    /// for every room type or TYPE=DURATION for one (repeatable; a type's
    /// own default applies otherwise: four-in-a-row keeps an empty private
    /// room two minutes, so a host who reloads finds it).
    #[arg(help_heading = "Rooms", long = "room-linger", env = "GAME_ROOM_LINGER", value_delimiter = ',',
          value_parser = linger_rule)]
    pub room_linger: Vec<LingerRule>,

    /// Seed of the rooms' random numbers; random when not given. Rooms are
    /// deterministic for a given seed and message sequence.
    #[arg(help_heading = "Rooms", long, env = "GAME_SEED")]
    pub seed: Option<u64>,

    /// How long a dropped player keeps its place, waiting for a resume.
    #[arg(help_heading = "Rooms", long, env = "GAME_RESUME_GRACE", default_value = "15s", value_parser = duration)]
    pub resume_grace: Duration,

    /// Interval of the server's WebSocket pings.
    #[arg(help_heading = "Connections and their limits", long, env = "GAME_PING_INTERVAL", default_value = "5s", value_parser = duration)]
    pub ping_interval: Duration,

    /// A connection from which nothing arrives for this long is closed (4005).
    #[arg(help_heading = "Connections and their limits", long, env = "GAME_IDLE_TIMEOUT", default_value = "15s", value_parser = duration)]
    pub idle_timeout: Duration,

    /// A connection must send `Hello` within this time of the upgrade (4008).
    #[arg(help_heading = "Connections and their limits", long, env = "GAME_HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub handshake_timeout: Duration,

    /// A client that takes no snapshot for this long, or whose socket
    /// accepts no write for this long, is closed as too slow (4004).
    #[arg(help_heading = "Connections and their limits", long, env = "GAME_SLOW_TIMEOUT", default_value = "3s", value_parser = duration)]
    pub slow_timeout: Duration,

    /// Most WebSocket connections at once; more are closed with 4006.
    #[arg(
        help_heading = "Connections and their limits",
        long,
        env = "GAME_MAX_CONNECTIONS",
        default_value_t = 10_000
    )]
    pub max_connections: usize,

    /// Largest message in bytes, after reassembling fragments; larger ones
    /// are closed with 1009. The protocol's decoder refuses more than 1,024
    /// whatever this says; larger values only matter for the --echo-route
    /// conformance endpoint (the Autobahn suite sends messages of up to
    /// 16 MiB).
    #[arg(help_heading = "Connections and their limits", long, env = "GAME_MAX_MESSAGE_SIZE", default_value_t = protocol::MAX_CLIENT_MSG_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
              .range(1..=MAX_MESSAGE_SIZE_LIMIT as u64))]
    pub max_message_size: usize,

    /// Kernel send buffer of each connection in bytes (0: the system's
    /// autotuning, up to several megabytes). Snapshots are latest-wins, so
    /// a deep kernel buffer only queues stale ones for a slow client and
    /// costs memory; 64 KiB holds seconds of snapshots and lets a stuck
    /// client be noticed within --slow-timeout.
    #[arg(help_heading = "Connections and their limits", long, env = "GAME_SEND_BUFFER", default_value_t = 64 * 1024)]
    pub send_buffer: usize,

    /// Most concurrent TCP connections from one IP address (0: no limit).
    /// Connections past it are closed at accept, before any HTTP is read.
    /// Off by default because the default listen address is loopback; set
    /// it when exposing the server.
    #[arg(
        help_heading = "Connections and their limits",
        long,
        env = "GAME_MAX_CONNECTIONS_PER_IP",
        default_value_t = 0
    )]
    pub max_connections_per_ip: usize,

    /// Origins allowed to open a WebSocket (repeatable, or comma-separated
    /// in the environment), e.g. https://game.example. When set, an upgrade
    /// carrying another Origin header gets 403, which stops other sites'
    /// pages from opening sessions with your players' cookies and network
    /// (cross-site WebSocket hijacking). Requests without an Origin header
    /// (non-browser clients) are allowed.
    #[arg(
        help_heading = "HTTP and TLS",
        long = "allowed-origin",
        env = "GAME_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// A client must send its complete HTTP request headers within this
    /// time of connecting (or of its previous request); slow-loris clients
    /// that trickle headers are cut off.
    #[arg(help_heading = "HTTP and TLS", long, env = "GAME_HEADER_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub header_timeout: Duration,

    /// Largest HTTP request head (request line and headers) in bytes; a
    /// bigger one gets 431. hyper's floor is 8 KiB.
    #[arg(help_heading = "HTTP and TLS", long, env = "GAME_MAX_HEADER_BYTES", default_value_t = 16 * 1024,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(8192..=1 << 20))]
    pub max_header_bytes: usize,

    /// PEM certificate chain: serve https:// and wss:// (with --tls-key) on
    /// the listen port instead of plain HTTP.
    #[arg(
        help_heading = "HTTP and TLS",
        long,
        env = "GAME_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(
        help_heading = "HTTP and TLS",
        long,
        env = "GAME_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<std::path::PathBuf>,

    /// Serve /echo: a WebSocket echo endpoint for conformance testing
    /// (the Autobahn suite), through the same connection layer, limits and
    /// close handling as /ws. Off by default.
    #[arg(help_heading = "HTTP and TLS", long, env = "GAME_ECHO_ROUTE")]
    pub echo_route: bool,

    /// Where to save rooms, players and live resume tokens on SIGTERM or
    /// SIGINT (clients are then closed with 1012, "service restart"), and
    /// to restore them from at start, so that a planned restart loses no
    /// session that comes back within --resume-grace, counted from the
    /// restart. A restored file is renamed FILE.restored, an unreadable
    /// one FILE.corrupt. A crash (SIGKILL) saves nothing.
    #[arg(help_heading = "Process", long, env = "GAME_STATE_FILE")]
    pub state_file: Option<std::path::PathBuf>,

    /// Game messages accepted per connection per second; excess is
    /// dropped, and a client that keeps sending more than twice this is
    /// closed (4003).
    #[arg(help_heading = "Connections and their limits", long, env = "GAME_MAX_INPUTS_PER_SEC", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_inputs_per_sec: u32,

    /// App-level pings (`Ping`) answered per connection per second; excess
    /// gets no `Pong`, and a client that keeps sending more than twice this
    /// is closed (4003). Clients ping every few seconds, so ten leaves room
    /// for bursts after a stall.
    #[arg(help_heading = "Connections and their limits", long, env = "GAME_MAX_PINGS_PER_SEC", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pings_per_sec: u32,

    /// Event acknowledgements (`EventAck`) accepted per connection per
    /// second; excess is dropped (a later one covers it), and a client that
    /// keeps sending more than twice this is closed (4003). Each wakes the
    /// room, and a client acknowledges at most once per batch of events it
    /// receives, so thirty is far above what a game needs while keeping a
    /// hostile client from waking its room thousands of times a second.
    #[arg(help_heading = "Connections and their limits", long, env = "GAME_MAX_ACKS_PER_SEC", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_acks_per_sec: u32,

    /// How long shutdown waits for connections to close and rooms to stop.
    #[arg(help_heading = "Process", long, env = "GAME_SHUTDOWN_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub shutdown_timeout: Duration,

    /// Runtime worker threads; by default one per CPU core. Fan-out is
    /// spread over them, so more threads than cores buys nothing.
    #[arg(help_heading = "Process", long, env = "GAME_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,

    /// Log format.
    #[arg(help_heading = "Process", long, env = "GAME_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Join a cluster whose room directory is this Redis server
    /// (`redis://HOST:PORT`, optionally `/DB`): rooms of every node are
    /// listed and joined from any node, players are redirected to the node
    /// that holds their room. Needs --public-url. Without it the process is
    /// the whole service.
    #[arg(help_heading = "Cluster (a room directory in Redis)", long, env = "GAME_DIRECTORY", requires = "public_url", value_parser = redis_url)]
    pub directory: Option<String>,

    /// The URL a browser dials to reach this process
    /// (`wss://node-3.example/`; ws, wss, http or https): other nodes
    /// redirect players to its `ws` path. Only with --directory.
    #[arg(help_heading = "Cluster (a room directory in Redis)", long, env = "GAME_PUBLIC_URL", requires = "directory", value_parser = public_url)]
    pub public_url: Option<String>,

    /// This node's name in the directory; by default a random one, new at
    /// every start.
    #[arg(help_heading = "Cluster (a room directory in Redis)", long, env = "GAME_NODE_ID", requires = "directory",
          value_parser = node_id)]
    pub node_id: Option<String>,

    /// Record every room into this directory, one file per room
    /// (`TYPE-ROOM-STARTMS.replay`): everything that entered its game, a
    /// state hash every --record-hash-every steps and a keyframe every
    /// --record-keyframe-every. `server replay FILE --verify` re-simulates
    /// a file and checks it. Written off the tick: a slow or full disk
    /// costs the recording (counted in /metrics), never the game.
    #[arg(help_heading = "Recording", long, env = "GAME_RECORD")]
    pub record: Option<std::path::PathBuf>,

    /// Steps between two recorded state hashes (1: every step, so that a
    /// replay names the exact tick where it diverges).
    #[arg(help_heading = "Recording", long, env = "GAME_RECORD_HASH_EVERY", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub record_hash_every: u32,

    /// How often a recording keeps the game's whole state (a keyframe), for
    /// seeking and for going on after a gap.
    #[arg(help_heading = "Recording", long, env = "GAME_RECORD_KEYFRAME_EVERY", default_value = "10s", value_parser = duration)]
    pub record_keyframe_every: Duration,

    /// Most megabytes (before compression) one room's recording holds;
    /// past them its recording ends and the room goes on unrecorded.
    #[arg(help_heading = "Recording", long, env = "GAME_RECORD_MAX_MB", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub record_max_mb: u64,
}

/// Checks a `--directory` URL's scheme.
fn redis_url(s: &str) -> Result<String, String> {
    if s.starts_with("redis://") && s.len() > "redis://".len() {
        Ok(s.to_owned())
    } else {
        Err("expected redis://HOST:PORT".into())
    }
}

/// The WebSocket URL of the game route under a `--public-url`: ws and wss
/// as given, http and https turned into ws and wss, `ws` appended to the
/// path.
pub fn public_ws_url(base: &str) -> Result<String, String> {
    let (scheme, host, path) = split_url(base).ok_or_else(|| format!("{base:?} is not a URL"))?;
    let scheme = match scheme {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => return Err(format!("scheme {other:?}: expected ws, wss, http or https")),
    };
    if host.is_empty() || path.contains(['?', '#', ' ']) || host.contains(['?', '#', ' ']) {
        return Err(format!("{base:?} needs a host, and no query or fragment"));
    }
    Ok(format!(
        "{scheme}://{host}{}/ws",
        path.trim_end_matches('/')
    ))
}

/// A `--public-url` with a port of 0 (`ws://127.0.0.1:0/`) given the port
/// actually bound, for a node listening on port 0; any other URL as it is.
pub(crate) fn with_bound_port(url: &str, port: u16) -> String {
    match split_url(url) {
        Some((scheme, host, path)) => match host.strip_suffix(":0") {
            Some(host) => format!("{scheme}://{host}:{port}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// A URL's scheme, host (with its port) and path (from its first `/`).
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let host_end = rest.find('/').unwrap_or(rest.len());
    Some((scheme, &rest[..host_end], &rest[host_end..]))
}

fn public_url(s: &str) -> Result<String, String> {
    public_ws_url(s).map(|_| s.to_owned())
}

/// A node id: 1 to 32 characters of a-z, 0-9, `_` and `-`.
fn node_id(s: &str) -> Result<String, String> {
    if protocol::limits::is_name(s, 32) {
        Ok(s.to_owned())
    } else {
        Err("1 to 32 characters of a-z, 0-9, _ and -".into())
    }
}

/// How long empty rooms linger: for every type, or for one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LingerRule {
    /// The room type it applies to; every type when `None`.
    pub room_type: Option<String>,
    /// How long an empty room stays open.
    pub linger: Duration,
}

fn linger_rule(s: &str) -> Result<LingerRule, String> {
    let (room_type, d) = match s.split_once('=') {
        Some((t, d)) => (Some(t.to_owned()), d),
        None => (None, s),
    };
    let linger = duration(d).map_err(|e| format!("{d:?}: {e}"))?;
    Ok(LingerRule { room_type, linger })
}

impl Default for Config {
    /// The documented defaults, whatever the environment says.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tick_hz: 30,
            snapshot_hz: None,
            send_rate_policy: SendRatePolicy::Adaptive,
            max_rooms: 1000,
            room_linger: Vec::new(),
            seed: None,
            resume_grace: Duration::from_secs(15),
            ping_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(5),
            slow_timeout: Duration::from_secs(3),
            max_connections: 10_000,
            max_message_size: protocol::MAX_CLIENT_MSG_BYTES,
            send_buffer: 64 * 1024,
            max_connections_per_ip: 0,
            allowed_origins: Vec::new(),
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            tls_cert: None,
            tls_key: None,
            echo_route: false,
            state_file: None,
            max_inputs_per_sec: 60,
            max_pings_per_sec: 10,
            max_acks_per_sec: 30,
            shutdown_timeout: Duration::from_secs(5),
            threads: None,
            log_format: LogFormat::Human,
            directory: None,
            public_url: None,
            node_id: None,
            record: None,
            record_hash_every: 1,
            record_keyframe_every: Duration::from_secs(10),
            record_max_mb: 1024,
        }
    }
}

impl Config {
    /// Default options plus `args` as on the command line (without the
    /// program name), ignoring the environment: what tests and embedders
    /// use.
    pub fn from_args(args: &[&str]) -> Result<Self, clap::Error> {
        use clap::{CommandFactory, FromArgMatches};
        // The same options without their environment fallbacks: only the
        // words given count, whatever the caller's shell has set.
        let command = Self::command().mut_args(|arg| arg.env(None::<&str>));
        let matches =
            command.try_get_matches_from(std::iter::once("server").chain(args.iter().copied()))?;
        Self::from_arg_matches(&matches)
    }

    /// The tick period at the default tick rate.
    pub fn tick_period(&self) -> Duration {
        Duration::from_secs(1) / u32::from(self.tick_hz)
    }

    /// Ticks between two states in a room ticking `tick_hz` times a second
    /// (see [`send_every`]).
    pub fn send_every(&self, tick_hz: u16) -> u32 {
        send_every(tick_hz, self.snapshot_hz)
    }

    /// How long empty rooms of `room_type` linger: the last rule naming it,
    /// else the last rule for every type, else `default` (the type's own).
    pub fn linger_for(&self, room_type: &str, default: Duration) -> Duration {
        let named = self
            .room_linger
            .iter()
            .rev()
            .find(|r| r.room_type.as_deref() == Some(room_type));
        let all = self
            .room_linger
            .iter()
            .rev()
            .find(|r| r.room_type.is_none());
        named.or(all).map_or(default, |r| r.linger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation_and_the_command_line() {
        let c = Config::default();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.tick_hz, 30);
        assert_eq!(c.resume_grace, Duration::from_secs(15));
        assert_eq!(c.max_message_size, 1024);
        assert_eq!((c.max_pings_per_sec, c.max_acks_per_sec), (10, 30));
        // `Default` is written out by hand so that it never reads the
        // environment; it must still say what the flags' defaults say.
        // (Skipped when the shell running the tests sets GAME_* itself.)
        if std::env::vars().all(|(k, _)| !k.starts_with("GAME_")) {
            let parsed = Config::try_parse_from(["server"]).unwrap();
            assert_eq!(format!("{parsed:?}"), format!("{c:?}"));
        }
        // Tests and embedders never see the environment.
        let from_args = Config::from_args(&[]).unwrap();
        assert_eq!(format!("{from_args:?}"), format!("{c:?}"));
    }

    #[test]
    fn out_of_range_options_are_refused() {
        assert!(Config::from_args(&["--tick-hz", "0"]).is_err());
        assert!(Config::from_args(&["--max-message-size", "100000000"]).is_err());
        assert!(Config::from_args(&["--max-pings-per-sec", "0"]).is_err());
        assert!(Config::from_args(&["--max-acks-per-sec", "0"]).is_err());
        let c =
            Config::from_args(&["--max-pings-per-sec", "20", "--max-acks-per-sec", "90"]).unwrap();
        assert_eq!((c.max_pings_per_sec, c.max_acks_per_sec), (20, 90));
        assert!(
            Config::from_args(&["--tls-cert", "c.pem"]).is_err(),
            "a certificate needs its key"
        );
        let c = Config::from_args(&[
            "--allowed-origin",
            "https://a.example",
            "--allowed-origin",
            "https://b.example",
        ])
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert!(Config::from_args(&["--resume-grace", "soon"]).is_err());
        let c = Config::from_args(&["--resume-grace", "250ms"]).unwrap();
        assert_eq!(c.resume_grace, Duration::from_millis(250));
    }

    #[test]
    fn the_send_rate_is_whole_ticks_of_the_tick_rate() {
        let c = Config::default();
        assert_eq!(c.send_every(30), 1, "every tick by default");
        let c = Config::from_args(&["--snapshot-hz", "10"]).unwrap();
        assert_eq!(
            (c.send_every(30), c.send_every(20), c.send_every(60)),
            (3, 2, 6)
        );
        let c = Config::from_args(&["--snapshot-hz", "60"]).unwrap();
        assert_eq!(c.send_every(30), 1, "never more than every tick");
        assert!(Config::from_args(&["--snapshot-hz", "0"]).is_err());
        assert_eq!(c.send_rate_policy, SendRatePolicy::Adaptive);
        let c = Config::from_args(&["--send-rate-policy", "fixed"]).unwrap();
        assert_eq!(c.send_rate_policy, SendRatePolicy::Fixed);
    }

    #[test]
    fn linger_rules_apply_by_type_then_to_all_then_the_default() {
        let type_default = Duration::from_secs(120);
        let c = Config::default();
        assert_eq!(c.linger_for("four", type_default), type_default);
        let c = Config::from_args(&["--room-linger", "5s", "--room-linger", "four=1m"]).unwrap();
        assert_eq!(c.linger_for("four", type_default), Duration::from_secs(60));
        assert_eq!(
            c.linger_for("arena", Duration::ZERO),
            Duration::from_secs(5)
        );
        assert!(Config::from_args(&["--room-linger", "four=soon"]).is_err());
    }

    #[test]
    fn cluster_flags_go_together_and_public_urls_become_game_routes() {
        let c = Config::from_args(&[
            "--directory",
            "redis://127.0.0.1:6379",
            "--public-url",
            "wss://node-3.example/",
            "--node-id",
            "node-3",
        ])
        .expect("valid");
        assert_eq!(c.directory.as_deref(), Some("redis://127.0.0.1:6379"));
        assert_eq!(c.node_id.as_deref(), Some("node-3"));
        // Each needs the other; a node id needs a directory.
        assert!(Config::from_args(&["--directory", "redis://h:1"]).is_err());
        assert!(Config::from_args(&["--public-url", "ws://h/"]).is_err());
        assert!(Config::from_args(&["--node-id", "n"]).is_err());
        let with = |flag: &str, value: &str| {
            let mut args = vec!["--directory", "redis://h:1", "--public-url", "ws://h/"];
            args.extend_from_slice(&[flag, value]);
            Config::from_args(&args)
        };
        assert!(with("--directory", "http://h:1").is_err());
        assert!(with("--public-url", "ftp://h/").is_err());
        assert!(with("--public-url", "ws:///path").is_err());
        assert!(with("--node-id", "Node 3").is_err());

        assert_eq!(
            public_ws_url("wss://node-3.example/").as_deref(),
            Ok("wss://node-3.example/ws")
        );
        assert_eq!(
            public_ws_url("http://10.0.0.5:8080").as_deref(),
            Ok("ws://10.0.0.5:8080/ws")
        );
        assert_eq!(
            public_ws_url("https://games.example/eu/3/").as_deref(),
            Ok("wss://games.example/eu/3/ws")
        );
        assert!(public_ws_url("wss://h/?x=1").is_err());
    }

    #[test]
    fn a_public_url_on_port_0_takes_the_bound_port() {
        assert_eq!(
            with_bound_port("ws://127.0.0.1:0/", 4242),
            "ws://127.0.0.1:4242/"
        );
        assert_eq!(with_bound_port("http://h:0", 80), "http://h:80");
        assert_eq!(with_bound_port("ws://h:8000/", 1), "ws://h:8000/");
        assert_eq!(
            with_bound_port("wss://h.example/a:0/", 1),
            "wss://h.example/a:0/"
        );
    }
}

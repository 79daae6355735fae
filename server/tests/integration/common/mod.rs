//! Helpers shared by the integration tests: start a server in-process on
//! port 0, connect and join clients, read metrics over real HTTP, and wait
//! for conditions with a deadline instead of sleeping a fixed time.

use arena::ArenaConfig;
use arena::msg::{ArenaState, Entity, EntityKind, Move};
use client::{ClientError, Connection, Event};
use game_api::RoomType;
use protocol::{ClientMsg, GameMsg, RoomRequest, State, Welcome};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound for anything a test waits for; generous because CI machines
/// are shared and slow, and a passing test never waits this long.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A small field crowded with pickups that never respawn, and fast players:
/// a moving player scores within a few ticks, and a standing one can never
/// score by accident.
pub const SCORING: [&str; 12] = [
    "--world-width",
    "300",
    "--world-height",
    "300",
    "--pickups",
    "300",
    "--pickup-respawn",
    "1h",
    "--player-speed",
    "600",
    "--view-radius",
    "100",
];

pub use server::testing::TestServer;
pub use server::testing::exposition::Exposition;

/// The arena's options, by the `server` binary's flag names, that the
/// tests use; everything else in the words given to [`start`] is a server
/// option.
const ARENA_FLAGS: [&str; 7] = [
    "--world-width",
    "--world-height",
    "--view-radius",
    "--pickups",
    "--pickup-respawn",
    "--player-speed",
    "--room-capacity",
];

/// The built-in room types (`arena`, `four`), the arena configured by the
/// arena flags among `args` as the `server` binary would; returns them with
/// the remaining (server) options.
pub fn games<'a>(args: &[&'a str]) -> (Vec<RoomType>, Vec<&'a str>) {
    let mut config = ArenaConfig::default();
    let (mut speed, mut respawn) = (240, Duration::from_secs(3));
    let mut capacity = 100;
    let mut rest = Vec::new();
    let mut words = args.iter();
    while let Some(&word) = words.next() {
        if !ARENA_FLAGS.contains(&word) {
            rest.push(word);
            continue;
        }
        let value = *words.next().expect("an arena flag takes a value");
        let number = || value.parse::<u32>().expect("a number");
        match word {
            "--world-width" => config.world_width = number() as u16,
            "--world-height" => config.world_height = number() as u16,
            "--view-radius" => config.view_radius = number() as u16,
            "--pickups" => config.pickups = number(),
            "--player-speed" => speed = number(),
            "--room-capacity" => capacity = number() as u16,
            _ => respawn = humantime::parse_duration(value).expect("a duration"),
        }
    }
    let tick_hz = rest
        .windows(2)
        .find(|w| w[0] == "--tick-hz")
        .map_or(30, |w| w[1].parse().expect("a tick rate"));
    let arena = arena::room_type(config.at_tick_rate(tick_hz, speed, respawn)).capacity(capacity);
    (vec![arena, four::room_type()], rest)
}

/// Starts a server with the built-in games, as the `server` binary with
/// these options would run, on 127.0.0.1:0.
pub async fn start(args: &[&str]) -> TestServer {
    start_on("127.0.0.1:0", args).await
}

/// [`start`] on a given address.
pub async fn start_on(listen: &str, args: &[&str]) -> TestServer {
    let (types, rest) = games(args);
    TestServer::start_on(listen, types, &rest).await
}

/// An arena state with its envelope's tick and ack: what a player sees at
/// one tick (the single-game server called it a snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The room's tick.
    pub tick: u32,
    /// The highest move applied.
    pub ack: u32,
    /// Players in the room.
    pub players: u16,
    /// What the player sees.
    pub entities: Vec<Entity>,
}

impl Snapshot {
    /// Decodes an arena state.
    pub fn from_state(state: &State) -> Self {
        let arena: ArenaState = game_api::codec::decode(&state.data).expect("an arena state");
        Self {
            tick: state.tick,
            ack: state.ack,
            players: arena.players,
            entities: arena.entities,
        }
    }
}

/// The arena's part of a `Welcome`: the field.
pub fn arena_welcome(welcome: &Welcome) -> arena::msg::ArenaWelcome {
    game_api::codec::decode(&welcome.game).expect("an arena welcome")
}

/// Reads the next state (of any game), skipping pongs and events.
pub async fn next_state(conn: &mut Connection) -> State {
    within("a state", conn.next_state()).await.expect("a state")
}

/// Reads the next arena state, skipping pongs.
pub async fn next_snapshot(conn: &mut Connection) -> Result<Snapshot, ClientError> {
    conn.next_state().await.map(|s| Snapshot::from_state(&s))
}

/// What the tests do with a [`TestServer`] through the client library and
/// plain HTTP (kept here because the server library does not depend on the
/// client).
pub trait Play {
    /// Opens a WebSocket to the game endpoint.
    async fn connect(&self) -> Connection;
    /// Connects and joins the arena as a new player (quick join).
    async fn join(&self) -> (Connection, Welcome);
    /// Connects and joins as a new player placed by `request`.
    async fn join_with(&self, request: RoomRequest) -> (Connection, Welcome);
    /// Connects and resumes with `token`; the close code if refused.
    async fn resume(&self, token: protocol::ResumeToken) -> Result<(Connection, Welcome), u16>;
    /// GET `path` over a fresh TCP connection; returns (status, body).
    async fn get(&self, path: &str) -> (u16, String);
    /// The `/metrics` page, parsed.
    async fn metrics(&self) -> Exposition;
    /// The value of a sample, named as the page writes it: `name` or
    /// `name{label="value",...}` (labels in any order).
    async fn metric(&self, name: &str) -> f64;
    /// Waits until the sample `name` satisfies `pred`.
    async fn wait_metric(&self, name: &str, pred: impl Fn(f64) -> bool) -> f64;
}

impl Play for TestServer {
    async fn connect(&self) -> Connection {
        client::connect(&self.url()).await.expect("connect")
    }

    async fn join(&self) -> (Connection, Welcome) {
        self.join_with(RoomRequest::quick("arena")).await
    }

    async fn join_with(&self, request: RoomRequest) -> (Connection, Welcome) {
        let mut conn = self.connect().await;
        let welcome = conn.join(request).await.expect("welcome");
        (conn, welcome)
    }

    async fn resume(&self, token: protocol::ResumeToken) -> Result<(Connection, Welcome), u16> {
        let mut conn = self.connect().await;
        match conn.resume(token, 0).await {
            Ok(welcome) => Ok((conn, welcome)),
            Err(ClientError::Closed { code, .. }) => Err(code),
            Err(e) => panic!("resume failed without a close code: {e}"),
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
    }

    async fn metrics(&self) -> Exposition {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        Exposition::parse(&body)
    }

    async fn metric(&self, name: &str) -> f64 {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        Exposition::parse(&body)
            .value(name)
            .unwrap_or_else(|| panic!("metric {name} missing from:\n{body}"))
    }

    async fn wait_metric(&self, name: &str, pred: impl Fn(f64) -> bool) -> f64 {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(v) = self.metrics().await.value(name)
                && pred(v)
            {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "metric {name} never satisfied the condition"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A minimal HTTP/1.1 GET, so tests exercise the real HTTP path.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect for GET");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.expect("write GET");
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut raw))
        .await
        .expect("GET answered in time")
        .expect("read GET");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Runs `fut` with the test deadline.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// The player's own entity in a snapshot.
pub fn own(s: &Snapshot, player: u32) -> Option<Entity> {
    s.entities.iter().copied().find(|e| {
        e.id == player && matches!(e.kind, EntityKind::Player | EntityKind::DroppedPlayer)
    })
}

/// Whether a snapshot shows player `other`.
pub fn sees(s: &Snapshot, other: u32) -> bool {
    s.entities
        .iter()
        .any(|e| e.id == other && matches!(e.kind, EntityKind::Player | EntityKind::DroppedPlayer))
}

/// Reads snapshots until one satisfies `pred`.
pub async fn snapshot_where(
    conn: &mut Connection,
    what: &str,
    pred: impl Fn(&Snapshot) -> bool,
) -> Snapshot {
    within(what, async {
        loop {
            let s = next_snapshot(conn).await.expect("snapshot");
            if pred(&s) {
                return s;
            }
        }
    })
    .await
}

/// Sends an arena move as game message `seq`.
pub async fn input(conn: &mut Connection, seq: u32, dx: i8, dy: i8) {
    conn.send(&game_msg(seq, dx, dy)).await.expect("send input");
}

/// The bytes of a valid quick-join `Hello` for the arena.
pub fn hello_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    protocol::encode_client(
        &ClientMsg::Hello(protocol::Hello {
            version: protocol::PROTOCOL_VERSION,
            resume: None,
            room: RoomRequest::quick("arena"),
        }),
        &mut out,
    );
    out
}

/// An arena move as a client message.
pub fn game_msg(seq: u32, dx: i8, dy: i8) -> ClientMsg {
    ClientMsg::Game(GameMsg {
        seq,
        data: game_api::codec::to_vec(&Move { dx, dy }),
    })
}

/// Reads until the server closes; returns the close code. Messages before
/// the close are skipped.
pub async fn close_code(conn: &mut Connection) -> u16 {
    within("close frame", async {
        loop {
            match conn.recv().await {
                Ok(Event::Closed { code, .. }) => return code,
                Ok(Event::Msg(_)) => {}
                Err(ClientError::Closed { code, .. }) => return code,
                Err(e) => panic!("connection failed before a close frame: {e}"),
            }
        }
    })
    .await
}

/// A player that keeps sending inputs and checks each is acked; proves the
/// server kept serving others while a test misbehaved next to it.
pub async fn still_playing(conn: &mut Connection, seq: &mut u32) {
    *seq += 1;
    let want = *seq;
    input(conn, want, 10, 0).await;
    snapshot_where(conn, "bystander's input acked", |s| s.ack == want).await;
}

//! `floor`: the raw-socket I/O floor that `scripts/bench-capacity` measures
//! the game server and loadgen against. It has the traffic's shape — the
//! same clients, a frame of the same size to every client every tick,
//! small inputs at the same rate, pings at the same rate answered by a
//! pong of the same size, TCP_NODELAY on loopback — and nothing else: no
//! WebSocket, no envelope, no game, no rooms.
//!
//! - `floor serve` accepts TCP connections and, every tick, writes one
//!   frame of `--frame-bytes` to each connected client: one `write()` per
//!   client per tick, straight from the tick task, the cheapest honest
//!   fan-out (the real server cannot batch across clients either, since
//!   each client has its own socket). It reads the clients' inputs and
//!   discards them, and answers each ping with a pong of `--pong-bytes`,
//!   written at once by the connection's reader as the game server's
//!   connection task does. It prints its address as one JSON line like the
//!   server's (`"addr":"127.0.0.1:PORT"`), and its totals as another when
//!   it gets SIGTERM or SIGINT.
//! - `floor clients` opens `--clients` connections over `--ramp-up`, reads
//!   the frames and pongs, sends `--input-bytes` inputs at `--input-hz` and
//!   `--ping-bytes` pings at `--ping-hz`, and writes a JSON report of the
//!   steady window (after the ramp and `--settle`, before `--linger`):
//!   frames received, inputs sent, its own CPU, and the p99 of the frames'
//!   inter-arrival jitter (|gap − tick period|), the one latency a stream
//!   with no acknowledgements can honestly give.
//!
//! Messages have fixed sizes and are told apart by their first byte
//! ([`Records`]): frames and pongs from the server, inputs and pings from
//! the clients. A pong is written only between two frames: the reader
//! drops it (and counts it) while its tick shard has a frame written in
//! part. With more than one thread a pong can still slip inside such a
//! frame in the instant between the partial write and the shard marking
//! it; the clients then count an unknown message (`unknown_messages`), and
//! `scripts/bench-capacity` runs everything on one thread.
//!
//! What the floor is for: a lower bound on the CPU a server and a client
//! must spend per delivered snapshot on this machine, measured in the same
//! run as the real thing, so the real figures can be read as ratios to it.
//! What it is not for: a server or a protocol. It does not model
//! slow-reader policies beyond "skip the tick", or any game work; and its
//! messages carry no data.

use clap::{Args, Parser, Subcommand};
use hdrhistogram::Histogram;
use loadgen::report::Latency;
use loadgen::stats::new_histogram;
use serde::Serialize;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

/// Largest frame: far above any game state this floor stands in for (the
/// arena's are a few hundred bytes), and small enough that preallocating
/// it is nothing.
const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Largest input, ping or pong, for the same reason: they are a few bytes.
const MAX_INPUT_BYTES: usize = 4096;

/// First byte of a frame (see [`message`]).
const FRAME_BYTE: u8 = 0xA5;

/// First byte of a pong.
const PONG_BYTE: u8 = 0xAF;

/// First byte of an input.
const INPUT_BYTE: u8 = 0x5A;

/// First byte of a ping.
const PING_BYTE: u8 = 0x50;

/// Highest tick rate: past 1 kHz the tick timer's millisecond resolution
/// makes the rate a fiction.
const MAX_TICK_HZ: f64 = 1000.0;

/// One read on either side: a page drains a backlog of hundreds of small
/// inputs, or a dozen frames, in one system call, and thousands of
/// connections' buffers still fit in a few megabytes.
const READ_BUF: usize = 4096;

/// Pending connections between the accept loop and a tick shard; the
/// accept loop waits when a shard falls this far behind, which only a
/// connection storm could cause.
const ACCEPT_QUEUE: usize = 1024;

/// Listen backlog: the ramp opens a few hundred connections a second.
const LISTEN_BACKLOG: u32 = 4096;

/// Shards of the clients' jitter histogram, so that several runtime threads
/// rarely contend; each is about 200 KB.
const JITTER_SHARDS: usize = 8;

/// A shard adds its tick lateness into the shared histogram once per this
/// many ticks (about 2 s at 30 Hz), so the closing line is nearly current
/// without a lock on every tick.
const LATENESS_PUBLISH_TICKS: u64 = 64;

/// How long the clients get to close their sockets at the end.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Deadline of one connection attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn duration(s: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(s)
}

/// The raw-socket I/O floor: a server that writes one fixed-size frame per
/// client per tick, and clients that read them and send small inputs.
#[derive(Parser, Debug)]
#[command(name = "floor", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Accept clients and write each one frame per tick until SIGTERM.
    Serve(ServeArgs),
    /// Open clients against `floor serve`, measure a steady window, report.
    Clients(ClientArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on (port 0: any free port; the one bound is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Bytes of each frame (match the real server's state plus its
    /// WebSocket header to get the same bytes per delivery).
    #[arg(long, default_value_t = 230)]
    frame_bytes: usize,
    /// Frames per second to every client.
    #[arg(long, default_value_t = 30.0)]
    tick_hz: f64,
    /// Runtime worker threads, and tick shards (each shard writes to its
    /// share of the clients); by default one per core.
    #[arg(long)]
    threads: Option<usize>,
    /// Kernel send buffer of each connection in bytes (0: the system's
    /// autotuning). The default is the game server's `--send-buffer`, so
    /// both pay for the same socket memory.
    #[arg(long, default_value_t = 65536)]
    send_buffer: u32,
    /// Bytes of each input (must equal the clients' --input-bytes).
    #[arg(long, default_value_t = 7)]
    input_bytes: usize,
    /// Bytes of each ping (must equal the clients' --ping-bytes).
    #[arg(long, default_value_t = 12)]
    ping_bytes: usize,
    /// Bytes of the pong that answers each ping (the clients'
    /// --pong-bytes). The defaults are the game server's: a 12-byte
    /// WebSocket frame for loadgen's `Ping`, 17 bytes for the `Pong`.
    #[arg(long, default_value_t = 17)]
    pong_bytes: usize,
}

#[derive(Args, Debug)]
struct ClientArgs {
    /// Address of `floor serve`.
    #[arg(long)]
    connect: SocketAddr,
    /// Connections.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Connections open evenly spread over this time.
    #[arg(long, default_value = "10s", value_parser = duration)]
    ramp_up: Duration,
    /// Wait after the ramp before the steady window opens, so the last
    /// connections' start-up is out of it.
    #[arg(long, default_value = "0s", value_parser = duration)]
    settle: Duration,
    /// The steady window: what the report measures.
    #[arg(long, default_value = "20s", value_parser = duration)]
    duration: Duration,
    /// Keep the clients running this long after the window closes, out of
    /// the report, before they stop: a harness that samples the process
    /// at the window's end (as `scripts/bench-capacity` reads its CPU
    /// from /proc) finds it still alive and still under the same load.
    #[arg(long, default_value = "0s", value_parser = duration)]
    linger: Duration,
    /// Inputs per second per client.
    #[arg(long, default_value_t = 10.0)]
    input_hz: f64,
    /// Bytes of each input.
    #[arg(long, default_value_t = 7)]
    input_bytes: usize,
    /// Pings per second per client (0: none), as loadgen's --ping-hz.
    #[arg(long, default_value_t = 1.0)]
    ping_hz: f64,
    /// Bytes of each ping (must equal the server's --ping-bytes).
    #[arg(long, default_value_t = 12)]
    ping_bytes: usize,
    /// Bytes of each pong (must equal the server's --pong-bytes).
    #[arg(long, default_value_t = 17)]
    pong_bytes: usize,
    /// Bytes of each frame the server sends (must equal its --frame-bytes).
    #[arg(long, default_value_t = 230)]
    frame_bytes: usize,
    /// The server's frames per second (for the jitter's expected gap).
    #[arg(long, default_value_t = 30.0)]
    tick_hz: f64,
    /// Runtime worker threads; by default one per core.
    #[arg(long)]
    threads: Option<usize>,
    /// Write the JSON report here (it is also printed).
    #[arg(long)]
    report: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Clients(args) => clients(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    // The same runtime flavour as the game server's, so the floor pays the
    // same scheduler and I/O driver costs.
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = threads {
        runtime.worker_threads(n.max(1));
    }
    Ok(runtime.build()?)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn check_rates(tick_hz: f64, frame_bytes: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        tick_hz > 0.0 && tick_hz <= MAX_TICK_HZ,
        "--tick-hz must be in (0, {MAX_TICK_HZ}]"
    );
    anyhow::ensure!(
        (1..=MAX_FRAME_BYTES).contains(&frame_bytes),
        "--frame-bytes must be in [1, {MAX_FRAME_BYTES}]"
    );
    Ok(())
}

/// A message of `len` bytes of the kind whose first byte is `kind`: the
/// kind's byte, then zeros, so that a reader that lost the messages'
/// boundaries finds a zero where it expects a kind (see [`Records`]).
fn message(kind: u8, len: usize) -> Vec<u8> {
    let mut m = vec![0; len];
    m[0] = kind;
    m
}

/// Checks the size of a small message (`--input-bytes` and the like).
fn check_message_bytes(flag: &str, bytes: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=MAX_INPUT_BYTES).contains(&bytes),
        "{flag} must be in [1, {MAX_INPUT_BYTES}]"
    );
    Ok(())
}

/// Splits a byte stream of fixed-size messages of two kinds, told apart
/// by their first byte, and counts the whole ones: frames and pongs on the
/// clients' side, inputs and pings on the server's. Messages may arrive
/// split over reads in any way.
struct Records {
    /// First byte and size of the usual kind (frames, inputs).
    usual: (u8, usize),
    /// First byte and size of the rare kind (pongs, pings).
    rare: (u8, usize),
    /// Bytes still to come of the message under way (0: at a boundary).
    left: usize,
    /// Kind of the message under way.
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Usual,
    Rare,
    /// Began with neither kind's byte: taken to be of the usual kind's
    /// size, so that the count can go on, and counted apart.
    Unknown,
}

/// What one [`Records::feed`] completed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Split {
    /// Messages of the usual kind.
    usual: u64,
    /// Messages of the rare kind.
    rare: u64,
    /// Messages that began with neither kind's byte.
    unknown: u64,
}

impl Records {
    fn new(usual: (u8, usize), rare: (u8, usize)) -> Self {
        Self {
            usual,
            rare,
            left: 0,
            kind: Kind::Usual,
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) -> Split {
        let mut split = Split::default();
        while let Some(&first) = bytes.first() {
            if self.left == 0 {
                (self.kind, self.left) = if first == self.usual.0 {
                    (Kind::Usual, self.usual.1)
                } else if first == self.rare.0 {
                    (Kind::Rare, self.rare.1)
                } else {
                    (Kind::Unknown, self.usual.1)
                };
            }
            let take = self.left.min(bytes.len());
            bytes = &bytes[take..];
            self.left -= take;
            if self.left == 0 {
                match self.kind {
                    Kind::Usual => split.usual += 1,
                    Kind::Rare => split.rare += 1,
                    Kind::Unknown => split.unknown += 1,
                }
            }
        }
        split
    }
}

/// Prints one JSON line on stdout at once (the bench reads it while the
/// process runs, so it must not wait in a buffer).
fn print_line(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

// ---------------------------------------------------------------- serve

/// What the server counts, for its closing line.
#[derive(Default)]
struct ServeCounts {
    /// Frames written whole (a frame finished after a partial write
    /// counts when it is finished).
    frames: AtomicU64,
    /// Client-ticks without a new frame: the socket was full, or the
    /// previous frame was still being finished.
    skipped: AtomicU64,
    /// Ticks run, summed over shards.
    ticks: AtomicU64,
    /// Ticks that started more than a tick period late, summed over shards.
    ticks_late: AtomicU64,
    /// Input bytes read.
    bytes_in: AtomicU64,
    /// Pings read, each answered by a pong or dropped.
    pings: AtomicU64,
    /// Pongs written.
    pongs: AtomicU64,
    /// Pongs not written: the socket was full, or a frame was under way.
    pongs_dropped: AtomicU64,
    /// Pongs the socket took only part of (it had less room than a pong).
    pongs_partial: AtomicU64,
    /// Client messages that began with neither an input's nor a ping's
    /// byte (the sizes given to `serve` and `clients` differ).
    unknown_in: AtomicU64,
    /// Connections accepted.
    accepted: AtomicU64,
    /// Connections ended (end of stream, or an error on either side).
    closed: AtomicU64,
}

/// One client, as its tick shard sees it.
struct Client {
    wr: OwnedWriteHalf,
    /// Bytes of the current frame already written; 0 when none is under way.
    offset: usize,
    /// Set while `offset` is not 0, for the connection's reader, which
    /// writes no pong then. Touched only when a write is partial.
    mid_frame: Arc<AtomicBool>,
}

/// What a connection's reader needs besides its socket.
struct Reader {
    counts: Arc<ServeCounts>,
    /// Inputs and pings.
    records: Records,
    /// The pong to answer each ping with.
    pong: Arc<[u8]>,
    /// The tick shard's flag: a frame is under way.
    mid_frame: Arc<AtomicBool>,
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    check_rates(args.tick_hz, args.frame_bytes)?;
    check_message_bytes("--input-bytes", args.input_bytes)?;
    check_message_bytes("--ping-bytes", args.ping_bytes)?;
    check_message_bytes("--pong-bytes", args.pong_bytes)?;
    loadgen::sys::raise_nofile_limit()?;
    let rt = runtime(args.threads)?;
    let shards = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    rt.block_on(serve_async(args, shards.max(1)))
}

async fn serve_async(args: ServeArgs, shards: usize) -> anyhow::Result<()> {
    let socket = if args.listen.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    // Accepted sockets inherit the listener's buffer size on Linux, as the
    // game server's `--send-buffer` gives each of its connections.
    if args.send_buffer > 0 {
        socket.set_send_buffer_size(args.send_buffer)?;
    }
    socket.bind(args.listen)?;
    let listener = socket.listen(LISTEN_BACKLOG)?;
    let addr = listener.local_addr()?;
    print_line(&serde_json::json!({
        "message": "listening",
        "addr": addr.to_string(),
        "frame_bytes": args.frame_bytes,
        "tick_hz": args.tick_hz,
        "shards": shards,
    }));

    let counts = Arc::new(ServeCounts::default());
    let frame: Arc<[u8]> = message(FRAME_BYTE, args.frame_bytes).into();
    let pong: Arc<[u8]> = message(PONG_BYTE, args.pong_bytes).into();
    let period = Duration::from_secs_f64(1.0 / args.tick_hz);
    let lateness = Arc::new(Mutex::new(new_histogram()));
    let mut to_shard = Vec::with_capacity(shards);
    for _ in 0..shards {
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        to_shard.push(tx);
        tokio::spawn(tick_shard(
            rx,
            frame.clone(),
            period,
            counts.clone(),
            lateness.clone(),
        ));
    }

    let accept = async {
        let mut next = 0usize;
        loop {
            let (tcp, _) = match listener.accept().await {
                Ok(c) => c,
                // Out of file descriptors or a connection reset before it
                // was accepted: the next one may work.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            if tcp.set_nodelay(true).is_err() {
                continue;
            }
            counts.accepted.fetch_add(1, Relaxed);
            let (rd, wr) = tcp.into_split();
            let mid_frame = Arc::new(AtomicBool::new(false));
            let reader = Reader {
                counts: counts.clone(),
                records: Records::new((INPUT_BYTE, args.input_bytes), (PING_BYTE, args.ping_bytes)),
                pong: pong.clone(),
                mid_frame: mid_frame.clone(),
            };
            tokio::spawn(read_inputs(rd, reader));
            let client = Client {
                wr,
                offset: 0,
                mid_frame,
            };
            if to_shard[next % shards].send(client).await.is_err() {
                return;
            }
            next += 1;
        }
    };
    tokio::select! {
        () = accept => {}
        r = stop_signal() => r?,
    }
    let c = &counts;
    let lateness = lateness.lock().expect("no panic while locked");
    print_line(&serde_json::json!({
        "message": "stopped",
        "frames": c.frames.load(Relaxed),
        "skipped": c.skipped.load(Relaxed),
        "ticks": c.ticks.load(Relaxed),
        "ticks_late": c.ticks_late.load(Relaxed),
        "tick_lateness_p99_us": lateness.value_at_quantile(0.99),
        "bytes_in": c.bytes_in.load(Relaxed),
        "pings": c.pings.load(Relaxed),
        "pongs": c.pongs.load(Relaxed),
        "pongs_dropped": c.pongs_dropped.load(Relaxed),
        "pongs_partial": c.pongs_partial.load(Relaxed),
        "unknown_in": c.unknown_in.load(Relaxed),
        "accepted": c.accepted.load(Relaxed),
        "closed": c.closed.load(Relaxed),
        "cpu_s": loadgen::sys::own_usage().0,
    }));
    Ok(())
}

/// Completes at SIGTERM or SIGINT.
async fn stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Reads one client's inputs (discarded) and pings (answered at once)
/// until it closes.
async fn read_inputs(mut rd: tokio::net::tcp::OwnedReadHalf, mut reader: Reader) {
    let counts = &*reader.counts;
    let mut buf = [0u8; READ_BUF];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        counts.bytes_in.fetch_add(n as u64, Relaxed);
        let split = reader.records.feed(&buf[..n]);
        if split.unknown > 0 {
            counts.unknown_in.fetch_add(split.unknown, Relaxed);
        }
        for _ in 0..split.rare {
            counts.pings.fetch_add(1, Relaxed);
            if reader.mid_frame.load(Relaxed) {
                counts.pongs_dropped.fetch_add(1, Relaxed);
                continue;
            }
            match rd.as_ref().try_write(&reader.pong) {
                Ok(n) if n == reader.pong.len() => counts.pongs.fetch_add(1, Relaxed),
                // Only a socket with less room than a pong left takes part
                // of one; the stream is then broken, and the client counts
                // unknown messages from here on.
                Ok(n) if n > 0 => counts.pongs_partial.fetch_add(1, Relaxed),
                _ => counts.pongs_dropped.fetch_add(1, Relaxed),
            };
        }
    }
    counts.closed.fetch_add(1, Relaxed);
}

/// Writes a frame to each of its clients every tick, one `write()` each.
async fn tick_shard(
    mut new_clients: mpsc::Receiver<Client>,
    frame: Arc<[u8]>,
    period: Duration,
    counts: Arc<ServeCounts>,
    lateness: Arc<Mutex<Histogram<u64>>>,
) {
    let mut clients: Vec<Client> = Vec::new();
    let mut late = new_histogram();
    let mut ticks = 0u64;
    let mut ticker = tokio::time::interval(period);
    // A tick that cannot keep up skips the ticks it missed, as a room that
    // falls behind sends fewer states rather than bursts of stale ones.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        let due = ticker.tick().await;
        let behind = due.elapsed();
        let _ = late.record(micros(behind).max(1));
        counts.ticks.fetch_add(1, Relaxed);
        ticks += 1;
        if behind > period {
            counts.ticks_late.fetch_add(1, Relaxed);
        }
        while let Ok(c) = new_clients.try_recv() {
            clients.push(c);
        }
        let (mut written, mut skipped) = (0u64, 0u64);
        clients.retain_mut(|c| {
            // A frame left half-written by a full socket is finished first
            // (the stream must stay framed); this tick's frame is then
            // skipped, as a latest-wins mailbox would replace it.
            let resuming = c.offset > 0;
            match c.wr.try_write(&frame[c.offset..]) {
                Ok(n) => {
                    c.offset += n;
                    if c.offset == frame.len() {
                        c.offset = 0;
                        written += 1;
                    }
                    if resuming != (c.offset > 0) {
                        c.mid_frame.store(c.offset > 0, Relaxed);
                    }
                    if resuming || c.offset > 0 {
                        skipped += 1;
                    }
                    true
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    skipped += 1;
                    true
                }
                // The client is gone; its reader counts the close.
                Err(_) => false,
            }
        });
        counts.frames.fetch_add(written, Relaxed);
        counts.skipped.fetch_add(skipped, Relaxed);
        if ticks.is_multiple_of(LATENESS_PUBLISH_TICKS) {
            let mut shared = lateness.lock().expect("no panic while locked");
            let _ = shared.add(&late);
            late.clear();
        }
    }
}

// -------------------------------------------------------------- clients

/// Counts shared by all client connections.
#[derive(Default)]
struct ClientCounts {
    /// Whole frames received.
    frames: AtomicU64,
    /// Bytes received.
    bytes_in: AtomicU64,
    /// Inputs written.
    inputs: AtomicU64,
    /// Pings written.
    pings: AtomicU64,
    /// Pongs received.
    pongs: AtomicU64,
    /// Messages that began with neither a frame's nor a pong's byte.
    unknown: AtomicU64,
    /// Connections open now.
    connected: AtomicUsize,
    /// Connection attempts that failed.
    connect_errors: AtomicU64,
    /// Connections that ended before the run did.
    disconnects: AtomicU64,
}

impl ClientCounts {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            frames: self.frames.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            inputs: self.inputs.load(Relaxed),
            connected: self.connected.load(Relaxed),
            cpu_s: loadgen::sys::own_usage().0,
        }
    }
}

/// The counters at one edge of the steady window.
#[derive(Clone, Copy)]
struct Snapshot {
    at: Instant,
    frames: u64,
    bytes_in: u64,
    inputs: u64,
    connected: usize,
    cpu_s: f64,
}

/// State shared by the client tasks.
struct ClientCtx {
    args: ClientArgs,
    counts: ClientCounts,
    /// True during the steady window: only then is jitter recorded.
    in_window: AtomicBool,
    /// |inter-arrival − tick period| of frames, µs, during the window.
    jitter: Vec<Mutex<Histogram<u64>>>,
    stop: watch::Receiver<bool>,
}

/// The steady window's figures, as the JSON report carries them.
#[derive(Serialize)]
struct WindowReport {
    /// Seconds the window lasted.
    seconds: f64,
    /// Whole frames received.
    frames: u64,
    /// Frames per second.
    frames_per_s: f64,
    /// Bytes received.
    bytes_in: u64,
    /// Inputs sent.
    inputs_sent: u64,
    /// Inputs per second.
    inputs_per_s: f64,
    /// Own CPU time, user + system, seconds.
    cpu_s: f64,
    /// Own CPU as a share of one core.
    cpu_cores: f64,
    /// Own CPU per frame received, microseconds.
    cpu_us_per_frame: Option<f64>,
    /// Connections open when the window opened.
    connected_at_start: usize,
    /// Connections open when it closed.
    connected_at_end: usize,
}

/// The report `floor clients` writes.
#[derive(Serialize)]
struct ClientReport {
    /// What was asked for.
    clients: usize,
    frame_bytes: usize,
    input_bytes: usize,
    input_hz: f64,
    ping_hz: f64,
    ping_bytes: usize,
    pong_bytes: usize,
    tick_hz: f64,
    ramp_up_s: f64,
    settle_s: f64,
    linger_s: f64,
    threads: Option<usize>,
    /// The steady window.
    window: WindowReport,
    /// Frame jitter during the window, microseconds.
    jitter_us: Latency,
    /// Failed connection attempts over the run.
    connect_errors: u64,
    /// Connections that ended before the run did.
    disconnects: u64,
    /// Pings sent over the run.
    pings_sent: u64,
    /// Pongs received over the run.
    pongs_received: u64,
    /// Messages from the server that were neither a frame nor a pong, over
    /// the run (0 unless the sizes given to `serve` and `clients` differ,
    /// or a pong was written into a full socket; see the module docs).
    unknown_messages: u64,
    /// Peak resident memory, bytes.
    peak_rss_bytes: u64,
}

fn clients(args: ClientArgs) -> anyhow::Result<()> {
    check_rates(args.tick_hz, args.frame_bytes)?;
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(
        args.input_hz > 0.0 && args.input_hz <= MAX_TICK_HZ,
        "--input-hz must be in (0, {MAX_TICK_HZ}]"
    );
    anyhow::ensure!(
        args.ping_hz >= 0.0 && args.ping_hz <= MAX_TICK_HZ,
        "--ping-hz must be in [0, {MAX_TICK_HZ}]"
    );
    check_message_bytes("--input-bytes", args.input_bytes)?;
    check_message_bytes("--ping-bytes", args.ping_bytes)?;
    check_message_bytes("--pong-bytes", args.pong_bytes)?;
    loadgen::sys::check_fd_budget(args.clients).map_err(|e| anyhow::anyhow!(e))?;
    runtime(args.threads)?.block_on(clients_async(args))
}

async fn clients_async(args: ClientArgs) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let ctx = Arc::new(ClientCtx {
        counts: ClientCounts::default(),
        in_window: AtomicBool::new(false),
        jitter: (0..JITTER_SHARDS)
            .map(|_| Mutex::new(new_histogram()))
            .collect(),
        stop: stop_rx,
        args,
    });
    let args = &ctx.args;
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..args.clients {
        let ctx = ctx.clone();
        let at = start + args.ramp_up.mul_f64(id as f64 / args.clients as f64);
        tasks.spawn(async move {
            let mut stop = ctx.stop.clone();
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = stopped(&mut stop) => return,
            }
            client(id, &ctx).await;
        });
    }

    tokio::time::sleep_until(start + args.ramp_up + args.settle).await;
    ctx.in_window.store(true, Relaxed);
    let first = ctx.counts.snapshot();
    tokio::time::sleep_until((first.at + args.duration).into()).await;
    ctx.in_window.store(false, Relaxed);
    let last = ctx.counts.snapshot();
    tokio::time::sleep(args.linger).await;
    stop_tx.send_replace(true);
    let leave = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(STOP_GRACE, leave).await.is_err() {
        tasks.abort_all();
    }

    let mut jitter = new_histogram();
    for shard in &ctx.jitter {
        let _ = jitter.add(&*shard.lock().expect("no panic while locked"));
    }
    let secs = last.at.duration_since(first.at).as_secs_f64().max(1e-9);
    let frames = last.frames - first.frames;
    let cpu_s = last.cpu_s - first.cpu_s;
    let inputs = last.inputs - first.inputs;
    let report = ClientReport {
        clients: args.clients,
        frame_bytes: args.frame_bytes,
        input_bytes: args.input_bytes,
        input_hz: args.input_hz,
        ping_hz: args.ping_hz,
        ping_bytes: args.ping_bytes,
        pong_bytes: args.pong_bytes,
        tick_hz: args.tick_hz,
        ramp_up_s: args.ramp_up.as_secs_f64(),
        settle_s: args.settle.as_secs_f64(),
        linger_s: args.linger.as_secs_f64(),
        threads: args.threads,
        window: WindowReport {
            seconds: secs,
            frames,
            frames_per_s: frames as f64 / secs,
            bytes_in: last.bytes_in - first.bytes_in,
            inputs_sent: inputs,
            inputs_per_s: inputs as f64 / secs,
            cpu_s,
            cpu_cores: cpu_s / secs,
            cpu_us_per_frame: (frames > 0).then(|| cpu_s * 1e6 / frames as f64),
            connected_at_start: first.connected,
            connected_at_end: last.connected,
        },
        jitter_us: Latency::from_histogram(&jitter),
        connect_errors: ctx.counts.connect_errors.load(Relaxed),
        disconnects: ctx.counts.disconnects.load(Relaxed),
        pings_sent: ctx.counts.pings.load(Relaxed),
        pongs_received: ctx.counts.pongs.load(Relaxed),
        unknown_messages: ctx.counts.unknown.load(Relaxed),
        peak_rss_bytes: loadgen::sys::own_usage().1,
    };
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(path) = &args.report {
        std::fs::write(path, text + "\n")
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Completes once the run is stopping. Unlike `wait_for` itself, it holds
/// no lock guard across the caller's other `.await`s, so the client's
/// future stays `Send`.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One client connection: reads frames, sends inputs, until the run stops.
async fn client(id: usize, ctx: &ClientCtx) {
    let args = &ctx.args;
    let counts = &ctx.counts;
    let mut tcp =
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(args.connect)).await {
            Ok(Ok(tcp)) if tcp.set_nodelay(true).is_ok() => tcp,
            _ => {
                counts.connect_errors.fetch_add(1, Relaxed);
                return;
            }
        };
    counts.connected.fetch_add(1, Relaxed);
    let mut stop = ctx.stop.clone();
    let input = message(INPUT_BYTE, args.input_bytes);
    let ping = message(PING_BYTE, args.ping_bytes);
    let input_period = Duration::from_secs_f64(1.0 / args.input_hz);
    // Spread the clients' input phases evenly (golden-ratio steps), so they
    // do not send in lock-step, without a random generator.
    let phase = (id as f64 * 0.618_033_988_75).fract();
    let mut inputs = tokio::time::interval_at(
        tokio::time::Instant::now() + input_period.mul_f64(phase),
        input_period,
    );
    // With no pings the timer's branch is never polled (it only needs a
    // valid period).
    let pinging = args.ping_hz > 0.0;
    let ping_period = Duration::from_secs_f64(1.0 / if pinging { args.ping_hz } else { 1.0 });
    let mut pings = tokio::time::interval_at(
        tokio::time::Instant::now() + ping_period.mul_f64(phase),
        ping_period,
    );
    let mut records = Records::new((FRAME_BYTE, args.frame_bytes), (PONG_BYTE, args.pong_bytes));
    let tick_period = Duration::from_secs_f64(1.0 / args.tick_hz);
    let shard = &ctx.jitter[id % JITTER_SHARDS];
    let mut buf = [0u8; READ_BUF];
    let mut last_frame: Option<Instant> = None;
    // One long-lived stop future, polled again after each wake-up rather
    // than rebuilt 40 times a second per client.
    let stopping = stopped(&mut stop);
    tokio::pin!(stopping);
    let ended_early = loop {
        tokio::select! {
            () = &mut stopping => break false,
            _ = inputs.tick() => {
                if tcp.write_all(&input).await.is_err() {
                    break true;
                }
                counts.inputs.fetch_add(1, Relaxed);
            }
            _ = pings.tick(), if pinging => {
                if tcp.write_all(&ping).await.is_err() {
                    break true;
                }
                counts.pings.fetch_add(1, Relaxed);
            }
            r = tcp.read(&mut buf) => {
                let n = match r {
                    Ok(0) | Err(_) => break true,
                    Ok(n) => n,
                };
                counts.bytes_in.fetch_add(n as u64, Relaxed);
                let split = records.feed(&buf[..n]);
                if split.rare > 0 {
                    counts.pongs.fetch_add(split.rare, Relaxed);
                }
                if split.unknown > 0 {
                    counts.unknown.fetch_add(split.unknown, Relaxed);
                }
                let done = split.usual;
                if done == 0 {
                    continue;
                }
                counts.frames.fetch_add(done, Relaxed);
                let now = Instant::now();
                if ctx.in_window.load(Relaxed) {
                    let mut h = shard.lock().expect("no panic while locked");
                    if let Some(prev) = last_frame {
                        let gap = now.duration_since(prev);
                        let _ = h.record(micros(gap.abs_diff(tick_period)).max(1));
                    }
                    // Frames that arrived together in one read came with
                    // no gap at all: a whole period off schedule each.
                    for _ in 1..done {
                        let _ = h.record(micros(tick_period));
                    }
                }
                last_frame = Some(now);
            }
        }
    };
    counts.connected.fetch_sub(1, Relaxed);
    if ended_early {
        counts.disconnects.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(usual: u64, rare: u64, unknown: u64) -> Split {
        Split {
            usual,
            rare,
            unknown,
        }
    }

    #[test]
    fn messages_split_over_reads_in_any_way_are_counted_whole() {
        // Frames of 5 bytes, pongs of 3.
        let frame = message(FRAME_BYTE, 5);
        let stream = [&frame[..], &message(PONG_BYTE, 3), &frame, &frame].concat();
        for cut in 0..=stream.len() {
            let mut r = Records::new((FRAME_BYTE, 5), (PONG_BYTE, 3));
            let a = r.feed(&stream[..cut]);
            let b = r.feed(&stream[cut..]);
            assert_eq!(
                (a.usual + b.usual, a.rare + b.rare, a.unknown + b.unknown),
                (3, 1, 0),
                "cut at {cut}"
            );
        }
        let mut r = Records::new((FRAME_BYTE, 5), (PONG_BYTE, 3));
        for (i, byte) in stream.iter().enumerate() {
            let s = r.feed(std::slice::from_ref(byte));
            let want = match i {
                4 | 12 | 17 => split(1, 0, 0),
                7 => split(0, 1, 0),
                _ => split(0, 0, 0),
            };
            assert_eq!(s, want, "byte {i}");
        }
    }

    #[test]
    fn a_message_of_neither_kind_is_counted_apart_and_the_count_goes_on() {
        let mut r = Records::new((INPUT_BYTE, 4), (PING_BYTE, 2));
        let stream = [
            [0u8; 4].as_slice(),
            &message(INPUT_BYTE, 4),
            &message(PING_BYTE, 2),
        ]
        .concat();
        assert_eq!(r.feed(&stream), split(1, 1, 1));
    }
}

//! The benchmark-regression gate that CI can trust on a noisy shared
//! machine: it gates on counts that do not depend on the machine's load.
//!
//! - **Instructions** per arena tick at 1,000 players (what the room task
//!   does each tick: take the queued moves, step the game, build every
//!   player's `State`), per game message received (the server's side:
//!   the envelope, then the arena's move, as a connection decodes them)
//!   and per 20-entity arena state received (a client's side: the envelope,
//!   then the state), counted by `valgrind --tool=callgrind` over just the
//!   measured function (`--toggle-collect`): the same binary and inputs give
//!   the same count whatever else the machine is doing.
//! - **Allocations** per tick, counted by a wrapping global allocator.
//! - **Bytes** per state and per entity on the wire.
//!
//! `bench-gate` runs the workloads under callgrind (re-running itself as
//! the child), compares with `benches/baseline.json` and exits 1 if any
//! count grew past its tolerance; `--update` rewrites the baseline on
//! purpose. `--slowdown encode` makes the workload build every state
//! twice, to show that the gate trips. Instruction counts change with the
//! compiler: after a toolchain upgrade, re-run with `--update`.

use benches::{arena_room, encoded_moves, sample_state};
use game_api::DynGame;
use game_api::room_type::{Inbox, Sender};
use protocol::{ClientMsg, GameMsg, ServerMsg, State};
use serde_json::{Value, json};
use server::room::fanout::StateBuilder;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counts every allocation made by this process.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers every call to the system allocator unchanged; counting is
// a relaxed atomic increment with no other effect.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Players in the tick workload by default: ten full default rooms' worth,
/// at the density of a default room. `--players N` changes it (the tests
/// use a small world to keep callgrind quick in debug builds).
const PLAYERS: u32 = 1_000;
/// Ticks run before measuring, so buffers reach their steady size.
const WARM_UP_TICKS: u32 = 5;
/// Ticks measured.
const TICKS: u32 = 20;
/// Messages decoded in the codec workload, of each kind.
const DECODES: u32 = 1_000;

/// How much each count may grow before the gate fails. Instructions are
/// exact for a given binary, so 2 % is room for harmless code motion, not
/// for noise; allocations and bytes are exact.
const TOLERANCES: [(&str, f64); 6] = [
    ("tick_instructions", 0.02),
    ("message_decode_instructions", 0.02),
    ("state20_decode_instructions", 0.02),
    ("tick_allocations", 0.0),
    ("state_bytes_per_player", 0.0),
    ("entity_bytes", 0.0),
];

/// Queues every player's move of a round in the room's inbox, as the
/// connections do (decoding each); not measured: connections run it, on
/// their own threads, before the tick. The moves are encoded beforehand,
/// all rounds at once (as clients would have), so that the harness frees
/// nothing between ticks that the tick's own allocation would then have
/// to consolidate.
fn queue_moves(inbox: &dyn Inbox, round: u32, moves: &[(u32, Vec<u8>)]) {
    for (player, data) in moves {
        let from = Sender {
            player: *player,
            conn: u64::from(*player),
        };
        inbox
            .push(from, round, data)
            .expect("the inbox holds a tick's moves");
    }
}

/// The measured part of the tick workload, one tick; callgrind counts only
/// inside it.
#[inline(never)]
fn measured_tick(
    game: &mut dyn DynGame,
    builder: &mut StateBuilder,
    tick: u32,
    players: u32,
    slow_encode: bool,
) -> u64 {
    let mut fx = game_api::Effects::new(tick, 30);
    game.take_messages(&mut |_, _, _| true);
    game.step(&mut fx);
    let viewers = (1..=players).map(|p| (p, tick));
    let bytes = builder.build(game, tick, viewers).bytes.len() as u64;
    if slow_encode {
        let viewers = (1..=players).map(|p| (p, tick));
        black_box(builder.build(game, tick, viewers).bytes.len());
    }
    bytes
}

/// The measured part of the message-decoding workload: what a connection
/// does with each game message (the envelope, then the game's move into the
/// room's inbox).
#[inline(never)]
fn measured_message_decodes(message: &[u8], inbox: &dyn Inbox) -> usize {
    (0..DECODES)
        .filter(|&i| match protocol::decode_client(black_box(message)) {
            Ok(ClientMsg::Game(GameMsg { seq, data })) => {
                let from = Sender { player: 1, conn: 1 };
                inbox.push(from, seq.wrapping_add(i), &data).is_ok()
            }
            _ => false,
        })
        .count()
}

/// The measured part of the state-decoding workload (a client's side).
#[inline(never)]
fn measured_state_decodes(state: &[u8]) -> usize {
    (0..DECODES)
        .filter(|_| match protocol::decode_server(black_box(state)) {
            Ok(ServerMsg::State(s)) => {
                game_api::codec::decode::<arena::msg::ArenaState>(&s.data).is_ok()
            }
            _ => false,
        })
        .count()
}

/// Runs the workloads once and prints the machine-independent counts
/// (everything but instructions) as JSON.
fn workload(players: u32, slow_encode: bool) -> Value {
    let mut game = arena_room(players);
    let inbox = game.inbox();
    let mut builder = StateBuilder::default();
    let rounds: Vec<_> = (0..WARM_UP_TICKS + TICKS)
        .map(|round| encoded_moves(players, round))
        .collect();
    for round in 0..WARM_UP_TICKS {
        queue_moves(&*inbox, round, &rounds[round as usize]);
        measured_tick(&mut *game, &mut builder, round, players, slow_encode);
    }
    let mut bytes = 0;
    let mut allocations = 0;
    for round in WARM_UP_TICKS..WARM_UP_TICKS + TICKS {
        queue_moves(&*inbox, round, &rounds[round as usize]);
        let before = ALLOCATIONS.load(Relaxed);
        bytes += measured_tick(&mut *game, &mut builder, round, players, slow_encode);
        allocations += ALLOCATIONS.load(Relaxed) - before;
    }

    // A move as a connection receives it, into a room with space for every
    // decode (the workload never ticks this room).
    let mut message = Vec::new();
    protocol::encode_client(
        &ClientMsg::Game(GameMsg {
            seq: 70_000,
            data: game_api::codec::to_vec(&arena::msg::Move { dx: -90, dy: 90 }),
        }),
        &mut message,
    );
    let decode_room = arena::room_type(benches::config_for(1))
        .create(&game_api::RoomOptions::default(), 1, 2 * DECODES as usize)
        .expect("a room");
    // A 20-entity state of a room some minutes old, as a client receives it.
    let sample = sample_state(20);
    let mut state = Vec::new();
    protocol::encode_server(
        &ServerMsg::State(State {
            tick: 54_000,
            ack: 36_000,
            data: game_api::codec::to_vec(&sample),
        }),
        &mut state,
    );
    assert_eq!(
        measured_message_decodes(&message, &*decode_room.inbox()),
        DECODES as usize
    );
    assert_eq!(measured_state_decodes(&state), DECODES as usize);
    // The state's data: 2 bytes of head and entity counts, then entities.
    let entity_bytes = (game_api::codec::to_vec(&sample).len() - 2) as f64 / 20.0;
    json!({
        "players": players,
        "tick_allocations": allocations as f64 / f64::from(TICKS),
        "state_bytes_per_player": bytes as f64 / f64::from(TICKS * players),
        "entity_bytes": entity_bytes,
        "rustc": rustc_version(),
    })
}

/// The compiler that built this binary, recorded with the baseline so that
/// a moved instruction count after a toolchain change explains itself.
fn rustc_version() -> String {
    Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The valgrind that counted, for the same reason.
fn valgrind_version() -> String {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Instructions inside `function`, from a callgrind run of this binary.
fn instructions(
    exe: &Path,
    function: &str,
    players: u32,
    slowdown: bool,
    out_dir: &Path,
) -> anyhow::Result<(f64, Value)> {
    let out = out_dir.join(format!("callgrind.{function}.out"));
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(format!("--toggle-collect=*{function}*"))
        .arg(exe)
        .arg("workload")
        .arg("--players")
        .arg(players.to_string());
    if slowdown {
        cmd.arg("--slowdown").arg("encode");
    }
    let output = cmd.output().map_err(|e| {
        anyhow::anyhow!("running valgrind (is it installed? apt-get install valgrind): {e}")
    })?;
    anyhow::ensure!(
        output.status.success(),
        "valgrind failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&out)?;
    let total = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no totals in {}", out.display()))?;
    let counts: Value = serde_json::from_slice(&output.stdout)?;
    Ok((total, counts))
}

fn measure(players: u32, slowdown: bool) -> anyhow::Result<Value> {
    let exe = std::env::current_exe()?;
    let dir = std::env::temp_dir().join(format!("bench-gate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (tick, counts) = instructions(&exe, "measured_tick", players, slowdown, &dir)?;
    let (messages, _) = instructions(&exe, "measured_message_decodes", players, slowdown, &dir)?;
    let (states, _) = instructions(&exe, "measured_state_decodes", players, slowdown, &dir)?;
    let _ = std::fs::remove_dir_all(&dir);
    let mut all = counts;
    // Warm-up ticks run through the same function, so divide by all ticks.
    all["tick_instructions"] = json!(tick / f64::from(WARM_UP_TICKS + TICKS));
    all["message_decode_instructions"] = json!(messages / f64::from(DECODES));
    all["state20_decode_instructions"] = json!(states / f64::from(DECODES));
    all["valgrind"] = json!(valgrind_version());
    Ok(all)
}

/// Compares counts with a baseline; returns the report lines and whether
/// every count is within its tolerance.
fn compare(now: &Value, base: &Value) -> (Vec<String>, bool) {
    let mut lines = vec![format!(
        "{:<30} {:>14} {:>14} {:>9} {:>9}",
        "count", "baseline", "now", "change", "limit"
    )];
    for tool in ["rustc", "valgrind"] {
        if now[tool] != base[tool] {
            lines.push(format!(
                "note: the baseline was measured with {} and this run with {}: instruction counts move with the toolchain",
                base[tool], now[tool]
            ));
        }
    }
    if now["players"] != base["players"] {
        lines.push(format!(
            "the baseline was measured with {} players, this run with {}",
            base["players"], now["players"]
        ));
        return (lines, false);
    }
    let mut ok = true;
    for (name, tolerance) in TOLERANCES {
        let (Some(n), Some(b)) = (now[name].as_f64(), base[name].as_f64()) else {
            lines.push(format!("{name:<30} missing from the baseline or the run"));
            ok = false;
            continue;
        };
        let change = if b == 0.0 {
            if n == 0.0 { 0.0 } else { f64::INFINITY }
        } else {
            n / b - 1.0
        };
        let pass = change <= tolerance + 1e-12;
        ok &= pass;
        lines.push(format!(
            "{name:<30} {b:>14.1} {n:>14.1} {:>8.2}% {:>8.1}% {}",
            change * 100.0,
            tolerance * 100.0,
            if pass { "ok" } else { "REGRESSION" }
        ));
    }
    (lines, ok)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let slowdown = args
        .windows(2)
        .any(|w| w[0] == "--slowdown" && w[1] == "encode");
    let players = match args
        .windows(2)
        .find(|w| w[0] == "--players")
        .map(|w| w[1].parse::<u32>())
    {
        None => PLAYERS,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("bench-gate: --players takes a positive number");
            return ExitCode::from(2);
        }
    };
    if args.first().map(String::as_str) == Some("workload") {
        println!("{}", workload(players, slowdown));
        return ExitCode::SUCCESS;
    }
    let baseline = args
        .windows(2)
        .find(|w| w[0] == "--baseline")
        .map(|w| PathBuf::from(&w[1]))
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/baseline.json")));
    let update = args.iter().any(|a| a == "--update");
    let now = match measure(players, slowdown) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bench-gate: {e:#}");
            return ExitCode::from(2);
        }
    };
    if update {
        let text = serde_json::to_string_pretty(&now).expect("json") + "\n";
        if let Err(e) = std::fs::write(&baseline, text) {
            eprintln!("bench-gate: writing {}: {e}", baseline.display());
            return ExitCode::from(2);
        }
        println!("baseline updated: {}\n{now:#}", baseline.display());
        return ExitCode::SUCCESS;
    }
    let base: Value = match std::fs::read(&baseline)
        .map_err(anyhow::Error::from)
        .and_then(|b| Ok(serde_json::from_slice(&b)?))
    {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bench-gate: reading {}: {e:#}", baseline.display());
            return ExitCode::from(2);
        }
    };
    let (lines, ok) = compare(&now, &base);
    for l in lines {
        println!("{l}");
    }
    if ok {
        println!("bench-gate: every count is within its tolerance");
        ExitCode::SUCCESS
    } else {
        println!(
            "bench-gate: regression (if intended, update the baseline: cargo run --release -p benches --bin bench-gate -- --update)"
        );
        ExitCode::from(1)
    }
}

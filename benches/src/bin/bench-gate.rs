//! The benchmark-regression gate that CI can trust on a noisy shared
//! machine: it gates on counts that do not depend on the machine's load.
//!
//! - **Instructions** per tick (arena step + every player's snapshot, 1,000
//!   players), per input decoded (the server's side) and per 20-entity
//!   snapshot decoded (a client's side), counted by `valgrind --tool=callgrind`
//!   over just the measured function (`--toggle-collect`): the same binary
//!   and inputs give the same count whatever else the machine is doing.
//! - **Allocations** per tick, counted by a wrapping global allocator.
//! - **Bytes** per snapshot and per entity on the wire.
//!
//! `bench-gate` runs the workloads under callgrind (re-running itself as
//! the child), compares with `benches/baseline.json` and exits 1 if any
//! count grew past its tolerance; `--update` rewrites the baseline on
//! purpose. `--slowdown encode` makes the workload encode every snapshot
//! twice, to show that the gate trips. Instruction counts change with the
//! compiler: after a toolchain upgrade, re-run with `--update`.

use benches::{populated_arena, sample_snapshot};
use protocol::{ClientMsg, Input, ServerMsg};
use serde_json::{Value, json};
use server::game::Game;
use server::room::fanout::SnapshotBuilder;
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
    ("input_decode_instructions", 0.02),
    ("snapshot20_decode_instructions", 0.02),
    ("tick_allocations", 0.0),
    ("snapshot_bytes_per_player", 0.0),
    ("entity_bytes", 0.0),
];

fn inputs(players: u32, round: u32) -> Vec<(u32, Input)> {
    (1..=players)
        .map(|p| {
            let phase = ((p + round) % 8) as usize;
            let dx = [127, 90, 0, -90, -127, -90, 0, 90][phase];
            let dy = [0, 90, 127, 90, 0, -90, -127, -90][phase];
            (p, Input { seq: round, dx, dy })
        })
        .collect()
}

/// The measured part of the tick workload; callgrind counts only inside it.
#[inline(never)]
fn measured_ticks(
    arena: &mut server::game::arena::Arena,
    builder: &mut SnapshotBuilder,
    inputs: &[Vec<(u32, Input)>],
    slow_encode: bool,
) -> u64 {
    let players = inputs.first().map_or(0, |i| i.len() as u32);
    let mut bytes = 0;
    for (t, inputs) in inputs.iter().enumerate() {
        arena.step(inputs);
        let viewers = (1..=players).map(|p| (p, t as u32));
        bytes += builder.build(arena, t as u32, 100, viewers).bytes.len() as u64;
        if slow_encode {
            let viewers = (1..=players).map(|p| (p, t as u32));
            black_box(builder.build(arena, t as u32, 100, viewers).bytes.len());
        }
    }
    bytes
}

/// The measured part of the input-decoding workload (the server's side).
#[inline(never)]
fn measured_input_decodes(input: &[u8]) -> usize {
    (0..DECODES)
        .filter(|_| {
            matches!(
                protocol::decode_client(black_box(input)),
                Ok(ClientMsg::Input(_))
            )
        })
        .count()
}

/// The measured part of the snapshot-decoding workload (a client's side).
#[inline(never)]
fn measured_snapshot_decodes(snapshot: &[u8]) -> usize {
    (0..DECODES)
        .filter(|_| {
            matches!(
                protocol::decode_server(black_box(snapshot)),
                Ok(ServerMsg::Snapshot(_))
            )
        })
        .count()
}

/// Runs the workloads once and prints the machine-independent counts
/// (everything but instructions) as JSON.
fn workload(players: u32, slow_encode: bool) -> Value {
    let mut arena = populated_arena(players);
    let mut builder = SnapshotBuilder::default();
    let warm: Vec<_> = (0..WARM_UP_TICKS).map(|r| inputs(players, r)).collect();
    measured_ticks(&mut arena, &mut builder, &warm, slow_encode);
    let rounds: Vec<_> = (WARM_UP_TICKS..WARM_UP_TICKS + TICKS)
        .map(|r| inputs(players, r))
        .collect();
    let before = ALLOCATIONS.load(Relaxed);
    let bytes = measured_ticks(&mut arena, &mut builder, &rounds, slow_encode);
    let allocations = ALLOCATIONS.load(Relaxed) - before;

    let mut input = Vec::new();
    protocol::encode_client(
        &ClientMsg::Input(Input {
            seq: 70_000,
            dx: -90,
            dy: 90,
        }),
        &mut input,
    );
    let snap = sample_snapshot(20);
    let mut snapshot = Vec::new();
    protocol::encode_server(&ServerMsg::Snapshot(snap.clone()), &mut snapshot);
    assert_eq!(measured_input_decodes(&input), DECODES as usize);
    assert_eq!(measured_snapshot_decodes(&snapshot), DECODES as usize);
    let mut header = Vec::new();
    protocol::wire::encode_snapshot_header(snap.tick, snap.ack, snap.players, 20, &mut header);
    json!({
        "players": players,
        "tick_allocations": allocations as f64 / f64::from(TICKS),
        "snapshot_bytes_per_player": bytes as f64 / f64::from(TICKS * players),
        "entity_bytes": (snapshot.len() - header.len()) as f64 / 20.0,
    })
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
    let (tick, counts) = instructions(&exe, "measured_ticks", players, slowdown, &dir)?;
    let (inputs, _) = instructions(&exe, "measured_input_decodes", players, slowdown, &dir)?;
    let (snapshots, _) = instructions(&exe, "measured_snapshot_decodes", players, slowdown, &dir)?;
    let _ = std::fs::remove_dir_all(&dir);
    let mut all = counts;
    // Warm-up ticks run through the same function, so divide by all ticks.
    all["tick_instructions"] = json!(tick / f64::from(WARM_UP_TICKS + TICKS));
    all["input_decode_instructions"] = json!(inputs / f64::from(DECODES));
    all["snapshot20_decode_instructions"] = json!(snapshots / f64::from(DECODES));
    Ok(all)
}

/// Compares counts with a baseline; returns the report lines and whether
/// every count is within its tolerance.
fn compare(now: &Value, base: &Value) -> (Vec<String>, bool) {
    let mut lines = vec![format!(
        "{:<30} {:>14} {:>14} {:>9} {:>9}",
        "count", "baseline", "now", "change", "limit"
    )];
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

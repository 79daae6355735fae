//! loadgen against a real server (in-process, 127.0.0.1 port 0): counts add
//! up, verdicts pass and fail as they should, chaos drops resume the same
//! players (and lose no event of a turn-based game), a server restart is
//! recovered (and, with a state file, loses no session), and merged reports
//! equal one histogram of both runs. Runs are kept to a few seconds.

use loadgen::report::Report;
use loadgen::{InputBatching, RunConfig, run};
use server::testing::TestServer;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// The built-in games, as the `server` binary registers them.
fn games() -> Vec<server::game_api::RoomType> {
    vec![
        arena::room_type(arena::ArenaConfig::default()),
        four::room_type(),
    ]
}

fn config(url: String, clients: usize, secs: f64) -> RunConfig {
    RunConfig {
        ramp_up: Duration::from_millis(500),
        duration: Duration::from_secs_f64(secs),
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(800),
        ..RunConfig::new(url, clients)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_produces_counts_that_add_up() {
    let server = TestServer::start(games(), &[]).await;
    let r = run(config(server.url(), 200, 3.0)).await.unwrap();
    let c = &r.counters;
    assert_eq!(r.error_count, 0, "{:?}", r.errors);
    assert_eq!(
        (c.connects, r.connected_peak, r.connected_at_end),
        (200, 200, 200)
    );
    assert_eq!(
        c.inputs_sent,
        c.inputs_acked + c.inputs_lost + c.inputs_in_flight_at_end
    );
    assert_eq!(c.inputs_lost, 0, "no drops, so no lost inputs");
    assert_eq!(r.latency["input_ack"].count, c.inputs_acked);
    // loadgen's own lag is timed for every acknowledged input, and is a
    // part of its input→ack: never longer than the whole.
    assert_eq!(r.latency["send_lag"].count, c.inputs_acked);
    assert!(
        r.latency["send_lag"].max <= r.latency["input_ack"].max,
        "send lag {} past input→ack {}",
        r.latency["send_lag"].max,
        r.latency["input_ack"].max
    );
    assert_eq!(r.latency["connect"].count, 200);
    // 200 players for ~3 s at 30 Hz; allow for the ramp and a busy machine.
    assert!(c.states > 200 * 30, "states {}", c.states);
    // Every state but each client's first follows the one before it by
    // one tick (a jitter sample) or by more (a gap: skipped for a slow
    // reader on a busy machine).
    assert_eq!(
        r.latency["state_jitter"].count + c.state_gaps,
        c.states - 200,
        "one jitter sample or one gap per state after the first"
    );
    assert_eq!(c.events, 0, "the arena sends no events");
    // 20 inputs/s each: roughly 60 per player.
    assert!(c.inputs_sent > 200 * 40, "inputs {}", c.inputs_sent);
    assert!(
        c.pongs <= c.pings && c.pongs + 200 >= c.pings,
        "pings {} pongs {}",
        c.pings,
        c.pongs
    );
    assert_eq!(c.msgs_out, c.inputs_sent + c.pings);
    assert_eq!(c.msgs_in, c.states + c.pongs);
    assert!(c.bytes_in > c.states * 5, "every state is at least 5 bytes");
    assert!(r.loadgen.cpu_s > 0.0);
    assert!(r.server.is_some(), "the server's /metrics was scraped");
    assert!(server.stop().await, "server stopped cleanly");
}

/// With `--input-batching per-state` a player writes no more
/// often than the server sends it states: at 5 states a second and 20
/// inputs, its inputs wait for the next write (up to 200 ms, 100 ms on the
/// median) and go out about four to a write, and every one still arrives
/// and is acknowledged. With batching off, every input is its own write and
/// waits for nothing. A bot that does not stream (four-in-a-row's, which
/// moves on its turn) is never held back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_inputs_follow_the_servers_send_rate_and_all_arrive() {
    let server = TestServer::start(games(), &["--snapshot-hz", "5"]).await;
    for batching in [InputBatching::PerState, InputBatching::Off] {
        let r = run(RunConfig {
            input_batching: batching,
            ..config(server.url(), 20, 4.0)
        })
        .await
        .unwrap();
        let c = &r.counters;
        assert_eq!(r.error_count, 0, "{batching:?}: {:?}", r.errors);
        assert_eq!(c.inputs_lost, 0, "{batching:?}");
        assert_eq!(
            c.inputs_sent,
            c.inputs_acked + c.inputs_in_flight_at_end,
            "{batching:?}"
        );
        assert!(c.inputs_sent > 20 * 60, "{batching:?}: {}", c.inputs_sent);
        let per_write = c.msgs_out as f64 / c.writes_out as f64;
        let lag_p50 = r.latency["send_lag"].p50;
        match batching {
            InputBatching::PerState => {
                assert!(per_write > 2.5, "{per_write:.2} messages a write");
                assert!(lag_p50 >= 40_000, "send lag p50 {lag_p50} µs");
            }
            InputBatching::Off => {
                assert!(per_write < 1.2, "{per_write:.2} messages a write");
                assert!(lag_p50 < 40_000, "send lag p50 {lag_p50} µs");
            }
        }
    }
    let mut four = config(server.url(), 20, 4.0);
    four.game = loadgen::bots::find("four").expect("four has a bot");
    four.input_batching = InputBatching::PerState;
    let r = run(four).await.unwrap();
    assert_eq!(r.error_count, 0, "{:?}", r.errors);
    assert!(r.counters.inputs_acked > 40, "{}", r.counters.inputs_acked);
    let lag_p50 = r.latency["send_lag"].p50;
    assert!(lag_p50 < 40_000, "four: send lag p50 {lag_p50} µs");
    assert!(server.stop().await, "server stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_drops_lead_to_resumes_of_the_same_players() {
    let server = TestServer::start(games(), &[]).await;
    let mut cfg = config(server.url(), 100, 4.0);
    cfg.chaos_drop_rate = 0.2;
    let r = run(cfg).await.unwrap();
    let c = &r.counters;
    assert!(c.drops >= 40, "about 20 drops a second, got {}", c.drops);
    // Every reconnect resumed the same player with its score; a wrong
    // player id or a lost score would be an error.
    assert_eq!(r.error_count, 0, "{:?}", r.errors);
    assert_eq!(
        (c.resumes_failed, c.resumes_lost_state, c.rejoins),
        (0, 0, 0)
    );
    assert_eq!(r.latency["reconnect"].count, c.resumes_ok);
    // Drops in the last moments may still be waiting out their back-off.
    assert!(
        c.resumes_ok + 40 >= c.drops && c.resumes_ok <= c.drops,
        "drops {} resumes {}",
        c.drops,
        c.resumes_ok
    );
    assert_eq!(c.connects, 100 + c.resumes_ok);
    assert!(server.stop().await, "server stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_in_a_row_under_chaos_loses_no_move_and_no_event() {
    let server = TestServer::start(games(), &[]).await;
    let mut cfg = config(server.url(), 40, 6.0);
    cfg.game = loadgen::bots::find("four").expect("four has a bot");
    cfg.input_hz = 10.0;
    cfg.chaos_drop_rate = 0.1;
    let r = run(cfg).await.unwrap();
    let c = &r.counters;
    // An event seen twice or never (across any number of drops), a move
    // number out of order in a game (the bot's own check), or a rejected
    // move would each be an error.
    assert_eq!(r.error_count, 0, "{:?}", r.errors);
    assert!(c.drops >= 10, "about 4 drops a second, got {}", c.drops);
    assert!(c.events >= 200, "games were played: {} events", c.events);
    assert_eq!(
        (c.resumes_failed, c.resumes_lost_state, c.rejoins),
        (0, 0, 0)
    );
    assert!(
        c.inputs_acked > 50,
        "moves were acknowledged: {}",
        c.inputs_acked
    );
    assert_eq!(r.settings["game"], "four");
    assert!(server.stop().await, "server stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_run_is_recovered() {
    let server = TestServer::start(games(), &[]).await;
    let url = server.url();
    let restart = restart_mid_run(server, Vec::new());
    let r = run(config(url, 100, 6.0)).await.unwrap();
    let c = &r.counters;
    assert_eq!(c.server_restarts_seen, 100, "every client saw the 1001");
    assert!(
        c.reconnect_failures > 0,
        "attempts while the server was down failed"
    );
    // Without a state file the restarted server has no sessions to resume,
    // so every client comes back as a new player.
    assert_eq!((c.resumes_failed, c.rejoins), (100, 100));
    assert_eq!(r.connected_at_end, 100, "all clients are back");
    assert_eq!(r.outages.len(), 1, "{:?}", r.outages);
    let back = r.outages[0]
        .all_back_after_s
        .expect("recovered before the end");
    assert!(back > 0.5 && back < 5.0, "back after {back} s");
    assert_eq!(
        r.error_count, 0,
        "a restart is not an error: {:?}",
        r.errors
    );
    assert!(
        restart.await.unwrap().stop().await,
        "server stopped cleanly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_restart_with_a_state_file_resumes_every_client() {
    // Fewer clients than the restart test above: this binary's tests run
    // side by side, and the point here is exactness, not load.
    const CLIENTS: u64 = 50;
    let state = temp("restart.state");
    let _ = std::fs::remove_file(&state);
    let state_arg = state.to_str().unwrap().to_owned();
    let server = TestServer::start_on("127.0.0.1:0", games(), &["--state-file", &state_arg]).await;
    let url = server.url();
    let restart = restart_mid_run(server, vec!["--state-file".to_owned(), state_arg]);
    let r = run(config(url, CLIENTS as usize, 6.0)).await.unwrap();
    let c = &r.counters;
    assert_eq!(c.server_restarts_seen, CLIENTS, "every client saw the 1012");
    assert!(
        c.reconnect_failures > 0,
        "attempts while the server was down failed"
    );
    // Every client came back as its own player with at least its score.
    assert_eq!(c.resumes_ok, CLIENTS);
    assert_eq!(
        (c.resumes_failed, c.resumes_lost_state, c.rejoins),
        (0, 0, 0)
    );
    assert_eq!(c.connects, 2 * CLIENTS, "one join and one resume each");
    assert_eq!(r.connected_at_end as u64, CLIENTS, "all clients are back");
    assert_eq!(r.outages.len(), 1, "{:?}", r.outages);
    assert_eq!(
        r.error_count, 0,
        "a restart is not an error: {:?}",
        r.errors
    );
    assert!(
        restart.await.unwrap().stop().await,
        "server stopped cleanly"
    );
    assert!(state.exists(), "the second server saved its state in turn");
    let _ = std::fs::remove_file(&state);
    let _ = std::fs::remove_file(temp("restart.state.restored"));
}

/// Stops `server` gracefully 2.5 s into a run and, 0.7 s later, starts a
/// new one on its address with `args`; the task returns the new server.
fn restart_mid_run(server: TestServer, args: Vec<String>) -> tokio::task::JoinHandle<TestServer> {
    tokio::spawn(async move {
        let addr = server.addr.to_string();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(server.stop().await, "server stopped cleanly");
        tokio::time::sleep(Duration::from_millis(700)).await;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        TestServer::start_on(&addr, games(), &args).await
    })
}

fn loadgen(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .env("CI", "true")
        .output()
        .expect("run loadgen")
}

async fn loadgen_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        loadgen(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn read_report(path: &Path) -> Report {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn short_run(url: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--url",
        url,
        "--clients",
        "50",
        "--ramp-up",
        "200ms",
        "--duration",
        "2s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Writes the report at `from` to `to` as a run `slower` times slower:
/// latency percentiles multiplied by it, message rates divided by it.
fn write_scaled(from: &Path, slower: f64, to: &Path) {
    let mut r = read_report(from);
    let scale = |us: u64| (us as f64 * slower) as u64;
    for l in r.latency.values_mut() {
        (l.p50, l.p90, l.p99) = (scale(l.p50), scale(l.p90), scale(l.p99));
    }
    r.throughput.msgs_in_per_s /= slower;
    r.throughput.msgs_out_per_s /= slower;
    std::fs::write(to, serde_json::to_string(&r).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assertions_and_baselines_set_the_exit_code() {
    let server = TestServer::start(games(), &[]).await;
    let url = server.url();
    let report = temp("pass.json");
    let pass = loadgen_async(short_run(
        &url,
        &[
            "--assert",
            "errors==0",
            "--assert",
            "input_ack.p99 <= 10s",
            "--assert",
            "ack_ratio>=99%",
            "--report",
            report.to_str().unwrap(),
        ],
    ))
    .await;
    let out = String::from_utf8_lossy(&pass.stdout);
    assert_eq!(pass.status.code(), Some(0), "{out}");
    assert!(out.contains("input_ack") && !out.contains("FAIL"), "{out}");

    let fail = loadgen_async(short_run(
        &url,
        &["--assert", "input_ack.p50<1us", "--assert", "errors==0"],
    ))
    .await;
    let out = String::from_utf8_lossy(&fail.stdout);
    assert_eq!(fail.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL input_ack.p50<1us"), "{out}");
    assert_eq!(
        out.matches("FAIL").count(),
        1,
        "only the impossible check failed: {out}"
    );

    let unknown = loadgen_async(short_run(&url, &["--assert", "no_such_metric<1"])).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stdout).contains("no metric named"));

    // A baseline that was ten times faster and error-free trips the gate.
    let base_path = temp("fast-baseline.json");
    write_scaled(&report, 0.1, &base_path);
    let regressed = loadgen_async(short_run(
        &url,
        &[
            "--baseline",
            base_path.to_str().unwrap(),
            "--max-regression",
            "15%",
        ],
    ))
    .await;
    let out = String::from_utf8_lossy(&regressed.stdout);
    assert_eq!(regressed.status.code(), Some(1), "{out}");
    assert!(out.contains("REGRESSION latency.input_ack.p50"), "{out}");
    assert!(out.contains("REGRESSION throughput.msgs_in_per_s"), "{out}");

    // Against a baseline it does not regress from, the same load passes.
    // The run's own report would make that a bet on two runs' millisecond
    // tails on a shared machine (a CI run once saw send_lag p99 go from
    // 5 ms to 29 ms between them), so the baseline is this run made a
    // hundred times slower: only a run over 500 times slower than the
    // first could fail it.
    let slow_path = temp("slow-baseline.json");
    write_scaled(&report, 100.0, &slow_path);
    let same = loadgen_async(short_run(
        &url,
        &[
            "--baseline",
            slow_path.to_str().unwrap(),
            "--max-regression",
            "400%",
        ],
    ))
    .await;
    let out = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(0), "{out}");
    assert!(!out.contains("REGRESSION"), "{out}");
    assert!(server.stop().await, "server stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_of_two_reports_equals_one_histogram_of_both() {
    let server = TestServer::start(games(), &[]).await;
    let url = server.url();
    let (a, b, m) = (temp("a.json"), temp("b.json"), temp("merged.json"));
    let hdr_dir = temp("hdr");
    let svg = temp("plot.svg");
    let (ra, rb) = tokio::join!(
        loadgen_async(short_run(
            &url,
            &[
                "--report",
                a.to_str().unwrap(),
                "--seed",
                "1",
                "--hdr-log",
                hdr_dir.to_str().unwrap()
            ]
        )),
        loadgen_async(short_run(
            &url,
            &[
                "--report",
                b.to_str().unwrap(),
                "--seed",
                "2",
                "--plot",
                svg.to_str().unwrap()
            ]
        )),
    );
    assert_eq!(ra.status.code(), Some(0));
    assert_eq!(rb.status.code(), Some(0));
    assert!(
        std::fs::read_to_string(hdr_dir.join("input_ack.hlog"))
            .unwrap()
            .contains("HISTF")
    );
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<polyline"));
    let merged = loadgen_async(vec![
        "merge".into(),
        a.to_str().unwrap().into(),
        b.to_str().unwrap().into(),
        "-o".into(),
        m.to_str().unwrap().into(),
        "--assert".into(),
        "clients==100".into(),
    ])
    .await;
    assert_eq!(
        merged.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&merged.stdout)
    );
    let (ra, rb, rm) = (read_report(&a), read_report(&b), read_report(&m));
    assert_eq!(
        rm.counters.inputs_sent,
        ra.counters.inputs_sent + rb.counters.inputs_sent
    );
    assert_eq!(rm.runs_merged, 2);
    for name in ["input_ack", "ping_rtt", "state_jitter", "connect"] {
        let mut both = ra.latency[name].histogram().unwrap();
        both.add(rb.latency[name].histogram().unwrap()).unwrap();
        let merged = rm.latency[name].histogram().unwrap();
        assert_eq!(
            merged, both,
            "{name}: merged histogram equals the sum of both"
        );
        assert_eq!(rm.latency[name].p99, both.value_at_quantile(0.99), "{name}");
    }
    assert!(server.stop().await, "server stopped cleanly");
}

#[test]
fn a_client_count_over_the_open_file_limit_fails_at_once() {
    let out = loadgen(&["--clients", "100000000", "--duration", "1s"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("open files") && err.contains("limit"), "{err}");
}

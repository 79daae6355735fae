//! place under load: the real server in-process (127.0.0.1, port 0) with
//! place as its only room type, played by `loadgen` with place's bot, some
//! of whose connections are cut every second. Every bot checks its canvas,
//! kept from events, against every state that covers the same paints, and
//! that no paint the state allowed is refused; loadgen checks that events
//! arrive once each and in order and that a resume keeps the player and
//! its pixel count. So a clean report means the game, the server and the
//! bot agree across drops and resumes, and across a planned restart that
//! saves and restores every canvas.

use loadgen::{RunConfig, run};
use server::testing::TestServer;
use std::time::Duration;

/// A run of `clients` place bots against `url` for `secs` seconds.
fn config(url: String, clients: usize, secs: u64) -> RunConfig {
    RunConfig {
        game: loadgen::bots::find("place").expect("loadgen knows place"),
        ramp_up: Duration::from_millis(500),
        duration: Duration::from_secs(secs),
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(800),
        ..RunConfig::new(url, clients)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_painters_under_chaos_lose_no_paint() {
    let server = TestServer::start(vec![place::room_type()], &[]).await;
    let cfg = RunConfig {
        chaos_drop_rate: 0.1,
        ..config(server.url(), 20, 5)
    };
    let r = run(cfg).await.unwrap();
    let c = &r.counters;
    assert_eq!(r.error_count, 0, "{:?}", r.errors);
    assert!(c.drops >= 5, "about 2 drops a second, got {}", c.drops);
    assert!(c.resumes_ok > 0, "resumes were checked: {}", c.resumes_ok);
    assert_eq!(
        (c.resumes_failed, c.resumes_lost_state, c.rejoins),
        (0, 0, 0)
    );
    // Each bot paints about once a second and hears everyone's paints.
    assert!(c.inputs_acked >= 40, "paints applied: {}", c.inputs_acked);
    assert!(c.events >= 20 * c.inputs_acked / 2, "events: {}", c.events);
    assert_eq!(r.settings["game"], "place");
    assert!(server.stop().await, "server stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_restart_keeps_the_canvas_and_every_painter() {
    const CLIENTS: u64 = 20;
    let state = std::env::temp_dir().join(format!("place-test-{}.state", std::process::id()));
    let _ = std::fs::remove_file(&state);
    let path = state.to_str().expect("a UTF-8 temp dir").to_owned();
    let server = TestServer::start(vec![place::room_type()], &["--state-file", &path]).await;
    let (url, addr) = (server.url(), server.addr.to_string());
    // 2.5 s into the run the server stops as on SIGTERM, saving its rooms;
    // 0.7 s later a new one restores them on the same address.
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(server.stop().await, "the first server stopped cleanly");
        tokio::time::sleep(Duration::from_millis(700)).await;
        TestServer::start_on(&addr, vec![place::room_type()], &["--state-file", &path]).await
    });
    let r = run(config(url, CLIENTS as usize, 6)).await.unwrap();
    let c = &r.counters;
    // Every bot checked its canvas, kept from events across the restart,
    // against the restored room's states: any difference is an error.
    assert_eq!(r.error_count, 0, "{:?}", r.errors);
    assert_eq!(c.server_restarts_seen, CLIENTS, "every client saw the 1012");
    assert_eq!(
        c.resumes_ok, CLIENTS,
        "every painter came back with its pixels"
    );
    assert_eq!(
        (c.resumes_failed, c.resumes_lost_state, c.rejoins),
        (0, 0, 0)
    );
    assert!(
        restart.await.unwrap().stop().await,
        "the second server stopped cleanly"
    );
    let _ = std::fs::remove_file(&state);
    let _ = std::fs::remove_file(state.with_extension("state.restored"));
}

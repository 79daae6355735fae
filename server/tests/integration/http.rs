//! The plain HTTP routes that share the game's port.

use crate::common::*;

#[tokio::test]
async fn healthz_metrics_and_the_page_are_served() {
    let server = start(&[]).await;
    let (_conn, _) = server.join().await;

    assert_eq!(server.get("/healthz").await, (200, "ok\n".to_owned()));

    let (status, page) = server.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("<html"), "{page}");

    let (status, metrics) = server.get("/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "game_connections_open 1",
        "game_players 1",
        "game_rooms 1",
        "game_tick_duration_seconds_bucket{le=\"+Inf\"}",
        "game_tick_lateness_seconds_count",
        "game_tick_overruns_total",
        "game_messages_in_total 1",
        // The quick-join Hello: variant, version, no resume, QuickJoin,
        // "arena" (a length and five bytes), no options.
        "game_bytes_in_total 11",
        "game_messages_out_total",
        "game_bytes_out_total",
        "game_states_skipped_total",
        "game_resumes_total 0",
        "game_closes_total",
        "game_inputs_dropped_total{reason=\"rate_limit\"} 0",
        "game_joins_total{request=\"quick\"} 1",
        "game_events_sent_total 0",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }

    assert_eq!(server.get("/nope").await.0, 404);
    assert_eq!(server.get("/ws").await.0, 426, "/ws without an upgrade");
}

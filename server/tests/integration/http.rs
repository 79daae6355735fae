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

    let (status, body) = server.get("/metrics").await;
    assert_eq!(status, 200);
    let metrics = Exposition::parse(&body);
    for (series, want) in [
        ("game_connections_open", Some(1.0)),
        ("game_players", Some(1.0)),
        ("game_rooms", Some(1.0)),
        ("game_tick_duration_seconds_bucket{le=\"+Inf\"}", None),
        ("game_tick_lateness_seconds_count", None),
        ("game_tick_overruns_total", None),
        ("game_messages_in_total", Some(1.0)),
        // The quick-join Hello: variant, version, no resume, QuickJoin,
        // "arena" (a length and five bytes), no options.
        ("game_bytes_in_total", Some(11.0)),
        ("game_messages_out_total", None),
        ("game_bytes_out_total", None),
        ("game_states_skipped_total", None),
        ("game_resumes_total", Some(0.0)),
        (
            "game_inputs_dropped_total{reason=\"rate_limit\"}",
            Some(0.0),
        ),
        ("game_joins_total{request=\"quick\"}", Some(1.0)),
        ("game_events_sent_total", Some(0.0)),
    ] {
        let v = metrics.value(series);
        assert!(v.is_some(), "{series} missing from\n{body}");
        if want.is_some() {
            assert_eq!(v, want, "{series} in\n{body}");
        }
    }
    // The closes, whose line for abnormal ends is always written.
    assert_eq!(metrics.kind("game_closes_total"), Some("counter"), "{body}");
    assert!(
        metrics.matching("game_closes_total", &[]).next().is_some(),
        "{body}"
    );

    assert_eq!(server.get("/nope").await.0, 404);
    assert_eq!(server.get("/ws").await.0, 426, "/ws without an upgrade");
}

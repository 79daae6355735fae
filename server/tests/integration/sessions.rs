//! Playing: handshake, inputs and acks, interest management, rooms, and
//! resuming sessions.

use crate::common::*;
use arena::msg::EntityKind;
use client::ClientError;
use protocol::{ClientMsg, Ping, ResumeToken, ServerMsg};
use std::time::Duration;

#[tokio::test]
async fn hello_gets_welcome_then_a_snapshot_every_tick() {
    let server = start(&[]).await;
    let (mut conn, welcome) = server.join().await;
    assert_eq!(welcome.version, protocol::PROTOCOL_VERSION);
    assert!(!welcome.resumed);
    assert_eq!(welcome.tick_hz, 30);
    assert_eq!(welcome.room_type, "arena");
    assert_eq!(welcome.invite_code, None, "a public room has no code");
    let field = arena_welcome(&welcome);
    assert_eq!(
        (field.world_width, field.world_height, field.view_radius),
        (2000, 2000, 300)
    );
    let first = next_snapshot(&mut conn).await.unwrap();
    let me = own(&first, welcome.player_id).expect("own entity in the snapshot");
    assert_eq!(me.kind, EntityKind::Player);
    assert_eq!(first.players, 1);
    // Consecutive snapshots carry consecutive ticks.
    let mut last = first.tick;
    for _ in 0..5 {
        let s = next_snapshot(&mut conn).await.unwrap();
        assert_eq!(s.tick, last + 1, "one snapshot per tick");
        last = s.tick;
    }
}

#[tokio::test]
async fn ping_is_answered_with_its_timestamp() {
    let server = start(&[]).await;
    let (mut conn, _) = server.join().await;
    conn.send(&ClientMsg::Ping(Ping { t: 424_242 }))
        .await
        .unwrap();
    let pong = within("pong", async {
        loop {
            if let client::Event::Msg(ServerMsg::Pong(p)) = conn.recv().await.unwrap() {
                return p;
            }
        }
    })
    .await;
    assert_eq!(pong.t, 424_242);
    assert!(pong.server_time_ms > 1_600_000_000_000, "wall clock in ms");
}

#[tokio::test]
async fn inputs_move_the_player_and_advance_the_ack() {
    let server = start(&[]).await;
    let (mut conn, w) = server.join().await;
    let start = own(&next_snapshot(&mut conn).await.unwrap(), w.player_id).unwrap();
    // Head for the far side so the edge cannot stop us.
    let dx: i8 = if start.x > arena_welcome(&w).world_width / 2 {
        -127
    } else {
        127
    };
    for seq in 1..=10 {
        input(&mut conn, seq, dx, 0).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut last_ack = 0;
    let acked = within("ack of input 10", async {
        loop {
            let s = next_snapshot(&mut conn).await.unwrap();
            assert!(s.ack >= last_ack, "acks never go backwards");
            last_ack = s.ack;
            if s.ack == 10 {
                return s;
            }
        }
    })
    .await;
    assert_eq!(last_ack, 10);
    let now = own(&acked, w.player_id).unwrap();
    let moved = i32::from(now.x) - i32::from(start.x);
    assert!(
        moved.signum() == i32::from(dx).signum() && moved.abs() >= 8,
        "moved {moved}"
    );
    assert_eq!(now.y, start.y, "no vertical input, no vertical motion");
}

/// Fast players on a small field with no pickups, so that positions are
/// easy to steer.
const STEERABLE: [&str; 10] = [
    "--world-width",
    "1000",
    "--world-height",
    "1000",
    "--view-radius",
    "100",
    "--pickups",
    "0",
    "--player-speed",
    "3000",
];

#[tokio::test]
async fn players_see_each_other_only_within_the_view_radius() {
    let server = start(&STEERABLE).await;
    let (mut a, wa) = server.join().await;
    let (mut b, wb) = server.join().await;
    // Both to the top-left corner: distance 0.
    input(&mut a, 1, -127, -127).await;
    input(&mut b, 1, -127, -127).await;
    let at_corner = |id: u32| move |s: &Snapshot| own(s, id).is_some_and(|e| e.x == 0 && e.y == 0);
    snapshot_where(&mut b, "b at the corner", at_corner(wb.player_id)).await;
    // A's buffered snapshots may predate B's arrival: wait for one at or
    // after it.
    snapshot_where(&mut a, "a sees b beside it at the corner", |s| {
        at_corner(wa.player_id)(s)
            && s.entities
                .iter()
                .any(|e| e.id == wb.player_id && (e.x, e.y) == (0, 0))
    })
    .await;
    // B to the opposite corner: distance 1414, far beyond the radius of 100.
    input(&mut b, 2, 127, 127).await;
    snapshot_where(&mut b, "b at the far corner", |s| {
        own(s, wb.player_id).is_some_and(|e| e.x == 1000 && e.y == 1000)
    })
    .await;
    let s = snapshot_where(&mut a, "a loses sight of b", |s| !sees(s, wb.player_id)).await;
    assert!(own(&s, wa.player_id).is_some(), "a still sees itself");
    // And once b is back within the radius, a sees it again.
    input(&mut b, 3, -127, -127).await;
    snapshot_where(&mut a, "a sees b again", |s| sees(s, wb.player_id)).await;
}

#[tokio::test]
async fn room_capacity_splits_players_into_rooms_and_empty_rooms_close() {
    let server = start(&["--room-capacity", "2"]).await;
    let mut conns = Vec::new();
    let mut rooms = Vec::new();
    for _ in 0..5 {
        let (conn, w) = server.join().await;
        rooms.push(w.room_id);
        conns.push(conn);
    }
    assert_eq!(rooms[0], rooms[1]);
    assert_eq!(rooms[2], rooms[3]);
    assert_ne!(rooms[0], rooms[2]);
    assert_ne!(rooms[2], rooms[4]);
    assert_ne!(rooms[0], rooms[4]);
    assert_eq!(server.metric("game_rooms").await, 3.0);
    assert_eq!(server.metric("game_players").await, 5.0);
    // Snapshots report the room's own head count.
    let s = next_snapshot(&mut conns[4]).await.unwrap();
    assert_eq!(s.players, 1);
    for conn in &mut conns {
        conn.close(1000, "bye").await.unwrap();
        assert_eq!(close_code(conn).await, 1000);
    }
    server.wait_metric("game_rooms", |v| v == 0.0).await;
    assert_eq!(server.metric("game_players").await, 0.0);
}

#[tokio::test]
async fn resume_within_grace_restores_id_position_and_score() {
    let server = start(&SCORING).await;
    let (mut conn, w) = server.join().await;
    input(&mut conn, 1, 127, 90).await;
    snapshot_where(&mut conn, "a score", |s| {
        own(s, w.player_id).is_some_and(|e| e.score > 0)
    })
    .await;
    input(&mut conn, 2, 0, 0).await;
    snapshot_where(&mut conn, "the stop acked", |s| s.ack == 2).await;
    let before = own(&next_snapshot(&mut conn).await.unwrap(), w.player_id).unwrap();
    drop(conn); // no close frame: an unclean drop
    server
        .wait_metric("game_players_dropped", |v| v == 1.0)
        .await;

    let mut again = server.connect().await;
    let w2 = again.resume(w.resume_token, 0).await.expect("resume");
    assert!(w2.resumed);
    assert_eq!(w2.player_id, w.player_id);
    assert_eq!(w2.room_id, w.room_id);
    let after = own(&next_snapshot(&mut again).await.unwrap(), w.player_id).unwrap();
    assert_eq!(
        (after.x, after.y, after.score),
        (before.x, before.y, before.score)
    );
    assert_eq!(after.kind, EntityKind::Player);
    assert!(after.score > 0);
    assert_eq!(server.metric("game_resumes_total").await, 1.0);
    assert_eq!(server.metric("game_players").await, 1.0);
    assert_eq!(server.metric("game_players_dropped").await, 0.0);
    // The ack survives the resume, so the client can go on numbering.
    assert_eq!(next_snapshot(&mut again).await.unwrap().ack, 2);
}

#[tokio::test]
async fn resuming_a_live_session_takes_it_over() {
    let server = start(&[]).await;
    let (mut old, w) = server.join().await;
    let mut new = server.connect().await;
    let w2 = new.resume(w.resume_token, 0).await.expect("takeover");
    assert_eq!(w2.player_id, w.player_id);
    assert_eq!(close_code(&mut old).await, 4007);
    // The new connection keeps playing after the old one is gone.
    input(&mut new, 1, 1, 0).await;
    snapshot_where(&mut new, "ack on the new connection", |s| s.ack == 1).await;
    assert_eq!(server.metric("game_players").await, 1.0);
}

#[tokio::test]
async fn resume_after_the_grace_period_is_refused() {
    let server = start(&["--resume-grace", "300ms"]).await;
    let (conn, w) = server.join().await;
    drop(conn);
    server.wait_metric("game_players", |v| v == 0.0).await;
    let mut again = server.connect().await;
    match again.resume(w.resume_token, 0).await {
        Err(ClientError::Closed { code, reason }) => {
            assert_eq!(code, 4002);
            assert!(reason.contains("expired"), "{reason}");
        }
        other => panic!("expected a 4002 close, got {other:?}"),
    }
    assert_eq!(
        server.metric("game_players").await,
        0.0,
        "no player created in its place"
    );
    assert_eq!(server.metric("game_resumes_refused_total").await, 1.0);
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_creates_no_player() {
    let server = start(&[]).await;
    let (_conn, w) = server.join().await;
    let mut wrong = w.resume_token;
    wrong.0[15] ^= 1;
    for token in [wrong, ResumeToken([0; 16])] {
        let mut conn = server.connect().await;
        match conn.resume(token, 0).await {
            Err(ClientError::Closed { code, .. }) => assert_eq!(code, 4002),
            other => panic!("expected a 4002 close, got {other:?}"),
        }
    }
    assert_eq!(server.metric("game_players").await, 1.0);
}

#[tokio::test]
async fn a_clean_leave_removes_the_player_at_once() {
    let server = start(&[]).await;
    let (mut conn, w) = server.join().await;
    conn.close(1000, "leaving").await.unwrap();
    assert_eq!(close_code(&mut conn).await, 1000);
    server.wait_metric("game_players", |v| v == 0.0).await;
    let mut again = server.connect().await;
    match again.resume(w.resume_token, 0).await {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 4002),
        other => panic!("a left session cannot be resumed, got {other:?}"),
    }
}

#[tokio::test]
async fn states_go_out_at_the_snapshot_rate_and_still_acknowledge_every_input() {
    // 30 Hz ticks, 10 states a second: a state every third tick.
    let server = start(&["--snapshot-hz", "10"]).await;
    let (mut conn, _) = server.join().await;
    let mut last = next_snapshot(&mut conn).await.unwrap().tick;
    for seq in 1..=6 {
        input(&mut conn, seq, 20, 0).await;
        let s = next_snapshot(&mut conn).await.unwrap();
        assert_eq!(s.tick, last + 3, "a state every third tick");
        last = s.tick;
    }
    // The latest ack rides on the next state, whichever tick applied it.
    let acked = snapshot_where(&mut conn, "the last input acknowledged", |s| s.ack == 6).await;
    assert_eq!(acked.tick % 3, last % 3);
    assert_eq!(server.metric("game_rooms_degraded").await, 0.0);
    let planned = server.metric("game_states_planned_total").await;
    let written = server.metric("game_states_written_total").await;
    assert!(
        planned >= 7.0 && written >= 7.0,
        "planned {planned}, written {written}"
    );
}

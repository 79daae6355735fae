//! Bad and hostile clients: each gets its documented close code, and the
//! players around it keep playing.

use crate::common::*;
use client::ClientError;
use fastwebsockets::{Frame, OpCode, Payload};
use protocol::{ClientMsg, RoomRequest};
use std::time::{Duration, Instant};

#[tokio::test]
async fn bad_frames_get_their_close_codes_while_others_keep_playing() {
    let server = start(&[]).await;
    let (mut bystander, _) = server.join().await;
    let mut seq = 0;
    still_playing(&mut bystander, &mut seq).await;

    let bad: Vec<(&str, Frame<'static>, u16)> = vec![
        (
            "text frame",
            Frame::text(Payload::Owned(b"hello".to_vec())),
            1003,
        ),
        (
            "garbage bytes",
            Frame::binary(Payload::Owned(vec![0xff, 0x00, 0x13])),
            1007,
        ),
        (
            "trailing bytes",
            Frame::binary(Payload::Owned(vec![2, 5, 0, 0])),
            1007,
        ),
        (
            "oversized frame",
            Frame::binary(Payload::Owned(vec![1; 4096])),
            1009,
        ),
        (
            "second hello",
            Frame::binary(Payload::Owned(hello_bytes())),
            1002,
        ),
        (
            "a message the room's game cannot decode",
            Frame::binary(Payload::Owned(vec![1, 1, 1, 7])),
            1007,
        ),
    ];
    for (what, frame, code) in bad {
        let (mut conn, _) = server.join().await;
        conn.send_frame(frame).await.unwrap();
        assert_eq!(close_code(&mut conn).await, code, "{what}");
        still_playing(&mut bystander, &mut seq).await;
    }

    // Before Hello, too: an input first is out of order.
    let mut conn = server.connect().await;
    input(&mut conn, 1, 0, 0).await;
    assert_eq!(close_code(&mut conn).await, 1002);

    // A fragmented message that grows past the limit.
    let (mut conn, _) = server.join().await;
    conn.send_frame(Frame::new(
        false,
        OpCode::Binary,
        None,
        Payload::Owned(vec![1; 600]),
    ))
    .await
    .unwrap();
    conn.send_frame(Frame::new(
        true,
        OpCode::Continuation,
        None,
        Payload::Owned(vec![1; 600]),
    ))
    .await
    .unwrap();
    assert_eq!(close_code(&mut conn).await, 1009);

    // A message split into fragments within the limit is fine: a game
    // message (1), seq 1, two bytes of data, then the move (0, 0).
    let (mut conn, _) = server.join().await;
    conn.send_frame(Frame::new(
        false,
        OpCode::Binary,
        None,
        Payload::Owned(vec![1, 1, 2]),
    ))
    .await
    .unwrap();
    conn.send_frame(Frame::new(
        true,
        OpCode::Continuation,
        None,
        Payload::Owned(vec![0, 0]),
    ))
    .await
    .unwrap();
    snapshot_where(&mut conn, "fragmented input acked", |s| s.ack == 1).await;

    still_playing(&mut bystander, &mut seq).await;
    assert!(
        server
            .metric(
                "game_closes_total{initiator=\"server\",code=\"1007\",reason=\"invalid_payload\"}"
            )
            .await
            >= 2.0
    );
}

#[tokio::test]
async fn version_mismatch_is_refused_with_4000() {
    let server = start(&[]).await;
    let mut conn = server.connect().await;
    conn.send(&ClientMsg::Hello(protocol::Hello {
        version: 99,
        resume: None,
        room: RoomRequest::quick("arena"),
    }))
    .await
    .unwrap();
    assert_eq!(close_code(&mut conn).await, 4000);
    assert_eq!(server.metric("game_players").await, 0.0);
}

#[tokio::test]
async fn a_client_that_sends_no_hello_is_closed_at_the_handshake_timeout() {
    let server = start(&["--handshake-timeout", "300ms"]).await;
    let mut conn = server.connect().await;
    assert_eq!(close_code(&mut conn).await, 4008);
}

#[tokio::test]
async fn a_silent_client_is_closed_at_the_idle_timeout() {
    // Server pings are far apart so that the client's automatic pong cannot
    // count as activity during the test.
    let server = start(&["--idle-timeout", "1s", "--ping-interval", "1h"]).await;
    let (mut silent, _) = server.join().await;
    let (mut talker, _) = server.join().await;
    let started = Instant::now();
    let talking = async {
        let mut seq = 0;
        // Keeps talking past the silent one's deadline: it must survive.
        while started.elapsed() < Duration::from_millis(2500) {
            still_playing(&mut talker, &mut seq).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (code, ()) = tokio::join!(close_code(&mut silent), talking);
    assert_eq!(code, 4005);
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn server_pings_keep_a_reading_client_alive() {
    let server = start(&["--idle-timeout", "1s", "--ping-interval", "200ms"]).await;
    let (mut conn, _) = server.join().await;
    // The client sends nothing but answers pings while it reads.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        next_snapshot(&mut conn).await.expect("still connected");
    }
}

#[tokio::test]
async fn an_input_flood_is_dropped_then_disconnected() {
    let server = start(&["--max-inputs-per-sec", "20"]).await;
    let (mut bystander, _) = server.join().await;
    let (flooder, _) = server.join().await;
    let (mut reader, mut writer) = flooder.split();
    let flood = async move {
        let mut seq = 0u32;
        loop {
            for _ in 0..10 {
                seq += 1;
                let msg = game_msg(seq, 1, 1);
                if writer.send(&msg).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let closed = async {
        within("flood close", async {
            loop {
                match reader.recv().await {
                    Ok(client::Event::Closed { code, .. }) => return code,
                    Ok(_) => {}
                    Err(ClientError::Closed { code, .. }) => return code,
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .await
    };
    let code = tokio::select! {
        code = closed => code,
        () = flood => panic!("the flood writer stopped before the close"),
    };
    assert_eq!(code, 4003);
    assert!(
        server
            .metric("game_inputs_dropped_total{reason=\"rate_limit\"}")
            .await
            > 100.0
    );
    let mut seq = 0;
    still_playing(&mut bystander, &mut seq).await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_off_without_stalling_the_room() {
    // A crowded field seen whole: each snapshot is about 100 KB, so a
    // client that never reads fills its socket buffers in about a second.
    let server = start(&[
        "--world-width",
        "1000",
        "--world-height",
        "1000",
        "--view-radius",
        "1500",
        "--pickups",
        "12000",
        "--slow-timeout",
        "1s",
    ])
    .await;
    let rss = || async { server.metric("process_resident_memory_bytes").await };
    let (mut player, _) = server.join().await;
    let (stuck, _) = server.join().await;
    let rss_before = rss().await;

    // The player keeps reading and playing the whole time.
    let started = Instant::now();
    let mut seq = 0;
    let mut snapshots = 0u32;
    let mut last_tick = next_snapshot(&mut player).await.unwrap().tick;
    let mut ticks_seen = 0;
    while started.elapsed() < Duration::from_secs(4) {
        seq += 1;
        input(&mut player, seq, 5, 5).await;
        let s = next_snapshot(&mut player).await.unwrap();
        ticks_seen += s.tick - last_tick;
        last_tick = s.tick;
        snapshots += 1;
    }
    let skipped = server.metric("game_states_skipped_total").await;
    assert!(
        skipped > 0.0,
        "the stuck client's snapshots were skipped, not queued"
    );
    server
        .wait_metric(
            "game_closes_total{initiator=\"server\",code=\"4004\",reason=\"too_slow\"}",
            |v| v >= 1.0,
        )
        .await;
    // About 120 ticks passed; the room must not have stalled behind the
    // stuck socket (a stall would show as a gap in the ticks we saw).
    assert!(ticks_seen >= 60, "room ticked {ticks_seen} times in 4 s");
    // Nor slowed its send rate down for the player who reads: the stuck
    // client's skipped states are its own slowness, not an overload.
    assert_eq!(server.metric("game_send_rate_lowered_total").await, 0.0);
    assert_eq!(server.metric("game_rooms_degraded").await, 0.0);
    assert!(snapshots >= 30, "player got {snapshots} snapshots in 4 s");
    let growth = rss().await - rss_before;
    assert!(
        growth < 64.0 * 1024.0 * 1024.0,
        "memory grew by {growth} bytes"
    );
    drop(stuck);
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_with_4006() {
    let server = start(&["--max-connections", "2"]).await;
    let (_a, _) = server.join().await;
    let (_b, _) = server.join().await;
    let mut c = server.connect().await;
    assert_eq!(close_code(&mut c).await, 4006);
    assert_eq!(server.metric("game_connections_refused_total").await, 1.0);
    drop(_a);
    server
        .wait_metric("game_connections_open", |v| v == 1.0)
        .await;
    let (_c, _) = server.join().await;
}

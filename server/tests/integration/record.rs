//! Recording rooms with `--record` and replaying them: a played arena room
//! (joins, moves, a drop and resume, a leave, a restart from the state
//! file) verifies hash for hash and keyframe for keyframe; one changed
//! input makes the replay diverge at exactly the tick it entered; a game
//! that panics closes only its own room with 1011, and its recording
//! reproduces the panic.

use crate::common::*;
use crate::restart::{node, scratch};
use game_api::{Ctx, Game, PlayerId, RoomOptions, RoomType};
use protocol::RoomRequest;
use server::record::format::{self, EndKind, Record, Recording};
use server::record::replay::{ReplayFailure, replay};
use std::path::Path;

/// Every recording in `dir`, read, oldest first.
fn recordings(dir: &Path) -> Vec<(String, Recording)> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .expect("the record directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "replay"))
        .collect();
    found.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    found
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let rec = format::read(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, rec)
        })
        .collect()
}

#[tokio::test]
async fn a_played_arena_room_replays_hash_for_hash_and_a_changed_input_diverges_at_its_tick() {
    let dir = scratch("record-arena");
    let record = dir.join("replays");
    let state = dir.join("game.state");
    let record_arg = record.to_str().unwrap();
    let mut args = vec![
        "--record",
        record_arg,
        "--record-keyframe-every",
        "1s",
        "--room-capacity",
        "4",
    ];
    args.extend_from_slice(&SCORING);
    let server = node("127.0.0.1:0", &state, &args).await;
    let addr = server.addr.to_string();

    // Three players move; one drops and resumes, one leaves.
    let mut players = Vec::new();
    for (dx, dy) in [(127, 90), (-127, 60), (40, -127)] {
        let (mut conn, w) = server.join().await;
        input(&mut conn, 1, dx, dy).await;
        players.push((conn, w));
    }
    for (conn, w) in &mut players {
        let id = w.player_id;
        snapshot_where(conn, "a score", |s| own(s, id).is_some_and(|e| e.score > 0)).await;
    }
    let (dropped, w0) = players.remove(0);
    drop(dropped);
    server
        .wait_metric("game_players_dropped", |v| v == 1.0)
        .await;
    let mut back = server.connect().await;
    back.resume(w0.resume_token, 0).await.expect("resume");
    input(&mut back, 2, -60, -60).await;
    snapshot_where(&mut back, "the move acked", |s| s.ack == 2).await;
    let (mut leaver, _) = players.remove(0);
    leaver.close(1000, "bye").await.unwrap();
    server.wait_metric("game_players", |v| v == 2.0).await;
    // Long enough for a keyframe after the first one.
    for seq in 3..40 {
        input(&mut back, seq, if seq % 2 == 0 { 100 } else { -100 }, 20).await;
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
    snapshot_where(&mut back, "the last move acked", |s| s.ack == 39).await;
    assert!(server.stop().await, "a clean stop");

    // The restored room records on, into a file of its own.
    let server = node(&addr, &state, &args).await;
    let mut again = server.connect().await;
    again.resume(w0.resume_token, 0).await.expect("resume");
    input(&mut again, 40, 127, 127).await;
    snapshot_where(&mut again, "a move after the restart", |s| s.ack == 40).await;
    for _ in 0..10 {
        next_snapshot(&mut again).await.unwrap();
    }
    assert!(server.stop().await, "a clean stop");

    let files = recordings(&record);
    assert_eq!(files.len(), 2, "one recording per room run: {files:?}");
    let (types, _) = games(&SCORING);
    let (first_name, first) = &files[0];
    assert!(!first.header.restored);
    assert_eq!(first.header.room_type, "arena");
    assert_eq!(first.end(), Some((EndKind::Stopped, "")));
    let report = replay(&types, first, true).unwrap_or_else(|e| panic!("{first_name}: {e}"));
    assert_eq!(report.players, 3);
    assert!(report.messages >= 40, "{report:?}");
    assert!(report.keyframes >= 2, "the start and at least one more");
    assert_eq!(
        report.hashes,
        u64::from(report.ticks.1),
        "a hash every tick"
    );
    assert!(report.gaps.is_empty());

    let (second_name, second) = &files[1];
    assert!(second.header.restored);
    assert_eq!(second.header.start_tick, report.ticks.1);
    let report2 = replay(&types, second, true).unwrap_or_else(|e| panic!("{second_name}: {e}"));
    assert!(report2.ticks.1 > report2.ticks.0 + 10);
    assert!(report2.messages >= 1);

    // The replay was made from the recording, not from these flags: the
    // default arena replays it just as well.
    let (defaults, _) = games(&[]);
    replay(&defaults, first, true).expect("the recording carries the arena's configuration");

    // One move changed: the replay diverges at the step that took it.
    let mut chunks = first.decode();
    let mut tick = first.header.start_tick;
    let mut target = None;
    'find: for (_, records) in &mut chunks {
        for record in records {
            match record {
                Record::Input(game_api::replay::Input::Step) => tick += 1,
                Record::Input(game_api::replay::Input::Message { data, seq, .. }) if *seq == 20 => {
                    let mut other = Vec::new();
                    game_api::codec::encode(&arena::msg::Move { dx: 0, dy: 0 }, &mut other);
                    assert_ne!(*data, other, "the recorded move is a moving one");
                    *data = other;
                    target = Some(tick + 1);
                    break 'find;
                }
                _ => {}
            }
        }
    }
    let target = target.expect("message 20 is in the recording");
    let changed = format::read(&format::write(&first.header, &chunks)).unwrap();
    match replay(&types, &changed, true) {
        Err(ReplayFailure::Diverged { tick, what }) => {
            assert_eq!(tick, target, "{what}");
            assert!(what.contains("hashes to"), "{what}");
        }
        other => panic!("expected a divergence at tick {target}, got {other:?}"),
    }
    // Without --verify nothing is compared.
    assert!(replay(&types, &changed, false).is_ok());
}

/// A game that panics when a player sends `true`.
struct Fragile(u32);

impl Game for Fragile {
    type Config = ();
    type Message = bool;
    type Event = ();

    fn create(_: &(), _: &RoomOptions, _: u64) -> Result<Self, String> {
        Ok(Self(0))
    }
    fn restore(_: &(), _: &RoomOptions, saved: &[u8]) -> Result<Self, String> {
        let bytes = saved.try_into().map_err(|_| "four bytes".to_owned())?;
        Ok(Self(u32::from_le_bytes(bytes)))
    }
    fn save(&self) -> Vec<u8> {
        self.0.to_le_bytes().to_vec()
    }
    fn join(&mut self, _: PlayerId, _: &mut Ctx<'_, ()>) {}
    fn leave(&mut self, _: PlayerId, _: &mut Ctx<'_, ()>) {}
    fn step(&mut self, messages: &[(PlayerId, bool)], _: &mut Ctx<'_, ()>) {
        for (player, boom) in messages {
            if *boom {
                // A panic as `assert!` makes one, but past the panic hook:
                // with RUST_BACKTRACE set, the default hook resolves a
                // backtrace, some 180 MB of this test process's memory,
                // which `hostile.rs` measures. The room and the replay
                // catch both kinds alike.
                std::panic::resume_unwind(Box::new(format!("player {player} broke the game")));
            }
            self.0 += 1;
        }
    }
    fn state(&mut self, _: PlayerId, out: &mut Vec<u8>) {
        game_api::codec::encode(&self.0, out);
    }
}

#[tokio::test]
async fn a_panicking_game_closes_only_its_room_and_its_recording_reproduces_the_panic() {
    let dir = scratch("record-panic");
    let record = dir.join("replays");
    let (mut types, _) = games(&[]);
    types.push(RoomType::new::<Fragile>("fragile", ()).capacity(2));
    let server = TestServer::start(
        types.clone(),
        &["--record", record.to_str().unwrap(), "--resume-grace", "1s"],
    )
    .await;
    let (mut arena_player, w) = server.join().await;
    let (mut a, _) = server.join_with(RoomRequest::quick("fragile")).await;
    let (mut b, _) = server.join_with(RoomRequest::quick("fragile")).await;
    a.send_game(1, &false).await.unwrap();
    a.send_game(2, &false).await.unwrap();
    next_state_where(&mut a, |s| s.ack == 2).await;
    b.send_game(1, &true).await.unwrap();
    assert_eq!(close_code(&mut a).await, 1011);
    assert_eq!(close_code(&mut b).await, 1011);
    assert_eq!(server.metric("game_room_panics_total").await, 1.0);
    // The arena next door plays on.
    input(&mut arena_player, 1, 10, 0).await;
    snapshot_where(&mut arena_player, "the arena plays on", |s| s.ack == 1).await;
    assert_eq!(server.metric("game_rooms").await, 1.0);
    assert_eq!(server.metric("game_players").await, 1.0);
    let _ = w;
    assert!(server.stop().await);

    let files = recordings(&record);
    let (_, fragile) = files
        .iter()
        .find(|(_, r)| r.header.room_type == "fragile")
        .expect("the fragile room's recording");
    let (kind, message) = fragile.end().expect("an end");
    assert_eq!(kind, EndKind::Panicked);
    assert!(message.contains("broke the game"), "{message}");
    let report = replay(&types, fragile, true).expect("the panic reproduces");
    let reproduced = report.panic.expect("the replay panicked too");
    assert!(reproduced.contains("broke the game"), "{reproduced}");
    assert_eq!(report.messages, 3);

    // A recording whose panic is gone (the game fixed, say) says so.
    let mut chunks = fragile.decode();
    for (_, records) in &mut chunks {
        for record in records {
            if let Record::Input(game_api::replay::Input::Message { data, .. }) = record {
                *data = game_api::codec::to_vec(&false);
            }
        }
    }
    let fixed = format::read(&format::write(&fragile.header, &chunks)).unwrap();
    assert!(matches!(
        replay(&types, &fixed, true),
        Err(ReplayFailure::NotReproduced(m)) if m.contains("broke the game")
    ));
}

/// Reads states until one passes `pred`.
async fn next_state_where(
    conn: &mut client::Connection,
    pred: impl Fn(&protocol::State) -> bool,
) -> protocol::State {
    within("a state", async {
        loop {
            let s = conn.next_state().await.expect("connected");
            if pred(&s) {
                return s;
            }
        }
    })
    .await
}

/// A POST to the server, over real HTTP: status and body.
async fn http_post(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Reads states until one passes `pred`; returns it.
async fn state_where(
    conn: &mut client::Connection,
    what: &str,
    pred: impl Fn(&protocol::State) -> bool,
) -> protocol::State {
    within(what, async {
        loop {
            let s = conn.next_state().await.expect("connected");
            if pred(&s) {
                return s;
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_recording_plays_to_a_viewer_socket_which_pauses_seeks_and_follows() {
    let dir = scratch("record-viewer");
    let record = dir.join("replays");
    let (types, rest) = games(&SCORING);
    let mut args = rest.clone();
    args.extend([
        "--record",
        record.to_str().unwrap(),
        "--record-keyframe-every",
        "1s",
    ]);
    let server = TestServer::start(types, &args).await;
    let (mut a, wa) = server.join().await;
    let (mut b, wb) = server.join().await;
    input(&mut a, 1, 127, 90).await;
    input(&mut b, 1, -127, 60).await;
    for _ in 0..90 {
        next_snapshot(&mut a).await.unwrap();
    }
    a.close(1000, "bye").await.unwrap();
    b.close(1000, "bye").await.unwrap();
    server.wait_metric("game_rooms", |v| v == 0.0).await;
    server
        .wait_metric("game_recordings_open", |v| v == 0.0)
        .await;

    let (status, list) = http_get(server.addr, "/replays").await;
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let id = list[0]["id"].as_str().expect("a recording").to_owned();
    let (status, info) = http_get(server.addr, &format!("/replay/{id}/info")).await;
    assert_eq!(status, 200, "{info}");
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["room_type"], "arena");
    assert_eq!(info["page"], "/arena/");
    let end = info["end_tick"].as_u64().unwrap() as u32;
    assert!(end >= 90, "{info}");
    let players: Vec<u64> = info["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        players,
        vec![u64::from(wa.player_id), u64::from(wb.player_id)]
    );
    let (status, page) = http_get(server.addr, &format!("/replay/{id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("replay.js"), "the viewer page");
    assert_eq!(http_get(server.addr, "/replay/..%2Fetc/info").await.0, 404);

    // The viewer's socket: the followed player's Welcome, then its states
    // from tick 10 on, four times the room's pace.
    let url = |follow: u32| {
        format!(
            "ws://{}/replay/{id}/ws?stream=v1&follow={follow}&from=10&speed=4",
            server.addr
        )
    };
    let mut viewer = client::connect(&url(wb.player_id)).await.unwrap();
    let welcome = viewer
        .join(RoomRequest::quick("arena"))
        .await
        .expect("a viewer's Welcome");
    assert_eq!(welcome.player_id, wb.player_id);
    assert_eq!(welcome.room_id, wb.room_id);
    let first = state_where(&mut viewer, "the first state", |_| true).await;
    assert_eq!(first.tick, 10);
    let snapshot = Snapshot::from_state(&first);
    assert!(own(&snapshot, wb.player_id).is_some(), "b's own view");
    state_where(&mut viewer, "tick 40", |s| s.tick >= 40).await;
    // Its own game messages and pings: ignored and answered.
    viewer
        .send_game(1, &arena::msg::Move { dx: 1, dy: 1 })
        .await
        .unwrap();

    // Pause: the stream stays where it is.
    let (status, control) = http_post(server.addr, "/replay/stream/v1?pause=1").await;
    assert_eq!(status, 200, "{control}");
    let control: serde_json::Value = serde_json::from_str(&control).unwrap();
    assert_eq!(control["paused"], true);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, now) = http_get(server.addr, "/replay/stream/v1").await;
    let paused_at: serde_json::Value = serde_json::from_str(&now).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, later) = http_get(server.addr, "/replay/stream/v1").await;
    let later: serde_json::Value = serde_json::from_str(&later).unwrap();
    assert_eq!(paused_at["tick"], later["tick"], "paused");

    // Seek back to tick 5 and play: the next state is tick 5, then on.
    let (status, _) = http_post(server.addr, "/replay/stream/v1?seek=5&pause=0").await;
    assert_eq!(status, 200);
    state_where(&mut viewer, "tick 5 after the seek", |s| s.tick == 5).await;
    state_where(&mut viewer, "tick 6", |s| s.tick == 6).await;

    // Following the other player: a new socket on the same stream goes on
    // where it is, with a's view.
    drop(viewer);
    let (status, at) = http_get(server.addr, "/replay/stream/v1").await;
    assert_eq!(status, 200);
    let at: serde_json::Value = serde_json::from_str(&at).unwrap();
    let mut viewer = client::connect(&url(wa.player_id)).await.unwrap();
    let welcome = viewer.join(RoomRequest::quick("arena")).await.unwrap();
    assert_eq!(welcome.player_id, wa.player_id);
    let s = state_where(&mut viewer, "a state", |_| true).await;
    assert!(
        s.tick >= at["tick"].as_u64().unwrap() as u32,
        "goes on, not from the start"
    );
    assert!(own(&Snapshot::from_state(&s), wa.player_id).is_some());

    // To the end: the socket is closed with 1000.
    http_post(server.addr, &format!("/replay/stream/v1?seek={}", end - 3)).await;
    assert_eq!(close_code(&mut viewer).await, 1000);
    // A player not in the recording, and a recording that is not there.
    let mut nobody = client::connect(&url(999)).await.unwrap();
    assert!(nobody.join(RoomRequest::quick("arena")).await.is_err());
    let mut missing = client::connect(&format!("ws://{}/replay/nope/ws", server.addr))
        .await
        .unwrap();
    assert!(missing.join(RoomRequest::quick("arena")).await.is_err());
}

#[tokio::test]
async fn a_spectator_sees_the_followed_players_states_without_taking_a_seat() {
    let (mut types, rest) = games(&[]);
    types.push(RoomType::new::<Fragile>("fragile", ()).capacity(2));
    let server = TestServer::start(types, &rest).await;
    let (mut a, wa) = server.join().await;
    let (_b, wb) = server.join().await;
    assert_eq!(wa.room_id, wb.room_id);
    let watch = |query: &str| format!("ws://{}/watch/{}/ws{query}", server.addr, wa.room_id);

    // By default the lowest player id; `follow` picks another.
    let mut spectator = client::connect(&watch("")).await.unwrap();
    let w = spectator.join(RoomRequest::quick("arena")).await.unwrap();
    assert_eq!(w.player_id, wa.player_id.min(wb.player_id));
    let mut follower = client::connect(&watch(&format!("?follow={}", wb.player_id)))
        .await
        .unwrap();
    let w = follower.join(RoomRequest::quick("arena")).await.unwrap();
    assert_eq!(w.player_id, wb.player_id);
    assert_eq!(w.resume_token.0, [0; 16], "nothing to resume");
    server.wait_metric("game_spectators", |v| v == 2.0).await;
    assert_eq!(server.metric("game_players").await, 2.0, "no seat taken");

    // The spectator's states are a's, moves and acks included.
    input(&mut a, 1, 127, 0).await;
    let seen = state_where(&mut spectator, "a's ack", |s| s.ack == 1).await;
    assert!(own(&Snapshot::from_state(&seen), wa.player_id).is_some());
    // Its game messages go nowhere.
    spectator
        .send_game(7, &arena::msg::Move { dx: -1, dy: 0 })
        .await
        .unwrap();
    let later = state_where(&mut spectator, "later states", |s| s.tick > seen.tick + 5).await;
    assert_eq!(later.ack, 1, "a's ack, not the spectator's message");

    // When the followed player leaves, its spectators are told.
    a.close(1000, "bye").await.unwrap();
    assert_eq!(close_code(&mut spectator).await, 4015);
    drop(follower);
    server.wait_metric("game_spectators", |v| v == 0.0).await;

    // Rooms of types that do not allow spectators, and private rooms, are
    // not watched.
    let refused = async |room: u32| {
        let url = format!("ws://{}/watch/{room}/ws", server.addr);
        let mut watcher = client::connect(&url).await.unwrap();
        match watcher.join(RoomRequest::quick("arena")).await {
            Err(client::ClientError::Closed { code, .. }) => code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    let (_f, wf) = server.join_with(RoomRequest::quick("fragile")).await;
    assert_eq!(refused(wf.room_id).await, 4014);
    let (_p, wp) = server
        .join_with(RoomRequest::Create {
            room_type: "arena".into(),
            options: Vec::new(),
            private: true,
        })
        .await;
    assert_eq!(refused(wp.room_id).await, 4013);
}

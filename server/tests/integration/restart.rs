//! Planned restarts with `--state-file`: a graceful stop closes clients
//! with 1012 and saves rooms and sessions; the next server on the same
//! address restores them, and clients resume their own players with their
//! positions and scores. Also what is not kept: sessions not resumed within
//! the grace period, a room whose world does not restore, a corrupt file
//! (set aside), and a crash (nothing saved).

use crate::common::*;
use arena::msg::{Entity, EntityKind};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The grace period of the server restarted in
/// `grace_runs_from_the_restart_and_an_unresumed_session_is_then_removed`.
/// Its session must be resumed within it after the restart, on a machine
/// that may be loaded (1.5 s, the grace it had before, could flake
/// there). A longer grace costs the test its length twice over (the drop
/// before the restart must outlast it, and the session nobody resumes is
/// waited for until it ends), but never a failure.
const RESTORED_GRACE: Duration = Duration::from_secs(5);

/// Starts a server on `listen` with `--state-file state` and `args`.
pub(crate) async fn node(listen: &str, state: &Path, args: &[&str]) -> TestServer {
    let mut argv = vec!["--state-file", state.to_str().expect("a UTF-8 temp path")];
    argv.extend_from_slice(args);
    start_on(listen, &argv).await
}

/// A fresh directory for one test's state files.
pub(crate) fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("restart-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test's temp dir");
    dir
}

/// The pickups in a snapshot, in a comparable order.
fn pickups(s: &Snapshot) -> Vec<Entity> {
    let mut p: Vec<Entity> = s
        .entities
        .iter()
        .copied()
        .filter(|e| e.kind == EntityKind::Pickup)
        .collect();
    p.sort_unstable_by_key(|e| e.id);
    p
}

#[tokio::test]
async fn a_planned_restart_keeps_every_player_with_its_position_and_score() {
    let dir = scratch("planned");
    let path = dir.join("game.state");
    // Rooms of two, so that three players make two rooms.
    let mut args = vec!["--seed", "7", "--room-capacity", "2"];
    args.extend_from_slice(&SCORING);
    let first = node("127.0.0.1:0", &path, &args).await;
    let addr = first.addr.to_string();

    // Three players (two rooms of two), each moving its own way until it
    // scores, then standing still so that nothing changes before the stop.
    let mut players = Vec::new();
    for (dx, dy) in [(127, 90), (-127, 60), (40, -127)] {
        let (mut conn, w) = first.join().await;
        input(&mut conn, 1, dx, dy).await;
        players.push((conn, w));
    }
    for (conn, w) in &mut players {
        let id = w.player_id;
        snapshot_where(conn, "a score", |s| own(s, id).is_some_and(|e| e.score > 0)).await;
        input(conn, 2, 0, 0).await;
    }
    let mut all_stopped = 0;
    for (conn, _) in &mut players {
        let s = snapshot_where(conn, "the stop acked", |s| s.ack == 2).await;
        all_stopped = all_stopped.max(s.tick);
    }
    // Snapshots from after every player stopped: nothing changes from here
    // to the restart, not even pickups a passing player could have taken.
    let mut before = Vec::new();
    for (conn, _) in &mut players {
        before.push(snapshot_where(conn, "a still world", |s| s.tick > all_stopped).await);
    }
    assert_eq!(players[0].1.room_id, players[1].1.room_id);
    assert_ne!(players[0].1.room_id, players[2].1.room_id);

    let stopping = tokio::spawn(first.stop());
    for (conn, _) in &mut players {
        assert_eq!(close_code(conn).await, 1012, "service restart: resume");
    }
    assert!(stopping.await.unwrap(), "a clean stop that saved its state");
    assert!(path.exists(), "the state file is written");

    // Another seed, to show that the worlds come from the file.
    let mut args = vec!["--seed", "8", "--room-capacity", "2"];
    args.extend_from_slice(&SCORING);
    let second = node(&addr, &path, &args).await;
    assert!(!path.exists(), "a restored file is set aside");
    assert!(dir.join("game.state.restored").exists());
    assert_eq!(second.metric("game_sessions_restored_total").await, 3.0);
    assert_eq!(second.metric("game_players").await, 3.0);
    assert_eq!(second.metric("game_players_dropped").await, 3.0);
    assert_eq!(second.metric("game_rooms").await, 2.0);

    let mut resumed = Vec::new();
    for ((_, w), before) in players.iter().zip(&before) {
        let (mut conn, w2) = second
            .resume(w.resume_token)
            .await
            .expect("the token resumes after the restart");
        assert!(w2.resumed);
        assert_eq!((w2.player_id, w2.room_id), (w.player_id, w.room_id));
        assert_eq!(w2.resume_token, w.resume_token);
        let after = next_snapshot(&mut conn).await.expect("snapshot");
        let (old, new) = (
            own(before, w.player_id).unwrap(),
            own(&after, w.player_id).unwrap(),
        );
        assert_eq!(
            (new.kind, new.x, new.y, new.score),
            (EntityKind::Player, old.x, old.y, old.score),
            "player {}",
            w.player_id
        );
        assert!(new.score > 0);
        assert_eq!(after.ack, 2, "the ack survives the restart");
        assert!(after.tick > before.tick, "tick numbers go on rising");
        assert_eq!(pickups(&after), pickups(before), "the same world around it");
        resumed.push(conn);
    }
    assert_eq!(second.metric("game_players_dropped").await, 0.0);
    assert_eq!(second.metric("game_resumes_total").await, 3.0);

    // Ids are never reused: a new player gets a fresh id, fills the room
    // with space, and the next one opens a room with a fresh id.
    let (_c4, w4) = second.join().await;
    assert!(w4.player_id > 3, "player id {}", w4.player_id);
    assert_eq!(w4.room_id, players[2].1.room_id);
    let (_c5, w5) = second.join().await;
    assert!(w5.room_id > players[2].1.room_id, "room id {}", w5.room_id);
    // And the resumed players play on.
    input(&mut resumed[0], 3, 0, 127).await;
    snapshot_where(&mut resumed[0], "an input after the restart", |s| {
        s.ack == 3
    })
    .await;
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn grace_runs_from_the_restart_and_an_unresumed_session_is_then_removed() {
    let dir = scratch("grace");
    let path = dir.join("game.state");
    let first = node("127.0.0.1:0", &path, &["--resume-grace", "1h"]).await;
    let addr = first.addr.to_string();
    let (mut kept, wk) = first.join().await;
    let (mut gone, wg) = first.join().await;
    next_snapshot(&mut kept).await.expect("snapshot");
    // `wk` drops before the restart, for longer than the grace period the
    // second server has; its grace must start over at the restart.
    drop(kept);
    first
        .wait_metric("game_players_dropped", |v| v == 1.0)
        .await;
    tokio::time::sleep(RESTORED_GRACE + Duration::from_millis(500)).await;
    let stopping = tokio::spawn(first.stop());
    assert_eq!(close_code(&mut gone).await, 1012);
    assert!(stopping.await.unwrap());

    let grace = humantime::format_duration(RESTORED_GRACE).to_string();
    let second = node(&addr, &path, &["--resume-grace", &grace]).await;
    assert_eq!(second.metric("game_sessions_restored_total").await, 2.0);
    let (_conn, w) = second
        .resume(wk.resume_token)
        .await
        .expect("dropped for longer than the grace before the restart, resumed after it");
    assert_eq!(w.player_id, wk.player_id);
    assert_eq!(second.metric("game_players").await, 2.0, "the other waits");
    // The session nobody resumes ends with its grace period.
    second.wait_metric("game_players", |v| v == 1.0).await;
    assert_eq!(second.resume(wg.resume_token).await.err(), Some(4002));
    assert_eq!(second.metric("game_resumes_refused_total").await, 1.0);
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_room_whose_world_cannot_be_restored_loses_only_its_own_sessions() {
    let dir = scratch("bad-room");
    let path = dir.join("game.state");
    let first = node("127.0.0.1:0", &path, &["--room-capacity", "1"]).await;
    let addr = first.addr.to_string();
    let (mut a, wa) = first.join().await;
    let (mut b, wb) = first.join().await;
    assert_ne!(wa.room_id, wb.room_id);
    let stopping = tokio::spawn(first.stop());
    assert_eq!(close_code(&mut a).await, 1012);
    assert_eq!(close_code(&mut b).await, 1012);
    assert!(stopping.await.unwrap());

    // The file is sound, but the world of A's room is not.
    let mut saved = server::state::read(&path).unwrap().expect("saved");
    assert_eq!(saved.rooms.len(), 2);
    let room_a = saved.rooms.iter_mut().find(|r| r.id == wa.room_id).unwrap();
    room_a.game = vec![1, 0xFF];
    server::state::write(&path, &saved).unwrap();

    let second = node(&addr, &path, &["--room-capacity", "1"]).await;
    assert_eq!(second.metric("game_sessions_restored_total").await, 1.0);
    assert_eq!(second.metric("game_rooms").await, 1.0);
    assert_eq!(second.resume(wa.resume_token).await.err(), Some(4002));
    let (_b, w) = second
        .resume(wb.resume_token)
        .await
        .expect("B's room is fine");
    assert_eq!((w.player_id, w.room_id), (wb.player_id, wb.room_id));
    // A's room id is not handed out again either.
    let (_c, wc) = second.join().await;
    assert!(
        wc.room_id > wa.room_id.max(wb.room_id),
        "room {}",
        wc.room_id
    );
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_corrupt_state_file_is_set_aside_and_the_server_starts_empty() {
    let dir = scratch("corrupt");
    let path = dir.join("game.state");
    let mut wrong_version = server::state::MAGIC.to_vec();
    wrong_version.extend_from_slice(&(server::state::FORMAT_VERSION + 1).to_le_bytes());
    let mut truncated = server::state::MAGIC.to_vec();
    truncated.extend_from_slice(&server::state::FORMAT_VERSION.to_le_bytes());
    truncated.extend_from_slice(&[0x80, 0x01]);
    let cases: [(&str, &[u8]); 4] = [
        ("empty", b""),
        ("not a state file", b"{\"rooms\": [1, 2, 3]}\n"),
        ("another format version", &wrong_version),
        ("a truncated body", &truncated),
    ];
    for (what, bytes) in cases {
        std::fs::write(&path, bytes).unwrap();
        let server = node("127.0.0.1:0", &path, &[]).await;
        assert!(!path.exists(), "{what}: set aside");
        let aside = dir.join("game.state.corrupt");
        assert_eq!(
            std::fs::read(&aside).unwrap(),
            bytes,
            "{what}: kept as it was"
        );
        assert_eq!(server.metric("game_sessions_restored_total").await, 0.0);
        assert_eq!(server.metric("game_rooms").await, 0.0, "{what}");
        let (mut conn, w) = server.join().await;
        assert_eq!(w.player_id, 1, "{what}: a fresh start");
        next_snapshot(&mut conn).await.expect("the server plays");
        server.kill().await;
        std::fs::remove_file(&aside).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_crash_loses_the_sessions_of_that_process() {
    let dir = scratch("crash");
    let path = dir.join("game.state");
    let first = node("127.0.0.1:0", &path, &[]).await;
    let addr = first.addr.to_string();
    let (mut conn, w) = first.join().await;
    next_snapshot(&mut conn).await.expect("snapshot");
    first.kill().await;
    drop(conn);
    assert!(!path.exists(), "a crash writes nothing");

    let second = node(&addr, &path, &[]).await;
    assert_eq!(second.metric("game_sessions_restored_total").await, 0.0);
    assert_eq!(
        second.resume(w.resume_token).await.err(),
        Some(4002),
        "the documented limit: the client must join anew"
    );
    let (_conn, w2) = second.join().await;
    assert!(!w2.resumed);
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Clusters: nodes sharing a room directory in a real `redis-server`
//! (started on a free port). Redirects with seat tickets (joins by code,
//! by id, quick joins and creates that land on another node), the listing
//! across nodes, forged and replayed tickets, how the least-loaded node is
//! chosen, a node killed with SIGKILL (a real process), a planned stop
//! that drains and restores, and Redis stopped and started again.

use crate::common::*;
use client::{ClientError, Connection, Event};
use protocol::{ClientMsg, CloseCode, Hello, Redirect, RoomRequest, SeatTicket, ServerMsg};
use redis::AsyncCommands;
use server::directory::{HEARTBEAT, NODE_TTL, NODES_CACHE};
use server::testing::TestRedis;
use std::time::{Duration, Instant};

/// A node with the built-in games on `redis`.
async fn node(redis: &TestRedis, args: &[&str]) -> TestServer {
    let (types, rest) = games(args);
    TestServer::start_node(types, &redis.url(), &rest).await
}

/// What a `Hello` got from a node.
enum Answer {
    Welcome(Connection, protocol::Welcome),
    Redirect(Redirect, u16),
    Closed(u16),
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Welcome(_, w) => write!(f, "Welcome({w:?})"),
            Self::Redirect(r, code) => write!(f, "Redirect({r:?}) then close {code}"),
            Self::Closed(code) => write!(f, "close {code}"),
        }
    }
}

/// Connects to `url`, sends a `Hello` for `room`, and reads the answer
/// (a redirect with the close code after it).
async fn hello(url: &str, room: RoomRequest) -> Answer {
    let mut conn = client::connect(url).await.expect("connect");
    conn.send(&ClientMsg::Hello(Hello {
        version: protocol::PROTOCOL_VERSION,
        resume: None,
        room,
    }))
    .await
    .expect("send Hello");
    match within("the answer to Hello", conn.recv()).await {
        Ok(Event::Msg(ServerMsg::Welcome(w))) => Answer::Welcome(conn, w),
        Ok(Event::Msg(ServerMsg::Redirect(r))) => {
            let code = close_code(&mut conn).await;
            Answer::Redirect(r, code)
        }
        Ok(Event::Closed { code, .. }) | Err(ClientError::Closed { code, .. }) => {
            Answer::Closed(code)
        }
        other => panic!("unexpected answer to Hello: {other:?}"),
    }
}

/// A `Hello` that must be redirected; returns the redirect.
async fn redirected(url: &str, room: RoomRequest) -> Redirect {
    match hello(url, room).await {
        Answer::Redirect(r, code) => {
            assert_eq!(code, CloseCode::Redirected.code(), "4019 after a Redirect");
            r
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
}

/// A `Hello` that must be welcomed.
async fn welcomed(url: &str, room: RoomRequest) -> (Connection, protocol::Welcome) {
    match hello(url, room).await {
        Answer::Welcome(conn, w) => (conn, w),
        other => panic!("expected a Welcome, got {other:?}"),
    }
}

/// A `Hello` that must be refused with `code`.
async fn refused(url: &str, room: RoomRequest, code: CloseCode) {
    match hello(url, room).await {
        Answer::Closed(got) => assert_eq!(got, code.code(), "close code"),
        other => panic!("expected close {}, got {other:?}", code.code()),
    }
}

/// Follows a redirect: the ticket at the node it names.
async fn follow(r: &Redirect) -> (Connection, protocol::Welcome) {
    welcomed(&r.url, RoomRequest::Reserved { ticket: r.ticket }).await
}

/// The ids of the rooms `GET /rooms` lists on `node`.
async fn listed(node: &TestServer) -> Vec<u32> {
    let (status, body) = node.get("/rooms").await;
    assert_eq!(status, 200);
    let rooms: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    rooms
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["id"].as_u64().expect("an id") as u32)
        .collect()
}

/// Waits until `node`'s listing has room `id` (`present`) or has not.
async fn wait_listed_with(node: &TestServer, id: u32, present: bool) {
    within("the listing to show the room", async {
        while listed(node).await.contains(&id) != present {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// Waits until `node` lists exactly `want` (in any order).
async fn wait_listed(node: &TestServer, want: &[u32]) {
    let mut want = want.to_vec();
    want.sort_unstable();
    within("the listing to converge", async {
        loop {
            let mut got = listed(node).await;
            got.sort_unstable();
            if got == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

fn create_arena(private: bool) -> RoomRequest {
    RoomRequest::Create {
        room_type: "arena".into(),
        options: vec![],
        private,
    }
}

#[tokio::test]
async fn joins_by_code_and_by_id_are_redirected_to_the_node_that_holds_the_room() {
    let redis = TestRedis::start().await;
    let a = node(&redis, &[]).await;
    let b = node(&redis, &[]).await;

    // A private room on B (made where it is asked: the nodes are equally
    // loaded), then a public one on A (the less loaded).
    let (mut host, private) = welcomed(&b.url(), create_arena(true)).await;
    let code = private
        .invite_code
        .clone()
        .expect("a private room has a code");
    wait_listed_with(&a, private.room_id, false).await;
    tokio::time::sleep(HEARTBEAT).await;
    let (mut other, public) = welcomed(&a.url(), create_arena(false)).await;
    assert_ne!(private.room_id, public.room_id);
    wait_listed_with(&b, public.room_id, true).await;

    // Through A by code (typed loosely), through B by id: each redirected
    // to the room's node, where the ticket seats the player in that room.
    let loose = format!(" {}-{} ", &code[..4], code[4..].to_lowercase());
    let r = redirected(&a.url(), RoomRequest::JoinByCode { code: loose }).await;
    assert_eq!(r.url, b.url(), "the redirect names B's game route");
    let (mut guest, w) = follow(&r).await;
    assert_eq!(w.room_id, private.room_id);
    assert!(!w.resumed);

    let by_id = RoomRequest::JoinById {
        room_id: public.room_id,
    };
    let r2 = redirected(&b.url(), by_id.clone()).await;
    assert_eq!(r2.url, a.url());
    let (_conn, w2) = follow(&r2).await;
    assert_eq!(w2.room_id, public.room_id);

    // A ticket is single use, and a forged one is refused.
    let reserved = |r: &Redirect| RoomRequest::Reserved { ticket: r.ticket };
    refused(&b.url(), reserved(&r), CloseCode::InvalidTicket).await;
    let forged = RoomRequest::Reserved {
        ticket: SeatTicket([0x5a; 16]),
    };
    refused(&b.url(), forged, CloseCode::InvalidTicket).await;
    // A ticket is good only on the node that holds its seat: refused at
    // B, taken at A.
    let r3 = redirected(&b.url(), by_id).await;
    refused(&b.url(), reserved(&r3), CloseCode::InvalidTicket).await;
    let (_third, w3) = follow(&r3).await;
    assert_eq!(w3.room_id, public.room_id);
    assert_eq!(b.metric("game_tickets_refused_total").await, 3.0);
    assert_eq!(a.metric("game_tickets_refused_total").await, 0.0);
    assert_eq!(b.metric("game_tickets_accepted_total").await, 1.0);
    assert_eq!(a.metric("game_tickets_accepted_total").await, 2.0);
    assert_eq!(a.metric("game_redirects_total").await, 1.0);
    assert_eq!(b.metric("game_redirects_total").await, 2.0);
    assert_eq!(a.metric("game_seats_held").await, 0.0);

    // Unknown codes and ids are what they are on one node.
    let unknown = RoomRequest::JoinByCode {
        code: "ZZZZ2222".into(),
    };
    refused(&a.url(), unknown, CloseCode::NoSuchRoom).await;
    let unknown = RoomRequest::JoinById { room_id: 999_999 };
    refused(&a.url(), unknown, CloseCode::NoSuchRoom).await;

    // The redirected player plays in B's room, beside its host.
    for conn in [&mut guest, &mut host, &mut other] {
        let mut seq = 0;
        still_playing(conn, &mut seq).await;
    }
}

#[tokio::test]
async fn rooms_are_listed_and_quick_joined_across_nodes_and_new_rooms_go_to_the_least_loaded() {
    let redis = TestRedis::start().await;
    let a = node(&redis, &[]).await;
    let b = node(&redis, &[]).await;

    // A room on A, with one player; it is listed by both nodes, with A's
    // node id.
    let (_first, w) = welcomed(&a.url(), RoomRequest::quick("arena")).await;
    wait_listed(&b, &[w.room_id]).await;
    wait_listed(&a, &[w.room_id]).await;
    let (_, body) = b.get("/rooms").await;
    let rooms: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(rooms[0]["players"], 1);
    let a_node = rooms[0]["node"].as_str().expect("a node id").to_owned();

    // Quick join through B fills A's open room rather than opening one.
    let r = redirected(&b.url(), RoomRequest::quick("arena")).await;
    assert_eq!(r.url, a.url());
    let (_second, w2) = follow(&r).await;
    assert_eq!(w2.room_id, w.room_id);

    // A new room goes to the least-loaded node: B (no players), whether
    // asked of A or of B.
    let r = redirected(&a.url(), create_arena(false)).await;
    assert_eq!(r.url, b.url());
    let (_third, w3) = follow(&r).await;
    assert_ne!(w3.room_id, w.room_id);
    let (_fourth, w4) = welcomed(&b.url(), RoomRequest::quick("four")).await;
    wait_listed(&a, &[w.room_id, w3.room_id, w4.room_id]).await;

    // Private rooms are never listed, on any node.
    let (_p, private) = welcomed(&b.url(), create_arena(true)).await;
    tokio::time::sleep(HEARTBEAT).await;
    let ids = listed(&a).await;
    assert!(!ids.contains(&private.room_id));
    // Every room's id is unique across the nodes, and the listing names
    // the node that holds each.
    let (_, body) = a.get("/rooms").await;
    let rooms: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let nodes: Vec<&str> = rooms
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["node"].as_str().expect("node"))
        .collect();
    assert!(nodes.contains(&a_node.as_str()));
    assert!(nodes.iter().any(|n| *n != a_node));
}

/// Writes a node record straight into the directory, as a node would,
/// then waits out the nodes' cache of records, so that the next join sees
/// it.
async fn fake_node(redis: &TestRedis, id: &str, url: &str, draining: bool, players: u32) {
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis");
    let rooms: Vec<serde_json::Value> = (players > 0)
        .then(|| {
            serde_json::json!({
                "id": 4_000_000_000u32, "type": "four", "private": false, "locked": false,
                "players": players, "capacity": 2, "invite_code": null, "options": [],
                "metadata": {},
            })
        })
        .into_iter()
        .collect();
    let record = serde_json::json!({
        "id": id, "url": url, "draining": draining, "rooms_left": 10,
        "rooms": rooms, "written_unix_ms": 0,
    });
    let _: () = conn
        .pset_ex(format!("game:node:{id}"), record.to_string(), 60_000)
        .await
        .expect("SET");
    let _: () = conn.sadd("game:nodes", id).await.expect("SADD");
    tokio::time::sleep(NODES_CACHE).await;
}

#[tokio::test]
async fn draining_nodes_get_no_new_rooms_and_idle_ones_do() {
    let redis = TestRedis::start().await;
    let a = node(&redis, &[]).await;
    let (_p, _) = welcomed(&a.url(), RoomRequest::quick("arena")).await;

    // An idle node that drains gets nothing: the new room stays on A.
    fake_node(&redis, "draining", "ws://127.0.0.1:1/ws", true, 0).await;
    let (_c, _) = welcomed(&a.url(), create_arena(false)).await;
    // An idle node that takes rooms gets the next one.
    let b = node(&redis, &[]).await;
    tokio::time::sleep(NODES_CACHE).await;
    let r = redirected(&a.url(), create_arena(false)).await;
    assert_eq!(r.url, b.url());
    // A draining node's open room is not quick-joined either: the player
    // goes where a new room would (B: one seat held, counted once or
    // twice while its player is on the way, against A's three).
    let (_q, _) = welcomed(&a.url(), RoomRequest::quick("arena")).await;
    fake_node(&redis, "draining", "ws://127.0.0.1:1/ws", true, 1).await;
    let r = redirected(&a.url(), RoomRequest::quick("four")).await;
    assert_eq!(r.url, b.url());
}

#[tokio::test]
async fn a_redirect_holds_its_seat_until_the_ticket_is_used_or_expires() {
    let redis = TestRedis::start().await;
    let a = node(&redis, &[]).await;
    let b = node(&redis, &["--room-capacity", "2"]).await;
    // A room of two on B, with its host.
    let (_host, room) = welcomed(&b.url(), create_arena(false)).await;
    wait_listed_with(&a, room.room_id, true).await;
    let by_id = RoomRequest::JoinById {
        room_id: room.room_id,
    };
    // Through A: B holds the second seat at once, before the player comes.
    let r = redirected(&a.url(), by_id.clone()).await;
    assert_eq!(b.metric("game_seats_held").await, 1.0);
    refused(&b.url(), by_id.clone(), CloseCode::RoomAtCapacity).await;
    // Never presented, the ticket expires and the seat comes back.
    b.wait_metric("game_seats_held_expired_total", |v| v == 1.0)
        .await;
    assert_eq!(b.metric("game_seats_held").await, 0.0);
    refused(
        &b.url(),
        RoomRequest::Reserved { ticket: r.ticket },
        CloseCode::InvalidTicket,
    )
    .await;
    let (_second, w) = welcomed(&b.url(), by_id).await;
    assert_eq!(w.room_id, room.room_id);
}

/// A node of `redis` as a real process of the `server` binary (so that
/// SIGKILL is real), with a room that a player joined through `a`.
/// Returns the process, the room's `Welcome`, that player, and a player
/// on `a` (which makes B the less loaded; keep it).
async fn doomed_node(
    redis: &TestRedis,
    a: &TestServer,
) -> (
    std::process::Child,
    protocol::Welcome,
    Connection,
    Connection,
) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let public = format!("ws://127.0.0.1:{port}/");
    let b = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--listen", &listen, "--directory", &redis.url()])
        .args(["--public-url", &public, "--node-id", "doomed"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the server binary");
    // A player on A, so that B is the less loaded once it registers; wait
    // until it has: a create through A then goes to B.
    let (on_a, _) = welcomed(&a.url(), RoomRequest::quick("arena")).await;
    let r = within("B to register", async {
        loop {
            if let Answer::Redirect(r, _) = hello(&a.url(), create_arena(false)).await {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(r.url, format!("ws://{listen}/ws"));
    let (on_b, w) = follow(&r).await;
    wait_listed_with(a, w.room_id, true).await;
    (b, w, on_b, on_a)
}

/// SIGKILLs `b`; returns when.
fn kill(mut b: std::process::Child) -> Instant {
    b.kill().expect("SIGKILL");
    let killed = Instant::now();
    b.wait().expect("reap");
    killed
}

#[tokio::test]
async fn a_node_killed_with_sigkill_leaves_the_directory_within_its_ttl() {
    let redis = TestRedis::start().await;
    let a = node(&redis, &[]).await;
    let (b, w, mut on_b, _on_a) = doomed_node(&redis, &a).await;
    let killed = kill(b);
    // B's player sees its connection end, without a close frame.
    within("the dead node's socket to end", async {
        loop {
            match on_b.recv().await {
                Ok(Event::Msg(_)) => {}
                Ok(Event::Closed { code, .. }) => panic!("a dead node sent close {code}"),
                Err(_) => return,
            }
        }
    })
    .await;
    // Nobody asks B for anything: its record expires with its TTL.
    wait_listed_with(&a, w.room_id, false).await;
    let gone_after = killed.elapsed();
    println!("a SIGKILLed node's rooms stayed listed {gone_after:?}");
    assert!(
        gone_after <= NODE_TTL + Duration::from_secs(1),
        "listed for {gone_after:?}"
    );
    assert!(
        gone_after >= NODE_TTL - HEARTBEAT - Duration::from_millis(200),
        "gone by its TTL, {gone_after:?} after the kill"
    );
    // Its player comes back through A: its token means nothing there
    // (4002: join again), and a new join lands on A, not on the dead node.
    assert_eq!(
        a.resume(w.resume_token).await.err(),
        Some(CloseCode::InvalidResumeToken.code())
    );
    let (_again, w2) = welcomed(&a.url(), create_arena(false)).await;
    assert_ne!(w2.room_id, w.room_id);
}

#[tokio::test]
async fn a_killed_node_that_a_join_finds_silent_is_left_out_at_once() {
    let redis = TestRedis::start().await;
    let a = node(&redis, &[]).await;
    let (b, w, _on_b, _on_a) = doomed_node(&redis, &a).await;
    let killed = kill(b);
    // While its record lives on, a join that would go there finds it not
    // listening and is routed again without it: B's room is gone (4010),
    // and neither B nor its room is listed from then on.
    let by_id = RoomRequest::JoinById { room_id: w.room_id };
    refused(&a.url(), by_id, CloseCode::NoSuchRoom).await;
    assert!(!listed(&a).await.contains(&w.room_id));
    let (_fresh, w1) = welcomed(&a.url(), create_arena(false)).await;
    assert_ne!(w1.room_id, w.room_id);
    assert!(
        killed.elapsed() < NODE_TTL - HEARTBEAT,
        "all checked while B's record lived on"
    );
    assert_eq!(
        a.metric("game_holds_unanswered_total").await,
        1.0,
        "found silent once"
    );
}

#[tokio::test]
async fn a_planned_stop_drains_leaves_the_directory_and_comes_back_with_its_rooms() {
    let redis = TestRedis::start().await;
    let dir = crate::restart::scratch("cluster-drain");
    let state = dir.join("b.state");
    let state_arg = state.to_str().expect("UTF-8 path");
    let a = node(&redis, &[]).await;
    let b_args = ["--state-file", state_arg, "--node-id", "b"];
    let b = node(&redis, &b_args).await;
    let b_addr = b.addr.to_string();

    let (mut player, w) = welcomed(&b.url(), create_arena(false)).await;
    wait_listed(&a, &[w.room_id]).await;
    assert!(b.stop().await, "B stops cleanly and saves its state");
    assert_eq!(
        close_code(&mut player).await,
        CloseCode::ServiceRestart.code()
    );
    // B said goodbye: A lists nothing at once, without waiting for a TTL,
    // and new rooms stay on A.
    assert!(listed(&a).await.is_empty());
    let (_on_a, wa) = welcomed(&a.url(), create_arena(false)).await;

    // B back on its address, with its state: its room is listed again and
    // its player resumes there.
    let (types, rest) = games(&b_args);
    let (redis_url, public) = (redis.url(), format!("ws://{b_addr}/"));
    let mut argv = vec!["--directory", &redis_url, "--public-url", &public];
    argv.extend_from_slice(&rest);
    let b2 = TestServer::start_on(&b_addr, types, &argv).await;
    wait_listed(&a, &[w.room_id, wa.room_id]).await;
    let (_back, resumed) = b2.resume(w.resume_token).await.expect("resumed on B");
    assert!(resumed.resumed);
    assert_eq!(resumed.player_id, w.player_id);
    assert_eq!(resumed.room_id, w.room_id);
}

#[tokio::test]
async fn with_redis_down_rooms_and_resumes_go_on_and_nodes_come_back_by_themselves() {
    let mut redis = TestRedis::start().await;
    let a = node(&redis, &[]).await;
    let b = node(&redis, &[]).await;
    let (mut pa, wa) = welcomed(&a.url(), create_arena(false)).await;
    let (mut pb, wb) = welcomed(&b.url(), create_arena(false)).await;
    wait_listed(&a, &[wa.room_id, wb.room_id]).await;

    redis.stop();
    // (Records read just before the stop may serve joins a moment more.)
    tokio::time::sleep(NODES_CACHE).await;
    // Rooms play on, on both nodes.
    let (mut sa, mut sb) = (0, 0);
    still_playing(&mut pa, &mut sa).await;
    still_playing(&mut pb, &mut sb).await;
    // A dropped player resumes on its node.
    drop(pa);
    let (mut pa, back) = a
        .resume(wa.resume_token)
        .await
        .expect("resume without Redis");
    assert!(back.resumed);
    still_playing(&mut pa, &mut sa).await;
    // A quick join that the node can serve itself is served.
    let (_q, wq) = welcomed(&a.url(), RoomRequest::quick("arena")).await;
    assert_eq!(wq.room_id, wa.room_id);
    // A join that needs the directory fails fast with 4020.
    let asked = Instant::now();
    refused(
        &a.url(),
        create_arena(false),
        CloseCode::DirectoryUnavailable,
    )
    .await;
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    refused(
        &a.url(),
        RoomRequest::JoinById {
            room_id: wb.room_id,
        },
        CloseCode::DirectoryUnavailable,
    )
    .await;
    // Each node lists its own rooms; health says the directory is down.
    assert_eq!(listed(&a).await, vec![wa.room_id]);
    a.wait_metric("game_directory_up", |v| v == 0.0).await;
    assert!(a.metric("game_directory_errors_total").await > 0.0);
    assert!(a.metric("game_joins_directory_unavailable_total").await >= 2.0);

    // Redis back, empty: both nodes register again by themselves, and
    // joins across nodes work again.
    redis.restart().await;
    wait_listed(&a, &[wa.room_id, wb.room_id]).await;
    a.wait_metric("game_directory_up", |v| v == 1.0).await;
    let r = redirected(
        &a.url(),
        RoomRequest::JoinById {
            room_id: wb.room_id,
        },
    )
    .await;
    let (_c, w) = follow(&r).await;
    assert_eq!(w.room_id, wb.room_id);
    // Nothing was lost: both first players still play.
    still_playing(&mut pa, &mut sa).await;
    still_playing(&mut pb, &mut sb).await;
    // The room-id counter Redis lost is back above every id the nodes
    // hold, so no block given out from now on can repeat one.
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis");
    within("the room-id counter to be raised", async {
        loop {
            let ids: Vec<String> = conn.smembers("game:nodes").await.expect("SMEMBERS");
            let mut held = 0;
            for id in &ids {
                let record: Option<String> =
                    conn.get(format!("game:node:{id}")).await.expect("GET");
                let record: serde_json::Value =
                    serde_json::from_str(&record.expect("a record")).expect("JSON");
                held = held.max(record["room_ids_to"].as_u64().expect("room_ids_to"));
            }
            let counter: Option<u64> = conn.get("game:room_ids").await.expect("GET");
            if ids.len() == 2 && counter.is_some_and(|c| c + 1 >= held) {
                assert!(held > u64::from(wb.room_id), "B holds ids above its room's");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_node_started_while_redis_is_down_serves_once_it_is_up() {
    let mut redis = TestRedis::start().await;
    redis.stop();
    // The node starts anyway (a restored state file's players could
    // resume), refusing what needs the directory: without it, it has no
    // room id to give.
    let a = node(&redis, &[]).await;
    refused(
        &a.url(),
        create_arena(false),
        CloseCode::DirectoryUnavailable,
    )
    .await;
    refused(
        &a.url(),
        RoomRequest::quick("arena"),
        CloseCode::DirectoryUnavailable,
    )
    .await;
    assert_eq!(a.metric("game_directory_up").await, 0.0);
    assert_eq!(a.metric("game_directory_heartbeat_age_seconds").await, -1.0);
    redis.restart().await;
    // Registered at its next heartbeat, with room ids: joins work.
    a.wait_metric("game_directory_up", |v| v == 1.0).await;
    let w = within("a join once Redis is up", async {
        loop {
            if let Answer::Welcome(_, w) = hello(&a.url(), RoomRequest::quick("arena")).await {
                return w;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    wait_listed(&a, &[w.room_id]).await;
}

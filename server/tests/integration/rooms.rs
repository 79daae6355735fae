//! Rooms and matchmaking over real sockets: quick join with filter keys,
//! create (public or private), join by id and by invite code, the room
//! list, refusals with their codes, invite-code rate limits, and linger.

use crate::common::*;
use client::ClientError;
use protocol::RoomRequest;
use serde_json::Value;

fn quick(room_type: &str, options: &[(&str, &str)]) -> RoomRequest {
    RoomRequest::quick_with(room_type, options)
}

fn create(room_type: &str, private: bool) -> RoomRequest {
    RoomRequest::Create {
        room_type: room_type.into(),
        options: vec![],
        private,
    }
}

/// The close code a request is refused with.
async fn refused(server: &TestServer, request: RoomRequest) -> (u16, String) {
    let mut conn = server.connect().await;
    match conn.join(request).await {
        Err(ClientError::Closed { code, reason }) => (code, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// `GET path` as JSON.
async fn json(server: &TestServer, path: &str) -> Value {
    let (status, body) = server.get(path).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

#[tokio::test]
async fn quick_join_fills_rooms_first_and_matches_on_the_filter_keys() {
    let server = start(&["--room-capacity", "2"]).await;
    let mut rooms = Vec::new();
    let mut conns = Vec::new();
    for options in [
        &[][..],
        &[],
        &[],
        &[("pace", "fast")],
        &[("pace", "fast")],
        &[("pace", "normal")],
    ] {
        let (mut conn, w) = server.join_with(quick("arena", options)).await;
        rooms.push(w.room_id);
        next_snapshot(&mut conn).await.unwrap();
        conns.push(conn);
    }
    // Two normal rooms of two (the third player opens the second), one
    // fast room for both fast players, and `pace=normal` is not "no pace".
    assert_eq!(rooms[0], rooms[1]);
    assert_ne!(rooms[2], rooms[1]);
    assert_eq!(rooms[3], rooms[4]);
    assert!(![rooms[0], rooms[2]].contains(&rooms[3]));
    assert!(![rooms[0], rooms[2], rooms[3]].contains(&rooms[5]));
    let listed = json(&server, "/rooms?type=arena").await;
    let players: Vec<(u64, u64)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_u64().unwrap(), r["players"].as_u64().unwrap()))
        .collect();
    let want: Vec<(u64, u64)> = vec![
        (u64::from(rooms[0]), 2),
        (u64::from(rooms[2]), 1),
        (u64::from(rooms[3]), 2),
        (u64::from(rooms[5]), 1),
    ];
    assert_eq!(players, want);
    assert_eq!(
        server.metric("game_joins_total{request=\"quick\"}").await,
        6.0
    );
}

#[tokio::test]
async fn a_private_room_is_reached_only_by_its_invite_code() {
    let server = start(&[]).await;
    let (mut host, w) = server.join_with(create("four", true)).await;
    assert_eq!(w.room_type, "four");
    let code = w.invite_code.clone().expect("a private room has a code");
    assert_eq!(
        protocol::limits::normalize_code(&code).as_deref(),
        Some(code.as_str())
    );
    next_state(&mut host).await;

    // Not listed, not quick-joined, refused by id.
    assert_eq!(json(&server, "/rooms").await, Value::Array(vec![]));
    let (mut other, w2) = server.join_with(quick("four", &[])).await;
    assert_ne!(w2.room_id, w.room_id, "quick join opened another room");
    next_state(&mut other).await;
    let (code_by_id, _) = refused(&server, RoomRequest::JoinById { room_id: w.room_id }).await;
    assert_eq!(code_by_id, 4013);

    // The code as a person types it: lower case, with a dash.
    let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
    let (mut guest, w3) = server
        .join_with(RoomRequest::JoinByCode { code: typed })
        .await;
    assert_eq!(w3.room_id, w.room_id);
    assert_eq!(w3.invite_code.as_deref(), Some(code.as_str()));
    next_state(&mut guest).await;
    // The game locks its table once both seats are taken.
    let (locked, _) = refused(&server, RoomRequest::JoinByCode { code: code.clone() }).await;
    assert_eq!(locked, 4011);

    // What the lobby page asks before opening the game's page.
    let resolved = json(&server, &format!("/rooms/code/{}", code.to_lowercase())).await;
    assert_eq!(resolved["id"], u64::from(w.room_id));
    assert_eq!(resolved["type"], "four");
    assert_eq!(resolved["page"], "/four/");
    assert_eq!(server.get("/rooms/code/ZZZZZZZZ").await.0, 404);
}

#[tokio::test]
async fn bad_requests_get_their_documented_codes_and_reasons() {
    let server = start(&[]).await;
    let check = |request: RoomRequest, want: u16, says: &'static str| {
        let server = &server;
        async move {
            let (code, reason) = refused(server, request.clone()).await;
            assert_eq!(code, want, "{request:?}: {reason}");
            assert!(
                reason.contains(says),
                "{request:?}: {reason:?} lacks {says:?}"
            );
        }
    };
    check(quick("chess", &[]), 4009, "chess").await;
    check(RoomRequest::JoinById { room_id: 999 }, 4010, "999").await;
    check(
        RoomRequest::JoinByCode {
            code: "ZZZZZZZZ".into(),
        },
        4010,
        "code",
    )
    .await;
    check(
        RoomRequest::JoinByCode {
            code: "not a code".into(),
        },
        4010,
        "code",
    )
    .await;
    // The game refuses options it does not know, with its own words.
    check(quick("arena", &[("pace", "warp")]), 4014, "pace").await;
    check(quick("four", &[("board", "8x8")]), 4014, "board").await;
    // Requests past the protocol's bounds are malformed.
    check(quick("Arena", &[]), 1007, "room type").await;
    check(quick("arena", &[("k", &"v".repeat(65))]), 1007, "64").await;
    assert_eq!(server.metric("game_players").await, 0.0);
    assert_eq!(
        server.metric("game_rooms").await,
        0.0,
        "refusals open no room"
    );
}

#[tokio::test]
async fn guessing_invite_codes_is_cut_off_per_address() {
    let server = start(&[]).await;
    let (_host, w) = server.join_with(create("four", true)).await;
    let code = w.invite_code.expect("a code");
    // Ten wrong guesses are answered (a person mistyping), then the address
    // is refused, even for the right code, through the socket and through
    // the lobby's HTTP lookup alike.
    for i in 0..10 {
        let guess = RoomRequest::JoinByCode {
            code: format!("ZZZZZZ{}{}", (b'2' + i / 8) as char, (b'2' + i % 8) as char),
        };
        assert_eq!(refused(&server, guess).await.0, 4010, "guess {i}");
    }
    let (code_now, reason) = refused(&server, RoomRequest::JoinByCode { code: code.clone() }).await;
    assert_eq!(code_now, 4018, "{reason}");
    assert_eq!(server.get(&format!("/rooms/code/{code}")).await.0, 429);
    assert_eq!(server.metric("game_code_attempts_refused_total").await, 2.0);
    // Other requests from the address are not limited.
    let (mut conn, _) = server.join().await;
    next_snapshot(&mut conn).await.unwrap();
}

#[tokio::test]
async fn the_room_list_shows_public_unlocked_rooms_with_their_metadata_and_no_secrets() {
    let server = start(&[]).await;
    let (mut a, wa) = server.join_with(quick("four", &[])).await;
    next_state(&mut a).await;
    let (mut arena, _) = server.join().await;
    next_snapshot(&mut arena).await.unwrap();
    let (_private, _) = server.join_with(create("four", true)).await;

    let all = json(&server, "/rooms").await;
    let rooms = all.as_array().unwrap();
    assert_eq!(rooms.len(), 2, "{all}");
    let four = rooms
        .iter()
        .find(|r| r["type"] == "four")
        .expect("the public four room");
    assert_eq!(four["id"], u64::from(wa.room_id));
    assert_eq!(
        (four["players"].as_u64(), four["capacity"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(four["metadata"]["status"], "waiting");
    let keys: Vec<&str> = four
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["capacity", "id", "metadata", "players", "type"],
        "nothing else"
    );
    assert_eq!(
        json(&server, "/rooms?type=arena")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        json(&server, "/rooms?type=chess").await,
        Value::Array(vec![])
    );

    // A second player fills the table: the game locks it, and a locked room
    // is not listed.
    let (mut b, wb) = server.join_with(quick("four", &[])).await;
    assert_eq!(wb.room_id, wa.room_id);
    next_state(&mut b).await;
    let fours = json(&server, "/rooms?type=four").await;
    assert_eq!(fours, Value::Array(vec![]), "locked rooms are not listed");

    let types = json(&server, "/rooms/types").await;
    let names: Vec<&str> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["arena", "four"]);
    assert_eq!(types[1]["page"], "/four/");
    assert_eq!(types[0]["filter_by"], serde_json::json!(["pace"]));
}

#[tokio::test]
async fn an_empty_private_room_lingers_for_its_host_then_closes() {
    let server = start(&["--room-linger", "four=1500ms"]).await;
    let (mut host, w) = server.join_with(create("four", true)).await;
    let code = w.invite_code.expect("a code");
    next_state(&mut host).await;
    // The host leaves for good: the room is empty, and waits.
    host.close(1000, "bye").await.unwrap();
    server.wait_metric("game_players", |v| v == 0.0).await;
    assert_eq!(server.metric("game_rooms").await, 1.0, "lingering");
    let (mut back, w2) = server
        .join_with(RoomRequest::JoinByCode { code: code.clone() })
        .await;
    assert_eq!(w2.room_id, w.room_id, "the same room, by its code");
    next_state(&mut back).await;
    back.close(1000, "bye").await.unwrap();
    // Empty again: after the linger it closes, and its code with it.
    server.wait_metric("game_rooms", |v| v == 0.0).await;
    let (gone, _) = refused(&server, RoomRequest::JoinByCode { code }).await;
    assert_eq!(gone, 4010);
}

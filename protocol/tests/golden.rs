//! Golden vectors: the encoding of every message variant, at its edge
//! values, written to `protocol/golden/vectors.json` for other
//! implementations of the protocol to test against (the browser client's
//! `server/web/test/envelope.test.mjs` decodes and re-encodes every one).
//! Each game's own bytes have vectors of their own, next to the game.
//!
//! The test builds the vectors from this crate's encoder and compares them
//! with the committed file, so the file cannot silently go stale: a protocol
//! change fails here until the file is regenerated with
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test -p protocol --test golden
//! ```
//!
//! and then fails the JavaScript tests until the JavaScript codec follows.
//!
//! Besides valid messages the file lists payloads every decoder must reject
//! (section 9 of `PROTOCOL.md`), the close codes with their retry policies,
//! and the limits. This is not where the byte layout is documented (that is
//! `PROTOCOL.md`, checked by `protocol_md.rs`); the JSON shape of a message
//! here is the JavaScript client's, described in the file's `about` field.

mod common;

use common::Msg;
use protocol::golden::{check_file, hex, layout};
use protocol::{
    ClientMsg, CloseCode, Event, EventAck, GameMsg, Hello, MAX_CLIENT_MSG_BYTES,
    MAX_SERVER_MSG_BYTES, PROTOCOL_VERSION, Ping, Pong, Redirect, Resume, ResumeToken, Retry,
    RoomRequest, SeatTicket, ServerMsg, State, Welcome, decode_client, decode_server,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Where the vectors live, relative to this crate.
fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/vectors.json")
}

const TOKEN_A: ResumeToken = ResumeToken([
    0x3f, 0x9a, 0x0c, 0x51, 0xe2, 0x7b, 0x44, 0x18, 0xa6, 0xd0, 0x95, 0x2e, 0x6c, 0xf1, 0x03, 0xb7,
]);
const TOKEN_ZERO: ResumeToken = ResumeToken([0; 16]);
const TOKEN_FF: ResumeToken = ResumeToken([0xff; 16]);

/// The values at which a varint changes length, for `u32` fields.
const U32_EDGES: [u32; 6] = [0, 250, 251, 65_535, 65_536, u32::MAX];

/// The same for `u64` fields, plus the edges of exact integers in a
/// JavaScript `Number` (2^53 − 1, 2^53, 2^53 + 1): a client that decodes
/// u64 into a `Number` gets the last of these wrong.
const U64_EDGES: [u64; 11] = [
    0,
    250,
    251,
    65_535,
    65_536,
    u32::MAX as u64,
    u32::MAX as u64 + 1,
    (1 << 53) - 1,
    1 << 53,
    (1 << 53) + 1,
    u64::MAX,
];

/// Byte strings (game data) of lengths at the varint edges of their length
/// prefix.
const DATA_LENGTHS: [usize; 5] = [0, 1, 250, 251, 300];

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 37 + 11) as u8).collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn hello(resume: Option<Resume>, room: RoomRequest) -> Msg {
    Msg::Client(ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        resume,
        room,
    }))
}

fn welcome(player_id: u32, room_id: u32, resume_token: ResumeToken, resumed: bool) -> Welcome {
    Welcome {
        version: PROTOCOL_VERSION,
        player_id,
        room_id,
        room_type: "arena".into(),
        invite_code: None,
        resume_token,
        resumed,
        tick_hz: 30,
        game: vec![0xfb, 0xd0, 0x07, 0xfb, 0xd0, 0x07, 0xfb, 0x2c, 0x01, 0x08],
    }
}

/// Every named vector. Names are unique and stable; they show up in the
/// JavaScript test's failure messages.
fn vectors() -> Vec<(String, Msg)> {
    let mut v: Vec<(String, Msg)> = Vec::new();
    let mut push = |name: String, msg: Msg| v.push((name, msg));

    // Hello: every room request, with and without a resume, and versions at
    // the varint edges (a mismatched version is still a decodable Hello).
    push(
        "hello_quick_join".into(),
        hello(None, RoomRequest::quick("arena")),
    );
    push(
        "hello_quick_join_options".into(),
        hello(
            None,
            RoomRequest::QuickJoin {
                room_type: "arena".into(),
                options: pairs(&[("pace", "fast"), ("region", "eu-west")]),
            },
        ),
    );
    push(
        "hello_create_private".into(),
        hello(
            None,
            RoomRequest::Create {
                room_type: "four".into(),
                options: vec![],
                private: true,
            },
        ),
    );
    push(
        "hello_create_public_unicode_option".into(),
        hello(
            None,
            RoomRequest::Create {
                room_type: "place".into(),
                options: pairs(&[("title", "Café ☕ – 日本")]),
                private: false,
            },
        ),
    );
    for id in [0, 250, 251, u32::MAX] {
        push(
            format!("hello_join_by_id_{id}"),
            hello(None, RoomRequest::JoinById { room_id: id }),
        );
    }
    push(
        "hello_join_by_code".into(),
        hello(
            None,
            RoomRequest::JoinByCode {
                code: "ABCD2345".into(),
            },
        ),
    );
    push(
        "hello_reserved".into(),
        hello(
            None,
            RoomRequest::Reserved {
                ticket: SeatTicket(TOKEN_A.0),
            },
        ),
    );
    for (name, token, last_event) in [
        ("hello_resume", TOKEN_A, 0),
        ("hello_resume_zero_token_event_250", TOKEN_ZERO, 250),
        ("hello_resume_ff_token_event_65536", TOKEN_FF, 65_536),
        ("hello_resume_event_u32_max", TOKEN_A, u32::MAX),
    ] {
        push(
            name.into(),
            hello(
                Some(Resume { token, last_event }),
                RoomRequest::quick("four"),
            ),
        );
    }
    for version in [0, 250, 251, u16::MAX] {
        push(
            format!("hello_version_{version}"),
            Msg::Client(ClientMsg::Hello(Hello {
                version,
                resume: None,
                room: RoomRequest::quick("arena"),
            })),
        );
    }

    // Game messages: every seq edge, and data at its length edges.
    for seq in U32_EDGES {
        push(
            format!("game_seq_{seq}"),
            Msg::Client(ClientMsg::Game(GameMsg {
                seq,
                data: vec![0x7f, 0x81],
            })),
        );
    }
    for len in DATA_LENGTHS {
        push(
            format!("game_data_{len}_bytes"),
            Msg::Client(ClientMsg::Game(GameMsg {
                seq: 1000,
                data: data(len),
            })),
        );
    }

    // Ping: every u64 edge.
    for t in U64_EDGES {
        push(
            format!("ping_t_{t}"),
            Msg::Client(ClientMsg::Ping(Ping { t })),
        );
    }

    // Event acknowledgements and leave.
    for upto in U32_EDGES {
        push(
            format!("event_ack_{upto}"),
            Msg::Client(ClientMsg::EventAck(EventAck { upto })),
        );
    }
    push("leave".into(), Msg::Client(ClientMsg::Leave));

    // Welcome: ids at the varint edges, fresh and resumed, with and
    // without an invite code, and fields of the largest sizes.
    for id in U32_EDGES {
        push(
            format!("welcome_player_{id}"),
            Msg::Server(ServerMsg::Welcome(welcome(id, 3, TOKEN_A, false))),
        );
    }
    push(
        "welcome_resumed_room_u32_max".into(),
        Msg::Server(ServerMsg::Welcome(welcome(
            70_000,
            u32::MAX,
            TOKEN_FF,
            true,
        ))),
    );
    push(
        "welcome_private_with_code".into(),
        Msg::Server(ServerMsg::Welcome(Welcome {
            version: PROTOCOL_VERSION,
            player_id: 12,
            room_id: 7,
            room_type: "four".into(),
            invite_code: Some("K7M2XQ9P".into()),
            resume_token: TOKEN_A,
            resumed: false,
            tick_hz: 20,
            game: vec![7, 6],
        })),
    );
    push(
        "welcome_u16_max_fields".into(),
        Msg::Server(ServerMsg::Welcome(Welcome {
            version: u16::MAX,
            player_id: 1,
            room_id: 0,
            room_type: "a".repeat(32),
            invite_code: Some(String::new()),
            resume_token: TOKEN_ZERO,
            resumed: true,
            tick_hz: u16::MAX,
            game: data(251),
        })),
    );

    // States: every edge of tick and ack, data at its length edges.
    for (i, edge) in U32_EDGES.into_iter().enumerate() {
        push(
            format!("state_edges_{edge}"),
            Msg::Server(ServerMsg::State(State {
                tick: edge,
                ack: U32_EDGES[U32_EDGES.len() - 1 - i],
                data: data(DATA_LENGTHS[i % DATA_LENGTHS.len()]),
            })),
        );
    }
    for len in DATA_LENGTHS {
        push(
            format!("state_data_{len}_bytes"),
            Msg::Server(ServerMsg::State(State {
                tick: 5_400,
                ack: 3_600,
                data: data(len),
            })),
        );
    }

    // Events: every seq edge.
    for (i, seq) in U32_EDGES.into_iter().enumerate() {
        push(
            format!("event_seq_{seq}"),
            Msg::Server(ServerMsg::Event(Event {
                seq,
                data: data(DATA_LENGTHS[i % DATA_LENGTHS.len()]),
            })),
        );
    }

    // Pong: every u64 edge in both fields.
    for (i, t) in U64_EDGES.into_iter().enumerate() {
        push(
            format!("pong_t_{t}"),
            Msg::Server(ServerMsg::Pong(Pong {
                t,
                server_time_ms: U64_EDGES[U64_EDGES.len() - 1 - i],
            })),
        );
    }
    // Redirect: a short URL and one past the one-byte length varint.
    for (name, url) in [
        ("redirect", "ws://127.0.0.1:9002/ws".to_owned()),
        (
            "redirect_long_url",
            format!("wss://{}.example/ws", "n".repeat(250)),
        ),
    ] {
        push(
            name.into(),
            Msg::Server(ServerMsg::Redirect(Redirect {
                url,
                ticket: SeatTicket(TOKEN_FF.0),
            })),
        );
    }
    v
}

/// The JavaScript client's shape of a room request.
fn describe_room(room: &RoomRequest) -> Value {
    let options = |o: &[(String, String)]| -> Value {
        o.iter()
            .map(|(k, v)| json!([k, v]))
            .collect::<Vec<_>>()
            .into()
    };
    match room {
        RoomRequest::QuickJoin {
            room_type,
            options: o,
        } => json!({
            "type": "QuickJoin", "roomType": room_type, "options": options(o),
        }),
        RoomRequest::Create {
            room_type,
            options: o,
            private,
        } => json!({
            "type": "Create", "roomType": room_type, "options": options(o), "private": private,
        }),
        RoomRequest::JoinById { room_id } => json!({"type": "JoinById", "roomId": room_id}),
        RoomRequest::JoinByCode { code } => json!({"type": "JoinByCode", "code": code}),
        RoomRequest::Reserved { ticket } => json!({"type": "Reserved", "ticket": ticket.to_hex()}),
    }
}

/// The JavaScript client's shape of a message: camelCase field names,
/// `type` for the variant, tokens and game bytes as lower-case hex, `u64`s
/// as decimal strings (JSON numbers lose precision past 2^53 in
/// JavaScript). The patterns name every field, so adding one fails to
/// compile here.
fn describe(msg: &Msg) -> Value {
    match msg {
        Msg::Client(ClientMsg::Hello(Hello {
            version,
            resume,
            room,
        })) => json!({
            "type": "Hello",
            "version": version,
            "resume": resume.map(|Resume { token, last_event }| json!({
                "token": token.to_hex(), "lastEvent": last_event,
            })),
            "room": describe_room(room),
        }),
        Msg::Client(ClientMsg::Game(GameMsg { seq, data })) => json!({
            "type": "Game", "seq": seq, "data": hex(data),
        }),
        Msg::Client(ClientMsg::Ping(Ping { t })) => json!({
            "type": "Ping", "t": t.to_string(),
        }),
        Msg::Client(ClientMsg::EventAck(EventAck { upto })) => json!({
            "type": "EventAck", "upto": upto,
        }),
        Msg::Client(ClientMsg::Leave) => json!({"type": "Leave"}),
        Msg::Server(ServerMsg::Welcome(Welcome {
            version,
            player_id,
            room_id,
            room_type,
            invite_code,
            resume_token,
            resumed,
            tick_hz,
            game,
        })) => json!({
            "type": "Welcome",
            "version": version,
            "playerId": player_id,
            "roomId": room_id,
            "roomType": room_type,
            "inviteCode": invite_code,
            "resumeToken": resume_token.to_hex(),
            "resumed": resumed,
            "tickHz": tick_hz,
            "game": hex(game),
        }),
        Msg::Server(ServerMsg::State(State { tick, ack, data })) => json!({
            "type": "State", "tick": tick, "ack": ack, "data": hex(data),
        }),
        Msg::Server(ServerMsg::Event(Event { seq, data })) => json!({
            "type": "Event", "seq": seq, "data": hex(data),
        }),
        Msg::Server(ServerMsg::Pong(Pong { t, server_time_ms })) => json!({
            "type": "Pong",
            "t": t.to_string(),
            "serverTimeMs": server_time_ms.to_string(),
        }),
        Msg::Server(ServerMsg::Redirect(Redirect { url, ticket })) => json!({
            "type": "Redirect", "url": url, "ticket": ticket.to_hex(),
        }),
    }
}

/// Payloads every decoder must reject: (name, direction, bytes, why).
fn invalid() -> Vec<(&'static str, &'static str, Vec<u8>, &'static str)> {
    let sample = Msg::Server(ServerMsg::Welcome(welcome(7, 1, TOKEN_A, false))).encode();
    let truncated_welcome = sample[..sample.len() - 1].to_vec();
    // The `resumed` bool sits after variant, version, player, room, the
    // room type ("arena": a length byte and 5 bytes), the invite code's
    // None tag and the token.
    let bool_at = 1 + 1 + 1 + 1 + 6 + 1 + 16;
    assert_eq!(sample[bool_at], 0, "the resumed byte of the sample");
    let mut bad_bool = sample.clone();
    bad_bool[bool_at] = 2;
    let mut bad_utf8 = sample;
    bad_utf8[5] = 0xff;

    let mut length_bomb = vec![1, 0, 0, 0xfd];
    length_bomb.extend_from_slice(&(1u64 << 56).to_le_bytes());

    let mut too_large_client = vec![1, 0, 0xfb];
    too_large_client.extend_from_slice(&(MAX_CLIENT_MSG_BYTES as u16 - 2).to_le_bytes());
    too_large_client.resize(MAX_CLIENT_MSG_BYTES + 1, 0);

    let mut u128_marker = vec![3, 0xfe];
    u128_marker.extend_from_slice(&[0; 16]);
    u128_marker.push(0);

    vec![
        ("server_empty", "server", vec![], "an empty payload"),
        (
            "server_truncated_welcome",
            "server",
            truncated_welcome,
            "a Welcome one byte short",
        ),
        (
            "server_trailing_byte",
            "server",
            vec![3, 42, 42, 0],
            "a Pong followed by one more byte",
        ),
        (
            "server_unknown_variant",
            "server",
            vec![5],
            "ServerMsg variant 5",
        ),
        (
            "server_varint_fe",
            "server",
            u128_marker,
            "a varint with the u128 marker FE",
        ),
        (
            "server_varint_ff",
            "server",
            vec![3, 0xff, 0],
            "a varint whose first byte is FF",
        ),
        (
            "server_u16_with_u32_marker",
            "server",
            vec![0, 0xfc, 2, 0, 0, 0, 1, 1, 1, b'a', 0],
            "Welcome.version (u16) with the FC marker",
        ),
        (
            "server_u32_with_u64_marker",
            "server",
            vec![1, 0xfd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            "State.tick (u32) with the FD marker",
        ),
        (
            "server_bool_2",
            "server",
            bad_bool,
            "Welcome.resumed encoded as 02",
        ),
        (
            "server_room_type_not_utf8",
            "server",
            bad_utf8,
            "Welcome.room_type with the byte FF",
        ),
        (
            "server_data_length_bomb",
            "server",
            length_bomb,
            "a State claiming 2^56 bytes of data",
        ),
        (
            "server_data_past_the_end",
            "server",
            vec![2, 1, 3, 9, 9],
            "an Event claiming 3 bytes of data that holds 2",
        ),
        ("client_empty", "client", vec![], "an empty payload"),
        (
            "client_unknown_variant",
            "client",
            vec![5],
            "ClientMsg variant 5",
        ),
        (
            "client_option_tag_2",
            "client",
            vec![0, 2, 2],
            "Hello.resume with tag 02",
        ),
        (
            "client_truncated_token",
            "client",
            vec![0, 2, 1, 0x3f, 0x9a],
            "a Hello whose token stops after 2 bytes",
        ),
        (
            "client_unknown_room_request",
            "client",
            vec![0, 2, 0, 5],
            "a RoomRequest of variant 5",
        ),
        (
            "client_option_key_not_utf8",
            "client",
            vec![0, 2, 0, 0, 1, b'a', 1, 1, 0xff, 0],
            "a QuickJoin whose option key is the byte FF",
        ),
        (
            "client_truncated_game",
            "client",
            vec![1, 1, 2, 0x7f],
            "a Game message whose data stops short",
        ),
        (
            "client_trailing_byte",
            "client",
            vec![2, 42, 0],
            "a Ping followed by one more byte",
        ),
        (
            "client_leave_trailing_byte",
            "client",
            vec![4, 0],
            "a Leave followed by one more byte",
        ),
        (
            "client_u16_with_u32_marker",
            "client",
            vec![0, 0xfc, 2, 0, 0, 0, 0],
            "Hello.version (u16) with the FC marker",
        ),
        (
            "client_too_large",
            "client",
            too_large_client,
            "a payload over the 1,024-byte client limit",
        ),
    ]
}

fn retry_name(r: Retry) -> &'static str {
    match r {
        Retry::Resume => "Resume",
        Retry::Rejoin => "Rejoin",
        Retry::Stop => "Stop",
    }
}

/// The whole file, as it must be committed.
fn render() -> String {
    let vectors = vectors();
    let mut names = BTreeSet::new();
    let mut out_vectors = Vec::new();
    for (name, msg) in &vectors {
        assert!(names.insert(name.clone()), "duplicate vector name {name}");
        let bytes = msg.encode();
        // The vectors are only worth sharing if this crate reads them back.
        let back = match msg {
            Msg::Client(_) => decode_client(&bytes).map(Msg::Client),
            Msg::Server(_) => decode_server(&bytes).map(Msg::Server),
        };
        assert_eq!(back.as_ref(), Ok(msg), "{name} does not round-trip");
        out_vectors.push(json!({
            "name": name,
            "direction": msg.direction(),
            "hex": hex(&bytes),
            "message": describe(msg),
        }));
    }

    let mut out_invalid = Vec::new();
    for (name, direction, bytes, why) in invalid() {
        let rejected = match direction {
            "client" => decode_client(&bytes).is_err(),
            _ => decode_server(&bytes).is_err(),
        };
        assert!(rejected, "{name} ({why}) was accepted by the Rust decoder");
        assert!(
            names.insert(name.to_owned()),
            "duplicate vector name {name}"
        );
        out_invalid.push(json!({
            "name": name, "direction": direction, "hex": hex(&bytes), "why": why,
        }));
    }

    let close_codes: Vec<Value> = CloseCode::ALL
        .iter()
        .map(|c| json!({"code": c.code(), "name": c.name(), "retry": retry_name(c.retry())}))
        .collect();

    let file = json!({
        "about": concat!(
            "Golden vectors of the wire protocol, written by protocol/tests/golden.rs; do not edit by hand. ",
            "Regenerate with: UPDATE_GOLDEN=1 cargo test -p protocol --test golden. ",
            "'vectors' are valid messages: 'hex' is the exact encoding, 'message' the value in the ",
            "JavaScript client's shape (camelCase fields, 'type' names the variant, tokens and game bytes ",
            "as lower-case hex, u64 fields as decimal strings, options as [key, value] pairs). ",
            "'invalid' are payloads every decoder must reject. ",
            "'close_codes' is CloseCode::ALL with each code's retry policy."
        ),
        "protocol_version": PROTOCOL_VERSION,
        "max_client_msg_bytes": MAX_CLIENT_MSG_BYTES,
        "max_server_msg_bytes": MAX_SERVER_MSG_BYTES,
        "close_codes": close_codes,
        "vectors": out_vectors,
        "invalid": out_invalid,
    });
    layout(&file)
}

#[test]
fn every_variant_is_covered() {
    let vectors = vectors();
    let variants: BTreeSet<String> = vectors
        .iter()
        .flat_map(|(_, m)| {
            let d = describe(m);
            let mut names = vec![format!(
                "{}:{}",
                m.direction(),
                d["type"].as_str().expect("type")
            )];
            if let Some(room) = d["room"]["type"].as_str() {
                names.push(format!("room:{room}"));
            }
            names
        })
        .collect();
    let want: BTreeSet<String> = [
        "client:Hello",
        "client:Game",
        "client:Ping",
        "client:EventAck",
        "client:Leave",
        "server:Welcome",
        "server:State",
        "server:Event",
        "server:Pong",
        "server:Redirect",
        "room:QuickJoin",
        "room:Create",
        "room:JoinById",
        "room:JoinByCode",
        "room:Reserved",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(variants, want);
}

#[test]
fn golden_file_is_up_to_date() {
    check_file(
        &golden_path(),
        &render(),
        "UPDATE_GOLDEN=1 cargo test -p protocol --test golden",
        "server/web/session.js",
    );
}

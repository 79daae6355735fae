//! Golden vectors: the encoding of every message variant, at its edge
//! values, written to `protocol/golden/vectors.json` for other
//! implementations of the protocol to test against (the browser client's
//! `server/web/test/codec.test.mjs` decodes and re-encodes every one).
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
use protocol::{
    ClientMsg, CloseCode, Entity, EntityKind, Hello, Input, MAX_CLIENT_MSG_BYTES,
    MAX_SERVER_MSG_BYTES, PROTOCOL_VERSION, Ping, Pong, ResumeToken, Retry, ServerMsg, Snapshot,
    Welcome, decode_client, decode_server, wire,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Where the vectors live, relative to this crate.
fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/vectors.json")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// Every kind, in declaration order (the `kind_name` match below is
/// exhaustive, so a new kind fails to compile there until it is added).
const KINDS: [EntityKind; 3] = [
    EntityKind::Player,
    EntityKind::Pickup,
    EntityKind::DroppedPlayer,
];

fn kind_name(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Player => "Player",
        EntityKind::Pickup => "Pickup",
        EntityKind::DroppedPlayer => "DroppedPlayer",
    }
}

fn welcome(player_id: u32, room_id: u32, resume_token: ResumeToken, resumed: bool) -> Welcome {
    Welcome {
        version: PROTOCOL_VERSION,
        player_id,
        room_id,
        resume_token,
        resumed,
        tick_hz: 30,
        world_width: 2000,
        world_height: 2000,
        view_radius: 300,
    }
}

/// Every named vector. Names are unique and stable; they show up in the
/// JavaScript test's failure messages.
fn vectors() -> Vec<(String, Msg)> {
    let mut v: Vec<(String, Msg)> = Vec::new();
    let mut push = |name: String, msg: Msg| v.push((name, msg));

    // Hello: with and without a token, and versions at the varint edges
    // (a mismatched version is still a decodable Hello).
    for (name, version, resume) in [
        ("hello_new", PROTOCOL_VERSION, None),
        ("hello_resume", PROTOCOL_VERSION, Some(TOKEN_A)),
        (
            "hello_resume_zero_token",
            PROTOCOL_VERSION,
            Some(TOKEN_ZERO),
        ),
        ("hello_resume_ff_token", PROTOCOL_VERSION, Some(TOKEN_FF)),
        ("hello_version_0", 0, None),
        ("hello_version_250", 250, None),
        ("hello_version_251_resume", 251, Some(TOKEN_A)),
        ("hello_version_65535", u16::MAX, None),
    ] {
        push(
            name.to_owned(),
            Msg::Client(ClientMsg::Hello(Hello { version, resume })),
        );
    }

    // Input: every seq edge, and dx/dy at both ends of i8 (−128 included:
    // the type allows it even though the server reads it as −127).
    for seq in U32_EDGES {
        push(
            format!("input_seq_{seq}"),
            Msg::Client(ClientMsg::Input(Input {
                seq,
                dx: 127,
                dy: -127,
            })),
        );
    }
    for (dx, dy) in [(-1, 1), (-128, 0), (0, -128), (64, -64), (0, 0)] {
        push(
            format!("input_dx_{dx}_dy_{dy}"),
            Msg::Client(ClientMsg::Input(Input { seq: 1000, dx, dy })),
        );
    }

    // Ping: every u64 edge.
    for t in U64_EDGES {
        push(
            format!("ping_t_{t}"),
            Msg::Client(ClientMsg::Ping(Ping { t })),
        );
    }

    // Welcome: ids at the varint edges, fresh and resumed, and a field of
    // the largest sizes.
    for id in U32_EDGES {
        push(
            format!("welcome_player_{id}"),
            Msg::Server(ServerMsg::Welcome(welcome(id, 3, TOKEN_A, false))),
        );
    }
    push(
        "welcome_resumed_room_u32_max".to_owned(),
        Msg::Server(ServerMsg::Welcome(welcome(
            70_000,
            u32::MAX,
            TOKEN_FF,
            true,
        ))),
    );
    push(
        "welcome_u16_max_fields".to_owned(),
        Msg::Server(ServerMsg::Welcome(Welcome {
            version: u16::MAX,
            player_id: 1,
            room_id: 0,
            resume_token: TOKEN_ZERO,
            resumed: true,
            tick_hz: u16::MAX,
            world_width: u16::MAX,
            world_height: 251,
            view_radius: 250,
        })),
    );

    // Snapshots: empty, one entity of each kind, every edge in every field,
    // and a many-entity one.
    push(
        "snapshot_empty".to_owned(),
        Msg::Server(ServerMsg::Snapshot(Snapshot {
            tick: 42,
            ack: 0,
            players: 1,
            entities: vec![],
        })),
    );
    for kind in KINDS {
        push(
            format!("snapshot_one_{}", kind_name(kind)),
            Msg::Server(ServerMsg::Snapshot(Snapshot {
                tick: 5_400,
                ack: 3_600,
                players: 100,
                entities: vec![Entity {
                    id: 300,
                    kind,
                    x: 1000,
                    y: 1500,
                    score: if kind == EntityKind::Pickup { 0 } else { 12 },
                }],
            })),
        );
    }
    for (i, edge) in U32_EDGES.into_iter().enumerate() {
        let small = edge.min(u32::from(u16::MAX)) as u16;
        push(
            format!("snapshot_edges_{edge}"),
            Msg::Server(ServerMsg::Snapshot(Snapshot {
                tick: edge,
                ack: U32_EDGES[U32_EDGES.len() - 1 - i],
                players: small,
                entities: vec![
                    Entity {
                        id: edge,
                        kind: KINDS[i % KINDS.len()],
                        x: small,
                        y: u16::MAX - small,
                        score: edge,
                    },
                    Entity {
                        id: U32_EDGES[(i + 1) % U32_EDGES.len()],
                        kind: KINDS[(i + 1) % KINDS.len()],
                        x: 250,
                        y: 251,
                        score: U32_EDGES[(i + 2) % U32_EDGES.len()],
                    },
                ],
            })),
        );
    }
    // 260 entities: the count itself crosses into the 3-byte varint form.
    push(
        "snapshot_260_entities".to_owned(),
        Msg::Server(ServerMsg::Snapshot(Snapshot {
            tick: 70_000,
            ack: 251,
            players: 260,
            entities: (0..260u32)
                .map(|i| Entity {
                    id: i * 257,
                    kind: KINDS[i as usize % KINDS.len()],
                    x: (i * 7) as u16,
                    y: 2000 - (i * 3) as u16,
                    score: i * i,
                })
                .collect(),
        })),
    );

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
    v
}

/// The JavaScript client's shape of a message: camelCase field names,
/// `type` for the variant, tokens as 32 lower-case hex digits, `u64`s as
/// decimal strings (JSON numbers lose precision past 2^53 in JavaScript).
/// The patterns name every field, so adding one fails to compile here.
fn describe(msg: &Msg) -> Value {
    match msg {
        Msg::Client(ClientMsg::Hello(Hello { version, resume })) => json!({
            "type": "Hello",
            "version": version,
            "resume": resume.map(|t| t.to_hex()),
        }),
        Msg::Client(ClientMsg::Input(Input { seq, dx, dy })) => json!({
            "type": "Input", "seq": seq, "dx": dx, "dy": dy,
        }),
        Msg::Client(ClientMsg::Ping(Ping { t })) => json!({
            "type": "Ping", "t": t.to_string(),
        }),
        Msg::Server(ServerMsg::Welcome(Welcome {
            version,
            player_id,
            room_id,
            resume_token,
            resumed,
            tick_hz,
            world_width,
            world_height,
            view_radius,
        })) => json!({
            "type": "Welcome",
            "version": version,
            "playerId": player_id,
            "roomId": room_id,
            "resumeToken": resume_token.to_hex(),
            "resumed": resumed,
            "tickHz": tick_hz,
            "worldWidth": world_width,
            "worldHeight": world_height,
            "viewRadius": view_radius,
        }),
        Msg::Server(ServerMsg::Snapshot(Snapshot {
            tick,
            ack,
            players,
            entities,
        })) => json!({
            "type": "Snapshot",
            "tick": tick,
            "ack": ack,
            "players": players,
            "entities": entities.iter().map(|&Entity { id, kind, x, y, score }| json!({
                "id": id, "kind": kind_name(kind), "x": x, "y": y, "score": score,
            })).collect::<Vec<_>>(),
        }),
        Msg::Server(ServerMsg::Pong(Pong { t, server_time_ms })) => json!({
            "type": "Pong",
            "t": t.to_string(),
            "serverTimeMs": server_time_ms.to_string(),
        }),
    }
}

/// Payloads every decoder must reject: (name, direction, bytes, why).
fn invalid() -> Vec<(&'static str, &'static str, Vec<u8>, &'static str)> {
    let mut welcome_bytes = Msg::Server(ServerMsg::Welcome(welcome(7, 1, TOKEN_A, false))).encode();
    let truncated_welcome = welcome_bytes[..welcome_bytes.len() - 1].to_vec();
    // The `resumed` bool sits after variant, version, player, room, token.
    let bool_at = 1 + 1 + 1 + 1 + 16;
    assert_eq!(welcome_bytes[bool_at], 0, "the resumed byte of the sample");
    welcome_bytes[bool_at] = 2;
    let bad_bool = welcome_bytes;

    let mut count_bomb = vec![1, 0, 0, 0, 0xfd];
    count_bomb.extend_from_slice(&(1u64 << 56).to_le_bytes());

    let mut too_large_client = vec![2, 0];
    too_large_client.resize(MAX_CLIENT_MSG_BYTES + 1, 0);

    let mut u128_marker = vec![2, 0xfe];
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
            vec![2, 42, 42, 0],
            "a Pong followed by one more byte",
        ),
        (
            "server_unknown_variant",
            "server",
            vec![3],
            "ServerMsg variant 3",
        ),
        (
            "server_entity_kind_3",
            "server",
            vec![1, 0, 0, 1, 1, 5, 3, 0, 0, 0],
            "an entity of kind 3",
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
            vec![2, 0xff, 0],
            "a varint whose first byte is FF",
        ),
        (
            "server_u16_with_u32_marker",
            "server",
            vec![1, 0, 0, 0xfc, 1, 0, 0, 0, 0],
            "Snapshot.players (u16) with the FC marker",
        ),
        (
            "server_u32_with_u64_marker",
            "server",
            vec![1, 0xfd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            "Snapshot.tick (u32) with the FD marker",
        ),
        (
            "server_bool_2",
            "server",
            bad_bool,
            "Welcome.resumed encoded as 02",
        ),
        (
            "server_entity_count_bomb",
            "server",
            count_bomb,
            "a snapshot claiming 2^56 entities",
        ),
        (
            "server_entity_count_past_the_end",
            "server",
            vec![1, 0, 0, 0, 2, 5, 1, 17, 17, 0],
            "a snapshot claiming 2 entities that holds 1",
        ),
        ("client_empty", "client", vec![], "an empty payload"),
        (
            "client_unknown_variant",
            "client",
            vec![3],
            "ClientMsg variant 3",
        ),
        (
            "client_option_tag_2",
            "client",
            vec![0, 1, 2],
            "Hello.resume with tag 02",
        ),
        (
            "client_truncated_token",
            "client",
            vec![0, 1, 1, 0x3f, 0x9a],
            "a Hello whose token stops after 2 bytes",
        ),
        (
            "client_truncated_input",
            "client",
            vec![1, 1, 0],
            "an Input without dy",
        ),
        (
            "client_trailing_byte",
            "client",
            vec![2, 42, 0],
            "a Ping followed by one more byte",
        ),
        (
            "client_u16_with_u32_marker",
            "client",
            vec![0, 0xfc, 1, 0, 0, 0, 0],
            "Hello.version (u16) with the FC marker",
        ),
        (
            "client_too_large",
            "client",
            too_large_client,
            "a payload over the 256-byte client limit",
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

    let kinds: Vec<Value> = KINDS
        .iter()
        .enumerate()
        .map(|(index, &kind)| {
            // The kind's wire index is the byte after a one-byte id.
            let mut buf = Vec::new();
            wire::encode_entity(
                &Entity {
                    id: 0,
                    kind,
                    x: 0,
                    y: 0,
                    score: 0,
                },
                &mut buf,
            );
            assert_eq!(usize::from(buf[1]), index, "{kind:?} out of order");
            Value::from(kind_name(kind))
        })
        .collect();

    let close_codes: Vec<Value> = CloseCode::ALL
        .iter()
        .map(|c| json!({"code": c.code(), "name": c.name(), "retry": retry_name(c.retry())}))
        .collect();

    let file = json!({
        "about": concat!(
            "Golden vectors of the wire protocol, written by protocol/tests/golden.rs; do not edit by hand. ",
            "Regenerate with: UPDATE_GOLDEN=1 cargo test -p protocol --test golden. ",
            "'vectors' are valid messages: 'hex' is the exact encoding, 'message' the value in the ",
            "JavaScript client's shape (camelCase fields, 'type' names the variant, tokens as 32 hex digits, ",
            "u64 fields as decimal strings). 'invalid' are payloads every decoder must reject. ",
            "'close_codes' is CloseCode::ALL with each code's retry policy."
        ),
        "protocol_version": PROTOCOL_VERSION,
        "max_client_msg_bytes": MAX_CLIENT_MSG_BYTES,
        "max_server_msg_bytes": MAX_SERVER_MSG_BYTES,
        "entity_kinds": kinds,
        "close_codes": close_codes,
        "vectors": out_vectors,
        "invalid": out_invalid,
    });
    layout(&file)
}

/// Lays the file out one array item per line, so that a protocol change
/// shows up in a diff as the vectors it changed and nothing else.
fn layout(file: &Value) -> String {
    let compact = |v: &Value| serde_json::to_string(v).expect("JSON values serialize");
    let object = file.as_object().expect("the file is an object");
    let fields: Vec<String> = object
        .iter()
        .map(|(key, value)| match value {
            Value::Array(items) => {
                let lines: Vec<String> = items
                    .iter()
                    .map(|i| format!("    {}", compact(i)))
                    .collect();
                format!(
                    "  {}: [\n{}\n  ]",
                    compact(&Value::from(key.as_str())),
                    lines.join(",\n")
                )
            }
            other => format!(
                "  {}: {}",
                compact(&Value::from(key.as_str())),
                compact(other)
            ),
        })
        .collect();
    format!("{{\n{}\n}}\n", fields.join(",\n"))
}

#[test]
fn every_variant_and_kind_is_covered() {
    let vectors = vectors();
    let variants: BTreeSet<String> = vectors
        .iter()
        .map(|(_, m)| {
            format!(
                "{}:{}",
                m.direction(),
                describe(m)["type"].as_str().expect("type")
            )
        })
        .collect();
    let want: BTreeSet<String> = [
        "client:Hello",
        "client:Input",
        "client:Ping",
        "server:Welcome",
        "server:Snapshot",
        "server:Pong",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(variants, want);
    let kinds: BTreeSet<&str> = vectors
        .iter()
        .filter_map(|(_, m)| match m {
            Msg::Server(ServerMsg::Snapshot(s)) => {
                Some(s.entities.iter().map(|e| kind_name(e.kind)))
            }
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(kinds.len(), KINDS.len(), "{kinds:?}");
}

#[test]
fn golden_file_is_up_to_date() {
    let path = golden_path();
    let fresh = render();
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create golden/");
        std::fs::write(&path, &fresh).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}\nGenerate it with: UPDATE_GOLDEN=1 cargo test -p protocol --test golden",
            path.display()
        )
    });
    if committed != fresh {
        let first_diff = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "lengths differ".to_owned(),
                |i| format!("line {}", i + 1),
            );
        panic!(
            "{} is stale (first difference at {first_diff}). If the protocol change is intended, \
             regenerate it with `UPDATE_GOLDEN=1 cargo test -p protocol --test golden`, commit it, \
             and update the JavaScript codec in server/web/arena.js until `node --test` passes.",
            path.display()
        );
    }
}

//! The seed corpora in `fuzz/corpus/`, written from code.
//!
//! `decode` seeds are payloads from `protocol/golden/vectors.json` (valid
//! messages of every type and the documented invalid ones) plus a few that
//! the vectors do not cover. `session` seeds are [`Builder`] scripts: valid
//! sessions, and one input per way of breaking the protocol that the
//! connection layer handles.
//!
//! `UPDATE_SEEDS=1 cargo test` (inside `fuzz/`) rewrites both directories;
//! plain `cargo test` fails if they are stale, and plays every session seed
//! against the fuzz server with the target's checks.

use crate::script::{Builder, Burst, HelloChoice, Message, Second, Split, Spoil};
use crate::session;
use crate::ws::{self, BINARY, CLOSE, CONTINUATION, FIN, Length, PING, TEXT};
use protocol::{ClientMsg, Input, Ping};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Golden vectors used as `decode` seeds: every message type, with the
/// varint edges that matter most. The test fails if one is renamed.
const GOLDEN_SEEDS: &[&str] = &[
    "hello_new",
    "hello_resume",
    "hello_version_65535",
    "input_seq_0",
    "input_seq_4294967295",
    "input_dx_-128_dy_0",
    "ping_t_0",
    "ping_t_18446744073709551615",
    "welcome_player_0",
    "welcome_resumed_room_u32_max",
    "welcome_u16_max_fields",
    "snapshot_empty",
    "snapshot_one_Player",
    "snapshot_one_Pickup",
    "snapshot_one_DroppedPlayer",
    "snapshot_edges_251",
    "snapshot_edges_4294967295",
    "snapshot_260_entities",
    "pong_t_0",
    "pong_t_18446744073709551615",
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex in vectors.json"))
        .collect()
}

fn decode_seeds() -> BTreeMap<String, Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/golden/vectors.json");
    let text = std::fs::read_to_string(&path).expect("read protocol/golden/vectors.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("vectors.json is JSON");
    let mut seeds = BTreeMap::new();
    let mut types = std::collections::BTreeSet::new();
    for v in json["vectors"].as_array().expect("vectors") {
        let name = v["name"].as_str().expect("name");
        if GOLDEN_SEEDS.contains(&name) {
            types.insert(v["message"]["type"].as_str().expect("type").to_owned());
            seeds.insert(
                format!("valid-{name}"),
                unhex(v["hex"].as_str().expect("hex")),
            );
        }
    }
    assert_eq!(
        seeds.len(),
        GOLDEN_SEEDS.len(),
        "a golden vector named in GOLDEN_SEEDS is missing from vectors.json"
    );
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["Hello", "Input", "Ping", "Pong", "Snapshot", "Welcome"],
        "every message type has a seed"
    );
    for v in json["invalid"].as_array().expect("invalid") {
        let name = v["name"].as_str().expect("name");
        seeds.insert(
            format!("invalid-{name}"),
            unhex(v["hex"].as_str().expect("hex")),
        );
    }
    // Beyond the vectors: a longer varint form than necessary (accepted,
    // PROTOCOL.md §3.1), and a snapshot claiming the most entities the
    // limit allows with none following.
    let mut long_form = vec![2, 251];
    long_form.extend_from_slice(&5u16.to_le_bytes());
    seeds.insert("extra-ping_t_5_in_long_form".into(), long_form);
    let mut claim = vec![1, 0, 0, 0, 251];
    claim.extend_from_slice(&u16::MAX.to_le_bytes());
    seeds.insert("extra-snapshot_claims_65535_entities".into(), claim);
    seeds
}

fn msg_frame(msg: &ClientMsg) -> Vec<u8> {
    let mut out = Vec::new();
    ws::put_client_frame(&mut out, true, BINARY, &crate::script::message_bytes(msg));
    out
}

fn session_seeds() -> BTreeMap<String, Vec<u8>> {
    let new = || Builder::script(HelloChoice::New);
    let none = || Builder::script(HelloChoice::None);
    let whole = Spoil::default();
    let mut s: BTreeMap<&str, Vec<u8>> = BTreeMap::new();

    // Raw mode: bytes as-is after an optional Hello.
    s.insert("raw-empty", Builder::raw(HelloChoice::None, b""));
    s.insert("raw-hello-only", Builder::raw(HelloChoice::New, b""));
    s.insert(
        "raw-http-request",
        Builder::raw(HelloChoice::None, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"),
    );
    s.insert(
        "raw-resume-unknown-token",
        Builder::raw(HelloChoice::Resume([0x42; 16]), b""),
    );
    s.insert(
        "raw-resume-recent",
        Builder::raw(HelloChoice::ResumeRecent(0), b""),
    );
    let mut session = msg_frame(&ClientMsg::Input(Input {
        seq: 1,
        dx: 5,
        dy: -5,
    }));
    session.extend(msg_frame(&ClientMsg::Ping(Ping { t: 9 })));
    ws::put_client_frame(&mut session, true, CLOSE, &1000u16.to_be_bytes());
    s.insert(
        "raw-hello-input-ping-close",
        Builder::raw(HelloChoice::New, &session),
    );

    // Valid sessions.
    s.insert(
        "hello-inputs-ping-close",
        new()
            .input(1, 0)
            .input(0, 1)
            .ping(42)
            .close(1000, b"bye")
            .build(),
    );
    s.insert(
        "hello-pauses-snapshots",
        new()
            .timed()
            .input(1, 1)
            .pause(12)
            .ping(1)
            .pause(12)
            .input(-1, 0)
            .close(1000, b"")
            .build(),
    );
    s.insert(
        "hello-fragmented-inputs",
        new()
            .message(Message::NextInput { dx: 1, dy: 2 }, Split::At(2), whole)
            .message(Message::NextInput { dx: 3, dy: 4 }, Split::Bytes, whole)
            .message(Message::Ping(7), Split::PingBetween, whole)
            .close(1000, b"")
            .build(),
    );
    s.insert(
        "hello-odd-length-forms",
        new()
            .frame(FIN | BINARY, true, Length::Force16, &[2, 3])
            .frame(FIN | BINARY, true, Length::Force64, &[2, 4])
            .build(),
    );
    s.insert(
        "hello-unmasked-ping",
        new()
            .message(
                Message::Ping(5),
                Split::Whole,
                Spoil {
                    unmasked: true,
                    ..whole
                },
            )
            .build(),
    );
    s.insert(
        "hello-ws-ping-pong",
        new().ws_ping(b"abc").ws_pong(b"").ws_ping(b"").build(),
    );
    s.insert("hello-close-empty", new().input(0, 0).close_empty().build());
    s.insert(
        "hello-close-app-code",
        new().close(4123, "au revoir".as_bytes()).build(),
    );
    s.insert("hello-eof-no-close", new().input(1, 1).ping(3).build());

    // Close frames the server must refuse.
    s.insert("bad-close-one-byte", new().close_one_byte().build());
    s.insert("bad-close-code-1005", new().close(1005, b"").build());
    s.insert(
        "bad-close-reason-utf8",
        new().close(1000, &[0xff, 0xfe]).build(),
    );
    s.insert(
        "bad-close-reason-long",
        new().close(1000, &[b'x'; 200]).build(),
    );

    // Frames the server must refuse.
    s.insert(
        "bad-text-frame",
        new()
            .frame(FIN | TEXT, true, Length::Minimal, b"hello")
            .build(),
    );
    s.insert(
        "bad-reserved-bits",
        new()
            .frame(FIN | 0x40 | BINARY, true, Length::Minimal, &[2, 1])
            .build(),
    );
    s.insert(
        "bad-unknown-opcode",
        new().frame(FIN | 0x3, true, Length::Minimal, b"?").build(),
    );
    s.insert(
        "bad-fragmented-ping",
        new().frame(PING, true, Length::Minimal, b"").build(),
    );
    s.insert("bad-ping-too-long", new().ws_ping(&[0; 126]).build());
    s.insert(
        "bad-continuation-first",
        new()
            .frame(FIN | CONTINUATION, true, Length::Minimal, &[2, 1])
            .build(),
    );
    s.insert(
        "bad-message-inside-fragments",
        new()
            .frame(BINARY, true, Length::Minimal, &[2])
            .frame(FIN | BINARY, true, Length::Minimal, &[2, 1])
            .build(),
    );
    s.insert(
        "bad-frame-over-hard-limit",
        new().big(FIN | BINARY, 40_000, 0).build(),
    );
    s.insert(
        "bad-message-over-limit",
        new().big(FIN | BINARY, 200, 1).build(),
    );
    s.insert(
        "bad-claimed-length",
        new()
            .frame(FIN | BINARY, true, Length::Claim(u64::MAX), b"")
            .build(),
    );
    s.insert(
        "bad-trailing-and-truncated",
        new()
            .message(
                Message::Ping(1),
                Split::Whole,
                Spoil {
                    trailing: Some(0),
                    ..whole
                },
            )
            .message(
                Message::Input {
                    seq: 300,
                    dx: 0,
                    dy: 0,
                },
                Split::Whole,
                Spoil {
                    truncate: true,
                    ..whole
                },
            )
            .build(),
    );
    s.insert(
        "bad-hello-twice",
        new()
            .message(
                Message::Hello {
                    version: protocol::PROTOCOL_VERSION,
                    token: None,
                },
                Split::Whole,
                whole,
            )
            .build(),
    );
    s.insert(
        "bad-raw-bytes-mid-session",
        new().input(1, 0).raw_bytes(&[0x82, 0x7e, 0x00]).build(),
    );

    // Handshake failures.
    s.insert(
        "handshake-wrong-version",
        none()
            .message(
                Message::Hello {
                    version: 2,
                    token: None,
                },
                Split::Whole,
                whole,
            )
            .build(),
    );
    s.insert("handshake-input-first", none().input(1, 1).build());
    s.insert(
        "handshake-ping-then-hello",
        none()
            .ws_ping(b"early")
            .message(
                Message::Hello {
                    version: protocol::PROTOCOL_VERSION,
                    token: None,
                },
                Split::At(1),
                whole,
            )
            .build(),
    );
    s.insert("handshake-timeout", none().timed().pause(25).build());

    // Timeouts, limits, resume and takeover.
    s.insert("idle-timeout", new().timed().pause(30).build());
    s.insert(
        "burst-inputs",
        new()
            .burst(Burst::Inputs, 64)
            .pause(0)
            .burst(Burst::Inputs, 64)
            .build(),
    );
    s.insert(
        "burst-pings",
        new()
            .burst(Burst::AppPings, 40)
            .burst(Burst::WsPings, 64)
            .burst(Burst::Pongs, 8)
            .build(),
    );
    s.insert(
        "takeover",
        new()
            .timed()
            .input(1, 0)
            .takeover(Second {
                input: true,
                ping: true,
                close: true,
            })
            .pause(20)
            .input(0, 1)
            .build(),
    );
    // The hang the fuzzer found (minimized): the session ends with a code
    // that makes the player leave (1003, after the text frame) just as a
    // second connection resumes it; the emptied room closes under the
    // resume, whose command is stranded in the closed channel and whose
    // reply never comes.
    s.insert(
        "regression-resume-races-room-close",
        new()
            .frame(FIN | TEXT, true, Length::Minimal, b"x")
            .takeover(Second {
                close: true,
                ..Second::default()
            })
            .build(),
    );
    s.insert(
        "takeover-twice",
        new()
            .takeover(Second::default())
            .pause(10)
            .takeover(Second {
                close: true,
                ..Second::default()
            })
            .build(),
    );
    s.insert(
        "resume-recent",
        Builder::script(HelloChoice::ResumeRecent(1))
            .input(1, 1)
            .close(1000, b"")
            .build(),
    );
    s.insert(
        "resume-unknown-token",
        Builder::script(HelloChoice::Resume([7; 16]))
            .input(1, 1)
            .build(),
    );
    s.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Writes `seeds` into `target`'s corpus (removing files that are not
/// seeds) when `UPDATE_SEEDS` is set; otherwise checks that they match.
fn sync(target: &str, seeds: &BTreeMap<String, Vec<u8>>) {
    let dir = corpus_dir(target);
    let on_disk: BTreeMap<String, Vec<u8>> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .map(|e| e.expect("corpus entry"))
                .map(|e| {
                    let name = e.file_name().into_string().expect("UTF-8 file name");
                    (name, std::fs::read(e.path()).expect("read seed"))
                })
                .collect()
        })
        .unwrap_or_default();
    if std::env::var_os("UPDATE_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).expect("create corpus directory");
        for name in on_disk.keys().filter(|n| !seeds.contains_key(*n)) {
            std::fs::remove_file(dir.join(name)).expect("remove stale seed");
        }
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes).expect("write seed");
        }
    } else {
        assert!(
            &on_disk == seeds,
            "fuzz/corpus/{target} is stale: run `UPDATE_SEEDS=1 cargo test` in fuzz/"
        );
    }
}

#[test]
fn decode_corpus_is_current() {
    sync("decode", &decode_seeds());
}

#[test]
fn session_corpus_is_current() {
    sync("session", &session_seeds());
}

#[test]
fn every_session_seed_runs_clean() {
    let harness = session::harness();
    for (name, bytes) in session_seeds() {
        eprintln!("seed {name}");
        harness.run(&bytes);
    }
}

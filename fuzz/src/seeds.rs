//! The seed corpora in `fuzz/corpus/`, written from code.
//!
//! `decode` seeds are payloads from `protocol/golden/vectors.json` (the
//! first and the last vector of each family, names that differ only in
//! their numbers such as `ping_t_0` … `ping_t_18446744073709551615`, and
//! every documented invalid payload) and, where they exist,
//! `games/*/golden/vectors.json` (the first and the last valid and invalid
//! vector of each kind); plus game bytes inside their envelope and an edge
//! form that the vectors do not cover. `session` seeds are [`Builder`] scripts: valid sessions of both
//! games (a four game played to its end against an opponent, with a
//! rematch), joins of recent rooms and codes, resumes with events, and one
//! input per way of breaking the protocol that the server handles.
//! `replay` seeds are recordings written with the replay format's writer
//! (`server::record::format`) while a [`Replayer`] plays the same calls,
//! so that their hashes and keyframes are the game's: rooms of both games,
//! a restored room, a gap, and two damaged files; each recording twice, as
//! a file and in the target's unpacked form.
//!
//! `UPDATE_SEEDS=1 cargo test` (inside `fuzz/`) rewrites the three
//! directories; plain `cargo test` fails if they are stale, plays every
//! session seed against the fuzz server with the target's checks, and
//! replays every replay seed's file.

use crate::script::{
    Builder, Burst, GameKind, LastEvent, Message, Opening, Opponent, Pace, Request, Seat, Second,
    Split, Spoil, TokenChoice, game_message, message_bytes, msg_frame,
};
use crate::session;
use crate::ws::{self, BINARY, CLOSE, CONTINUATION, FIN, Length, PING, TEXT};
use arena::msg::{ArenaState, Entity, EntityKind, Move};
use four::msg::{FourEvent, FourMsg, Seat as FourSeat};
use game_api::replay::{Input, Replayer};
use game_api::{RoomOptions, RoomType};
use protocol::{ClientMsg, Event, Ping, RoomRequest, ServerMsg, State};
use serde::Serialize;
use server::record::format::{self, ChunkWriter, EndKind, Header, ReadError};
use server::record::replay::{ReplayFailure, replay};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The envelope's message types; each must have a valid seed.
const MESSAGE_TYPES: [&str; 9] = [
    "Event", "EventAck", "Game", "Hello", "Leave", "Ping", "Pong", "State", "Welcome",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

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

/// A vector name's family: the name with each run of digits replaced by
/// `#`.
fn family(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

/// The first and the last of each group of `items` (by `group`), in file
/// order: the edges that matter most, without every step in between.
fn ends(
    items: &[serde_json::Value],
    group: impl Fn(&serde_json::Value) -> String,
) -> BTreeSet<&str> {
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for v in items {
        let name = v["name"].as_str().expect("every vector has a name");
        groups.entry(group(v)).or_default().push(name);
    }
    groups
        .values()
        .flat_map(|names| [names[0], names[names.len() - 1]])
        .collect()
}

/// The seeds of one golden file, named `{prefix}valid-…` and
/// `{prefix}invalid-…`: of the valid vectors, those [`ends`] picks with
/// `valid`; of the invalid ones, those it picks with `invalid` (or all).
/// Returns the `type` of each valid vector picked.
fn golden(
    path: &Path,
    prefix: &str,
    valid: impl Fn(&serde_json::Value) -> String,
    invalid: Option<&dyn Fn(&serde_json::Value) -> String>,
    seeds: &mut BTreeMap<String, Vec<u8>>,
) -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let list = |key: &str| json[key].as_array().cloned().unwrap_or_default();
    let (vectors, invalids) = (list("vectors"), list("invalid"));
    let picked = ends(&vectors, valid);
    let mut types = BTreeSet::new();
    let mut add = |kind: &str, v: &serde_json::Value| {
        let name = v["name"].as_str().expect("every vector has a name");
        let hex = v["hex"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: {name} has no hex", path.display()));
        seeds.insert(format!("{prefix}{kind}-{name}"), unhex(hex));
    };
    for v in vectors
        .iter()
        .filter(|v| picked.contains(v["name"].as_str().unwrap_or("")))
    {
        if let Some(t) = v["message"]["type"].as_str() {
            types.insert(t.to_owned());
        }
        add("valid", v);
    }
    let picked = invalid.map(|group| ends(&invalids, group));
    for v in &invalids {
        let name = v["name"].as_str().unwrap_or("");
        if picked.as_ref().is_none_or(|p| p.contains(name)) {
            add("invalid", v);
        }
    }
    types
}

fn decode_seeds() -> BTreeMap<String, Vec<u8>> {
    let mut seeds = BTreeMap::new();
    // The envelope: the ends of each family of names that differ only in
    // their numbers (`ping_t_0` … `ping_t_18446744073709551615`), and every
    // documented invalid payload.
    let types = golden(
        &root().join("protocol/golden/vectors.json"),
        "",
        |v| family(v["name"].as_str().unwrap_or("")),
        None,
        &mut seeds,
    );
    assert!(
        MESSAGE_TYPES.iter().all(|t| types.contains(*t)),
        "every message type has a seed: {types:?}"
    );
    for game in GameKind::ALL {
        let path = root()
            .join("games")
            .join(game.name())
            .join("golden/vectors.json");
        // Each game's vectors are optional: a game may have none yet. They
        // are many (every event of four, say), so only the ends of each
        // kind, valid and invalid.
        if path.exists() {
            let kind = |v: &serde_json::Value| v["kind"].as_str().unwrap_or("").to_owned();
            let prefix = format!("{}-", game.name());
            golden(&path, &prefix, kind, Some(&kind), &mut seeds);
        }
    }

    let mut extra = |name: &str, bytes: Vec<u8>| {
        seeds.insert(format!("extra-{name}"), bytes);
    };
    // A longer varint form than necessary (accepted, PROTOCOL.md §3.1).
    extra("ping_t_5_in_long_form", vec![2, 251, 5, 0]);
    // Game bytes inside the envelope, where the target hands them on to
    // the game's decoders.
    let arena_state = ArenaState {
        players: 300,
        entities: [0u32, 250, 251, 65_536, u32::MAX]
            .iter()
            .zip(
                [
                    EntityKind::Player,
                    EntityKind::Pickup,
                    EntityKind::DroppedPlayer,
                ]
                .into_iter()
                .cycle(),
            )
            .map(|(&v, kind)| Entity {
                id: v,
                kind,
                x: v as u16,
                y: 251,
                score: v,
            })
            .collect(),
    };
    let state = ServerMsg::State(State {
        tick: 70_000,
        ack: 251,
        data: game_api::codec::to_vec(&arena_state),
    });
    extra("arena_state_in_a_state", server_bytes(&state));
    extra(
        "arena_move_in_a_game_message",
        message_bytes(&game_message(9, &Move { dx: -128, dy: 127 })),
    );
    extra(
        "four_drop_in_a_game_message",
        message_bytes(&game_message(1, &FourMsg::Drop { column: 6 })),
    );
    let won = FourEvent::Won {
        seat: FourSeat::Yellow,
        cells: vec![3, 10, 17, 24],
    };
    let event = ServerMsg::Event(Event {
        seq: 251,
        data: game_api::codec::to_vec(&won),
    });
    extra("four_event_won_in_an_event", server_bytes(&event));
    seeds
}

/// The bytes of a server message.
fn server_bytes(msg: &ServerMsg) -> Vec<u8> {
    let mut out = Vec::new();
    protocol::encode_server(msg, &mut out);
    out
}

/// A quick join of `game` with no options.
fn quick(game: GameKind) -> Opening {
    Opening::Hello(Request::Quick {
        game,
        pace: Pace::Default,
    })
}

/// A creation of a room of `game` with no options.
fn create(game: GameKind, private: bool) -> Opening {
    Opening::Hello(Request::Create {
        game,
        pace: Pace::Default,
        private,
    })
}

/// A `Hello` whose request comes from the input's bytes.
fn any(request: RoomRequest) -> Opening {
    Opening::Hello(Request::Any(request))
}

/// Seeds in the order the test plays them.
#[derive(Default)]
struct Ordered(Vec<(&'static str, Vec<u8>)>);

impl Ordered {
    fn insert(&mut self, name: &'static str, bytes: Vec<u8>) {
        assert!(self.0.iter().all(|(n, _)| *n != name), "seed {name} twice");
        self.0.push((name, bytes));
    }
}

/// The `session` seeds, in the order the test plays them against one
/// server: a seed that joins a recent room or code, or resumes a recent
/// session, follows the seeds that leave those behind (the fuzzer, which
/// runs them in any order, finds whatever the inputs before left).
fn session_seeds() -> Vec<(String, Vec<u8>)> {
    use GameKind::{Arena, Four};
    let arena = || Builder::script(&quick(Arena));
    let four = || Builder::script(&quick(Four));
    let none = || Builder::script(&Opening::None);
    let whole = Spoil::default();
    let hello_v2 = |room| Message::Hello {
        version: protocol::PROTOCOL_VERSION,
        resume: None,
        room,
    };
    let mut s = Ordered::default();

    // Raw mode: bytes as-is after an optional opening.
    s.insert("raw-empty", Builder::raw(&Opening::None, b""));
    s.insert("raw-hello-only", Builder::raw(&quick(Arena), b""));
    s.insert(
        "raw-http-request",
        Builder::raw(&Opening::None, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"),
    );
    s.insert(
        "raw-resume-unknown-token",
        Builder::raw(
            &Opening::Resume {
                token: TokenChoice::Given([0x42; 16]),
                last_event: LastEvent::Seen,
            },
            b"",
        ),
    );
    let mut session = msg_frame(&game_message(1, &Move { dx: 5, dy: -5 }));
    session.extend(msg_frame(&ClientMsg::Ping(Ping { t: 9 })));
    ws::put_client_frame(&mut session, true, CLOSE, &1000u16.to_be_bytes());
    s.insert(
        "raw-arena-move-ping-close",
        Builder::raw(&quick(Arena), &session),
    );

    // Valid arena sessions.
    s.insert(
        "arena-moves-ping-close",
        arena()
            .arena_move(1, 0)
            .arena_move(0, 1)
            .ping(42)
            .close(1000, b"bye")
            .build(),
    );
    s.insert(
        "arena-fast-pauses-states",
        Builder::script(&Opening::Hello(Request::Quick {
            game: Arena,
            pace: Pace::Fast,
        }))
        .timed()
        .arena_move(1, 1)
        .pause(12)
        .ping(1)
        .pause(12)
        .arena_move(-1, 0)
        .close(1000, b"")
        .build(),
    );
    s.insert(
        "arena-create-with-opponent-leave",
        Builder::script(&Opening::Hello(Request::Create {
            game: Arena,
            pace: Pace::Normal,
            private: false,
        }))
        .opponent(Opponent {
            plays: true,
            leaves: true,
            ..Opponent::default()
        })
        .arena_move(1, 1)
        .send(Message::Leave)
        .build(),
    );
    s.insert(
        "arena-fragmented-messages",
        arena()
            .message(Message::Move { dx: 1, dy: 2 }, Split::At(2), whole)
            .message(Message::Move { dx: 3, dy: 4 }, Split::Bytes, whole)
            .message(Message::Ping(7), Split::PingBetween, whole)
            .close(1000, b"")
            .build(),
    );
    s.insert(
        "arena-odd-length-forms",
        arena()
            .frame(FIN | BINARY, true, Length::Force16, &[2, 3])
            .frame(FIN | BINARY, true, Length::Force64, &[2, 4])
            .build(),
    );
    s.insert(
        "arena-unmasked-ping",
        arena()
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
        "arena-ws-ping-pong",
        arena().ws_ping(b"abc").ws_pong(b"").ws_ping(b"").build(),
    );
    s.insert(
        "arena-close-empty",
        arena().arena_move(0, 0).close_empty().build(),
    );
    s.insert(
        "arena-close-app-code",
        arena().close(4123, "au revoir".as_bytes()).build(),
    );
    s.insert(
        "arena-eof-no-close",
        arena().arena_move(1, 1).ping(3).build(),
    );
    s.insert(
        "arena-join-recent-room",
        Builder::script(&Opening::Hello(Request::RecentRoom(0)))
            .arena_move(-1, -1)
            .send(Message::Leave)
            .build(),
    );

    // Four in a row: alone, then played to the end with a rematch.
    s.insert(
        "four-alone-rejected-ack",
        four()
            .drop_disc(3)
            .send(Message::Rematch)
            .pause(0)
            .ack_seen()
            .close(1000, b"")
            .build(),
    );
    s.insert(
        "four-game-played-rematch",
        Builder::script(&create(Four, false))
            .opponent(Opponent {
                plays: true,
                rematch: true,
                acks: true,
                column: 0,
                ..Opponent::default()
            })
            .play(22, 3)
            .ack_seen()
            .send(Message::Rematch)
            .play(22, 3)
            .ack_seen()
            .send(Message::Leave)
            .build(),
    );
    s.insert(
        "four-quick-opponent-first-leaves",
        four()
            .opponent(Opponent {
                seat: Seat::Quick,
                plays: true,
                acks: true,
                column: 1,
                ..Opponent::default()
            })
            .play(2, 5)
            .send(Message::Leave)
            .build(),
    );
    // A private table: the opponent comes by code and leaves mid-game; the
    // host's stream just ends, so it stays seated, dropped, for the grace.
    s.insert(
        "four-private-opponent-by-code-leaves",
        Builder::script(&create(Four, true))
            .opponent(Opponent {
                seat: Seat::ByCode,
                plays: true,
                acks: true,
                leaves: true,
                column: 6,
                ..Opponent::default()
            })
            .play(3, 2)
            .drop_disc(9)
            .build(),
    );
    // Someone else takes the free seat by the invite code, plays against
    // the dropped host (whose turn never comes), and goes.
    s.insert(
        "four-join-recent-code",
        Builder::script(&Opening::Hello(Request::RecentCode(0)))
            .drop_disc(0)
            .pause(0)
            .ack_seen()
            .build(),
    );
    // The host comes back (the third newest session: the code joiner's is
    // the newest, the opponent's the second), claiming the last event it
    // saw: the events of its absence come first, numbered from there.
    s.insert(
        "four-resume-host-seen",
        Builder::script(&Opening::Resume {
            token: TokenChoice::Recent(2),
            last_event: LastEvent::Seen,
        })
        .ack_seen()
        .drop_disc(1)
        .close(1000, b"")
        .build(),
    );
    // The code joiner comes back claiming no event: every event it did not
    // acknowledge comes again; then it acknowledges more than it got.
    s.insert(
        "four-resume-joiner-from-zero",
        Builder::script(&Opening::Resume {
            token: TokenChoice::Recent(1),
            last_event: LastEvent::Given(0),
        })
        .send(Message::Ack(u32::MAX))
        .build(),
    );
    s.insert(
        "four-takeover-mid-game",
        Builder::script(&create(Four, false))
            .opponent(Opponent {
                plays: true,
                column: 4,
                ..Opponent::default()
            })
            .play(2, 3)
            .takeover(Second {
                input: true,
                ping: true,
                close: false,
            })
            .pause(0)
            .drop_disc(0)
            .build(),
    );
    s.insert(
        "resume-unknown-token",
        Builder::script(&Opening::Resume {
            token: TokenChoice::Given([7; 16]),
            last_event: LastEvent::Seen,
        })
        .arena_move(1, 1)
        .build(),
    );

    // Room requests the server must refuse.
    s.insert(
        "refused-unknown-room-type",
        Builder::script(&any(RoomRequest::quick("chess"))).build(),
    );
    s.insert(
        "refused-bad-room-type-name",
        Builder::script(&any(RoomRequest::quick("Arena!"))).build(),
    );
    let nine: Vec<(String, String)> = (0..9).map(|i| (format!("k{i}"), "v".into())).collect();
    s.insert(
        "refused-too-many-options",
        Builder::script(&any(RoomRequest::Create {
            room_type: "arena".into(),
            options: nine,
            private: false,
        }))
        .build(),
    );
    let huge: Vec<(String, String)> = (0..5).map(|i| (format!("k{i}"), "x".repeat(255))).collect();
    s.insert(
        "refused-hello-over-limit",
        Builder::script(&any(RoomRequest::QuickJoin {
            room_type: "arena".into(),
            options: huge,
        }))
        .build(),
    );
    s.insert(
        "refused-by-game-arena-pace",
        Builder::script(&Opening::Hello(Request::Create {
            game: Arena,
            pace: Pace::Unknown,
            private: false,
        }))
        .build(),
    );
    s.insert(
        "refused-by-game-four-options",
        Builder::script(&Opening::Hello(Request::Create {
            game: Four,
            pace: Pace::Fast,
            private: true,
        }))
        .build(),
    );
    s.insert(
        "refused-no-such-room",
        Builder::script(&any(RoomRequest::JoinById { room_id: 4_000_000 })).build(),
    );
    s.insert(
        "refused-no-such-code",
        Builder::script(&any(RoomRequest::JoinByCode {
            code: "abcd-efgh".into(),
        }))
        .build(),
    );
    s.insert(
        "refused-seat-ticket",
        Builder::script(&any(RoomRequest::Reserved {
            ticket: protocol::SeatTicket([7; 16]),
        }))
        .build(),
    );

    // Game messages the room's game cannot decode (1007).
    s.insert(
        "bad-game-data-arena",
        arena()
            .send(Message::Game {
                seq: 1,
                data: vec![1, 2, 3],
            })
            .build(),
    );
    s.insert(
        "bad-game-data-four",
        Builder::script(&create(Four, false))
            .send(Message::Game {
                seq: 1,
                data: vec![9],
            })
            .build(),
    );
    s.insert("bad-arena-move-in-four", four().arena_move(1, 0).build());

    // Close frames the server must refuse.
    s.insert("bad-close-one-byte", arena().close_one_byte().build());
    s.insert("bad-close-code-1005", arena().close(1005, b"").build());
    s.insert(
        "bad-close-reason-utf8",
        arena().close(1000, &[0xff, 0xfe]).build(),
    );
    s.insert(
        "bad-close-reason-long",
        arena().close(1000, &[b'x'; 200]).build(),
    );

    // Frames the server must refuse.
    s.insert(
        "bad-text-frame",
        arena()
            .frame(FIN | TEXT, true, Length::Minimal, b"hello")
            .build(),
    );
    s.insert(
        "bad-reserved-bits",
        arena()
            .frame(FIN | 0x40 | BINARY, true, Length::Minimal, &[2, 1])
            .build(),
    );
    s.insert(
        "bad-unknown-opcode",
        arena()
            .frame(FIN | 0x3, true, Length::Minimal, b"?")
            .build(),
    );
    s.insert(
        "bad-fragmented-ping",
        arena().frame(PING, true, Length::Minimal, b"").build(),
    );
    s.insert("bad-ping-too-long", arena().ws_ping(&[0; 126]).build());
    s.insert(
        "bad-continuation-first",
        arena()
            .frame(FIN | CONTINUATION, true, Length::Minimal, &[2, 1])
            .build(),
    );
    s.insert(
        "bad-message-inside-fragments",
        arena()
            .frame(BINARY, true, Length::Minimal, &[2])
            .frame(FIN | BINARY, true, Length::Minimal, &[2, 1])
            .build(),
    );
    s.insert(
        "bad-frame-over-hard-limit",
        arena().big(FIN | BINARY, 40_000, 0).build(),
    );
    s.insert(
        "bad-message-over-limit",
        arena().big(FIN | BINARY, 600, 1).build(),
    );
    s.insert(
        "bad-claimed-length",
        arena()
            .frame(FIN | BINARY, true, Length::Claim(u64::MAX), b"")
            .build(),
    );
    s.insert(
        "bad-trailing-and-truncated",
        arena()
            .message(
                Message::Ping(1),
                Split::Whole,
                Spoil {
                    trailing: Some(0),
                    ..whole
                },
            )
            .message(
                Message::Move { dx: 0, dy: 0 },
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
        arena().send(hello_v2(RoomRequest::quick("four"))).build(),
    );
    s.insert(
        "bad-raw-bytes-mid-session",
        arena()
            .arena_move(1, 0)
            .raw_bytes(&[0x82, 0x7e, 0x00])
            .build(),
    );

    // Handshake failures.
    s.insert(
        "handshake-wrong-version",
        none()
            .send(Message::Hello {
                version: 1,
                resume: None,
                room: RoomRequest::quick("arena"),
            })
            .build(),
    );
    s.insert(
        "handshake-game-message-first",
        none().arena_move(1, 1).build(),
    );
    s.insert(
        "handshake-ping-then-hello",
        none()
            .ws_ping(b"early")
            .message(hello_v2(RoomRequest::quick("four")), Split::At(1), whole)
            .build(),
    );
    s.insert("handshake-timeout", none().timed().pause(25).build());

    // Timeouts, limits, takeovers.
    s.insert("idle-timeout", arena().timed().pause(30).build());
    s.insert(
        "burst-moves",
        arena()
            .burst(Burst::Moves, 32)
            .pause(0)
            .burst(Burst::Moves, 32)
            .build(),
    );
    s.insert(
        "burst-pings",
        arena()
            .burst(Burst::AppPings, 32)
            .burst(Burst::WsPings, 32)
            .burst(Burst::Pongs, 8)
            .build(),
    );
    s.insert(
        "burst-drops-four",
        four()
            .burst(Burst::Drops, 32)
            .burst(Burst::Rematches, 4)
            .ack_seen()
            .build(),
    );
    s.insert(
        "takeover",
        arena()
            .timed()
            .arena_move(1, 0)
            .takeover(Second {
                input: true,
                ping: true,
                close: true,
            })
            .pause(20)
            .arena_move(0, 1)
            .build(),
    );
    // The hang the fuzzer found (minimized): the session ends with a code
    // that makes the player leave (1003, after the text frame) just as a
    // second connection resumes it; the emptied room closes under the
    // resume, whose command is stranded in the closed channel and whose
    // reply never comes.
    s.insert(
        "regression-resume-races-room-close",
        arena()
            .frame(FIN | TEXT, true, Length::Minimal, b"x")
            .takeover(Second {
                close: true,
                ..Second::default()
            })
            .build(),
    );
    s.insert(
        "takeover-twice",
        arena()
            .takeover(Second::default())
            .pause(10)
            .takeover(Second {
                close: true,
                ..Second::default()
            })
            .build(),
    );
    s.0.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The `replay` seeds' server version: any text does (a replay only shows
/// it), and a fixed one keeps the seeds current across releases.
const SEED_SERVER_VERSION: &str = "fuzz-seed";

/// The room types the `replay` target replays with: both games, as
/// registered by default.
fn replay_room_types() -> Vec<RoomType> {
    vec![
        arena::room_type(arena::ArenaConfig::default()),
        four::room_type(),
    ]
}

/// A recording written the way a recording room writes one (see
/// `server::record`), for the `replay` seeds: every call goes into the
/// chunk being built and is made on a [`Replayer`] of the same game, whose
/// state gives the recorded hashes and keyframes.
struct SeedRecording {
    /// What the recording says about its room.
    header: Header,
    /// The game, as the recorded room's game is after the calls so far.
    game: Replayer,
    /// Every chunk's payload; the last is the one being built.
    chunks: Vec<Vec<u8>>,
    /// The tick the chunk being built starts at.
    chunk_start: u32,
    /// Ticks a chunk spans (a room's chunk is a second of ticks).
    chunk_ticks: u32,
    /// A chunk starts with a keyframe every this many ticks.
    keyframe_every: u32,
}

impl SeedRecording {
    /// A new room of `room_type` with `options` and `seed`, ticking
    /// `tick_hz` times a second: its first chunk starts at tick 0 with the
    /// game's `save` as made by `RoomType::create` for that seed.
    fn new(room_type: &RoomType, options: &[(&str, &str)], seed: u64, tick_hz: u16) -> Self {
        let pairs: Vec<(String, String)> = options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let options = RoomOptions::new(pairs.clone());
        let header = Header {
            server_version: SEED_SERVER_VERSION.to_owned(),
            room_type: room_type.name().to_owned(),
            config: room_type.config_bytes(),
            room: 1,
            options: pairs,
            seed,
            tick_hz,
            start_tick: 0,
            restored: false,
            hash_every: 1,
            started_unix_ms: 1_700_000_000_000,
        };
        let saved = room_type
            .create(&options, seed, usize::MAX)
            .expect("the seed's room is made")
            .save();
        let game = Replayer::new(room_type, &options, seed, tick_hz).expect("the seed's game");
        let mut first = Vec::new();
        ChunkWriter::begin(&mut first, 0);
        ChunkWriter::keyframe(&mut first, &saved);
        Self {
            header,
            game,
            chunks: vec![first],
            chunk_start: 0,
            chunk_ticks: u32::from(tick_hz),
            keyframe_every: 10 * u32::from(tick_hz),
        }
    }

    /// The same room after a server restart: a new recording of the room
    /// restored from its state now, starting at its tick with a keyframe.
    fn restarted(&self, room_type: &RoomType) -> Self {
        let tick = self.game.tick();
        let saved = self.game.keyframe();
        let options = RoomOptions::new(self.header.options.clone());
        let game = Replayer::from_keyframe(room_type, &options, &saved, tick, self.header.tick_hz)
            .expect("the seed's game restores");
        let mut first = Vec::new();
        ChunkWriter::begin(&mut first, tick);
        ChunkWriter::keyframe(&mut first, &saved);
        Self {
            header: Header {
                room: self.header.room + 1,
                start_tick: tick,
                restored: true,
                ..self.header.clone()
            },
            game,
            chunks: vec![first],
            chunk_start: tick,
            chunk_ticks: self.chunk_ticks,
            keyframe_every: self.keyframe_every,
        }
    }

    /// Hashes every `every` steps.
    fn hash_every(mut self, every: u32) -> Self {
        self.header.hash_every = every;
        self
    }

    /// Chunks of `ticks` ticks, and a keyframe every `keyframe_every`.
    fn chunks_of(mut self, ticks: u32, keyframe_every: u32) -> Self {
        self.chunk_ticks = ticks;
        self.keyframe_every = keyframe_every;
        self
    }

    /// The chunk being built.
    fn chunk(&mut self) -> &mut Vec<u8> {
        self.chunks.last_mut().expect("a recording has a chunk")
    }

    /// Makes `input` on the game; the caller has recorded it.
    fn apply(&mut self, input: &Input) {
        self.game
            .apply(input)
            .unwrap_or_else(|e| panic!("the seed's game refused {input:?}: {e}"));
    }

    /// A player joins: the attempt, which the game must accept, then the
    /// join.
    fn join(mut self, player: u32) -> Self {
        self = self.attempt(player);
        ChunkWriter::join(self.chunk(), player);
        self.apply(&Input::Join(player));
        self
    }

    /// A join attempt alone (one the game refuses: the room then records
    /// no join).
    fn attempt(mut self, player: u32) -> Self {
        ChunkWriter::join_attempt(self.chunk(), player);
        self.apply(&Input::JoinAttempt(player));
        self
    }

    /// A player's connection is lost.
    fn drop_player(mut self, player: u32) -> Self {
        ChunkWriter::drop_player(self.chunk(), player);
        self.apply(&Input::Drop(player));
        self
    }

    /// A dropped player is back.
    fn resume(mut self, player: u32) -> Self {
        ChunkWriter::resume(self.chunk(), player);
        self.apply(&Input::Resume(player));
        self
    }

    /// A player leaves for good.
    fn leave(mut self, player: u32) -> Self {
        ChunkWriter::leave(self.chunk(), player);
        self.apply(&Input::Leave(player));
        self
    }

    /// A game message from `player`, encoded as a client encodes it.
    fn message<M: Serialize>(mut self, player: u32, seq: u32, message: &M) -> Self {
        let mut data = Vec::new();
        game_api::codec::encode(message, &mut data);
        ChunkWriter::message(self.chunk(), player, seq, &data);
        self.apply(&Input::Message { player, seq, data });
        self
    }

    /// A step, then what a recording room writes after it: the state's
    /// hash on the hash ticks; at a chunk's end, a new chunk, starting
    /// with a keyframe on the keyframe ticks.
    fn step(mut self) -> Self {
        ChunkWriter::step(self.chunk());
        self.apply(&Input::Step);
        let tick = self.game.tick();
        let saved = self.game.keyframe();
        if tick.is_multiple_of(self.header.hash_every) {
            ChunkWriter::hash(self.chunk(), format::short_hash(&saved));
        }
        let keyframe_tick = tick.is_multiple_of(self.keyframe_every);
        if keyframe_tick || tick - self.chunk_start >= self.chunk_ticks {
            let mut next = Vec::new();
            ChunkWriter::begin(&mut next, tick);
            if keyframe_tick {
                ChunkWriter::keyframe(&mut next, &saved);
            }
            self.chunks.push(next);
            self.chunk_start = tick;
        }
        self
    }

    /// `n` steps.
    fn steps(mut self, n: u32) -> Self {
        for _ in 0..n {
            self = self.step();
        }
        self
    }

    /// Chunks the server dropped rather than wait: the chunk being built
    /// and `ticks` more steps are not recorded; the next chunk starts with
    /// a keyframe when `keyframe` (as the server writes it), without one
    /// otherwise (a recording a replay cannot follow).
    fn gap(mut self, ticks: u32, keyframe: bool) -> Self {
        for _ in 0..ticks {
            self.apply(&Input::Step);
        }
        let tick = self.game.tick();
        let chunk = self.chunk();
        chunk.clear();
        ChunkWriter::begin(chunk, tick);
        if keyframe {
            let saved = self.game.keyframe();
            ChunkWriter::keyframe(self.chunk(), &saved);
        }
        self.chunk_start = tick;
        self
    }

    /// The recording's last record.
    fn end(mut self, kind: EndKind, text: &str) -> Self {
        ChunkWriter::end(self.chunk(), kind, text);
        self
    }

    /// The frames' payloads, in the file's order: the header's, then each
    /// chunk's.
    fn payloads(&self) -> Vec<Vec<u8>> {
        let mut out = vec![format::header_payload(&self.header)];
        out.extend(self.chunks.iter().cloned());
        out
    }

    /// The replay file.
    fn file(&self) -> Vec<u8> {
        let mut out = format::MAGIC.to_vec();
        for payload in self.payloads() {
            out.extend(format::frame(&payload));
        }
        out
    }

    /// The recording in the `replay` target's unpacked form: each frame's
    /// payload uncompressed, after its length (u32, little-endian); the
    /// target compresses them into a file.
    fn unpacked(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for payload in self.payloads() {
            let len = u32::try_from(payload.len()).expect("a seed's payload is small");
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&payload);
        }
        out
    }
}

/// What a `replay` seed's file gives when read and replayed with
/// `--verify`.
#[derive(Debug)]
enum Outcome {
    /// It verifies: every hash and keyframe matches; with this many gaps.
    Verifies {
        /// Stretches of ticks not recorded.
        gaps: usize,
    },
    /// The reader says the file ends inside a frame.
    Truncated,
    /// The replay cannot follow it past a gap.
    Unfollowable,
}

/// A `replay` seed: a recording in both of the target's forms, and what
/// its file gives.
struct ReplaySeed {
    /// The seeds' names, without their form's prefix.
    name: &'static str,
    /// The replay file (the seed `file-NAME`).
    file: Vec<u8>,
    /// The unpacked form (the seed `unpacked-NAME`).
    unpacked: Vec<u8>,
    /// What the file gives.
    outcome: Outcome,
}

/// The recordings of the `replay` seeds: an arena room with joins, moves,
/// a drop, a resume and leaves; a game of four played to its win (with a
/// move out of turn and a refused third player) and a rematch; the same
/// table restarted mid-game (a restored room); an arena room at the fast
/// pace with a gap; and damaged files: the arena room truncated inside its
/// last frame, and a gap with no keyframe after it.
fn replay_seeds() -> Vec<ReplaySeed> {
    use four::msg::FourMsg::{Drop, Rematch};
    let [arena_type, four_type] = <[RoomType; 2]>::try_from(replay_room_types())
        .unwrap_or_else(|_| unreachable!("two room types"));
    let mv = |dx, dy| Move { dx, dy };
    let arena_room = SeedRecording::new(&arena_type, &[], 7, 30)
        .chunks_of(10, 20)
        .join(1)
        .join(2)
        .message(1, 1, &mv(127, 0))
        .message(2, 1, &mv(-128, 127))
        .steps(4)
        .join(3)
        .message(3, 1, &mv(0, -64))
        .message(1, 2, &mv(5, 5))
        .steps(6)
        .drop_player(2)
        .steps(5)
        .resume(2)
        .message(2, 2, &mv(1, -1))
        .step()
        .leave(3)
        .steps(12)
        .leave(1)
        .leave(2)
        .step()
        .end(EndKind::Closed, "");

    // Seed 2 is even: red, the first to join, starts; yellow's first drop
    // is out of turn, and a third player finds the table full.
    let mut four_room = SeedRecording::new(&four_type, &[], 2, 20)
        .chunks_of(20, 200)
        .join(1)
        .join(2)
        .attempt(3)
        .message(2, 1, &Drop { column: 3 })
        .step();
    let mut seq = [1, 1];
    // Red (player 1) in column 0, yellow in column 1: red's fourth disc
    // wins.
    for turn in 0..7 {
        let player = turn % 2;
        seq[player] += 1;
        four_room = four_room
            .message(
                player as u32 + 1,
                seq[player],
                &Drop {
                    column: player as u8,
                },
            )
            .step();
    }
    let four_room = four_room
        .message(1, 10, &Rematch)
        .message(2, 10, &Rematch)
        .steps(2)
        .message(2, 11, &Drop { column: 6 })
        .steps(3);
    let four_restored = four_room
        .restarted(&four_type)
        .message(1, 11, &Drop { column: 5 })
        .steps(2)
        .drop_player(1)
        .steps(3)
        .end(EndKind::Stopped, "the server stopped");
    let four_room = four_room
        .leave(2)
        .steps(2)
        .end(EndKind::Ended, "the table closed");

    let arena_gap = SeedRecording::new(&arena_type, &[("pace", "fast")], u64::MAX, 30)
        .hash_every(2)
        .chunks_of(8, 1000)
        .join(9)
        .message(9, 1, &mv(-20, 90))
        .steps(10)
        .gap(15, true)
        .join(10)
        .message(10, 1, &mv(64, 64))
        .steps(6)
        .end(EndKind::Full, "");

    let no_keyframe = SeedRecording::new(&four_type, &[], 5, 20)
        .chunks_of(2, 200)
        .join(1)
        .steps(3)
        .gap(4, false)
        .steps(2);

    let seed = |name, recording: &SeedRecording, outcome| ReplaySeed {
        name,
        file: recording.file(),
        unpacked: recording.unpacked(),
        outcome,
    };
    let mut truncated = seed("arena-room-truncated", &arena_room, Outcome::Truncated);
    // Cut inside the last frame (in its checksum), and in the unpacked form
    // inside the last chunk's last record (the end, without its text's
    // length byte).
    truncated.file.truncate(truncated.file.len() - 3);
    truncated.unpacked.pop();
    vec![
        seed("arena-room", &arena_room, Outcome::Verifies { gaps: 0 }),
        truncated,
        seed("four-game", &four_room, Outcome::Verifies { gaps: 0 }),
        seed(
            "four-restored",
            &four_restored,
            Outcome::Verifies { gaps: 0 },
        ),
        seed("arena-fast-gap", &arena_gap, Outcome::Verifies { gaps: 1 }),
        seed(
            "four-gap-without-keyframe",
            &no_keyframe,
            Outcome::Unfollowable,
        ),
    ]
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
        let stale: Vec<&String> = on_disk
            .keys()
            .chain(seeds.keys())
            .filter(|n| on_disk.get(*n) != seeds.get(*n))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert!(
            stale.is_empty(),
            "fuzz/corpus/{target} is stale ({stale:?}): run `UPDATE_SEEDS=1 cargo test` in fuzz/"
        );
    }
}

#[test]
fn decode_corpus_is_current() {
    sync("decode", &decode_seeds());
}

#[test]
fn session_corpus_is_current() {
    sync("session", &session_seeds().into_iter().collect());
}

#[test]
fn replay_corpus_is_current() {
    let seeds = replay_seeds()
        .into_iter()
        .flat_map(|s| {
            [
                (format!("file-{}", s.name), s.file),
                (format!("unpacked-{}", s.name), s.unpacked),
            ]
        })
        .collect();
    sync("replay", &seeds);
}

/// Every `replay` seed's file reads and replays with `--verify` as its
/// recording meant: the whole ones verify (so the seeds reach every hash
/// and keyframe comparison, and the fuzzer starts from states that
/// match), the damaged ones fail where they were damaged.
#[test]
fn replay_seeds_replay_as_meant() {
    let room_types = replay_room_types();
    for seed in replay_seeds() {
        let name = seed.name;
        let read = format::read(&seed.file);
        match (&seed.outcome, read) {
            (Outcome::Truncated, Err(ReadError::Truncated { .. })) => {}
            (Outcome::Verifies { gaps }, Ok(recording)) => {
                let report =
                    replay(&room_types, &recording, true).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(report.gaps.len(), *gaps, "{name}: gaps {report:?}");
                assert!(
                    report.hashes > 0 && report.end.is_some(),
                    "{name}: {report:?}"
                );
            }
            (Outcome::Unfollowable, Ok(recording)) => {
                let result = replay(&room_types, &recording, true);
                assert!(
                    matches!(result, Err(ReplayFailure::Unfollowable(_))),
                    "{name}: {result:?}"
                );
            }
            (outcome, read) => panic!("{name}: meant {outcome:?}, read {read:?}"),
        }
    }
}

#[test]
fn families_group_names_that_differ_in_numbers() {
    assert_eq!(family("ping_t_18446744073709551615"), "ping_t_#");
    assert_eq!(family("game_data_250_bytes"), family("game_data_0_bytes"));
    assert_eq!(
        family("welcome_resumed_room_u32_max"),
        "welcome_resumed_room_u#_max"
    );
}

/// Plays every session seed in order against one fuzz server (so that the
/// joins of recent rooms and the resumes find what the earlier seeds left),
/// with the target's checks.
#[test]
fn every_session_seed_runs_clean() {
    let harness = session::harness();
    for (name, bytes) in session_seeds() {
        eprintln!("seed {name}");
        harness.run(&bytes);
    }
}

/// The four seed plays a game to its end and begins a rematch. Both players
/// answer the server's pings only while they wait for their turn, so a
/// machine busy enough to hold the client back past the fuzz server's
/// 20 ms idle timeout can end a game early (4005, which the checks allow):
/// a few tries are allowed.
#[test]
fn the_four_seed_plays_a_game_and_a_rematch() {
    let name = "four-game-played-rematch";
    let (_, bytes) = session_seeds()
        .into_iter()
        .find(|(n, _)| n == name)
        .expect("the seed exists");
    let mut tries = Vec::new();
    for _ in 0..5 {
        let seen = session::harness().run(&bytes);
        let events: Vec<FourEvent> = seen[0]
            .events
            .iter()
            .map(|e| game_api::codec::decode(e).expect("checked by the harness"))
            .collect();
        let finished = events
            .iter()
            .any(|e| matches!(e, FourEvent::Won { .. } | FourEvent::Draw));
        let games = events
            .iter()
            .filter(|e| matches!(e, FourEvent::NewGame { .. }))
            .count();
        if finished && games >= 2 {
            return;
        }
        tries.push((seen[0].close, events));
    }
    panic!("{name}: no game finished and rematched in five tries: {tries:?}");
}

//! Keeps `PROTOCOL.md` honest: every worked example, every table and every
//! stated constant in the document is compared with what the code does.
//!
//! Conventions the document follows, so that this test can read it:
//!
//! - A worked example is a line `<!-- example: NAME -->`, then a fenced
//!   block with info string `hex` holding the bytes as two-digit hex, then a
//!   breakdown table whose first column holds those same bytes in
//!   backticks, row by row. Each `NAME` is one of [`expected_examples`],
//!   which defines the value the example shows; the test encodes that value
//!   and compares the bytes, decodes the document's bytes and compares the
//!   value, and checks that the breakdown covers exactly the bytes of the
//!   block. A missing, duplicated or unknown example fails the test.
//! - `<!-- variants: TYPE -->` precedes a table (`| index | `Variant` | ...`)
//!   that must list every variant of `ClientMsg`, `ServerMsg` or
//!   `RoomRequest` with the index the encoder writes.
//! - `<!-- sizes -->` precedes the size table (`| what | min | typical |
//!   max |`); see [`expected_sizes`].
//! - `<!-- close-codes -->` precedes the close-code table (`| code | `name`
//!   | `Variant` | meaning | Retry |`), which must list every [`CloseCode`]
//!   exactly once with its name and retry policy.
//! - `<!-- rejects -->` precedes a table of payloads every decoder refuses
//!   (`| direction | `hex` | why | Error |`): each must fail to decode with
//!   that error.
//! - `<!-- json: NAME -->` precedes the field table of an HTTP response
//!   (`| `field` | JSON type | meaning |`), compared with the server's
//!   struct that is serialised (see [`json_shapes`]).
//! - `<!-- check: key=value ... -->` states constants; see
//!   [`checked_values`]. Some are the server's or a game's, which this crate
//!   cannot import: [`source_facts`] pins each to a line of its source file,
//!   so that those files changing fails here too.
//!
//! The game types of the document's informative game section (the arena's
//! and four-in-a-row's) are mirrored here, and [`game_shapes`] checks the
//! mirrors field by field against the games' sources.
//!
//! Failures print what the code produces, ready to paste into the document.

mod common;

use common::Msg;
use protocol::limits::{
    CODE_ALPHABET, CODE_LEN, MAX_CODE_FIELD_BYTES, MAX_OPTION_KEY_BYTES, MAX_OPTION_VALUE_BYTES,
    MAX_OPTIONS, MAX_ROOM_TYPE_BYTES, check_request, normalize_code,
};
use protocol::wire::MAX_STATE_HEADER_BYTES;
use protocol::{
    ClientMsg, CloseCode, DecodeError, Event, EventAck, GameMsg, Hello, MAX_CLIENT_MSG_BYTES,
    MAX_SERVER_MSG_BYTES, PROTOCOL_VERSION, Ping, Pong, Redirect, Resume, ResumeToken, RoomRequest,
    SeatTicket, ServerMsg, State, Welcome, decode_client, decode_server, decode_value,
    encode_value,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/PROTOCOL.md");

fn read_doc() -> String {
    std::fs::read_to_string(DOC_PATH).unwrap_or_else(|e| panic!("cannot read {DOC_PATH}: {e}"))
}

/// A file of the workspace, by its path from the workspace root.
fn workspace_file(path: &str) -> Result<String, String> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&full).map_err(|e| format!("cannot read {path}: {e}"))
}

// ---------------------------------------------------------------------------
// Mirrors of the game types the document uses as examples. Field order and
// variant order are the wire format; `game_shapes` holds them to the games'
// sources.

/// `games/arena/src/msg.rs`: `Move`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ArenaMove {
    dx: i8,
    dy: i8,
}

/// `games/arena/src/msg.rs`: `ArenaWelcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ArenaWelcome {
    world_width: u16,
    world_height: u16,
    view_radius: u16,
    player_speed: u16,
}

/// `games/arena/src/msg.rs`: `ArenaState`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ArenaState {
    players: u16,
    entities: Vec<ArenaEntity>,
}

/// `games/arena/src/msg.rs`: `Entity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ArenaEntity {
    id: u32,
    kind: EntityKind,
    x: u16,
    y: u16,
    score: u32,
}

/// `games/arena/src/msg.rs`: `EntityKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum EntityKind {
    Player,
    Pickup,
    DroppedPlayer,
}

/// `games/four/src/msg.rs`: `FourMsg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum FourMsg {
    Drop {
        column: u8,
    },
    #[allow(dead_code)]
    Rematch,
}

/// `games/four/src/msg.rs`: `FourWelcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct FourWelcome {
    columns: u8,
    rows: u8,
}

/// `games/four/src/msg.rs`: `Seat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Seat {
    #[allow(dead_code)]
    Red,
    Yellow,
}

/// `games/four/src/msg.rs`: `FourEvent`, its first variant only (index 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum FourEventSeated {
    Seated { seat: Seat, player: u32 },
}

/// The shape a game type must have in its source: a struct's fields, or an
/// enum's variants (and, for some, a variant's fields).
enum Shape {
    Struct(&'static [(&'static str, &'static str)]),
    Enum(&'static [&'static str]),
    Variant(&'static str, &'static [(&'static str, &'static str)]),
}

/// Every mirrored game type: (source file, type name, shape).
fn game_shapes() -> Vec<(&'static str, &'static str, Shape)> {
    const ARENA: &str = "games/arena/src/msg.rs";
    const FOUR: &str = "games/four/src/msg.rs";
    vec![
        (ARENA, "Move", Shape::Struct(&[("dx", "i8"), ("dy", "i8")])),
        (
            ARENA,
            "ArenaWelcome",
            Shape::Struct(&[
                ("world_width", "u16"),
                ("world_height", "u16"),
                ("view_radius", "u16"),
                ("player_speed", "u16"),
            ]),
        ),
        (
            ARENA,
            "ArenaState",
            Shape::Struct(&[("players", "u16"), ("entities", "Vec<Entity>")]),
        ),
        (
            ARENA,
            "Entity",
            Shape::Struct(&[
                ("id", "u32"),
                ("kind", "EntityKind"),
                ("x", "u16"),
                ("y", "u16"),
                ("score", "u32"),
            ]),
        ),
        (
            ARENA,
            "EntityKind",
            Shape::Enum(&["Player", "Pickup", "DroppedPlayer"]),
        ),
        (FOUR, "FourMsg", Shape::Enum(&["Drop", "Rematch"])),
        (FOUR, "FourMsg", Shape::Variant("Drop", &[("column", "u8")])),
        (
            FOUR,
            "FourWelcome",
            Shape::Struct(&[("columns", "u8"), ("rows", "u8")]),
        ),
        (FOUR, "Seat", Shape::Enum(&["Red", "Yellow"])),
        (
            FOUR,
            "FourEvent",
            Shape::Enum(&[
                "Seated",
                "Moved",
                "Won",
                "Draw",
                "Forfeit",
                "Dropped",
                "Resumed",
                "Left",
                "RematchAsked",
                "NewGame",
                "Rejected",
            ]),
        ),
        (
            FOUR,
            "FourEvent",
            Shape::Variant("Seated", &[("seat", "Seat"), ("player", "PlayerId")]),
        ),
    ]
}

fn game_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value(value, &mut out);
    out
}

// ---------------------------------------------------------------------------
// The examples.

/// The token used by every example that carries one.
const TOKEN: ResumeToken = ResumeToken([
    0x3f, 0x9a, 0x0c, 0x51, 0xe2, 0x7b, 0x44, 0x18, 0xa6, 0xd0, 0x95, 0x2e, 0x6c, 0xf1, 0x03, 0xb7,
]);

/// The invite code used by every example that carries one.
const CODE: &str = "K7M2XQ9P";

/// The seat ticket used by every example that carries one (not the token:
/// the two must not be confused in the breakdowns).
const TICKET: SeatTicket = SeatTicket([
    0xc4, 0x1d, 0x7e, 0x09, 0x5b, 0x32, 0xa8, 0x6f, 0x10, 0xe7, 0x4c, 0x93, 0x2a, 0xd5, 0x68, 0x01,
]);

/// The node URL of the `Redirect` example.
const NODE_URL: &str = "ws://10.0.0.2:9002/ws";

/// Milliseconds since the Unix epoch, a typical `u64` on the wire.
const EPOCH_MS: u64 = 1_700_000_000_000;

/// What a worked example shows: a whole message, or a game's bytes.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Msg(Msg),
    ArenaState(ArenaState),
}

impl Value {
    fn encode(&self) -> Vec<u8> {
        match self {
            Value::Msg(m) => m.encode(),
            Value::ArenaState(s) => game_bytes(s),
        }
    }

    fn decode_like(&self, bytes: &[u8]) -> Result<Value, String> {
        match self {
            Value::Msg(m) => m.decode_like(bytes).map(Value::Msg),
            Value::ArenaState(_) => decode_value::<ArenaState, MAX_SERVER_MSG_BYTES>(bytes)
                .map(Value::ArenaState)
                .map_err(|e| e.to_string()),
        }
    }
}

fn client(m: ClientMsg) -> Value {
    Value::Msg(Msg::Client(m))
}

fn server(m: ServerMsg) -> Value {
    Value::Msg(Msg::Server(m))
}

fn hello(resume: Option<Resume>, room: RoomRequest) -> ClientMsg {
    ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        resume,
        room,
    })
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The arena's welcome data in the examples: a 2000 × 2000 field, view
/// radius 300, 8 units per tick.
const ARENA_WELCOME: ArenaWelcome = ArenaWelcome {
    world_width: 2000,
    world_height: 2000,
    view_radius: 300,
    player_speed: 8,
};

fn welcome_arena() -> Welcome {
    Welcome {
        version: PROTOCOL_VERSION,
        player_id: 70_000,
        room_id: 3,
        room_type: "arena".into(),
        invite_code: None,
        resume_token: TOKEN,
        resumed: false,
        tick_hz: 30,
        game: game_bytes(&ARENA_WELCOME),
    }
}

/// An arena entity of the documented typical size: id and positions of 251
/// ..= 65,535, a score below 251.
const TYPICAL_ENTITY: ArenaEntity = ArenaEntity {
    id: 300,
    kind: EntityKind::Player,
    x: 1000,
    y: 1500,
    score: 12,
};

fn arena_state_example() -> ArenaState {
    ArenaState {
        players: 2,
        entities: vec![
            TYPICAL_ENTITY,
            ArenaEntity {
                id: 5,
                kind: EntityKind::Pickup,
                x: 17,
                y: 250,
                score: 0,
            },
        ],
    }
}

/// The examples the document must contain, by name, with the values they
/// show.
fn expected_examples() -> Vec<(&'static str, Value)> {
    vec![
        (
            "hello_quick_join",
            client(hello(
                None,
                RoomRequest::QuickJoin {
                    room_type: "arena".into(),
                    options: pairs(&[("pace", "fast")]),
                },
            )),
        ),
        (
            "hello_create_private",
            client(hello(
                None,
                RoomRequest::Create {
                    room_type: "four".into(),
                    options: vec![],
                    private: true,
                },
            )),
        ),
        (
            "hello_join_by_id",
            client(hello(None, RoomRequest::JoinById { room_id: 1000 })),
        ),
        (
            "hello_join_by_code",
            client(hello(None, RoomRequest::JoinByCode { code: CODE.into() })),
        ),
        (
            "hello_reserved",
            client(hello(None, RoomRequest::Reserved { ticket: TICKET })),
        ),
        (
            "hello_resume",
            client(hello(
                Some(Resume {
                    token: TOKEN,
                    last_event: 300,
                }),
                RoomRequest::JoinById { room_id: 7 },
            )),
        ),
        (
            "game_arena",
            client(ClientMsg::Game(GameMsg {
                seq: 1000,
                data: game_bytes(&ArenaMove { dx: -127, dy: 64 }),
            })),
        ),
        (
            "game_four",
            client(ClientMsg::Game(GameMsg {
                seq: 3,
                data: game_bytes(&FourMsg::Drop { column: 3 }),
            })),
        ),
        ("ping", client(ClientMsg::Ping(Ping { t: EPOCH_MS }))),
        (
            "event_ack",
            client(ClientMsg::EventAck(EventAck { upto: 300 })),
        ),
        ("leave", client(ClientMsg::Leave)),
        ("welcome_arena", server(ServerMsg::Welcome(welcome_arena()))),
        (
            "welcome_four_private",
            server(ServerMsg::Welcome(Welcome {
                version: PROTOCOL_VERSION,
                player_id: 12,
                room_id: 7,
                room_type: "four".into(),
                invite_code: Some(CODE.into()),
                resume_token: TOKEN,
                resumed: false,
                tick_hz: 20,
                game: game_bytes(&FourWelcome {
                    columns: 7,
                    rows: 6,
                }),
            })),
        ),
        (
            "state_arena",
            server(ServerMsg::State(State {
                tick: 123_456,
                ack: 1000,
                data: game_bytes(&arena_state_example()),
            })),
        ),
        (
            "state_empty",
            server(ServerMsg::State(State {
                tick: 42,
                ack: 0,
                data: vec![],
            })),
        ),
        (
            "event_four",
            server(ServerMsg::Event(Event {
                seq: 1,
                data: game_bytes(&FourEventSeated::Seated {
                    seat: Seat::Yellow,
                    player: 300,
                }),
            })),
        ),
        (
            "pong",
            server(ServerMsg::Pong(Pong {
                t: 42,
                server_time_ms: EPOCH_MS,
            })),
        ),
        (
            "redirect",
            server(ServerMsg::Redirect(Redirect {
                url: NODE_URL.into(),
                ticket: TICKET,
            })),
        ),
        ("arena_state", Value::ArenaState(arena_state_example())),
    ]
}

// ---------------------------------------------------------------------------
// Variant indices.

fn client_variant(m: &ClientMsg) -> &'static str {
    match m {
        ClientMsg::Hello(_) => "Hello",
        ClientMsg::Game(_) => "Game",
        ClientMsg::Ping(_) => "Ping",
        ClientMsg::EventAck(_) => "EventAck",
        ClientMsg::Leave => "Leave",
    }
}

fn server_variant(m: &ServerMsg) -> &'static str {
    match m {
        ServerMsg::Welcome(_) => "Welcome",
        ServerMsg::State(_) => "State",
        ServerMsg::Event(_) => "Event",
        ServerMsg::Pong(_) => "Pong",
        ServerMsg::Redirect(_) => "Redirect",
    }
}

fn request_variant(r: &RoomRequest) -> &'static str {
    match r {
        RoomRequest::QuickJoin { .. } => "QuickJoin",
        RoomRequest::Create { .. } => "Create",
        RoomRequest::JoinById { .. } => "JoinById",
        RoomRequest::JoinByCode { .. } => "JoinByCode",
        RoomRequest::Reserved { .. } => "Reserved",
    }
}

/// Variant name → index, for each enum the document tabulates: the index is
/// the first byte the encoder writes (the name functions above are
/// exhaustive matches, so a new variant without a sample fails to compile
/// or to be found).
fn expected_variants() -> BTreeMap<&'static str, BTreeMap<&'static str, u8>> {
    let mut out = BTreeMap::new();
    let requests = [
        RoomRequest::quick("arena"),
        RoomRequest::Create {
            room_type: "four".into(),
            options: vec![],
            private: false,
        },
        RoomRequest::JoinById { room_id: 1 },
        RoomRequest::JoinByCode { code: CODE.into() },
        RoomRequest::Reserved { ticket: TICKET },
    ];
    let mut map = BTreeMap::new();
    for r in &requests {
        map.insert(request_variant(r), game_bytes(r)[0]);
    }
    out.insert("RoomRequest", map);
    let mut map = BTreeMap::new();
    for (_, value) in expected_examples() {
        if let Value::Msg(Msg::Client(m)) = &value {
            map.insert(client_variant(m), value.encode()[0]);
        }
    }
    out.insert("ClientMsg", map);
    let mut map = BTreeMap::new();
    for (_, value) in expected_examples() {
        if let Value::Msg(Msg::Server(m)) = &value {
            map.insert(server_variant(m), value.encode()[0]);
        }
    }
    out.insert("ServerMsg", map);
    out
}

// ---------------------------------------------------------------------------
// Sizes.

fn len_client(m: ClientMsg) -> usize {
    Msg::Client(m).encode().len()
}

fn len_server(m: ServerMsg) -> usize {
    Msg::Server(m).encode().len()
}

/// A string of `n` bytes that is a valid name.
fn name(n: usize) -> String {
    "a".repeat(n)
}

/// The largest room request the bounds allow: the longest type name, the
/// most options with the longest keys and values, private.
fn largest_request() -> RoomRequest {
    let options = (0..MAX_OPTIONS)
        .map(|i| {
            (
                format!("{i}{}", name(MAX_OPTION_KEY_BYTES - 1)),
                "v".repeat(MAX_OPTION_VALUE_BYTES),
            )
        })
        .collect();
    let r = RoomRequest::Create {
        room_type: name(MAX_ROOM_TYPE_BYTES),
        options,
        private: true,
    };
    assert_eq!(check_request(&r), Ok(()), "the largest request is valid");
    let largest = Msg::Client(hello(
        Some(Resume {
            token: TOKEN,
            last_event: u32::MAX,
        }),
        r.clone(),
    ));
    assert!(
        largest.decode_like(&largest.encode()).is_ok(),
        "the largest valid Hello decodes"
    );
    r
}

/// Bytes of a message that are not the game's (for a `Redirect`, not the
/// URL's): its length minus the data.
fn envelope_len(msg: ServerMsg) -> usize {
    let data = match &msg {
        ServerMsg::Welcome(w) => w.game.len(),
        ServerMsg::State(s) => s.data.len(),
        ServerMsg::Event(e) => e.data.len(),
        ServerMsg::Pong(_) => 0,
        ServerMsg::Redirect(r) => r.url.len(),
    };
    len_server(msg) - data
}

fn game_envelope_len(seq: u32, data: usize) -> usize {
    len_client(ClientMsg::Game(GameMsg {
        seq,
        data: vec![0; data],
    })) - data
}

/// Largest game data a `Game` with this `seq` may carry: the decoder's
/// limit counts decoded sizes, so this is less than the wire limit leaves.
/// Checks that one byte more is refused.
fn largest_game_data(seq: u32) -> usize {
    let game = |n: usize| -> Vec<u8> {
        Msg::Client(ClientMsg::Game(GameMsg {
            seq,
            data: vec![7; n],
        }))
        .encode()
    };
    let n = (0..MAX_CLIENT_MSG_BYTES)
        .rev()
        .find(|&n| decode_client(&game(n)).is_ok())
        .expect("some game message decodes");
    assert!(
        decode_client(&game(n + 1)).is_err(),
        "{} bytes of data are refused",
        n + 1
    );
    n
}

/// Largest data a `State` may carry for the Rust client's decoder, found
/// by bisection (once); checks that one byte more is refused.
fn largest_state_data() -> usize {
    static FOUND: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *FOUND.get_or_init(search_largest_state_data)
}

fn search_largest_state_data() -> usize {
    let ok = |n: usize| {
        let msg = Msg::Server(ServerMsg::State(State {
            tick: 0,
            ack: 0,
            data: vec![7; n],
        }));
        decode_server(&msg.encode()).is_ok()
    };
    let (mut lo, mut hi) = (0, MAX_SERVER_MSG_BYTES);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    assert!(ok(lo) && !ok(lo + 1));
    lo
}

/// Typical values the document names for the size table.
const TYPICAL_TICK: u32 = 10_000;
const TYPICAL_ACK: u32 = 5_000;
const TYPICAL_PLAYERS: u16 = 50;

const MIN_ENTITY: ArenaEntity = ArenaEntity {
    id: 0,
    kind: EntityKind::Player,
    x: 0,
    y: 0,
    score: 0,
};

const MAX_ENTITY: ArenaEntity = ArenaEntity {
    id: u32::MAX,
    kind: EntityKind::DroppedPlayer,
    x: u16::MAX,
    y: u16::MAX,
    score: u32::MAX,
};

fn arena20(players: u16, e: ArenaEntity) -> Vec<u8> {
    game_bytes(&ArenaState {
        players,
        entities: vec![e; 20],
    })
}

/// A whole `State` carrying `data`.
fn state_len(tick: u32, ack: u32, data: Vec<u8>) -> usize {
    len_server(ServerMsg::State(State { tick, ack, data }))
}

/// Rows of the size table: (min, typical, max) in bytes, by the row's first
/// cell with backticks removed.
fn expected_sizes() -> BTreeMap<&'static str, [usize; 3]> {
    let resume = |last_event| {
        Some(Resume {
            token: TOKEN,
            last_event,
        })
    };
    let hello_len = |resume, room| len_client(hello(resume, room));
    let welcome = |player_id, room_id, room_type: &str, code: Option<&str>, tick_hz, game| {
        envelope_len(ServerMsg::Welcome(Welcome {
            version: PROTOCOL_VERSION,
            player_id,
            room_id,
            room_type: room_type.into(),
            invite_code: code.map(str::to_owned),
            resume_token: TOKEN,
            resumed: false,
            tick_hz,
            game,
        }))
    };
    // Game data past 65,535 bytes takes the 5-byte length form; a server
    // message is at most 1 MiB, so never the 9-byte one.
    let big = vec![0u8; 70_000];
    let state = |tick, ack, data| envelope_len(ServerMsg::State(State { tick, ack, data }));
    let event = |seq, data| envelope_len(ServerMsg::Event(Event { seq, data }));
    let redirect = |url: String| {
        envelope_len(ServerMsg::Redirect(Redirect {
            url,
            ticket: TICKET,
        }))
    };

    BTreeMap::from([
        (
            "Hello, new player",
            [
                hello_len(None, RoomRequest::JoinById { room_id: 0 }),
                hello_len(None, RoomRequest::quick("arena")),
                hello_len(None, largest_request()),
            ],
        ),
        (
            "Hello, resuming",
            [
                hello_len(resume(0), RoomRequest::JoinById { room_id: 0 }),
                hello_len(resume(300), RoomRequest::JoinById { room_id: 7 }),
                hello_len(resume(u32::MAX), largest_request()),
            ],
        ),
        (
            "Hello, with a seat ticket",
            [hello_len(None, RoomRequest::Reserved { ticket: TICKET }); 3],
        ),
        (
            "Game, without the game's bytes",
            [
                game_envelope_len(0, 0),
                game_envelope_len(1000, 2),
                game_envelope_len(u32::MAX, 1000),
            ],
        ),
        (
            "Game, the game's bytes",
            [0, 2, largest_game_data(u32::MAX)],
        ),
        (
            "Ping",
            [
                len_client(ClientMsg::Ping(Ping { t: 0 })),
                len_client(ClientMsg::Ping(Ping { t: EPOCH_MS })),
                len_client(ClientMsg::Ping(Ping { t: u64::MAX })),
            ],
        ),
        (
            "EventAck",
            [
                len_client(ClientMsg::EventAck(EventAck { upto: 0 })),
                len_client(ClientMsg::EventAck(EventAck { upto: 12 })),
                len_client(ClientMsg::EventAck(EventAck { upto: u32::MAX })),
            ],
        ),
        (
            "Leave",
            [
                len_client(ClientMsg::Leave),
                len_client(ClientMsg::Leave),
                len_client(ClientMsg::Leave),
            ],
        ),
        (
            "Welcome, without the game's bytes",
            [
                welcome(0, 0, "a", None, 1, vec![]),
                welcome(70_000, 3, "arena", None, 30, game_bytes(&ARENA_WELCOME)),
                welcome(
                    u32::MAX,
                    u32::MAX,
                    &name(MAX_ROOM_TYPE_BYTES),
                    Some(CODE),
                    u16::MAX,
                    big.clone(),
                ),
            ],
        ),
        (
            "State, without the game's bytes",
            [
                state(0, 0, vec![]),
                state(TYPICAL_TICK, TYPICAL_ACK, vec![0; 200]),
                state(u32::MAX, u32::MAX, big.clone()),
            ],
        ),
        (
            "Event, without the game's bytes",
            [
                event(1, vec![]),
                event(12, vec![0; 5]),
                event(u32::MAX, big.clone()),
            ],
        ),
        (
            "Pong",
            [
                len_server(ServerMsg::Pong(Pong {
                    t: 0,
                    server_time_ms: 0,
                })),
                len_server(ServerMsg::Pong(Pong {
                    t: EPOCH_MS,
                    server_time_ms: EPOCH_MS,
                })),
                len_server(ServerMsg::Pong(Pong {
                    t: u64::MAX,
                    server_time_ms: u64::MAX,
                })),
            ],
        ),
        (
            "Redirect, without the URL",
            [
                redirect(String::new()),
                redirect(NODE_URL.into()),
                redirect("n".repeat(70_000)),
            ],
        ),
        (
            "Arena entity",
            [
                game_bytes(&MIN_ENTITY).len(),
                game_bytes(&TYPICAL_ENTITY).len(),
                game_bytes(&MAX_ENTITY).len(),
            ],
        ),
        (
            "Arena state, 20 entities",
            [
                arena20(0, MIN_ENTITY).len(),
                arena20(TYPICAL_PLAYERS, TYPICAL_ENTITY).len(),
                arena20(u16::MAX, MAX_ENTITY).len(),
            ],
        ),
        (
            "Arena State message, 20 entities",
            [
                state_len(0, 0, arena20(0, MIN_ENTITY)),
                state_len(
                    TYPICAL_TICK,
                    TYPICAL_ACK,
                    arena20(TYPICAL_PLAYERS, TYPICAL_ENTITY),
                ),
                state_len(u32::MAX, u32::MAX, arena20(u16::MAX, MAX_ENTITY)),
            ],
        ),
    ])
}

// ---------------------------------------------------------------------------
// Constants.

/// Server and game facts the document states, each pinned to a line of its
/// source: (check key, file, text the file must contain, value). Runs of
/// whitespace compare as one space.
fn source_facts() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    const LIMIT: &str = "server/src/net/limit.rs";
    const CONFIG: &str = "server/src/config.rs";
    const EVENTS: &str = "server/src/room/events.rs";
    vec![
        (
            "code_attempt_burst",
            LIMIT,
            "pub const CODE_ATTEMPT_BURST: u32 = 10;",
            "10",
        ),
        (
            "code_attempt_period_s",
            LIMIT,
            "pub const CODE_ATTEMPT_PERIOD: Duration = Duration::from_secs(6);",
            "6",
        ),
        ("flood_windows", LIMIT, "const FLOOD_STRIKES: u32 = 3;", "3"),
        (
            "flood_window_s",
            LIMIT,
            "const WINDOW: Duration = Duration::from_secs(1);",
            "1",
        ),
        (
            "min_burst",
            LIMIT,
            "let burst = (rate / 4.0).max(4.0);",
            "4",
        ),
        (
            "pings_per_sec",
            CONFIG,
            "env = \"GAME_MAX_PINGS_PER_SEC\", default_value_t = 10",
            "10",
        ),
        (
            "acks_per_sec",
            CONFIG,
            "env = \"GAME_MAX_ACKS_PER_SEC\", default_value_t = 30",
            "30",
        ),
        (
            "max_unacked_events",
            EVENTS,
            "pub const MAX_UNACKED_EVENTS: usize = 1024;",
            "1024",
        ),
        (
            "max_unacked_bytes",
            EVENTS,
            "pub const MAX_UNACKED_BYTES: usize = 1 << 20;",
            "1048576",
        ),
        (
            "game_msgs_per_sec",
            CONFIG,
            "env = \"GAME_MAX_INPUTS_PER_SEC\", default_value_t = 60",
            "60",
        ),
        (
            "resume_grace_s",
            CONFIG,
            "env = \"GAME_RESUME_GRACE\", default_value = \"15s\"",
            "15",
        ),
        (
            "handshake_timeout_s",
            CONFIG,
            "env = \"GAME_HANDSHAKE_TIMEOUT\", default_value = \"5s\"",
            "5",
        ),
        (
            "idle_timeout_s",
            CONFIG,
            "env = \"GAME_IDLE_TIMEOUT\", default_value = \"15s\"",
            "15",
        ),
        (
            "ping_interval_s",
            CONFIG,
            "env = \"GAME_PING_INTERVAL\", default_value = \"5s\"",
            "5",
        ),
        (
            "slow_timeout_s",
            CONFIG,
            "env = \"GAME_SLOW_TIMEOUT\", default_value = \"3s\"",
            "3",
        ),
        (
            "tick_hz",
            CONFIG,
            "env = \"GAME_TICK_HZ\", default_value_t = 30",
            "30",
        ),
        (
            "max_rooms",
            CONFIG,
            "env = \"GAME_MAX_ROOMS\", default_value_t = 1000",
            "1000",
        ),
        (
            "max_connections",
            CONFIG,
            "env = \"GAME_MAX_CONNECTIONS\", default_value_t = 10_000",
            "10000",
        ),
        (
            "max_event_bytes",
            "game-api/src/ctx.rs",
            "pub const MAX_EVENT_BYTES: usize = 64 * 1024;",
            "65536",
        ),
        (
            "four_tick_hz",
            "games/four/src/lib.rs",
            "const TICK_HZ: u16 = 20;",
            "20",
        ),
        (
            "four_linger_s",
            "games/four/src/lib.rs",
            "const LINGER: Duration = Duration::from_secs(120);",
            "120",
        ),
        (
            "ticket_ttl_s",
            "server/src/directory/mod.rs",
            "pub const TICKET_TTL: Duration = Duration::from_secs(10);",
            "10",
        ),
        // The cluster rules of section 2.11, as the reference client
        // applies them.
        (
            "max_redirects",
            "server/web/session.js",
            "export const MAX_REDIRECTS = 3;",
            "3",
        ),
        (
            "home_attempts",
            "server/web/session.js",
            "export const HOME_ATTEMPTS = 3;",
            "3",
        ),
    ]
}

fn fact(key: &str) -> u64 {
    source_facts()
        .into_iter()
        .find(|f| f.0 == key)
        .and_then(|f| f.3.parse().ok())
        .unwrap_or_else(|| panic!("no numeric source fact `{key}`"))
}

/// The values that `<!-- check: ... -->` lines may state, all of which must
/// be stated somewhere.
fn checked_values() -> BTreeMap<&'static str, String> {
    let code_space = (CODE_ALPHABET.len() as u64).pow(CODE_LEN as u32);
    // A full bucket at the start of a day, then one attempt per period for
    // the rest of it: the attempts in any 24 hours from one address.
    let day: u64 = 86_400;
    let attempts_per_day =
        fact("code_attempt_burst") + day.div_ceil(fact("code_attempt_period_s")) - 1;
    let rooms = 10_000u64;
    let chance = (attempts_per_day * rooms) as f64 / code_space as f64;
    let mut values = BTreeMap::from([
        ("protocol_version", PROTOCOL_VERSION.to_string()),
        ("max_client_msg_bytes", MAX_CLIENT_MSG_BYTES.to_string()),
        ("max_server_msg_bytes", MAX_SERVER_MSG_BYTES.to_string()),
        ("max_state_header_bytes", MAX_STATE_HEADER_BYTES.to_string()),
        ("max_room_type_bytes", MAX_ROOM_TYPE_BYTES.to_string()),
        ("max_options", MAX_OPTIONS.to_string()),
        ("max_option_key_bytes", MAX_OPTION_KEY_BYTES.to_string()),
        ("max_option_value_bytes", MAX_OPTION_VALUE_BYTES.to_string()),
        ("max_code_field_bytes", MAX_CODE_FIELD_BYTES.to_string()),
        ("code_len", CODE_LEN.to_string()),
        (
            "code_alphabet",
            String::from_utf8(CODE_ALPHABET.to_vec()).expect("ASCII"),
        ),
        ("code_alphabet_len", CODE_ALPHABET.len().to_string()),
        ("code_space", code_space.to_string()),
        ("code_attempts_per_day", attempts_per_day.to_string()),
        ("private_rooms", rooms.to_string()),
        ("guess_chance_per_day", format!("{chance:.1e}")),
        ("close_codes", CloseCode::ALL.len().to_string()),
        ("max_game_data_bytes", largest_game_data(0).to_string()),
        ("max_state_data_bytes", largest_state_data().to_string()),
    ]);
    // The rate limiter's burst: a quarter second's worth, at least
    // `min_burst`, whole messages.
    let burst = |rate: u64| (rate as f64 / 4.0).max(fact("min_burst") as f64) as u64;
    values.insert("game_burst", burst(fact("game_msgs_per_sec")).to_string());
    values.insert("ping_burst", burst(fact("pings_per_sec")).to_string());
    values.insert("ack_burst", burst(fact("acks_per_sec")).to_string());
    for (key, _, _, value) in source_facts() {
        values.insert(key, value.to_owned());
    }
    values
}

// ---------------------------------------------------------------------------
// HTTP responses.

/// Each JSON response the document tabulates: (marker name, source file,
/// struct serialised).
fn json_shapes() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("rooms", "server/src/room/lobby.rs", "Listing"),
        ("room-types", "server/src/room/lobby.rs", "TypeListing"),
        ("room-code", "server/src/net/mod.rs", "Resolved"),
    ]
}

/// How a Rust field type appears in JSON (serde_json's defaults).
fn json_type(rust: &str) -> Option<&'static str> {
    Some(match rust {
        "u16" | "u32" | "u64" | "RoomId" => "number",
        "String" => "string",
        "Option<&'static str>" => "string or null",
        "Option<String> (omitted if None)" => "string or absent",
        "Vec<String>" => "array of strings",
        "BTreeMap<String, String>" => "object of strings",
        "bool" => "boolean",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Reading Rust sources (just enough for plain structs and enums).

/// A field as declared: its name on the wire (after `#[serde(rename)]`)
/// and its type. A field that serde leaves out when it is `None`
/// (`#[serde(skip_serializing_if = "Option::is_none")]`) has
/// [`OMITTED_IF_NONE`] after its type.
type Fields = Vec<(String, String)>;

/// Marks the type of a field that is left out of the JSON when `None`.
const OMITTED_IF_NONE: &str = " (omitted if None)";

/// The body lines (between the braces) of `struct NAME` or `enum NAME` in
/// `source`.
fn item_body<'a>(source: &'a str, keyword: &str, item: &str) -> Result<Vec<&'a str>, String> {
    let lines: Vec<&str> = source.lines().collect();
    let head = format!("{keyword} {item} {{");
    let start = lines
        .iter()
        .position(|l| {
            let t = l.trim();
            t == head || t.strip_prefix("pub ") == Some(head.as_str())
        })
        .ok_or_else(|| format!("no `{head}`"))?;
    let mut depth = 1usize;
    let mut body = Vec::new();
    for l in &lines[start + 1..] {
        let code = l.split("//").next().unwrap_or("");
        for ch in code.chars() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
        }
        if depth == 0 {
            return Ok(body);
        }
        body.push(*l);
    }
    Err(format!("`{head}` is not closed"))
}

/// Parses `name: Type,` lines (at the first nesting level) into fields.
fn parse_fields(lines: &[&str]) -> Fields {
    let mut fields = Vec::new();
    let mut rename = None;
    let mut omitted_if_none = false;
    for l in lines {
        let t = l.trim();
        if let Some(r) = t
            .strip_prefix("#[serde(rename = \"")
            .and_then(|r| r.strip_suffix("\")]"))
        {
            rename = Some(r.to_owned());
            continue;
        }
        if t == "#[serde(skip_serializing_if = \"Option::is_none\")]" {
            omitted_if_none = true;
            continue;
        }
        if t.starts_with("//") || t.starts_with("#[") || t.is_empty() {
            continue;
        }
        let t = t.strip_prefix("pub ").unwrap_or(t);
        if let Some((name, ty)) = t.split_once(':') {
            let mut ty = ty.trim().trim_end_matches(',').trim().to_owned();
            if std::mem::take(&mut omitted_if_none) {
                ty.push_str(OMITTED_IF_NONE);
            }
            fields.push((rename.take().unwrap_or_else(|| name.trim().to_owned()), ty));
        }
    }
    fields
}

fn struct_fields(source: &str, item: &str) -> Result<Fields, String> {
    item_body(source, "struct", item).map(|b| parse_fields(&b))
}

/// An enum's variants in order, each with its body lines (for struct-like
/// variants).
fn enum_variants<'a>(source: &'a str, item: &str) -> Result<Vec<(String, Vec<&'a str>)>, String> {
    let body = item_body(source, "enum", item)?;
    let mut variants: Vec<(String, Vec<&str>)> = Vec::new();
    let mut depth = 0usize;
    for l in body {
        let t = l.trim();
        if depth == 0 && !t.starts_with("//") && !t.starts_with("#[") && !t.is_empty() {
            let name: String = t
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                variants.push((name, Vec::new()));
            }
        } else if depth > 0
            && let Some(last) = variants.last_mut()
        {
            last.1.push(l);
        }
        let code = l.split("//").next().unwrap_or("");
        for ch in code.chars() {
            match ch {
                '{' | '(' => depth += 1,
                '}' | ')' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(variants)
}

fn owned(fields: &[(&str, &str)]) -> Fields {
    fields
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------
// Reading the document.

/// A worked example as the document shows it.
#[derive(Debug)]
struct DocExample {
    name: String,
    /// 1-based line of the `<!-- example: -->` marker.
    line: usize,
    /// The bytes of the ```hex block.
    bytes: Vec<u8>,
    /// The bytes of the breakdown table's first column, concatenated.
    breakdown: Vec<u8>,
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    text.split_whitespace()
        .map(|tok| {
            if tok.len() == 2 && tok.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(u8::from_str_radix(tok, 16).expect("checked hex digits"))
            } else {
                Err(format!("`{tok}` is not a two-digit hex byte"))
            }
        })
        .collect()
}

fn hex_string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The cells of a Markdown table row, trimmed.
fn cells(row: &str) -> Vec<&str> {
    let row = row.trim();
    let row = row.strip_prefix('|').unwrap_or(row);
    let row = row.strip_suffix('|').unwrap_or(row);
    row.split('|').map(str::trim).collect()
}

fn strip_ticks(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?.strip_suffix('`')
}

fn is_separator_row(row: &str) -> bool {
    cells(row)
        .iter()
        .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
}

/// The data rows (with 1-based line numbers) of the first table at or after
/// line index `from`, which must come before any heading or marker comment.
fn table_after(lines: &[&str], from: usize) -> Result<Vec<(usize, String)>, String> {
    let mut i = from;
    while i < lines.len() && !lines[i].trim_start().starts_with('|') {
        let l = lines[i].trim_start();
        if l.starts_with('#') || l.starts_with("<!--") || l.starts_with("```") {
            return Err(format!("line {}: expected a table before this", i + 1));
        }
        i += 1;
    }
    if i + 1 >= lines.len() || !is_separator_row(lines[i + 1]) {
        return Err(format!(
            "line {}: expected a table header and separator row",
            i + 1
        ));
    }
    let rows: Vec<(usize, String)> = lines[i + 2..]
        .iter()
        .enumerate()
        .take_while(|(_, l)| l.trim_start().starts_with('|'))
        .map(|(k, l)| (i + 3 + k, l.to_string()))
        .collect();
    if rows.is_empty() {
        return Err(format!("line {}: the table has no rows", i + 1));
    }
    Ok(rows)
}

/// Every `<!-- example: NAME -->` in the document, or the reasons some
/// could not be read.
fn parse_examples(doc: &str) -> (Vec<DocExample>, Vec<String>) {
    let lines: Vec<&str> = doc.lines().collect();
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if !t.starts_with("<!-- example") {
            continue;
        }
        let Some(name) = t
            .strip_prefix("<!-- example:")
            .and_then(|r| r.strip_suffix("-->"))
            .map(str::trim)
            .filter(|n| !n.is_empty())
        else {
            errors.push(format!("line {}: malformed example marker `{t}`", i + 1));
            continue;
        };
        match parse_example_body(&lines, i + 1) {
            Ok((bytes, breakdown)) => found.push(DocExample {
                name: name.to_string(),
                line: i + 1,
                bytes,
                breakdown,
            }),
            Err(e) => errors.push(format!("example `{name}` (line {}): {e}", i + 1)),
        }
    }
    (found, errors)
}

/// Reads the ```hex block starting at line index `at` and the breakdown
/// table after it.
fn parse_example_body(lines: &[&str], at: usize) -> Result<(Vec<u8>, Vec<u8>), String> {
    if lines.get(at).map(|l| l.trim()) != Some("```hex") {
        return Err("the marker must be followed directly by a ```hex block".into());
    }
    let end = (at + 1..lines.len())
        .find(|&j| lines[j].trim() == "```")
        .ok_or("unterminated ```hex block")?;
    let bytes = parse_hex(&lines[at + 1..end].join(" "))?;
    if bytes.is_empty() {
        return Err("empty ```hex block".into());
    }
    let mut breakdown = Vec::new();
    for (n, row) in table_after(lines, end + 1)? {
        let first = cells(&row)[0];
        let inner = strip_ticks(first)
            .ok_or_else(|| format!("line {n}: first cell `{first}` is not hex in backticks"))?;
        breakdown.extend(parse_hex(inner).map_err(|e| format!("line {n}: {e}"))?);
    }
    Ok((bytes, breakdown))
}

/// Checks the worked examples; returns one message per problem.
fn check_examples(doc: &str) -> Vec<String> {
    let (found, mut errors) = parse_examples(doc);
    let expected = expected_examples();

    for ex in &found {
        if !expected.iter().any(|(name, _)| *name == ex.name) {
            errors.push(format!(
                "line {}: example `{}` is not one the test knows; add it to expected_examples()",
                ex.line, ex.name
            ));
        }
    }
    for (name, value) in &expected {
        let matching: Vec<&DocExample> = found.iter().filter(|e| e.name == *name).collect();
        let want = value.encode();
        let ex = match matching.as_slice() {
            [] => {
                errors.push(format!(
                    "example `{name}` is missing from PROTOCOL.md; the code encodes {value:?} as:\n    {}",
                    hex_string(&want)
                ));
                continue;
            }
            [ex] => ex,
            more => {
                let at: Vec<usize> = more.iter().map(|e| e.line).collect();
                errors.push(format!(
                    "example `{name}` appears more than once (lines {at:?})"
                ));
                continue;
            }
        };
        if ex.bytes != want {
            errors.push(format!(
                "example `{name}` (line {}): the document says\n    {}\nbut the code encodes {value:?} as\n    {}",
                ex.line,
                hex_string(&ex.bytes),
                hex_string(&want)
            ));
        }
        match value.decode_like(&ex.bytes) {
            Ok(decoded) if decoded == *value => {}
            Ok(decoded) => errors.push(format!(
                "example `{name}` (line {}): the document's bytes decode to {decoded:?}, not {value:?}",
                ex.line
            )),
            Err(e) => errors.push(format!(
                "example `{name}` (line {}): the document's bytes do not decode: {e}",
                ex.line
            )),
        }
        if ex.breakdown != ex.bytes {
            errors.push(format!(
                "example `{name}` (line {}): the breakdown table covers\n    {}\nnot the example's bytes\n    {}",
                ex.line,
                hex_string(&ex.breakdown),
                hex_string(&ex.bytes)
            ));
        }
    }
    errors
}

/// The line index just after the only line that is exactly `marker`.
fn after_marker(lines: &[&str], marker: &str) -> Result<usize, String> {
    let at: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].trim() == marker)
        .collect();
    match at.as_slice() {
        [i] => Ok(i + 1),
        [] => Err(format!("marker `{marker}` not found")),
        _ => Err(format!("marker `{marker}` appears more than once")),
    }
}

/// The rows of the table after `marker`.
fn marked_table(doc: &str, marker: &str) -> Result<Vec<(usize, String)>, String> {
    let lines: Vec<&str> = doc.lines().collect();
    after_marker(&lines, marker).and_then(|i| table_after(&lines, i))
}

fn check_variants(doc: &str) -> Vec<String> {
    let mut errors = Vec::new();
    for (ty, want) in expected_variants() {
        let marker = format!("<!-- variants: {ty} -->");
        let rows = match marked_table(doc, &marker) {
            Ok(rows) => rows,
            Err(e) => {
                errors.push(format!("variant table of {ty}: {e}"));
                continue;
            }
        };
        let mut got = BTreeMap::new();
        for (n, row) in &rows {
            let c = cells(row);
            let index = c.first().and_then(|s| s.parse::<u8>().ok());
            let variant = c.get(1).and_then(|s| strip_ticks(s));
            match (index, variant) {
                (Some(i), Some(v)) => {
                    if got.insert(v.to_owned(), i).is_some() {
                        errors.push(format!("line {n}: {ty}::{v} is listed twice"));
                    }
                }
                _ => errors.push(format!(
                    "line {n}: expected `| index | `Variant` | ...` in the {ty} table"
                )),
            }
        }
        let want: BTreeMap<String, u8> = want.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        if got != want {
            errors.push(format!(
                "the {ty} variant table says {got:?}; the encoder writes {want:?}"
            ));
        }
    }
    errors
}

fn check_close_codes(doc: &str) -> Vec<String> {
    let rows = match marked_table(doc, "<!-- close-codes -->") {
        Ok(rows) => rows,
        Err(e) => return vec![format!("close-code table: {e}")],
    };
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for (n, row) in &rows {
        let c = cells(row);
        let Some(code) = c.first().and_then(|s| s.parse::<u16>().ok()) else {
            errors.push(format!("line {n}: first cell is not a close code"));
            continue;
        };
        let Some(cc) = CloseCode::from_code(code) else {
            errors.push(format!("line {n}: {code} is not a code in close.rs"));
            continue;
        };
        seen.push(code);
        let name = c.get(1).and_then(|s| strip_ticks(s));
        if name != Some(cc.name()) {
            errors.push(format!(
                "line {n}: {code} is named `{}` in close.rs",
                cc.name()
            ));
        }
        let variant = c.get(2).and_then(|s| strip_ticks(s));
        if variant != Some(format!("{cc:?}").as_str()) {
            errors.push(format!(
                "line {n}: {code} is `CloseCode::{cc:?}` in close.rs"
            ));
        }
        let retry = c.last().copied().unwrap_or_default();
        if retry != format!("{:?}", cc.retry()) {
            errors.push(format!(
                "line {n}: {code} has retry `{retry}` in the document, `{:?}` in close.rs",
                cc.retry()
            ));
        }
    }
    for cc in CloseCode::ALL {
        match seen.iter().filter(|&&s| s == cc.code()).count() {
            1 => {}
            0 => errors.push(format!(
                "close code {} (`{}`) is missing from the table",
                cc.code(),
                cc.name()
            )),
            _ => errors.push(format!("close code {} is listed more than once", cc.code())),
        }
    }
    if seen.windows(2).any(|w| w[0] >= w[1]) {
        errors.push("the close-code table is not in numeric order".into());
    }
    errors
}

fn check_sizes(doc: &str) -> Vec<String> {
    let rows = match marked_table(doc, "<!-- sizes -->") {
        Ok(rows) => rows,
        Err(e) => return vec![format!("size table: {e}")],
    };
    let expected = expected_sizes();
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for (n, row) in &rows {
        let c = cells(row);
        let key = c[0].replace('`', "");
        let Some(want) = expected.get(key.as_str()) else {
            errors.push(format!("line {n}: unknown size row `{key}`"));
            continue;
        };
        seen.push(key.clone());
        let got: Vec<Option<usize>> = c[1..]
            .iter()
            .map(|s| s.replace(',', "").parse().ok())
            .collect();
        if got != want.iter().map(|&w| Some(w)).collect::<Vec<_>>() {
            errors.push(format!(
                "line {n}: `{key}` should read | {} | {} | {} | (min, typical, max)",
                want[0], want[1], want[2]
            ));
        }
    }
    for key in expected.keys() {
        if !seen.iter().any(|s| s == key) {
            errors.push(format!("size row `{key}` is missing"));
        }
    }
    errors
}

fn check_rejects(doc: &str) -> Vec<String> {
    let rows = match marked_table(doc, "<!-- rejects -->") {
        Ok(rows) => rows,
        Err(e) => return vec![format!("table of refused payloads: {e}")],
    };
    let mut errors = Vec::new();
    for (n, row) in &rows {
        let c = cells(row);
        if c.len() < 4 {
            errors.push(format!(
                "line {n}: expected | direction | hex | why | Error |"
            ));
            continue;
        }
        let bytes = match strip_ticks(c[1]).map(parse_hex) {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                errors.push(format!("line {n}: {e}"));
                continue;
            }
            None if c[1] == "(empty)" => Vec::new(),
            None => {
                errors.push(format!("line {n}: `{}` is not hex in backticks", c[1]));
                continue;
            }
        };
        let result = match c[0] {
            "client" => decode_client(&bytes).map(|_| ()),
            "server" => decode_server(&bytes).map(|_| ()),
            other => {
                errors.push(format!(
                    "line {n}: direction `{other}` is not client or server"
                ));
                continue;
            }
        };
        let kind = match &result {
            Ok(()) => "accepted",
            Err(DecodeError::Malformed(_)) => "Malformed",
            Err(DecodeError::TrailingBytes { .. }) => "TrailingBytes",
            Err(DecodeError::TooLarge { .. }) => "TooLarge",
        };
        let said = c[c.len() - 1].trim_matches('`');
        if kind != said {
            errors.push(format!(
                "line {n}: `{}` ({}) is {kind} by decode_{}, not {said}",
                hex_string(&bytes),
                c[2],
                c[0]
            ));
        }
    }
    errors
}

fn check_values(doc: &str) -> Vec<String> {
    let expected = checked_values();
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for (i, line) in doc.lines().enumerate() {
        let Some(body) = line
            .trim()
            .strip_prefix("<!-- check:")
            .and_then(|r| r.strip_suffix("-->"))
        else {
            continue;
        };
        for pair in body.split_whitespace() {
            let Some((k, v)) = pair.split_once('=') else {
                errors.push(format!("line {}: `{pair}` is not key=value", i + 1));
                continue;
            };
            seen.push(k.to_string());
            match expected.get(k) {
                None => errors.push(format!("line {}: unknown check `{k}`", i + 1)),
                Some(want) if v != want => {
                    errors.push(format!("line {}: {k} is {want}, not {v}", i + 1));
                }
                Some(_) => {}
            }
        }
    }
    for key in expected.keys() {
        if !seen.iter().any(|s| s == key) {
            errors.push(format!("check `{key}` is not stated anywhere"));
        }
    }
    errors
}

/// The source facts are where the document says they are.
fn check_sources() -> Vec<String> {
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut errors = Vec::new();
    for (key, path, needle, _) in source_facts() {
        match workspace_file(path) {
            Ok(text) if squash(&text).contains(&squash(needle)) => {}
            Ok(_) => errors.push(format!(
                "{path} no longer contains `{needle}` (check `{key}`): update source_facts() and PROTOCOL.md"
            )),
            Err(e) => errors.push(format!("check `{key}`: {e}")),
        }
    }
    errors
}

/// The mirrored game types match the games' sources.
fn check_game_shapes() -> Vec<String> {
    let mut errors = Vec::new();
    for (path, item, shape) in game_shapes() {
        let source = match workspace_file(path) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let result = match shape {
            Shape::Struct(want) => struct_fields(&source, item).map(|got| {
                (got != owned(want)).then(|| format!("fields {got:?}, the mirror has {want:?}"))
            }),
            Shape::Enum(want) => enum_variants(&source, item).map(|got| {
                let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
                (names != want).then(|| format!("variants {names:?}, the mirror has {want:?}"))
            }),
            Shape::Variant(variant, want) => enum_variants(&source, item).map(|got| {
                let fields = got
                    .iter()
                    .find(|(n, _)| n == variant)
                    .map(|(_, body)| parse_fields(body));
                (fields.as_ref() != Some(&owned(want)))
                    .then(|| format!("{variant} has fields {fields:?}, the mirror has {want:?}"))
            }),
        };
        match result {
            Ok(None) => {}
            Ok(Some(diff)) => errors.push(format!("{path}: `{item}` has {diff}")),
            Err(e) => errors.push(format!("{path}: {e}")),
        }
    }
    errors
}

fn check_json(doc: &str) -> Vec<String> {
    let mut errors = Vec::new();
    for (marker, path, item) in json_shapes() {
        let want: Vec<(String, String)> =
            match workspace_file(path).and_then(|s| struct_fields(&s, item)) {
                Ok(fields) => fields
                    .into_iter()
                    .map(|(name, ty)| {
                        let json = json_type(&ty).map_or_else(
                            || format!("(no JSON type known for `{ty}`: extend json_type())"),
                            str::to_owned,
                        );
                        (name, json)
                    })
                    .collect(),
                Err(e) => {
                    errors.push(format!("{path}: {e}"));
                    continue;
                }
            };
        let rows = match marked_table(doc, &format!("<!-- json: {marker} -->")) {
            Ok(rows) => rows,
            Err(e) => {
                errors.push(format!("JSON table `{marker}`: {e}"));
                continue;
            }
        };
        let got: Vec<(String, String)> = rows
            .iter()
            .map(|(_, row)| {
                let c = cells(row);
                (
                    strip_ticks(c[0]).unwrap_or(c[0]).to_owned(),
                    c.get(1).copied().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        if got != want {
            errors.push(format!(
                "JSON table `{marker}` lists {got:?}; `{item}` in {path} serialises as {want:?}"
            ));
        }
    }
    errors
}

fn all_errors(doc: &str) -> Vec<String> {
    let mut errors = check_examples(doc);
    errors.extend(check_variants(doc));
    errors.extend(check_close_codes(doc));
    errors.extend(check_sizes(doc));
    errors.extend(check_rejects(doc));
    errors.extend(check_values(doc));
    errors.extend(check_json(doc));
    errors
}

fn assert_clean(errors: &[String]) {
    assert!(
        errors.is_empty(),
        "PROTOCOL.md disagrees with the code:\n\n{}",
        errors.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn worked_examples_match_the_encoder_and_decoder() {
    assert_clean(&check_examples(&read_doc()));
}

#[test]
fn variant_tables_match_the_encoder() {
    assert_clean(&check_variants(&read_doc()));
}

#[test]
fn close_code_table_matches_close_rs() {
    assert_clean(&check_close_codes(&read_doc()));
}

#[test]
fn size_table_matches_the_encoder() {
    assert_clean(&check_sizes(&read_doc()));
}

#[test]
fn refused_payloads_are_refused() {
    assert_clean(&check_rejects(&read_doc()));
}

#[test]
fn stated_constants_match_the_code() {
    assert_clean(&check_values(&read_doc()));
}

#[test]
fn server_and_game_facts_are_where_the_document_says() {
    assert_clean(&check_sources());
}

#[test]
fn game_type_mirrors_match_the_games() {
    assert_clean(&check_game_shapes());
}

#[test]
fn http_tables_match_the_server() {
    assert_clean(&check_json(&read_doc()));
}

/// The invite-code rules the document states, on the code that applies
/// them: the examples' code is canonical, and what people type maps to it.
#[test]
fn invite_code_examples_normalise_as_documented() {
    assert_eq!(normalize_code(CODE).as_deref(), Some(CODE));
    assert_eq!(normalize_code("k7m2-xq9p").as_deref(), Some(CODE));
    assert_eq!(normalize_code(" K7M2 XQ9P ").as_deref(), Some(CODE));
    assert_eq!(normalize_code("K7M2XQ9O"), None, "O is not in the alphabet");
    assert_eq!(normalize_code("K7M2XQ9"), None, "seven characters");
    let too_long = RoomRequest::JoinByCode {
        code: "x".repeat(MAX_CODE_FIELD_BYTES + 1),
    };
    assert!(check_request(&too_long).is_err());
}

/// Edits the real document and expects the checker to notice, so that a
/// checker that silently finds nothing cannot pass.
fn assert_caught(what: &str, from: &str, to: &str, expect: &str) {
    let doc = read_doc();
    assert!(
        doc.contains(from),
        "{what}: the document no longer contains `{from}`; update this test"
    );
    let errors = all_errors(&doc.replacen(from, to, 1));
    assert!(
        errors.iter().any(|e| e.contains(expect)),
        "{what}: expected an error mentioning `{expect}`, got {errors:#?}"
    );
}

#[test]
fn the_checker_notices_disagreements() {
    assert_caught(
        "a wrong byte",
        "```hex\n01 2a 00 00\n```",
        "```hex\n01 2a 00 01\n```",
        "example `state_empty`",
    );
    assert_caught(
        "a trailing byte",
        "```hex\n04\n```",
        "```hex\n04 00\n```",
        "example `leave`",
    );
    assert_caught(
        "a breakdown that skips a byte",
        "| `40`       | `data`: `Move.dy`",
        "| ``         | `data`: `Move.dy`",
        "example `game_arena` (line",
    );
    assert_caught(
        "a breakdown row too many",
        "| `04`  | variant index | varint u32 | 4 = `Leave` |",
        "| `04`  | variant index | varint u32 | 4 = `Leave` |\n| `00`  | padding | - | - |",
        "breakdown table",
    );
    assert_caught(
        "a missing example",
        "<!-- example: pong -->",
        "",
        "`pong` is missing",
    );
    assert_caught(
        "an unknown example",
        "<!-- example: pong -->",
        "<!-- example: pong2 -->",
        "`pong2` is not one the test knows",
    );
    assert_caught(
        "a wrong variant index",
        "| 3     | `EventAck` |",
        "| 4     | `EventAck` |",
        "ClientMsg variant table",
    );
    assert_caught(
        "a missing variant",
        "| 4     | `Redirect` |",
        "| 9     | `Redirect` |",
        "ServerMsg variant table",
    );
    assert_caught(
        "a wrong retry policy",
        "it ended.       | Rejoin |",
        "it ended.       | Resume |",
        "4017 has retry `Resume`",
    );
    assert_caught(
        "a missing close-code table",
        "<!-- close-codes -->",
        "",
        "marker `<!-- close-codes -->` not found",
    );
    assert_caught(
        "a missing close code",
        "| 4018 |",
        "| 4019 |",
        "4018 (`too_many_attempts`) is missing",
    );
    assert_caught(
        "a wrong size",
        "| Arena entity                         | 5   | 11      | 17    |",
        "| Arena entity                         | 7   | 11      | 17    |",
        "`Arena entity` should read",
    );
    assert_caught(
        "a missing size table",
        "<!-- sizes -->",
        "",
        "marker `<!-- sizes -->` not found",
    );
    assert_caught(
        "a payload that decodes after all",
        "| client    | `05`",
        "| client    | `04`",
        "is accepted by decode_client",
    );
    assert_caught(
        "a wrong constant",
        "max_client_msg_bytes=1024",
        "max_client_msg_bytes=1023",
        "max_client_msg_bytes is 1024",
    );
    assert_caught(
        "a wrong server fact",
        "code_attempt_burst=10",
        "code_attempt_burst=12",
        "code_attempt_burst is 10",
    );
    assert_caught(
        "a JSON field that is not served",
        "| `capacity` | number",
        "| `seats`    | number",
        "JSON table `rooms`",
    );
}

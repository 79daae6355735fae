//! The `session` target's input format: what one fuzz input makes the
//! client do, and a [`Builder`] that writes inputs for the seed corpus.
//!
//! The format is a small byte code rather than an `arbitrary` derive: the
//! seed corpus needs an exact inverse (a way to write the input that means
//! "join four, wait for an opponent, play three discs, leave"), which
//! `arbitrary` does not offer, and a flat byte code keeps libFuzzer's
//! byte-level mutations meaningful. Every byte string is a valid input; an
//! operation cut short by the end of the input reads zeros for its missing
//! fields and a shorter payload.
//!
//! Byte 0 chooses the mode. Bit 0 clear is **raw**: the opening, then the
//! rest of the input written as-is. Bit 0 set is a **script**: the opening,
//! then operations until the input ends. Bit 7 makes a script *timed*: its
//! pauses really wait; in an untimed script a pause only yields to the
//! server's tasks. Bits 1–2 choose the [`Opening`] (raw: none, `Hello`,
//! resume with a recent token, resume with a given token; script: `Hello`,
//! given token, recent token, none), bits 3–6 the recent token's index.
//! Its fields follow byte 0:
//! - a `Hello`: a room request ([`Request`]): one byte, bits 0–2 the kind
//!   (quick join arena, quick join four, create arena, create four, join
//!   by id of a recent room, join by a recent invite code, any request),
//!   bits 3–4 the arena's `pace` option (none, normal, fast, an unknown
//!   value), bit 5 private; for a recent room or code, bits 3–7 its index;
//!   for any request, its fields (see [`read_any_request`]);
//! - a resume: the given token (16 bytes) if any, then one byte (bit 0:
//!   `last_event` is the last event this harness saw for the session, or
//!   the `u32` LE that follows).
//!
//! Each operation is a tag byte (`tag % 13`) and its fields:
//!
//! | tag | operation | fields |
//! |-----|-----------|--------|
//! | 0 | a client message as a binary frame | kind (0 arena move, 1 four drop, 2 four rematch, 3 game message of any seq and bytes, 4 app ping, 5 event ack of any number, 6 leave, 7 `Hello`), framing (bits 0–1: whole, split at a point, one frame per byte, halves around a ping; bit 2 unmasked; bit 3 a trailing byte; bit 4 drop the last byte; bit 5 as text), the message's fields, split point, trailing byte |
//! | 1 | any frame | header byte, flags (bit 0 mask, bits 1–2 length form: minimal, 16-bit, 64-bit, claimed: then 8 bytes LE), length byte, payload |
//! | 2 | a big masked frame | header byte, `u16` LE half-length, fill byte |
//! | 3 | a close frame | code `u16` BE, reason length (255: empty payload, 254: one byte), reason |
//! | 4 | a WebSocket ping | length byte, payload (may exceed 125 bytes) |
//! | 5 | a WebSocket pong | length byte, payload |
//! | 6 | a pause | milliseconds in bits 0–4 (all pauses together capped at [`MAX_PAUSE`]; a yield if untimed) |
//! | 7 | raw bytes | length byte, bytes |
//! | 8 | a burst | bits 0–4 count − 1; bits 5–7 (mod 6): arena moves, four drops, four rematches, app pings, WebSocket pings, empty pongs |
//! | 9 | a takeover | flags: a second connection resumes this one's session (see [`Second`]) |
//! | 10 | an opponent | flags, column: a second player joins this connection's room (see [`Opponent`]) |
//! | 11 | play four | count, column: wait for this player's turn and drop a disc, `count % 22 + 1` times (waits, while a playing opponent is in the room, bounded by [`MAX_AWAIT`]) |
//! | 12 | acknowledge | an `EventAck` of the last event this connection has received |
//!
//! After the last operation the client closes its write side.
//!
//! Why timed scripts are opt-in: an iteration without waits takes tens of
//! microseconds, one with waits tens of milliseconds. If every pause
//! waited, the inputs that happen to hold a pause would cost the fuzzer
//! most of its time; as it is, only inputs that ask for waiting pay for it.
//! Playing four waits too (a move is applied at the room's next tick), but
//! only while an opponent is there to answer.

use crate::ws::{self, Length};
use protocol::{ClientMsg, EventAck, GameMsg, Hello, Ping, Resume, ResumeToken, RoomRequest};
use std::time::Duration;

/// Upper bound on all pauses of one timed input together. Large enough to
/// pass the fuzz server's handshake and idle timeouts and to see several
/// ticks and pings; small because waiting is most of an iteration's time
/// when an input waits at all.
pub const MAX_PAUSE: Duration = Duration::from_millis(30);

/// Upper bound on the time one input spends waiting for its turn at four.
/// A pair of moves costs about two ticks of the fuzz server's four rooms
/// (one for each player's disc, 8 ms at 240 Hz), so this is enough for two
/// games (a rematch) of a dozen moves each, and small enough that inputs
/// that play do not dominate the run.
pub const MAX_AWAIT: Duration = Duration::from_millis(150);

/// Bit of the mode byte that makes a script timed.
const TIMED: u8 = 0x80;

/// Takeovers honoured per input; more add nothing but time.
pub const MAX_TAKEOVERS: usize = 2;

/// Opponents honoured per input: a four table has two seats, and an arena
/// room gains nothing from a crowd of one input's players.
pub const MAX_OPPONENTS: usize = 1;

/// Options a request made from the input's bytes may carry: past the
/// protocol's bound of 8, so that the bound itself is exercised.
const MAX_ANY_OPTIONS: u8 = 10;

const OPS: u8 = 13;
const OP_MESSAGE: u8 = 0;
const OP_FRAME: u8 = 1;
const OP_BIG: u8 = 2;
const OP_CLOSE: u8 = 3;
const OP_PING: u8 = 4;
const OP_PONG: u8 = 5;
const OP_PAUSE: u8 = 6;
const OP_RAW: u8 = 7;
const OP_BURST: u8 = 8;
const OP_TAKEOVER: u8 = 9;
const OP_OPPONENT: u8 = 10;
const OP_PLAY: u8 = 11;
const OP_ACK: u8 = 12;

/// The games the fuzz server registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GameKind {
    /// The real-time arena (`arena`).
    Arena,
    /// Four in a row (`four`).
    Four,
}

impl GameKind {
    /// Both, in registration order.
    pub const ALL: [GameKind; 2] = [GameKind::Arena, GameKind::Four];

    /// The room type's registered name.
    pub fn name(self) -> &'static str {
        match self {
            GameKind::Arena => "arena",
            GameKind::Four => "four",
        }
    }

    /// The game registered under `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.name() == name)
    }
}

/// The `pace` option of a quick join or a create (the arena's only option;
/// four takes none, so any pace makes it refuse a new room).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// No option.
    Default,
    /// `pace=normal`.
    Normal,
    /// `pace=fast`: twice the speed.
    Fast,
    /// `pace=warp`, which the arena refuses (4014).
    Unknown,
}

impl Pace {
    /// The request's options for this pace.
    pub fn options(self) -> Vec<(String, String)> {
        let value = match self {
            Pace::Default => return Vec::new(),
            Pace::Normal => "normal",
            Pace::Fast => "fast",
            Pace::Unknown => "warp",
        };
        vec![("pace".to_owned(), value.to_owned())]
    }
}

/// Where a new player asks to go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Quick join of a game with a pace.
    Quick {
        /// The room type.
        game: GameKind,
        /// The `pace` option.
        pace: Pace,
    },
    /// Create a room of a game.
    Create {
        /// The room type.
        game: GameKind,
        /// The `pace` option.
        pace: Pace,
        /// Reached by invite code only.
        private: bool,
    },
    /// Join by id one of the rooms the server welcomed players into
    /// recently: 0 is the newest, and the index wraps around the ones
    /// remembered.
    RecentRoom(u8),
    /// Join by code one of the invite codes the server gave recently.
    RecentCode(u8),
    /// This request, whatever it says (its fields come from the input).
    Any(RoomRequest),
}

impl Request {
    /// The request as sent, when it does not depend on what the server
    /// said earlier.
    pub fn fixed(&self) -> Option<RoomRequest> {
        match self {
            Request::Quick { game, pace } => Some(RoomRequest::QuickJoin {
                room_type: game.name().to_owned(),
                options: pace.options(),
            }),
            Request::Create {
                game,
                pace,
                private,
            } => Some(RoomRequest::Create {
                room_type: game.name().to_owned(),
                options: pace.options(),
                private: *private,
            }),
            Request::RecentRoom(_) | Request::RecentCode(_) => None,
            Request::Any(request) => Some(request.clone()),
        }
    }
}

/// Which session a resume names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenChoice {
    /// One of the sessions the server welcomed recently: 0 is the newest,
    /// and the index wraps around the ones remembered.
    Recent(u8),
    /// This token (almost surely unknown to the server).
    Given([u8; 16]),
}

/// The `last_event` of a resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastEvent {
    /// The last event this harness received for the session: what a
    /// correct client claims.
    Seen,
    /// This number, true or not.
    Given(u32),
}

/// What a connection opens with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opening {
    /// Nothing: the input's bytes start at once.
    None,
    /// A `Hello` for a new player with this room request.
    Hello(Request),
    /// A `Hello` that resumes a session.
    Resume {
        /// Whose session.
        token: TokenChoice,
        /// The last event it claims to have processed.
        last_event: LastEvent,
    },
}

/// Which message a [`Builder::message`] operation carries. Game messages
/// other than [`Message::Game`] are numbered automatically, one past the
/// previous automatic one.
#[derive(Clone, Debug)]
pub enum Message {
    /// An arena move.
    Move {
        /// Horizontal deflection.
        dx: i8,
        /// Vertical deflection.
        dy: i8,
    },
    /// A four-in-a-row drop.
    Drop {
        /// The column (0 to 6 are on the board).
        column: u8,
    },
    /// A four-in-a-row rematch request.
    Rematch,
    /// A game message with this sequence number and these bytes, which the
    /// room's game may not decode (at most 255 bytes).
    Game {
        /// Sequence number.
        seq: u32,
        /// The game's bytes.
        data: Vec<u8>,
    },
    /// An application ping.
    Ping(u64),
    /// An event acknowledgement of this number, true or not.
    Ack(u32),
    /// Leave the room for good.
    Leave,
    /// A `Hello`: refused after the first, the handshake itself when the
    /// connection opened with nothing.
    Hello {
        /// Protocol version.
        version: u16,
        /// Resume token and last event, if any.
        resume: Option<([u8; 16], u32)>,
        /// The room request.
        room: RoomRequest,
    },
}

/// How a message is cut into frames.
#[derive(Clone, Copy, Debug)]
pub enum Split {
    /// One frame.
    Whole,
    /// Two fragments, the first this many bytes long (clamped).
    At(u8),
    /// One fragment per byte.
    Bytes,
    /// Two halves with a WebSocket ping between them (allowed by RFC 6455).
    PingBetween,
}

/// Ways to spoil a message frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spoil {
    /// Send it unmasked, as no browser would.
    pub unmasked: bool,
    /// Append this byte after the message.
    pub trailing: Option<u8>,
    /// Drop its last byte.
    pub truncate: bool,
    /// Send it as a text frame.
    pub text: bool,
}

/// What the second connection of a takeover does after its resume `Hello`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Second {
    /// Send one game message of the room's game (an arena move, or a four
    /// drop into column 0).
    pub input: bool,
    /// Send one application ping.
    pub ping: bool,
    /// Send a close frame (1000) before closing its write side.
    pub close: bool,
}

/// How an [`Opponent`] reaches the first connection's room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Seat {
    /// Join by the room's id.
    #[default]
    ById,
    /// Join by the room's invite code (by id when it has none).
    ByCode,
    /// Quick join the room's type, which may or may not land in the room.
    Quick,
}

/// A second player: once this connection has its `Welcome`, a connection
/// of its own joins the same room and plays like a well-behaved client
/// (it answers the server's WebSocket pings) until the script ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Opponent {
    /// How it joins.
    pub seat: Seat,
    /// At four, drop a disc whenever it is its turn (into the first column
    /// from [`Opponent::column`] on that has room); in the arena, move once.
    pub plays: bool,
    /// At four, ask for a rematch whenever a game ends.
    pub rematch: bool,
    /// Acknowledge every event it receives.
    pub acks: bool,
    /// End with `Leave` (gone for good: a four game is forfeited) rather
    /// than by closing its stream (dropped: it keeps its seat for the
    /// resume grace).
    pub leaves: bool,
    /// The column it prefers (it drops into the first one from there on
    /// that has room).
    pub column: u8,
}

/// One thing the client does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes.
    Write(Vec<u8>),
    /// Wait this long.
    Pause(Duration),
    /// Let the server's tasks run before writing on (an untimed pause).
    Yield,
    /// Once this connection has its `Welcome`, open a second connection
    /// that resumes the same session, and let it run alongside.
    Takeover(Second),
    /// Once this connection has its `Welcome`, open a connection that joins
    /// the same room as another player, and let it play alongside.
    Opponent(Opponent),
    /// Play four: up to `moves` times, wait for this player's turn (only
    /// while a playing opponent is connected in the room, within
    /// [`MAX_AWAIT`] in all) and drop a disc into the first column from
    /// `column` on that has room.
    Play {
        /// Discs to drop at most.
        moves: u8,
        /// The preferred column.
        column: u8,
        /// Sequence number of the first drop; the rest follow it.
        first_seq: u32,
    },
    /// Acknowledge every event this connection has received so far.
    AckSeen,
}

/// A parsed input: what to do, and what the checks may expect.
#[derive(Clone, Debug)]
pub struct Plan {
    /// What the connection opens with.
    pub opening: Opening,
    /// What follows, in order.
    pub steps: Vec<Step>,
    /// True while the byte stream keeps its framing and carries no data
    /// frames of unknown content, so that every pong can be traced to a
    /// ping this plan sent.
    pub exact: bool,
    /// True when every event acknowledgement this plan may send claims no
    /// more than what the connection received: then the session's events
    /// after the last one seen are all still held by the server, and a
    /// later resume that claims that event must get the next one first.
    pub acks_exact: bool,
    /// `t` of every application ping sent (a pong must echo one).
    pub app_pings: Vec<u64>,
    /// Payload of every WebSocket ping sent (a pong must echo one).
    pub ws_pings: Vec<Vec<u8>>,
    /// Code of every close frame sent (the server may echo one).
    pub close_codes: Vec<u16>,
}

impl Plan {
    /// True if the plan opens a second connection on the same session.
    pub fn has_takeover(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, Step::Takeover(_)))
    }
}

/// Reads fields off the input; past its end every byte reads as zero.
struct Cursor<'a> {
    /// The whole input.
    data: &'a [u8],
    /// The next byte to read; may run past the end.
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.u8())
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    /// Up to `n` bytes; fewer if the input ends first.
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = self.pos.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }

    /// A length byte and that many bytes, as a string (invalid UTF-8
    /// becomes U+FFFD, so that the envelope can carry it).
    fn string(&mut self) -> String {
        let len = usize::from(self.u8());
        String::from_utf8_lossy(self.bytes(len)).into_owned()
    }
}

/// Writes a string as [`Cursor::string`] reads it.
fn put_string(out: &mut Vec<u8>, s: &str) {
    out.push(u8::try_from(s.len()).expect("strings in seeds are at most 255 bytes"));
    out.extend_from_slice(s.as_bytes());
}

/// The opening's kind from bits 1–2 of the mode byte: raw mode reads none,
/// `Hello`, recent token, given token; script mode `Hello`, given token,
/// recent token, none (scripts usually open with a `Hello`, raw inputs
/// usually do not).
fn read_opening(mode: u8, script: bool, c: &mut Cursor<'_>) -> Opening {
    let resume = |token, c: &mut Cursor<'_>| {
        let last_event = match c.u8() & 1 {
            0 => LastEvent::Seen,
            _ => LastEvent::Given(c.u32()),
        };
        Opening::Resume { token, last_event }
    };
    match ((mode >> 1) & 3, script) {
        (0, false) | (3, true) => Opening::None,
        (1, false) | (0, true) => Opening::Hello(read_request(c)),
        (2, _) => resume(TokenChoice::Recent((mode >> 3) & 0x0f), c),
        _ => {
            let token = TokenChoice::Given(c.array());
            resume(token, c)
        }
    }
}

/// Writes byte 0's opening bits and the opening's fields (inverse of
/// [`read_opening`]).
fn put_opening(opening: &Opening, script: bool, mode: &mut u8, out: &mut Vec<u8>) {
    let code = match (opening, script) {
        (Opening::None, false) | (Opening::Hello(_), true) => 0,
        (Opening::Hello(_), false) | (Opening::Resume { .. }, true) => 1,
        (Opening::Resume { .. }, false) | (Opening::None, true) => 3,
    };
    *mode |= code << 1;
    match opening {
        Opening::None => {}
        Opening::Hello(request) => put_request(request, out),
        Opening::Resume { token, last_event } => {
            match token {
                TokenChoice::Recent(i) => {
                    // The recent kind is 2 in both modes.
                    *mode = (*mode & !0x06) | (2 << 1) | ((i & 0x0f) << 3);
                }
                TokenChoice::Given(token) => out.extend_from_slice(token),
            }
            match last_event {
                LastEvent::Seen => out.push(0),
                LastEvent::Given(n) => {
                    out.push(1);
                    out.extend_from_slice(&n.to_le_bytes());
                }
            }
        }
    }
}

/// A room request: kind in bits 0–2, pace in bits 3–4, private in bit 5;
/// a recent room's or code's index in bits 3–7.
fn read_request(c: &mut Cursor<'_>) -> Request {
    let r = c.u8();
    let game = if r & 1 == 0 {
        GameKind::Arena
    } else {
        GameKind::Four
    };
    let pace = match (r >> 3) & 3 {
        0 => Pace::Default,
        1 => Pace::Normal,
        2 => Pace::Fast,
        _ => Pace::Unknown,
    };
    match r & 7 {
        0 | 1 => Request::Quick { game, pace },
        2 | 3 => Request::Create {
            game,
            pace,
            private: r & 0x20 != 0,
        },
        4 => Request::RecentRoom(r >> 3),
        5 => Request::RecentCode(r >> 3),
        _ => Request::Any(read_any_request(c)),
    }
}

/// Inverse of [`read_request`].
fn put_request(request: &Request, out: &mut Vec<u8>) {
    let pace_bits = |pace: Pace| -> u8 {
        match pace {
            Pace::Default => 0,
            Pace::Normal => 1,
            Pace::Fast => 2,
            Pace::Unknown => 3,
        }
    };
    let game_bit = |game: GameKind| u8::from(game == GameKind::Four);
    match request {
        Request::Quick { game, pace } => out.push(game_bit(*game) | pace_bits(*pace) << 3),
        Request::Create {
            game,
            pace,
            private,
        } => out.push(2 | game_bit(*game) | pace_bits(*pace) << 3 | u8::from(*private) << 5),
        Request::RecentRoom(i) => out.push(4 | (i & 0x1f) << 3),
        Request::RecentCode(i) => out.push(5 | (i & 0x1f) << 3),
        Request::Any(request) => {
            out.push(6);
            put_any_request(request, out);
        }
    }
}

/// A request whose every field comes from the input: a variant byte (bits
/// 0–1: quick join, create, join by id, join by code — a seat ticket when
/// bit 3 is also set; bit 2 private), then the room type and options (a
/// count byte, `count % 11` pairs of key and value) or the id (`u32` LE)
/// or the code or the ticket's 16 bytes. Strings are a length byte and
/// bytes. Such a request may break the protocol's bounds (1007), name no
/// registered type (4009), or carry options a game refuses (4014).
fn read_any_request(c: &mut Cursor<'_>) -> RoomRequest {
    let v = c.u8();
    match v & 3 {
        0 | 1 => {
            let room_type = c.string();
            let count = c.u8() % (MAX_ANY_OPTIONS + 1);
            let options = (0..count).map(|_| (c.string(), c.string())).collect();
            if v & 3 == 0 {
                RoomRequest::QuickJoin { room_type, options }
            } else {
                RoomRequest::Create {
                    room_type,
                    options,
                    private: v & 4 != 0,
                }
            }
        }
        2 => RoomRequest::JoinById { room_id: c.u32() },
        _ if v & 8 != 0 => RoomRequest::Reserved {
            ticket: protocol::SeatTicket(std::array::from_fn(|_| c.u8())),
        },
        _ => RoomRequest::JoinByCode { code: c.string() },
    }
}

/// Inverse of [`read_any_request`].
fn put_any_request(request: &RoomRequest, out: &mut Vec<u8>) {
    let put_options = |options: &[(String, String)], out: &mut Vec<u8>| {
        out.push(u8::try_from(options.len()).expect("few options"));
        for (k, v) in options {
            put_string(out, k);
            put_string(out, v);
        }
    };
    match request {
        RoomRequest::QuickJoin { room_type, options } => {
            out.push(0);
            put_string(out, room_type);
            put_options(options, out);
        }
        RoomRequest::Create {
            room_type,
            options,
            private,
        } => {
            out.push(1 | u8::from(*private) << 2);
            put_string(out, room_type);
            put_options(options, out);
        }
        RoomRequest::JoinById { room_id } => {
            out.push(2);
            out.extend_from_slice(&room_id.to_le_bytes());
        }
        RoomRequest::JoinByCode { code } => {
            out.push(3);
            put_string(out, code);
        }
        RoomRequest::Reserved { ticket } => {
            out.push(3 | 8);
            out.extend_from_slice(&ticket.0);
        }
    }
}

/// The bytes of a client message.
pub fn message_bytes(msg: &ClientMsg) -> Vec<u8> {
    let mut out = Vec::new();
    protocol::encode_client(msg, &mut out);
    out
}

/// A game message whose data is `game`'s encoding of `value`.
pub fn game_message<T: serde::Serialize>(seq: u32, value: &T) -> ClientMsg {
    ClientMsg::Game(GameMsg {
        seq,
        data: game_api::codec::to_vec(value),
    })
}

/// A masked binary frame holding `msg`, as a browser sends it.
pub fn msg_frame(msg: &ClientMsg) -> Vec<u8> {
    let mut out = Vec::new();
    ws::put_client_frame(&mut out, true, ws::BINARY, &message_bytes(msg));
    out
}

/// A `Hello` of this version for a new player.
pub fn hello(room: RoomRequest) -> ClientMsg {
    ClientMsg::Hello(Hello {
        version: protocol::PROTOCOL_VERSION,
        resume: None,
        room,
    })
}

/// A `Hello` of this version that resumes `token`'s session.
pub fn resume_hello(token: ResumeToken, last_event: u32) -> ClientMsg {
    ClientMsg::Hello(Hello {
        version: protocol::PROTOCOL_VERSION,
        resume: Some(Resume { token, last_event }),
        // Ignored by a resume; a quick join is what the client library
        // sends too.
        room: RoomRequest::quick(GameKind::Arena.name()),
    })
}

/// State kept while turning operations into bytes.
struct Parser {
    /// The plan so far.
    plan: Plan,
    /// Bytes of the write step being gathered.
    out: Vec<u8>,
    /// Sequence number of the next automatically numbered game message.
    next_seq: u32,
    /// `t` of the next application ping of a burst.
    next_ping: u64,
    /// Pauses so far, against [`MAX_PAUSE`].
    paused: Duration,
    /// Whether pauses really wait.
    timed: bool,
    /// Takeovers so far, against [`MAX_TAKEOVERS`].
    takeovers: usize,
    /// Opponents so far, against [`MAX_OPPONENTS`].
    opponents: usize,
}

/// Interprets a fuzz input. Total: every byte string gives a plan.
pub fn parse(data: &[u8]) -> Plan {
    let mut c = Cursor { data, pos: 0 };
    let Some(&mode) = data.first() else {
        return Plan {
            opening: Opening::None,
            steps: Vec::new(),
            exact: true,
            acks_exact: true,
            app_pings: Vec::new(),
            ws_pings: Vec::new(),
            close_codes: Vec::new(),
        };
    };
    c.pos = 1;
    let script = mode & 1 == 1;
    let opening = read_opening(mode, script, &mut c);
    let mut p = Parser {
        plan: Plan {
            opening,
            steps: Vec::new(),
            exact: script,
            acks_exact: true,
            app_pings: Vec::new(),
            ws_pings: Vec::new(),
            close_codes: Vec::new(),
        },
        out: Vec::new(),
        next_seq: 1,
        next_ping: 1,
        paused: Duration::ZERO,
        timed: script && mode & TIMED != 0,
        takeovers: 0,
        opponents: 0,
    };
    if !script {
        p.out.extend_from_slice(c.bytes(usize::MAX));
    }
    while !c.at_end() {
        p.op(&mut c);
    }
    p.flush();
    // Bytes of unknown content may hold an acknowledgement of anything.
    p.plan.acks_exact &= p.plan.exact;
    p.plan
}

impl Parser {
    fn flush(&mut self) {
        if !self.out.is_empty() {
            self.plan
                .steps
                .push(Step::Write(std::mem::take(&mut self.out)));
        }
    }

    /// A payload of `n` bytes; a short one loses the stream's framing.
    fn payload<'a>(&mut self, c: &mut Cursor<'a>, n: usize) -> &'a [u8] {
        let bytes = c.bytes(n);
        if bytes.len() < n {
            self.plan.exact = false;
        }
        bytes
    }

    fn op(&mut self, c: &mut Cursor<'_>) {
        match c.u8() % OPS {
            OP_MESSAGE => self.message(c),
            OP_FRAME => {
                let head = c.u8();
                let flags = c.u8();
                let masked = flags & 1 == 1;
                let length = match (flags >> 1) & 3 {
                    0 => Length::Minimal,
                    1 => Length::Force16,
                    2 => Length::Force64,
                    _ => Length::Claim(u64::from_le_bytes(c.array())),
                };
                let len = usize::from(c.u8());
                let payload = self.payload(c, len);
                let opcode = head & 0x0f;
                if matches!(length, Length::Claim(_)) || opcode < ws::CLOSE {
                    // A lie about the length, or a data frame of arbitrary
                    // content: pongs can no longer be traced.
                    self.plan.exact = false;
                }
                self.note_control(opcode, payload);
                ws::put_frame(&mut self.out, head, masked, length, payload);
            }
            OP_BIG => {
                let head = c.u8();
                let len = usize::from(u16::from_le_bytes(c.array())) * 2;
                let fill = c.u8();
                let payload = vec![fill; len];
                if head & 0x0f < ws::CLOSE {
                    self.plan.exact = false;
                }
                self.note_control(head & 0x0f, &payload);
                ws::put_frame(&mut self.out, head, true, Length::Minimal, &payload);
            }
            OP_CLOSE => {
                let code: [u8; 2] = c.array();
                let payload = match c.u8() {
                    255 => Vec::new(),
                    254 => vec![code[0]],
                    n => {
                        let mut p = code.to_vec();
                        p.extend_from_slice(self.payload(c, usize::from(n)));
                        p
                    }
                };
                self.note_control(ws::CLOSE, &payload);
                ws::put_client_frame(&mut self.out, true, ws::CLOSE, &payload);
            }
            OP_PING => {
                let len = usize::from(c.u8());
                let payload = self.payload(c, len);
                self.plan.ws_pings.push(payload.to_vec());
                ws::put_client_frame(&mut self.out, true, ws::PING, payload);
            }
            OP_PONG => {
                let len = usize::from(c.u8());
                let payload = self.payload(c, len);
                ws::put_client_frame(&mut self.out, true, ws::PONG, payload);
            }
            OP_PAUSE => {
                let want = Duration::from_millis(u64::from(c.u8() & 0x1f));
                let pause = want.min(MAX_PAUSE - self.paused);
                self.flush();
                if !self.timed {
                    self.plan.steps.push(Step::Yield);
                } else if !pause.is_zero() {
                    self.paused += pause;
                    self.plan.steps.push(Step::Pause(pause));
                }
            }
            OP_RAW => {
                let len = usize::from(c.u8());
                let bytes = c.bytes(len);
                self.plan.exact = false;
                self.out.extend_from_slice(bytes);
            }
            OP_BURST => {
                let b = c.u8();
                for i in 0..=(b & 0x1f) {
                    let msg = match (b >> 5) % 6 {
                        0 => self.next_game(&arena::msg::Move { dx: 1, dy: 0 }),
                        1 => self.next_game(&four::msg::FourMsg::Drop { column: i % 7 }),
                        2 => self.next_game(&four::msg::FourMsg::Rematch),
                        3 => self.next_app_ping(),
                        4 => {
                            self.plan.ws_pings.push(Vec::new());
                            ws::put_client_frame(&mut self.out, true, ws::PING, b"");
                            continue;
                        }
                        _ => {
                            ws::put_client_frame(&mut self.out, true, ws::PONG, b"");
                            continue;
                        }
                    };
                    ws::put_client_frame(&mut self.out, true, ws::BINARY, &msg);
                }
            }
            OP_TAKEOVER => {
                let b = c.u8();
                if self.takeovers < MAX_TAKEOVERS {
                    self.takeovers += 1;
                    self.flush();
                    self.plan.steps.push(Step::Takeover(Second {
                        input: b & 1 != 0,
                        ping: b & 2 != 0,
                        close: b & 4 != 0,
                    }));
                }
            }
            OP_OPPONENT => {
                let b = c.u8();
                let column = c.u8();
                if self.opponents < MAX_OPPONENTS {
                    self.opponents += 1;
                    self.flush();
                    self.plan.steps.push(Step::Opponent(Opponent {
                        seat: match b & 3 {
                            1 => Seat::ByCode,
                            2 => Seat::Quick,
                            _ => Seat::ById,
                        },
                        plays: b & 4 != 0,
                        rematch: b & 8 != 0,
                        acks: b & 0x10 != 0,
                        leaves: b & 0x20 != 0,
                        column,
                    }));
                }
            }
            OP_PLAY => {
                let moves = c.u8() % 22 + 1;
                let column = c.u8();
                self.flush();
                self.plan.steps.push(Step::Play {
                    moves,
                    column,
                    first_seq: self.next_seq,
                });
                self.next_seq = self.next_seq.wrapping_add(u32::from(moves));
            }
            OP_ACK => {
                self.flush();
                self.plan.steps.push(Step::AckSeen);
            }
            _ => unreachable!("tags are reduced modulo OPS"),
        }
    }

    /// Remembers the payload of a ping and the code of a close frame, which
    /// the server may echo.
    fn note_control(&mut self, opcode: u8, payload: &[u8]) {
        match opcode {
            ws::PING => self.plan.ws_pings.push(payload.to_vec()),
            ws::CLOSE if payload.len() >= 2 => self
                .plan
                .close_codes
                .push(u16::from_be_bytes([payload[0], payload[1]])),
            _ => {}
        }
    }

    /// The bytes of the next automatically numbered game message.
    fn next_game<T: serde::Serialize>(&mut self, value: &T) -> Vec<u8> {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        message_bytes(&game_message(seq, value))
    }

    fn next_app_ping(&mut self) -> Vec<u8> {
        let t = self.next_ping;
        self.next_ping += 1;
        self.plan.app_pings.push(t);
        message_bytes(&ClientMsg::Ping(Ping { t }))
    }

    fn message(&mut self, c: &mut Cursor<'_>) {
        let kind = c.u8();
        let flags = c.u8();
        let mut bytes = match kind % 8 {
            0 => {
                let [dx, dy] = c.array().map(|b: u8| b as i8);
                self.next_game(&arena::msg::Move { dx, dy })
            }
            1 => {
                let column = c.u8();
                self.next_game(&four::msg::FourMsg::Drop { column })
            }
            2 => self.next_game(&four::msg::FourMsg::Rematch),
            3 => {
                let seq = c.u32();
                let len = usize::from(c.u8());
                let data = c.bytes(len).to_vec();
                message_bytes(&ClientMsg::Game(GameMsg { seq, data }))
            }
            4 => {
                let t = u64::from_le_bytes(c.array());
                self.plan.app_pings.push(t);
                message_bytes(&ClientMsg::Ping(Ping { t }))
            }
            5 => {
                self.plan.acks_exact = false;
                message_bytes(&ClientMsg::EventAck(EventAck { upto: c.u32() }))
            }
            6 => message_bytes(&ClientMsg::Leave),
            _ => {
                let version = u16::from_le_bytes(c.array());
                let resume = (c.u8() & 1 == 1).then(|| Resume {
                    token: ResumeToken(c.array()),
                    last_event: c.u32(),
                });
                if resume.is_some() {
                    // A resume claims events seen, true or not.
                    self.plan.acks_exact = false;
                }
                let room = read_any_request(c);
                message_bytes(&ClientMsg::Hello(Hello {
                    version,
                    resume,
                    room,
                }))
            }
        };
        let split = match flags & 3 {
            0 => Split::Whole,
            1 => Split::At(c.u8()),
            2 => Split::Bytes,
            _ => Split::PingBetween,
        };
        if flags & 0x08 != 0 {
            bytes.push(c.u8());
        }
        if flags & 0x10 != 0 {
            bytes.pop();
        }
        let opcode = if flags & 0x20 != 0 {
            ws::TEXT
        } else {
            ws::BINARY
        };
        let masked = flags & 0x04 == 0;
        let mut frame = |fin: bool, opcode: u8, payload: &[u8]| {
            let head = if fin { ws::FIN | opcode } else { opcode };
            ws::put_frame(&mut self.out, head, masked, Length::Minimal, payload);
        };
        match split {
            Split::Whole => frame(true, opcode, &bytes),
            Split::At(at) => {
                let (a, b) = bytes.split_at(usize::from(at).min(bytes.len()));
                frame(false, opcode, a);
                frame(true, ws::CONTINUATION, b);
            }
            Split::Bytes => {
                if bytes.is_empty() {
                    frame(true, opcode, &[]);
                }
                for (i, b) in bytes.iter().enumerate() {
                    let op = if i == 0 { opcode } else { ws::CONTINUATION };
                    frame(i + 1 == bytes.len(), op, &[*b]);
                }
            }
            Split::PingBetween => {
                let (a, b) = bytes.split_at(bytes.len() / 2);
                frame(false, opcode, a);
                frame(true, ws::PING, b"mid");
                frame(true, ws::CONTINUATION, b);
                self.plan.ws_pings.push(b"mid".to_vec());
            }
        }
    }
}

/// Writes `session` inputs for the seed corpus, one operation per call,
/// in the format [`parse`] reads.
#[derive(Clone, Debug)]
pub struct Builder {
    /// The input so far.
    bytes: Vec<u8>,
}

impl Builder {
    /// A raw-mode input: `bytes` as-is after the opening.
    pub fn raw(opening: &Opening, bytes: &[u8]) -> Vec<u8> {
        let mut mode = 0;
        let mut fields = Vec::new();
        put_opening(opening, false, &mut mode, &mut fields);
        let mut out = vec![mode];
        out.extend(fields);
        out.extend_from_slice(bytes);
        out
    }

    /// A script-mode input with this opening, untimed.
    pub fn script(opening: &Opening) -> Self {
        let mut mode = 1;
        let mut fields = Vec::new();
        put_opening(opening, true, &mut mode, &mut fields);
        let mut bytes = vec![mode];
        bytes.extend(fields);
        Self { bytes }
    }

    /// Makes the script timed: its pauses really wait.
    pub fn timed(mut self) -> Self {
        self.bytes[0] |= TIMED;
        self
    }

    /// The finished input.
    pub fn build(self) -> Vec<u8> {
        self.bytes
    }

    /// A client message, split and spoilt as asked.
    pub fn message(mut self, msg: Message, split: Split, spoil: Spoil) -> Self {
        let kind = match msg {
            Message::Move { .. } => 0,
            Message::Drop { .. } => 1,
            Message::Rematch => 2,
            Message::Game { .. } => 3,
            Message::Ping(_) => 4,
            Message::Ack(_) => 5,
            Message::Leave => 6,
            Message::Hello { .. } => 7,
        };
        let split_bits = match split {
            Split::Whole => 0,
            Split::At(_) => 1,
            Split::Bytes => 2,
            Split::PingBetween => 3,
        };
        let flags = split_bits
            | u8::from(spoil.unmasked) << 2
            | u8::from(spoil.trailing.is_some()) << 3
            | u8::from(spoil.truncate) << 4
            | u8::from(spoil.text) << 5;
        self.bytes.extend([OP_MESSAGE, kind, flags]);
        match msg {
            Message::Move { dx, dy } => self.bytes.extend([dx as u8, dy as u8]),
            Message::Drop { column } => self.bytes.push(column),
            Message::Rematch | Message::Leave => {}
            Message::Game { seq, data } => {
                self.bytes.extend_from_slice(&seq.to_le_bytes());
                self.bytes
                    .push(u8::try_from(data.len()).expect("at most 255 bytes"));
                self.bytes.extend_from_slice(&data);
            }
            Message::Ping(t) => self.bytes.extend_from_slice(&t.to_le_bytes()),
            Message::Ack(upto) => self.bytes.extend_from_slice(&upto.to_le_bytes()),
            Message::Hello {
                version,
                resume,
                room,
            } => {
                self.bytes.extend_from_slice(&version.to_le_bytes());
                match resume {
                    Some((token, last_event)) => {
                        self.bytes.push(1);
                        self.bytes.extend_from_slice(&token);
                        self.bytes.extend_from_slice(&last_event.to_le_bytes());
                    }
                    None => self.bytes.push(0),
                }
                put_any_request(&room, &mut self.bytes);
            }
        }
        if let Split::At(at) = split {
            self.bytes.push(at);
        }
        if let Some(b) = spoil.trailing {
            self.bytes.push(b);
        }
        self
    }

    /// A whole, valid message.
    pub fn send(self, msg: Message) -> Self {
        self.message(msg, Split::Whole, Spoil::default())
    }

    /// The next automatic arena move, whole and valid.
    pub fn arena_move(self, dx: i8, dy: i8) -> Self {
        self.send(Message::Move { dx, dy })
    }

    /// The next automatic four drop, whole and valid.
    pub fn drop_disc(self, column: u8) -> Self {
        self.send(Message::Drop { column })
    }

    /// A valid application ping.
    pub fn ping(self, t: u64) -> Self {
        self.send(Message::Ping(t))
    }

    /// Any frame; `payload` is at most 255 bytes.
    pub fn frame(mut self, head: u8, masked: bool, length: Length, payload: &[u8]) -> Self {
        let form = match length {
            Length::Minimal => 0,
            Length::Force16 => 1,
            Length::Force64 => 2,
            Length::Claim(_) => 3,
        };
        self.bytes
            .extend([OP_FRAME, head, u8::from(masked) | (form << 1)]);
        if let Length::Claim(n) = length {
            self.bytes.extend_from_slice(&n.to_le_bytes());
        }
        self.bytes
            .push(u8::try_from(payload.len()).expect("at most 255 bytes"));
        self.bytes.extend_from_slice(payload);
        self
    }

    /// A masked frame of `2 * half_len` copies of `fill`.
    pub fn big(mut self, head: u8, half_len: u16, fill: u8) -> Self {
        self.bytes.extend([OP_BIG, head]);
        self.bytes.extend_from_slice(&half_len.to_le_bytes());
        self.bytes.push(fill);
        self
    }

    /// A close frame with a code and a reason of at most 253 bytes.
    pub fn close(mut self, code: u16, reason: &[u8]) -> Self {
        self.bytes.push(OP_CLOSE);
        self.bytes.extend_from_slice(&code.to_be_bytes());
        self.bytes
            .push(u8::try_from(reason.len()).expect("at most 253 bytes"));
        self.bytes.extend_from_slice(reason);
        self
    }

    /// A close frame with no payload.
    pub fn close_empty(mut self) -> Self {
        self.bytes.extend([OP_CLOSE, 0, 0, 255]);
        self
    }

    /// A close frame with a one-byte payload (invalid).
    pub fn close_one_byte(mut self) -> Self {
        self.bytes.extend([OP_CLOSE, 3, 0, 254]);
        self
    }

    /// A WebSocket ping with this payload (at most 255 bytes).
    pub fn ws_ping(mut self, payload: &[u8]) -> Self {
        self.bytes.extend([OP_PING, payload.len() as u8]);
        self.bytes.extend_from_slice(payload);
        self
    }

    /// A WebSocket pong with this payload (at most 255 bytes).
    pub fn ws_pong(mut self, payload: &[u8]) -> Self {
        self.bytes.extend([OP_PONG, payload.len() as u8]);
        self.bytes.extend_from_slice(payload);
        self
    }

    /// A pause of `ms` (at most 31) milliseconds, or a yield if untimed.
    pub fn pause(mut self, ms: u8) -> Self {
        assert!(ms < 32);
        self.bytes.extend([OP_PAUSE, ms]);
        self
    }

    /// Raw bytes (at most 255).
    pub fn raw_bytes(mut self, bytes: &[u8]) -> Self {
        self.bytes.extend([OP_RAW, bytes.len() as u8]);
        self.bytes.extend_from_slice(bytes);
        self
    }

    /// `count` (1–32) messages or frames of one kind.
    pub fn burst(mut self, kind: Burst, count: u8) -> Self {
        assert!((1..=32).contains(&count));
        self.bytes
            .extend([OP_BURST, ((kind as u8) << 5) | (count - 1)]);
        self
    }

    /// A second connection that resumes this session.
    pub fn takeover(mut self, second: Second) -> Self {
        let flags =
            u8::from(second.input) | u8::from(second.ping) << 1 | u8::from(second.close) << 2;
        self.bytes.extend([OP_TAKEOVER, flags]);
        self
    }

    /// A second player in this connection's room.
    pub fn opponent(mut self, o: Opponent) -> Self {
        let seat = match o.seat {
            Seat::ById => 0,
            Seat::ByCode => 1,
            Seat::Quick => 2,
        };
        let flags = seat
            | u8::from(o.plays) << 2
            | u8::from(o.rematch) << 3
            | u8::from(o.acks) << 4
            | u8::from(o.leaves) << 5;
        self.bytes.extend([OP_OPPONENT, flags, o.column]);
        self
    }

    /// Play `moves` (1–22) discs at four, each on this player's turn.
    pub fn play(mut self, moves: u8, column: u8) -> Self {
        assert!((1..=22).contains(&moves));
        self.bytes.extend([OP_PLAY, moves - 1, column]);
        self
    }

    /// Acknowledge the events received so far.
    pub fn ack_seen(mut self) -> Self {
        self.bytes.push(OP_ACK);
        self
    }
}

/// What a [`Builder::burst`] repeats.
#[derive(Clone, Copy, Debug)]
pub enum Burst {
    /// Arena moves.
    Moves = 0,
    /// Four drops into columns 0, 1, ... 6, 0, ...
    Drops = 1,
    /// Four rematch requests.
    Rematches = 2,
    /// Application pings.
    AppPings = 3,
    /// Empty WebSocket pings.
    WsPings = 4,
    /// Empty WebSocket pongs.
    Pongs = 5,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_string_parses() {
        for data in [
            &[][..],
            &[0],
            &[1],
            &[0xff; 40],
            &[1, 0],
            &[1, 1, 0x89, 7, 0xff],
            &[1, 6, 1, 200, 1, 2, 3],
            &[3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ] {
            let _ = parse(data);
        }
    }

    #[test]
    fn builder_and_parser_agree() {
        let opening = Opening::Hello(Request::Create {
            game: GameKind::Four,
            pace: Pace::Default,
            private: true,
        });
        let input = Builder::script(&opening)
            .timed()
            .drop_disc(3)
            .ping(77)
            .pause(10)
            .ack_seen()
            .close(1000, b"bye")
            .build();
        let plan = parse(&input);
        assert_eq!(plan.opening, opening);
        assert!(plan.exact && plan.acks_exact);
        assert_eq!(plan.app_pings, [77]);
        let mut expected = msg_frame(&game_message(1, &four::msg::FourMsg::Drop { column: 3 }));
        expected.extend(msg_frame(&ClientMsg::Ping(Ping { t: 77 })));
        let mut close = Vec::new();
        ws::put_client_frame(&mut close, true, ws::CLOSE, b"\x03\xe8bye");
        assert_eq!(
            plan.steps,
            [
                Step::Write(expected),
                Step::Pause(Duration::from_millis(10)),
                Step::AckSeen,
                Step::Write(close)
            ]
        );
    }

    #[test]
    fn every_opening_round_trips() {
        let any = RoomRequest::Create {
            room_type: "four".into(),
            options: vec![("pace".into(), "x".into())],
            private: true,
        };
        let openings = [
            Opening::None,
            Opening::Hello(Request::Quick {
                game: GameKind::Arena,
                pace: Pace::Fast,
            }),
            Opening::Hello(Request::Create {
                game: GameKind::Arena,
                pace: Pace::Unknown,
                private: false,
            }),
            Opening::Hello(Request::RecentRoom(17)),
            Opening::Hello(Request::RecentCode(3)),
            Opening::Hello(Request::Any(any.clone())),
            Opening::Hello(Request::Any(RoomRequest::JoinById { room_id: 70_000 })),
            Opening::Hello(Request::Any(RoomRequest::JoinByCode { code: "ab".into() })),
            Opening::Resume {
                token: TokenChoice::Recent(5),
                last_event: LastEvent::Seen,
            },
            Opening::Resume {
                token: TokenChoice::Given([9; 16]),
                last_event: LastEvent::Given(300),
            },
        ];
        for opening in openings {
            assert_eq!(parse(&Builder::script(&opening).build()).opening, opening);
            assert_eq!(parse(&Builder::raw(&opening, b"")).opening, opening);
        }
        let input = Builder::script(&Opening::None)
            .send(Message::Hello {
                version: 2,
                resume: None,
                room: any.clone(),
            })
            .build();
        let Step::Write(bytes) = &parse(&input).steps[0] else {
            panic!("a write")
        };
        assert_eq!(bytes, &msg_frame(&hello(any)));
    }

    #[test]
    fn runtime_steps_take_their_place_in_the_sequence() {
        let input = Builder::script(&Opening::Hello(Request::Quick {
            game: GameKind::Four,
            pace: Pace::Default,
        }))
        .opponent(Opponent {
            plays: true,
            column: 4,
            ..Opponent::default()
        })
        .drop_disc(0)
        .play(5, 2)
        .drop_disc(1)
        .takeover(Second::default())
        .build();
        let plan = parse(&input);
        assert!(matches!(plan.steps[0], Step::Opponent(o) if o.plays && o.column == 4));
        assert_eq!(
            plan.steps[2],
            Step::Play {
                moves: 5,
                column: 2,
                first_seq: 2
            }
        );
        let Step::Write(bytes) = &plan.steps[3] else {
            panic!("a write")
        };
        let drop = game_message(7, &four::msg::FourMsg::Drop { column: 1 });
        assert_eq!(bytes, &msg_frame(&drop), "numbering continues after play");
        assert!(plan.has_takeover());
    }

    #[test]
    fn an_ack_of_any_number_makes_acks_inexact() {
        let input = Builder::script(&Opening::Hello(Request::RecentRoom(0)))
            .send(Message::Ack(7))
            .build();
        let plan = parse(&input);
        assert!(plan.exact && !plan.acks_exact);
    }

    #[test]
    fn pauses_are_capped() {
        let input = Builder::script(&Opening::Hello(Request::RecentRoom(0)))
            .timed()
            .pause(31)
            .pause(31)
            .pause(31)
            .build();
        let total: Duration = parse(&input)
            .steps
            .iter()
            .map(|s| match s {
                Step::Pause(d) => *d,
                _ => Duration::ZERO,
            })
            .sum();
        assert_eq!(total, MAX_PAUSE);
    }

    #[test]
    fn raw_mode_writes_the_rest_as_is() {
        let opening = Opening::Resume {
            token: TokenChoice::Given([9; 16]),
            last_event: LastEvent::Seen,
        };
        let input = Builder::raw(&opening, b"\x82\x00junk");
        let plan = parse(&input);
        assert_eq!(plan.opening, opening);
        assert_eq!(plan.steps, [Step::Write(b"\x82\x00junk".to_vec())]);
        assert!(!plan.exact && !plan.acks_exact);
    }
}

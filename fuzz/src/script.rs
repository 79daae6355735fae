//! The `session` target's input format: what one fuzz input makes the
//! client do, and a [`Builder`] that writes inputs for the seed corpus.
//!
//! The format is a small byte code rather than an `arbitrary` derive: the
//! seed corpus needs an exact inverse (a way to write the input that means
//! "hello, two inputs, a ping, close"), which `arbitrary` does not offer,
//! and a flat byte code keeps libFuzzer's byte-level mutations meaningful.
//! Every byte string is a valid input; an operation cut short by the end
//! of the input reads zeros for its missing fields and a shorter payload.
//!
//! Byte 0 chooses the mode:
//! - bit 0 clear: **raw**. Bits 1–2 choose a prefix ([`HelloChoice`]): 0
//!   none, 1 a new `Hello`, 2 a resume with a token the server issued
//!   recently (index in bits 3–6), 3 a resume with the next 16 bytes as
//!   token. The rest of the input is written as-is after it.
//! - bit 0 set: **script**. Bits 1–2 choose the opening: 0 a new `Hello`,
//!   1 a resume with the next 16 bytes as token, 2 a resume with a recent
//!   token (index in bits 3–6), 3 none. Bit 7 makes the script *timed*:
//!   its pauses really wait; in an untimed script a pause only yields to
//!   the server's tasks. Then operations follow until the input ends, each
//!   a tag byte (`tag % 10`) and its fields:
//!
//! | tag | operation | fields |
//! |-----|-----------|--------|
//! | 0 | a client message as a binary frame | flags (bits 0–1 the message: input, app ping, `Hello`, next input; bits 2–3 the framing: whole, split at a point, one frame per byte, halves around a ping; bit 4 unmasked; bit 5 a trailing byte; bit 6 drop the last byte; bit 7 as text), the message's fields, split point, trailing byte |
//! | 1 | any frame | header byte, flags (bit 0 mask, bits 1–2 length form: minimal, 16-bit, 64-bit, claimed: then 8 bytes LE), length byte, payload |
//! | 2 | a big masked frame | header byte, `u16` LE half-length, fill byte |
//! | 3 | a close frame | code `u16` BE, reason length (255: empty payload, 254: one byte), reason |
//! | 4 | a WebSocket ping | length byte, payload (may exceed 125 bytes) |
//! | 5 | a WebSocket pong | length byte, payload |
//! | 6 | a pause | milliseconds in bits 0–4 (all pauses together capped at [`MAX_PAUSE`]; a yield if untimed) |
//! | 7 | raw bytes | length byte, bytes |
//! | 8 | a burst | bits 0–5 count − 1; bits 6–7: inputs, app pings, WebSocket pings, empty pongs |
//! | 9 | a takeover | flags: a second connection resumes this one's session (see [`Second`]) |
//!
//! After the last operation the client closes its write side.
//!
//! Why timed scripts are opt-in: an iteration without waits takes tens of
//! microseconds, one with waits tens of milliseconds. If every pause
//! waited, the inputs that happen to hold a pause would cost the fuzzer
//! most of its time; as it is, only inputs that ask for waiting pay for it.

use crate::ws::{self, Length};
use protocol::{ClientMsg, Hello, Input, Ping, ResumeToken};
use std::time::Duration;

/// Upper bound on all pauses of one timed input together. Large enough to
/// pass the fuzz server's handshake and idle timeouts and to see several
/// ticks and pings; small because waiting is most of an iteration's time
/// when an input waits at all.
pub const MAX_PAUSE: Duration = Duration::from_millis(30);

/// Bit of the mode byte that makes a script timed.
const TIMED: u8 = 0x80;

/// Takeovers honoured per input; more add nothing but time.
pub const MAX_TAKEOVERS: usize = 2;

const OPS: u8 = 10;
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

/// What a connection opens with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloChoice {
    /// Nothing: the input's bytes start at once.
    None,
    /// A valid `Hello` for a new player.
    New,
    /// A resume with one of the tokens the server issued recently: 0 is
    /// the newest, and the index wraps around the ones remembered.
    ResumeRecent(u8),
    /// A resume with this token.
    Resume([u8; 16]),
}

/// Which message an [`Builder::message`] operation carries.
#[derive(Clone, Copy, Debug)]
pub enum Message {
    /// An input with this sequence number.
    Input {
        /// Sequence number.
        seq: u32,
        /// Horizontal direction.
        dx: i8,
        /// Vertical direction.
        dy: i8,
    },
    /// An input numbered one past the previous automatic one.
    NextInput {
        /// Horizontal direction.
        dx: i8,
        /// Vertical direction.
        dy: i8,
    },
    /// An application ping.
    Ping(u64),
    /// A (second, hence refused) `Hello`.
    Hello {
        /// Protocol version.
        version: u16,
        /// Resume token, if any.
        token: Option<[u8; 16]>,
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
    /// Send one input.
    pub input: bool,
    /// Send one application ping.
    pub ping: bool,
    /// Send a close frame (1000) before closing its write side.
    pub close: bool,
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
}

/// A parsed input: what to do, and what the checks may expect.
#[derive(Clone, Debug)]
pub struct Plan {
    /// What the connection opens with.
    pub hello: HelloChoice,
    /// What follows, in order.
    pub steps: Vec<Step>,
    /// True while the byte stream keeps its framing and carries no data
    /// frames of unknown content, so that every pong can be traced to a
    /// ping this plan sent.
    pub exact: bool,
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
    data: &'a [u8],
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

    /// Up to `n` bytes; fewer if the input ends first.
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = self.pos.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }
}

/// The opening chosen by bits 1–2 of the mode byte. Raw mode: none, new,
/// recent token, given token; script mode: new, given token, recent token,
/// none (scripts usually open with a `Hello`, raw inputs usually do not).
fn hello_choice(mode: u8, script: bool, c: &mut Cursor<'_>) -> HelloChoice {
    match ((mode >> 1) & 3, script) {
        (0, false) | (3, true) => HelloChoice::None,
        (1, false) | (0, true) => HelloChoice::New,
        (2, _) => HelloChoice::ResumeRecent((mode >> 3) & 0x0f),
        _ => HelloChoice::Resume(c.array()),
    }
}

/// Bits 1–7 of the mode byte that choose `hello` (inverse of
/// [`hello_choice`]).
fn hello_bits(hello: HelloChoice, script: bool) -> u8 {
    let code = match (hello, script) {
        (HelloChoice::None, false) | (HelloChoice::New, true) => 0,
        (HelloChoice::New, false) | (HelloChoice::Resume(_), true) => 1,
        (HelloChoice::ResumeRecent(i), _) => return (2 << 1) | ((i & 0x0f) << 3),
        (HelloChoice::Resume(_), false) | (HelloChoice::None, true) => 3,
    };
    code << 1
}

/// The bytes of a client message.
pub fn message_bytes(msg: &ClientMsg) -> Vec<u8> {
    let mut out = Vec::new();
    protocol::encode_client(msg, &mut out);
    out
}

/// A masked binary frame holding a `Hello`.
pub fn hello_frame(token: Option<ResumeToken>) -> Vec<u8> {
    let hello = ClientMsg::Hello(Hello {
        version: protocol::PROTOCOL_VERSION,
        resume: token,
    });
    let mut out = Vec::new();
    ws::put_client_frame(&mut out, true, ws::BINARY, &message_bytes(&hello));
    out
}

/// State kept while turning operations into bytes.
struct Parser {
    plan: Plan,
    out: Vec<u8>,
    next_seq: u32,
    next_ping: u64,
    paused: Duration,
    timed: bool,
    takeovers: usize,
}

/// Interprets a fuzz input. Total: every byte string gives a plan.
pub fn parse(data: &[u8]) -> Plan {
    let mut c = Cursor { data, pos: 0 };
    let Some(&mode) = data.first() else {
        return Plan {
            hello: HelloChoice::None,
            steps: Vec::new(),
            exact: true,
            app_pings: Vec::new(),
            ws_pings: Vec::new(),
            close_codes: Vec::new(),
        };
    };
    c.pos = 1;
    let script = mode & 1 == 1;
    let hello = hello_choice(mode, script, &mut c);
    let mut p = Parser {
        plan: Plan {
            hello,
            steps: Vec::new(),
            exact: script,
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
    };
    if !script {
        p.out.extend_from_slice(c.bytes(usize::MAX));
    }
    while !c.at_end() {
        p.op(&mut c);
    }
    p.flush();
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
                for _ in 0..=(b & 0x3f) {
                    match b >> 6 {
                        0 => {
                            let msg = self.next_input(1, 0);
                            ws::put_client_frame(&mut self.out, true, ws::BINARY, &msg);
                        }
                        1 => {
                            let msg = self.next_app_ping();
                            ws::put_client_frame(&mut self.out, true, ws::BINARY, &msg);
                        }
                        2 => {
                            self.plan.ws_pings.push(Vec::new());
                            ws::put_client_frame(&mut self.out, true, ws::PING, b"");
                        }
                        _ => ws::put_client_frame(&mut self.out, true, ws::PONG, b""),
                    }
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

    fn next_input(&mut self, dx: i8, dy: i8) -> Vec<u8> {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        message_bytes(&ClientMsg::Input(Input { seq, dx, dy }))
    }

    fn next_app_ping(&mut self) -> Vec<u8> {
        let t = self.next_ping;
        self.next_ping += 1;
        self.plan.app_pings.push(t);
        message_bytes(&ClientMsg::Ping(Ping { t }))
    }

    fn message(&mut self, c: &mut Cursor<'_>) {
        let flags = c.u8();
        let mut bytes = match flags & 3 {
            0 => {
                let seq = u32::from_le_bytes(c.array());
                let [dx, dy] = c.array().map(|b: u8| b as i8);
                message_bytes(&ClientMsg::Input(Input { seq, dx, dy }))
            }
            1 => {
                let t = u64::from_le_bytes(c.array());
                self.plan.app_pings.push(t);
                message_bytes(&ClientMsg::Ping(Ping { t }))
            }
            2 => {
                let version = u16::from_le_bytes(c.array());
                let resume = (c.u8() & 1 == 1).then(|| ResumeToken(c.array()));
                message_bytes(&ClientMsg::Hello(Hello { version, resume }))
            }
            _ => {
                let [dx, dy] = c.array().map(|b: u8| b as i8);
                self.next_input(dx, dy)
            }
        };
        let split = match (flags >> 2) & 3 {
            0 => Split::Whole,
            1 => Split::At(c.u8()),
            2 => Split::Bytes,
            _ => Split::PingBetween,
        };
        if flags & 0x20 != 0 {
            bytes.push(c.u8());
        }
        if flags & 0x40 != 0 {
            bytes.pop();
        }
        let opcode = if flags & 0x80 != 0 {
            ws::TEXT
        } else {
            ws::BINARY
        };
        let masked = flags & 0x10 == 0;
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
    bytes: Vec<u8>,
}

impl Builder {
    /// A raw-mode input: `bytes` as-is after the chosen prefix.
    pub fn raw(hello: HelloChoice, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![hello_bits(hello, false)];
        if let HelloChoice::Resume(token) = hello {
            out.extend_from_slice(&token);
        }
        out.extend_from_slice(bytes);
        out
    }

    /// A script-mode input opening with `hello`, untimed.
    pub fn script(hello: HelloChoice) -> Self {
        let mut bytes = vec![1 | hello_bits(hello, true)];
        if let HelloChoice::Resume(token) = hello {
            bytes.extend_from_slice(&token);
        }
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
            Message::Input { .. } => 0,
            Message::Ping(_) => 1,
            Message::Hello { .. } => 2,
            Message::NextInput { .. } => 3,
        };
        let split_bits = match split {
            Split::Whole => 0,
            Split::At(_) => 1,
            Split::Bytes => 2,
            Split::PingBetween => 3,
        };
        let flags = kind
            | (split_bits << 2)
            | u8::from(spoil.unmasked) << 4
            | u8::from(spoil.trailing.is_some()) << 5
            | u8::from(spoil.truncate) << 6
            | u8::from(spoil.text) << 7;
        self.bytes.extend([OP_MESSAGE, flags]);
        match msg {
            Message::Input { seq, dx, dy } => {
                self.bytes.extend_from_slice(&seq.to_le_bytes());
                self.bytes.extend([dx as u8, dy as u8]);
            }
            Message::Ping(t) => self.bytes.extend_from_slice(&t.to_le_bytes()),
            Message::Hello { version, token } => {
                self.bytes.extend_from_slice(&version.to_le_bytes());
                match token {
                    Some(t) => {
                        self.bytes.push(1);
                        self.bytes.extend_from_slice(&t);
                    }
                    None => self.bytes.push(0),
                }
            }
            Message::NextInput { dx, dy } => self.bytes.extend([dx as u8, dy as u8]),
        }
        if let Split::At(at) = split {
            self.bytes.push(at);
        }
        if let Some(b) = spoil.trailing {
            self.bytes.push(b);
        }
        self
    }

    /// The next automatic input, whole and valid.
    pub fn input(self, dx: i8, dy: i8) -> Self {
        self.message(
            Message::NextInput { dx, dy },
            Split::Whole,
            Spoil::default(),
        )
    }

    /// A valid application ping.
    pub fn ping(self, t: u64) -> Self {
        self.message(Message::Ping(t), Split::Whole, Spoil::default())
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

    /// `count` (1–64) inputs, app pings, WebSocket pings or empty pongs.
    pub fn burst(mut self, kind: Burst, count: u8) -> Self {
        assert!((1..=64).contains(&count));
        self.bytes
            .extend([OP_BURST, ((kind as u8) << 6) | (count - 1)]);
        self
    }

    /// A second connection that resumes this session.
    pub fn takeover(mut self, second: Second) -> Self {
        let flags =
            u8::from(second.input) | u8::from(second.ping) << 1 | u8::from(second.close) << 2;
        self.bytes.extend([OP_TAKEOVER, flags]);
        self
    }
}

/// What a [`Builder::burst`] repeats.
#[derive(Clone, Copy, Debug)]
pub enum Burst {
    /// Valid inputs.
    Inputs = 0,
    /// Valid application pings.
    AppPings = 1,
    /// Empty WebSocket pings.
    WsPings = 2,
    /// Empty WebSocket pongs.
    Pongs = 3,
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
        ] {
            let _ = parse(data);
        }
    }

    #[test]
    fn builder_and_parser_agree() {
        let input = Builder::script(HelloChoice::New)
            .timed()
            .input(3, -4)
            .ping(77)
            .pause(10)
            .close(1000, b"bye")
            .build();
        let plan = parse(&input);
        assert_eq!(plan.hello, HelloChoice::New);
        assert!(plan.exact);
        assert_eq!(plan.app_pings, [77]);
        let mut expected = Vec::new();
        ws::put_client_frame(
            &mut expected,
            true,
            ws::BINARY,
            &message_bytes(&ClientMsg::Input(Input {
                seq: 1,
                dx: 3,
                dy: -4,
            })),
        );
        ws::put_client_frame(
            &mut expected,
            true,
            ws::BINARY,
            &message_bytes(&ClientMsg::Ping(Ping { t: 77 })),
        );
        let mut close = Vec::new();
        ws::put_client_frame(&mut close, true, ws::CLOSE, b"\x03\xe8bye");
        assert_eq!(
            plan.steps,
            [
                Step::Write(expected),
                Step::Pause(Duration::from_millis(10)),
                Step::Write(close)
            ]
        );
    }

    #[test]
    fn pauses_are_capped() {
        let input = Builder::script(HelloChoice::New)
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
        let input = Builder::raw(HelloChoice::Resume([9; 16]), b"\x82\x00junk");
        let plan = parse(&input);
        assert_eq!(plan.hello, HelloChoice::Resume([9; 16]));
        assert_eq!(plan.steps, [Step::Write(b"\x82\x00junk".to_vec())]);
        assert!(!plan.exact);
    }
}

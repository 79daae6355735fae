//! A connection's decisions, without I/O: what each message means (frames
//! become messages in `super::frames`), which limit it breaks, how the close handshake goes and with which code, when
//! to ping and when the peer is idle, what the reader asks the writer for.
//!
//! Like quinn-proto's connection, this module reads no socket, starts no
//! timer and reads no clock: frames and messages go in through `handle_*`
//! methods, the current time is an `Instant` argument, and what to do comes
//! back as values (a [`Read`], a [`HandshakeStep`], an [`Ending`] with the
//! close frame to answer with, a ping that is due). So every rule here is
//! unit tested without a socket or a runtime.
//!
//! Not for I/O or for reaching a room: `super::conn` is the driver that
//! reads and writes the socket, waits on timers, counts metrics and talks
//! to the lobby and the room; it asks this module what each thing means.
//! Not for the room's side of the hand-off either (events before states,
//! latest state wins): that is `crate::room::mailbox`.

use super::frames::{Assembler, Incoming, Violation};
use super::limit::{RateLimiter, Verdict};
use crate::config::Config;
use crate::metrics::{CloseInitiator, DropReason};
use crate::room::Refusal;
use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, WebSocketError};
use game_api::room_type::InboxError;
use protocol::{ClientMsg, CloseCode, DecodeError, GameMsg, Hello, Retry, RoomRequest};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Pending reader → writer requests. Pongs beyond this are dropped (a
/// client that pings faster than we can answer is hurting only itself).
const WRITER_QUEUE: usize = 32;

/// Echoed bytes that may wait to be written before the reader stops
/// reading (and TCP pushes back on the client): a few messages' worth,
/// never less than one whole message of the largest size.
const ECHO_BACKLOG_BYTES: usize = 1 << 20;

/// Echoed bytes the reader lets wait for the writer before it stops
/// reading (see [`ECHO_BACKLOG_BYTES`]).
pub(crate) fn echo_backlog_limit(max_message_size: usize) -> usize {
    ECHO_BACKLOG_BYTES.max(max_message_size)
}

/// How a connection ended, for metrics and for the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// We close with this code and reason.
    Close(CloseCode, Cow<'static, str>),
    /// The client sent a close frame with this code (1005 for none).
    ClientClosed(u16),
    /// The transport ended without a close handshake.
    Gone,
    /// We dropped a client whose socket accepted nothing for the whole
    /// slow timeout: too slow, but no close frame could be sent.
    Stuck,
}

impl From<Violation> for Ending {
    fn from((code, reason): Violation) -> Self {
        Ending::Close(code, reason)
    }
}

impl Ending {
    /// The close frame (code on the wire, reason) that goes out when the
    /// reading side ends this way: ours with its reason, the echo of the
    /// client's code, or none when the transport is gone (or stuck, with a
    /// frame perhaps half written).
    pub(crate) fn answer(&self) -> Option<(u16, &str)> {
        match self {
            Ending::Close(code, reason) => Some((code.code(), reason)),
            Ending::ClientClosed(code) => Some((close_echo_code(*code), "")),
            Ending::Gone | Ending::Stuck => None,
        }
    }

    /// Whether the player leaves for good (its seat is given up at once)
    /// rather than being dropped for the grace period: a client's close
    /// with 1000, or a close of ours whose retry policy is *Stop*.
    pub(crate) fn leaves(&self) -> bool {
        match self {
            Ending::ClientClosed(code) => *code == CloseCode::Normal.code(),
            Ending::Close(code, _) => code.retry() == Retry::Stop,
            Ending::Gone | Ending::Stuck => false,
        }
    }

    /// Who closed and with which code, for the `closes` counter; `None` for
    /// an abnormal end without a close.
    pub(crate) fn closed_by(&self) -> Option<(CloseInitiator, u16)> {
        match self {
            Ending::Close(code, _) => Some((CloseInitiator::Server, code.code())),
            Ending::ClientClosed(code) => Some((CloseInitiator::Client, *code)),
            // Counted as a too-slow close by us, though no frame carried it.
            Ending::Stuck => Some((CloseInitiator::Server, CloseCode::TooSlow.code())),
            Ending::Gone => None,
        }
    }
}

/// The code to echo when a client closes: its own (already validated), or
/// 1000 when it sent none (1005 must not appear on the wire).
pub(crate) fn close_echo_code(code: u16) -> u16 {
    if code == 1005 {
        CloseCode::Normal.code()
    } else {
        code
    }
}

/// Maps a read error to how the connection ends.
pub(crate) fn read_error(e: &WebSocketError) -> Ending {
    match e {
        WebSocketError::UnexpectedEOF
        | WebSocketError::IoError(_)
        | WebSocketError::ConnectionClosed => Ending::Gone,
        WebSocketError::FrameTooLarge => Ending::Close(
            CloseCode::MessageTooBig,
            "frame exceeds the message size limit".into(),
        ),
        WebSocketError::InvalidUTF8 => {
            Ending::Close(CloseCode::InvalidPayload, "invalid UTF-8".into())
        }
        other => Ending::Close(CloseCode::ProtocolError, Cow::Owned(other.to_string())),
    }
}

fn decode_error(e: DecodeError) -> Violation {
    let code = match e {
        DecodeError::TooLarge { .. } => CloseCode::MessageTooBig,
        DecodeError::Malformed(_) | DecodeError::TrailingBytes { .. } => CloseCode::InvalidPayload,
    };
    (code, Cow::Owned(e.to_string()))
}

// ---------------------------------------------------------------------------
// The handshake: Hello first, within the handshake timeout.

/// The handshake's clock: `Hello` must arrive by the deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Handshake {
    /// When the connection is closed with 4008 if no `Hello` has come.
    deadline: Instant,
}

/// What one frame means while the connection waits for `Hello`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HandshakeStep {
    /// Nothing to do yet (a pong, a fragment).
    Wait,
    /// Answer a WebSocket ping with this payload.
    Pong(Bytes),
    /// A complete message: it must be the `Hello` ([`first_message`]).
    Message(Bytes),
    /// The handshake is over without a session: write `ending.answer()`;
    /// after a close of ours, wait for the client's.
    End(Ending),
}

impl Handshake {
    /// A handshake that began (the upgrade) at `now`.
    pub(crate) fn new(now: Instant, timeout: Duration) -> Self {
        Self {
            deadline: now + timeout,
        }
    }

    /// When the handshake times out.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// How the connection ends when the deadline passes without `Hello`:
    /// with 4008, which tells the client to fix its handshake (the timer
    /// at [`Handshake::deadline`] is the driver's).
    pub(crate) fn expired(&self) -> Ending {
        Ending::Close(
            CloseCode::HandshakeTimeout,
            "no Hello within the handshake timeout".into(),
        )
    }

    /// Interprets one read (a frame or a read error) before `Hello`.
    pub(crate) fn handle_frame(
        &self,
        assembler: &mut Assembler,
        frame: Result<Frame<'_>, WebSocketError>,
    ) -> HandshakeStep {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return HandshakeStep::End(read_error(&e)),
        };
        match assembler.accept(frame) {
            Ok(Incoming::Message { payload, .. }) => HandshakeStep::Message(payload),
            Ok(Incoming::Ping(payload)) => HandshakeStep::Pong(payload),
            Ok(Incoming::Nothing) => HandshakeStep::Wait,
            Ok(Incoming::Close(code)) => HandshakeStep::End(Ending::ClientClosed(code)),
            Err(violation) => HandshakeStep::End(violation.into()),
        }
    }
}

/// The `Hello` a first message must be, checked for the protocol version
/// and the bounds of its room request.
pub(crate) fn first_message(bytes: &[u8]) -> Result<Hello, Ending> {
    let hello = match protocol::decode_client(bytes) {
        Ok(ClientMsg::Hello(hello)) => hello,
        Ok(_) => {
            return Err(Ending::Close(
                CloseCode::ProtocolError,
                "the first message must be Hello".into(),
            ));
        }
        Err(e) => return Err(decode_error(e).into()),
    };
    if hello.version != protocol::PROTOCOL_VERSION {
        let reason = format!(
            "protocol version {} is not supported; this server speaks {}",
            hello.version,
            protocol::PROTOCOL_VERSION
        );
        return Err(Ending::Close(CloseCode::VersionMismatch, reason.into()));
    }
    if let Err(reason) = protocol::limits::check_request(&hello.room) {
        return Err(Ending::Close(CloseCode::InvalidPayload, reason.into()));
    }
    Ok(hello)
}

/// What a player's `Hello` asks the lobby for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Placement<'a> {
    /// Its earlier session back (its room request is ignored).
    Resume(&'a protocol::Resume),
    /// A room by invite code: the address's attempt limit is asked first.
    ByCode(&'a RoomRequest),
    /// A room as the request says.
    Place(&'a RoomRequest),
}

impl<'a> Placement<'a> {
    /// Reads `hello`: a resume token wins over the room request.
    pub(crate) fn of(hello: &'a Hello) -> Self {
        match (&hello.resume, &hello.room) {
            (Some(resume), _) => Placement::Resume(resume),
            (None, request @ RoomRequest::JoinByCode { .. }) => Placement::ByCode(request),
            (None, request) => Placement::Place(request),
        }
    }
}

/// The refusal of a resume whose token no room holds.
pub(crate) fn unknown_resume_token() -> Refusal {
    Refusal::new(
        CloseCode::InvalidResumeToken,
        "resume token unknown or expired: join as a new player",
    )
}

/// The refusal of an invite code past the address's attempt limit.
pub(crate) fn too_many_code_attempts() -> Refusal {
    Refusal::new(
        CloseCode::TooManyAttempts,
        "too many invite-code attempts from this address: wait a minute",
    )
}

/// The close of a connection whose place is on another node, after the
/// `Redirect` message.
pub(crate) fn redirected() -> Ending {
    Ending::Close(
        CloseCode::Redirected,
        "your place is on another node: follow the Redirect".into(),
    )
}

/// The reason sent with the shutdown close `code` (1012 when the server
/// saves its sessions, 1001 otherwise).
pub(crate) fn shutdown_reason(code: CloseCode) -> &'static str {
    if code == CloseCode::ServiceRestart {
        "server restarting: resume your session"
    } else {
        "server shutting down"
    }
}

// ---------------------------------------------------------------------------
// The session's reading side: limits, violations, the client's close.

/// The per-connection limits a client can hit, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionLimits {
    /// Game messages per second (`--max-inputs-per-sec`).
    pub inputs_per_sec: u32,
    /// App-level pings per second (`--max-pings-per-sec`).
    pub pings_per_sec: u32,
    /// Event acknowledgements per second (`--max-acks-per-sec`).
    pub acks_per_sec: u32,
}

impl SessionLimits {
    /// The limits `config` sets.
    pub(crate) fn of(config: &Config) -> Self {
        Self {
            inputs_per_sec: config.max_inputs_per_sec,
            pings_per_sec: config.max_pings_per_sec,
            acks_per_sec: config.max_acks_per_sec,
        }
    }
}

/// Who a session reads for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The echo endpoint: every message comes back as it came.
    Echo,
    /// A player of a room.
    Player,
    /// A spectator or a recording's viewer: its game messages and
    /// acknowledgements go nowhere, its pings are answered.
    Watcher,
}

/// What the reader does with one frame or message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// Nothing (a pong, a fragment, a watcher's game message, an excess
    /// acknowledgement, anything after a violation but the client's close).
    Nothing,
    /// A complete message: count it, then [`Reading::handle_message`].
    Message {
        /// The message.
        payload: Bytes,
        /// Whether it came as text (the echo endpoint only).
        text: bool,
    },
    /// Answer a WebSocket ping with this payload.
    WsPong(Bytes),
    /// Send this message back (echo endpoint only).
    Echo {
        /// Text (true) or binary.
        text: bool,
        /// The message.
        payload: Bytes,
    },
    /// Hand this game message to the room's inbox
    /// ([`Reading::handle_inbox_error`] if it refuses).
    Game(GameMsg),
    /// Answer an app-level `Ping` with a `Pong` carrying `t`.
    Pong(u64),
    /// Pass this event acknowledgement to the room.
    Ack(u32),
    /// A game message was dropped, for this reason.
    InputDropped(DropReason),
    /// A ping was dropped (over the rate).
    PingDropped,
    /// The client broke a rule: close with this code (our close handshake).
    /// From now on only the client's close is read.
    Violation(CloseCode, Cow<'static, str>),
    /// The reading is over: report this ending to the writer.
    End(Ending),
}

/// A session's rate limits, one per kind of message.
struct Limits {
    /// Game messages.
    inputs: RateLimiter,
    /// App-level pings.
    pings: RateLimiter,
    /// Event acknowledgements.
    acks: RateLimiter,
}

/// The reading side of a session, from `Welcome` (or the upgrade, for the
/// echo endpoint) to the client's close or the end of the stream.
pub(crate) struct Reading<'a> {
    /// Reassembles frames into messages.
    assembler: &'a mut Assembler,
    /// Who the session is.
    role: Role,
    /// Its rate limits.
    limits: Limits,
    /// After a violation we only wait for the client's close frame.
    draining: bool,
}

impl<'a> Reading<'a> {
    /// A session starting at `now`.
    pub(crate) fn new(
        assembler: &'a mut Assembler,
        role: Role,
        limits: SessionLimits,
        now: Instant,
    ) -> Self {
        Self {
            assembler,
            role,
            limits: Limits {
                inputs: RateLimiter::new(limits.inputs_per_sec, now),
                pings: RateLimiter::new(limits.pings_per_sec, now),
                acks: RateLimiter::new(limits.acks_per_sec, now),
            },
            draining: false,
        }
    }

    fn violation(&mut self, (code, reason): Violation) -> Read {
        self.draining = true;
        Read::Violation(code, reason)
    }

    /// Interprets one read: a frame, or the error that ended it.
    pub(crate) fn handle_frame(&mut self, frame: Result<Frame<'_>, WebSocketError>) -> Read {
        let frame = match frame {
            Ok(frame) => frame,
            // A whole text frame that is not UTF-8: the frame was read in
            // full, so the stream is still in step and the client's close
            // can still be awaited.
            Err(WebSocketError::InvalidUTF8) if self.draining => return Read::Nothing,
            Err(WebSocketError::InvalidUTF8) => {
                return self.violation((
                    CloseCode::InvalidPayload,
                    "text message is not UTF-8".into(),
                ));
            }
            Err(e) => return Read::End(read_error(&e)),
        };
        let is_close = frame.opcode == OpCode::Close;
        match self.assembler.accept(frame) {
            Ok(Incoming::Close(code)) => Read::End(Ending::ClientClosed(code)),
            Ok(_) if self.draining => Read::Nothing,
            Ok(Incoming::Message { payload, text }) => Read::Message { payload, text },
            Ok(Incoming::Ping(payload)) => Read::WsPong(payload),
            Ok(Incoming::Nothing) => Read::Nothing,
            // A malformed close frame is the client's last word: answer it
            // with the error code and end.
            Err(violation) if is_close => Read::End(violation.into()),
            Err(_) if self.draining => Read::Nothing,
            Err(violation) => self.violation(violation),
        }
    }

    /// Interprets one complete message arriving at `now`.
    pub(crate) fn handle_message(&mut self, payload: Bytes, text: bool, now: Instant) -> Read {
        if self.role == Role::Echo {
            return Read::Echo { text, payload };
        }
        let player = self.role == Role::Player;
        match protocol::decode_client(&payload) {
            Err(e) => self.violation(decode_error(e)),
            Ok(ClientMsg::Hello(_)) => {
                self.violation((CloseCode::ProtocolError, "Hello sent twice".into()))
            }
            Ok(ClientMsg::Game(msg)) => match self.limits.inputs.check(now) {
                // A watcher's game messages go nowhere (its page may send
                // them as a player's would); floods still close it.
                Verdict::Accept if !player => Read::Nothing,
                Verdict::Accept => Read::Game(msg),
                Verdict::Drop => Read::InputDropped(DropReason::RateLimit),
                Verdict::Kick => self.violation((
                    CloseCode::InputFlood,
                    "input flood: sustained input rate far above the limit".into(),
                )),
            },
            Ok(ClientMsg::Ping(ping)) => match self.limits.pings.check(now) {
                Verdict::Accept => Read::Pong(ping.t),
                Verdict::Drop => Read::PingDropped,
                Verdict::Kick => self.violation((CloseCode::InputFlood, "ping flood".into())),
            },
            Ok(ClientMsg::EventAck(ack)) => match self.limits.acks.check(now) {
                Verdict::Accept if player => Read::Ack(ack.upto),
                Verdict::Accept | Verdict::Drop => Read::Nothing,
                Verdict::Kick => {
                    self.violation((CloseCode::InputFlood, "acknowledgement flood".into()))
                }
            },
            Ok(ClientMsg::Leave) => self.violation((CloseCode::Normal, "left the room".into())),
        }
    }

    /// What the room's inbox refusing a [`Read::Game`] means: a full inbox
    /// drops the message, one that is not the game's closes with 1007.
    pub(crate) fn handle_inbox_error(&mut self, e: InboxError) -> Read {
        match e {
            InboxError::Full => Read::InputDropped(DropReason::QueueFull),
            InboxError::Malformed(e) => self.violation((
                CloseCode::InvalidPayload,
                Cow::Owned(format!("not a message of this room's game: {e}")),
            )),
        }
    }
}

// ---------------------------------------------------------------------------
// The reader → writer requests.

/// Requests from the reader to the writer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToWriter {
    /// Answer an app-level `Ping`.
    Pong(u64),
    /// Answer a WebSocket ping with this payload.
    WsPong(Bytes),
    /// Send this message back (echo endpoint only).
    Echo {
        /// Text (true) or binary.
        text: bool,
        /// The message.
        payload: Bytes,
    },
    /// The client broke the protocol; close with this code. The reader
    /// keeps reading (and discarding) until the client answers.
    Violation(CloseCode, Cow<'static, str>),
    /// The reader has stopped: a close frame arrived, or the stream ended.
    Ended(Ending),
}

/// The queue of the reader's requests, written in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    /// Requests in arrival order.
    queue: VecDeque<ToWriter>,
    /// Bytes of echoes queued and not yet taken.
    echo_bytes: usize,
}

impl Requests {
    /// Queues a request; false if it was dropped. Pongs beyond
    /// [`WRITER_QUEUE`] are dropped (a client that pings faster than it
    /// reads hurts only itself); echoes are bounded by the reader instead
    /// ([`echo_backlog_limit`]), and ends and violations are always kept
    /// (there is at most one of each).
    pub(crate) fn push(&mut self, msg: ToWriter) -> bool {
        let droppable = matches!(msg, ToWriter::Pong(_) | ToWriter::WsPong(_));
        if droppable && self.queue.len() >= WRITER_QUEUE {
            return false;
        }
        if let ToWriter::Echo { payload, .. } = &msg {
            self.echo_bytes += payload.len();
        }
        self.queue.push_back(msg);
        true
    }

    /// Takes the oldest request, if any.
    pub(crate) fn pop(&mut self) -> Option<ToWriter> {
        let msg = self.queue.pop_front();
        if let Some(ToWriter::Echo { payload, .. }) = &msg {
            self.echo_bytes -= payload.len();
        }
        msg
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes of echoes queued.
    pub(crate) fn echo_bytes(&self) -> usize {
        self.echo_bytes
    }
}

// ---------------------------------------------------------------------------
// The writer's clock: pings and the idle timeout.

/// When the writer pings the client and when it gives up on a silent one.
/// One timer serves both: it fires at [`Keepalive::poll_timeout`].
#[derive(Debug, Clone)]
pub(crate) struct Keepalive {
    /// Interval of our WebSocket pings (`--ping-interval`).
    ping_interval: Duration,
    /// Longest silence from the client (`--idle-timeout`).
    idle_timeout: Duration,
    /// When the next ping is due.
    next_ping: Instant,
    /// A ping is due and not yet written.
    ping_due: bool,
}

impl Keepalive {
    /// The schedule of a session that started at `start`.
    pub(crate) fn new(start: Instant, ping_interval: Duration, idle_timeout: Duration) -> Self {
        Self {
            ping_interval,
            idle_timeout,
            next_ping: start + ping_interval,
            ping_due: false,
        }
    }

    /// When the timer must next fire, given that the last frame from the
    /// client arrived at `last_rx`: the next ping or the idle deadline,
    /// whichever comes first.
    pub(crate) fn poll_timeout(&self, last_rx: Instant) -> Instant {
        self.next_ping.min(last_rx + self.idle_timeout)
    }

    /// The timer fired at `now`: close with 4005 if the client has been
    /// silent since `last_rx` for the idle timeout, else schedule a ping
    /// if one is due.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        last_rx: Instant,
    ) -> Result<(), Violation> {
        if now >= last_rx + self.idle_timeout {
            return Err((
                CloseCode::IdleTimeout,
                "nothing received within the idle timeout".into(),
            ));
        }
        if now >= self.next_ping {
            self.ping_due = true;
            self.next_ping = now + self.ping_interval;
        }
        Ok(())
    }

    /// Whether a ping is to be written now (once per due ping).
    pub(crate) fn poll_ping(&mut self) -> bool {
        std::mem::take(&mut self.ping_due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::frames::tests::{close_payload, frame};
    use protocol::{EventAck, Ping, Resume, ResumeToken};

    fn encode(msg: &ClientMsg) -> Bytes {
        let mut out = Vec::new();
        protocol::encode_client(msg, &mut out);
        Bytes::from(out)
    }

    fn hello() -> Hello {
        Hello {
            version: protocol::PROTOCOL_VERSION,
            resume: None,
            room: RoomRequest::QuickJoin {
                room_type: "arena".into(),
                options: Vec::new(),
            },
        }
    }

    #[test]
    fn the_echo_backlog_holds_at_least_one_whole_message() {
        assert_eq!(echo_backlog_limit(1024), 1 << 20);
        assert_eq!(echo_backlog_limit(16 << 20), 16 << 20);
    }

    #[test]
    fn the_client_close_code_is_echoed_and_1005_becomes_1000() {
        let check = |got: u16, echoed: u16| assert_eq!(close_echo_code(got), echoed, "{got}");
        check(1005, 1000);
        check(1000, 1000);
        check(1001, 1001);
        check(4123, 4123);
        check(3000, 3000);
    }

    // --- endings and the close handshake ---------------------------------

    #[test]
    fn each_ending_answers_with_its_close_frame_or_none() {
        let ours = Ending::Close(CloseCode::IdleTimeout, "idle".into());
        assert_eq!(ours.answer(), Some((4005, "idle")));
        assert_eq!(Ending::ClientClosed(1005).answer(), Some((1000, "")));
        assert_eq!(Ending::ClientClosed(4100).answer(), Some((4100, "")));
        assert_eq!(Ending::Gone.answer(), None);
        assert_eq!(Ending::Stuck.answer(), None, "a frame may be half written");
    }

    #[test]
    fn a_player_leaves_for_good_only_on_1000_or_a_stop_close() {
        let check =
            |ending: Ending, leaves: bool| assert_eq!(ending.leaves(), leaves, "{ending:?}");
        check(Ending::ClientClosed(1000), true);
        check(Ending::ClientClosed(1001), false);
        check(Ending::ClientClosed(1005), false);
        check(Ending::ClientClosed(3000), false);
        check(Ending::Close(CloseCode::Normal, "left".into()), true);
        check(Ending::Close(CloseCode::InputFlood, "".into()), true);
        check(Ending::Close(CloseCode::MessageTooBig, "".into()), true);
        check(Ending::Close(CloseCode::IdleTimeout, "".into()), false);
        check(Ending::Close(CloseCode::GoingAway, "".into()), false);
        check(Ending::Close(CloseCode::ServiceRestart, "".into()), false);
        check(Ending::Gone, false);
        check(Ending::Stuck, false);
    }

    #[test]
    fn closes_are_counted_by_who_closed_with_which_code() {
        use CloseInitiator::*;
        let close = Ending::Close(CloseCode::HandshakeTimeout, "".into());
        assert_eq!(close.closed_by(), Some((Server, 4008)));
        assert_eq!(Ending::ClientClosed(1005).closed_by(), Some((Client, 1005)));
        assert_eq!(Ending::Stuck.closed_by(), Some((Server, 4004)));
        assert_eq!(Ending::Gone.closed_by(), None);
    }

    #[test]
    fn read_errors_end_the_connection_with_their_code() {
        assert_eq!(read_error(&WebSocketError::UnexpectedEOF), Ending::Gone);
        assert_eq!(read_error(&WebSocketError::ConnectionClosed), Ending::Gone);
        let code = |e| match read_error(&e) {
            Ending::Close(code, _) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            code(WebSocketError::FrameTooLarge),
            CloseCode::MessageTooBig
        );
        assert_eq!(code(WebSocketError::InvalidUTF8), CloseCode::InvalidPayload);
        assert_eq!(
            code(WebSocketError::ReservedBitsNotZero),
            CloseCode::ProtocolError
        );
    }

    #[test]
    fn the_shutdown_reason_says_whether_to_resume() {
        assert!(shutdown_reason(CloseCode::ServiceRestart).contains("resume"));
        assert_eq!(
            shutdown_reason(CloseCode::GoingAway),
            "server shutting down"
        );
    }

    // --- the handshake ------------------------------------------------------

    #[test]
    fn the_handshake_times_out_at_its_deadline_with_4008() {
        let t0 = Instant::now();
        let h = Handshake::new(t0, Duration::from_secs(5));
        assert_eq!(h.deadline(), t0 + Duration::from_secs(5));
        assert!(matches!(
            h.expired(),
            Ending::Close(CloseCode::HandshakeTimeout, _)
        ));
    }

    #[test]
    fn before_hello_pings_are_answered_and_closes_end_the_handshake() {
        let h = Handshake::new(Instant::now(), Duration::from_secs(5));
        let mut a = Assembler::new(1024, false);
        let mut step = |f| h.handle_frame(&mut a, f);
        assert_eq!(
            step(Ok(frame(true, OpCode::Ping, b"x"))),
            HandshakeStep::Pong(Bytes::from_static(b"x"))
        );
        assert_eq!(
            step(Ok(frame(true, OpCode::Pong, b""))),
            HandshakeStep::Wait
        );
        assert_eq!(
            step(Ok(frame(false, OpCode::Binary, b"ab"))),
            HandshakeStep::Wait
        );
        assert_eq!(
            step(Ok(frame(true, OpCode::Continuation, b"c"))),
            HandshakeStep::Message(Bytes::from_static(b"abc"))
        );
        assert_eq!(
            step(Ok(frame(true, OpCode::Close, &close_payload(1001, b"")))),
            HandshakeStep::End(Ending::ClientClosed(1001))
        );
        assert!(matches!(
            step(Ok(frame(true, OpCode::Text, b"hi"))),
            HandshakeStep::End(Ending::Close(CloseCode::UnsupportedData, _))
        ));
        assert_eq!(
            step(Err(WebSocketError::UnexpectedEOF)),
            HandshakeStep::End(Ending::Gone)
        );
        assert!(matches!(
            step(Err(WebSocketError::FrameTooLarge)),
            HandshakeStep::End(Ending::Close(CloseCode::MessageTooBig, _))
        ));
    }

    #[test]
    fn the_first_message_must_be_a_valid_hello() {
        let code = |bytes: &[u8]| match first_message(bytes) {
            Ok(_) => None,
            Err(Ending::Close(code, _)) => Some(code),
            Err(other) => panic!("{other:?}"),
        };
        assert_eq!(code(&encode(&ClientMsg::Hello(hello()))), None);
        assert_eq!(
            first_message(&encode(&ClientMsg::Hello(hello()))),
            Ok(hello())
        );
        assert_eq!(
            code(&encode(&ClientMsg::Ping(Ping { t: 1 }))),
            Some(CloseCode::ProtocolError),
            "Hello first"
        );
        assert_eq!(
            code(&encode(&ClientMsg::Leave)),
            Some(CloseCode::ProtocolError)
        );
        assert_eq!(code(&[0xff, 0xff, 0xff]), Some(CloseCode::InvalidPayload));
        let mut trailing = encode(&ClientMsg::Hello(hello())).to_vec();
        trailing.push(0);
        assert_eq!(code(&trailing), Some(CloseCode::InvalidPayload));
        let old = Hello {
            version: protocol::PROTOCOL_VERSION - 1,
            ..hello()
        };
        assert_eq!(
            code(&encode(&ClientMsg::Hello(old))),
            Some(CloseCode::VersionMismatch)
        );
        let bad_request = Hello {
            room: RoomRequest::QuickJoin {
                room_type: "Not A Name!".into(),
                options: Vec::new(),
            },
            ..hello()
        };
        assert_eq!(
            code(&encode(&ClientMsg::Hello(bad_request))),
            Some(CloseCode::InvalidPayload)
        );
    }

    #[test]
    fn a_resume_token_wins_over_the_room_request_and_codes_are_limited() {
        let by_code = RoomRequest::JoinByCode {
            code: "ABCDEFGH".into(),
        };
        let resume = Resume {
            token: ResumeToken([7; 16]),
            last_event: 3,
        };
        let resuming = Hello {
            resume: Some(resume),
            room: by_code.clone(),
            ..hello()
        };
        assert_eq!(Placement::of(&resuming), Placement::Resume(&resume));
        let joining = Hello {
            room: by_code.clone(),
            ..hello()
        };
        assert_eq!(Placement::of(&joining), Placement::ByCode(&by_code));
        let quick = hello();
        assert_eq!(Placement::of(&quick), Placement::Place(&quick.room));
        assert_eq!(unknown_resume_token().code, CloseCode::InvalidResumeToken);
        assert_eq!(too_many_code_attempts().code, CloseCode::TooManyAttempts);
        assert!(matches!(
            redirected(),
            Ending::Close(CloseCode::Redirected, _)
        ));
    }

    // --- the session's reading side ------------------------------------------

    const LIMITS: SessionLimits = SessionLimits {
        inputs_per_sec: 60,
        pings_per_sec: 10,
        acks_per_sec: 30,
    };

    fn game(seq: u32) -> Bytes {
        encode(&ClientMsg::Game(GameMsg {
            seq,
            data: vec![1, 2],
        }))
    }

    fn ping(t: u64) -> Bytes {
        encode(&ClientMsg::Ping(Ping { t }))
    }

    fn ack(upto: u32) -> Bytes {
        encode(&ClientMsg::EventAck(EventAck { upto }))
    }

    /// Feeds a whole binary frame and, if it is a message, the message.
    fn feed(r: &mut Reading<'_>, bytes: &Bytes, now: Instant) -> Read {
        match r.handle_frame(Ok(frame(true, OpCode::Binary, bytes))) {
            Read::Message { payload, text } => r.handle_message(payload, text, now),
            other => other,
        }
    }

    fn code_of(read: &Read) -> Option<CloseCode> {
        match read {
            Read::Violation(code, _) => Some(*code),
            Read::End(Ending::Close(code, _)) => Some(*code),
            _ => None,
        }
    }

    #[test]
    fn the_configured_limits_reach_the_session() {
        let config = Config::from_args(&[
            "--max-inputs-per-sec",
            "5",
            "--max-pings-per-sec",
            "6",
            "--max-acks-per-sec",
            "7",
        ])
        .unwrap();
        let limits = SessionLimits::of(&config);
        assert_eq!(
            limits,
            SessionLimits {
                inputs_per_sec: 5,
                pings_per_sec: 6,
                acks_per_sec: 7
            }
        );
        assert_eq!(SessionLimits::of(&Config::default()), LIMITS);
    }

    #[test]
    fn a_player_s_messages_go_to_the_room_and_pings_are_answered() {
        let t0 = Instant::now();
        let mut a = Assembler::new(1024, false);
        let mut r = Reading::new(&mut a, Role::Player, LIMITS, t0);
        assert_eq!(
            feed(&mut r, &game(9), t0),
            Read::Game(GameMsg {
                seq: 9,
                data: vec![1, 2]
            })
        );
        assert_eq!(feed(&mut r, &ping(77), t0), Read::Pong(77));
        assert_eq!(feed(&mut r, &ack(5), t0), Read::Ack(5));
        assert_eq!(
            r.handle_frame(Ok(frame(true, OpCode::Ping, b"hb"))),
            Read::WsPong(Bytes::from_static(b"hb"))
        );
        assert_eq!(
            r.handle_frame(Ok(frame(true, OpCode::Pong, b""))),
            Read::Nothing
        );
    }

    #[test]
    fn a_watcher_s_game_messages_and_acks_go_nowhere_but_its_pings_are_answered() {
        let t0 = Instant::now();
        let mut a = Assembler::new(1024, false);
        let mut r = Reading::new(&mut a, Role::Watcher, LIMITS, t0);
        assert_eq!(feed(&mut r, &game(1), t0), Read::Nothing);
        assert_eq!(feed(&mut r, &ack(1), t0), Read::Nothing);
        assert_eq!(feed(&mut r, &ping(3), t0), Read::Pong(3));
    }

    #[test]
    fn the_echo_endpoint_echoes_text_and_binary() {
        let t0 = Instant::now();
        let mut a = Assembler::new(1024, true);
        let mut r = Reading::new(&mut a, Role::Echo, LIMITS, t0);
        let got = r.handle_frame(Ok(frame(true, OpCode::Text, b"hi")));
        let Read::Message { payload, text } = got else {
            panic!("{got:?}")
        };
        assert_eq!(
            r.handle_message(payload, text, t0),
            Read::Echo {
                text: true,
                payload: Bytes::from_static(b"hi")
            }
        );
        // Not decoded: any bytes come back.
        assert_eq!(
            feed(&mut r, &Bytes::from_static(&[0xff]), t0),
            Read::Echo {
                text: false,
                payload: Bytes::from_static(&[0xff])
            }
        );
    }

    /// Sends `n` copies of `msg` at `now` and counts what came of them.
    fn burst(r: &mut Reading<'_>, msg: &Bytes, n: usize, now: Instant) -> Vec<Read> {
        (0..n).map(|_| feed(r, msg, now)).collect()
    }

    #[test]
    fn pings_past_their_rate_get_no_pong_and_a_ping_flood_closes_with_4003() {
        let t0 = Instant::now();
        let mut a = Assembler::new(1024, false);
        let mut r = Reading::new(&mut a, Role::Player, LIMITS, t0);
        // A burst of 4 (10 a second, at least 4), then drops.
        let reads = burst(&mut r, &ping(1), 6, t0);
        assert_eq!(
            reads[..4],
            [Read::Pong(1), Read::Pong(1), Read::Pong(1), Read::Pong(1)]
        );
        assert_eq!(reads[4..], [Read::PingDropped, Read::PingDropped]);
        // A tenth of a second later one more token has come.
        assert_eq!(
            feed(&mut r, &ping(2), t0 + Duration::from_millis(100)),
            Read::Pong(2)
        );
        // More than twice the rate for three whole windows: kicked.
        let mut last = Read::Nothing;
        for ms in (200..4200).step_by(10) {
            last = feed(&mut r, &ping(3), t0 + Duration::from_millis(ms));
            if code_of(&last).is_some() {
                break;
            }
        }
        assert_eq!(code_of(&last), Some(CloseCode::InputFlood), "{last:?}");
        assert!(matches!(&last, Read::Violation(_, reason) if reason == "ping flood"));
    }

    #[test]
    fn excess_acks_are_dropped_silently_and_an_ack_flood_closes_with_4003() {
        let t0 = Instant::now();
        let mut a = Assembler::new(1024, false);
        let mut r = Reading::new(&mut a, Role::Player, LIMITS, t0);
        // 30 a second: a burst of 7.
        let reads = burst(&mut r, &ack(1), 9, t0);
        assert!(reads[..7].iter().all(|r| *r == Read::Ack(1)), "{reads:?}");
        assert_eq!(reads[7..], [Read::Nothing, Read::Nothing]);
        let mut last = Read::Nothing;
        for ms in (1..4000).step_by(4) {
            last = feed(&mut r, &ack(2), t0 + Duration::from_millis(ms));
            if code_of(&last).is_some() {
                break;
            }
        }
        assert!(
            matches!(&last, Read::Violation(CloseCode::InputFlood, reason) if reason == "acknowledgement flood"),
            "{last:?}"
        );
    }

    #[test]
    fn the_ping_and_ack_rates_follow_the_configured_limits() {
        let t0 = Instant::now();
        let mut a = Assembler::new(1024, false);
        let limits = SessionLimits {
            inputs_per_sec: 60,
            pings_per_sec: 40,
            acks_per_sec: 120,
        };
        let mut r = Reading::new(&mut a, Role::Player, limits, t0);
        let pongs = burst(&mut r, &ping(1), 20, t0);
        assert_eq!(pongs.iter().filter(|r| **r == Read::Pong(1)).count(), 10);
        let acks = burst(&mut r, &ack(1), 40, t0);
        assert_eq!(acks.iter().filter(|r| **r == Read::Ack(1)).count(), 30);
    }

    #[test]
    fn inputs_past_their_rate_are_dropped_and_a_full_inbox_drops_too() {
        let t0 = Instant::now();
        let mut a = Assembler::new(1024, false);
        let mut r = Reading::new(&mut a, Role::Player, LIMITS, t0);
        let reads = burst(&mut r, &game(1), 16, t0);
        assert!(matches!(reads[14], Read::Game(_)));
        assert_eq!(reads[15], Read::InputDropped(DropReason::RateLimit));
        assert_eq!(
            r.handle_inbox_error(InboxError::Full),
            Read::InputDropped(DropReason::QueueFull)
        );
        assert_eq!(
            code_of(&r.handle_inbox_error(InboxError::Malformed("no".into()))),
            Some(CloseCode::InvalidPayload)
        );
        // After that violation only the client's close counts.
        assert_eq!(
            feed(&mut r, &ping(1), t0 + Duration::from_secs(1)),
            Read::Nothing
        );
    }

    #[test]
    fn broken_messages_close_with_their_codes() {
        // Each case: a fresh session, one message, the close code.
        let check = |bytes: Bytes, expected: CloseCode| {
            let t0 = Instant::now();
            // Larger than the protocol's limit, which the decoder applies.
            let mut a = Assembler::new(4096, false);
            let mut r = Reading::new(&mut a, Role::Player, LIMITS, t0);
            let read = feed(&mut r, &bytes, t0);
            assert_eq!(code_of(&read), Some(expected), "{bytes:?}: {read:?}");
            assert!(matches!(read, Read::Violation(..)), "our close handshake");
        };
        check(encode(&ClientMsg::Hello(hello())), CloseCode::ProtocolError);
        check(encode(&ClientMsg::Leave), CloseCode::Normal);
        check(Bytes::from_static(&[0xff, 0xff]), CloseCode::InvalidPayload);
        let mut trailing = ping(1).to_vec();
        trailing.push(0);
        check(Bytes::from(trailing), CloseCode::InvalidPayload);
        let too_long = encode(&ClientMsg::Game(GameMsg {
            seq: 1,
            data: vec![0; 2000],
        }));
        check(too_long, CloseCode::MessageTooBig);
    }

    #[test]
    fn frame_errors_close_once_then_only_the_client_s_close_counts() {
        let t0 = Instant::now();
        let mut a = Assembler::new(8, false);
        let mut r = Reading::new(&mut a, Role::Player, LIMITS, t0);
        let read = r.handle_frame(Ok(frame(true, OpCode::Binary, &[0; 9])));
        assert_eq!(code_of(&read), Some(CloseCode::MessageTooBig));
        assert!(matches!(read, Read::Violation(..)));
        // Draining: later violations and messages are not reported ...
        assert_eq!(
            r.handle_frame(Ok(frame(true, OpCode::Text, b"x"))),
            Read::Nothing
        );
        assert_eq!(
            r.handle_frame(Err(WebSocketError::InvalidUTF8)),
            Read::Nothing
        );
        assert_eq!(
            r.handle_frame(Ok(frame(true, OpCode::Ping, b""))),
            Read::Nothing
        );
        assert_eq!(
            r.handle_frame(Ok(frame(true, OpCode::Binary, b"ok"))),
            Read::Nothing
        );
        // ... and the client's close ends the reading.
        assert_eq!(
            r.handle_frame(Ok(frame(true, OpCode::Close, &close_payload(1000, b"")))),
            Read::End(Ending::ClientClosed(1000))
        );
    }

    #[test]
    fn invalid_utf8_text_is_a_violation_and_the_stream_goes_on() {
        let t0 = Instant::now();
        let mut a = Assembler::new(1024, true);
        let mut r = Reading::new(&mut a, Role::Echo, LIMITS, t0);
        let read = r.handle_frame(Err(WebSocketError::InvalidUTF8));
        assert_eq!(code_of(&read), Some(CloseCode::InvalidPayload));
        assert!(
            matches!(read, Read::Violation(..)),
            "not the end of the stream"
        );
    }

    #[test]
    fn the_client_s_close_ends_reading_and_a_broken_one_is_answered_at_once() {
        let t0 = Instant::now();
        let check = |payload: &[u8], expected: Read| {
            let mut a = Assembler::new(1024, false);
            let mut r = Reading::new(&mut a, Role::Player, LIMITS, t0);
            assert_eq!(
                r.handle_frame(Ok(frame(true, OpCode::Close, payload))),
                expected
            );
        };
        check(&[], Read::End(Ending::ClientClosed(1005)));
        check(
            &close_payload(1001, b"bye"),
            Read::End(Ending::ClientClosed(1001)),
        );
        check(
            &close_payload(1000, &[0xff]),
            Read::End(Ending::Close(
                CloseCode::InvalidPayload,
                "close reason is not UTF-8".into(),
            )),
        );
        check(
            &[3],
            Read::End(Ending::Close(
                CloseCode::ProtocolError,
                "close frame with a 1-byte payload".into(),
            )),
        );
        // The stream ending without a close.
        let mut a = Assembler::new(1024, false);
        let mut r = Reading::new(&mut a, Role::Player, LIMITS, t0);
        assert_eq!(
            r.handle_frame(Err(WebSocketError::UnexpectedEOF)),
            Read::End(Ending::Gone)
        );
    }

    // --- the reader → writer requests ------------------------------------------

    #[test]
    fn requests_keep_their_order_and_only_pongs_are_dropped_when_full() {
        let mut q = Requests::default();
        assert!(q.push(ToWriter::Pong(0)));
        assert!(q.push(ToWriter::Echo {
            text: false,
            payload: Bytes::from_static(b"abc"),
        }));
        assert_eq!(q.echo_bytes(), 3);
        for t in 1..WRITER_QUEUE as u64 - 1 {
            assert!(q.push(ToWriter::Pong(t)));
        }
        // Full: pongs go, closes and echoes stay.
        assert!(!q.push(ToWriter::Pong(99)));
        assert!(!q.push(ToWriter::WsPong(Bytes::new())));
        assert!(q.push(ToWriter::Violation(CloseCode::InputFlood, "".into())));
        assert!(q.push(ToWriter::Echo {
            text: true,
            payload: Bytes::from_static(b"de"),
        }));
        assert!(q.push(ToWriter::Ended(Ending::Gone)));
        assert_eq!(q.echo_bytes(), 5);
        assert_eq!(q.pop(), Some(ToWriter::Pong(0)));
        assert!(matches!(q.pop(), Some(ToWriter::Echo { .. })));
        assert_eq!(q.echo_bytes(), 2);
        for t in 1..WRITER_QUEUE as u64 - 1 {
            assert_eq!(q.pop(), Some(ToWriter::Pong(t)));
        }
        assert!(matches!(q.pop(), Some(ToWriter::Violation(..))));
        assert!(matches!(q.pop(), Some(ToWriter::Echo { text: true, .. })));
        assert_eq!(q.echo_bytes(), 0);
        assert_eq!(q.pop(), Some(ToWriter::Ended(Ending::Gone)));
        assert!(q.is_empty());
        assert_eq!(q.pop(), None);
        // Room again for pongs.
        assert!(q.push(ToWriter::Pong(1)));
    }

    // --- the writer's clock -----------------------------------------------------

    #[test]
    fn pings_go_out_every_interval_while_the_client_talks() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut k = Keepalive::new(t0, s(5), s(15));
        assert_eq!(k.poll_timeout(t0), t0 + s(5));
        assert!(!k.poll_ping());
        // Fired early (a spurious wake): nothing due.
        assert_eq!(k.handle_timeout(t0 + s(4), t0), Ok(()));
        assert!(!k.poll_ping());
        assert_eq!(k.handle_timeout(t0 + s(5), t0), Ok(()));
        assert!(k.poll_ping());
        assert!(!k.poll_ping(), "one ping per interval");
        assert_eq!(k.poll_timeout(t0), t0 + s(10));
        // The client answered at 6 s: the idle deadline moves, the ping
        // schedule does not.
        assert_eq!(k.poll_timeout(t0 + s(6)), t0 + s(10));
        assert_eq!(k.handle_timeout(t0 + s(10), t0 + s(6)), Ok(()));
        assert!(k.poll_ping());
        assert_eq!(k.poll_timeout(t0 + s(6)), t0 + s(15));
    }

    #[test]
    fn a_silent_client_is_closed_at_the_idle_timeout_with_4005() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // A ping interval longer than the idle timeout: the idle deadline
        // comes first.
        let mut k = Keepalive::new(t0, s(30), s(15));
        assert_eq!(k.poll_timeout(t0), t0 + s(15));
        assert_eq!(k.handle_timeout(t0 + s(14), t0), Ok(()));
        let (code, _) = k.handle_timeout(t0 + s(15), t0).unwrap_err();
        assert_eq!(code, CloseCode::IdleTimeout);
        // A frame at 10 s keeps it open until 25 s.
        assert_eq!(k.poll_timeout(t0 + s(10)), t0 + s(25));
        assert_eq!(k.handle_timeout(t0 + s(15), t0 + s(10)), Ok(()));
        assert!(k.handle_timeout(t0 + s(25), t0 + s(10)).is_err());
    }
}

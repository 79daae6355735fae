//! One WebSocket connection, from upgrade to close.
//!
//! The task first waits for `Hello` (bounded by the handshake timeout),
//! places or resumes the player through the lobby (the room request is
//! checked against the protocol's bounds, and invite codes against the
//! per-address attempt limit), and writes `Welcome`. Then two futures run
//! inside the task until the writer decides the connection is over:
//!
//! - the **reader** owns the read half. fastwebsockets' `read_frame` is not
//!   cancel-safe, so the reader is never raced against anything: it loops
//!   on its own, decodes each game message into the room's inbox
//!   (rate-limited, never blocking; one that is not a message of the room's
//!   game closes the connection with 1007), passes event acknowledgements
//!   to the room, and tells the writer what to send back (pongs, closes)
//!   through a small channel;
//! - the **writer** owns the write half and every decision to write:
//!   events and states from the mailbox, pongs, WebSocket pings, and the
//!   close handshake (at most one close frame, then drop the socket).
//!
//! Not for game logic: the connection knows players only by id and hands
//! their messages to the game's own decoder.

use super::Shared;
use super::direct::DirectSocket;
use super::limit::{RateLimiter, Verdict};
use crate::directory::Route;
use crate::metrics::{CloseInitiator, DropReason};
use crate::room::mailbox::{Delivery, Mailbox};
use crate::room::{self, ConnId, ConnLink, Refusal, RoomHandle};
use crate::wall::unix_millis;
use bytes::{Bytes, BytesMut};
use fastwebsockets::{Frame, OpCode, Payload, WebSocketError, WebSocketRead, WebSocketWrite};
use game_api::PlayerId;
use game_api::room_type::{InboxError, Sender};
use protocol::{
    ClientMsg, CloseCode, DecodeError, GameMsg, Hello, Pong, Retry, RoomRequest, ServerMsg,
};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

/// What a connection reads from: a plain TCP read half on the fast path,
/// or any stream hyper hands over (TLS).
pub(crate) trait ReadIo: AsyncRead + Unpin + Send {}
impl<T: AsyncRead + Unpin + Send> ReadIo for T {}

/// What a connection writes to.
pub(crate) trait WriteIo: AsyncWrite + Unpin + Send {}
impl<T: AsyncWrite + Unpin + Send> WriteIo for T {}

type WsRead<R> = WebSocketRead<R>;
type WsWrite<W> = WebSocketWrite<W>;

/// Largest single frame read into memory. Frames up to this size are read
/// whole, so that a message over `--max-message-size` is answered with a
/// proper close handshake (1009) instead of a reset that would swallow the
/// close code; larger frames are refused from their header and the socket
/// is cut. 64 KiB bounds the memory a hostile connection can hold.
const HARD_FRAME_LIMIT: usize = 64 * 1024;

/// How long the writer waits for a close frame to go out.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long after sending a close frame we wait for the client's answer
/// before dropping the socket.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Pending reader → writer requests. Pongs beyond this are dropped (a
/// client that pings faster than we can answer is hurting only itself).
const WRITER_QUEUE: usize = 32;

/// App-level pings accepted per second per connection: clients ping every
/// few seconds, so ten leaves room for bursts after a stall.
const PINGS_PER_SEC: u32 = 10;

/// Event acknowledgements accepted per second per connection: each wakes
/// the room, and a client acknowledges at most once per batch of events it
/// receives, so thirty is far above what a game needs while keeping a
/// hostile client from waking its room thousands of times a second.
/// Excess acknowledgements are dropped (a later one covers them).
const ACKS_PER_SEC: u32 = 30;

/// The address in-memory sessions (no socket) count invite-code attempts
/// against.
const NO_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// What a connection is for.
#[derive(Clone, Debug)]
pub(crate) enum SessionKind {
    /// A game session at `/ws`: Hello first, then inputs and pings.
    Game,
    /// The `/echo` conformance endpoint: every message comes back as it
    /// came (text stays text), with the same limits and close handling.
    Echo,
    /// A spectator (`/watch/ROOM/ws`) or a recording's viewer
    /// (`/replay/ID/ws`): Hello first (what it asks for is not read), then
    /// the followed player's Welcome and states; its game messages and
    /// acknowledgements are ignored, its pings answered.
    Watch(Arc<Watch>),
}

/// What a watching connection watches.
#[derive(Clone, Debug)]
pub(crate) enum Watch {
    /// A live room, following a player (by default the lowest id).
    Room {
        room: room::RoomId,
        follow: Option<PlayerId>,
    },
    /// A recording, as viewer stream `stream`.
    Replay {
        id: String,
        stream: String,
        follow: Option<PlayerId>,
        start: crate::record::viewer::StartAt,
    },
}

/// Who a session's reader reads for.
#[derive(Clone, Copy)]
enum Peer<'a> {
    /// The echo endpoint.
    Echo,
    /// A player of a room.
    Player(&'a RoomHandle, PlayerId),
    /// A spectator or viewer.
    Watcher,
}

/// Echoed bytes that may wait to be written before the reader stops
/// reading (and TCP pushes back on the client): a few messages' worth,
/// never less than one whole message of the largest size.
const ECHO_BACKLOG_BYTES: usize = 1 << 20;

/// How a connection ended, for metrics and for the room.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
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

/// Requests from the reader to the writer.
enum ToWriter {
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

/// The reader's requests to the writer. Both run in one task, so the lock
/// is never contended; the flag lets the writer skip the lock on the many
/// wake-ups (one per state) that bring no request.
struct Outbox<'a> {
    /// Set when `queue` may hold something.
    pending: AtomicBool,
    /// Requests in arrival order.
    queue: Mutex<VecDeque<ToWriter>>,
    /// Wakes the writer (it waits on the mailbox's notification).
    mailbox: &'a Mailbox,
    /// Bytes of echoes queued and not yet written.
    echo_backlog: AtomicU64,
    /// Wakes a reader that waits for the echo backlog to shrink.
    drained: tokio::sync::Notify,
}

impl<'a> Outbox<'a> {
    fn new(mailbox: &'a Mailbox) -> Self {
        Self {
            pending: AtomicBool::new(false),
            queue: Mutex::new(VecDeque::new()),
            mailbox,
            echo_backlog: AtomicU64::new(0),
            drained: tokio::sync::Notify::new(),
        }
    }

    /// Queues a request. Pongs beyond [`WRITER_QUEUE`] are dropped (a client
    /// that pings faster than it reads hurts only itself); ends and
    /// violations are always kept (there is at most one of each).
    fn push(&self, msg: ToWriter) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let droppable = matches!(msg, ToWriter::Pong(_) | ToWriter::WsPong(_));
        if droppable && q.len() >= WRITER_QUEUE {
            return false;
        }
        if let ToWriter::Echo { payload, .. } = &msg {
            self.echo_backlog.fetch_add(payload.len() as u64, Relaxed);
        }
        q.push_back(msg);
        drop(q);
        self.pending.store(true, Relaxed);
        self.mailbox.wake();
        true
    }

    /// Takes the oldest request, if any.
    fn pop(&self) -> Option<ToWriter> {
        if !self.pending.load(Relaxed) {
            return None;
        }
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let msg = q.pop_front();
        if q.is_empty() {
            self.pending.store(false, Relaxed);
        }
        drop(q);
        if let Some(ToWriter::Echo { payload, .. }) = &msg {
            self.echo_backlog.fetch_sub(payload.len() as u64, Relaxed);
            self.drained.notify_one();
        }
        msg
    }

    /// Waits until queued echoes fit under `limit` bytes: the reader stops
    /// reading meanwhile, so a client that sends faster than it reads is
    /// held back by TCP instead of growing the queue.
    async fn wait_for_echo_room(&self, limit: usize) {
        while self.echo_backlog.load(Relaxed) > limit as u64 {
            self.drained.notified().await;
        }
    }
}

/// What a frame meant, once control frames and fragments are handled.
enum Incoming {
    /// A complete data message; `text` for a text message (valid UTF-8).
    Message {
        /// The message.
        payload: Bytes,
        /// Whether it was a text message.
        text: bool,
    },
    /// A WebSocket ping with its payload.
    Ping(Bytes),
    /// A WebSocket pong, or a fragment of a message still being assembled.
    Nothing,
    /// A valid close frame with its code (1005 when it carried none).
    Close(u16),
}

/// Reassembles fragmented messages up to the message size limit
/// (fastwebsockets 0.10 does not bound reassembly itself) and validates
/// text as it arrives, failing at the first fragment that cannot be UTF-8.
struct Assembler {
    /// The message being assembled, if one is.
    partial: Option<Partial>,
    /// Largest message accepted.
    max: usize,
    /// Whether text messages are accepted (the echo endpoint) or refused
    /// with 1003 (the game protocol is binary only).
    text_allowed: bool,
}

struct Partial {
    /// The bytes so far.
    bytes: BytesMut,
    /// A text message (validated as it grows) or a binary one.
    text: bool,
    /// Bytes already known to be valid UTF-8 (text only): the rest is at
    /// most an incomplete last character.
    valid_up_to: usize,
}

/// Checks that `bytes[from..]` is UTF-8, allowing an incomplete character
/// at the end unless `complete`. Returns the new valid length.
fn utf8_prefix(bytes: &[u8], from: usize, complete: bool) -> Option<usize> {
    match std::str::from_utf8(&bytes[from..]) {
        Ok(_) => Some(bytes.len()),
        // `error_len() == None`: the input ended inside a character, which
        // the next fragment may complete.
        Err(e) if e.error_len().is_none() && !complete => Some(from + e.valid_up_to()),
        Err(_) => None,
    }
}

impl Assembler {
    fn new(max: usize, text_allowed: bool) -> Self {
        Self {
            partial: None,
            max,
            text_allowed,
        }
    }

    /// Interprets one frame.
    fn accept(&mut self, frame: Frame<'_>) -> Result<Incoming, (CloseCode, Cow<'static, str>)> {
        let too_big = |len: usize, max: usize| {
            (
                CloseCode::MessageTooBig,
                Cow::Owned(format!("message of {len} bytes exceeds the limit of {max}")),
            )
        };
        let not_utf8 = || {
            (
                CloseCode::InvalidPayload,
                Cow::Borrowed("text message is not UTF-8"),
            )
        };
        match frame.opcode {
            OpCode::Binary | OpCode::Text => {
                let text = frame.opcode == OpCode::Text;
                if text && !self.text_allowed {
                    return Err((
                        CloseCode::UnsupportedData,
                        "text frames are not supported: send binary bincode messages".into(),
                    ));
                }
                if self.partial.is_some() {
                    return Err((
                        CloseCode::ProtocolError,
                        "new message inside a fragmented one".into(),
                    ));
                }
                if frame.payload.len() > self.max {
                    return Err(too_big(frame.payload.len(), self.max));
                }
                if frame.fin {
                    // fastwebsockets has validated a whole text frame.
                    return Ok(Incoming::Message {
                        payload: payload_bytes(frame.payload),
                        text,
                    });
                }
                let bytes = BytesMut::from(&frame.payload[..]);
                let valid_up_to = if text {
                    utf8_prefix(&bytes, 0, false).ok_or_else(not_utf8)?
                } else {
                    0
                };
                self.partial = Some(Partial {
                    bytes,
                    text,
                    valid_up_to,
                });
                Ok(Incoming::Nothing)
            }
            OpCode::Continuation => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err((
                        CloseCode::ProtocolError,
                        "continuation without a message".into(),
                    ));
                };
                let len = partial.bytes.len() + frame.payload.len();
                if len > self.max {
                    self.partial = None;
                    return Err(too_big(len, self.max));
                }
                partial.bytes.extend_from_slice(&frame.payload);
                if partial.text {
                    match utf8_prefix(&partial.bytes, partial.valid_up_to, frame.fin) {
                        Some(valid) => partial.valid_up_to = valid,
                        None => {
                            self.partial = None;
                            return Err(not_utf8());
                        }
                    }
                }
                if !frame.fin {
                    return Ok(Incoming::Nothing);
                }
                let whole = self.partial.take().expect("checked above");
                Ok(Incoming::Message {
                    payload: whole.bytes.freeze(),
                    text: whole.text,
                })
            }
            OpCode::Ping => Ok(Incoming::Ping(payload_bytes(frame.payload))),
            OpCode::Pong => Ok(Incoming::Nothing),
            OpCode::Close => parse_client_close(&frame.payload).map(Incoming::Close),
        }
    }
}

fn payload_bytes(p: Payload<'_>) -> Bytes {
    match p {
        Payload::Bytes(b) => b.freeze(),
        other => Bytes::copy_from_slice(&other),
    }
}

/// Validates a client's close frame (RFC 6455 §5.5.1, §7.4). fastwebsockets
/// 0.10 does not check the 125-byte limit of control frames.
fn parse_client_close(payload: &[u8]) -> Result<u16, (CloseCode, Cow<'static, str>)> {
    match payload.len() {
        0 => return Ok(1005),
        1 => {
            return Err((
                CloseCode::ProtocolError,
                "close frame with a 1-byte payload".into(),
            ));
        }
        n if n > 125 => {
            return Err((
                CloseCode::ProtocolError,
                "close frame payload over 125 bytes".into(),
            ));
        }
        _ => {}
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    let allowed = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
    if !allowed {
        return Err((
            CloseCode::ProtocolError,
            Cow::Owned(format!("close code {code} is not allowed")),
        ));
    }
    if std::str::from_utf8(&payload[2..]).is_err() {
        return Err((
            CloseCode::InvalidPayload,
            "close reason is not UTF-8".into(),
        ));
    }
    Ok(code)
}

/// Maps a read error to how the connection ends.
fn read_error(e: &WebSocketError) -> Ending {
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

/// fastwebsockets calls this only for frames it answers itself, which we
/// turned off (auto-pong and auto-close): the writer answers instead.
async fn no_obligated_send(_: Frame<'_>) -> Result<(), std::io::Error> {
    Ok(())
}

fn decode_error(e: DecodeError) -> (CloseCode, Cow<'static, str>) {
    let code = match e {
        DecodeError::TooLarge { .. } => CloseCode::MessageTooBig,
        DecodeError::Malformed(_) | DecodeError::TrailingBytes { .. } => CloseCode::InvalidPayload,
    };
    (code, Cow::Owned(e.to_string()))
}

/// Close reasons must fit a control frame: 125 bytes minus the code.
fn clip_reason(reason: &str) -> &str {
    if reason.len() <= 123 {
        return reason;
    }
    let mut end = 123;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Serves one upgraded game connection from `peer`, given its two halves.
/// `refuse` closes it at once with that code (used when the server is
/// full).
pub(crate) async fn serve<R: ReadIo, W: WriteIo>(
    rd: WsRead<R>,
    wr: WsWrite<W>,
    shared: Arc<Shared>,
    peer: Option<IpAddr>,
    refuse: Option<CloseCode>,
) {
    let from = Transport { peer, direct: None };
    serve_as(rd, wr, shared, SessionKind::Game, from, refuse).await;
}

/// Where a connection comes from, and how its room may write to it.
pub(crate) struct Transport {
    /// The client's address (`None` for a stream that did not come from a
    /// socket).
    pub peer: Option<IpAddr>,
    /// The socket its room may write states to directly (plain TCP only).
    pub direct: Option<DirectSocket>,
}

/// Serves one upgraded connection of the given kind.
pub(crate) async fn serve_as<R: ReadIo, W: WriteIo>(
    mut rd: WsRead<R>,
    mut wr: WsWrite<W>,
    shared: Arc<Shared>,
    kind: SessionKind,
    from: Transport,
    refuse: Option<CloseCode>,
) {
    let conn = shared.next_conn.fetch_add(1, Relaxed);
    let span = tracing::info_span!("conn", conn);
    async move {
        rd.set_auto_close(false);
        rd.set_auto_pong(false);
        // fastwebsockets refuses a frame whose length is at least this.
        let max = shared.config.max_message_size;
        rd.set_max_message_size(HARD_FRAME_LIMIT.max(max + 1));
        let mut conn = Conn {
            id: conn,
            shared: shared.clone(),
            assembler: Assembler::new(max, matches!(kind, SessionKind::Echo)),
            kind,
            peer: from.peer.unwrap_or(NO_ADDRESS),
            direct: from.direct,
        };
        let ending = match refuse {
            Some(code) => {
                conn.refuse(&mut rd, &mut wr, code, code.name().into())
                    .await
            }
            None => conn.run(&mut rd, &mut wr).await,
        };
        conn.record(&ending);
    }
    .instrument(span)
    .await;
}

/// Reads until the client's close frame or the deadline (handshake phase
/// only; during a session the reader future does this).
async fn wait_for_close<R: ReadIo>(rd: &mut WsRead<R>, deadline: Instant) {
    let wait = async {
        loop {
            match rd.read_frame(&mut no_obligated_send).await {
                Ok(f) if f.opcode == OpCode::Close => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    };
    let _ = tokio::time::timeout_at(deadline.into(), wait).await;
}

struct Conn {
    id: ConnId,
    shared: Arc<Shared>,
    assembler: Assembler,
    kind: SessionKind,
    /// The client's address, for the invite-code attempt limit.
    peer: IpAddr,
    /// The socket the room may write states to directly, if any.
    direct: Option<DirectSocket>,
}

/// Where a `Hello` put its player.
enum Placed {
    /// In a room here.
    Joined(protocol::Welcome, RoomHandle),
    /// On another node of the cluster.
    Redirect(protocol::Redirect),
}

impl Conn {
    /// Handshake, then the session. Returns how it ended, with every close
    /// frame written.
    async fn run<R: ReadIo, W: WriteIo>(
        &mut self,
        rd: &mut WsRead<R>,
        wr: &mut WsWrite<W>,
    ) -> Ending {
        match self.handshake_and_session(rd, wr).await {
            Ok(ending) => ending,
            Err(Ending::Close(code, reason)) => self.refuse(rd, wr, code, reason).await,
            Err(other) => other,
        }
    }

    /// Closes a connection that has no session (a refusal or a failed
    /// handshake) and waits, bounded, for the client's answer.
    async fn refuse<R: ReadIo, W: WriteIo>(
        &self,
        rd: &mut WsRead<R>,
        wr: &mut WsWrite<W>,
        code: CloseCode,
        reason: Cow<'static, str>,
    ) -> Ending {
        send_close(wr, code.code(), &reason).await;
        wait_for_close(rd, Instant::now() + CLOSE_WAIT).await;
        Ending::Close(code, reason)
    }

    /// Returns `Err` with the ending for failures before the session starts
    /// (their close frame is still to be written), `Ok` once a session ran.
    async fn handshake_and_session<R: ReadIo, W: WriteIo>(
        &mut self,
        rd: &mut WsRead<R>,
        wr: &mut WsWrite<W>,
    ) -> Result<Ending, Ending> {
        if matches!(self.kind, SessionKind::Echo) {
            // No handshake and no room: a wake-up source for the writer is
            // all the mailbox is for here.
            let mailbox = Mailbox::default();
            return Ok(self.session(rd, wr, &mailbox, Peer::Echo).await);
        }
        let deadline = Instant::now() + self.shared.config.handshake_timeout;
        let hello = match tokio::time::timeout_at(deadline.into(), self.read_hello(rd, wr)).await {
            Ok(Ok(hello)) => hello,
            Ok(Err(ending)) => return Err(ending),
            Err(_) => {
                return Err(Ending::Close(
                    CloseCode::HandshakeTimeout,
                    "no Hello within the handshake timeout".into(),
                ));
            }
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
        if let SessionKind::Watch(watch) = &self.kind {
            let watch = watch.clone();
            return self.watch(rd, wr, &watch).await;
        }
        let mailbox = Arc::new(match &self.direct {
            Some(direct) => Mailbox::with_direct(Arc::new(direct.clone())),
            None => Mailbox::default(),
        });
        let link = ConnLink {
            conn: self.id,
            mailbox: mailbox.clone(),
        };
        let (welcome, room) = match self.place(&hello, link).await {
            Ok(Placed::Joined(welcome, room)) => (welcome, room),
            Ok(Placed::Redirect(redirect)) => {
                // The place is on another node: say where, then close.
                let mut buf = Vec::with_capacity(64);
                protocol::encode_server(&ServerMsg::Redirect(redirect), &mut buf);
                if self.write_data(wr, &buf).await.is_err() {
                    return Err(Ending::Gone);
                }
                return Err(Ending::Close(
                    CloseCode::Redirected,
                    "your place is on another node: follow the Redirect".into(),
                ));
            }
            Err(refusal) => {
                if refusal.code == CloseCode::InvalidResumeToken {
                    self.shared.metrics.resumes_refused.fetch_add(1, Relaxed);
                }
                return Err(Ending::Close(refusal.code, refusal.reason));
            }
        };
        if welcome.resumed {
            self.shared.metrics.resumes.fetch_add(1, Relaxed);
        }
        let player = welcome.player_id;
        tracing::debug!(
            player,
            room = room.id,
            resumed = welcome.resumed,
            "session started"
        );
        let mut buf = Vec::with_capacity(64);
        protocol::encode_server(&ServerMsg::Welcome(welcome), &mut buf);
        let ending = match self.write_data(wr, &buf).await {
            Ok(()) => {
                self.session(rd, wr, &mailbox, Peer::Player(&room, player))
                    .await
            }
            Err(_) => Ending::Gone,
        };
        let leave = match &ending {
            Ending::ClientClosed(code) => *code == CloseCode::Normal.code(),
            Ending::Close(code, _) => code.retry() == Retry::Stop,
            Ending::Gone | Ending::Stuck => false,
        };
        room.disconnected(player, self.id, leave).await;
        tracing::debug!(player, ?ending, leave, "session ended");
        Ok(ending)
    }

    /// A spectator's or a viewer's session: its Welcome, then states until
    /// either side ends it.
    async fn watch<R: ReadIo, W: WriteIo>(
        &mut self,
        rd: &mut WsRead<R>,
        wr: &mut WsWrite<W>,
        watch: &Watch,
    ) -> Result<Ending, Ending> {
        let mailbox = Arc::new(Mailbox::default());
        let refused = |code: CloseCode, why: String| Ending::Close(code, why.into());
        match watch {
            Watch::Room { room, follow } => {
                let handle = self
                    .shared
                    .lobby
                    .watchable(*room)
                    .map_err(|r| Ending::Close(r.code, r.reason))?;
                let link = ConnLink {
                    conn: self.id,
                    mailbox: mailbox.clone(),
                };
                let welcome = handle
                    .watch(*follow, link)
                    .await
                    .map_err(|r| Ending::Close(r.code, r.reason))?;
                let ending = match self.write_welcome(wr, welcome).await {
                    Ok(()) => self.session(rd, wr, &mailbox, Peer::Watcher).await,
                    Err(_) => Ending::Gone,
                };
                handle.unwatch(self.id).await;
                Ok(ending)
            }
            Watch::Replay {
                id,
                stream,
                follow,
                start,
            } => {
                let viewer = self.shared.viewer.as_ref().ok_or_else(|| {
                    refused(
                        CloseCode::NoSuchRoom,
                        "this server keeps no recordings".into(),
                    )
                })?;
                let (welcome, feed) = viewer
                    .open(id, stream, *follow, *start)
                    .map_err(|(_, why)| refused(CloseCode::NoSuchRoom, why))?;
                if self.write_welcome(wr, welcome).await.is_err() {
                    return Ok(Ending::Gone);
                }
                let feeding = tokio::spawn(feed.run(mailbox.clone()));
                let ending = self.session(rd, wr, &mailbox, Peer::Watcher).await;
                feeding.abort();
                Ok(ending)
            }
        }
    }

    async fn write_welcome<W: WriteIo>(
        &self,
        wr: &mut WsWrite<W>,
        welcome: protocol::Welcome,
    ) -> Result<(), WebSocketError> {
        let mut buf = Vec::with_capacity(64);
        protocol::encode_server(&ServerMsg::Welcome(welcome), &mut buf);
        self.write_data(wr, &buf).await
    }

    /// Resumes the session `hello` names, or places a new player as its
    /// room request asks.
    async fn place(&self, hello: &Hello, link: ConnLink) -> Result<Placed, Refusal> {
        let lobby = &self.shared.lobby;
        if let Some(resume) = hello.resume {
            let Some((room, player)) = lobby.find(&resume.token) else {
                return Err(Refusal::new(
                    CloseCode::InvalidResumeToken,
                    "resume token unknown or expired: join as a new player",
                ));
            };
            let welcome = room
                .resume(player, resume.token, resume.last_event, link)
                .await?;
            return Ok(Placed::Joined(welcome, room));
        }
        if matches!(hello.room, RoomRequest::JoinByCode { .. })
            && !self.shared.code_attempts.allow(self.peer, Instant::now())
        {
            self.shared
                .metrics
                .code_attempts_refused
                .fetch_add(1, Relaxed);
            return Err(Refusal::new(
                CloseCode::TooManyAttempts,
                "too many invite-code attempts from this address: wait a minute",
            ));
        }
        let reservation = match &self.shared.directory {
            None => lobby.place(&hello.room)?,
            Some(directory) => match directory.route(&hello.room).await? {
                Route::Local(request) => lobby.place(&request)?,
                Route::Held(reservation) => reservation,
                Route::Redirect(redirect) => return Ok(Placed::Redirect(redirect)),
            },
        };
        let (welcome, room) = room::join(reservation, link).await?;
        Ok(Placed::Joined(welcome, room))
    }

    /// Reads frames until a complete `Hello`, answering pings meanwhile.
    async fn read_hello<R: ReadIo, W: WriteIo>(
        &mut self,
        rd: &mut WsRead<R>,
        wr: &mut WsWrite<W>,
    ) -> Result<Hello, Ending> {
        loop {
            let frame = rd
                .read_frame(&mut no_obligated_send)
                .await
                .map_err(|e| read_error(&e))?;
            let incoming = self
                .assembler
                .accept(frame)
                .map_err(|(c, r)| Ending::Close(c, r))?;
            match incoming {
                Incoming::Message { payload: bytes, .. } => {
                    self.count_in(bytes.len());
                    return match protocol::decode_client(&bytes) {
                        Ok(ClientMsg::Hello(hello)) => Ok(hello),
                        Ok(_) => Err(Ending::Close(
                            CloseCode::ProtocolError,
                            "the first message must be Hello".into(),
                        )),
                        Err(e) => {
                            let (c, r) = decode_error(e);
                            Err(Ending::Close(c, r))
                        }
                    };
                }
                Incoming::Ping(payload) => {
                    if wr
                        .write_frame(Frame::pong(Payload::Borrowed(&payload)))
                        .await
                        .is_err()
                    {
                        return Err(Ending::Gone);
                    }
                }
                Incoming::Nothing => {}
                Incoming::Close(code) => {
                    send_close(wr, close_echo_code(code), "").await;
                    return Err(Ending::ClientClosed(code));
                }
            }
        }
    }

    /// Runs the reader and writer futures until the writer is done.
    async fn session<R: ReadIo, W: WriteIo>(
        &mut self,
        rd: &mut WsRead<R>,
        wr: &mut WsWrite<W>,
        mailbox: &Mailbox,
        peer: Peer<'_>,
    ) -> Ending {
        let start = Instant::now();
        let last_rx = AtomicU64::new(0);
        let outbox = Outbox::new(mailbox);
        let reader = Reader {
            shared: &self.shared,
            assembler: &mut self.assembler,
            peer,
            conn: self.id,
            start,
            last_rx: &last_rx,
            outbox: &outbox,
        };
        let writer = Writer {
            shared: &self.shared,
            wr,
            mailbox,
            direct: self.direct.as_ref(),
            start,
            last_rx: &last_rx,
            frame: Vec::new(),
        };
        let ending = tokio::select! {
            // The reader never finishes on its own: it parks after reporting
            // its end to the writer, which decides when the session is over.
            never = reader.run(rd) => match never {},
            ending = writer.run(&outbox) => ending,
        };
        // The room holds the mailbox until it hears of the end: it must
        // neither write to the socket meanwhile nor keep it open.
        mailbox.stop_direct();
        ending
    }

    async fn write_data<W: WriteIo>(
        &self,
        wr: &mut WsWrite<W>,
        bytes: &[u8],
    ) -> Result<(), WebSocketError> {
        wr.write_frame(Frame::binary(Payload::Borrowed(bytes)))
            .await?;
        wr.flush().await?;
        self.shared.metrics.messages_out.fetch_add(1, Relaxed);
        self.shared
            .metrics
            .bytes_out
            .fetch_add(bytes.len() as u64, Relaxed);
        Ok(())
    }

    fn count_in(&self, len: usize) {
        self.shared.metrics.messages_in.fetch_add(1, Relaxed);
        self.shared.metrics.bytes_in.fetch_add(len as u64, Relaxed);
    }

    fn record(&self, ending: &Ending) {
        let m = &self.shared.metrics;
        match ending {
            Ending::Close(code, _) => m.record_close(CloseInitiator::Server, code.code()),
            Ending::ClientClosed(code) => m.record_close(CloseInitiator::Client, *code),
            // Counted as a too-slow close by us, though no frame carried it.
            Ending::Stuck => m.record_close(CloseInitiator::Server, CloseCode::TooSlow.code()),
            Ending::Gone => {
                m.closes_abnormal.fetch_add(1, Relaxed);
            }
        }
    }
}

/// Writes a close frame, bounded in time; never a second one.
async fn send_close<W: WriteIo>(wr: &mut WsWrite<W>, code: u16, reason: &str) {
    if wr.is_closed() {
        return;
    }
    let frame = Frame::close(code, clip_reason(reason).as_bytes());
    let write = async {
        wr.write_frame(frame).await?;
        wr.flush().await
    };
    let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, write).await;
}

/// The code to echo when a client closes: its own (already validated), or
/// 1000 when it sent none (1005 must not appear on the wire).
fn close_echo_code(code: u16) -> u16 {
    if code == 1005 {
        CloseCode::Normal.code()
    } else {
        code
    }
}

/// The reading side of a session.
struct Reader<'a> {
    shared: &'a Shared,
    assembler: &'a mut Assembler,
    /// Who the session is.
    peer: Peer<'a>,
    conn: ConnId,
    start: Instant,
    /// Milliseconds after `start` at which the last frame arrived.
    last_rx: &'a AtomicU64,
    outbox: &'a Outbox<'a>,
}

impl Reader<'_> {
    async fn run<R: ReadIo>(mut self, rd: &mut WsRead<R>) -> std::convert::Infallible {
        let ending = self.read_until_end(rd).await;
        // The writer may already be gone if it ended the session first.
        self.outbox.push(ToWriter::Ended(ending));
        std::future::pending().await
    }

    async fn read_until_end<R: ReadIo>(&mut self, rd: &mut WsRead<R>) -> Ending {
        let now = Instant::now();
        let mut limits = Limits {
            inputs: RateLimiter::new(self.shared.config.max_inputs_per_sec, now),
            pings: RateLimiter::new(PINGS_PER_SEC, now),
            acks: RateLimiter::new(ACKS_PER_SEC, now),
        };
        let echo_room = ECHO_BACKLOG_BYTES.max(self.shared.config.max_message_size);
        // After a violation we only wait for the client's close frame.
        let mut draining = false;
        loop {
            let frame = match rd.read_frame(&mut no_obligated_send).await {
                Ok(frame) => frame,
                // A whole text frame that is not UTF-8: the frame was read
                // in full, so the stream is still in step and the client's
                // close can still be awaited.
                Err(WebSocketError::InvalidUTF8) => {
                    if !draining {
                        draining = true;
                        self.outbox.push(ToWriter::Violation(
                            CloseCode::InvalidPayload,
                            "text message is not UTF-8".into(),
                        ));
                    }
                    continue;
                }
                Err(e) => return read_error(&e),
            };
            let now = Instant::now();
            self.last_rx
                .store(now.duration_since(self.start).as_millis() as u64, Relaxed);
            let is_close = frame.opcode == OpCode::Close;
            let incoming = match self.assembler.accept(frame) {
                Ok(Incoming::Close(code)) => return Ending::ClientClosed(code),
                Ok(_) if draining => continue,
                Ok(incoming) => incoming,
                // A malformed close frame is the client's last word: answer
                // it with the error code and end.
                Err((code, reason)) if is_close => return Ending::Close(code, reason),
                Err((code, reason)) => {
                    if !draining {
                        draining = true;
                        self.outbox.push(ToWriter::Violation(code, reason));
                    }
                    continue;
                }
            };
            let violation = match incoming {
                Incoming::Message { payload, text } => match self.peer {
                    Peer::Player(..) | Peer::Watcher => self.message(&payload, now, &mut limits),
                    Peer::Echo => {
                        self.count_in(payload.len());
                        self.outbox.push(ToWriter::Echo { text, payload });
                        self.outbox.wait_for_echo_room(echo_room).await;
                        None
                    }
                },
                Incoming::Ping(payload) => {
                    self.outbox.push(ToWriter::WsPong(payload));
                    None
                }
                Incoming::Nothing | Incoming::Close(_) => None,
            };
            if let Some((code, reason)) = violation {
                draining = true;
                self.outbox.push(ToWriter::Violation(code, reason));
            }
        }
    }

    fn count_in(&self, len: usize) {
        let metrics = &self.shared.metrics;
        metrics.messages_in.fetch_add(1, Relaxed);
        metrics.bytes_in.fetch_add(len as u64, Relaxed);
    }

    /// Handles one complete message; returns a violation to close with.
    fn message(
        &mut self,
        bytes: &[u8],
        now: Instant,
        limits: &mut Limits,
    ) -> Option<(CloseCode, Cow<'static, str>)> {
        self.count_in(bytes.len());
        let metrics = &self.shared.metrics;
        let player = match self.peer {
            Peer::Player(room, player) => Some((room, player)),
            Peer::Watcher => None,
            Peer::Echo => unreachable!("the echo endpoint echoes"),
        };
        match protocol::decode_client(bytes) {
            Err(e) => Some(decode_error(e)),
            Ok(ClientMsg::Hello(_)) => Some((CloseCode::ProtocolError, "Hello sent twice".into())),
            Ok(ClientMsg::Game(GameMsg { seq, data })) => match limits.inputs.check(now) {
                // A watcher's game messages go nowhere (its page may send
                // them as a player's would); floods still close it.
                Verdict::Accept if player.is_none() => None,
                Verdict::Accept => {
                    let Some((room, player)) = player else {
                        unreachable!("handled above");
                    };
                    let from = Sender {
                        player,
                        conn: self.conn,
                    };
                    match room.inbox.push(from, seq, &data) {
                        Ok(()) => None,
                        Err(InboxError::Full) => {
                            metrics.input_dropped(DropReason::QueueFull);
                            None
                        }
                        Err(InboxError::Malformed(e)) => Some((
                            CloseCode::InvalidPayload,
                            Cow::Owned(format!("not a message of this room's game: {e}")),
                        )),
                    }
                }
                Verdict::Drop => {
                    metrics.input_dropped(DropReason::RateLimit);
                    None
                }
                Verdict::Kick => Some((
                    CloseCode::InputFlood,
                    "input flood: sustained input rate far above the limit".into(),
                )),
            },
            Ok(ClientMsg::Ping(ping)) => {
                match limits.pings.check(now) {
                    Verdict::Accept => {
                        if !self.outbox.push(ToWriter::Pong(ping.t)) {
                            metrics.pings_dropped.fetch_add(1, Relaxed);
                        }
                    }
                    Verdict::Drop => {
                        metrics.pings_dropped.fetch_add(1, Relaxed);
                    }
                    Verdict::Kick => return Some((CloseCode::InputFlood, "ping flood".into())),
                }
                None
            }
            Ok(ClientMsg::EventAck(ack)) => match limits.acks.check(now) {
                Verdict::Accept => {
                    if let Some((room, player)) = player {
                        room.acknowledge(player, self.conn, ack.upto);
                    }
                    None
                }
                Verdict::Drop => None,
                Verdict::Kick => Some((CloseCode::InputFlood, "acknowledgement flood".into())),
            },
            Ok(ClientMsg::Leave) => Some((CloseCode::Normal, "left the room".into())),
        }
    }
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

/// The writing side of a session.
struct Writer<'a, W> {
    shared: &'a Shared,
    wr: &'a mut WsWrite<W>,
    mailbox: &'a Mailbox,
    /// The socket under `wr`, when the room may write to it directly.
    direct: Option<&'a DirectSocket>,
    start: Instant,
    last_rx: &'a AtomicU64,
    /// Scratch for encoding an event frame.
    frame: Vec<u8>,
}

impl<W: WriteIo> Writer<'_, W> {
    async fn run(mut self, outbox: &Outbox<'_>) -> Ending {
        let config = &self.shared.config;
        let mut shutdown = self.shared.shutdown.clone();
        let shutdown = shutdown.wait();
        tokio::pin!(shutdown);
        // One timer serves both the ping schedule and the idle deadline:
        // it fires at whichever comes first.
        let mut next_ping = self.start + config.ping_interval;
        let housekeeping =
            tokio::time::sleep_until(next_ping.min(self.start + config.idle_timeout).into());
        tokio::pin!(housekeeping);
        let mut out = Vec::with_capacity(32);
        let mut ping_due = false;
        loop {
            // Everything this task writes lies between `begin_write` and
            // `end_write`: the room writes states directly only outside
            // them, so frames never interleave.
            if let Err(ending) = self.begin_write().await {
                return ending;
            }
            if std::mem::take(&mut ping_due) {
                let frame = Frame::new(true, OpCode::Ping, None, Payload::Borrowed(b""));
                if self.wr.write_frame(frame).await.is_err() {
                    return Ending::Gone;
                }
            }
            while let Some(msg) = outbox.pop() {
                let written = match msg {
                    ToWriter::Pong(t) => {
                        out.clear();
                        let pong = Pong {
                            t,
                            server_time_ms: unix_millis(),
                        };
                        protocol::encode_server(&ServerMsg::Pong(pong), &mut out);
                        self.write_data(&out).await
                    }
                    ToWriter::WsPong(payload) => {
                        self.wr
                            .write_frame(Frame::pong(Payload::Borrowed(&payload)))
                            .await
                    }
                    ToWriter::Echo { text, payload } => {
                        let opcode = if text { OpCode::Text } else { OpCode::Binary };
                        let frame = Frame::new(true, opcode, None, Payload::Borrowed(&payload));
                        match self.wr.write_frame(frame).await {
                            Ok(()) => {
                                let m = &self.shared.metrics;
                                m.messages_out.fetch_add(1, Relaxed);
                                m.bytes_out.fetch_add(payload.len() as u64, Relaxed);
                                self.wr.flush().await
                            }
                            Err(e) => Err(e),
                        }
                    }
                    ToWriter::Violation(code, reason) => {
                        return self.close(outbox, code, reason).await;
                    }
                    ToWriter::Ended(Ending::ClientClosed(code)) => {
                        send_close(self.wr, close_echo_code(code), "").await;
                        return Ending::ClientClosed(code);
                    }
                    ToWriter::Ended(Ending::Close(code, reason)) => {
                        // The stream is broken; say why and stop.
                        send_close(self.wr, code.code(), &reason).await;
                        return Ending::Close(code, reason);
                    }
                    // The reader never reports `Stuck`: only the writer sees it.
                    ToWriter::Ended(ending @ (Ending::Gone | Ending::Stuck)) => return ending,
                };
                if written.is_err() {
                    return Ending::Gone;
                }
            }
            match self.mailbox.take() {
                Delivery::Kick(code, reason) => return self.close(outbox, code, reason).await,
                Delivery::Write { events, state } => {
                    let write = self.write_delivery(&events, state.as_deref());
                    match tokio::time::timeout(config.slow_timeout, write).await {
                        Ok(Ok(())) => continue,
                        Ok(Err(_)) => return Ending::Gone,
                        // The socket accepted nothing for the whole slow
                        // timeout. A frame may be half written, so no close
                        // frame can follow: drop the connection.
                        Err(_) => return Ending::Stuck,
                    }
                }
                Delivery::Empty => {}
            }
            self.mailbox.end_write();
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    let code = self.shared.shutdown.close_code();
                    let reason = if code == CloseCode::ServiceRestart {
                        "server restarting: resume your session"
                    } else {
                        "server shutting down"
                    };
                    return self.close(outbox, code, reason.into()).await;
                }
                _ = self.mailbox.notified() => {}
                _ = &mut housekeeping => {
                    let now = Instant::now();
                    let last = self.start + Duration::from_millis(self.last_rx.load(Relaxed));
                    let idle_deadline = last + config.idle_timeout;
                    if now >= idle_deadline {
                        return self
                            .close(outbox, CloseCode::IdleTimeout, "nothing received within the idle timeout".into())
                            .await;
                    }
                    if now >= next_ping {
                        // Written at the top of the loop, among our writes.
                        ping_due = true;
                        next_ping = now + config.ping_interval;
                    }
                    housekeeping.as_mut().reset(next_ping.min(idle_deadline).into());
                }
            }
        }
    }

    /// Writes events, in order, then the state.
    async fn write_delivery(
        &mut self,
        events: &[(u32, Bytes)],
        state: Option<&[u8]>,
    ) -> Result<(), WebSocketError> {
        for (seq, data) in events {
            self.frame.clear();
            protocol::wire::encode_event(*seq, data, &mut self.frame);
            let frame = std::mem::take(&mut self.frame);
            let written = self.write_data(&frame).await;
            self.frame = frame;
            written?;
            self.shared.metrics.events_sent.fetch_add(1, Relaxed);
        }
        if let Some(state) = state {
            self.write_data(state).await?;
            self.shared.metrics.states_written.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// Starts a run of this task's writes (see the loop in `run`),
    /// finishing first a frame the room wrote directly in part.
    async fn begin_write(&mut self) -> Result<(), Ending> {
        match self.mailbox.begin_write() {
            Some(rest) => self.write_rest(&rest).await,
            None => Ok(()),
        }
    }

    /// Writes the rest of a frame the room wrote directly in part, within
    /// the slow timeout as any write.
    async fn write_rest(&mut self, rest: &[u8]) -> Result<(), Ending> {
        let Some(direct) = self.direct else {
            // Only a direct socket leaves a frame in part.
            return Ok(());
        };
        let slow = self.shared.config.slow_timeout;
        match tokio::time::timeout(slow, direct.write_all(rest)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Ending::Gone),
            Err(_) => Err(Ending::Stuck),
        }
    }

    async fn write_data(&mut self, bytes: &[u8]) -> Result<(), WebSocketError> {
        self.wr
            .write_frame(Frame::binary(Payload::Borrowed(bytes)))
            .await?;
        self.wr.flush().await?;
        let m = &self.shared.metrics;
        m.messages_out.fetch_add(1, Relaxed);
        m.bytes_out.fetch_add(bytes.len() as u64, Relaxed);
        Ok(())
    }

    /// Sends our close frame and waits, bounded, for the client's answer.
    async fn close(
        &mut self,
        outbox: &Outbox<'_>,
        code: CloseCode,
        reason: Cow<'static, str>,
    ) -> Ending {
        // Nothing is written directly after our close frame, and a frame
        // written directly in part is finished before it.
        if let Some(rest) = self.mailbox.stop_direct()
            && let Err(ending) = self.write_rest(&rest).await
        {
            return ending;
        }
        send_close(self.wr, code.code(), &reason).await;
        let answered = async {
            loop {
                while let Some(msg) = outbox.pop() {
                    if let ToWriter::Ended(_) = msg {
                        return;
                    }
                }
                self.mailbox.notified().await;
            }
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, answered).await;
        Ending::Close(code, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_close_frames_are_validated() {
        let frame = |code: u16, reason: &[u8]| {
            let mut p = code.to_be_bytes().to_vec();
            p.extend_from_slice(reason);
            p
        };
        assert_eq!(parse_client_close(&[]), Ok(1005));
        assert_eq!(parse_client_close(&frame(1000, b"bye")), Ok(1000));
        assert_eq!(parse_client_close(&frame(4123, b"")), Ok(4123));
        let code_of = |p: &[u8]| parse_client_close(p).unwrap_err().0;
        assert_eq!(code_of(&[3]), CloseCode::ProtocolError);
        assert_eq!(code_of(&frame(1005, b"")), CloseCode::ProtocolError);
        assert_eq!(code_of(&frame(999, b"")), CloseCode::ProtocolError);
        assert_eq!(code_of(&frame(5000, b"")), CloseCode::ProtocolError);
        assert_eq!(
            code_of(&frame(1000, &[b'x'; 124])),
            CloseCode::ProtocolError
        );
        assert_eq!(
            code_of(&frame(1000, &[0xff, 0xfe])),
            CloseCode::InvalidPayload
        );
    }

    #[test]
    fn reasons_are_clipped_on_a_char_boundary() {
        let long = "é".repeat(100);
        let clipped = clip_reason(&long);
        assert!(clipped.len() <= 123);
        assert!(long.starts_with(clipped));
        assert_eq!(clip_reason("short"), "short");
    }

    fn frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Frame<'static> {
        Frame::new(fin, opcode, None, Payload::Owned(payload.to_vec()))
    }

    #[test]
    fn fragments_are_reassembled_up_to_the_limit() {
        let mut a = Assembler::new(8, false);
        assert!(matches!(
            a.accept(frame(false, OpCode::Binary, b"abc")),
            Ok(Incoming::Nothing)
        ));
        assert!(matches!(
            a.accept(frame(false, OpCode::Continuation, b"de")),
            Ok(Incoming::Nothing)
        ));
        match a.accept(frame(true, OpCode::Continuation, b"f")) {
            Ok(Incoming::Message { payload, text }) => {
                assert_eq!(&payload[..], b"abcdef");
                assert!(!text);
            }
            _ => panic!("expected the whole message"),
        }
        assert!(matches!(
            a.accept(frame(false, OpCode::Binary, b"12345")),
            Ok(Incoming::Nothing)
        ));
        let err = a
            .accept(frame(false, OpCode::Continuation, b"6789"))
            .err()
            .unwrap();
        assert_eq!(err.0, CloseCode::MessageTooBig);
        let err = a
            .accept(frame(true, OpCode::Continuation, b"x"))
            .err()
            .unwrap();
        assert_eq!(
            err.0,
            CloseCode::ProtocolError,
            "no message is open any more"
        );
        let err = a
            .accept(frame(true, OpCode::Binary, b"123456789"))
            .err()
            .unwrap();
        assert_eq!(err.0, CloseCode::MessageTooBig);
        let err = a.accept(frame(true, OpCode::Text, b"hi")).err().unwrap();
        assert_eq!(err.0, CloseCode::UnsupportedData);
    }
}

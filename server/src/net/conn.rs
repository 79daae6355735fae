//! One WebSocket connection, from upgrade to close: the I/O driver.
//!
//! The task first waits for `Hello` (bounded by the handshake timeout),
//! places or resumes the player through the lobby (the room request is
//! checked against the protocol's bounds, and invite codes against the
//! per-address attempt limit), and writes `Welcome`. Then two futures run
//! inside the task until the writer decides the connection is over:
//!
//! - the **reader** owns the read half. fastwebsockets' `read_frame` is not
//!   cancel-safe, so the reader is never raced against anything: it loops
//!   on its own, hands each game message to the room's inbox (never
//!   blocking), passes event acknowledgements to the room, and tells the
//!   writer what to send back (pongs, closes) through the `Outbox`;
//! - the **writer** owns the write half and every write: events and states
//!   from the mailbox, pongs, WebSocket pings, and the close handshake (at
//!   most one close frame, then drop the socket).
//!
//! Every decision — what a frame means, which limit it breaks, which close
//! code ends the connection, when to ping, when the client is idle — is
//! made by the I/O-free `super::session` (and `super::frames`, which
//! turns frames into messages), which this module feeds with frames and
//! the time. This module reads and writes the socket, waits on
//! timers, counts metrics and talks to the lobby and the room.
//!
//! Not for game logic: the connection knows players only by id and hands
//! their messages to the game's own decoder.

use super::Shared;
use super::direct::DirectSocket;
use super::frames::{Assembler, clip_reason, frame_read_limit};
use super::session::{
    self, Ending, Handshake, HandshakeStep, Keepalive, Placement, Read, Reading, Requests, Role,
    SessionLimits, ToWriter,
};
use crate::directory::Route;
use crate::room::mailbox::{Delivery, Mailbox};
use crate::room::{self, ConnId, ConnLink, Refusal, RoomHandle};
use crate::wall::unix_millis;
use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, WebSocketError, WebSocketRead, WebSocketWrite};
use game_api::PlayerId;
use game_api::room_type::{InboxError, Sender};
use protocol::{CloseCode, GameMsg, Hello, Pong, ServerMsg};
use race::{Finished, race};
use std::borrow::Cow;
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

/// How long the writer waits for a close frame to go out.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long after sending a close frame we wait for the client's answer
/// before dropping the socket.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

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

impl Peer<'_> {
    /// The session's role, as the I/O-free reading side knows it.
    fn role(&self) -> Role {
        match self {
            Peer::Echo => Role::Echo,
            Peer::Player(..) => Role::Player,
            Peer::Watcher => Role::Watcher,
        }
    }
}

/// The reader's requests to the writer ([`Requests`], in arrival order).
/// Both run in one task, so the lock is never contended; the flag lets the
/// writer skip the lock on the many wake-ups (one per state) that bring no
/// request.
struct Outbox<'a> {
    /// Set when `queue` may hold something.
    pending: AtomicBool,
    /// The requests.
    queue: Mutex<Requests>,
    /// Wakes the writer (it waits on the mailbox's notification).
    mailbox: &'a Mailbox,
    /// Wakes a reader that waits for the echo backlog to shrink.
    drained: tokio::sync::Notify,
}

impl<'a> Outbox<'a> {
    fn new(mailbox: &'a Mailbox) -> Self {
        Self {
            pending: AtomicBool::new(false),
            queue: Mutex::new(Requests::default()),
            mailbox,
            drained: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Requests> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a request and wakes the writer; false if it was dropped
    /// (see [`Requests::push`]).
    fn push(&self, msg: ToWriter) -> bool {
        if !self.lock().push(msg) {
            return false;
        }
        self.pending.store(true, Relaxed);
        self.mailbox.wake();
        true
    }

    /// Takes the oldest request, if any.
    fn pop(&self) -> Option<ToWriter> {
        if !self.pending.load(Relaxed) {
            return None;
        }
        let mut q = self.lock();
        let msg = q.pop();
        if q.is_empty() {
            self.pending.store(false, Relaxed);
        }
        drop(q);
        if let Some(ToWriter::Echo { .. }) = &msg {
            self.drained.notify_one();
        }
        msg
    }

    /// Waits until queued echoes fit under `limit` bytes: the reader stops
    /// reading meanwhile, so a client that sends faster than it reads is
    /// held back by TCP instead of growing the queue.
    async fn wait_for_echo_room(&self, limit: usize) {
        while self.lock().echo_bytes() > limit {
            self.drained.notified().await;
        }
    }
}

/// fastwebsockets calls this only for frames it answers itself, which we
/// turned off (auto-pong and auto-close): the writer answers instead.
async fn no_obligated_send(_: Frame<'_>) -> Result<(), std::io::Error> {
    Ok(())
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
    // A debug span: at the default level (info) it is disabled, and the
    // connection's future, polled at every input, enters no span (entering
    // one showed in a profile of the server at 1,000 players). The
    // connection's own events are at debug level, where it is enabled and
    // they carry it; an info event from a handshake (a room opened by a
    // quick join) then names its room but not the connection.
    let span = tracing::debug_span!("conn", conn);
    async move {
        rd.set_auto_close(false);
        rd.set_auto_pong(false);
        let max = shared.config.max_message_size;
        rd.set_max_message_size(frame_read_limit(max));
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
            Err(other) => {
                // The client closed first: echo its code, wait for nothing.
                if let Some((code, reason)) = other.answer() {
                    send_close(wr, code, reason).await;
                }
                other
            }
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
        let handshake = Handshake::new(Instant::now(), self.shared.config.handshake_timeout);
        let deadline = handshake.deadline().into();
        let hello =
            match tokio::time::timeout_at(deadline, self.read_hello(rd, wr, &handshake)).await {
                Ok(hello) => hello?,
                Err(_) => return Err(handshake.expired()),
            };
        if let SessionKind::Watch(watch) = &self.kind {
            let watch = watch.clone();
            return self.watch(rd, wr, &watch).await;
        }
        let mailbox = Arc::new(match &self.direct {
            Some(direct) => Mailbox::with_direct(direct.handle()),
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
                return Err(session::redirected());
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
        let ending = match self.write_welcome(wr, welcome).await {
            Ok(()) => {
                self.session(rd, wr, &mailbox, Peer::Player(&room, player))
                    .await
            }
            Err(_) => Ending::Gone,
        };
        let leave = ending.leaves();
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
        let request = match Placement::of(hello) {
            Placement::Resume(resume) => {
                let Some((room, player)) = lobby.find(&resume.token) else {
                    return Err(session::unknown_resume_token());
                };
                let welcome = room
                    .resume(player, resume.token, resume.last_event, link)
                    .await?;
                return Ok(Placed::Joined(welcome, room));
            }
            Placement::ByCode(_) if !self.shared.code_attempts.allow(self.peer, Instant::now()) => {
                self.shared
                    .metrics
                    .code_attempts_refused
                    .fetch_add(1, Relaxed);
                return Err(session::too_many_code_attempts());
            }
            Placement::ByCode(request) | Placement::Place(request) => request,
        };
        let reservation = match &self.shared.directory {
            None => lobby.place(request)?,
            Some(directory) => match directory.route(request).await? {
                Route::Local(request) => lobby.place(&request)?,
                Route::Held(reservation) => reservation,
                Route::Redirect(redirect) => return Ok(Placed::Redirect(redirect)),
            },
        };
        let (welcome, room) = room::join(reservation, link).await?;
        Ok(Placed::Joined(welcome, room))
    }

    /// Reads frames until a complete, valid `Hello`, answering pings
    /// meanwhile.
    async fn read_hello<R: ReadIo, W: WriteIo>(
        &mut self,
        rd: &mut WsRead<R>,
        wr: &mut WsWrite<W>,
        handshake: &Handshake,
    ) -> Result<Hello, Ending> {
        loop {
            let frame = rd.read_frame(&mut no_obligated_send).await;
            match handshake.handle_frame(&mut self.assembler, frame) {
                HandshakeStep::Wait => {}
                HandshakeStep::Pong(payload) => {
                    if wr
                        .write_frame(Frame::pong(Payload::Borrowed(&payload)))
                        .await
                        .is_err()
                    {
                        return Err(Ending::Gone);
                    }
                }
                HandshakeStep::Message(bytes) => {
                    self.count_in(bytes.len());
                    return session::first_message(&bytes);
                }
                HandshakeStep::End(ending) => return Err(ending),
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
        let limits = SessionLimits::of(&self.shared.config);
        let reading = Reading::new(&mut self.assembler, peer.role(), limits, start);
        let reader = Reader {
            shared: &self.shared,
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
        let reading = reader.run(rd, reading);
        let writing = writer.run(&outbox);
        tokio::pin!(reading, writing);
        // The writer is polled only when it was woken, not at every input
        // the reader is woken for (see `race`).
        let ending = match race(reading.as_mut(), writing.as_mut()).await {
            // The reader never finishes on its own: it parks after reporting
            // its end to the writer, which decides when the session is over.
            Finished::Main(never) => match never {},
            Finished::Side(ending) => ending,
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
        match ending.closed_by() {
            Some((initiator, code)) => m.record_close(initiator, code),
            None => {
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

/// The reading side of a session: reads frames, asks [`Reading`] what
/// each means, and does it.
struct Reader<'a> {
    shared: &'a Shared,
    /// Who the session is.
    peer: Peer<'a>,
    conn: ConnId,
    start: Instant,
    /// Milliseconds after `start` at which the last frame arrived.
    last_rx: &'a AtomicU64,
    outbox: &'a Outbox<'a>,
}

impl Reader<'_> {
    async fn run<R: ReadIo>(
        self,
        rd: &mut WsRead<R>,
        reading: Reading<'_>,
    ) -> std::convert::Infallible {
        let ending = self.read_until_end(rd, reading).await;
        // The writer may already be gone if it ended the session first.
        self.outbox.push(ToWriter::Ended(ending));
        std::future::pending().await
    }

    async fn read_until_end<R: ReadIo>(
        &self,
        rd: &mut WsRead<R>,
        mut reading: Reading<'_>,
    ) -> Ending {
        let echo_room = session::echo_backlog_limit(self.shared.config.max_message_size);
        let metrics = &self.shared.metrics;
        loop {
            let frame = rd.read_frame(&mut no_obligated_send).await;
            let now = Instant::now();
            if frame.is_ok() {
                self.last_rx
                    .store(now.duration_since(self.start).as_millis() as u64, Relaxed);
            }
            let mut read = reading.handle_frame(frame);
            if let Read::Message { payload, text } = read {
                self.count_in(payload.len());
                read = reading.handle_message(payload, text, now);
            }
            if let Read::Game(msg) = read {
                read = match self.forward(msg) {
                    Ok(()) => Read::Nothing,
                    Err(e) => reading.handle_inbox_error(e),
                };
            }
            match read {
                Read::Nothing => {}
                Read::Message { .. } | Read::Game(_) => unreachable!("handled above"),
                Read::WsPong(payload) => {
                    self.outbox.push(ToWriter::WsPong(payload));
                }
                Read::Echo { text, payload } => {
                    self.outbox.push(ToWriter::Echo { text, payload });
                    self.outbox.wait_for_echo_room(echo_room).await;
                }
                Read::Pong(t) => {
                    if !self.outbox.push(ToWriter::Pong(t)) {
                        metrics.pings_dropped.fetch_add(1, Relaxed);
                    }
                }
                Read::Ack(upto) => {
                    if let Peer::Player(room, player) = self.peer {
                        room.acknowledge(player, self.conn, upto);
                    }
                }
                Read::InputDropped(reason) => metrics.input_dropped(reason),
                Read::PingDropped => {
                    metrics.pings_dropped.fetch_add(1, Relaxed);
                }
                Read::Violation(code, reason) => {
                    self.outbox.push(ToWriter::Violation(code, reason));
                }
                Read::End(ending) => return ending,
            }
        }
    }

    /// Hands a player's game message to its room's inbox.
    fn forward(&self, msg: GameMsg) -> Result<(), InboxError> {
        let Peer::Player(room, player) = self.peer else {
            unreachable!("only a player's game messages are forwarded");
        };
        let from = Sender {
            player,
            conn: self.conn,
        };
        room.inbox.push(from, msg.seq, &msg.data)
    }

    fn count_in(&self, len: usize) {
        let metrics = &self.shared.metrics;
        metrics.messages_in.fetch_add(1, Relaxed);
        metrics.bytes_in.fetch_add(len as u64, Relaxed);
    }
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
    /// Writes, in this order each time it wakes: the rest of a frame the
    /// room wrote in part, a due ping, the reader's requests in order, then
    /// the mailbox (a kick, or events then the state); until a close.
    async fn run(mut self, outbox: &Outbox<'_>) -> Ending {
        let config = &self.shared.config;
        let mut shutdown = self.shared.shutdown.clone();
        let shutdown = shutdown.wait();
        tokio::pin!(shutdown);
        let mut keepalive = Keepalive::new(self.start, config.ping_interval, config.idle_timeout);
        let housekeeping = tokio::time::sleep_until(keepalive.poll_timeout(self.start).into());
        tokio::pin!(housekeeping);
        let mut out = Vec::with_capacity(32);
        loop {
            // Everything this task writes lies between `begin_write` and
            // `end_write`: the room writes states directly only outside
            // them, so frames never interleave.
            if let Err(ending) = self.begin_write().await {
                return ending;
            }
            if keepalive.poll_ping() {
                let frame = Frame::new(true, OpCode::Ping, None, Payload::Borrowed(b""));
                if self.wr.write_frame(frame).await.is_err() {
                    return Ending::Gone;
                }
            }
            while let Some(msg) = outbox.pop() {
                if let Err(ending) = self.write_request(outbox, msg, &mut out).await {
                    return ending;
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
                    let reason = session::shutdown_reason(code);
                    return self.close(outbox, code, reason.into()).await;
                }
                _ = self.mailbox.notified() => {}
                _ = &mut housekeeping => {
                    let now = Instant::now();
                    let last = self.start + Duration::from_millis(self.last_rx.load(Relaxed));
                    if let Err((code, reason)) = keepalive.handle_timeout(now, last) {
                        return self.close(outbox, code, reason).await;
                    }
                    // A due ping is written at the top of the loop, among
                    // our writes.
                    housekeeping.as_mut().reset(keepalive.poll_timeout(last).into());
                }
            }
        }
    }

    /// Does what the reader asked: a pong, an echo, or our close (a
    /// violation) or the answer to the client's (the reader has ended).
    /// `Err` with the ending once the session is over.
    async fn write_request(
        &mut self,
        outbox: &Outbox<'_>,
        msg: ToWriter,
        out: &mut Vec<u8>,
    ) -> Result<(), Ending> {
        let written = match msg {
            ToWriter::Pong(t) => {
                out.clear();
                let pong = Pong {
                    t,
                    server_time_ms: unix_millis(),
                };
                protocol::encode_server(&ServerMsg::Pong(pong), out);
                self.write_data(out).await
            }
            ToWriter::WsPong(payload) => {
                self.wr
                    .write_frame(Frame::pong(Payload::Borrowed(&payload)))
                    .await
            }
            ToWriter::Echo { text, payload } => self.write_echo(text, &payload).await,
            ToWriter::Violation(code, reason) => {
                return Err(self.close(outbox, code, reason).await);
            }
            ToWriter::Ended(ending) => {
                // The client's close is echoed; a broken stream says why; a
                // gone one gets nothing.
                if let Some((code, reason)) = ending.answer() {
                    send_close(self.wr, code, reason).await;
                }
                return Err(ending);
            }
        };
        written.map_err(|_| Ending::Gone)
    }

    /// Writes an echoed message as it came (echo endpoint only).
    async fn write_echo(&mut self, text: bool, payload: &Bytes) -> Result<(), WebSocketError> {
        let opcode = if text { OpCode::Text } else { OpCode::Binary };
        let frame = Frame::new(true, opcode, None, Payload::Borrowed(payload));
        self.wr.write_frame(frame).await?;
        let m = &self.shared.metrics;
        m.messages_out.fetch_add(1, Relaxed);
        m.bytes_out.fetch_add(payload.len() as u64, Relaxed);
        self.wr.flush().await
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

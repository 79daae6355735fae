//! A small async Rust client for the game platform: connect, handshake
//! (join a room or resume a session), send and receive the envelope.
//!
//! It is the one client that the server's integration tests, `loadgen` and
//! the benches all use, so it speaks the protocol exactly as documented in
//! `protocol/PROTOCOL.md` and nothing more. It knows no game: a game's
//! messages, states and events are bytes in the game's own encoding
//! ([`Writer::send_game`] encodes a serde value for convenience). It has no
//! reconnect policy (`loadgen` owns that) and no rendering.
//!
//! On a cluster of nodes, a `Hello` may be answered with a redirect to the
//! node that holds the place: [`Connection::hello`] returns it as
//! [`ClientError::Redirected`], and [`join_following`] follows it (at most
//! [`MAX_REDIRECTS`] times) to the node that welcomes the player.
//!
//! A [`Connection`] can be used whole, or split into a [`Reader`] and a
//! [`Writer`] so that one future reads every message while another sends
//! inputs on a timer. WebSocket pings and the server's close frame are
//! answered by the reader through the shared writer, as RFC 6455 requires.
//!
//! `Reader::recv` is **not cancel-safe** (fastwebsockets' `read_frame` keeps
//! partial frames in its own state): keep one read future alive for the
//! life of the connection instead of racing it in `tokio::select!`.

use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, WebSocketError, WebSocketRead, WebSocketWrite};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use protocol::{
    ClientMsg, DecodeError, EventAck, GameMsg, Hello, Redirect, Resume, ResumeToken, RoomRequest,
    ServerMsg, State, Welcome,
};
use std::future::Future;
use std::io::Cursor;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The read side: bytes hyper read past the upgrade response (if any),
/// then the socket (plain TCP or TLS). Boxed so that both kinds of stream
/// give one connection type; a virtual call per read is noise next to the
/// system call it wraps.
type ReadSide = Box<dyn AsyncRead + Send + Unpin>;
type WriteSide = Box<dyn AsyncWrite + Send + Unpin>;
type WsRead = WebSocketRead<ReadSide>;
/// The write side is buffered so that [`Writer::queue`] can gather several
/// frames into one write; every other send flushes at once.
type WsWrite = WebSocketWrite<BufWriter<WriteSide>>;

/// The write buffer of a connection: a few dozen queued inputs, far more
/// than one send period of any game holds. A frame larger than it is
/// written straight through.
const WRITE_BUFFER: usize = 4096;

/// Everything that can go wrong on the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `ws://host:port/path` or `wss://host:port/path`.
    #[error("bad url {0:?}: expected ws://host:port/path or wss://host:port/path")]
    BadUrl(String),
    /// TLS could not be set up or the handshake failed.
    #[error("tls: {0}")]
    Tls(String),
    /// TCP connect failed.
    #[error("connect failed: {0}")]
    Connect(#[from] std::io::Error),
    /// The WebSocket layer failed (handshake refused, I/O error, framing).
    #[error("websocket: {0}")]
    WebSocket(#[from] WebSocketError),
    /// The server sent bytes that are not a valid message.
    #[error("undecodable server message: {0}")]
    Decode(#[from] DecodeError),
    /// The server closed the connection.
    #[error("closed by server with {code}: {reason}")]
    Closed {
        /// The close code (1005 when the close frame carried none).
        code: u16,
        /// The close reason, possibly empty.
        reason: String,
    },
    /// The server sent something the protocol does not allow at this point.
    #[error("unexpected message: {0}")]
    Unexpected(String),
    /// A node of a cluster answered the `Hello` with a redirect: the place
    /// is on the node at its `url`, to be taken there with its ticket
    /// ([`join_following`] does this). The node closes with 4019 next.
    #[error("redirected to {}", .0.url)]
    Redirected(Redirect),
    /// A join was redirected more than [`MAX_REDIRECTS`] times: the
    /// cluster's nodes disagree about where the place is.
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
}

/// Redirects [`join_following`] follows in one join. One is what a cluster
/// gives (the node that reserves the place names the one that holds it);
/// a few more cover a place that moved meanwhile; past that the nodes are
/// sending the client round in circles.
pub const MAX_REDIRECTS: u32 = 3;

/// One thing read from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A protocol message.
    Msg(ServerMsg),
    /// The server closed the connection (its close frame has been answered).
    Closed {
        /// The close code (1005 when the close frame carried none).
        code: u16,
        /// The close reason, possibly empty.
        reason: String,
    },
}

/// Options for [`connect_with`].
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `Origin` header to send, as a browser would.
    pub origin: Option<String>,
    /// TLS settings for `wss://`; by default the Mozilla root certificates
    /// are not bundled, so give a configuration that trusts the server's
    /// certificate (see [`tls_config_trusting`]).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Socket receive buffer size (`SO_RCVBUF`), to play a client with
    /// little buffering, such as a slow mobile one; the system default
    /// when `None`.
    pub recv_buffer: Option<u32>,
}

/// A TLS client configuration that trusts the certificates in `pem` (for a
/// self-signed or private-CA server certificate).
pub fn tls_config_trusting(pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| ClientError::Tls(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| ClientError::Tls(e.to_string()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Where a `ws://` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `host:port` to connect to (port defaults to 80, or 443 for `wss://`).
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// `wss://`: TLS.
    pub tls: bool,
}

impl WsUrl {
    /// Parses `ws://host[:port][/path]` or `wss://…`.
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let (rest, tls) = match (url.strip_prefix("ws://"), url.strip_prefix("wss://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => return Err(ClientError::BadUrl(url.to_owned())),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(ClientError::BadUrl(url.to_owned()));
        }
        let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
        }) {
            authority.to_owned()
        } else {
            format!("{authority}:{}", if tls { 443 } else { 80 })
        };
        Ok(Self {
            authority,
            path: path.to_owned(),
            tls,
        })
    }

    /// The host name, without port or IPv6 brackets (for TLS server names).
    pub fn host(&self) -> &str {
        let host = self
            .authority
            .rsplit_once(':')
            .map_or(self.authority.as_str(), |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// Runs hyper's connection future on tokio.
struct SpawnExecutor;

impl<F> hyper::rt::Executor<F> for SpawnExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(fut);
    }
}

/// Opens a WebSocket to `url` (`ws://host:port/path`).
pub async fn connect(url: &str) -> Result<Connection, ClientError> {
    connect_with(url, &ConnectOptions::default()).await
}

/// Opens a WebSocket to `url` with extra options.
pub async fn connect_with(url: &str, options: &ConnectOptions) -> Result<Connection, ClientError> {
    let url = WsUrl::parse(url)?;
    let tcp = match options.recv_buffer {
        None => TcpStream::connect(&url.authority).await?,
        Some(size) => {
            let addr = tokio::net::lookup_host(&url.authority)
                .await?
                .next()
                .ok_or_else(|| ClientError::BadUrl(url.authority.clone()))?;
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.set_recv_buffer_size(size)?;
            socket.connect(addr).await?
        }
    };
    // Inputs are tiny and latency-sensitive; Nagle would hold them back.
    tcp.set_nodelay(true)?;
    let mut req = hyper::Request::builder()
        .method("GET")
        .uri(&url.path)
        .header(hyper::header::HOST, &url.authority)
        .header(hyper::header::UPGRADE, "websocket")
        .header(hyper::header::CONNECTION, "upgrade")
        .header(
            "Sec-WebSocket-Key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("Sec-WebSocket-Version", "13");
    if let Some(origin) = &options.origin {
        req = req.header(hyper::header::ORIGIN, origin);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| ClientError::BadUrl(e.to_string()))?;
    let (read, write): (ReadSide, WriteSide) = if url.tls {
        let config = options
            .tls
            .clone()
            .ok_or_else(|| ClientError::Tls("wss:// needs ConnectOptions::tls".into()))?;
        let name = rustls_pki_types::ServerName::try_from(url.host().to_owned())
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let (ws, _response) = fastwebsockets::handshake::client(&SpawnExecutor, req, tls).await?;
        let parts = ws
            .into_inner()
            .into_inner()
            .downcast::<TokioIo<TlsStream<TcpStream>>>()
            .map_err(|_| {
                ClientError::Unexpected("the upgraded stream is not the TLS stream".into())
            })?;
        let (read, write) = tokio::io::split(parts.io.into_inner());
        (
            Box::new(leftover(&parts.read_buf).chain(read)),
            Box::new(write),
        )
    } else {
        let (ws, _response) = fastwebsockets::handshake::client(&SpawnExecutor, req, tcp).await?;
        // Take the socket back from hyper and split it into owned halves: no
        // lock between the halves on every read and write, which matters
        // when one process runs thousands of connections.
        let parts = ws
            .into_inner()
            .into_inner()
            .downcast::<TokioIo<TcpStream>>()
            .map_err(|_| {
                ClientError::Unexpected("the upgraded stream is not the TCP socket".into())
            })?;
        let (read, write) = parts.io.into_inner().into_split();
        (
            Box::new(leftover(&parts.read_buf).chain(read)),
            Box::new(write),
        )
    };
    let (read, write) = fastwebsockets::after_handshake_split(
        read,
        BufWriter::with_capacity(WRITE_BUFFER, write),
        fastwebsockets::Role::Client,
    );
    Ok(Connection::from_halves(read, write))
}

/// A session opened by [`join_following`].
pub struct Joined {
    /// The connection, past its `Welcome`.
    pub conn: Connection,
    /// The `Welcome`.
    pub welcome: Welcome,
    /// The URL of the node that welcomed the player: the session's home,
    /// where a resume must go (a session lives on one node only).
    pub url: String,
    /// Redirects followed to get there (0 when the first node welcomed).
    pub redirects: u32,
}

/// Joins or resumes at `url`, following redirects: sends `Hello` with
/// `room` and `resume` there and, while a node answers with a
/// [`Redirect`], connects at once to the node it names and presents its
/// ticket (`RoomRequest::Reserved`, no resume: the ticket stands for the
/// place). At most [`MAX_REDIRECTS`] are followed
/// ([`ClientError::TooManyRedirects`] past that); a redirect to a URL that
/// is not `ws://` or `wss://` is refused ([`ClientError::BadUrl`]).
///
/// For a cluster, `url` is the *entry* URL for a new player and the
/// session's home ([`Joined::url`]) for a resume. A refusal on any node
/// comes back as [`ClientError::Closed`] with that node's code: 4021
/// (`InvalidTicket`, the reservation expired or was used) and 4020
/// (`DirectoryUnavailable`) mean join again as a new player at the entry
/// URL after a back-off. No time limit is applied: wrap the call in one.
pub async fn join_following(
    url: &str,
    room: RoomRequest,
    resume: Option<Resume>,
    options: &ConnectOptions,
) -> Result<Joined, ClientError> {
    let mut url = url.to_owned();
    let (mut room, mut resume) = (room, resume);
    let mut redirects = 0;
    loop {
        let mut conn = connect_with(&url, options).await?;
        match conn.hello(room, resume).await {
            Ok(welcome) => {
                return Ok(Joined {
                    conn,
                    welcome,
                    url,
                    redirects,
                });
            }
            Err(ClientError::Redirected(redirect)) => {
                if redirects == MAX_REDIRECTS {
                    return Err(ClientError::TooManyRedirects);
                }
                redirects += 1;
                // The old connection is dropped without waiting for its
                // 4019 close: the redirect is followed at once.
                url = redirect.url;
                room = RoomRequest::Reserved {
                    ticket: redirect.ticket,
                };
                resume = None;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The bytes hyper read past the upgrade response, to be read first. Copied:
/// the slice would otherwise pin hyper's whole read buffer (8 KiB or more)
/// for the life of the connection.
fn leftover(read_buf: &Bytes) -> Cursor<Bytes> {
    Cursor::new(Bytes::copy_from_slice(read_buf))
}

/// A WebSocket connection to the game server.
pub struct Connection {
    reader: Reader,
    writer: Writer,
}

impl Connection {
    fn from_halves(mut read: WsRead, write: WsWrite) -> Self {
        read.set_max_message_size(protocol::MAX_SERVER_MSG_BYTES);
        let write = Arc::new(Mutex::new(write));
        Self {
            reader: Reader {
                ws: read,
                bytes_received: 0,
                write: write.clone(),
            },
            writer: Writer {
                ws: write,
                buf: Vec::with_capacity(64),
            },
        }
    }

    /// Sends `Hello` with `room` (and `resume`, if given, which the server
    /// tries first) and waits for `Welcome`. A refusal comes back as
    /// [`ClientError::Closed`] with the server's close code, a redirect to
    /// another node of a cluster as [`ClientError::Redirected`] (the
    /// connection is then of no further use: the node closes it).
    pub async fn hello(
        &mut self,
        room: RoomRequest,
        resume: Option<Resume>,
    ) -> Result<Welcome, ClientError> {
        self.writer
            .send(&ClientMsg::Hello(Hello {
                version: protocol::PROTOCOL_VERSION,
                resume,
                room,
            }))
            .await?;
        match self.reader.recv().await? {
            Event::Msg(ServerMsg::Welcome(w)) => Ok(w),
            Event::Msg(ServerMsg::Redirect(r)) => Err(ClientError::Redirected(r)),
            Event::Msg(other) => Err(ClientError::Unexpected(format!("{other:?}"))),
            Event::Closed { code, reason } => Err(ClientError::Closed { code, reason }),
        }
    }

    /// Joins as a new player placed by `room`.
    pub async fn join(&mut self, room: RoomRequest) -> Result<Welcome, ClientError> {
        self.hello(room, None).await
    }

    /// Resumes the session of `token`, having processed events up to
    /// `last_event`; the room request sent along is never used for a live
    /// session (the server answers 4002 for a dead one).
    pub async fn resume(
        &mut self,
        token: ResumeToken,
        last_event: u32,
    ) -> Result<Welcome, ClientError> {
        let resume = Resume { token, last_event };
        self.hello(RoomRequest::JoinById { room_id: 0 }, Some(resume))
            .await
    }

    /// Sends one message; returns its payload size in bytes.
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<usize, ClientError> {
        self.writer.send(msg).await
    }

    /// Sends an arbitrary frame, bypassing the codec (for tests of bad input).
    pub async fn send_frame(&mut self, frame: Frame<'_>) -> Result<(), ClientError> {
        self.writer.send_frame(frame).await
    }

    /// Reads the next message or the close. Not cancel-safe.
    pub async fn recv(&mut self) -> Result<Event, ClientError> {
        self.reader.recv().await
    }

    /// Reads the next data frame as it came; see [`Reader::recv_frame`].
    pub async fn recv_frame(&mut self) -> Result<RawEvent, ClientError> {
        self.reader.recv_frame().await
    }

    /// Reads until the next state, skipping pongs and events.
    pub async fn next_state(&mut self) -> Result<State, ClientError> {
        loop {
            match self.recv().await? {
                Event::Msg(ServerMsg::State(s)) => return Ok(s),
                Event::Msg(ServerMsg::Pong(_) | ServerMsg::Event(_)) => {}
                Event::Msg(other) => return Err(ClientError::Unexpected(format!("{other:?}"))),
                Event::Closed { code, reason } => return Err(ClientError::Closed { code, reason }),
            }
        }
    }

    /// Sends a game message: `value` in the game's encoding, numbered `seq`.
    pub async fn send_game<T: serde::Serialize>(
        &mut self,
        seq: u32,
        value: &T,
    ) -> Result<usize, ClientError> {
        self.writer.send_game(seq, value).await
    }

    /// Acknowledges every event up to `upto`.
    pub async fn ack_events(&mut self, upto: u32) -> Result<usize, ClientError> {
        self.writer.ack_events(upto).await
    }

    /// Sends a close frame; read on to receive the server's answer.
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), ClientError> {
        self.writer.close(code, reason).await
    }

    /// Splits into halves that can be driven by two concurrent futures.
    pub fn split(self) -> (Reader, Writer) {
        (self.reader, self.writer)
    }
}

/// The receiving half of a [`Connection`].
pub struct Reader {
    /// The fastwebsockets read half.
    ws: WsRead,
    /// Payload bytes of data frames received since the last
    /// [`Reader::take_bytes_received`].
    bytes_received: u64,
    /// The write half, shared with [`Writer`], for pongs and the close echo.
    write: Arc<Mutex<WsWrite>>,
}

type SendFuture = Pin<Box<dyn Future<Output = Result<(), WebSocketError>> + Send>>;

impl Reader {
    /// Reads the next message or the close. Not cancel-safe: see the module
    /// documentation.
    pub async fn recv(&mut self) -> Result<Event, ClientError> {
        let data = self
            .next_data(|opcode, payload| match opcode {
                OpCode::Binary => Ok(protocol::decode_server(payload)?),
                other => Err(ClientError::Unexpected(format!(
                    "{other:?} frame from server"
                ))),
            })
            .await?;
        match data {
            Ok(msg) => Ok(Event::Msg(msg?)),
            Err((code, reason)) => Ok(Event::Closed { code, reason }),
        }
    }

    /// Reads the next data frame (text, binary or continuation) as it came,
    /// or the close; pings are answered and pongs skipped. For tests of
    /// endpoints that are not the game protocol (`/echo`). Not cancel-safe.
    pub async fn recv_frame(&mut self) -> Result<RawEvent, ClientError> {
        let data = self
            .next_data(|opcode, payload| RawEvent::Frame {
                opcode,
                payload: payload.to_vec(),
            })
            .await?;
        Ok(data.unwrap_or_else(|(code, reason)| RawEvent::Closed { code, reason }))
    }

    /// Reads frames, answering pings and skipping pongs, until a data frame
    /// (handed to `f` without copying) or a close frame (`Err` with its code
    /// and reason).
    async fn next_data<T>(
        &mut self,
        f: impl FnOnce(OpCode, &[u8]) -> T,
    ) -> Result<Result<T, (u16, String)>, ClientError> {
        // Obligated frames (pong, close echo) go out through the writer.
        // The shared write half is cloned only for such a frame, not for
        // every message read.
        let write = &self.write;
        let mut obligated = |frame: Frame<'static>| -> SendFuture {
            let write = write.clone();
            Box::pin(async move {
                let mut w = lock(&write).await;
                if w.is_closed() {
                    return Ok(());
                }
                write_now(&mut w, frame).await
            })
        };
        loop {
            let frame = self.ws.read_frame(&mut obligated).await?;
            match frame.opcode {
                OpCode::Close => return Ok(Err(parse_close(&frame.payload))),
                OpCode::Ping | OpCode::Pong => {}
                opcode => {
                    self.bytes_received += frame.payload.len() as u64;
                    return Ok(Ok(f(opcode, &frame.payload)));
                }
            }
        }
    }
}

/// A frame as read by [`Reader::recv_frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawEvent {
    /// A data frame.
    Frame {
        /// Its opcode (text, binary or continuation).
        opcode: OpCode,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// The server closed the connection.
    Closed {
        /// The close code (1005 when the close frame carried none).
        code: u16,
        /// The close reason, possibly empty.
        reason: String,
    },
}

impl Reader {
    /// Payload bytes of data messages received since the last call.
    pub fn take_bytes_received(&mut self) -> u64 {
        std::mem::take(&mut self.bytes_received)
    }
}

/// The code and reason of a close frame payload (1005 when empty).
pub fn parse_close(payload: &[u8]) -> (u16, String) {
    if payload.len() < 2 {
        return (1005, String::new());
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    (code, String::from_utf8_lossy(&payload[2..]).into_owned())
}

/// Locks the shared write half. The reader takes it only to answer a ping
/// or a close, so the lock is almost always free: try the cheap path first.
async fn lock(ws: &Mutex<WsWrite>) -> tokio::sync::MutexGuard<'_, WsWrite> {
    match ws.try_lock() {
        Ok(guard) => guard,
        Err(_) => ws.lock().await,
    }
}

/// Writes `frame` and everything queued before it to the socket.
async fn write_now(ws: &mut WsWrite, frame: Frame<'_>) -> Result<(), WebSocketError> {
    ws.write_frame(frame).await?;
    ws.flush().await
}

/// The sending half of a [`Connection`].
pub struct Writer {
    /// The fastwebsockets write half, shared with the reader.
    ws: Arc<Mutex<WsWrite>>,
    /// Reused encode buffer.
    buf: Vec<u8>,
}

impl Writer {
    /// Encodes and sends one message (with any queued before it, in one
    /// write); returns its payload size in bytes.
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<usize, ClientError> {
        let len = self.queue(msg).await?;
        self.flush().await?;
        Ok(len)
    }

    /// Encodes one message into the connection's write buffer without
    /// writing it to the socket; [`Writer::flush`] (or any send) writes
    /// everything queued in one go, several frames in one system call.
    /// Returns its payload size in bytes. A message larger than the buffer
    /// may be written at once.
    pub async fn queue(&mut self, msg: &ClientMsg) -> Result<usize, ClientError> {
        self.buf.clear();
        let len = protocol::encode_client(msg, &mut self.buf);
        let mut ws = lock(&self.ws).await;
        ws.write_frame(Frame::binary(Payload::BorrowedMut(&mut self.buf)))
            .await?;
        Ok(len)
    }

    /// Writes whatever [`Writer::queue`] gathered.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        lock(&self.ws).await.flush().await?;
        Ok(())
    }

    /// Sends a game message: `value` in the game's encoding (bincode, as
    /// every game on the platform uses), numbered `seq`.
    pub async fn send_game<T: serde::Serialize>(
        &mut self,
        seq: u32,
        value: &T,
    ) -> Result<usize, ClientError> {
        let mut data = Vec::new();
        protocol::encode_value(value, &mut data);
        self.send(&ClientMsg::Game(GameMsg { seq, data })).await
    }

    /// Acknowledges every event up to `upto`.
    pub async fn ack_events(&mut self, upto: u32) -> Result<usize, ClientError> {
        self.send(&ClientMsg::EventAck(EventAck { upto })).await
    }

    /// Sends an arbitrary frame.
    pub async fn send_frame(&mut self, frame: Frame<'_>) -> Result<(), ClientError> {
        write_now(&mut *lock(&self.ws).await, frame).await?;
        Ok(())
    }

    /// Sends a close frame (once; later calls do nothing).
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), ClientError> {
        let mut ws = lock(&self.ws).await;
        if ws.is_closed() {
            return Ok(());
        }
        write_now(&mut ws, Frame::close(code, reason.as_bytes())).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_and_without_port_and_path() {
        let check = |url: &str, authority: &str, path: &str| {
            assert_eq!(
                WsUrl::parse(url).unwrap(),
                WsUrl {
                    authority: authority.into(),
                    path: path.into(),
                    tls: url.starts_with("wss:"),
                },
                "{url}"
            );
        };
        check("ws://127.0.0.1:8080/ws", "127.0.0.1:8080", "/ws");
        check("ws://example.com/ws?x=1", "example.com:80", "/ws?x=1");
        check("ws://localhost:9", "localhost:9", "/");
        check("ws://[::1]:7000/ws", "[::1]:7000", "/ws");
        check("wss://game.example/ws", "game.example:443", "/ws");
        assert_eq!(WsUrl::parse("wss://[::1]:9/ws").unwrap().host(), "::1");
        assert_eq!(
            WsUrl::parse("wss://a.example:9/ws").unwrap().host(),
            "a.example"
        );
        assert!(WsUrl::parse("http://x/ws").is_err());
        assert!(WsUrl::parse("ws:///ws").is_err());
    }

    #[test]
    fn close_payloads_parse() {
        assert_eq!(parse_close(&[]), (1005, String::new()));
        assert_eq!(parse_close(&[0x0f, 0xa2, b'h', b'i']), (4002, "hi".into()));
    }
}

//! The network edge: accepting TCP connections, HTTP routes, and the
//! WebSocket upgrade.
//!
//! One port serves everything: `/ws` upgrades to a game session (handed to
//! [`conn`]), `/rooms` lists public rooms (and `/rooms/types` the room
//! types, `/rooms/code/CODE` what an invite code opens), `/healthz` and
//! `/metrics` answer operators, `/` serves the lobby and each game's page
//! embedded in the binary, and `/echo` (when enabled) serves conformance
//! tests. Over TLS when configured ([`tls`]).
//!
//! The door is guarded in layers, cheapest first: a per-IP connection cap
//! at accept, before any byte is read; a deadline and a size cap on the
//! HTTP request head (slow-loris clients are cut off); the Origin check and
//! `--max-connections` at the upgrade. Not for game rules or room
//! placement: a session is handed to the lobby by [`conn`].

pub mod conn;
pub(crate) mod direct;
pub(crate) mod frames;
pub mod limit;
pub(crate) mod session;
pub mod tls;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::room::lobby::Lobby;
use crate::shutdown::Shutdown;
use crate::web::Web;
use bytes::Bytes;
use conn::SessionKind;
use fastwebsockets::{Role, WebSocket};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use limit::CodeAttempts;
use protocol::CloseCode;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Upgrades accepted only to be closed with 4006 ("server full"), at most
/// this many at once; past it, upgrades get a plain 503. The close code
/// tells a browser client why (it cannot see HTTP statuses of a failed
/// upgrade) while the headroom bounds what refusals can cost.
const REFUSAL_HEADROOM: usize = 256;

/// Pause after a failed `accept` (typically out of file descriptors), so
/// the loop does not spin while descriptors are exhausted.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// State shared by the accept loop and every connection.
pub(crate) struct Shared {
    /// The server's configuration.
    pub config: Config,
    /// Room placement and sessions.
    pub lobby: Arc<Lobby>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Shutdown signal for connection tasks.
    pub shutdown: Shutdown,
    /// Id of the next WebSocket connection.
    pub next_conn: AtomicU64,
    /// WebSocket connections admitted and open.
    pub admitted: AtomicUsize,
    /// Upgrades being refused right now.
    pub refusing: AtomicUsize,
    /// Open TCP connections by client address, for the per-IP cap.
    pub per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// TLS, when configured.
    pub tls: Option<TlsAcceptor>,
    /// The embedded pages.
    pub web: Web,
    /// Invite-code lookups per client address.
    pub code_attempts: CodeAttempts,
    /// The cluster's room directory, on a cluster node.
    pub directory: Option<Arc<crate::directory::Directory>>,
    /// The recordings' viewer (`/replay/...`), with `--record`.
    pub viewer: Option<crate::record::viewer::Viewer>,
}

impl Shared {
    /// State for a server with this configuration; fails if the TLS files
    /// cannot be used.
    pub fn new(
        config: Config,
        lobby: Arc<Lobby>,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
        web: Web,
        directory: Option<Arc<crate::directory::Directory>>,
        viewer: Option<crate::record::viewer::Viewer>,
    ) -> std::io::Result<Self> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
            _ => None,
        };
        Ok(Self {
            config,
            lobby,
            metrics,
            shutdown,
            next_conn: AtomicU64::new(1),
            admitted: AtomicUsize::new(0),
            refusing: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            tls,
            web,
            code_attempts: CodeAttempts::default(),
            directory,
            viewer,
        })
    }

    /// Counts a new connection from `ip` against `--max-connections-per-ip`;
    /// `None` when the address is at its cap.
    fn admit_ip(self: &Arc<Self>, ip: IpAddr) -> Option<IpPermit> {
        let cap = self.config.max_connections_per_ip;
        let mut counts = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_default();
        if cap > 0 && *count >= cap {
            return None;
        }
        *count += 1;
        Some(IpPermit {
            shared: self.clone(),
            ip,
        })
    }
}

/// One open connection from an address, given back on drop. Shared (in an
/// `Arc`) by an HTTP connection and any WebSocket upgraded from it, so the
/// count covers both.
pub(crate) struct IpPermit {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        let mut counts = self.shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Accepts connections until `shutdown` completes.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Some(done) = shared.shutdown.guard() else { break };
                    let Some(permit) = shared.admit_ip(peer.ip()) else {
                        // Dropping the socket closes it before any byte of
                        // HTTP is read: the cheapest refusal there is.
                        shared.metrics.connections_refused_per_ip.fetch_add(1, Relaxed);
                        continue;
                    };
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        serve_tcp(tcp, peer, shared, Arc::new(permit)).await;
                        drop(done);
                    });
                }
                Err(e) => {
                    tracing::warn!(cause = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
        }
    }
}

async fn serve_tcp(tcp: TcpStream, peer: SocketAddr, shared: Arc<Shared>, permit: Arc<IpPermit>) {
    // Snapshots and pongs are small and latency-bound; Nagle would batch
    // them behind a 40 ms delayed ACK.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(cause = %e, %peer, "set_nodelay failed");
    }
    if shared.config.send_buffer > 0
        && let Err(e) = socket2::SockRef::from(&tcp).set_send_buffer_size(shared.config.send_buffer)
    {
        tracing::debug!(cause = %e, %peer, "setting the send buffer failed");
    }
    match shared.tls.clone() {
        None => serve_http(tcp, peer, shared, permit).await,
        Some(acceptor) => {
            // The TLS handshake shares the request-head deadline, so a
            // client that stalls it is cut off like a slow-loris one.
            match tokio::time::timeout(shared.config.header_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => serve_http(stream, peer, shared, permit).await,
                Ok(Err(e)) => tracing::debug!(cause = %e, %peer, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn serve_http<S>(io: S, peer: SocketAddr, shared: Arc<Shared>, permit: Arc<IpPermit>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut shutdown = shared.shutdown.clone();
    let service_shared = shared.clone();
    let service = hyper::service::service_fn(move |req| {
        route(req, peer, service_shared.clone(), permit.clone())
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(shared.config.header_timeout)
        .max_buf_size(shared.config.max_header_bytes)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(cause = %e, %peer, "http connection ended with an error");
            }
        }
        _ = shutdown.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .body(Full::new(body.into()))
        .expect("static response parts are valid")
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(body).expect("listings serialise");
    text(status, "application/json", body)
}

async fn route(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    permit: Arc<IpPermit>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let plain = "text/plain; charset=utf-8";
    let path = req.uri().path().to_owned();
    if req.method() == Method::POST
        && let Some(stream) = path.strip_prefix("/replay/stream/")
    {
        return Ok(steer(&shared, stream, req.uri().query()));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            plain,
            "method not allowed\n",
        ));
    }
    let upgrading = fastwebsockets::upgrade::is_upgrade_request(&req);
    if let Some(watch) = watch_route(&path, req.uri().query()) {
        let response = match watch {
            Ok(watch) if upgrading => upgrade(
                &mut req,
                peer,
                &shared,
                SessionKind::Watch(Arc::new(watch)),
                permit,
            ),
            Ok(_) => text(
                StatusCode::UPGRADE_REQUIRED,
                plain,
                "this endpoint speaks WebSocket\n",
            ),
            Err(why) => text(StatusCode::BAD_REQUEST, plain, format!("{why}\n")),
        };
        return Ok(response);
    }
    let response = match path.as_str() {
        "/ws" if fastwebsockets::upgrade::is_upgrade_request(&req) => {
            upgrade(&mut req, peer, &shared, SessionKind::Game, permit)
        }
        "/echo"
            if shared.config.echo_route && fastwebsockets::upgrade::is_upgrade_request(&req) =>
        {
            upgrade(&mut req, peer, &shared, SessionKind::Echo, permit)
        }
        "/rooms" => {
            let room_type = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("type=")));
            match &shared.directory {
                Some(directory) => json(StatusCode::OK, &directory.list(room_type).await),
                None => json(StatusCode::OK, &shared.lobby.list(room_type)),
            }
        }
        "/rooms/types" => json(StatusCode::OK, &shared.lobby.types()),
        path if path.starts_with("/rooms/code/") => {
            resolve_code(&path["/rooms/code/".len()..], peer, &shared).await
        }
        "/ws" => text(
            StatusCode::UPGRADE_REQUIRED,
            plain,
            "this endpoint speaks WebSocket\n",
        ),
        "/replays" => match &shared.viewer {
            Some(viewer) => {
                #[derive(serde::Serialize)]
                struct Listed {
                    id: String,
                    bytes: u64,
                }
                let list: Vec<Listed> = viewer
                    .list()
                    .into_iter()
                    .map(|(id, bytes)| Listed { id, bytes })
                    .collect();
                json(StatusCode::OK, &list)
            }
            None => no_recordings(),
        },
        path if path.starts_with("/replay/stream/") => {
            let stream = &path["/replay/stream/".len()..];
            match shared.viewer.as_ref().map(|v| v.control(stream)) {
                Some(Some(control)) => json(StatusCode::OK, &control),
                Some(None) => text(StatusCode::NOT_FOUND, plain, "no such stream\n"),
                None => no_recordings(),
            }
        }
        path if path.starts_with("/replay/") => {
            let rest = &path["/replay/".len()..];
            match (&shared.viewer, rest.strip_suffix("/info")) {
                (None, _) => no_recordings(),
                (Some(viewer), Some(id)) => match viewer.info(id) {
                    Ok(info) => json(StatusCode::OK, &info),
                    Err((status, why)) => text(
                        StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND),
                        plain,
                        format!("{why}\n"),
                    ),
                },
                // The viewer page; it reads the id from its own path.
                (Some(_), None) if !rest.is_empty() && !rest.contains('/') => {
                    match shared.web.get("/replay.html") {
                        Some((content_type, body)) => {
                            text(StatusCode::OK, content_type, Bytes::from_static(body))
                        }
                        None => text(StatusCode::NOT_FOUND, plain, "not found\n"),
                    }
                }
                (Some(_), None) => text(StatusCode::NOT_FOUND, plain, "not found\n"),
            }
        }
        "/healthz" => text(StatusCode::OK, plain, "ok\n"),
        "/metrics" => {
            let mut page = shared.metrics.render();
            if let Some(directory) = &shared.directory {
                directory.render(&mut page);
            }
            text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                page,
            )
        }
        // The lobby, the pages and their modules, embedded in the binary.
        path => match shared.web.get(path) {
            Some((content_type, body)) => {
                text(StatusCode::OK, content_type, Bytes::from_static(body))
            }
            None => text(StatusCode::NOT_FOUND, plain, "not found\n"),
        },
    };
    Ok(response)
}

/// 404 for the recording routes of a server without `--record`.
fn no_recordings() -> Response<Full<Bytes>> {
    text(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "this server keeps no recordings (start it with --record DIR)\n",
    )
}

/// The value of `key` in a query string.
fn query_value<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// A query value parsed as `T`: `Ok(None)` when absent, an error naming
/// the key when it does not parse.
fn query_parsed<T: std::str::FromStr>(query: Option<&str>, key: &str) -> Result<Option<T>, String> {
    query_value(query, key)
        .map(|v| v.parse().map_err(|_| format!("bad {key}: {v:?}")))
        .transpose()
}

/// What a watching socket's path and query ask for: `/watch/ROOM/ws`
/// (`?follow=PLAYER`) or `/replay/ID/ws` (`?stream=S&follow=PLAYER&from=TICK
/// &speed=X&paused=1`); `None` for any other path.
fn watch_route(path: &str, query: Option<&str>) -> Option<Result<conn::Watch, String>> {
    let follow = || query_parsed::<u32>(query, "follow");
    if let Some(room) = path
        .strip_prefix("/watch/")
        .and_then(|r| r.strip_suffix("/ws"))
    {
        return Some((|| {
            let room = room.parse().map_err(|_| format!("bad room id {room:?}"))?;
            Ok(conn::Watch::Room {
                room,
                follow: follow()?,
            })
        })());
    }
    let id = path
        .strip_prefix("/replay/")?
        .strip_suffix("/ws")
        .filter(|id| !id.starts_with("stream/"))?;
    Some((|| {
        let start = crate::record::viewer::StartAt {
            tick: query_parsed(query, "from")?,
            speed: query_parsed(query, "speed")?.unwrap_or(1.0),
            paused: query_value(query, "paused") == Some("1"),
        };
        Ok(conn::Watch::Replay {
            id: id.to_owned(),
            stream: query_value(query, "stream").unwrap_or("default").to_owned(),
            follow: follow()?,
            start,
        })
    })())
}

/// `POST /replay/stream/ID?pause=1|0&speed=X&seek=TICK`: changes a
/// viewer's stream; answers with its state.
fn steer(shared: &Shared, stream: &str, query: Option<&str>) -> Response<Full<Bytes>> {
    let plain = "text/plain; charset=utf-8";
    let Some(viewer) = &shared.viewer else {
        return no_recordings();
    };
    let asked = (|| {
        let pause = query_value(query, "pause").map(|v| v == "1");
        Ok::<_, String>((
            pause,
            query_parsed(query, "speed")?,
            query_parsed(query, "seek")?,
        ))
    })();
    match asked {
        Ok((pause, speed, seek)) => match viewer.steer(stream, pause, speed, seek) {
            Some(control) => json(StatusCode::OK, &control),
            None => text(StatusCode::NOT_FOUND, plain, "no such stream\n"),
        },
        Err(why) => text(StatusCode::BAD_REQUEST, plain, format!("{why}\n")),
    }
}

/// What an invite code opens, for the lobby page: `{"id", "type", "page"}`,
/// 404 for no open room, 429 past the address's attempt limit (shared with
/// joins by code, so the page is no faster a way to guess).
async fn resolve_code(code: &str, peer: SocketAddr, shared: &Shared) -> Response<Full<Bytes>> {
    #[derive(serde::Serialize)]
    struct Resolved {
        id: u32,
        #[serde(rename = "type")]
        room_type: String,
        page: Option<&'static str>,
    }
    if !shared
        .code_attempts
        .allow(peer.ip(), std::time::Instant::now())
    {
        shared.metrics.code_attempts_refused.fetch_add(1, Relaxed);
        return text(
            StatusCode::TOO_MANY_REQUESTS,
            "text/plain; charset=utf-8",
            "too many invite-code attempts: wait a minute\n",
        );
    }
    let found = match shared.lobby.resolve_code(code) {
        Some(found) => Some(found),
        // Another node's room: its page here is the same page.
        None => match &shared.directory {
            Some(directory) => directory
                .resolve_code(code)
                .await
                .map(|(id, room_type)| (id, shared.lobby.page_of(&room_type), room_type))
                .map(|(id, page, room_type)| (id, room_type, page)),
            None => None,
        },
    };
    match found {
        Some((id, room_type, page)) => json(
            StatusCode::OK,
            &Resolved {
                id,
                room_type,
                page,
            },
        ),
        None => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "no open room has that invite code\n",
        ),
    }
}

/// Admits or refuses one WebSocket upgrade and spawns its connection task.
fn upgrade(
    req: &mut Request<Incoming>,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    kind: SessionKind,
    ip_permit: Arc<IpPermit>,
) -> Response<Full<Bytes>> {
    let plain = "text/plain; charset=utf-8";
    if !origin_allowed(req, &shared.config.allowed_origins) {
        shared.metrics.origins_refused.fetch_add(1, Relaxed);
        return text(StatusCode::FORBIDDEN, plain, "origin not allowed\n");
    }
    let Some(done) = shared.shutdown.guard() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, plain, "shutting down\n");
    };
    let admitted = shared.admitted.fetch_add(1, Relaxed) < shared.config.max_connections;
    let permit = if admitted {
        Permit::Admitted(shared.clone())
    } else {
        shared.admitted.fetch_sub(1, Relaxed);
        shared.metrics.connections_refused.fetch_add(1, Relaxed);
        if shared.refusing.fetch_add(1, Relaxed) >= REFUSAL_HEADROOM {
            shared.refusing.fetch_sub(1, Relaxed);
            return text(StatusCode::SERVICE_UNAVAILABLE, plain, "server full\n");
        }
        Permit::Refusing(shared.clone())
    };
    let (response, upgrade) = match fastwebsockets::upgrade::upgrade(req) {
        Ok(parts) => parts,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                plain,
                format!("bad upgrade request: {e}\n"),
            );
        }
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        let _permit = permit;
        // The address keeps counting against its cap while the session runs.
        let _ip_permit = ip_permit;
        match upgrade.await {
            Ok(ws) => {
                let refuse = match _permit {
                    Permit::Admitted(_) => {
                        shared.metrics.connections_total.fetch_add(1, Relaxed);
                        shared.metrics.connections_open.fetch_add(1, Relaxed);
                        None
                    }
                    Permit::Refusing(_) => Some(CloseCode::ServerFull),
                };
                serve_upgraded(ws, shared.clone(), kind, peer.ip(), refuse).await;
                if refuse.is_none() {
                    shared.metrics.connections_open.fetch_sub(1, Relaxed);
                }
            }
            Err(e) => tracing::debug!(cause = %e, "upgrade failed"),
        }
        drop(done);
    });
    response.map(|_| Full::new(Bytes::new()))
}

/// Whether an upgrade may proceed under `--allowed-origin`: always when no
/// origin is configured or the request carries no Origin (non-browser
/// clients); otherwise only for a listed origin. Origins compare without
/// case and without a trailing slash, as browsers serialise them.
fn origin_allowed<B>(req: &Request<B>, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(origin) = req.headers().get(hyper::header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim().trim_end_matches('/');
    allowed
        .iter()
        .any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// Hands an upgraded connection to [`conn::serve`]. A plain TCP connection
/// is taken back from hyper and split into owned halves, which skips
/// hyper's boxed I/O wrapper and the lock of a generic split on every read
/// and write, and lets its room write states directly ([`direct`]); bytes
/// the client sent right behind its upgrade request are read first.
async fn serve_upgraded(
    ws: WebSocket<TokioIo<Upgraded>>,
    shared: Arc<Shared>,
    kind: SessionKind,
    peer: IpAddr,
    refuse: Option<CloseCode>,
) {
    let upgraded = ws.into_inner().into_inner();
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            let (read, write, direct) = direct::split(parts.io.into_inner());
            // Copied: the slice would otherwise pin hyper's whole read buffer
            // (8 KiB or more) for the life of the connection.
            let read = std::io::Cursor::new(Bytes::copy_from_slice(&parts.read_buf)).chain(read);
            let (rd, wr) = fastwebsockets::after_handshake_split(read, write, Role::Server);
            let from = conn::Transport {
                peer: Some(peer),
                direct: Some(direct),
            };
            conn::serve_as(rd, wr, shared, kind, from, refuse).await;
        }
        Err(upgraded) => {
            let ws = WebSocket::after_handshake(TokioIo::new(upgraded), Role::Server);
            let (rd, wr) = ws.split(tokio::io::split);
            let from = conn::Transport {
                peer: Some(peer),
                direct: None,
            };
            conn::serve_as(rd, wr, shared, kind, from, refuse).await;
        }
    }
}

/// A connection's place under `--max-connections` (or among refusals),
/// given back on drop.
enum Permit {
    Admitted(Arc<Shared>),
    Refusing(Arc<Shared>),
}

impl Drop for Permit {
    fn drop(&mut self) {
        match self {
            Permit::Admitted(s) => s.admitted.fetch_sub(1, Relaxed),
            Permit::Refusing(s) => s.refusing.fetch_sub(1, Relaxed),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(origin: Option<&str>) -> Request<()> {
        let mut b = Request::builder().uri("/ws");
        if let Some(o) = origin {
            b = b.header(hyper::header::ORIGIN, o);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn origins_are_checked_only_when_configured() {
        let allowed = vec![
            "https://Game.example".to_owned(),
            "http://localhost:8080/".to_owned(),
        ];
        let check = |origin: Option<&str>, list: &[String]| origin_allowed(&request(origin), list);
        assert!(
            check(Some("https://evil.example"), &[]),
            "no list: everything"
        );
        assert!(check(Some("https://game.example"), &allowed));
        assert!(check(Some("http://localhost:8080"), &allowed));
        assert!(check(None, &allowed), "non-browser clients send no Origin");
        assert!(!check(Some("https://evil.example"), &allowed));
        assert!(!check(Some("https://game.example.evil"), &allowed));
        assert!(!check(Some("null"), &allowed), "sandboxed pages send null");
    }
}

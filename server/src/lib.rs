//! The game platform's server: hosts real-time multiplayer rooms of any
//! registered game for browser (and other) clients.
//!
//! Layout (see `ARCHITECTURE.md` for the whole picture):
//! - [`net`]: TCP accept, HTTP routes, WebSocket upgrade, one task per
//!   connection;
//! - [`room`]: the lobby (room types, matchmaking, invite codes, the room
//!   list, sessions) and rooms, each a task that owns its game and runs the
//!   tick loop;
//! - [`config`], [`metrics`], [`shutdown`]: options, Prometheus metrics,
//!   graceful shutdown;
//! - [`cpu`]: how long the server's threads wait for a CPU, which the
//!   rooms' send-rate policy reads;
//! - [`state`]: the state file that carries rooms and sessions over a
//!   planned restart;
//! - [`web`]: the embedded lobby and game pages;
//! - [`process`]: logging, the open-file limit and signals, for binaries.
//!
//! Embed it with [`Server::builder`], register room types (games written
//! against `game_api`), [`ServerBuilder::bind`] and [`Server::run`];
//! `main.rs` is a thin wrapper that adds logging, signal handling and the
//! built-in games. This library names no game.

pub mod config;
pub mod cpu;
pub mod directory;
pub mod metrics;
pub mod net;
pub mod process;
pub mod record;
pub mod room;
pub mod shutdown;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
mod wall;
pub mod web;

pub use game_api;

use config::Config;
use game_api::RoomType;
use metrics::Metrics;
use protocol::CloseCode;
use room::lobby::Lobby;
use room::{Kind, RoomDefaults};
use shutdown::ShutdownController;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio::net::TcpListener;
use wall::unix_millis;

/// A server being put together: its configuration and room types.
pub struct ServerBuilder {
    config: Config,
    room_types: Vec<RoomType>,
}

impl ServerBuilder {
    /// Registers a room type: clients ask for it by its name.
    pub fn room_type(mut self, room_type: RoomType) -> Self {
        self.room_types.push(room_type);
        self
    }

    /// Registers several room types.
    pub fn room_types(mut self, room_types: impl IntoIterator<Item = RoomType>) -> Self {
        self.room_types.extend(room_types);
        self
    }

    /// Binds `config.listen` and prepares the lobby with the registered
    /// room types. With `--state-file`, also restores the rooms and sessions
    /// saved there by a planned stop (see [`state`]). Fails with
    /// `InvalidInput` when no room type is registered, two share a name,
    /// or two pages claim one path.
    pub async fn bind(self) -> std::io::Result<Server> {
        let ServerBuilder { config, room_types } = self;
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        if room_types.is_empty() {
            return Err(invalid("no room type is registered".into()));
        }
        let mut names: Vec<&str> = room_types.iter().map(RoomType::name).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(format!("room type {:?} is registered twice", w[0])));
        }
        let web = web::Web::new(&room_types).map_err(invalid)?;
        let listener = TcpListener::bind(config.listen).await?;
        let mut config = config;
        if let Some(public) = &config.public_url {
            config.public_url = Some(config::with_bound_port(
                public,
                listener.local_addr()?.port(),
            ));
        }
        let metrics = Arc::new(Metrics::default());
        let controller = ShutdownController::new();
        if config.state_file.is_some() {
            // Sessions survive this shutdown, so clients are told to come
            // back and resume rather than that the server is going away.
            controller.set_close_code(CloseCode::ServiceRestart);
        }
        let recordings = match &config.record {
            Some(dir) => Some(
                record::Recordings::start(
                    record::RecordSettings {
                        dir: dir.clone(),
                        hash_every: config.record_hash_every,
                        keyframe_every: config.record_keyframe_every,
                        max_bytes: config.record_max_mb.saturating_mul(1 << 20),
                    },
                    metrics.clone(),
                )
                .map_err(|e| {
                    std::io::Error::new(e.kind(), format!("--record {}: {e}", dir.display()))
                })?,
            ),
            None => None,
        };
        let defaults = Arc::new(RoomDefaults {
            tick_hz: config.tick_hz,
            resume_grace: config.resume_grace,
            slow_timeout: config.slow_timeout,
            max_rooms: config.max_rooms,
            max_inputs_per_sec: config.max_inputs_per_sec,
            seed: config.seed.unwrap_or_else(random_seed),
            save_on_shutdown: config.state_file.is_some(),
            snapshot_hz: config.snapshot_hz,
            adaptive_send_rate: config.send_rate_policy == config::SendRatePolicy::Adaptive,
            recordings,
            tokens: room::TokenSource::os(),
        });
        let kinds = room_types
            .into_iter()
            .map(|room_type| {
                let settings = room_type.settings();
                Arc::new(Kind {
                    tick_hz: settings.tick_hz.unwrap_or(config.tick_hz),
                    linger: config.linger_for(room_type.name(), settings.linger),
                    room_type,
                })
            })
            .collect();
        let lobby = Lobby::new(kinds, defaults, metrics.clone(), controller.handle());
        if let Some(path) = &config.state_file {
            let restored = restore(path, &lobby).await;
            metrics
                .sessions_restored
                .fetch_add(restored as u64, Relaxed);
        }
        let directory = match &config.directory {
            Some(_) => {
                let directory =
                    directory::Directory::new(&config, lobby.clone()).map_err(invalid)?;
                tokio::spawn(directory.clone().listen(controller.handle()));
                // Registered (with room ids to give) before the first
                // player is accepted, when Redis answers; if it does not,
                // the heartbeat keeps trying and joins that need it are
                // refused meanwhile.
                directory.register().await;
                Some(directory)
            }
            None => None,
        };
        let viewer = config
            .record
            .clone()
            .map(|dir| record::viewer::Viewer::new(dir, lobby.room_types()));
        let shared = Arc::new(net::Shared::new(
            config,
            lobby,
            metrics,
            controller.handle(),
            web,
            directory,
            viewer,
        )?);
        Ok(Server {
            listener,
            shared,
            controller,
        })
    }
}

/// A bound, not yet running, server.
pub struct Server {
    listener: TcpListener,
    shared: Arc<net::Shared>,
    controller: ShutdownController,
}

impl Server {
    /// A server with `config`; register room types on the builder, then
    /// bind it.
    pub fn builder(config: Config) -> ServerBuilder {
        ServerBuilder {
            config,
            room_types: Vec::new(),
        }
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The server's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// A handle that serves game sessions over streams this server did not
    /// accept itself (a WebSocket upgraded by another HTTP stack, an
    /// in-memory stream in a fuzz target). Sessions share the lobby, rooms,
    /// limits and metrics of this server.
    pub fn sessions(&self) -> Sessions {
        Sessions {
            shared: self.shared.clone(),
        }
    }

    /// Serves until `shutdown` completes, then stops accepting, closes every
    /// client with 1001 (1012 with `--state-file`), stops the rooms and
    /// returns within `--shutdown-timeout`; with `--state-file` it then
    /// writes the rooms and sessions there. Returns false if some task had
    /// not finished by then, or the state file could not be written.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> bool {
        let Server {
            listener,
            shared,
            controller,
        } = self;
        tracing::info!(addr = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "listening");
        let heartbeat = shared
            .directory
            .clone()
            .map(|d| tokio::spawn(d.heartbeat(controller.handle())));
        let metrics = shared.metrics.clone();
        let cpu_sampler = tokio::spawn(async move { metrics.cpu_wait.sample_forever().await });
        net::accept_loop(listener, shared.clone(), shutdown).await;
        if let Some(directory) = &shared.directory {
            // Before the players are closed: their clients come back to
            // other nodes, and the directory must send none here.
            directory.drain().await;
        }
        tracing::info!("shutting down: closing connections");
        let clean = controller.shutdown(shared.config.shutdown_timeout).await;
        cpu_sampler.abort();
        if let (Some(directory), Some(heartbeat)) = (&shared.directory, heartbeat) {
            heartbeat.abort();
            let _ = heartbeat.await;
            directory.leave().await;
        }
        if !clean {
            tracing::warn!("shutdown timed out with tasks still running");
        }
        let recorded = match shared.lobby.recordings() {
            // The rooms have stopped and sent their last chunks.
            Some(recordings) => {
                let timeout = shared.config.shutdown_timeout;
                let finished =
                    tokio::task::spawn_blocking(move || recordings.finish(timeout)).await;
                let finished = finished.unwrap_or(false);
                if !finished {
                    tracing::error!("room recordings were not all written by the shutdown timeout");
                }
                finished
            }
            None => true,
        };
        let saved = match &shared.config.state_file {
            // Rooms never wait on anything, so even after a timeout (a
            // connection that would not close) every room has handed in
            // its state: what is there is complete.
            Some(path) => save(path, &shared.lobby).await,
            None => true,
        };
        clean && saved && recorded
    }
}

/// Writes the lobby's saved state to `path`; false (logged) on failure.
async fn save(path: &Path, lobby: &Lobby) -> bool {
    let state = lobby.saved_state(unix_millis());
    let (rooms, sessions) = (state.rooms.len(), state.session_count());
    let target = path.to_owned();
    let written = tokio::task::spawn_blocking(move || state::write(&target, &state)).await;
    match written {
        Ok(Ok(bytes)) => {
            tracing::info!(path = %path.display(), rooms, sessions, bytes, "state saved");
            true
        }
        Ok(Err(e)) => {
            tracing::error!(path = %path.display(), cause = %e, sessions, "state not saved: sessions are lost");
            false
        }
        Err(e) => {
            tracing::error!(path = %path.display(), cause = %e, sessions, "state writer failed: sessions are lost");
            false
        }
    }
}

/// Restores the state file at `path` into `lobby`, then sets the file aside
/// so that it is never restored twice. A missing file is a fresh start; an
/// undecodable one is renamed `<name>.corrupt` and the server starts empty,
/// since a game server must not refuse to start over a bad state file.
/// Returns the number of sessions restored.
async fn restore(path: &Path, lobby: &Arc<Lobby>) -> usize {
    let target = path.to_owned();
    let read = tokio::task::spawn_blocking(move || {
        if let Err(e) = state::check_writable(&target) {
            tracing::warn!(path = %target.display(), cause = %e,
                "the state file cannot be written: a shutdown will lose every session");
        }
        state::read(&target)
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e).into()));
    let saved = match read {
        Ok(Some(saved)) => saved,
        Ok(None) => {
            tracing::info!(path = %path.display(), "no state file: starting empty");
            return 0;
        }
        Err(e) if e.is_corrupt() => {
            let aside = set_aside(path, "corrupt");
            tracing::error!(path = %path.display(), cause = %e, set_aside = %aside,
                "state file unreadable: starting empty");
            return 0;
        }
        Err(e) => {
            tracing::error!(path = %path.display(), cause = %e, "state file unreadable: starting empty");
            return 0;
        }
    };
    let age_ms = unix_millis().saturating_sub(saved.saved_at_unix_ms);
    let in_file = saved.session_count();
    let restored = lobby.restore(saved);
    let aside = set_aside(path, "restored");
    tracing::info!(path = %path.display(), sessions = restored, lost = in_file.saturating_sub(restored),
        saved_ms_ago = age_ms, set_aside = %aside, "state restored");
    restored
}

/// Renames the state file to `<name>.<suffix>`; says where it went, or why
/// it could not be moved.
fn set_aside(path: &Path, suffix: &str) -> String {
    match state::set_aside(path, suffix) {
        Ok(to) => to.display().to_string(),
        Err(e) => {
            tracing::warn!(path = %path.display(), cause = %e, "could not rename the state file");
            format!("not moved: {e}")
        }
    }
}

/// Serves game sessions on streams handed in from outside; see
/// [`Server::sessions`].
#[derive(Clone)]
pub struct Sessions {
    shared: Arc<net::Shared>,
}

impl Sessions {
    /// Serves one session on a stream whose WebSocket handshake (server
    /// side) is complete, until the session ends: exactly what `/ws` does
    /// after its upgrade, `Hello` first. With no client address, its
    /// invite-code attempts count against one bucket shared by every such
    /// session: use [`Sessions::serve_from`] when the address is known.
    pub async fn serve<R, W>(&self, read: R, write: W)
    where
        R: tokio::io::AsyncRead + Unpin + Send,
        W: tokio::io::AsyncWrite + Unpin + Send,
    {
        self.serve_inner(read, write, None).await;
    }

    /// [`Sessions::serve`] for a client at `peer`, whose invite-code
    /// attempts are limited per address as `/ws`'s are.
    pub async fn serve_from<R, W>(&self, read: R, write: W, peer: std::net::IpAddr)
    where
        R: tokio::io::AsyncRead + Unpin + Send,
        W: tokio::io::AsyncWrite + Unpin + Send,
    {
        self.serve_inner(read, write, Some(peer)).await;
    }

    async fn serve_inner<R, W>(&self, read: R, write: W, peer: Option<std::net::IpAddr>)
    where
        R: tokio::io::AsyncRead + Unpin + Send,
        W: tokio::io::AsyncWrite + Unpin + Send,
    {
        let (rd, wr) =
            fastwebsockets::after_handshake_split(read, write, fastwebsockets::Role::Server);
        net::conn::serve(rd, wr, self.shared.clone(), peer, None).await;
    }
}

fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random number generator is available");
    u64::from_le_bytes(bytes)
}

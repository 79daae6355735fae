//! An authoritative, fixed-tick game server for browser games.
//!
//! Layout (see `ARCHITECTURE.md` for the whole picture):
//! - [`net`]: TCP accept, HTTP routes, WebSocket upgrade, one task per
//!   connection;
//! - [`room`]: the lobby (placement, sessions) and rooms, each a task that
//!   owns its world and runs the tick loop;
//! - [`game`]: the rules behind the [`game::Game`] trait, and the built-in
//!   `arena`;
//! - [`config`], [`metrics`], [`shutdown`]: options, Prometheus metrics,
//!   graceful shutdown.
//!
//! Embed it with [`Server::bind`] and [`Server::run`]; `main.rs` is a thin
//! wrapper that adds logging and signal handling.

pub mod config;
pub mod game;
pub mod metrics;
pub mod net;
pub mod room;
pub mod shutdown;
pub mod web;

use config::Config;
use game::GameFactory;
use game::arena::{Arena, ArenaConfig};
use metrics::Metrics;
use room::RoomSettings;
use room::lobby::Lobby;
use shutdown::ShutdownController;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Inputs one player may have queued in its room per tick on average: the
/// rate limit spread over the ticks, plus the limiter's burst, plus one.
fn input_queue_per_player(config: &Config) -> usize {
    let per_tick = config
        .max_inputs_per_sec
        .div_ceil(u32::from(config.tick_hz));
    let burst = (config.max_inputs_per_sec / 4).max(4);
    (per_tick + burst + 1) as usize
}

/// The arena game, configured from the command line.
pub fn arena_factory(config: &Config) -> GameFactory {
    let arena = ArenaConfig {
        world_width: config.world_width,
        world_height: config.world_height,
        view_radius: config.view_radius,
        pickups: config.pickups,
        pickup_respawn_ticks: config.ticks_in(config.pickup_respawn),
        player_speed: config.speed_per_tick(),
        pickup_radius: ArenaConfig::default().pickup_radius,
    };
    Arc::new(move |seed| Box::new(Arena::new(arena.clone(), seed)))
}

/// A bound, not yet running, server.
pub struct Server {
    listener: TcpListener,
    shared: Arc<net::Shared>,
    controller: ShutdownController,
}

impl Server {
    /// Binds `config.listen` and prepares the lobby, with the arena game.
    pub async fn bind(config: Config) -> std::io::Result<Self> {
        let game = arena_factory(&config);
        Self::bind_with_game(config, game).await
    }

    /// Binds `config.listen` with another game's rules.
    pub async fn bind_with_game(config: Config, game: GameFactory) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        let metrics = Arc::new(Metrics::default());
        let controller = ShutdownController::new();
        let seed = config.seed.unwrap_or_else(random_seed);
        let settings = Arc::new(RoomSettings {
            tick_period: config.tick_period(),
            tick_hz: config.tick_hz,
            capacity: config.room_capacity,
            max_rooms: config.max_rooms,
            resume_grace: config.resume_grace,
            slow_ticks: config.ticks_in(config.slow_timeout),
            input_queue: usize::from(config.room_capacity) * input_queue_per_player(&config),
            seed,
            game,
            world: (config.world_width, config.world_height, config.view_radius),
        });
        let lobby = Lobby::new(settings, metrics.clone(), controller.handle());
        let shared = Arc::new(net::Shared::new(
            config,
            lobby,
            metrics,
            controller.handle(),
        )?);
        Ok(Self {
            listener,
            shared,
            controller,
        })
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
    /// client with 1001, stops the rooms and returns within
    /// `--shutdown-timeout`. Returns false if some task had not finished by
    /// then.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> bool {
        let Server {
            listener,
            shared,
            controller,
        } = self;
        tracing::info!(addr = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "listening");
        net::accept_loop(listener, shared.clone(), shutdown).await;
        tracing::info!("shutting down: closing connections");
        let clean = controller.shutdown(shared.config.shutdown_timeout).await;
        if !clean {
            tracing::warn!("shutdown timed out with tasks still running");
        }
        clean
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
    /// after its upgrade, `Hello` first.
    pub async fn serve<R, W>(&self, read: R, write: W)
    where
        R: tokio::io::AsyncRead + Unpin + Send,
        W: tokio::io::AsyncWrite + Unpin + Send,
    {
        let (rd, wr) =
            fastwebsockets::after_handshake_split(read, write, fastwebsockets::Role::Server);
        net::conn::serve(rd, wr, self.shared.clone(), None).await;
    }
}

fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random number generator is available");
    u64::from_le_bytes(bytes)
}

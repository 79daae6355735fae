//! The `server` binary: parses options, sets up logging, raises the
//! open-file limit, registers the built-in games, and runs the server until
//! SIGINT or SIGTERM.
//!
//! The built-in room types are `arena` (the real-time arena, whose options
//! are the `--world-*`, `--view-radius`, `--pickups`, `--pickup-respawn`,
//! `--player-speed` and `--room-capacity` flags below) and `four`
//! (four-in-a-row for two). A server of your own games is this file with
//! your `RoomType`s (see `docs/your-own-game.md`).
//!
//! `server replay FILE... [--verify]` re-simulates room recordings
//! (`--record DIR`) instead of serving (see `server::record::replay`).

use clap::{Args, CommandFactory, FromArgMatches};
use server::Server;
use server::config::Config;
use server::process::{init_logging, raise_nofile_limit_logged, runtime, shutdown_signal};
use std::time::Duration;

// The arena's options: the field and its rules, per room. (A plain
// comment: a doc comment here would become the about line of the whole
// binary's --help, in place of the server's.)
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Arena (a built-in game)")]
struct ArenaArgs {
    /// Players per arena room; a new room opens when all are full.
    #[arg(long, env = "GAME_ROOM_CAPACITY", default_value_t = 100,
          value_parser = clap::value_parser!(u16).range(1..))]
    room_capacity: u16,

    /// Width of each arena's field, in world units.
    #[arg(long, env = "GAME_WORLD_WIDTH", default_value_t = 2000,
          value_parser = clap::value_parser!(u16).range(1..))]
    world_width: u16,

    /// Height of each arena's field, in world units.
    #[arg(long, env = "GAME_WORLD_HEIGHT", default_value_t = 2000,
          value_parser = clap::value_parser!(u16).range(1..))]
    world_height: u16,

    /// Arena players see only entities within this distance (interest
    /// management).
    #[arg(long, env = "GAME_VIEW_RADIUS", default_value_t = 300,
          value_parser = clap::value_parser!(u16).range(1..))]
    view_radius: u16,

    /// Pickups on each arena's field (at most 100,000).
    #[arg(long, env = "GAME_PICKUPS", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(..=i64::from(arena::MAX_PICKUPS)))]
    pickups: u32,

    /// How long a collected pickup stays away before it respawns.
    #[arg(long, env = "GAME_PICKUP_RESPAWN", default_value = "3s", value_parser = humantime::parse_duration)]
    pickup_respawn: Duration,

    /// Arena player speed in world units per second.
    #[arg(long, env = "GAME_PLAYER_SPEED", default_value_t = 240)]
    player_speed: u32,
}

impl ArenaArgs {
    /// The arena room type these options describe, at `tick_hz`.
    fn room_type(&self, tick_hz: u16) -> game_api::RoomType {
        let config = arena::ArenaConfig {
            world_width: self.world_width,
            world_height: self.world_height,
            view_radius: self.view_radius,
            pickups: self.pickups,
            ..arena::ArenaConfig::default()
        }
        .at_tick_rate(tick_hz, self.player_speed, self.pickup_respawn);
        arena::room_type(config).capacity(self.room_capacity)
    }
}

/// Everything the binary takes: the server's options and the built-in
/// games' own.
struct Cli {
    server: Config,
    arena: ArenaArgs,
}

fn parse() -> Cli {
    let command = ArenaArgs::augment_args(Config::command()).after_help(
        "Room types: arena (real-time arena, rooms of --room-capacity players, quick join \
         matches the `pace` option: normal or fast) and four (four-in-a-row for two, \
         private rooms with invite codes, rematches). Clients ask for a room type in \
         their Hello; GET /rooms lists public rooms, GET /rooms/types the types.",
    );
    let matches = command.get_matches();
    let server = Config::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let arena = ArenaArgs::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    Cli { server, arena }
}

/// The built-in room types: the arena as `arena` says, and four-in-a-row.
fn room_types(arena: &ArenaArgs, tick_hz: u16) -> [game_api::RoomType; 2] {
    [arena.room_type(tick_hz), four::room_type()]
}

/// mimalloc, not glibc's allocator: a state's bytes, a connection's
/// buffers and its task come from per-thread pages of objects of one size.
/// At 1,000 players one A/B gave 8 % less CPU per state delivered and a
/// second no change, for about 16 MB more resident memory (README,
/// Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<std::process::ExitCode> {
    // `server replay FILE... [--verify]`: the games come from this build,
    // their configuration from each recording (these defaults are not
    // used).
    let defaults = ArenaArgs::from_arg_matches(
        &ArenaArgs::augment_args(clap::Command::new("defaults")).get_matches_from(["x"]),
    )?;
    let games = room_types(&defaults, Config::default().tick_hz);
    if let Some(code) = server::record::replay::from_command_line(&games) {
        return Ok(code);
    }
    let Cli {
        server: config,
        arena,
    } = parse();
    init_logging(config.log_format);
    raise_nofile_limit_logged();
    runtime(config.threads)?
        .block_on(async {
            let server = Server::builder(config.clone())
                .room_types(room_types(&arena, config.tick_hz))
                .bind()
                .await?;
            tracing::info!(
                room_types = "arena, four",
                "game server starting: open http://{}/ to play",
                server.local_addr()
            );
            anyhow::Ok(server.run(shutdown_signal()).await)
        })
        .and_then(|clean| {
            // A task left running or state not saved: say so to whatever
            // supervises the process (systemd, a deploy script).
            anyhow::ensure!(clean, "shutdown was not clean: see the log above");
            Ok(())
        })?;
    tracing::info!("bye");
    Ok(std::process::ExitCode::SUCCESS)
}

//! `place-server`: a game server hosting place and nothing else, built on
//! the platform's embedding API. It is the built-in `server` binary
//! (`server/src/main.rs`) with one room type: the same options (the
//! server's `Config`, with the same `GAME_*` environment fallbacks), the
//! same logging (`RUST_LOG`, `--log-format`), the same open-file limit and
//! the same graceful stop on SIGINT or SIGTERM, all from `server::process`.
//! `--tick-hz` does not apply to place, whose room type sets its own rate.

use clap::{CommandFactory, FromArgMatches};
use server::Server;
use server::config::Config;
use server::process::{init_logging, raise_nofile_limit_logged, runtime, shutdown_signal};

fn main() -> anyhow::Result<std::process::ExitCode> {
    // `place-server replay FILE... [--verify]` replays recordings
    // (`--record DIR`) instead of serving.
    if let Some(code) = server::record::replay::from_command_line(&[place::room_type()]) {
        return Ok(code);
    }
    let matches = Config::command()
        .name("place-server")
        .about("A game server of place, the shared pixel canvas: open http://ADDRESS/place/")
        .get_matches();
    let config = Config::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logging(config.log_format);
    raise_nofile_limit_logged();
    let clean = runtime(config.threads)?.block_on(async {
        let server = Server::builder(config)
            .room_type(place::room_type())
            .bind()
            .await?;
        tracing::info!("open http://{}/place/ to paint", server.local_addr());
        anyhow::Ok(server.run(shutdown_signal()).await)
    })?;
    // A task left running, or the state file not written: say so to
    // whatever supervises the process.
    anyhow::ensure!(clean, "shutdown was not clean: see the log above");
    tracing::info!("bye");
    Ok(std::process::ExitCode::SUCCESS)
}

//! The `server` binary: parses options, sets up logging, raises the
//! open-file limit, and runs the server until SIGINT or SIGTERM.

use clap::Parser;
use server::Server;
use server::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Raises the soft open-file limit to the hard limit: every player is a
/// socket, and the usual soft limit of 1,024 would cap a server at about
/// a thousand players.
#[allow(unsafe_code)]
fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we
    // pass, which lives on this stack frame for the duration of the calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(lim.rlim_cur)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    init_logging(config.log_format);
    match raise_nofile_limit() {
        Ok(limit) => tracing::info!(limit, "open-file limit"),
        Err(e) => tracing::warn!(cause = %e, "could not raise the open-file limit"),
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = config.threads {
        runtime.worker_threads(usize::from(n));
    }
    let runtime = runtime.build()?;
    runtime
        .block_on(async {
            let server = Server::bind(config.clone()).await?;
            tracing::info!(
                tick_hz = config.tick_hz,
                room_capacity = config.room_capacity,
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
    Ok(())
}

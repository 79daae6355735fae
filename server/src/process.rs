//! What a server binary does around the server itself: logging set up from
//! `RUST_LOG` and `--log-format`, the open-file limit raised, the runtime
//! built, and the signals that stop it. The built-in `server` binary and any binary of
//! your own games (`examples/place`'s `place-server`) use these, so every
//! server on the platform behaves alike under a supervisor.
//!
//! Not for libraries or tests: logging is global, and set once per process.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Logs to stderr in `format`, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Raises the soft open-file limit to the hard limit and returns it: every
/// player is a socket, and the usual soft limit of 1,024 would cap a server
/// at about a thousand players. An error if the limit cannot be read or
/// raised.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Raises the open-file limit, logging the result (call after
/// [`init_logging`]).
pub fn raise_nofile_limit_logged() {
    match raise_nofile_limit() {
        Ok(limit) => tracing::info!(limit, "open-file limit"),
        Err(e) => tracing::warn!(cause = %e, "could not raise the open-file limit"),
    }
}

/// The multi-threaded tokio runtime a server runs on, with `threads`
/// workers (`--threads`) or one per core.
pub fn runtime(threads: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = threads {
        runtime.worker_threads(usize::from(n));
    }
    runtime.build()
}

/// Completes at the first SIGINT (Ctrl-C) or SIGTERM: pass it to
/// `Server::run`.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let limit = raise_nofile_limit().expect("getrlimit works");
        assert!(limit >= 1024, "{limit}");
        assert_eq!(raise_nofile_limit().unwrap(), limit, "idempotent");
    }
}

//! What loadgen needs from the operating system and the server's metrics
//! endpoint: the open-file limit, its own CPU and memory, and the server's.
//! Not for measuring latency (see `stats`).

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sockets loadgen opens besides one per client (metrics scrapes, a client
/// reconnecting while its old socket closes), plus stdio and log files.
pub const FD_HEADROOM: u64 = 64;

/// Raises the soft open-file limit to the hard limit where it can and
/// returns `(soft, hard)` after the attempt; an error only if the limit
/// cannot be read.
pub fn raise_nofile_limit() -> std::io::Result<(u64, u64)> {
    // A refused raise is not an error here: the caller compares the limit
    // it gets with the sockets it needs and says what to raise.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    rlimit::getrlimit(rlimit::Resource::NOFILE)
}

/// Checks that `clients` sockets fit under the open-file limit, after
/// raising it; the error says what to raise.
pub fn check_fd_budget(clients: usize) -> Result<(), String> {
    let (soft, hard) =
        raise_nofile_limit().map_err(|e| format!("cannot read the open-file limit: {e}"))?;
    let need = clients as u64 + FD_HEADROOM;
    if need > soft {
        return Err(format!(
            "--clients {clients} needs about {need} open files, but the limit is {soft} (hard limit {hard}). \
             Raise the hard limit (e.g. `ulimit -Hn {need}` as root, or LimitNOFILE= in a systemd unit, \
             or nofile in /etc/security/limits.conf), or run fewer clients per loadgen process and merge \
             the reports with `loadgen merge`."
        ));
    }
    Ok(())
}

/// This process's CPU time (user + system, seconds) and peak RSS (bytes).
#[allow(unsafe_code)]
pub fn own_usage() -> (f64, u64) {
    // SAFETY: an all-zero rusage is a valid value, and getrusage writes
    // only into the struct passed.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: see above; RUSAGE_SELF is always a valid target.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0.0, 0);
    }
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    // Linux reports ru_maxrss in kilobytes.
    (
        secs(ru.ru_utime) + secs(ru.ru_stime),
        ru.ru_maxrss as u64 * 1024,
    )
}

/// The server's CPU seconds and resident memory from its `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerSample {
    /// `process_cpu_seconds_total`.
    pub cpu_s: f64,
    /// `process_resident_memory_bytes`.
    pub rss_bytes: u64,
}

/// Scrapes `http://{authority}/metrics`; `None` if unreachable or missing
/// the process metrics.
pub async fn scrape_server(authority: &str) -> Option<ServerSample> {
    let fetch = async {
        let mut tcp = TcpStream::connect(authority).await.ok()?;
        let req =
            format!("GET /metrics HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.ok()?;
        let mut body = Vec::new();
        tcp.read_to_end(&mut body).await.ok()?;
        Some(String::from_utf8_lossy(&body).into_owned())
    };
    let text = tokio::time::timeout(Duration::from_secs(2), fetch)
        .await
        .ok()??;
    parse_server_sample(&text)
}

fn parse_server_sample(text: &str) -> Option<ServerSample> {
    let value = |name: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
    };
    Some(ServerSample {
        cpu_s: value("process_cpu_seconds_total")?,
        rss_bytes: value("process_resident_memory_bytes")? as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_raised_and_an_impossible_client_count_is_refused() {
        let (soft, hard) = raise_nofile_limit().unwrap();
        assert_eq!(soft, hard, "soft limit raised to the hard one");
        let err = check_fd_budget(usize::try_from(hard).unwrap()).unwrap_err();
        assert!(err.contains("open files") && err.contains("Raise"), "{err}");
        assert!(check_fd_budget(10).is_ok());
    }

    #[test]
    fn server_samples_parse_from_prometheus_text() {
        let text =
            "# HELP x\nprocess_resident_memory_bytes 1048576\nprocess_cpu_seconds_total 2.5\n";
        assert_eq!(
            parse_server_sample(text),
            Some(ServerSample {
                cpu_s: 2.5,
                rss_bytes: 1_048_576
            })
        );
        assert_eq!(parse_server_sample("game_players 3\n"), None);
    }

    #[test]
    fn own_usage_is_positive() {
        let (cpu, rss) = own_usage();
        assert!(cpu > 0.0 && rss > 1 << 20);
    }
}

//! Counters, gauges and histograms, rendered as Prometheus text at
//! `/metrics`.
//!
//! Everything is a relaxed atomic updated in place by the task that observes
//! it (connection tasks, room tasks); rendering reads them without stopping
//! anyone. Not for: per-player detail (that would be a cardinality bomb) or
//! anything the game itself needs to run.

use protocol::CloseCode;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Bucket upper bounds of the tick histograms, in seconds. They bracket a
/// 30 Hz tick (33 ms) from both sides, finely below it where healthy ticks
/// land and coarsely above it where overruns land.
const TICK_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// A fixed-bucket histogram of durations.
#[derive(Default)]
pub struct Histogram {
    /// Count per bucket of [`TICK_BUCKETS`] (not cumulative), plus +Inf last.
    buckets: [AtomicU64; TICK_BUCKETS.len() + 1],
    /// Sum of all observations, in nanoseconds.
    sum_ns: AtomicU64,
    /// Number of observations.
    count: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = TICK_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(TICK_BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_ns
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// Number of observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in TICK_BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.buckets[TICK_BUCKETS.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// Why inputs were dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Over the per-connection rate limit.
    RateLimit = 0,
    /// The room's inbox was full.
    QueueFull = 1,
}

/// How a new player asked to be placed, for the `joins` counter.
#[derive(Clone, Copy, Debug)]
pub enum JoinKind {
    /// Quick join (join or create).
    Quick = 0,
    /// Create a room.
    Create = 1,
    /// Join by room id.
    ById = 2,
    /// Join by invite code.
    ByCode = 3,
}

/// Who ended a connection, for the `closes` counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseInitiator {
    /// The server sent the first close frame.
    Server,
    /// The client sent the first close frame.
    Client,
}

/// All of the server's metrics.
#[derive(Default)]
pub struct Metrics {
    /// WebSocket connections currently open.
    pub connections_open: AtomicI64,
    /// WebSocket connections accepted since start.
    pub connections_total: AtomicU64,
    /// Upgrades refused because the server was at `--max-connections`.
    pub connections_refused: AtomicU64,
    /// TCP connections closed at accept: their address was at
    /// `--max-connections-per-ip`.
    pub connections_refused_per_ip: AtomicU64,
    /// Upgrades refused with 403: their Origin is not allowed.
    pub origins_refused: AtomicU64,
    /// Players in all rooms, dropped ones waiting to resume included.
    pub players: AtomicI64,
    /// Players whose connection dropped and who wait to resume.
    pub players_dropped: AtomicI64,
    /// Rooms open.
    pub rooms: AtomicI64,
    /// Rooms opened since start.
    pub rooms_opened: AtomicU64,
    /// Placement requests, by [`JoinKind`].
    pub joins: [AtomicU64; 4],
    /// Invite-code lookups refused by the per-address attempt limit.
    pub code_attempts_refused: AtomicU64,
    /// Time each tick took to run (step, states, hand-off).
    pub tick_duration: Histogram,
    /// How late each tick started against its schedule.
    pub tick_lateness: Histogram,
    /// Ticks whose run took longer than the tick period.
    pub tick_overruns: AtomicU64,
    /// Simulation steps dropped because a room fell too far behind.
    pub ticks_skipped: AtomicU64,
    /// WebSocket data messages received.
    pub messages_in: AtomicU64,
    /// Payload bytes received in data messages.
    pub bytes_in: AtomicU64,
    /// WebSocket data messages sent.
    pub messages_out: AtomicU64,
    /// Payload bytes sent in data messages.
    pub bytes_out: AtomicU64,
    /// States put in mailboxes: what rooms planned to send.
    pub states_planned: AtomicU64,
    /// States replaced in a mailbox before the connection took them.
    pub states_skipped: AtomicU64,
    /// States written to connections.
    pub states_written: AtomicU64,
    /// Rooms sending states less often than configured (overloaded).
    pub rooms_degraded: AtomicI64,
    /// Times a room lowered its send rate under overload.
    pub send_rate_lowered: AtomicU64,
    /// Times a room raised its send rate back.
    pub send_rate_raised: AtomicU64,
    /// States not sent because nothing in them changed (room types that
    /// skip unchanged states).
    pub states_unchanged: AtomicU64,
    /// Game events written to connections.
    pub events_sent: AtomicU64,
    /// Game events written again on a resumed connection.
    pub events_replayed: AtomicU64,
    /// Game messages (inputs) dropped, by [`DropReason`].
    pub inputs_dropped: [AtomicU64; 2],
    /// Pings dropped for exceeding the ping rate limit.
    pub pings_dropped: AtomicU64,
    /// Sessions resumed with a valid token.
    pub resumes: AtomicU64,
    /// Resume attempts refused (unknown or expired token).
    pub resumes_refused: AtomicU64,
    /// Sessions restored from the state file at start (each then waits,
    /// dropped, for its client to resume).
    pub sessions_restored: AtomicU64,
    /// Spectators watching live rooms.
    pub spectators: AtomicI64,
    /// Rooms whose game panicked (each was closed, its players with 1011).
    pub room_panics: AtomicU64,
    /// Room recordings being written (`--record`).
    pub recordings_open: AtomicI64,
    /// Recording chunks (a second or so of one room each) written.
    pub record_chunks_written: AtomicU64,
    /// Compressed bytes of recordings written.
    pub record_bytes_written: AtomicU64,
    /// Recording chunks dropped because the writer was behind (the room
    /// never waits for it; its recording has a gap, and goes on from a
    /// keyframe).
    pub record_chunks_dropped: AtomicU64,
    /// Recording writes that failed (a full disk, say): the recording of
    /// that room stops, the room goes on.
    pub record_write_errors: AtomicU64,
    /// Connection ends, by initiator and [`CloseCode`] (index in
    /// `CloseCode::ALL`; the extra last slot counts codes we do not use).
    pub closes: [[AtomicU64; CloseCode::ALL.len() + 1]; 2],
    /// Connections that ended without any close frame (dropped sockets,
    /// stuck writers).
    pub closes_abnormal: AtomicU64,
}

impl Metrics {
    /// Counts a connection that ended with a close frame.
    pub fn record_close(&self, initiator: CloseInitiator, code: u16) {
        let slot = CloseCode::ALL
            .iter()
            .position(|c| c.code() == code)
            .unwrap_or(CloseCode::ALL.len());
        self.closes[initiator as usize][slot].fetch_add(1, Relaxed);
    }

    /// Connection ends with this code and initiator so far.
    pub fn closes_with(&self, initiator: CloseInitiator, code: CloseCode) -> u64 {
        let slot = CloseCode::ALL.iter().position(|c| *c == code).unwrap_or(0);
        self.closes[initiator as usize][slot].load(Relaxed)
    }

    /// Counts a dropped input.
    pub fn input_dropped(&self, reason: DropReason) {
        self.inputs_dropped[reason as usize].fetch_add(1, Relaxed);
    }

    /// Renders everything in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let v = v.load(Relaxed);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        gauge(
            &mut out,
            "game_connections_open",
            "WebSocket connections currently open.",
            self.connections_open.load(Relaxed),
        );
        counter(
            &mut out,
            "game_connections_total",
            "WebSocket connections accepted.",
            &self.connections_total,
        );
        counter(
            &mut out,
            "game_connections_refused_total",
            "Upgrades refused at the connection limit.",
            &self.connections_refused,
        );
        counter(
            &mut out,
            "game_connections_refused_per_ip_total",
            "TCP connections closed at accept: their address was at its cap.",
            &self.connections_refused_per_ip,
        );
        counter(
            &mut out,
            "game_origins_refused_total",
            "Upgrades refused with 403 for a disallowed Origin.",
            &self.origins_refused,
        );
        gauge(
            &mut out,
            "game_players",
            "Players in all rooms, including dropped ones in their grace period.",
            self.players.load(Relaxed),
        );
        gauge(
            &mut out,
            "game_players_dropped",
            "Players whose connection dropped, waiting to resume.",
            self.players_dropped.load(Relaxed),
        );
        gauge(
            &mut out,
            "game_rooms",
            "Rooms open.",
            self.rooms.load(Relaxed),
        );
        counter(
            &mut out,
            "game_rooms_opened_total",
            "Rooms opened.",
            &self.rooms_opened,
        );
        let _ = writeln!(
            out,
            "# HELP game_joins_total Placement requests of new players, by kind.\n# TYPE game_joins_total counter"
        );
        for (kind, v) in ["quick", "create", "id", "code"].iter().zip(&self.joins) {
            let _ = writeln!(
                out,
                "game_joins_total{{request=\"{kind}\"}} {}",
                v.load(Relaxed)
            );
        }
        counter(
            &mut out,
            "game_code_attempts_refused_total",
            "Invite-code lookups refused by the per-address attempt limit.",
            &self.code_attempts_refused,
        );
        self.tick_duration.render(
            &mut out,
            "game_tick_duration_seconds",
            "Time to run one tick: step, states, hand-off.",
        );
        self.tick_lateness.render(
            &mut out,
            "game_tick_lateness_seconds",
            "How late each tick started against its schedule.",
        );
        counter(
            &mut out,
            "game_tick_overruns_total",
            "Ticks that took longer than the tick period.",
            &self.tick_overruns,
        );
        counter(
            &mut out,
            "game_ticks_skipped_total",
            "Simulation steps dropped because a room fell too far behind.",
            &self.ticks_skipped,
        );
        counter(
            &mut out,
            "game_messages_in_total",
            "WebSocket data messages received.",
            &self.messages_in,
        );
        counter(
            &mut out,
            "game_bytes_in_total",
            "Payload bytes received.",
            &self.bytes_in,
        );
        counter(
            &mut out,
            "game_messages_out_total",
            "WebSocket data messages sent.",
            &self.messages_out,
        );
        counter(
            &mut out,
            "game_bytes_out_total",
            "Payload bytes sent.",
            &self.bytes_out,
        );
        counter(
            &mut out,
            "game_states_planned_total",
            "States rooms put in mailboxes to send.",
            &self.states_planned,
        );
        counter(
            &mut out,
            "game_states_skipped_total",
            "States replaced before a slow client took them.",
            &self.states_skipped,
        );
        counter(
            &mut out,
            "game_states_written_total",
            "States written to connections.",
            &self.states_written,
        );
        gauge(
            &mut out,
            "game_rooms_degraded",
            "Rooms sending states less often than configured, under overload.",
            self.rooms_degraded.load(Relaxed),
        );
        counter(
            &mut out,
            "game_send_rate_lowered_total",
            "Times a room lowered its send rate under overload.",
            &self.send_rate_lowered,
        );
        counter(
            &mut out,
            "game_send_rate_raised_total",
            "Times a room raised its send rate back after overload.",
            &self.send_rate_raised,
        );
        counter(
            &mut out,
            "game_states_unchanged_total",
            "States not sent because nothing in them changed.",
            &self.states_unchanged,
        );
        counter(
            &mut out,
            "game_events_sent_total",
            "Game events written to connections.",
            &self.events_sent,
        );
        counter(
            &mut out,
            "game_events_replayed_total",
            "Game events written again after a resume.",
            &self.events_replayed,
        );
        let _ = writeln!(
            out,
            "# HELP game_inputs_dropped_total Inputs dropped.\n# TYPE game_inputs_dropped_total counter"
        );
        for (reason, v) in ["rate_limit", "queue_full"]
            .iter()
            .zip(&self.inputs_dropped)
        {
            let _ = writeln!(
                out,
                "game_inputs_dropped_total{{reason=\"{reason}\"}} {}",
                v.load(Relaxed)
            );
        }
        counter(
            &mut out,
            "game_pings_dropped_total",
            "Pings dropped over the ping rate limit.",
            &self.pings_dropped,
        );
        counter(
            &mut out,
            "game_resumes_total",
            "Sessions resumed with a valid token.",
            &self.resumes,
        );
        counter(
            &mut out,
            "game_resumes_refused_total",
            "Resume attempts refused: unknown or expired token.",
            &self.resumes_refused,
        );
        counter(
            &mut out,
            "game_sessions_restored_total",
            "Sessions restored from the state file at start.",
            &self.sessions_restored,
        );
        gauge(
            &mut out,
            "game_spectators",
            "Spectators watching live rooms (not players: they take no seat).",
            self.spectators.load(Relaxed),
        );
        counter(
            &mut out,
            "game_room_panics_total",
            "Rooms closed because their game panicked.",
            &self.room_panics,
        );
        gauge(
            &mut out,
            "game_recordings_open",
            "Room recordings being written.",
            self.recordings_open.load(Relaxed),
        );
        counter(
            &mut out,
            "game_record_chunks_written_total",
            "Recording chunks written.",
            &self.record_chunks_written,
        );
        counter(
            &mut out,
            "game_record_bytes_written_total",
            "Compressed bytes of room recordings written.",
            &self.record_bytes_written,
        );
        counter(
            &mut out,
            "game_record_chunks_dropped_total",
            "Recording chunks dropped because the writer was behind (the room never waits).",
            &self.record_chunks_dropped,
        );
        counter(
            &mut out,
            "game_record_write_errors_total",
            "Recording writes that failed; that room's recording stopped.",
            &self.record_write_errors,
        );
        let _ = writeln!(
            out,
            "# HELP game_closes_total Connection ends by initiator and close code.\n# TYPE game_closes_total counter"
        );
        for (initiator, row) in ["server", "client"].iter().zip(&self.closes) {
            for (i, v) in row.iter().enumerate() {
                let v = v.load(Relaxed);
                if v == 0 {
                    continue;
                }
                let (code, reason) = match CloseCode::ALL.get(i) {
                    Some(c) => (c.code().to_string(), c.name()),
                    None => ("other".to_owned(), "other"),
                };
                let _ = writeln!(
                    out,
                    "game_closes_total{{initiator=\"{initiator}\",code=\"{code}\",reason=\"{reason}\"}} {v}"
                );
            }
        }
        let _ = writeln!(
            out,
            "game_closes_total{{initiator=\"none\",code=\"1006\",reason=\"abnormal\"}} {}",
            self.closes_abnormal.load(Relaxed)
        );
        if let Some(p) = process_stats() {
            gauge(
                &mut out,
                "process_resident_memory_bytes",
                "Resident set size.",
                p.rss_bytes as i64,
            );
            let _ = writeln!(
                out,
                "# HELP process_cpu_seconds_total User and system CPU time.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}",
                p.cpu_seconds
            );
        }
        out
    }
}

/// Resource use of this process, read from `/proc` (Linux only).
#[derive(Debug, Clone, Copy)]
pub struct ProcessStats {
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// User plus system CPU time in seconds.
    pub cpu_seconds: f64,
}

/// Reads [`ProcessStats`] for this process; `None` where `/proc` is absent.
pub fn process_stats() -> Option<ProcessStats> {
    // Both files are in pages and clock ticks; Linux has used 4 KiB pages and
    // 100 ticks per second on every platform we run on, and reading the real
    // values would need libc calls for no practical gain.
    const PAGE: u64 = 4096;
    const TICKS_PER_SEC: f64 = 100.0;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let rss_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(ProcessStats {
        rss_bytes: rss_pages * PAGE,
        cpu_seconds: (utime + stime) / TICKS_PER_SEC,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_in_the_rendering() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(5));
        let mut out = String::new();
        h.render(&mut out, "t", "help");
        assert!(out.contains("t_bucket{le=\"0.0001\"} 1\n"), "{out}");
        assert!(out.contains("t_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("t_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("t_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("t_count 3\n"), "{out}");
        assert!(out.contains("t_sum 5.00305\n"), "{out}");
    }

    #[test]
    fn closes_are_labelled_by_code_and_reason() {
        let m = Metrics::default();
        m.record_close(CloseInitiator::Server, 4004);
        m.record_close(CloseInitiator::Client, 1000);
        m.record_close(CloseInitiator::Client, 3999);
        let text = m.render();
        assert!(text.contains(
            "game_closes_total{initiator=\"server\",code=\"4004\",reason=\"too_slow\"} 1"
        ));
        assert!(
            text.contains(
                "game_closes_total{initiator=\"client\",code=\"1000\",reason=\"normal\"} 1"
            )
        );
        assert!(
            text.contains(
                "game_closes_total{initiator=\"client\",code=\"other\",reason=\"other\"} 1"
            )
        );
        assert_eq!(m.closes_with(CloseInitiator::Server, CloseCode::TooSlow), 1);
    }

    #[test]
    fn process_stats_are_read_on_linux() {
        let p = process_stats().expect("/proc is available on Linux");
        assert!(p.rss_bytes > 1 << 20);
    }
}

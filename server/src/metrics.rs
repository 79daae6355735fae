//! Counters, gauges and histograms, rendered as Prometheus text at
//! `/metrics`.
//!
//! Everything is a relaxed atomic updated in place by the task that observes
//! it (connection tasks, room tasks); rendering reads them without stopping
//! anyone. Not for: per-player detail (that would be a cardinality bomb) or
//! anything the game itself needs to run.

use crate::cpu::CpuWait;
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

    /// Writes the cumulative buckets, the sum (in seconds) and the count.
    fn samples(&self, out: &mut String, name: &str) {
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
    /// How long the server's threads wait for a CPU (sampled while the
    /// server runs).
    pub cpu_wait: CpuWait,
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

    /// Renders everything in the Prometheus text exposition format 0.0.4:
    /// the families of `FAMILIES` in order, then the process's own.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        for family in FAMILIES {
            family.render(self, &mut out);
        }
        let name = "game_cpu_wait_seconds_total";
        header(
            &mut out,
            name,
            "Time the server's threads spent runnable, waiting for a CPU.",
            "counter",
        );
        sample(&mut out, name, self.cpu_wait.waited_seconds());
        let name = "game_cpu_wait_ratio";
        header(
            &mut out,
            name,
            "Time the server's threads spent waiting for a CPU over the last second, per CPU it may use.",
            "gauge",
        );
        sample(&mut out, name, self.cpu_wait.ratio());
        if let Some(p) = process_stats() {
            p.render(&mut out);
        }
        out
    }
}

/// Where one family's samples come from in [`Metrics`].
enum Samples {
    /// One gauge sample.
    Gauge(fn(&Metrics) -> &AtomicI64),
    /// One counter sample.
    Counter(fn(&Metrics) -> &AtomicU64),
    /// One counter sample per value of `label`, `values[i]` counted in the
    /// `i`th slot of the array.
    Labelled {
        label: &'static str,
        values: &'static [&'static str],
        slots: fn(&Metrics) -> &[AtomicU64],
    },
    /// A histogram over [`TICK_BUCKETS`].
    Histogram(fn(&Metrics) -> &Histogram),
    /// [`Metrics::closes`] by initiator, code and reason (only the codes
    /// seen, so that the page does not list every code twice at zero), and
    /// [`Metrics::closes_abnormal`] as initiator `none`, code 1006.
    Closes,
}

/// One metric family of the page: its name, its help text and its samples.
struct Family {
    /// The family's name, with the unit and `_total` suffixes Prometheus
    /// expects.
    name: &'static str,
    /// The `# HELP` text: one line.
    help: &'static str,
    /// Where its samples come from.
    samples: Samples,
}

/// A family of one gauge sample.
const fn gauge(name: &'static str, of: fn(&Metrics) -> &AtomicI64, help: &'static str) -> Family {
    Family {
        name,
        help,
        samples: Samples::Gauge(of),
    }
}

/// A family of one counter sample.
const fn counter(name: &'static str, of: fn(&Metrics) -> &AtomicU64, help: &'static str) -> Family {
    Family {
        name,
        help,
        samples: Samples::Counter(of),
    }
}

/// A family of one counter sample per value of `label`.
const fn labelled(
    name: &'static str,
    label: &'static str,
    values: &'static [&'static str],
    slots: fn(&Metrics) -> &[AtomicU64],
    help: &'static str,
) -> Family {
    Family {
        name,
        help,
        samples: Samples::Labelled {
            label,
            values,
            slots,
        },
    }
}

/// A family of one histogram.
const fn histogram(
    name: &'static str,
    of: fn(&Metrics) -> &Histogram,
    help: &'static str,
) -> Family {
    Family {
        name,
        help,
        samples: Samples::Histogram(of),
    }
}

/// Every family of `/metrics` but the process's, in the order rendered
/// (dashboards do not care about the order, but a diff of two scrapes
/// reads better when it never changes). Laid out by hand, two lines a
/// family, where rustfmt would give each argument a line of its own.
#[rustfmt::skip]
const FAMILIES: &[Family] = &[
    gauge("game_connections_open", |m| &m.connections_open,
        "WebSocket connections currently open."),
    counter("game_connections_total", |m| &m.connections_total,
        "WebSocket connections accepted."),
    counter("game_connections_refused_total", |m| &m.connections_refused,
        "Upgrades refused at the connection limit."),
    counter("game_connections_refused_per_ip_total", |m| &m.connections_refused_per_ip,
        "TCP connections closed at accept: their address was at its cap."),
    counter("game_origins_refused_total", |m| &m.origins_refused,
        "Upgrades refused with 403 for a disallowed Origin."),
    gauge("game_players", |m| &m.players,
        "Players in all rooms, including dropped ones in their grace period."),
    gauge("game_players_dropped", |m| &m.players_dropped,
        "Players whose connection dropped, waiting to resume."),
    gauge("game_rooms", |m| &m.rooms,
        "Rooms open."),
    counter("game_rooms_opened_total", |m| &m.rooms_opened,
        "Rooms opened."),
    labelled("game_joins_total", "request", &["quick", "create", "id", "code"], |m| &m.joins,
        "Placement requests of new players, by kind."),
    counter("game_code_attempts_refused_total", |m| &m.code_attempts_refused,
        "Invite-code lookups refused by the per-address attempt limit."),
    histogram("game_tick_duration_seconds", |m| &m.tick_duration,
        "Time to run one tick: step, states, hand-off."),
    histogram("game_tick_lateness_seconds", |m| &m.tick_lateness,
        "How late each tick started against its schedule."),
    counter("game_tick_overruns_total", |m| &m.tick_overruns,
        "Ticks that took longer than the tick period."),
    counter("game_ticks_skipped_total", |m| &m.ticks_skipped,
        "Simulation steps dropped because a room fell too far behind."),
    counter("game_messages_in_total", |m| &m.messages_in,
        "WebSocket data messages received."),
    counter("game_bytes_in_total", |m| &m.bytes_in,
        "Payload bytes received."),
    counter("game_messages_out_total", |m| &m.messages_out,
        "WebSocket data messages sent."),
    counter("game_bytes_out_total", |m| &m.bytes_out,
        "Payload bytes sent."),
    counter("game_states_planned_total", |m| &m.states_planned,
        "States rooms put in mailboxes to send."),
    counter("game_states_skipped_total", |m| &m.states_skipped,
        "States replaced before a slow client took them."),
    counter("game_states_written_total", |m| &m.states_written,
        "States written to connections."),
    gauge("game_rooms_degraded", |m| &m.rooms_degraded,
        "Rooms sending states less often than configured, under overload."),
    counter("game_send_rate_lowered_total", |m| &m.send_rate_lowered,
        "Times a room lowered its send rate under overload."),
    counter("game_send_rate_raised_total", |m| &m.send_rate_raised,
        "Times a room raised its send rate back after overload."),
    counter("game_states_unchanged_total", |m| &m.states_unchanged,
        "States not sent because nothing in them changed."),
    counter("game_events_sent_total", |m| &m.events_sent,
        "Game events written to connections."),
    counter("game_events_replayed_total", |m| &m.events_replayed,
        "Game events written again after a resume."),
    labelled("game_inputs_dropped_total", "reason", &["rate_limit", "queue_full"],
        |m| &m.inputs_dropped, "Inputs dropped."),
    counter("game_pings_dropped_total", |m| &m.pings_dropped,
        "Pings dropped over the ping rate limit."),
    counter("game_resumes_total", |m| &m.resumes,
        "Sessions resumed with a valid token."),
    counter("game_resumes_refused_total", |m| &m.resumes_refused,
        "Resume attempts refused: unknown or expired token."),
    counter("game_sessions_restored_total", |m| &m.sessions_restored,
        "Sessions restored from the state file at start."),
    gauge("game_spectators", |m| &m.spectators,
        "Spectators watching live rooms (not players: they take no seat)."),
    counter("game_room_panics_total", |m| &m.room_panics,
        "Rooms closed because their game panicked."),
    gauge("game_recordings_open", |m| &m.recordings_open,
        "Room recordings being written."),
    counter("game_record_chunks_written_total", |m| &m.record_chunks_written,
        "Recording chunks written."),
    counter("game_record_bytes_written_total", |m| &m.record_bytes_written,
        "Compressed bytes of room recordings written."),
    counter("game_record_chunks_dropped_total", |m| &m.record_chunks_dropped,
        "Recording chunks dropped because the writer was behind (the room never waits)."),
    counter("game_record_write_errors_total", |m| &m.record_write_errors,
        "Recording writes that failed; that room's recording stopped."),
    Family { name: "game_closes_total", samples: Samples::Closes,
        help: "Connection ends by initiator and close code." },
];

impl Family {
    /// Writes the family's HELP and TYPE lines and its samples.
    fn render(&self, m: &Metrics, out: &mut String) {
        let name = self.name;
        let kind = match self.samples {
            Samples::Gauge(_) => "gauge",
            Samples::Histogram(_) => "histogram",
            _ => "counter",
        };
        header(out, name, self.help, kind);
        match &self.samples {
            Samples::Gauge(of) => sample(out, name, of(m).load(Relaxed)),
            Samples::Counter(of) => sample(out, name, of(m).load(Relaxed)),
            Samples::Labelled {
                label,
                values,
                slots,
            } => {
                for (value, slot) in values.iter().zip(slots(m)) {
                    let v = slot.load(Relaxed);
                    let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {v}");
                }
            }
            Samples::Histogram(of) => of(m).samples(out, name),
            Samples::Closes => {
                for (initiator, row) in ["server", "client"].iter().zip(&m.closes) {
                    for (i, slot) in row.iter().enumerate() {
                        let v = slot.load(Relaxed);
                        if v == 0 {
                            continue;
                        }
                        let (code, reason) = match CloseCode::ALL.get(i) {
                            Some(c) => (c.code().to_string(), c.name()),
                            None => ("other".to_owned(), "other"),
                        };
                        let _ = writeln!(
                            out,
                            "{name}{{initiator=\"{initiator}\",code=\"{code}\",reason=\"{reason}\"}} {v}"
                        );
                    }
                }
                let v = m.closes_abnormal.load(Relaxed);
                let _ = writeln!(
                    out,
                    "{name}{{initiator=\"none\",code=\"1006\",reason=\"abnormal\"}} {v}"
                );
            }
        }
    }
}

/// Writes a family's `# HELP` and `# TYPE` lines.
fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Writes an unlabelled sample.
fn sample(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name} {value}");
}

/// Resource use of this process, read from `/proc` (Linux only).
#[derive(Debug, Clone, Copy)]
pub struct ProcessStats {
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// User plus system CPU time in seconds.
    pub cpu_seconds: f64,
}

impl ProcessStats {
    /// Writes the process's families, named as every Prometheus client
    /// library names them so that stock dashboards find them.
    fn render(&self, out: &mut String) {
        let name = "process_resident_memory_bytes";
        header(out, name, "Resident set size.", "gauge");
        sample(out, name, self.rss_bytes);
        let name = "process_cpu_seconds_total";
        header(out, name, "User and system CPU time.", "counter");
        sample(out, name, self.cpu_seconds);
    }
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
    use crate::testing::exposition::Exposition;

    /// Metrics with every field at a value of its own, so that a sample
    /// rendered from the wrong field shows.
    fn populated() -> Metrics {
        let m = Metrics::default();
        for (f, next) in FAMILIES.iter().zip(1i64..) {
            match f.samples {
                Samples::Gauge(of) => of(&m).store(next, Relaxed),
                Samples::Counter(of) => of(&m).store(next as u64 + 1000, Relaxed),
                Samples::Labelled { slots, .. } => {
                    for (i, slot) in slots(&m).iter().enumerate() {
                        slot.store(next as u64 * 10 + i as u64, Relaxed);
                    }
                }
                Samples::Histogram(of) => {
                    for _ in 0..next {
                        of(&m).observe(Duration::from_millis(next as u64));
                    }
                }
                Samples::Closes => {}
            }
        }
        m.record_close(CloseInitiator::Server, 4004);
        m.record_close(CloseInitiator::Client, 1000);
        m.closes_abnormal.store(7, Relaxed);
        m
    }

    #[test]
    fn every_family_is_declared_once_in_a_fixed_order_before_its_samples() {
        let text = populated().render();
        let page = Exposition::parse(&text);
        assert_eq!(
            page.families(),
            [
                "game_connections_open",
                "game_connections_total",
                "game_connections_refused_total",
                "game_connections_refused_per_ip_total",
                "game_origins_refused_total",
                "game_players",
                "game_players_dropped",
                "game_rooms",
                "game_rooms_opened_total",
                "game_joins_total",
                "game_code_attempts_refused_total",
                "game_tick_duration_seconds",
                "game_tick_lateness_seconds",
                "game_tick_overruns_total",
                "game_ticks_skipped_total",
                "game_messages_in_total",
                "game_bytes_in_total",
                "game_messages_out_total",
                "game_bytes_out_total",
                "game_states_planned_total",
                "game_states_skipped_total",
                "game_states_written_total",
                "game_rooms_degraded",
                "game_send_rate_lowered_total",
                "game_send_rate_raised_total",
                "game_states_unchanged_total",
                "game_events_sent_total",
                "game_events_replayed_total",
                "game_inputs_dropped_total",
                "game_pings_dropped_total",
                "game_resumes_total",
                "game_resumes_refused_total",
                "game_sessions_restored_total",
                "game_spectators",
                "game_room_panics_total",
                "game_recordings_open",
                "game_record_chunks_written_total",
                "game_record_bytes_written_total",
                "game_record_chunks_dropped_total",
                "game_record_write_errors_total",
                "game_closes_total",
                "game_cpu_wait_seconds_total",
                "game_cpu_wait_ratio",
                "process_resident_memory_bytes",
                "process_cpu_seconds_total",
            ]
        );
        // Each family: its HELP, then its TYPE, then only its own samples.
        let mut family = "";
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            if let Some(help) = line.strip_prefix("# HELP ") {
                family = help.split(' ').next().unwrap();
                let kind = page.kind(family).unwrap();
                assert_eq!(
                    lines.next(),
                    Some(format!("# TYPE {family} {kind}").as_str())
                );
                assert!(!page.help(family).unwrap().is_empty());
                continue;
            }
            let name = line.split(['{', ' ']).next().unwrap();
            let own = match page.kind(family) {
                Some("histogram") => ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(family)),
                _ => name == family,
            };
            assert!(own, "{line} is not a sample of {family}");
        }
        assert!(text.starts_with(
            "# HELP game_connections_open WebSocket connections currently open.\n\
             # TYPE game_connections_open gauge\n\
             game_connections_open 1\n\
             # HELP game_connections_total WebSocket connections accepted.\n\
             # TYPE game_connections_total counter\n\
             game_connections_total 1002\n"
        ));
    }

    #[test]
    fn every_sample_shows_its_own_field() {
        let m = populated();
        let page = Exposition::parse(&m.render());
        for f in FAMILIES {
            match f.samples {
                Samples::Gauge(of) => {
                    assert_eq!(page.get(f.name, &[]), Some(of(&m).load(Relaxed) as f64));
                }
                Samples::Counter(of) => {
                    assert_eq!(page.get(f.name, &[]), Some(of(&m).load(Relaxed) as f64));
                }
                Samples::Labelled {
                    label,
                    values,
                    slots,
                } => {
                    assert_eq!(values.len(), slots(&m).len(), "{}", f.name);
                    for (value, slot) in values.iter().zip(slots(&m)) {
                        let v = page.get(f.name, &[(label, value)]);
                        assert_eq!(v, Some(slot.load(Relaxed) as f64), "{}", f.name);
                    }
                }
                Samples::Histogram(of) => {
                    let count = page.get(&format!("{}_count", f.name), &[]);
                    assert_eq!(count, Some(of(&m).count() as f64));
                }
                Samples::Closes => {}
            }
        }
        assert_eq!(
            page.get(
                "game_closes_total",
                &[
                    ("initiator", "none"),
                    ("code", "1006"),
                    ("reason", "abnormal")
                ]
            ),
            Some(7.0)
        );
        assert!(page.get("process_resident_memory_bytes", &[]).unwrap() > 0.0);
    }

    #[test]
    fn histogram_buckets_are_cumulative_in_the_rendering() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(5));
        let mut out = String::new();
        h.samples(&mut out, "t");
        let page = Exposition::parse(&out);
        let bucket = |le| page.get("t_bucket", &[("le", le)]);
        assert_eq!(bucket("0.0001"), Some(1.0), "{out}");
        assert_eq!(bucket("0.005"), Some(2.0), "{out}");
        assert_eq!(bucket("1"), Some(2.0), "{out}");
        assert_eq!(bucket("+Inf"), Some(3.0), "{out}");
        assert_eq!(page.get("t_count", &[]), Some(3.0), "{out}");
        assert_eq!(page.get("t_sum", &[]), Some(5.00305), "{out}");
    }

    #[test]
    fn closes_are_labelled_by_code_and_reason() {
        let m = Metrics::default();
        m.record_close(CloseInitiator::Server, 4004);
        m.record_close(CloseInitiator::Client, 1000);
        m.record_close(CloseInitiator::Client, 3999);
        let page = Exposition::parse(&m.render());
        let closes = |initiator, code, reason| {
            page.get(
                "game_closes_total",
                &[("initiator", initiator), ("code", code), ("reason", reason)],
            )
        };
        assert_eq!(closes("server", "4004", "too_slow"), Some(1.0));
        assert_eq!(closes("client", "1000", "normal"), Some(1.0));
        assert_eq!(closes("client", "other", "other"), Some(1.0));
        assert_eq!(m.closes_with(CloseInitiator::Server, CloseCode::TooSlow), 1);
    }

    #[test]
    fn process_stats_are_read_on_linux() {
        let p = process_stats().expect("/proc is available on Linux");
        assert!(p.rss_bytes > 1 << 20);
    }
}

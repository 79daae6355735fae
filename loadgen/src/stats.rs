//! Measurements: latency histograms and counters, recorded per client and
//! merged without a global lock.
//!
//! Each simulated client keeps a [`Local`] batch (plain vectors and
//! integers, no synchronisation) and flushes it about once a second into
//! one of a few [`Shard`]s, chosen by client id, under that shard's mutex;
//! with thousands of clients and a handful of shards, a lock is taken a few
//! thousand times per second and almost never contended. The aggregator
//! swaps each shard's interval data out once a second, adds it to the run's
//! totals and writes interval logs. One HdrHistogram per metric per shard,
//! not per client: each is about 190 KB.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

/// Lowest recordable latency: 1 µs, the recording unit.
const LOWEST_US: u64 = 1;
/// Highest recordable latency: one hour. Anything longer is clamped; a
/// run that sees it is broken anyway.
const HIGHEST_US: u64 = 3_600_000_000;
/// Three significant digits: 0.1 % precision at every magnitude.
const SIGFIG: u8 = 3;

/// Samples a client batches before it flushes early (it also flushes every
/// second): bounds a client's memory when latencies pour in.
const LOCAL_BATCH: usize = 512;

/// How many latencies loadgen measures.
pub const METRICS: usize = 9;

/// The latencies loadgen measures, all in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// TCP connect + WebSocket upgrade + Hello→Welcome, for joins and
    /// resumes welcomed by the node first asked (every one, on a single
    /// server).
    Connect = 0,
    /// From a game message's *scheduled* send time to the first state that
    /// acknowledges it.
    InputAck = 1,
    /// App-level Ping→Pong round trip, from the ping's scheduled time.
    PingRtt = 2,
    /// |inter-arrival time of states of consecutive ticks − tick period|.
    StateJitter = 3,
    /// From a drop being noticed to the next successful Welcome.
    Reconnect = 4,
    /// From a game message's scheduled send time to when loadgen got round
    /// to writing it, for the messages that were acknowledged: loadgen's
    /// own lag, which is part of `InputAck`. A busy loadgen shows here, not
    /// the server.
    SendLag = 5,
    /// As [`Metric::Connect`], for joins that a node of a cluster
    /// redirected to another: from the first connect to the `Welcome` on
    /// the node the redirect named. Its difference from `Connect` is the
    /// cost of a redirect.
    ConnectRedirected = 6,
    /// For a new player (not a resume) welcomed by the node first asked:
    /// from the first connect to the first `State`.
    JoinFirstState = 7,
    /// As [`Metric::JoinFirstState`], for new players a cluster node
    /// redirected: their difference is a redirect's cost to a player, the
    /// extra wait for the first snapshot.
    JoinFirstStateRedirected = 8,
}

impl Metric {
    /// All metrics, in report order.
    pub const ALL: [Metric; METRICS] = [
        Metric::Connect,
        Metric::InputAck,
        Metric::PingRtt,
        Metric::StateJitter,
        Metric::Reconnect,
        Metric::SendLag,
        Metric::ConnectRedirected,
        Metric::JoinFirstState,
        Metric::JoinFirstStateRedirected,
    ];

    /// Name in reports, assertions and log file names.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::Connect => "connect",
            Metric::InputAck => "input_ack",
            Metric::PingRtt => "ping_rtt",
            Metric::StateJitter => "state_jitter",
            Metric::Reconnect => "reconnect",
            Metric::SendLag => "send_lag",
            Metric::ConnectRedirected => "connect_redirected",
            Metric::JoinFirstState => "join_first_state",
            Metric::JoinFirstStateRedirected => "join_first_state_redirected",
        }
    }

    /// Whether only a cluster measures it (a report of one server leaves
    /// it out of its table while it is empty).
    pub const fn cluster_only(self) -> bool {
        matches!(
            self,
            Metric::ConnectRedirected | Metric::JoinFirstStateRedirected
        )
    }
}

/// A histogram with loadgen's bounds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG).expect("static bounds are valid")
}

/// Event counts. Every field is summed when runs or shards merge. A field
/// missing from a report (one written before the field existed) reads as 0.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Successful handshakes (first connects and reconnects).
    pub connects: u64,
    /// Game messages (inputs) written to the socket.
    pub inputs_sent: u64,
    /// Inputs acknowledged by a state.
    pub inputs_acked: u64,
    /// Inputs outstanding when their connection dropped (never acked).
    pub inputs_lost: u64,
    /// Inputs outstanding when the run ended (in flight).
    pub inputs_in_flight_at_end: u64,
    /// States received.
    pub states: u64,
    /// States that came after one or more ticks without a state: skipped
    /// for a slow reader (latest wins), or unchanged in a game that skips
    /// unchanged states. Every other state but a connection's first is
    /// one tick after the last, and gives a jitter sample.
    pub state_gaps: u64,
    /// Events received (each exactly once, in order, or an error is
    /// counted).
    pub events: u64,
    /// Messages received.
    pub msgs_in: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Messages sent.
    pub msgs_out: u64,
    /// Writes to the socket that carried them: one a message, but under
    /// `--input-batching per-state` the inputs and pings due within one
    /// state interval share one.
    pub writes_out: u64,
    /// Payload bytes sent.
    pub bytes_out: u64,
    /// Pings sent.
    pub pings: u64,
    /// Pongs received.
    pub pongs: u64,
    /// Connections cut on purpose by `--chaos-drop-rate`.
    pub drops: u64,
    /// Connection attempts after a session was lost.
    pub reconnect_attempts: u64,
    /// Reconnect attempts that failed (server down, refused); retried.
    pub reconnect_failures: u64,
    /// Resumes that got the same player back with its progress (the bot's
    /// number that must never go down, the arena's score) intact.
    pub resumes_ok: u64,
    /// Resumes refused (token unknown or expired): the client rejoined as a
    /// new player.
    pub resumes_failed: u64,
    /// Resumes that got the player back with less progress than it had.
    pub resumes_lost_state: u64,
    /// Joins as a new player after a failed resume.
    pub rejoins: u64,
    /// Closes by the server going away (1001) or restarting (1012).
    pub server_restarts_seen: u64,
    /// Redirects followed by joins that a node of a cluster sent on to
    /// another and that ended in a `Welcome`.
    pub redirects: u64,
    /// Sessions given up because their home node (of a cluster, other than
    /// the entry URL's) was gone: resuming there failed
    /// [`crate::player::HOME_ATTEMPTS`] times in a row without an answer,
    /// and the player joined again as a new one through the entry URL.
    pub home_lost: u64,
    /// Closes with 4020 (the cluster's room directory was unreachable):
    /// the player joined again after a back-off. Not errors: this is what
    /// a node does while Redis is down.
    pub directory_unavailable: u64,
    /// Closes with 4021 (a seat ticket was unknown or expired): the player
    /// joined again after a back-off. Not errors: a ticket can outlive the
    /// node or the place it was for.
    pub invalid_tickets: u64,
}

impl Counters {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counters) {
        macro_rules! sum {
            ($($f:ident),*) => { $( self.$f += other.$f; )* };
        }
        sum!(
            connects,
            inputs_sent,
            inputs_acked,
            inputs_lost,
            inputs_in_flight_at_end,
            states,
            state_gaps,
            events,
            msgs_in,
            bytes_in,
            msgs_out,
            writes_out,
            bytes_out,
            pings,
            pongs,
            drops,
            reconnect_attempts,
            reconnect_failures,
            resumes_ok,
            resumes_failed,
            resumes_lost_state,
            rejoins,
            server_restarts_seen,
            redirects,
            home_lost,
            directory_unavailable,
            invalid_tickets
        );
    }
}

/// One client's unflushed measurements.
#[derive(Default)]
pub struct Local {
    /// Latency samples in µs, by metric.
    samples: Vec<(Metric, u64)>,
    /// Counts since the last flush.
    pub counters: Counters,
    /// Errors since the last flush, by kind.
    errors: Vec<String>,
    /// The URL of the node of each `Welcome` since the last flush.
    welcomes: Vec<Arc<str>>,
}

impl Local {
    /// Records a latency sample (µs). Returns true when the batch is full
    /// and should be flushed.
    #[inline]
    pub fn record(&mut self, metric: Metric, micros: u64) -> bool {
        self.samples.push((metric, micros.max(LOWEST_US)));
        self.samples.len() >= LOCAL_BATCH
    }

    /// Records an error of `kind`.
    pub fn error(&mut self, kind: impl Into<String>) {
        self.errors.push(kind.into());
    }

    /// Records a `Welcome` from the node at `url`.
    pub fn welcomed(&mut self, url: Arc<str>) {
        self.welcomes.push(url);
    }
}

/// Adds `n` to `map[key]`, allocating the key only the first time.
fn count_in(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    match map.get_mut(key) {
        Some(v) => *v += n,
        None => {
            map.insert(key.to_owned(), n);
        }
    }
}

/// The interval data of one shard.
pub struct Shard {
    /// Histograms since the aggregator last collected, by [`Metric`].
    pub hist: [Histogram<u64>; METRICS],
    /// Counters since the last collection.
    pub counters: Counters,
    /// Errors since the last collection, by kind.
    pub errors: BTreeMap<String, u64>,
    /// `Welcome`s since the last collection, by node URL.
    pub welcomes: BTreeMap<String, u64>,
}

impl Shard {
    fn new() -> Self {
        Self {
            hist: std::array::from_fn(|_| new_histogram()),
            counters: Counters::default(),
            errors: BTreeMap::new(),
            welcomes: BTreeMap::new(),
        }
    }
}

/// Shared measurement state of a run.
pub struct Stats {
    /// Sharded interval data.
    shards: Vec<Mutex<Shard>>,
    /// Clients connected right now.
    pub connected: AtomicUsize,
}

impl Stats {
    /// Stats with `shards` shards.
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(Shard::new()))
                .collect(),
            connected: AtomicUsize::new(0),
        }
    }

    /// Moves a client's batch into its shard and empties the batch.
    pub fn flush(&self, client: usize, local: &mut Local) {
        let mut shard = self.shards[client % self.shards.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (metric, v) in local.samples.drain(..) {
            shard.hist[metric as usize].saturating_record(v.min(HIGHEST_US));
        }
        shard.counters.add(&local.counters);
        local.counters = Counters::default();
        for kind in local.errors.drain(..) {
            *shard.errors.entry(kind).or_default() += 1;
        }
        for url in local.welcomes.drain(..) {
            count_in(&mut shard.welcomes, &url, 1);
        }
    }

    /// Takes every shard's interval data, leaving them empty.
    pub fn collect(&self, into: &mut Interval) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (total, h) in into.hist.iter_mut().zip(shard.hist.iter_mut()) {
                total.add(&*h).expect("histograms share bounds");
                h.reset();
            }
            into.counters.add(&shard.counters);
            shard.counters = Counters::default();
            for (kind, n) in std::mem::take(&mut shard.errors) {
                *into.errors.entry(kind).or_default() += n;
            }
            for (url, n) in std::mem::take(&mut shard.welcomes) {
                *into.welcomes.entry(url).or_default() += n;
            }
        }
    }
}

/// Data of one collection interval, or of a whole run.
pub struct Interval {
    /// Histograms by [`Metric`].
    pub hist: [Histogram<u64>; METRICS],
    /// Counters.
    pub counters: Counters,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// `Welcome`s by node URL.
    pub welcomes: BTreeMap<String, u64>,
}

impl Interval {
    /// An empty interval.
    pub fn new() -> Self {
        Self {
            hist: std::array::from_fn(|_| new_histogram()),
            counters: Counters::default(),
            errors: BTreeMap::new(),
            welcomes: BTreeMap::new(),
        }
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Interval) {
        for (a, b) in self.hist.iter_mut().zip(&other.hist) {
            a.add(b).expect("histograms share bounds");
        }
        self.counters.add(&other.counters);
        for (kind, n) in &other.errors {
            count_in(&mut self.errors, kind, *n);
        }
        for (url, n) in &other.welcomes {
            count_in(&mut self.welcomes, url, *n);
        }
    }

    /// Empties `self`.
    pub fn clear(&mut self) {
        for h in &mut self.hist {
            h.reset();
        }
        self.counters = Counters::default();
        self.errors.clear();
        self.welcomes.clear();
    }

    /// Total errors.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

impl Default for Interval {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_from_many_clients_add_up_in_the_collection() {
        let stats = Stats::new(3);
        for client in 0..10 {
            let mut local = Local::default();
            for v in 1..=100 {
                local.record(Metric::InputAck, v * 10);
            }
            local.counters.inputs_sent = 100;
            local.error("close_4004");
            let node: Arc<str> = if client % 2 == 0 {
                "ws://a/ws"
            } else {
                "ws://b/ws"
            }
            .into();
            local.welcomed(node);
            stats.flush(client, &mut local);
            assert!(local.samples.is_empty());
        }
        let mut total = Interval::new();
        stats.collect(&mut total);
        let h = &total.hist[Metric::InputAck as usize];
        assert_eq!(h.len(), 1000);
        assert_eq!(h.value_at_quantile(0.5), 500);
        assert_eq!(total.counters.inputs_sent, 1000);
        assert_eq!(total.errors["close_4004"], 10);
        assert_eq!(total.welcomes["ws://a/ws"], 5);
        assert_eq!(total.welcomes["ws://b/ws"], 5);
        let mut again = Interval::new();
        stats.collect(&mut again);
        assert_eq!(
            again.hist[Metric::InputAck as usize].len(),
            0,
            "collection empties shards"
        );
    }

    #[test]
    fn a_full_batch_asks_for_a_flush() {
        let mut local = Local::default();
        let full = (0..LOCAL_BATCH)
            .map(|_| local.record(Metric::PingRtt, 5))
            .last();
        assert_eq!(full, Some(true));
    }
}

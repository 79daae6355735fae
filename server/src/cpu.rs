//! How long this process's threads wait for a CPU: the scheduler's
//! run-queue delay, read once a second from Linux's per-thread
//! `/proc/self/task/*/schedstat`.
//!
//! A server that shares its machine (with its own load generator in a
//! benchmark, with neighbours on a crowded host) can fall behind without
//! being busy: its ticks and writes are ready, but the CPU is running
//! someone else. Tick lateness cannot tell that apart from a server busy
//! with its own players (on a core of its own, it waits for no one); the
//! run-queue delay can. The time waited per second, as a share of the CPUs
//! the process may use, is what the rooms' send-rate policy reads
//! (`room::send_rate`), together with its ticks falling behind (a high
//! wait alone also comes from threads taking turns on a busy machine while
//! the rooms keep their schedule): sending less when the machine has no
//! CPU to spare frees some for whoever shares it, and shortens the queue
//! the server's own ticks wait in.
//!
//! Not the share of the threads' own demand spent waiting: on a virtual
//! machine every wake-up from idle waits tens of microseconds, so a lightly
//! loaded server that wakes often "waits" a third of its small demand
//! (measured: 0.055 s a second against 0.10 s run, 200 players). Per CPU of
//! capacity that is 0.03, against 0.25–0.5 when the machine is oversold.
//!
//! Not for: CPU accounting (that is `process_cpu_seconds_total`) or
//! per-room figures (a worker thread runs many rooms). Where `schedstat` is
//! absent (not Linux, or a kernel without `CONFIG_SCHED_INFO`) the ratio
//! stays 0 and the policy works from its other signals alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How often the threads are sampled: the rooms judge their load over a
/// second, so a fresher figure would not be read any sooner.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The CPU wait of the last sample, for the rooms to read, and the total
/// time waited, for `/metrics`.
#[derive(Debug, Default)]
pub struct CpuWait {
    /// [`CpuWait::ratio`] over the last sample, in millionths (an atomic
    /// float).
    ratio_ppm: AtomicU32,
    /// Nanoseconds the threads waited for a CPU since sampling began.
    waited_ns: AtomicU64,
}

impl CpuWait {
    /// Time this process's threads spent runnable but waiting for a CPU
    /// over the last sample, as a share of the CPU time the process may
    /// use in that span (wall time × the CPUs it may run on): 0.25 means
    /// the threads together waited a quarter of it.
    pub fn ratio(&self) -> f64 {
        f64::from(self.ratio_ppm.load(Relaxed)) / 1e6
    }

    /// Seconds this process's threads waited for a CPU since sampling
    /// began.
    pub fn waited_seconds(&self) -> f64 {
        self.waited_ns.load(Relaxed) as f64 / 1e9
    }

    /// Sets the ratio, as a sample (or a test) measured it; clamped to
    /// 0..=1.
    pub fn set_ratio(&self, ratio: f64) {
        self.ratio_ppm
            .store((ratio.clamp(0.0, 1.0) * 1e6) as u32, Relaxed);
    }

    /// Samples the threads every [`SAMPLE_EVERY`] until the task is
    /// aborted (the server does so at shutdown).
    pub async fn sample_forever(&self) {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut sampler = Sampler::default();
        if sampler.sample(read_threads()).is_none() {
            tracing::debug!("no per-thread schedstat: rooms judge load without the CPU wait");
            return;
        }
        let mut every = tokio::time::interval(SAMPLE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        let mut last = Instant::now();
        loop {
            every.tick().await;
            let now = Instant::now();
            let span = now - last;
            last = now;
            if let Some(waited) = sampler.sample(read_threads()) {
                self.set_ratio(ratio(waited, span, cpus));
                self.waited_ns.fetch_add(waited, Relaxed);
            }
        }
    }
}

/// `waited_ns` as a share of the CPU time `cpus` CPUs give in `span`.
pub fn ratio(waited_ns: u64, span: Duration, cpus: usize) -> f64 {
    let capacity = span.as_nanos() as f64 * cpus.max(1) as f64;
    if capacity == 0.0 {
        0.0
    } else {
        waited_ns as f64 / capacity
    }
}

/// Each thread's run-queue wait at the last sample, by thread id, so that
/// a thread that came or went between two samples counts only for the
/// time it was seen.
#[derive(Debug, Default)]
pub struct Sampler {
    /// Nanoseconds each thread had waited at the last sample.
    last: HashMap<u32, u64>,
}

impl Sampler {
    /// Takes a sample of `(thread id, ran ns, waited ns)` and returns the
    /// nanoseconds waited since the last one; `None` when the threads
    /// could not be read. The first sample is the base and returns 0.
    pub fn sample(&mut self, threads: Option<Vec<(u32, u64, u64)>>) -> Option<u64> {
        let threads = threads?;
        let first = self.last.is_empty();
        let mut waited_since = 0;
        let mut now = HashMap::with_capacity(threads.len());
        for (tid, _, waited) in threads {
            // A thread new since the last sample started during it: all of
            // its wait falls in this one.
            let before = self.last.get(&tid).copied().unwrap_or(0);
            waited_since += waited.saturating_sub(before);
            now.insert(tid, waited);
        }
        self.last = now;
        Some(if first { 0 } else { waited_since })
    }
}

/// Parses a `schedstat` line: nanoseconds run, nanoseconds waited in a run
/// queue, time slices run.
pub fn parse_schedstat(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    let ran = fields.next()?.parse().ok()?;
    let waited = fields.next()?.parse().ok()?;
    Some((ran, waited))
}

/// `(thread id, ran ns, waited ns)` for each thread of this process;
/// `None` where `/proc/self/task` or `schedstat` cannot be read.
pub fn read_threads() -> Option<Vec<(u32, u64, u64)>> {
    let mut threads = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let entry = entry.ok()?;
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // A thread that exited since the listing has no file any more.
        let Ok(line) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        let (ran, waited) = parse_schedstat(&line)?;
        threads.push((tid, ran, waited));
    }
    (!threads.is_empty()).then_some(threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_lines_parse_and_garbage_does_not() {
        assert_eq!(parse_schedstat("76053 55622 2\n"), Some((76_053, 55_622)));
        assert_eq!(parse_schedstat("76053\n"), None);
        assert_eq!(parse_schedstat("x 1 2"), None);
    }

    #[test]
    fn waits_follow_each_thread_and_its_arrival_and_exit() {
        let mut s = Sampler::default();
        assert_eq!(s.sample(None), None);
        let first = s.sample(Some(vec![(1, 1_000, 100), (2, 5_000, 40)]));
        assert_eq!(first, Some(0), "the first sample is a base");
        // Thread 1 waited 100 more; thread 2 exited; thread 3 is new and
        // waited 50.
        let waited = s.sample(Some(vec![(1, 1_300, 200), (3, 100, 50)]));
        assert_eq!(waited, Some(150));
        // Thread 3 again, and a thread id reused after an exit (its count
        // restarted lower) counts nothing rather than wrapping.
        assert_eq!(s.sample(Some(vec![(1, 1_300, 20), (3, 200, 80)])), Some(30));
    }

    #[test]
    fn the_ratio_is_per_cpu_of_the_span() {
        let second = Duration::from_secs(1);
        assert_eq!(ratio(500_000_000, second, 2), 0.25);
        assert_eq!(ratio(500_000_000, second, 1), 0.5);
        assert_eq!(ratio(1, Duration::ZERO, 2), 0.0);
        assert_eq!(ratio(1, second, 0), 1e-9, "at least one CPU");
    }

    #[test]
    fn this_process_threads_can_be_read_where_linux_keeps_schedstat() {
        if !std::path::Path::new("/proc/self/schedstat").exists() {
            return;
        }
        // Run a little, then sleep: the kernel brings a thread's counts up
        // to date when it leaves the CPU.
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(5) {
            std::hint::spin_loop();
        }
        std::thread::sleep(Duration::from_millis(1));
        let threads = read_threads().expect("schedstat of every thread");
        let me = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let tid: u32 = me.split_whitespace().next().unwrap().parse().unwrap();
        let (_, ran, _) = threads.iter().find(|t| t.0 == tid).copied().unwrap();
        // Not all 5 ms: the hypervisor may have taken some of them.
        assert!(ran >= 1_000_000, "this thread ran {ran} ns of its 5 ms");
    }

    #[test]
    fn the_ratio_is_stored_clamped() {
        let w = CpuWait::default();
        w.set_ratio(0.25);
        assert!((w.ratio() - 0.25).abs() < 1e-6);
        w.set_ratio(3.0);
        assert_eq!(w.ratio(), 1.0);
    }
}

//! Rate limits: per-connection message limits, and the per-address limit
//! on invite-code attempts.
//!
//! A token bucket admits messages at a steady rate with a short burst;
//! what it refuses is dropped and counted. A connection that keeps
//! overrunning it by a wide margin is flooding, not lagging, and is closed.
//!
//! Invite codes are guessed, if at all, by trying many: [`CodeAttempts`]
//! gives each client address a small bucket of lookups (join by code, or
//! resolving a code for the lobby page) shared by all its connections.
//! Time is passed in, so the rules are tested without clocks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Invite-code lookups an address may make at once: a person mistyping a
/// code a few times, or a page reloading, never notices the limit.
pub const CODE_ATTEMPT_BURST: u32 = 10;

/// One more invite-code lookup per this long: 10 a minute, 14,400 a day
/// at the most per address. With 30^8 = 6.6 × 10^11 codes and 10,000
/// private rooms open, one address finds an open room by guessing with a
/// chance of about 2 × 10^-4 a day.
pub const CODE_ATTEMPT_PERIOD: Duration = Duration::from_secs(6);

/// Addresses tracked before idle ones are forgotten: bounds the memory a
/// spread-out attack can make the limiter hold.
const CODE_ATTEMPT_ADDRESSES: usize = 65_536;

/// Length of the window in which flooding is judged.
const WINDOW: Duration = Duration::from_secs(1);

/// Consecutive flooding windows after which a connection is closed: three
/// seconds tolerates a burst after a network stall (a client flushing
/// queued inputs) while ending a deliberate flood quickly.
const FLOOD_STRIKES: u32 = 3;

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit.
    Accept,
    /// Over the limit: drop it.
    Drop,
    /// Sustained flooding: close the connection.
    Kick,
}

/// A token bucket with flood detection.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    /// Tokens added per second.
    rate: f64,
    /// Most tokens the bucket holds.
    burst: f64,
    /// Tokens now.
    tokens: f64,
    /// When tokens were last added.
    refilled: Instant,
    /// Start of the current flood-judging window.
    window_start: Instant,
    /// Messages dropped in the current window.
    dropped_in_window: u32,
    /// Windows in a row in which more was dropped than admitted: the
    /// client sent more than twice the limit.
    strikes: u32,
}

impl RateLimiter {
    /// A limiter admitting `per_sec` messages per second with bursts of up
    /// to a quarter second's worth (at least 4), starting full.
    pub fn new(per_sec: u32, now: Instant) -> Self {
        let rate = f64::from(per_sec.max(1));
        let burst = (rate / 4.0).max(4.0);
        Self {
            rate,
            burst,
            tokens: burst,
            refilled: now,
            window_start: now,
            dropped_in_window: 0,
            strikes: 0,
        }
    }

    /// Judges one message arriving at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let since_window = now.saturating_duration_since(self.window_start);
        if since_window >= WINDOW {
            let flooded = f64::from(self.dropped_in_window) > self.rate;
            // A gap of more than one window means a quiet window passed.
            self.strikes = if flooded && since_window < 2 * WINDOW {
                self.strikes + 1
            } else {
                u32::from(flooded)
            };
            self.window_start = now;
            self.dropped_in_window = 0;
        }
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Accept;
        }
        self.dropped_in_window += 1;
        if self.strikes >= FLOOD_STRIKES {
            Verdict::Kick
        } else {
            Verdict::Drop
        }
    }

    /// Most messages that can arrive at once and be accepted.
    pub fn burst(&self) -> u32 {
        self.burst as u32
    }
}

/// Per-address buckets of invite-code lookups.
#[derive(Debug, Default)]
pub struct CodeAttempts {
    /// Tokens and when they were last counted, by address.
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl CodeAttempts {
    /// Takes one lookup from `ip`'s bucket at `now`; false when it is empty
    /// (the lookup must be refused).
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let burst = f64::from(CODE_ATTEMPT_BURST);
        let refill = |tokens: f64, since: Instant| {
            let earned = now.saturating_duration_since(since).as_secs_f64()
                / CODE_ATTEMPT_PERIOD.as_secs_f64();
            (tokens + earned).min(burst)
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= CODE_ATTEMPT_ADDRESSES && !buckets.contains_key(&ip) {
            // A full bucket is no different from a forgotten one.
            buckets.retain(|_, (tokens, since)| refill(*tokens, *since) < burst);
            if buckets.len() >= CODE_ATTEMPT_ADDRESSES {
                // Every tracked address is mid-attack: refuse newcomers
                // rather than forget an attacker's empty bucket.
                return false;
            }
        }
        let (tokens, since) = buckets.entry(ip).or_insert((burst, now));
        let available = refill(*tokens, *since);
        *since = now;
        if available < 1.0 {
            *tokens = available;
            return false;
        }
        *tokens = available - 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_attempts_allow_a_burst_then_one_per_period_per_address() {
        let limiter = CodeAttempts::default();
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for i in 0..CODE_ATTEMPT_BURST {
            assert!(limiter.allow(a, t0), "attempt {i} of the burst");
        }
        assert!(!limiter.allow(a, t0));
        assert!(limiter.allow(b, t0), "another address has its own bucket");
        assert!(!limiter.allow(a, t0 + CODE_ATTEMPT_PERIOD / 2));
        assert!(limiter.allow(a, t0 + CODE_ATTEMPT_PERIOD));
        assert!(!limiter.allow(a, t0 + CODE_ATTEMPT_PERIOD));
        // A day later the bucket is full again, and no fuller.
        let later = t0 + Duration::from_secs(86_400);
        for _ in 0..CODE_ATTEMPT_BURST {
            assert!(limiter.allow(a, later));
        }
        assert!(!limiter.allow(a, later));
    }

    /// Sends `per_sec` messages per second, evenly, for `secs` seconds from
    /// `t0`, and returns the verdict counts and the end time.
    fn drive(
        l: &mut RateLimiter,
        t0: Instant,
        per_sec: u32,
        secs: u32,
    ) -> (u32, u32, u32, Instant) {
        let (mut ok, mut dropped, mut kicked) = (0, 0, 0);
        let step = Duration::from_secs(1) / per_sec;
        let mut t = t0;
        for _ in 0..per_sec * secs {
            t += step;
            match l.check(t) {
                Verdict::Accept => ok += 1,
                Verdict::Drop => dropped += 1,
                Verdict::Kick => kicked += 1,
            }
        }
        (ok, dropped, kicked, t)
    }

    #[test]
    fn steady_traffic_at_the_limit_is_never_dropped() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(60, t0);
        let (ok, dropped, kicked, _) = drive(&mut l, t0, 60, 30);
        assert_eq!((ok, dropped, kicked), (1800, 0, 0));
    }

    #[test]
    fn a_burst_is_admitted_up_to_the_bucket_then_dropped() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(60, t0);
        let verdicts: Vec<_> = (0..20).map(|_| l.check(t0)).collect();
        assert_eq!(l.burst(), 15);
        assert!(verdicts[..15].iter().all(|v| *v == Verdict::Accept));
        assert!(verdicts[15..].iter().all(|v| *v == Verdict::Drop));
    }

    #[test]
    fn moderate_overload_is_dropped_but_not_kicked() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(60, t0);
        let (ok, dropped, kicked, _) = drive(&mut l, t0, 100, 20);
        assert_eq!(kicked, 0);
        assert!(dropped > 700 && ok < 1300 + 15, "ok {ok} dropped {dropped}");
    }

    #[test]
    fn sustained_flooding_is_kicked_after_three_windows() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(60, t0);
        let (_, _, kicked, _) = drive(&mut l, t0, 600, 3);
        assert_eq!(
            kicked, 0,
            "three windows are judged only as the fourth begins"
        );
        let (_, _, kicked, _) = drive(&mut l, t0 + Duration::from_secs(3), 600, 1);
        assert!(kicked > 0);
    }

    #[test]
    fn a_quiet_gap_forgives_earlier_flooding() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(60, t0);
        let (_, _, _, t) = drive(&mut l, t0, 600, 2);
        let (_, _, kicked, t) = drive(&mut l, t + Duration::from_secs(5), 600, 2);
        assert_eq!(kicked, 0);
        let (_, _, kicked, _) = drive(&mut l, t, 600, 2);
        assert!(kicked > 0, "flooding resumed for long enough");
    }
}

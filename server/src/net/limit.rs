//! Per-connection message rate limits.
//!
//! A token bucket admits messages at a steady rate with a short burst;
//! what it refuses is dropped and counted. A connection that keeps
//! overrunning it by a wide margin is flooding, not lagging, and is closed.
//! Time is passed in, so the rules are tested without clocks.

use std::time::{Duration, Instant};

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

#[cfg(test)]
mod tests {
    use super::*;

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

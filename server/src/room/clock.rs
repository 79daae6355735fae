//! The fixed-tick schedule of a room, and its catch-up rule.
//!
//! Deadlines are always `start + n × period`, never "now + period", so the
//! simulation does not drift however late individual ticks run. When a tick
//! starts late by whole periods, the room runs the missed steps back to back
//! (at most [`MAX_STEPS_PER_TICK`] in all) and sends one snapshot; a backlog
//! beyond that is dropped and counted, so an overloaded room slows its game
//! time down instead of spiralling (each catch-up making the next tick later
//! still). This module only does the arithmetic; it holds no timer.

use std::time::{Duration, Instant};

/// Most simulation steps one tick may run. Three lets a room absorb a
/// 100 ms hiccup at 30 Hz without visible slow-down, while bounding the
/// work one late tick can pile on.
pub const MAX_STEPS_PER_TICK: u32 = 3;

/// What a tick that has come due must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Simulation steps to run now (1 ..= [`MAX_STEPS_PER_TICK`]).
    pub steps: u32,
    /// Steps dropped from the schedule because the room was too far behind.
    pub skipped: u32,
    /// How late this tick started against its deadline.
    pub lateness: Duration,
}

/// A room's tick schedule.
#[derive(Debug, Clone)]
pub struct TickClock {
    /// Length of one tick.
    period: Duration,
    /// When the next tick is due.
    next: Instant,
}

impl TickClock {
    /// A schedule whose first tick is due one period after `start`.
    pub fn new(start: Instant, period: Duration) -> Self {
        assert!(!period.is_zero(), "tick period must be positive");
        Self {
            period,
            next: start + period,
        }
    }

    /// When the next tick is due.
    pub fn deadline(&self) -> Instant {
        self.next
    }

    /// Accounts for a tick that starts at `now` (at or after the deadline)
    /// and moves the deadline on by every period that has begun.
    pub fn advance(&mut self, now: Instant) -> Due {
        let lateness = now.saturating_duration_since(self.next);
        let behind = lateness.as_nanos() / self.period.as_nanos();
        let due = u32::try_from(behind).unwrap_or(u32::MAX).saturating_add(1);
        let steps = due.min(MAX_STEPS_PER_TICK);
        self.next += self.period * due;
        Due {
            steps,
            skipped: due - steps,
            lateness,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_millis(30);

    fn check(late_by: Duration, steps: u32, skipped: u32, next_in_periods: u32) {
        let t0 = Instant::now();
        let mut c = TickClock::new(t0, P);
        let due = c.advance(t0 + P + late_by);
        assert_eq!(
            due,
            Due {
                steps,
                skipped,
                lateness: late_by
            },
            "late by {late_by:?}"
        );
        assert_eq!(
            c.deadline(),
            t0 + P * next_in_periods,
            "late by {late_by:?}"
        );
    }

    #[test]
    fn catch_up_and_skip_follow_the_stated_rule() {
        check(Duration::ZERO, 1, 0, 2);
        check(Duration::from_millis(29), 1, 0, 2);
        check(P, 2, 0, 3);
        check(P * 2 + Duration::from_millis(1), 3, 0, 4);
        check(P * 3, 3, 1, 5);
        check(P * 10, 3, 8, 12);
    }

    #[test]
    fn deadlines_stay_on_the_grid_without_drift() {
        let t0 = Instant::now();
        let mut c = TickClock::new(t0, P);
        // Every tick starts 7 ms late: the schedule must not absorb the 7 ms.
        for n in 1..=1000u32 {
            let due = c.advance(t0 + P * n + Duration::from_millis(7));
            assert_eq!(due.steps, 1);
        }
        assert_eq!(c.deadline(), t0 + P * 1001);
    }
}

//! The fixed-tick schedule of a room, and its catch-up rule.
//!
//! Deadlines are always `start + n × period`, never "now + period", so the
//! simulation does not drift however late individual ticks run. When a tick
//! starts late by whole periods, the room runs the missed steps back to back
//! (at most [`MAX_STEPS_PER_TICK`] in all) and sends one snapshot; a backlog
//! beyond that is dropped and counted, so an overloaded room slows its game
//! time down instead of spiralling (each catch-up making the next tick later
//! still). This module only does the arithmetic; it holds no timer.
//!
//! Rooms of one tick rate tick at *phases* spread over the period
//! ([`TickPhases`]): a tick writes a state to every player of the room at
//! once, and rooms whose ticks fell together would queue their writes (and
//! every other task of the server) behind each other while the core idled
//! the rest of the period.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
// Tokio's `Instant` is the standard one outside tests; under a paused test
// runtime it is the runtime's clock, which the room's tests move by hand.
use tokio::time::Instant;

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

    /// A schedule on the grid `epoch + phase + n × period` whose first tick
    /// is the first grid point after `now`.
    pub fn on_phase(epoch: Instant, phase: Duration, period: Duration, now: Instant) -> Self {
        assert!(!period.is_zero(), "tick period must be positive");
        let origin = epoch + phase;
        let next = if now < origin {
            origin
        } else {
            let periods = (now - origin).as_nanos() / period.as_nanos() + 1;
            origin + period * u32::try_from(periods).unwrap_or(u32::MAX)
        };
        Self { period, next }
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

/// Where the rooms of the process tick within their period. Each room
/// claims the middle of the widest gap between the phases taken by rooms of
/// the same period (so ten rooms at 30 Hz tick 3.3 ms apart, not at random
/// offsets that often coincide), and gives its phase back when it ends.
#[derive(Debug)]
pub struct TickPhases {
    /// The grid's origin, shared by every room.
    epoch: Instant,
    /// Phases in use, in nanoseconds, by period; a phase may be held by
    /// several rooms (more rooms than distinct midpoints).
    taken: Mutex<HashMap<Duration, Vec<u64>>>,
}

impl TickPhases {
    /// An empty table whose grid starts at `epoch`.
    pub fn new(epoch: Instant) -> Arc<Self> {
        Arc::new(Self {
            epoch,
            taken: Mutex::default(),
        })
    }

    /// Claims a phase for a room ticking every `period`; the phase is given
    /// back when the claim drops.
    pub fn claim(self: &Arc<Self>, period: Duration) -> PhaseClaim {
        let period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1);
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        let phases = taken.entry(period).or_default();
        let phase = widest_gap_middle(phases, period_ns);
        phases.push(phase);
        PhaseClaim {
            table: Arc::clone(self),
            period,
            phase: Duration::from_nanos(phase),
        }
    }
}

/// A room's phase, held for the room's life.
#[derive(Debug)]
pub struct PhaseClaim {
    table: Arc<TickPhases>,
    period: Duration,
    phase: Duration,
}

impl PhaseClaim {
    /// The room's schedule from `now` on.
    pub fn clock(&self, now: Instant) -> TickClock {
        TickClock::on_phase(self.table.epoch, self.phase, self.period, now)
    }

    /// The claimed offset within the period.
    pub fn phase(&self) -> Duration {
        self.phase
    }
}

impl Drop for PhaseClaim {
    fn drop(&mut self) {
        let mut taken = self.table.taken.lock().unwrap_or_else(|e| e.into_inner());
        let phase = u64::try_from(self.phase.as_nanos()).unwrap_or(u64::MAX);
        if let Some(phases) = taken.get_mut(&self.period) {
            if let Some(i) = phases.iter().position(|&p| p == phase) {
                phases.swap_remove(i);
            }
            if phases.is_empty() {
                taken.remove(&self.period);
            }
        }
    }
}

/// The middle of the widest gap between `taken` phases on a circle of
/// `period` nanoseconds (0 when none is taken). Ties go to the earliest
/// gap, so the choice is deterministic.
fn widest_gap_middle(taken: &[u64], period: u64) -> u64 {
    let mut sorted: Vec<u64> = taken.iter().map(|p| p % period).collect();
    sorted.sort_unstable();
    let Some(&first) = sorted.first() else {
        return 0;
    };
    let mut best = (0u64, first);
    for (i, &start) in sorted.iter().enumerate() {
        // The gap from this phase to the next, wrapping round to the first.
        let end = sorted.get(i + 1).copied().unwrap_or(first + period);
        let width = end - start;
        if width > best.0 {
            best = (width, start);
        }
    }
    (best.1 + best.0 / 2) % period
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

    #[test]
    fn phases_fill_the_widest_gap_first() {
        let p = 1_000;
        assert_eq!(widest_gap_middle(&[], p), 0);
        assert_eq!(widest_gap_middle(&[0], p), 500);
        assert_eq!(widest_gap_middle(&[0, 500], p), 250);
        assert_eq!(widest_gap_middle(&[0, 500, 250], p), 750);
        // The gap that wraps round the end of the period counts too.
        assert_eq!(widest_gap_middle(&[100, 300], p), 700);
        // A full circle of equal gaps goes on halving them.
        assert_eq!(widest_gap_middle(&[0, 250, 500, 750], p), 125);
    }

    #[test]
    fn rooms_spread_evenly_and_a_freed_phase_is_reused() {
        let table = TickPhases::new(Instant::now());
        let period = Duration::from_micros(33_333);
        let claims: Vec<PhaseClaim> = (0..8).map(|_| table.claim(period)).collect();
        let mut phases: Vec<Duration> = claims.iter().map(PhaseClaim::phase).collect();
        phases.sort();
        // Eight rooms: one every eighth of the period (to the nanosecond
        // rounding of halving 33,333,000 ns).
        for (i, pair) in phases.windows(2).enumerate() {
            let gap = pair[1] - pair[0];
            assert!(
                gap.abs_diff(period / 8) <= Duration::from_nanos(4),
                "gap {i}: {gap:?}"
            );
        }
        // A room that ends leaves the widest gap: the next room takes its
        // phase.
        let mut claims = claims;
        let freed = claims.remove(3).phase();
        assert_eq!(table.claim(period).phase(), freed);
        let other = table.claim(Duration::from_millis(50));
        assert_eq!(other.phase(), Duration::ZERO, "periods do not share phases");
        drop(claims);
        assert_eq!(table.claim(period).phase(), Duration::ZERO, "all freed");
    }

    #[test]
    fn a_phased_clock_stays_on_its_grid() {
        let epoch = Instant::now();
        let phase = Duration::from_millis(7);
        // Before the grid's origin: the first tick is the origin.
        let c = TickClock::on_phase(epoch, phase, P, epoch);
        assert_eq!(c.deadline(), epoch + phase);
        // Mid-period: the next grid point.
        let c = TickClock::on_phase(epoch, phase, P, epoch + P * 4 + Duration::from_millis(20));
        assert_eq!(c.deadline(), epoch + phase + P * 5);
        // Exactly on a grid point: the one after it.
        let c = TickClock::on_phase(epoch, phase, P, epoch + phase + P * 2);
        assert_eq!(c.deadline(), epoch + phase + P * 3);
    }
}

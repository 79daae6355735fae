//! A room's send rate: how many ticks pass between two rounds of states,
//! and how that follows load.
//!
//! The configured rate (`--snapshot-hz`) sets the base interval. Under the
//! `adaptive` policy the room watches, one window of a second at a time,
//! what its fan-out achieves: the share of states replaced in a mailbox
//! before their connection took the previous one (the server could not
//! write them in time), and the share of ticks that started late. When
//! either passes its threshold, or when the room's ticks are behind while
//! the server's threads queue for a CPU (`crate::cpu`: the machine is
//! oversold), the room sends every one tick more (every
//! 2nd, 3rd, ... tick) to *all* its players alike, instead of letting each
//! connection skip states at random; after a few calm windows it steps
//! back, one tick at a time, to the base. The states it does send still
//! carry the latest tick and ack, so a client's view is only less frequent,
//! never stale.
//!
//! Pure arithmetic on counts: the room feeds it and reads its decisions;
//! time is ticks. Not for deciding which players get states (every
//! connected player does, on a sending tick) or for slow single clients
//! (their mailbox and `--slow-timeout` deal with those).

/// Share of a window's planned states replaced before their connection
/// took the previous one, past which the room slows down. A healthy room
/// replaces none; 5 % means one connection in twenty is a whole send
/// behind, which is when players start to notice.
pub const SLOW_DOWN_SKIPPED: f64 = 0.05;

/// Share of a window's ticks starting more than half a period late (or
/// dropping steps), past which the room slows down: the worker threads are
/// too busy for the schedule.
pub const SLOW_DOWN_LATE: f64 = 0.10;

/// CPU wait ([`crate::cpu::CpuWait::ratio`]: time the server's threads
/// spent runnable but waiting for a CPU, per CPU it may use) past which
/// ticks behind their schedule (more than a quarter of a period late, in
/// more than [`SLOW_DOWN_LATE`] of a window's ticks) slow the room down:
/// the machine is oversold, by the server's own clients on the same host
/// or by neighbours, and every state sent takes CPU from them and queues
/// behind them.
///
/// Neither signal is enough alone. Ticks a quarter late, alone, also come
/// from a server busy with its own players on a core of its own, where
/// sending less only makes them wait longer for their next state (issue
/// 11: with 2,000 players on one core, rooms slowed down and the probes'
/// p99 rose from 38 to 42–67 ms). CPU wait, alone, is high whenever the
/// server shares its cores with busy neighbours, whether or not its rooms
/// suffer: 0.26–0.57 in CI's 60 s soak (2,000 players and their clients on
/// two cores), where slowing down for it alone held every room at the
/// floor with no tick half a period late, against 0.01–0.05 for a server
/// alone on its core and 0.25–0.5 with 5,000 players sharing two cores.
pub const SLOW_DOWN_CPU_WAIT: f64 = 0.20;

/// Under this CPU wait, ticks behind their schedule do not stop a window
/// from counting as calm (half the slow-down threshold, so that a rate
/// lowered for it is not raised by the first relief it brings).
pub const CALM_CPU_WAIT: f64 = 0.10;

/// Share of ticks behind their schedule under which a window counts as
/// calm even while the server waits for a CPU: one tick in twenty.
pub const CALM_BEHIND: f64 = 0.05;

/// How late a tick started against its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lateness {
    /// Within a quarter of a period.
    OnTime,
    /// More than a quarter of a period late: a sign of strain when the
    /// server also waits for a CPU.
    Behind,
    /// More than half a period late, or steps dropped: the worker threads
    /// are too busy for the schedule.
    Late,
}

impl Lateness {
    /// How a tick that started `lateness` after its time, in a room ticking
    /// every `period`, having dropped `skipped` steps, counts.
    pub fn of(lateness: std::time::Duration, period: std::time::Duration, skipped: u32) -> Self {
        if skipped > 0 || lateness > period / 2 {
            Self::Late
        } else if lateness > period / 4 {
            Self::Behind
        } else {
            Self::OnTime
        }
    }
}

/// Share of skipped states under which a window counts as calm.
pub const CALM_SKIPPED: f64 = 0.01;

/// Calm windows in a row before the room sends one tick more often again:
/// three seconds, so that a rate that was just lowered is not raised back
/// by the relief it brought and lowered again (flapping).
pub const CALM_WINDOWS: u32 = 3;

/// How far the room may slow down, in multiples of the base interval: at
/// 30 Hz with a state every tick, down to every 6th tick (5 states a
/// second), past which a real-time game is not playable anyway.
pub const MAX_SLOWDOWN: u32 = 6;

/// A change of rate, for the room to log and count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// Now a state every `every` ticks (was fewer).
    Lowered {
        /// Ticks between two states now.
        every: u32,
        /// Share of states skipped in the window that decided it.
        skipped: f64,
        /// Share of late ticks in that window.
        late: f64,
        /// Share of ticks behind (late ones included) in that window.
        behind: f64,
        /// The server's CPU wait the room judged it with.
        cpu_wait: f64,
    },
    /// Now a state every `every` ticks (was more).
    Raised {
        /// Ticks between two states now.
        every: u32,
    },
}

/// One room's send rate and the window it judges load over.
#[derive(Debug, Clone)]
pub struct SendRate {
    /// Ticks between states as configured.
    base: u32,
    /// Ticks between states now (`base` ..= `base × MAX_SLOWDOWN`).
    every: u32,
    /// Whether the rate follows load.
    adaptive: bool,
    /// Ticks in a window (a second's worth).
    window: u32,
    /// Ticks since the last round of states.
    since_send: u32,
    /// Ticks counted in the current window.
    ticks: u32,
    /// Of those, ticks that started late.
    late: u32,
    /// Of those, ticks that started behind or late.
    behind: u32,
    /// States planned (put in mailboxes) in the window.
    planned: u64,
    /// Of those, states that replaced one not yet taken.
    skipped: u64,
    /// Calm windows in a row.
    calm: u32,
}

impl SendRate {
    /// A state every `base` ticks (at least 1) in a room ticking `tick_hz`
    /// times a second; `adaptive` lets load change it.
    pub fn new(base: u32, tick_hz: u16, adaptive: bool) -> Self {
        let base = base.max(1);
        Self {
            base,
            every: base,
            adaptive,
            window: u32::from(tick_hz).max(1),
            // The first tick sends, so a new player sees the room at once.
            since_send: base,
            ticks: 0,
            late: 0,
            behind: 0,
            planned: 0,
            skipped: 0,
            calm: 0,
        }
    }

    /// Ticks between two states now.
    pub fn every(&self) -> u32 {
        self.every
    }

    /// Whether the room sends less often than configured.
    pub fn degraded(&self) -> bool {
        self.every > self.base
    }

    /// Accounts for a tick that ran `steps` simulation steps and started
    /// with `lateness`; true when states are due at this tick.
    pub fn tick(&mut self, steps: u32, lateness: Lateness) -> bool {
        self.ticks += 1;
        self.late += u32::from(lateness == Lateness::Late);
        self.behind += u32::from(lateness != Lateness::OnTime);
        self.since_send = self.since_send.saturating_add(steps.max(1));
        if self.since_send >= self.every {
            self.since_send = 0;
            true
        } else {
            false
        }
    }

    /// Records a round of states: `planned` put in mailboxes, `skipped` of
    /// them replacing one not yet taken.
    pub fn sent(&mut self, planned: u32, skipped: u32) {
        self.planned += u64::from(planned);
        self.skipped += u64::from(skipped);
    }

    /// At the end of each window (call after every tick), the change of
    /// rate its counts and the server's `cpu_wait` (the latest
    /// [`crate::cpu::CpuWait::ratio`]) call for, if any.
    pub fn judge(&mut self, cpu_wait: f64) -> Option<Change> {
        if self.ticks < self.window {
            return None;
        }
        let skipped = if self.planned == 0 {
            0.0
        } else {
            self.skipped as f64 / self.planned as f64
        };
        let late = f64::from(self.late) / f64::from(self.ticks);
        let behind = f64::from(self.behind) / f64::from(self.ticks);
        (self.ticks, self.late, self.behind) = (0, 0, 0);
        (self.planned, self.skipped) = (0, 0);
        if !self.adaptive {
            return None;
        }
        let starved = cpu_wait > SLOW_DOWN_CPU_WAIT && behind > SLOW_DOWN_LATE;
        if skipped > SLOW_DOWN_SKIPPED || late > SLOW_DOWN_LATE || starved {
            self.calm = 0;
            let slowest = self.base * MAX_SLOWDOWN;
            if self.every >= slowest {
                return None;
            }
            self.every += 1;
            return Some(Change::Lowered {
                every: self.every,
                skipped,
                late,
                behind,
                cpu_wait,
            });
        }
        let strained = cpu_wait >= CALM_CPU_WAIT && behind >= CALM_BEHIND;
        if skipped < CALM_SKIPPED && late == 0.0 && !strained {
            self.calm += 1;
        } else {
            self.calm = 0;
        }
        if self.calm >= CALM_WINDOWS && self.every > self.base {
            self.calm = 0;
            self.every -= 1;
            return Some(Change::Raised { every: self.every });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one window of `ticks` ticks, `late` of them late, each sending
    /// round planning `players` states of which `skipped` were replaced.
    fn window(
        r: &mut SendRate,
        ticks: u32,
        late: u32,
        players: u32,
        skipped: u32,
    ) -> (u32, Option<Change>) {
        let lateness = |t| {
            if t < late {
                Lateness::Late
            } else {
                Lateness::OnTime
            }
        };
        run_window(r, ticks, lateness, players, skipped, 0.0)
    }

    /// A window of 30 ticks, `behind` of them behind, every state taken,
    /// judged with the server's CPU wait at `cpu_wait`.
    fn straining(r: &mut SendRate, behind: u32, cpu_wait: f64) -> (u32, Option<Change>) {
        let lateness = |t| {
            if t < behind {
                Lateness::Behind
            } else {
                Lateness::OnTime
            }
        };
        run_window(r, 30, lateness, 100, 0, cpu_wait)
    }

    /// Runs one window of `ticks` ticks, the `t`th with `lateness(t)`, each
    /// sending round planning `players` states of which `skipped` were
    /// replaced, judged with the server's CPU wait at `cpu_wait`.
    fn run_window(
        r: &mut SendRate,
        ticks: u32,
        lateness: impl Fn(u32) -> Lateness,
        players: u32,
        skipped: u32,
        cpu_wait: f64,
    ) -> (u32, Option<Change>) {
        let mut sends = 0;
        let mut change = None;
        for t in 0..ticks {
            if r.tick(1, lateness(t)) {
                sends += 1;
                r.sent(players, skipped);
            }
            if let Some(c) = r.judge(cpu_wait) {
                change = Some(c);
            }
        }
        (sends, change)
    }

    #[test]
    fn the_base_rate_sends_every_nth_tick_from_the_first() {
        let mut r = SendRate::new(3, 30, true);
        let sent: Vec<bool> = (0..7).map(|_| r.tick(1, Lateness::OnTime)).collect();
        assert_eq!(sent, [true, false, false, true, false, false, true]);
        // Catch-up steps count: a tick that ran three steps is due.
        let mut r = SendRate::new(3, 30, true);
        assert!(r.tick(1, Lateness::OnTime));
        assert!(r.tick(3, Lateness::Late));
    }

    #[test]
    fn skips_slow_the_room_down_evenly_and_calm_brings_it_back() {
        let mut r = SendRate::new(1, 30, true);
        assert_eq!(window(&mut r, 30, 0, 100, 0), (30, None), "healthy");
        // 10 % of states skipped: every 2nd tick from now on.
        let (_, change) = window(&mut r, 30, 0, 100, 10);
        assert!(
            matches!(change, Some(Change::Lowered { every: 2, .. })),
            "{change:?}"
        );
        assert!(r.degraded());
        assert_eq!(window(&mut r, 30, 0, 100, 10).0, 15, "half the rounds");
        assert_eq!(r.every(), 3);
        // Calm: three windows later one step back, three more, another.
        for _ in 0..2 {
            assert_eq!(window(&mut r, 30, 0, 100, 0).1, None);
        }
        assert_eq!(
            window(&mut r, 30, 0, 100, 0).1,
            Some(Change::Raised { every: 2 })
        );
        for _ in 0..2 {
            window(&mut r, 30, 0, 100, 0);
        }
        assert_eq!(
            window(&mut r, 30, 0, 100, 0).1,
            Some(Change::Raised { every: 1 })
        );
        assert!(!r.degraded());
        for _ in 0..5 {
            assert_eq!(
                window(&mut r, 30, 0, 100, 0).1,
                None,
                "never above the base"
            );
        }
    }

    #[test]
    fn late_ticks_slow_it_down_and_the_slowdown_is_bounded() {
        let mut r = SendRate::new(2, 30, true);
        let (_, change) = window(&mut r, 30, 4, 10, 0);
        assert!(
            matches!(change, Some(Change::Lowered { every: 3, .. })),
            "{change:?}"
        );
        for _ in 0..30 {
            window(&mut r, 30, 30, 10, 10);
        }
        assert_eq!(r.every(), 2 * MAX_SLOWDOWN);
        // A window that is neither overloaded nor calm resets the calm run.
        let mut r = SendRate::new(1, 10, true);
        window(&mut r, 10, 0, 100, 10);
        assert_eq!(r.every(), 2);
        window(&mut r, 10, 0, 100, 0);
        window(&mut r, 10, 0, 100, 0);
        window(&mut r, 10, 0, 100, 3);
        window(&mut r, 10, 0, 100, 0);
        window(&mut r, 10, 0, 100, 0);
        assert_eq!(r.every(), 2, "3 % skipped is not calm");
        assert_eq!(
            window(&mut r, 10, 0, 100, 0).1,
            Some(Change::Raised { every: 1 })
        );
    }

    #[test]
    fn lateness_is_judged_against_the_period() {
        let period = std::time::Duration::from_millis(100);
        let ms = std::time::Duration::from_millis;
        assert_eq!(Lateness::of(ms(25), period, 0), Lateness::OnTime);
        assert_eq!(Lateness::of(ms(26), period, 0), Lateness::Behind);
        assert_eq!(Lateness::of(ms(50), period, 0), Lateness::Behind);
        assert_eq!(Lateness::of(ms(51), period, 0), Lateness::Late);
        assert_eq!(
            Lateness::of(ms(0), period, 1),
            Lateness::Late,
            "steps dropped"
        );
    }

    #[test]
    fn ticks_behind_slow_the_room_down_only_while_the_server_waits_for_a_cpu() {
        let mut r = SendRate::new(1, 30, true);
        // Behind, but the CPU is the server's own (busy with its players):
        // sending less would only make them wait longer.
        assert_eq!(straining(&mut r, 6, 0.05).1, None);
        // Waiting for a CPU, but the ticks keep their schedule (threads
        // taking turns on a busy machine): nothing to gain.
        assert_eq!(straining(&mut r, 0, 0.5).1, None);
        assert_eq!(r.every(), 1);
        // Both: the machine is oversold. A step a window.
        let (_, change) = straining(&mut r, 6, 0.3);
        assert!(
            matches!(change, Some(Change::Lowered { every: 2, behind, cpu_wait, .. })
                if behind == 0.2 && cpu_wait == 0.3),
            "{change:?}"
        );
        straining(&mut r, 6, 0.3);
        assert_eq!(r.every(), 3);
        // Relieved, but still a few ticks behind and waiting: it holds.
        for _ in 0..10 {
            assert_eq!(straining(&mut r, 2, 0.3).1, None);
        }
        assert_eq!(r.every(), 3);
        // Calm: on time (though still waiting) three windows, or behind
        // with CPU to spare; each run of three raises it a step.
        for _ in 0..2 {
            assert_eq!(straining(&mut r, 0, 0.3).1, None);
        }
        assert_eq!(
            straining(&mut r, 0, 0.3).1,
            Some(Change::Raised { every: 2 })
        );
        for _ in 0..2 {
            assert_eq!(straining(&mut r, 3, 0.05).1, None);
        }
        assert_eq!(
            straining(&mut r, 3, 0.05).1,
            Some(Change::Raised { every: 1 })
        );
        // A fixed rate ignores it all.
        let mut r = SendRate::new(1, 30, false);
        assert_eq!(straining(&mut r, 30, 0.9).1, None);
    }

    #[test]
    fn a_fixed_rate_never_moves() {
        let mut r = SendRate::new(1, 30, false);
        for _ in 0..10 {
            assert_eq!(window(&mut r, 30, 30, 100, 100).1, None);
        }
        assert_eq!(r.every(), 1);
    }
}

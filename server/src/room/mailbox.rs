//! The hand-off from a room to one connection: reliable events in order,
//! the latest state, and a kick.
//!
//! The room never waits for a connection. It appends events (which queue:
//! every one must arrive, in order) and puts each tick's state, replacing
//! one the connection has not taken yet (that state is *skipped*: a slow
//! reader gets fewer, fresher states, and memory stays at one state per
//! connection). The room can also post a kick, a close code and reason the
//! connection must close with. The connection task waits on the mailbox's
//! `Notify`, takes what is there (events first, then the state), and writes
//! it.
//!
//! The queue here only holds what is waiting to be *written*; the room
//! keeps its own copy of every event until the client acknowledges it (see
//! `super::events`), which is what bounds this queue too: the room ends a
//! session whose unacknowledged events pass the limit.

use bytes::Bytes;
use protocol::CloseCode;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use tokio::sync::Notify;

/// One connection's mailbox, shared by its room and its connection task.
#[derive(Default)]
pub struct Mailbox {
    /// What waits to be taken. The lock is held only to move a few words.
    slot: Mutex<Slot>,
    /// Wakes the connection task when something was put.
    notify: Notify,
    /// Set while the connection is writing what it took: a state replaced
    /// meanwhile was skipped because the client's socket did not take the
    /// last one yet (the client is slow), not because the server did not
    /// get round to writing (the server is overloaded).
    writing: AtomicBool,
}

#[derive(Default)]
struct Slot {
    /// Events not yet taken, oldest first, with their sequence numbers.
    events: VecDeque<(u32, Bytes)>,
    /// The newest state not yet taken.
    state: Option<Bytes>,
    /// States replaced in a row without the connection taking one.
    skipped_in_a_row: u32,
    /// A close code and reason the connection must close with.
    kick: Option<(CloseCode, Cow<'static, str>)>,
}

/// What [`Mailbox::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Close the connection with this code and reason (anything else is
    /// dropped).
    Kick(CloseCode, Cow<'static, str>),
    /// Write these events, in order, then this state if there is one.
    Write {
        /// Events, oldest first, with their sequence numbers.
        events: Vec<(u32, Bytes)>,
        /// The latest state.
        state: Option<Bytes>,
    },
    /// Nothing new.
    Empty,
}

impl Mailbox {
    /// Puts a state, replacing any untaken one. Returns how many states in
    /// a row have now been replaced without a take (0 when the previous one
    /// had been taken).
    pub fn put(&self, state: Bytes) -> u32 {
        let skipped = {
            let mut slot = self.lock();
            if slot.state.replace(state).is_some() {
                slot.skipped_in_a_row += 1;
            }
            slot.skipped_in_a_row
        };
        self.notify.notify_one();
        skipped
    }

    /// Appends events to write, in order.
    pub fn push_events(&self, events: impl IntoIterator<Item = (u32, Bytes)>) {
        self.lock().events.extend(events);
        self.notify.notify_one();
    }

    /// Tells the connection to close with `code` and `reason`. The first
    /// kick wins; nothing else is written after it.
    pub fn kick(&self, code: CloseCode, reason: impl Into<Cow<'static, str>>) {
        {
            let mut slot = self.lock();
            if slot.kick.is_none() {
                slot.kick = Some((code, reason.into()));
            }
            slot.state = None;
            slot.events.clear();
        }
        self.notify.notify_one();
    }

    /// Whether the connection is in the middle of a write, which a skipped
    /// state then is the client's doing (see the field).
    pub fn writer_busy(&self) -> bool {
        self.writing.load(Relaxed)
    }

    /// Marks the start and the end of a write by the connection.
    pub fn set_writing(&self, writing: bool) {
        self.writing.store(writing, Relaxed);
    }

    /// Wakes the connection without putting anything (its reader uses this
    /// to hand the writer a request of its own).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Takes what is waiting; a kick comes before anything else.
    pub fn take(&self) -> Delivery {
        let mut slot = self.lock();
        if let Some((code, reason)) = &slot.kick {
            return Delivery::Kick(*code, reason.clone());
        }
        if slot.events.is_empty() && slot.state.is_none() {
            return Delivery::Empty;
        }
        let state = slot.state.take();
        if state.is_some() {
            slot.skipped_in_a_row = 0;
        }
        Delivery::Write {
            events: slot.events.drain(..).collect(),
            state,
        }
    }

    /// Completes after the next `put`, `push_events` or `kick` (at once if
    /// one happened since the last wait). Cancel-safe: a lost wake-up only
    /// delays a delivery until the next put, because the caller takes before
    /// waiting.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        // A panic while holding this lock would be a bug in a few moves of
        // words; the slot stays consistent, so carry on.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn latest_state_wins_and_skips_are_counted() {
        let m = Mailbox::default();
        assert_eq!(m.put(b("1")), 0);
        assert_eq!(m.put(b("2")), 1);
        assert_eq!(m.put(b("3")), 2);
        assert_eq!(
            m.take(),
            Delivery::Write {
                events: vec![],
                state: Some(b("3"))
            }
        );
        assert_eq!(m.take(), Delivery::Empty);
        assert_eq!(m.put(b("4")), 0, "a take resets the run");
    }

    #[test]
    fn events_queue_in_order_and_come_before_the_state() {
        let m = Mailbox::default();
        m.push_events([(1, b("a")), (2, b("b"))]);
        m.put(b("s1"));
        m.push_events([(3, b("c"))]);
        m.put(b("s2"));
        assert_eq!(
            m.take(),
            Delivery::Write {
                events: vec![(1, b("a")), (2, b("b")), (3, b("c"))],
                state: Some(b("s2"))
            }
        );
        m.push_events([(4, b("d"))]);
        assert_eq!(
            m.take(),
            Delivery::Write {
                events: vec![(4, b("d"))],
                state: None
            }
        );
    }

    #[test]
    fn a_kick_overrides_everything_and_the_first_kick_wins() {
        let m = Mailbox::default();
        m.put(b("1"));
        m.push_events([(1, b("a"))]);
        m.kick(CloseCode::TooSlow, "too slow");
        m.kick(CloseCode::SessionTakenOver, "taken");
        m.put(b("2"));
        let kicked = Delivery::Kick(CloseCode::TooSlow, "too slow".into());
        assert_eq!(m.take(), kicked);
        assert_eq!(m.take(), kicked);
    }

    #[tokio::test]
    async fn a_put_before_the_wait_is_not_lost() {
        let m = Mailbox::default();
        m.put(b("1"));
        tokio::time::timeout(std::time::Duration::from_secs(5), m.notified())
            .await
            .expect("the stored permit completes the wait at once");
    }
}

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
//!
//! **Direct writes.** Waking a connection task for every state costs more
//! than writing the state: at 30 states a second for each of a thousand
//! players the wake-ups, not the sockets, kept a core busy, and every
//! state waited in the run queue behind everything else. So a connection
//! whose socket allows it (plain TCP, see `net::direct`) lends the mailbox
//! a [`DirectWrite`], and `put` writes the state itself, without waiting,
//! when nothing else is due on that connection: no events or state queued
//! and the connection task not writing. A socket that would block, a queue
//! that is not empty, or a writing connection fall back to the queue as
//! above. A frame the socket took only part of is finished by the
//! connection task before anything else it writes ([`Mailbox::begin_write`]),
//! so frames never interleave. The connection task marks every write of
//! its own between `begin_write` and `end_write`, and the mailbox writes
//! directly only outside them.

use bytes::Bytes;
use protocol::CloseCode;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A socket a state can be written to at once, without waiting.
pub trait DirectWrite: Send + Sync {
    /// Writes `message` as one WebSocket frame if the socket takes it now.
    fn try_send(&self, message: &[u8]) -> TrySend;
}

/// What [`DirectWrite::try_send`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySend {
    /// The whole frame was written.
    Sent,
    /// Only part of the frame was written; these bytes must follow it
    /// before anything else.
    Partly(Vec<u8>),
    /// The socket takes nothing now: nothing was written.
    WouldBlock,
    /// The socket failed: nothing was written, and the connection task
    /// will find out when it writes.
    Failed,
}

/// What [`Mailbox::put`] did with a state.
#[derive(Debug, PartialEq, Eq)]
pub enum Put {
    /// Written to the socket (or its first part, the rest following before
    /// anything else).
    Written,
    /// Queued for the connection task.
    Queued {
        /// States replaced in a row without the connection taking one (0
        /// when the previous one had been taken).
        replaced: u32,
        /// Whether the connection was writing meanwhile (see
        /// [`Mailbox::writer_busy`]).
        writer_busy: bool,
    },
}

/// One connection's mailbox, shared by its room and its connection task.
pub struct Mailbox {
    /// What waits to be taken. The lock is held only to move a few words.
    slot: Mutex<Slot>,
    /// Wakes the connection task when something was put.
    notify: Notify,
    /// Set while the connection is writing (between `begin_write` and
    /// `end_write`; changed only under `slot`'s lock): a state replaced
    /// meanwhile was skipped because the client's socket did not take the
    /// last one yet (the client is slow), not because the server did not
    /// get round to writing (the server is overloaded). Starts set: nothing
    /// is written directly before the connection's first `end_write` (its
    /// `Welcome` goes first).
    writing: AtomicBool,
}

impl Default for Mailbox {
    fn default() -> Self {
        Self {
            slot: Mutex::default(),
            notify: Notify::new(),
            writing: AtomicBool::new(true),
        }
    }
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
    /// Where states may be written directly, while the connection lends it.
    direct: Option<Arc<dyn DirectWrite>>,
    /// The unwritten rest of a frame written directly in part.
    rest: Option<Vec<u8>>,
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
    /// A mailbox whose states may be written straight to `direct` (once
    /// the connection's first `end_write` allows it).
    pub fn with_direct(direct: Arc<dyn DirectWrite>) -> Self {
        let mailbox = Self::default();
        mailbox.lock().direct = Some(direct);
        mailbox
    }

    /// Writes a state directly when nothing else is due on the connection,
    /// or puts it in the queue, replacing any untaken one (see the module
    /// documentation).
    pub fn put(&self, state: Bytes) -> Put {
        let put = {
            let mut slot = self.lock();
            if let Some(written) = self.try_direct(&mut slot, &state) {
                return written;
            }
            let replaced = slot.state.replace(state).is_some();
            if replaced {
                slot.skipped_in_a_row += 1;
            }
            Put::Queued {
                replaced: slot.skipped_in_a_row,
                writer_busy: replaced && self.writer_busy(),
            }
        };
        self.notify.notify_one();
        put
    }

    /// The direct write of `state`, if one may be tried and the socket
    /// took at least part of it.
    fn try_direct(&self, slot: &mut Slot, state: &[u8]) -> Option<Put> {
        let idle = slot.kick.is_none()
            && slot.events.is_empty()
            && slot.state.is_none()
            && slot.rest.is_none()
            && !self.writing.load(Relaxed);
        let direct = slot.direct.as_ref().filter(|_| idle)?;
        match direct.try_send(state) {
            TrySend::Sent => Some(Put::Written),
            TrySend::Partly(rest) => {
                slot.rest = Some(rest);
                self.notify.notify_one();
                Some(Put::Written)
            }
            TrySend::WouldBlock => None,
            TrySend::Failed => {
                slot.direct = None;
                None
            }
        }
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

    /// Marks the start of writes by the connection: no direct write happens
    /// until [`Mailbox::end_write`]. Returns the rest of a frame written
    /// directly in part, which the connection must write first.
    pub fn begin_write(&self) -> Option<Vec<u8>> {
        let mut slot = self.lock();
        self.writing.store(true, Relaxed);
        slot.rest.take()
    }

    /// Marks the end of the connection's writes: states may be written
    /// directly again.
    pub fn end_write(&self) {
        let _slot = self.lock();
        self.writing.store(false, Relaxed);
    }

    /// Takes the direct socket back for good (the connection is closing or
    /// gone): nothing more is written directly, and the mailbox no longer
    /// holds the socket open. Returns the rest of a frame written directly
    /// in part, as [`Mailbox::begin_write`] does.
    pub fn stop_direct(&self) -> Option<Vec<u8>> {
        let mut slot = self.lock();
        self.writing.store(true, Relaxed);
        slot.direct = None;
        slot.rest.take()
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
        let queued = |replaced| Put::Queued {
            replaced,
            writer_busy: replaced > 0,
        };
        assert_eq!(m.put(b("1")), queued(0));
        assert_eq!(m.put(b("2")), queued(1));
        assert_eq!(m.put(b("3")), queued(2));
        assert_eq!(
            m.take(),
            Delivery::Write {
                events: vec![],
                state: Some(b("3"))
            }
        );
        assert_eq!(m.take(), Delivery::Empty);
        assert_eq!(m.put(b("4")), queued(0), "a take resets the run");
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

    /// A socket that answers each `try_send` as scripted and records what
    /// it was given.
    #[derive(Default)]
    struct Scripted {
        answers: Mutex<VecDeque<TrySend>>,
        sent: Mutex<Vec<Vec<u8>>>,
    }

    impl DirectWrite for Scripted {
        fn try_send(&self, message: &[u8]) -> TrySend {
            self.sent.lock().unwrap().push(message.to_vec());
            self.answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(TrySend::Sent)
        }
    }

    fn direct(answers: Vec<TrySend>) -> (Arc<Scripted>, Mailbox) {
        let socket = Arc::new(Scripted {
            answers: Mutex::new(answers.into()),
            ..Scripted::default()
        });
        let m = Mailbox::with_direct(socket.clone());
        (socket, m)
    }

    fn sent(socket: &Scripted) -> Vec<Vec<u8>> {
        socket.sent.lock().unwrap().clone()
    }

    #[test]
    fn nothing_is_written_directly_before_the_connection_allows_it() {
        let (socket, m) = direct(vec![]);
        assert!(matches!(m.put(b("1")), Put::Queued { .. }), "Welcome first");
        assert!(sent(&socket).is_empty());
        assert_eq!(m.begin_write(), None);
        assert!(matches!(m.take(), Delivery::Write { .. }));
        m.end_write();
        assert_eq!(m.put(b("2")), Put::Written);
        assert_eq!(sent(&socket), vec![b"2".to_vec()]);
        assert_eq!(m.take(), Delivery::Empty, "a direct write queues nothing");
    }

    #[test]
    fn a_direct_write_waits_for_the_connections_own_writes_and_queue() {
        let (socket, m) = direct(vec![]);
        m.end_write();
        m.begin_write();
        assert!(matches!(m.put(b("1")), Put::Queued { .. }), "writer busy");
        m.end_write();
        // The queued state is still due: the next one queues behind it
        // (replacing it) rather than overtaking it.
        assert_eq!(
            m.put(b("2")),
            Put::Queued {
                replaced: 1,
                writer_busy: false
            }
        );
        m.begin_write();
        m.take();
        m.end_write();
        // Events not yet taken come before any state.
        m.push_events([(1, b("e"))]);
        assert!(matches!(m.put(b("3")), Put::Queued { .. }));
        assert!(sent(&socket).is_empty());
        m.begin_write();
        m.take();
        m.end_write();
        m.kick(CloseCode::TooSlow, "too slow");
        assert!(matches!(m.put(b("4")), Put::Queued { .. }), "kicked");
        assert!(sent(&socket).is_empty());
    }

    #[test]
    fn a_partly_written_frame_is_finished_before_anything_else() {
        let (socket, m) = direct(vec![TrySend::Partly(b"rest".to_vec())]);
        m.end_write();
        assert_eq!(m.put(b("1")), Put::Written);
        assert_eq!(sent(&socket).len(), 1);
        // Nothing else is written directly while the rest is due.
        assert!(matches!(m.put(b("2")), Put::Queued { .. }));
        assert_eq!(sent(&socket).len(), 1);
        assert_eq!(m.begin_write(), Some(b"rest".to_vec()));
        assert_eq!(m.begin_write(), None, "handed over once");
    }

    #[test]
    fn a_blocked_or_failed_socket_falls_back_to_the_queue() {
        let (socket, m) = direct(vec![TrySend::WouldBlock, TrySend::Failed]);
        m.end_write();
        assert!(matches!(m.put(b("1")), Put::Queued { .. }), "would block");
        m.begin_write();
        m.take();
        m.end_write();
        assert!(matches!(m.put(b("2")), Put::Queued { .. }), "failed");
        m.begin_write();
        m.take();
        m.end_write();
        assert!(
            matches!(m.put(b("3")), Put::Queued { .. }),
            "a failed socket is not tried again"
        );
        assert_eq!(sent(&socket).len(), 2);
    }

    #[test]
    fn stopping_direct_writes_releases_the_socket_and_hands_over_the_rest() {
        let (socket, m) = direct(vec![TrySend::Partly(b"st".to_vec())]);
        m.end_write();
        assert_eq!(m.put(b("1")), Put::Written);
        assert_eq!(Arc::strong_count(&socket), 2);
        assert_eq!(m.stop_direct(), Some(b"st".to_vec()));
        assert_eq!(Arc::strong_count(&socket), 1, "the mailbox let go");
        m.end_write();
        assert!(matches!(m.put(b("2")), Put::Queued { .. }));
    }
}

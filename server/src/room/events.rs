//! One session's reliable events: numbered, kept until acknowledged,
//! replayed after a resume, and bounded.
//!
//! Every event the game sends a player gets the session's next sequence
//! number (1, 2, ...) and stays here until the client acknowledges it
//! (`EventAck`), however many connections that takes: a resume says which
//! event the client saw last, and everything after it is written again on
//! the new connection. So an event reaches its player exactly once and in
//! order, even when the connection that carried it died with the event in
//! a kernel buffer.
//!
//! What is kept is bounded: a session past [`MAX_UNACKED_EVENTS`] events or
//! [`MAX_UNACKED_BYTES`] bytes is ended (close 4017, `event_backlog`). A
//! client that reads and acknowledges never gets near it; one that stopped
//! acknowledging, or a dropped player in a chatty room, would otherwise make
//! the server hold its events forever.
//!
//! Not for delivery itself (the connection's mailbox does that) or for
//! states (latest wins, never replayed).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Most unacknowledged events a session may have. A turn-based game sends
/// a few per move and a client acknowledges within a second, so a
/// thousand means the client stopped acknowledging (or a dropped player's
/// room sent that many during its grace period).
pub const MAX_UNACKED_EVENTS: usize = 1024;

/// Most bytes of unacknowledged events a session may have: with
/// [`MAX_UNACKED_EVENTS`] this bounds what a session can make the server
/// hold to 1 MiB, the size of the largest message a client accepts.
pub const MAX_UNACKED_BYTES: usize = 1 << 20;

/// A session's events since the last acknowledgement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQueue {
    /// The sequence number of the last event added (0 before any).
    last_seq: u32,
    /// Events not yet acknowledged, oldest first.
    unacked: VecDeque<(u32, Bytes)>,
    /// Bytes of `unacked`.
    bytes: usize,
}

/// The saved form of an [`EventQueue`], for the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedEvents {
    /// The sequence number of the last event added.
    pub last_seq: u32,
    /// Unacknowledged events, oldest first, with their sequence numbers.
    pub unacked: Vec<(u32, Vec<u8>)>,
}

impl EventQueue {
    /// Numbers `data` and keeps it until acknowledged; returns the number.
    pub fn push(&mut self, data: Bytes) -> u32 {
        // A session would need 4 × 10^9 events to wrap, years of a busy
        // game; wrapping keeps the arithmetic defined if one ever did.
        self.last_seq = self.last_seq.wrapping_add(1);
        self.bytes += data.len();
        self.unacked.push_back((self.last_seq, data));
        self.last_seq
    }

    /// Forgets every event up to and including `upto`. An `upto` past the
    /// last event (a confused client) forgets them all, nothing more.
    pub fn ack(&mut self, upto: u32) {
        while let Some((seq, data)) = self.unacked.front() {
            if *seq > upto {
                break;
            }
            self.bytes -= data.len();
            self.unacked.pop_front();
        }
    }

    /// After a resume whose client saw events up to `last_seen`: forgets
    /// those and returns every later one, to be written again in order.
    pub fn replay_after(&mut self, last_seen: u32) -> Vec<(u32, Bytes)> {
        self.ack(last_seen);
        self.unacked.iter().cloned().collect()
    }

    /// Whether the session holds more than the bounds allow.
    pub fn over_limit(&self) -> bool {
        self.unacked.len() > MAX_UNACKED_EVENTS || self.bytes > MAX_UNACKED_BYTES
    }

    /// Events waiting for an acknowledgement.
    pub fn pending(&self) -> usize {
        self.unacked.len()
    }

    /// The queue for the state file.
    pub fn save(&self) -> SavedEvents {
        SavedEvents {
            last_seq: self.last_seq,
            unacked: self.unacked.iter().map(|(s, d)| (*s, d.to_vec())).collect(),
        }
    }

    /// The queue from the state file; `None` when the saved numbers are not
    /// consecutive up to `last_seq` (a corrupt file).
    pub fn restore(saved: SavedEvents) -> Option<Self> {
        let mut expect = saved
            .last_seq
            .wrapping_sub(saved.unacked.len() as u32)
            .wrapping_add(1);
        let mut queue = EventQueue {
            last_seq: saved.last_seq,
            ..Self::default()
        };
        for (seq, data) in saved.unacked {
            if seq != expect {
                return None;
            }
            expect = expect.wrapping_add(1);
            queue.bytes += data.len();
            queue.unacked.push_back((seq, Bytes::from(data)));
        }
        Some(queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    #[test]
    fn events_are_numbered_kept_until_acked_and_replayed_after_a_resume() {
        let mut q = EventQueue::default();
        assert_eq!(q.push(b(1)), 1);
        assert_eq!(q.push(b(2)), 2);
        assert_eq!(q.push(b(3)), 3);
        q.ack(1);
        assert_eq!(q.pending(), 2);
        // The client saw event 2 before its connection died, not event 3.
        let replay = q.replay_after(2);
        assert_eq!(replay, vec![(3, b(3))]);
        assert_eq!(q.push(b(4)), 4, "numbers continue");
        // A stale or confused ack changes nothing it should not.
        q.ack(0);
        assert_eq!(q.pending(), 2);
        q.ack(u32::MAX);
        assert_eq!(q.pending(), 0);
        assert_eq!(q.replay_after(0), vec![]);
    }

    #[test]
    fn the_backlog_bound_counts_events_and_bytes() {
        let mut q = EventQueue::default();
        for _ in 0..MAX_UNACKED_EVENTS {
            q.push(b(1));
        }
        assert!(!q.over_limit());
        q.push(b(1));
        assert!(q.over_limit());
        q.ack(10);
        assert!(!q.over_limit());
        let mut big = EventQueue::default();
        big.push(b(MAX_UNACKED_BYTES));
        assert!(!big.over_limit());
        big.push(b(1));
        assert!(big.over_limit());
    }

    #[test]
    fn a_saved_queue_restores_and_a_corrupt_one_is_refused() {
        let mut q = EventQueue::default();
        for n in 1..=5 {
            q.push(b(n));
        }
        q.ack(2);
        let saved = q.save();
        let back = EventQueue::restore(saved.clone()).expect("consecutive");
        assert_eq!(back, q);
        let mut gap = saved.clone();
        gap.unacked.remove(1);
        assert_eq!(EventQueue::restore(gap), None);
        let mut shifted = saved;
        shifted.last_seq += 1;
        assert_eq!(EventQueue::restore(shifted), None);
    }
}

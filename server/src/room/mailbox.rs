//! The latest-wins hand-off of snapshots from a room to one connection.
//!
//! The room never waits for a connection: it puts each tick's snapshot in
//! the mailbox, replacing one the connection has not taken yet (that
//! snapshot is *skipped*: a slow reader gets fewer, fresher snapshots, and
//! memory stays at one snapshot per connection). The room can also post a
//! kick, a close code the connection must close with. The connection task
//! waits on the mailbox's `Notify`, takes what is there, and writes it.
//!
//! Not for reliable messages: anything put here may be replaced.

use bytes::Bytes;
use protocol::CloseCode;
use std::sync::Mutex;
use tokio::sync::Notify;

/// One connection's mailbox, shared by its room and its connection task.
#[derive(Default)]
pub struct Mailbox {
    /// What waits to be taken. The lock is held only to swap a few words.
    slot: Mutex<Slot>,
    /// Wakes the connection task when something was put.
    notify: Notify,
}

#[derive(Default)]
struct Slot {
    /// The newest snapshot not yet taken.
    snapshot: Option<Bytes>,
    /// Snapshots replaced in a row without the connection taking one.
    skipped_in_a_row: u32,
    /// A close code the connection must close with.
    kick: Option<CloseCode>,
}

/// What [`Mailbox::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Close the connection with this code (anything else is dropped).
    Kick(CloseCode),
    /// Write this snapshot.
    Snapshot(Bytes),
    /// Nothing new.
    Empty,
}

impl Mailbox {
    /// Puts a snapshot, replacing any untaken one. Returns how many snapshots
    /// in a row have now been replaced without a take (0 when the previous
    /// one had been taken).
    pub fn put(&self, snapshot: Bytes) -> u32 {
        let skipped = {
            let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            if slot.snapshot.replace(snapshot).is_some() {
                slot.skipped_in_a_row += 1;
            }
            slot.skipped_in_a_row
        };
        self.notify.notify_one();
        skipped
    }

    /// Tells the connection to close with `code`. The first kick wins.
    pub fn kick(&self, code: CloseCode) {
        {
            let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            slot.kick.get_or_insert(code);
            slot.snapshot = None;
        }
        self.notify.notify_one();
    }

    /// Wakes the connection without putting anything (its reader uses this
    /// to hand the writer a request of its own).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Takes what is waiting; a kick comes before any snapshot.
    pub fn take(&self) -> Delivery {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(code) = slot.kick {
            return Delivery::Kick(code);
        }
        match slot.snapshot.take() {
            Some(s) => {
                slot.skipped_in_a_row = 0;
                Delivery::Snapshot(s)
            }
            None => Delivery::Empty,
        }
    }

    /// Completes after the next `put` or `kick` (at once if one happened
    /// since the last wait). Cancel-safe: a lost wake-up only delays a
    /// delivery until the next put, because the caller takes before waiting.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_snapshot_wins_and_skips_are_counted() {
        let m = Mailbox::default();
        assert_eq!(m.put(Bytes::from_static(b"1")), 0);
        assert_eq!(m.put(Bytes::from_static(b"2")), 1);
        assert_eq!(m.put(Bytes::from_static(b"3")), 2);
        assert_eq!(m.take(), Delivery::Snapshot(Bytes::from_static(b"3")));
        assert_eq!(m.take(), Delivery::Empty);
        assert_eq!(m.put(Bytes::from_static(b"4")), 0, "a take resets the run");
    }

    #[test]
    fn a_kick_overrides_snapshots_and_the_first_kick_wins() {
        let m = Mailbox::default();
        m.put(Bytes::from_static(b"1"));
        m.kick(CloseCode::TooSlow);
        m.kick(CloseCode::SessionTakenOver);
        m.put(Bytes::from_static(b"2"));
        assert_eq!(m.take(), Delivery::Kick(CloseCode::TooSlow));
        assert_eq!(m.take(), Delivery::Kick(CloseCode::TooSlow));
    }

    #[tokio::test]
    async fn a_put_before_the_wait_is_not_lost() {
        let m = Mailbox::default();
        m.put(Bytes::from_static(b"1"));
        tokio::time::timeout(std::time::Duration::from_secs(5), m.notified())
            .await
            .expect("the stored permit completes the wait at once");
    }
}

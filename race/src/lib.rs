//! [`race`]: two futures of one task, the second polled only when its own
//! waker fired.
//!
//! A connection's reader and writer share a task, and they are woken at
//! different rates: `loadgen`'s player reader at every state (30 times a
//! second) and its writer about 11 times (inputs, pings); the server's
//! reader at every input (10 times a second) and its writer about once (a
//! pong). A `select!` polls both at every wake-up, and polling the writer's
//! timer and notifications with each read cost `loadgen` a few percent of
//! its CPU. A general "poll only what was woken" combinator
//! (`FuturesUnordered`) gives every future a waker of its own, and its
//! wake-ups cost as much again. Here only the rarely woken side gets one;
//! the often woken side wakes the task directly, as it would alone.
//!
//! Not for two futures that are both woken often: the main side is polled
//! at every wake-up of the task, the side's included. Performs no I/O and
//! needs no runtime (its tests use tokio's).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Which side of a [`race`] finished, with its output.
#[derive(Debug, PartialEq, Eq)]
pub enum Finished<M, S> {
    /// The main side, polled at every wake-up.
    Main(M),
    /// The side polled only when its own waker fired.
    Side(S),
}

/// Polls `main` at every wake-up of the task and `side` only when `side`
/// woke it (and on the first poll), until one of them finishes. Both are
/// borrowed, so the caller may go on polling the other afterwards.
pub fn race<M, S>(main: M, side: S) -> Race<M, S>
where
    M: Future + Unpin,
    S: Future + Unpin,
{
    let flag = Arc::new(SideWake {
        // The first poll polls both.
        woken: AtomicBool::new(true),
        task: Mutex::new(None),
    });
    Race {
        main,
        side,
        side_waker: Waker::from(flag.clone()),
        flag,
    }
}

/// The future of [`race`].
pub struct Race<M, S> {
    main: M,
    side: S,
    /// Set by the side's waker, which also wakes the task.
    flag: Arc<SideWake>,
    /// The waker the side is polled with (`flag` as a waker).
    side_waker: Waker,
}

/// The side's waker: a flag, and the task to wake.
struct SideWake {
    /// Whether the side was woken since it was last polled.
    woken: AtomicBool,
    /// The task's own waker, set before the side is first polled.
    task: Mutex<Option<Waker>>,
}

impl Wake for SideWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

impl<M, S> Future for Race<M, S>
where
    M: Future + Unpin,
    S: Future + Unpin,
{
    type Output = Finished<M::Output, S::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // The flag is cleared before the side is polled, so a wake-up
        // during the poll sets it again and is not lost.
        if this.flag.woken.swap(false, Ordering::Acquire) {
            {
                let mut task = this.flag.task.lock().unwrap_or_else(|e| e.into_inner());
                if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                    *task = Some(cx.waker().clone());
                }
            }
            let mut side_cx = Context::from_waker(&this.side_waker);
            if let Poll::Ready(out) = Pin::new(&mut this.side).poll(&mut side_cx) {
                return Poll::Ready(Finished::Side(out));
            }
        }
        Pin::new(&mut this.main).poll(cx).map(Finished::Main)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;
    use tokio::sync::Notify;

    /// Waits for `rounds` notifications and returns `rounds`, counting how
    /// often it is polled.
    async fn counted(polls: &AtomicUsize, notify: &Notify, rounds: usize) -> usize {
        let inner = async {
            for _ in 0..rounds {
                notify.notified().await;
            }
            rounds
        };
        tokio::pin!(inner);
        std::future::poll_fn(|cx| {
            polls.fetch_add(1, Ordering::Relaxed);
            inner.as_mut().poll(cx)
        })
        .await
    }

    /// Notifies `notify` `times` times, a millisecond apart, from another
    /// task (so that nothing else wakes the race's task).
    fn notify_later(notify: &Arc<Notify>, times: usize) -> tokio::task::JoinHandle<()> {
        let notify = notify.clone();
        tokio::spawn(async move {
            for _ in 0..times {
                tokio::time::sleep(Duration::from_millis(1)).await;
                notify.notify_one();
            }
        })
    }

    #[tokio::test]
    async fn the_side_is_polled_only_when_it_was_woken() {
        let (main_polls, side_polls) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (main_wake, side_wake) = (Arc::new(Notify::new()), Notify::new());
        let main = counted(&main_polls, &main_wake, 10);
        let side = counted(&side_polls, &side_wake, 100);
        tokio::pin!(main, side);
        let waking = notify_later(&main_wake, 10);
        assert_eq!(race(main.as_mut(), side.as_mut()).await, Finished::Main(10));
        waking.await.unwrap();
        // The main side: its first poll, then one per wake-up.
        assert_eq!(main_polls.load(Ordering::Relaxed), 11);
        // The side: its first poll only; ten wake-ups of the main side
        // did not poll it.
        assert_eq!(side_polls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn the_side_finishes_the_race_when_it_is_woken_to_its_end() {
        let (main_polls, side_polls) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (main_wake, side_wake) = (Notify::new(), Arc::new(Notify::new()));
        let main = counted(&main_polls, &main_wake, 100);
        let side = counted(&side_polls, &side_wake, 3);
        tokio::pin!(main, side);
        let waking = notify_later(&side_wake, 3);
        assert_eq!(race(main.as_mut(), side.as_mut()).await, Finished::Side(3));
        waking.await.unwrap();
        assert_eq!(side_polls.load(Ordering::Relaxed), 4);
        // The main side was polled at the first poll and at the side's
        // first two wake-ups (the third finished the race before it), as
        // a `select!` would; it is still there to be polled on.
        assert_eq!(main_polls.load(Ordering::Relaxed), 3);
        main_wake.notify_one();
        let polled = std::future::poll_fn(|cx| Poll::Ready(main.as_mut().poll(cx))).await;
        assert!(polled.is_pending());
        assert_eq!(main_polls.load(Ordering::Relaxed), 4);
    }
}

//! Shutdown by broadcast, completion by drop (after mini-redis).
//!
//! [`ShutdownController`] flips a `watch` flag that every long-lived task
//! listens to through its [`Shutdown`] handle. Each such task also holds a
//! [`DoneGuard`] (a clone of an `mpsc::Sender`); when the last guard drops,
//! the controller's `recv()` returns `None` and shutdown is complete. The
//! handles keep only a weak sender, so holding a `Shutdown` does not delay
//! completion; a task that starts after shutdown began gets no guard and
//! should not start at all.

use protocol::CloseCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering::Relaxed};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Owned by the server's run loop: starts shutdown and waits for it.
pub struct ShutdownController {
    /// Set to true once to start shutdown.
    flag: watch::Sender<bool>,
    /// Completes when every [`DoneGuard`] is gone.
    done_rx: mpsc::Receiver<()>,
    /// Kept until `shutdown` so that guards can be handed out before it.
    done_tx: Option<mpsc::Sender<()>>,
    /// The close code connections are closed with.
    close_code: Arc<AtomicU16>,
}

/// A task's view of shutdown.
#[derive(Clone)]
pub struct Shutdown {
    /// True once shutdown has started.
    flag: watch::Receiver<bool>,
    /// Upgraded to a [`DoneGuard`] by tasks that must finish before exit.
    done: mpsc::WeakSender<()>,
    /// The close code connections are closed with.
    close_code: Arc<AtomicU16>,
}

/// Held by a task for as long as shutdown must wait for it.
pub struct DoneGuard {
    /// Never sent on; its drop is the signal.
    _tx: mpsc::Sender<()>,
}

impl ShutdownController {
    /// A controller with shutdown not started.
    pub fn new() -> Self {
        let (flag, _) = watch::channel(false);
        let (done_tx, done_rx) = mpsc::channel(1);
        Self {
            flag,
            done_rx,
            done_tx: Some(done_tx),
            close_code: Arc::new(AtomicU16::new(CloseCode::GoingAway.code())),
        }
    }

    /// Sets the code connections are closed with at shutdown: 1001 (going
    /// away, the default) or 1012 (service restart: sessions are saved and
    /// clients should resume).
    pub fn set_close_code(&self, code: CloseCode) {
        self.close_code.store(code.code(), Relaxed);
    }

    /// A handle for a task.
    pub fn handle(&self) -> Shutdown {
        Shutdown {
            flag: self.flag.subscribe(),
            done: self
                .done_tx
                .as_ref()
                .expect("handles are made before shutdown")
                .downgrade(),
            close_code: self.close_code.clone(),
        }
    }

    /// Tells every task to stop, then waits up to `timeout` for all guards
    /// to drop. Returns false if some task was still running at the timeout.
    pub async fn shutdown(mut self, timeout: Duration) -> bool {
        self.flag.send_replace(true);
        self.done_tx = None;
        tokio::time::timeout(timeout, self.done_rx.recv())
            .await
            .is_ok()
    }
}

impl Default for ShutdownController {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// True once shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        *self.flag.borrow()
    }

    /// Completes when shutdown starts (at once if it has). Cancel-safe.
    pub async fn wait(&mut self) {
        // An error means the controller is gone, which is shutdown too.
        let _ = self.flag.wait_for(|down| *down).await;
    }

    /// The code to close connections with.
    pub fn close_code(&self) -> CloseCode {
        CloseCode::from_code(self.close_code.load(Relaxed)).unwrap_or(CloseCode::GoingAway)
    }

    /// A guard that makes shutdown wait for the caller, or `None` if
    /// shutdown has already started (then the caller should not start).
    pub fn guard(&self) -> Option<DoneGuard> {
        if self.is_shutting_down() {
            return None;
        }
        self.done.upgrade().map(|tx| DoneGuard { _tx: tx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_waits_for_guards_and_refuses_new_ones() {
        let ctl = ShutdownController::new();
        let mut handle = ctl.handle();
        let guard = handle.guard().expect("before shutdown");
        let task = tokio::spawn(async move {
            handle.wait().await;
            assert!(handle.guard().is_none());
            drop(guard);
        });
        assert!(ctl.shutdown(Duration::from_secs(5)).await);
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_reports_a_task_that_does_not_finish() {
        let ctl = ShutdownController::new();
        let _stuck = ctl.handle().guard().unwrap();
        assert!(!ctl.shutdown(Duration::from_secs(1)).await);
    }
}

//! Tasks waiting for a revision, each woken once when that revision is reached.
//!
//! A `tokio::sync::watch` channel wakes every receiver on every change: with 64 writers
//! each waiting for its own write to come back through the watch, every delivered commit
//! woke all 64 (and each re-polled its whole request future) to wake one. Here a waiter
//! sits under the revision it wants and only the commits reaching it wake it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::Revision;

/// The newest revision reached, and who waits for a later one.
#[derive(Default)]
pub(crate) struct RevisionWaiters {
    reached: AtomicI64,
    waiting: Mutex<BTreeMap<Revision, Vec<oneshot::Sender<()>>>>,
}

impl RevisionWaiters {
    /// The newest revision reached.
    pub(crate) fn reached(&self) -> Revision {
        self.reached.load(Ordering::SeqCst)
    }

    /// Records that `revision` was reached (an older one changes nothing) and wakes the
    /// waiters it satisfies.
    pub(crate) fn advance(&self, revision: Revision) {
        self.reached.fetch_max(revision, Ordering::SeqCst);
        let ready = {
            let mut waiting = self.waiting.lock();
            if waiting
                .first_key_value()
                .is_none_or(|(first, _)| *first > revision)
            {
                return;
            }
            let later = waiting.split_off(&(revision + 1));
            std::mem::replace(&mut *waiting, later)
        };
        for sender in ready.into_values().flatten() {
            // A waiter that gave up (its future dropped) has no receiver left.
            let _ = sender.send(());
        }
    }

    /// Waits until `revision` has been reached.
    pub(crate) async fn wait_for(&self, revision: Revision) {
        if self.reached() >= revision {
            return;
        }
        let woken = {
            let mut waiting = self.waiting.lock();
            // `advance` raises `reached` before it takes the lock: checked again under the
            // lock, a revision reached meanwhile is either seen here or finds this waiter.
            if self.reached() >= revision {
                return;
            }
            let (sender, woken) = oneshot::channel();
            waiting.entry(revision).or_default().push(sender);
            woken
        };
        // The sender is dropped only after being sent to, or with `self`.
        let _ = woken.await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_once_its_revision_is_reached_and_not_before() {
        let waiters = Arc::new(RevisionWaiters::default());
        waiters.advance(3);
        // Reached already: no wait.
        waiters.wait_for(2).await;
        waiters.wait_for(3).await;

        let w = waiters.clone();
        let mut five = tokio::spawn(async move { w.wait_for(5).await });
        let w = waiters.clone();
        let seven = tokio::spawn(async move { w.wait_for(7).await });
        tokio::task::yield_now().await;
        waiters.advance(4);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut five)
                .await
                .is_err(),
            "woken at 4 while waiting for 5"
        );
        waiters.advance(6);
        five.await.unwrap();
        assert!(!seven.is_finished());
        assert_eq!(
            waiters.waiting.lock().len(),
            1,
            "only the waiter for 7 left"
        );
        // An older revision after a newer one does not move `reached` back.
        waiters.advance(2);
        assert_eq!(waiters.reached(), 6);
        waiters.advance(9);
        seven.await.unwrap();
        assert!(waiters.waiting.lock().is_empty());
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_nothing_behind_once_reached() {
        let waiters = RevisionWaiters::default();
        let gave_up = tokio::time::timeout(Duration::from_millis(10), waiters.wait_for(4)).await;
        assert!(gave_up.is_err());
        waiters.advance(4);
        assert!(waiters.waiting.lock().is_empty());
    }
}

//! Flow control between the pods' creators and the scheduler inside one server: the
//! scheduler publishes how many pods wait for their first scheduling attempt, and the
//! ReplicaSet-style controllers hold their next batch of creates while that backlog is
//! large, for a bounded time.
//!
//! Upstream bounds creation with the controller-manager's client rate limit
//! (`--kube-api-qps`) and API Priority and Fairness; in one process the scheduler's own
//! queue says directly how far creation runs ahead. A pod created behind ten thousand
//! others waits for all of them to be scheduled first, so creating faster than the
//! scheduler binds only makes every pod's start latency longer, and holds each waiting
//! pod in every cache meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// The scheduler's queue of pods not yet tried, shared with the pods' creators; cheap
/// to clone. A backlog nobody publishes stays empty, and nothing waits.
#[derive(Debug, Clone, Default)]
pub struct Backlog(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    pending: AtomicUsize,
    drained: Notify,
}

impl Backlog {
    /// Pods may wait untried up to this many before creators hold back: at 1000 pods
    /// scheduled per second, about half a second of work.
    pub const LIMIT: usize = 500;

    /// The longest one creator holds back: a scheduler that stopped binding (no node
    /// fits, a custom scheduler owns the pods) delays creation, never stops it.
    pub const MAX_WAIT: Duration = Duration::from_secs(2);

    /// A backlog of zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes the number of pods waiting for their first attempt.
    pub fn set(&self, pending: usize) {
        self.0.pending.store(pending, Ordering::Relaxed);
        if pending < Self::LIMIT {
            self.0.drained.notify_waiters();
        }
    }

    /// The number last published.
    pub fn get(&self) -> usize {
        self.0.pending.load(Ordering::Relaxed)
    }

    /// Completes once the backlog is under [`LIMIT`](Self::LIMIT), or after
    /// [`MAX_WAIT`](Self::MAX_WAIT).
    pub async fn wait_below_limit(&self) {
        let wait = async {
            loop {
                let drained = self.0.drained.notified();
                if self.get() < Self::LIMIT {
                    return;
                }
                drained.await;
            }
        };
        let _ = tokio::time::timeout(Self::MAX_WAIT, wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creators_wait_while_the_backlog_is_full_but_not_forever() {
        let b = Backlog::new();
        // Empty: no wait at all.
        tokio::time::timeout(Duration::from_millis(100), b.wait_below_limit())
            .await
            .expect("no wait");
        b.set(Backlog::LIMIT);
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.wait_below_limit().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        b.set(10);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("released once drained")
            .expect("joined");
        // A backlog that never drains holds a creator for MAX_WAIT only.
        b.set(Backlog::LIMIT * 2);
        let start = tokio::time::Instant::now();
        b.wait_below_limit().await;
        assert!(start.elapsed() >= Backlog::MAX_WAIT);
    }
}

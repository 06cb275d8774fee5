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
//!
//! What counts as ahead of the next create: the pods in the scheduler's queue, the creates
//! not yet answered, and the pods created but not yet seen by the scheduler (on their way
//! through the watch, which on a saturated server takes seconds; counting only the first
//! two let creation run a few thousand pods ahead).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// The scheduler's queue of pods not yet tried, shared with the pods' creators; cheap
/// to clone. A backlog nobody publishes stays empty, and nothing waits.
#[derive(Debug, Clone, Default)]
pub struct Backlog(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Untried pods at which creators hold back; 0: they never do.
    limit: usize,
    /// Pods in the scheduler's active queue, as it last published.
    pending: AtomicUsize,
    /// Creates admitted and not yet answered: pods the scheduler has not seen yet.
    in_flight: AtomicUsize,
    /// Pods created and not yet seen by the scheduler, and the reverse.
    transit: Mutex<Transit>,
    /// `transit.created.len()`, read without the lock.
    in_transit_len: AtomicUsize,
    /// Whether a scheduler publishes to this backlog (it calls [`Backlog::set`]); without
    /// one no pod would ever be seen, and none is kept in transit.
    attached: AtomicBool,
    drained: Notify,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            limit: Backlog::LIMIT,
            pending: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            transit: Mutex::new(Transit::default()),
            in_transit_len: AtomicUsize::new(0),
            attached: AtomicBool::new(false),
            drained: Notify::new(),
        }
    }
}

/// Pods between their create and the scheduler, by uid, with when they were recorded.
#[derive(Debug, Default)]
struct Transit {
    /// Created and not yet seen by the scheduler: on a busy server a pod's way from its
    /// create through the watch to the scheduler's queue takes seconds, and pods on that
    /// way are as much ahead of the next create as those in the queue.
    created: HashMap<String, Instant>,
    /// Seen by the scheduler (unbound) before their creator had the answer: the watch
    /// can be quicker than the answer, and such a pod must not be held in transit.
    /// Those of other creators (bare pods, Jobs …) are forgotten after `MAX_WAIT`.
    seen_first: HashMap<String, Instant>,
    /// `seen_first.len()` after its last pruning.
    seen_first_pruned: usize,
}

impl Transit {
    /// Forgets what was recorded longer than [`Backlog::MAX_WAIT`] ago.
    fn expire(map: &mut HashMap<String, Instant>) {
        if let Some(oldest_kept) = Instant::now().checked_sub(Backlog::MAX_WAIT) {
            map.retain(|_, at| *at >= oldest_kept);
        }
    }
}

/// An admitted create; dropping it (once the create is answered) frees its place.
#[derive(Debug)]
pub struct Admission(Arc<Inner>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.drained.notify_waiters();
    }
}

impl Admission {
    /// The create was answered with the pod `uid`: its place is held until the scheduler
    /// sees the pod ([`Backlog::seen`]), or for at most [`Backlog::MAX_WAIT`].
    pub fn created(self, uid: &str) {
        let inner = &self.0;
        if inner.limit > 0 && inner.attached.load(Ordering::Acquire) && !uid.is_empty() {
            let mut transit = inner.transit.lock();
            if transit.seen_first.remove(uid).is_none() {
                transit.created.insert(uid.to_string(), Instant::now());
                inner
                    .in_transit_len
                    .store(transit.created.len(), Ordering::Release);
            }
        }
    }
}

impl Backlog {
    /// Pods may wait untried (queued or being created) up to this many before creators
    /// hold back: at 1000 pods scheduled per second, about half a second of work.
    pub const LIMIT: usize = 500;

    /// The longest one create is held: a scheduler that stopped taking pods from its
    /// queue (its caches not synced yet) delays creation, never stops it. Pods that
    /// cannot be scheduled leave the active queue, so they hold nothing back.
    pub const MAX_WAIT: Duration = Duration::from_secs(10);

    /// A backlog of zero, holding creators back at [`LIMIT`](Self::LIMIT).
    pub fn new() -> Self {
        Self::default()
    }

    /// A backlog of zero holding creators back at `limit` untried pods; 0 never holds
    /// them (creation runs as fast as the controllers go, as upstream without a QPS
    /// limit).
    pub fn with_limit(limit: usize) -> Self {
        Self(Arc::new(Inner {
            limit,
            ..Inner::default()
        }))
    }

    /// Publishes the number of pods in the scheduler's active queue.
    pub fn set(&self, pending: usize) {
        self.0.attached.store(true, Ordering::Release);
        self.0.pending.store(pending, Ordering::Release);
        if pending < self.0.limit {
            self.0.drained.notify_waiters();
        }
    }

    /// The scheduler has an event of the pod `uid` (`unbound`: one without a node, as
    /// every pod is when created): it is no longer on its way. An unbound pod not in
    /// transit is remembered for a while, in case its creator has not had the answer yet.
    pub fn seen(&self, uid: &str, unbound: bool) {
        let inner = &self.0;
        if uid.is_empty()
            || inner.limit == 0
            || (!unbound && inner.in_transit_len.load(Ordering::Acquire) == 0)
        {
            return;
        }
        let mut transit = inner.transit.lock();
        if transit.created.remove(uid).is_some() {
            inner
                .in_transit_len
                .store(transit.created.len(), Ordering::Release);
            drop(transit);
            inner.drained.notify_waiters();
        } else if unbound {
            let t = &mut *transit;
            t.seen_first.insert(uid.to_string(), Instant::now());
            // Pruned when it has doubled since the last pruning: amortized constant.
            if t.seen_first.len() > 2 * t.seen_first_pruned + 64 {
                Transit::expire(&mut t.seen_first);
                t.seen_first_pruned = t.seen_first.len();
            }
        }
    }

    /// The number last published plus the creates in flight and the pods in transit.
    pub fn get(&self) -> usize {
        self.0.pending.load(Ordering::Acquire)
            + self.0.in_flight.load(Ordering::Acquire)
            + self.0.in_transit_len.load(Ordering::Acquire)
    }

    /// Pods in transit, after forgetting those created longer than
    /// [`MAX_WAIT`](Self::MAX_WAIT) ago (a pod the scheduler never sees, such as one
    /// deleted before its watch event was sent, holds a place no longer than a create
    /// may wait).
    fn in_transit(&self) -> usize {
        let len = self.0.in_transit_len.load(Ordering::Acquire);
        if len == 0 {
            return 0;
        }
        let mut transit = self.0.transit.lock();
        Transit::expire(&mut transit.created);
        let len = transit.created.len();
        self.0.in_transit_len.store(len, Ordering::Release);
        len
    }

    /// Waits for a place under the limit (at most
    /// [`MAX_WAIT`](Self::MAX_WAIT)) and takes it until the returned admission drops.
    pub async fn admit(&self) -> Admission {
        if self.0.limit == 0 {
            self.0.in_flight.fetch_add(1, Ordering::AcqRel);
            return Admission(self.0.clone());
        }
        let deadline = tokio::time::Instant::now() + Self::MAX_WAIT;
        loop {
            let drained = self.0.drained.notified();
            let in_flight = self.0.in_flight.load(Ordering::Acquire);
            let ahead = self.0.pending.load(Ordering::Acquire) + in_flight;
            // The pods in transit are counted (and expired) only when the rest leaves room.
            if ahead < self.0.limit
                && ahead + self.in_transit() < self.0.limit
                && self
                    .0
                    .in_flight
                    .compare_exchange(
                        in_flight,
                        in_flight + 1,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
            {
                return Admission(self.0.clone());
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                self.0.in_flight.fetch_add(1, Ordering::AcqRel);
                return Admission(self.0.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creators_wait_while_the_backlog_is_full_but_not_forever() {
        let b = Backlog::new();
        // Empty: admitted at once, and each admission counts until dropped.
        let first = tokio::time::timeout(Duration::from_millis(100), b.admit())
            .await
            .expect("no wait");
        assert_eq!(b.get(), 1);
        drop(first);
        assert_eq!(b.get(), 0);
        b.set(Backlog::LIMIT);
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { drop(b.admit().await) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        b.set(10);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("released once drained")
            .expect("joined");
        // Admissions in flight fill the backlog too.
        b.set(Backlog::LIMIT - 2);
        let held = [b.admit().await, b.admit().await];
        assert!(
            tokio::time::timeout(Duration::from_millis(50), b.admit())
                .await
                .is_err()
        );
        drop(held);
        drop(
            tokio::time::timeout(Duration::from_millis(100), b.admit())
                .await
                .expect("a place freed"),
        );
        // Without a limit nothing waits.
        let open = Backlog::with_limit(0);
        open.set(0);
        open.admit().await.created("u0");
        assert_eq!(open.get(), 0, "nothing is held without a limit");
        open.set(100_000);
        let _held = tokio::time::timeout(Duration::from_millis(100), open.admit())
            .await
            .expect("no wait");
    }

    #[tokio::test]
    async fn a_created_pod_holds_its_place_until_the_scheduler_sees_it() {
        // No scheduler publishes: a created pod frees its place once answered.
        let b = Backlog::with_limit(2);
        b.admit().await.created("u1");
        assert_eq!(b.get(), 0);

        b.set(0);
        b.admit().await.created("u1");
        b.admit().await.created("u2");
        assert_eq!(b.get(), 2, "both pods are on their way");
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.admit().await.created("u3") }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "two pods in transit fill a limit of two"
        );
        // Events of other pods change nothing; seeing one of the two frees its place.
        b.seen("other", false);
        assert_eq!(b.get(), 2);
        b.seen("u1", true);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("released once the scheduler saw a pod")
            .expect("joined");
        assert_eq!(b.get(), 2, "u2 and u3");
        b.seen("u2", false);
        b.seen("u3", true);
        assert_eq!(b.get(), 0);
        // A failed create (no uid) holds nothing.
        b.admit().await.created("");
        assert_eq!(b.get(), 0);
        // The scheduler may see a pod before its creator has the answer: it is not held.
        b.seen("u4", true);
        b.admit().await.created("u4");
        assert_eq!(b.get(), 0, "seen before it was answered");
        b.admit().await.created("u5");
        assert_eq!(b.get(), 1, "u4 was forgotten once its create was answered");
    }
}

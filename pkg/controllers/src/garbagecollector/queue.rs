//! A deduplicating work queue in client-go's shape: an item is queued at most once, is
//! never handed to two workers at a time, and is queued again when added while being
//! processed; failed items come back after a growing delay.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// First retry delay of a failing item; doubles per failure.
const BASE_DELAY: Duration = Duration::from_millis(10);
/// Longest retry delay.
const MAX_DELAY: Duration = Duration::from_secs(10);

/// The queue.
#[derive(Debug)]
pub struct WorkQueue<T> {
    state: Mutex<State<T>>,
    ready: Notify,
}

#[derive(Debug)]
struct State<T> {
    queue: VecDeque<T>,
    queued: HashSet<T>,
    processing: HashSet<T>,
    dirty: HashSet<T>,
    failures: HashMap<T, u32>,
}

impl<T: Clone + Eq + Hash + Send + 'static> Default for WorkQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> WorkQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queued: HashSet::new(),
                processing: HashSet::new(),
                dirty: HashSet::new(),
                failures: HashMap::new(),
            }),
            ready: Notify::new(),
        }
    }

    /// Queues `item` unless it is queued already.
    pub fn add(&self, item: T) {
        let mut s = self.state.lock();
        if s.queued.contains(&item) {
            return;
        }
        if s.processing.contains(&item) {
            s.dirty.insert(item);
            return;
        }
        s.queued.insert(item.clone());
        s.queue.push_back(item);
        drop(s);
        self.ready.notify_one();
    }

    /// Waits for the next item; the caller must call [`WorkQueue::done`] with it.
    pub async fn next(&self) -> T {
        loop {
            let notified = self.ready.notified();
            {
                let mut s = self.state.lock();
                if let Some(item) = s.queue.pop_front() {
                    s.queued.remove(&item);
                    s.processing.insert(item.clone());
                    let more = !s.queue.is_empty();
                    drop(s);
                    if more {
                        // Hand the rest to another idle worker.
                        self.ready.notify_one();
                    }
                    return item;
                }
            }
            notified.await;
        }
    }

    /// Marks `item` processed; it is queued again if it was added meanwhile.
    pub fn done(&self, item: &T) {
        let mut s = self.state.lock();
        s.processing.remove(item);
        if s.dirty.remove(item) && s.queued.insert(item.clone()) {
            s.queue.push_back(item.clone());
            drop(s);
            self.ready.notify_one();
        }
    }

    /// Forgets the failures of `item` (it succeeded).
    pub fn forget(&self, item: &T) {
        self.state.lock().failures.remove(item);
    }

    /// Queues `item` again after a delay that grows with each failure.
    pub fn add_rate_limited(self: &Arc<Self>, item: T) {
        let delay = {
            let mut s = self.state.lock();
            let n = s.failures.entry(item.clone()).or_default();
            *n = n.saturating_add(1);
            BASE_DELAY
                .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(16)))
                .min(MAX_DELAY)
        };
        let queue = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(q) = queue.upgrade() {
                q.add(item);
            }
        });
    }

    /// Items queued and not yet handed out.
    pub fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// Whether no item waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_item_is_queued_once() {
        // A burst of events about one object must cost one pass, not many.
        let q = WorkQueue::new();
        q.add(1);
        q.add(1);
        q.add(2);
        assert_eq!(q.len(), 2);
        assert_eq!(q.next().await, 1);
        assert_eq!(q.next().await, 2);
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn an_item_added_while_processing_comes_back_after_done() {
        // Two workers must never act on one object at once, yet no change may be lost.
        let q = WorkQueue::new();
        q.add(7);
        let item = q.next().await;
        q.add(7);
        assert!(q.is_empty(), "not handed out twice");
        q.done(&item);
        assert_eq!(q.len(), 1);
        let again = tokio::time::timeout(Duration::from_secs(1), q.next()).await;
        assert_eq!(again.ok(), Some(7));
    }

    #[tokio::test]
    async fn a_waiting_worker_is_woken_by_add() {
        let q = Arc::new(WorkQueue::new());
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::task::yield_now().await;
        q.add("x");
        let got = tokio::time::timeout(Duration::from_secs(1), waiter).await;
        assert_eq!(got.ok().and_then(Result::ok), Some("x"));
    }

    #[tokio::test]
    async fn failed_items_come_back() {
        // A failed write is retried without anyone else touching the object.
        let q = Arc::new(WorkQueue::new());
        q.add_rate_limited(3);
        let got = tokio::time::timeout(Duration::from_secs(2), q.next()).await;
        assert_eq!(got.ok(), Some(3));
        q.forget(&3);
        assert!(q.state.lock().failures.is_empty());
    }
}

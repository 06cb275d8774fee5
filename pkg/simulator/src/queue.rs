//! A deduplicating work queue (client-go's workqueue in small): a key waits at most once,
//! and a key being worked on is not handed to a second worker; a key that changes while
//! it is worked on is handed out again when the worker is done.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

use parking_lot::Mutex;
use tokio::sync::Notify;

struct State<K> {
    queue: VecDeque<K>,
    queued: HashSet<K>,
    processing: HashSet<K>,
    dirty: HashSet<K>,
}

/// The queue.
pub(crate) struct Queue<K> {
    state: Mutex<State<K>>,
    notify: Notify,
}

impl<K: Clone + Eq + Hash> Queue<K> {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queued: HashSet::new(),
                processing: HashSet::new(),
                dirty: HashSet::new(),
            }),
            notify: Notify::new(),
        }
    }

    /// Adds a key unless it already waits.
    pub(crate) fn push(&self, key: K) {
        let mut s = self.state.lock();
        if s.processing.contains(&key) {
            s.dirty.insert(key);
            return;
        }
        if s.queued.insert(key.clone()) {
            s.queue.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// The next key; the caller calls [`Queue::done`] when finished with it.
    pub(crate) async fn pop(&self) -> K {
        loop {
            {
                let mut s = self.state.lock();
                if let Some(key) = s.queue.pop_front() {
                    s.queued.remove(&key);
                    s.processing.insert(key.clone());
                    let more = !s.queue.is_empty();
                    drop(s);
                    if more {
                        // Another worker may be asleep while keys wait.
                        self.notify.notify_one();
                    }
                    return key;
                }
            }
            self.notify.notified().await;
        }
    }

    /// Marks a key finished; it waits again if it changed meanwhile.
    pub(crate) fn done(&self, key: &K) {
        let again = {
            let mut s = self.state.lock();
            s.processing.remove(key);
            s.dirty.remove(key)
        };
        if again {
            self.push(key.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_wait_once_and_come_back_when_changed_while_worked_on() {
        let q = Queue::new();
        q.push("a");
        q.push("a");
        q.push("b");
        assert_eq!(q.pop().await, "a");
        q.push("a");
        assert_eq!(q.pop().await, "b");
        q.done(&"b");
        q.done(&"a");
        assert_eq!(q.pop().await, "a");
        q.done(&"a");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), q.pop())
                .await
                .is_err()
        );
    }
}

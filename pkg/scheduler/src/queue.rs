//! The scheduling queue: pods ready to try (highest priority, then oldest, first) and
//! pods backing off after a failed attempt.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// The first back-off after a failed attempt (upstream's `podInitialBackoffDuration`).
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest back-off (upstream's `podMaxBackoffDuration`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The back-off after `attempts` failed attempts: 1 s doubling up to 10 s.
pub fn backoff(attempts: u32) -> Duration {
    let shift = attempts.saturating_sub(1).min(8);
    (INITIAL_BACKOFF * (1u32 << shift)).min(MAX_BACKOFF)
}

/// A queued pod: priority, then age, then arrival order.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    priority: i32,
    created: Reverse<i64>,
    seq: Reverse<u64>,
    uid: String,
}

/// The active queue and the back-off queue. Entries are invalidated lazily: each pod
/// remembers the sequence number of its live entry and stale ones are skipped.
#[derive(Debug, Default)]
pub struct Queue {
    active: BinaryHeap<Entry>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    seq: u64,
}

impl Queue {
    /// How many entries wait in the active queue (stale ones included).
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    /// Queues a pod to be tried now; returns the entry's sequence number.
    pub fn push_active(&mut self, uid: &str, priority: i32, created_ms: i64) -> u64 {
        self.seq += 1;
        self.active.push(Entry {
            priority,
            created: Reverse(created_ms),
            seq: Reverse(self.seq),
            uid: uid.to_string(),
        });
        self.seq
    }

    /// Queues a pod to be moved to the active queue at `at`; returns its sequence number.
    pub fn push_backoff(&mut self, uid: &str, at: Instant) -> u64 {
        self.seq += 1;
        self.backoff.push(Reverse((at, self.seq, uid.to_string())));
        self.seq
    }

    /// The next active entry for which `live(uid, seq)` holds.
    pub fn pop(&mut self, mut live: impl FnMut(&str, u64) -> bool) -> Option<String> {
        while let Some(e) = self.active.pop() {
            if live(&e.uid, e.seq.0) {
                return Some(e.uid);
            }
        }
        None
    }

    /// Backed-off entries due by `now` (stale ones included; the caller checks).
    pub fn due(&mut self, now: Instant) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        while let Some(Reverse((at, _, _))) = self.backoff.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, seq, uid))) = self.backoff.pop() {
                out.push((uid, seq));
            }
        }
        out
    }

    /// When the next back-off ends.
    pub fn next_due(&self) -> Option<Instant> {
        self.backoff.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Whether nothing is ready now.
    pub fn active_is_empty(&self) -> bool {
        self.active.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_priority_then_older_first() {
        let mut q = Queue::default();
        q.push_active("low-old", 0, 1);
        q.push_active("high", 10, 5);
        q.push_active("low-new", 0, 9);
        let order: Vec<String> = std::iter::from_fn(|| q.pop(|_, _| true)).collect();
        assert_eq!(order, vec!["high", "low-old", "low-new"]);
    }

    #[test]
    fn stale_entries_are_skipped() {
        let mut q = Queue::default();
        let first = q.push_active("a", 0, 1);
        let second = q.push_active("a", 0, 1);
        assert_ne!(first, second);
        assert_eq!(q.pop(|_, seq| seq == second).as_deref(), Some("a"));
        assert_eq!(q.pop(|_, seq| seq == second), None);
    }

    #[test]
    fn backoff_doubles_up_to_ten_seconds() {
        let secs: Vec<u64> = (1..=6).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 10, 10]);
    }
}

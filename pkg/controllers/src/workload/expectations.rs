//! What a controller is still waiting to see in its cache after its own writes (upstream's
//! `ControllerExpectations`). A controller that reads pods from a watch cache would create
//! the same pods twice if it synced again before the cache showed its last creates: it
//! records the names it created and deleted, and syncs the owner again only once the cache
//! shows them (or after [`EXPECTATIONS_TIMEOUT`], in case a watch event was missed).
//!
//! Unlike upstream's counters this keeps names, so whether they are satisfied is read off
//! the cache itself (level-triggered) rather than counted from events.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long expectations hold before a sync goes ahead anyway (upstream: 5 minutes).
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Pending {
    created: Vec<String>,
    deleted: Vec<String>,
    since: Instant,
}

/// Expectations of every owner of one controller, keyed by the owner (`namespace/name`
/// or its uid).
#[derive(Debug, Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    /// No expectations.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `owner` created the objects named `created` and deleted those named
    /// `deleted` (added to what it already waits for).
    pub fn expect(&self, owner: &str, created: Vec<String>, deleted: Vec<String>) {
        if created.is_empty() && deleted.is_empty() {
            return;
        }
        let mut pending = self.pending.lock();
        let entry = pending.entry(owner.to_string()).or_insert_with(|| Pending {
            created: Vec::new(),
            deleted: Vec::new(),
            since: Instant::now(),
        });
        entry.created.extend(created);
        entry.deleted.extend(deleted);
        entry.since = Instant::now();
    }

    /// Whether `owner` may sync: the cache (`present` says whether it holds a live object
    /// of that name: there and not being deleted) shows every object created and none
    /// deleted, or the expectations expired. What the cache already shows is forgotten.
    pub fn satisfied(&self, owner: &str, present: impl Fn(&str) -> bool) -> bool {
        let mut pending = self.pending.lock();
        let Some(entry) = pending.get_mut(owner) else {
            return true;
        };
        entry.created.retain(|name| !present(name));
        entry.deleted.retain(|name| present(name));
        if (entry.created.is_empty() && entry.deleted.is_empty())
            || entry.since.elapsed() >= EXPECTATIONS_TIMEOUT
        {
            pending.remove(owner);
            return true;
        }
        false
    }

    /// Drops the owner's expectations (it was deleted, or a write failed and the next sync
    /// must recount).
    pub fn forget(&self, owner: &str) {
        self.pending.lock().remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn an_owner_waits_until_the_cache_shows_its_writes() {
        let e = Expectations::new();
        assert!(e.satisfied("ns/web", |_| false));
        e.expect(
            "ns/web",
            vec!["web-a".into(), "web-b".into()],
            vec!["web-old".into()],
        );
        let mut cache: HashSet<&str> = ["web-old"].into();
        assert!(!e.satisfied("ns/web", |n| cache.contains(n)));
        cache.insert("web-a");
        cache.insert("web-b");
        assert!(!e.satisfied("ns/web", |n| cache.contains(n)));
        cache.remove("web-old");
        assert!(e.satisfied("ns/web", |n| cache.contains(n)));
        // Satisfied expectations are gone: a later sync does not wait for anything.
        cache.clear();
        assert!(e.satisfied("ns/web", |n| cache.contains(n)));
        e.expect("ns/web", vec!["web-c".into()], vec![]);
        e.forget("ns/web");
        assert!(e.satisfied("ns/web", |_| false));
    }
}

//! Watch cache: serves lists and watches from memory so the database sees only writes.
//!
//! Holds every live key and a window of recent events. The backend feeds it each commit
//! before acknowledging the commit, so a client always reads its own writes here. A watch
//! can start from any revision inside the window; older revisions get
//! [`StoreError::Compacted`] (410 Gone at the API), and a watcher that falls behind the
//! window is ended the same way, which makes clients re-list.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::backend::{EventSink, ListPage};
use crate::{Event, EventKind, KeyValue, Revision, StoreError, prefix_end};

/// Default number of events kept for watches to resume from.
pub const DEFAULT_WINDOW: usize = 100_000;
/// Default bound on the bytes the event window holds: an event keeps the value it wrote
/// alive after later writes replace it, so under churn the window, not the live data,
/// would otherwise dominate memory.
pub const DEFAULT_WINDOW_BYTES: usize = 64 << 20;

/// What one event costs the window: its key and value plus bookkeeping.
fn event_cost(event: &Event) -> usize {
    event.kv.key.len() + event.kv.value.len() + 64
}

struct CacheState {
    revision: Revision,
    objects: BTreeMap<String, Arc<KeyValue>>,
    events: VecDeque<Arc<Event>>,
    /// Sum of [`event_cost`] over `events`.
    event_bytes: usize,
    /// A watch may start at any revision at or above this one.
    window_start: Revision,
}

/// Current state plus recent events, in memory.
pub struct WatchCache {
    state: RwLock<CacheState>,
    notify: watch::Sender<Revision>,
    capacity: usize,
    capacity_bytes: usize,
}

impl WatchCache {
    /// An empty cache keeping up to `capacity` events of at most
    /// [`DEFAULT_WINDOW_BYTES`] in all.
    pub fn new(capacity: usize) -> Self {
        Self::with_limits(capacity, DEFAULT_WINDOW_BYTES)
    }

    /// An empty cache keeping up to `capacity` events and about `capacity_bytes` of them
    /// (the newest event is always kept).
    pub fn with_limits(capacity: usize, capacity_bytes: usize) -> Self {
        let (notify, _) = watch::channel(0);
        Self {
            state: RwLock::new(CacheState {
                revision: 0,
                objects: BTreeMap::new(),
                events: VecDeque::new(),
                event_bytes: 0,
                window_start: 0,
            }),
            notify,
            capacity: capacity.max(1),
            capacity_bytes,
        }
    }

    /// Loads the backend's state at start; the event window begins here.
    pub fn init(&self, page: ListPage) {
        let mut state = self.state.write();
        state.objects = page
            .items
            .into_iter()
            .map(|kv| (kv.key.clone(), Arc::new(kv)))
            .collect();
        state.revision = page.revision;
        state.window_start = page.revision;
        state.events.clear();
        state.event_bytes = 0;
        drop(state);
        self.notify.send_replace(page.revision);
    }

    /// The revision the cache reflects.
    pub fn revision(&self) -> Revision {
        self.state.read().revision
    }

    /// Oldest revision a watch can still start from; older requests get 410 Gone.
    pub fn oldest_revision(&self) -> Revision {
        self.state.read().window_start
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.state.read().objects.len()
    }

    /// Whether no keys are live.
    pub fn is_empty(&self) -> bool {
        self.state.read().objects.is_empty()
    }

    /// The current value of a key.
    pub fn get(&self, key: &str) -> Option<Arc<KeyValue>> {
        self.state.read().objects.get(key).cloned()
    }

    /// Live keys under `prefix`, strictly after `start_after`, at most `limit` (0 = all),
    /// with the revision they reflect and whether more remain.
    pub fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> (Vec<Arc<KeyValue>>, Revision, bool) {
        let state = self.state.read();
        let start = match start_after {
            Some(s) if s >= prefix => std::ops::Bound::Excluded(s.to_string()),
            _ => std::ops::Bound::Included(prefix.to_string()),
        };
        let end = match prefix_end(prefix) {
            Some(e) => std::ops::Bound::Excluded(e),
            None => std::ops::Bound::Unbounded,
        };
        let mut items = Vec::new();
        let mut more = false;
        for (_, kv) in state.objects.range((start, end)) {
            if limit > 0 && items.len() == limit {
                more = true;
                break;
            }
            items.push(kv.clone());
        }
        (items, state.revision, more)
    }

    /// Number of live keys under `prefix` strictly after `start_after`, with the revision
    /// the count reflects.
    pub fn count(&self, prefix: &str, start_after: Option<&str>) -> (u64, Revision) {
        let state = self.state.read();
        let start = match start_after {
            Some(s) if s >= prefix => std::ops::Bound::Excluded(s.to_string()),
            _ => std::ops::Bound::Included(prefix.to_string()),
        };
        let end = match prefix_end(prefix) {
            Some(e) => std::ops::Bound::Excluded(e),
            None => std::ops::Bound::Unbounded,
        };
        let n = state.objects.range((start, end)).count();
        (n as u64, state.revision)
    }

    /// Waits until the cache reflects `revision`.
    pub async fn wait_for(&self, revision: Revision) {
        let mut rx = self.notify.subscribe();
        // The closure sees the latest value first, so a revision already reached returns
        // at once; a closed sender (impossible while self lives) also ends the wait.
        let _ = rx.wait_for(|r| *r >= revision).await;
    }

    /// Events for keys under `prefix` after revision `from`.
    pub fn watch(
        self: &Arc<Self>,
        prefix: &str,
        from: Revision,
    ) -> Result<WatchStream, StoreError> {
        let state = self.state.read();
        if from < state.window_start {
            return Err(StoreError::Compacted {
                requested: from,
                oldest: state.window_start,
            });
        }
        if from > state.revision {
            return Err(StoreError::FutureRevision {
                requested: from,
                current: state.revision,
            });
        }
        Ok(WatchStream {
            cache: self.clone(),
            prefix: prefix.to_string(),
            position: from,
            rx: self.notify.subscribe(),
            buffer: VecDeque::new(),
        })
    }
}

impl EventSink for WatchCache {
    fn reset(&self, page: ListPage) {
        self.init(page);
    }

    fn progress(&self, revision: Revision) {
        let mut state = self.state.write();
        if revision <= state.revision {
            return;
        }
        state.revision = revision;
        drop(state);
        self.notify.send_replace(revision);
    }

    fn apply(&self, events: Vec<Event>) {
        let mut state = self.state.write();
        let mut last = state.revision;
        for mut event in events {
            let key = event.kv.key.clone();
            event.prev = match event.kind {
                EventKind::Deleted => state.objects.remove(&key),
                EventKind::Created | EventKind::Updated => {
                    state.objects.insert(key, event.kv.clone())
                }
            };
            last = last.max(event.revision());
            state.event_bytes += event_cost(&event);
            state.events.push_back(Arc::new(event));
        }
        while state.events.len() > self.capacity
            || (state.event_bytes > self.capacity_bytes && state.events.len() > 1)
        {
            if let Some(old) = state.events.pop_front() {
                state.event_bytes -= event_cost(&old).min(state.event_bytes);
                state.window_start = old.revision();
            }
        }
        state.revision = last;
        drop(state);
        self.notify.send_replace(last);
    }
}

/// A watch on one key prefix, from a revision on.
pub struct WatchStream {
    cache: Arc<WatchCache>,
    prefix: String,
    position: Revision,
    rx: watch::Receiver<Revision>,
    buffer: VecDeque<Arc<Event>>,
}

impl WatchStream {
    /// The revision up to which this watcher has seen every event (for bookmarks).
    pub fn position(&self) -> Revision {
        self.position
    }

    /// The next event; [`StoreError::Compacted`] when the watcher fell out of the window.
    pub async fn next(&mut self) -> Result<Arc<Event>, StoreError> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Ok(event);
            }
            self.fill()?;
            if self.buffer.is_empty() {
                self.rx.changed().await.map_err(|_| StoreError::Closed)?;
            }
        }
    }

    /// Moves every event after the position into the buffer.
    fn fill(&mut self) -> Result<(), StoreError> {
        let state = self.cache.state.read();
        if self.position >= state.revision {
            // Mark the current value seen so `changed` waits for the next commit.
            self.rx.borrow_and_update();
            return Ok(());
        }
        if self.position < state.window_start {
            return Err(StoreError::Compacted {
                requested: self.position,
                oldest: state.window_start,
            });
        }
        let start = state
            .events
            .partition_point(|e| e.revision() <= self.position);
        for event in state.events.range(start..) {
            if event.kv.key.starts_with(&self.prefix) {
                self.buffer.push_back(event.clone());
            }
        }
        self.position = state.revision;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

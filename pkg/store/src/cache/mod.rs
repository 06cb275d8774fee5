//! Watch cache: serves lists and watches from memory so the database sees only writes.
//!
//! Holds every live key and a window of recent events. The backend feeds it each commit
//! before acknowledging the commit, so a client always reads its own writes here. A watch
//! can start from any revision inside the window; older revisions get
//! [`StoreError::Compacted`] (410 Gone at the API), and a watcher that falls behind the
//! window is ended the same way, which makes clients re-list.
//!
//! A commit wakes only the watchers of its keys' topic (the resource: the key up to its
//! third `/`, as `/registry/configmaps/`), as upstream keeps one watch cache per
//! resource: a server has a watch on every resource (the garbage collector's alone), and
//! waking them all for each write cost more than the write. A watcher left asleep while
//! other resources were written is as current as the cache for its own keys: its
//! position and bookmarks say so, and events of other topics leaving the window do not
//! end it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::backend::{EventSink, ListPage};
use crate::waiters::RevisionWaiters;
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

/// The topic of a key or watch prefix: up to and including its third `/`
/// (`/registry/configmaps/`, `/registry/apiextensions.k8s.io/` for custom resources of
/// a group). Every key under a prefix with a topic shares that topic; a prefix without
/// one (`/registry/`) watches every topic.
fn topic(key: &str) -> Option<&str> {
    key.match_indices('/').nth(2).map(|(i, _)| &key[..=i])
}

struct CacheState {
    revision: Revision,
    objects: BTreeMap<String, Arc<KeyValue>>,
    events: VecDeque<Arc<Event>>,
    /// Sum of [`event_cost`] over `events`.
    event_bytes: usize,
    /// Bytes of the live values in `objects`.
    live_bytes: u64,
    /// A watch may start at any revision at or above this one.
    window_start: Revision,
    /// Revision of the newest event of each topic since `loaded_at`: a watcher whose
    /// topic has none after its position is as current as the cache.
    topic_last: HashMap<String, Revision>,
    /// Revision of the newest event of each topic that left the window: a watcher behind
    /// `window_start` lost nothing if its topic has none after its position.
    topic_evicted: HashMap<String, Revision>,
    /// The revision the state was last loaded at (start, or a backend's resync).
    loaded_at: Revision,
}

impl CacheState {
    /// Whether a watcher of `topic` at `position` has every event of its topic up to the
    /// cache's revision.
    fn topic_current(&self, topic: Option<&str>, position: Revision) -> bool {
        topic.is_some_and(|t| {
            position >= self.loaded_at && self.topic_last.get(t).is_none_or(|r| *r <= position)
        })
    }

    /// Whether a watcher of `topic` at `position` (behind the window) lost no event of its
    /// topic: the window still has every one after its position.
    fn topic_kept(&self, topic: Option<&str>, position: Revision) -> bool {
        topic.is_some_and(|t| {
            position >= self.loaded_at && self.topic_evicted.get(t).is_none_or(|r| *r <= position)
        })
    }

    /// Records the revision of an event of `key`'s topic in `map`.
    fn note_topic(map: &mut HashMap<String, Revision>, key: &str, revision: Revision) {
        if let Some(t) = topic(key) {
            match map.get_mut(t) {
                Some(r) => *r = revision,
                None => {
                    map.insert(t.to_string(), revision);
                }
            }
        }
    }
}

/// Current state plus recent events, in memory.
pub struct WatchCache {
    state: RwLock<CacheState>,
    /// Wakes the watch streams of every topic on every commit.
    notify: watch::Sender<Revision>,
    /// Wakes the watch streams of one topic on that topic's commits.
    topics: Mutex<HashMap<String, watch::Sender<Revision>>>,
    /// Wakes writers and readers waiting for one revision only once it is reached.
    waiters: RevisionWaiters,
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
                live_bytes: 0,
                window_start: 0,
                topic_last: HashMap::new(),
                topic_evicted: HashMap::new(),
                loaded_at: 0,
            }),
            notify,
            topics: Mutex::new(HashMap::new()),
            waiters: RevisionWaiters::default(),
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
        state.live_bytes = state.objects.values().map(|kv| kv.value.len() as u64).sum();
        state.revision = page.revision;
        state.window_start = page.revision;
        state.loaded_at = page.revision;
        state.topic_last.clear();
        state.topic_evicted.clear();
        state.events.clear();
        state.event_bytes = 0;
        drop(state);
        // Every watcher looks again: those older than the new state must relist.
        self.notify.send_replace(page.revision);
        for sender in self.topics.lock().values() {
            sender.send_replace(page.revision);
        }
        self.waiters.advance(page.revision);
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
        self.waiters.wait_for(revision).await;
    }

    /// Events for keys under `prefix` after revision `from`.
    pub fn watch(
        self: &Arc<Self>,
        prefix: &str,
        from: Revision,
    ) -> Result<WatchStream, StoreError> {
        let topic = topic(prefix);
        // Subscribed before the state is read: a commit after the read wakes the stream.
        let rx = match topic {
            Some(t) => self
                .topics
                .lock()
                .entry(t.to_string())
                .or_insert_with(|| watch::channel(0).0)
                .subscribe(),
            None => self.notify.subscribe(),
        };
        let state = self.state.read();
        if from < state.window_start && !state.topic_kept(topic, from) {
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
            topic: topic.map(str::to_string),
            position: from,
            rx,
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
        self.waiters.advance(revision);
    }

    fn apply(&self, events: Vec<Event>) {
        let mut state = self.state.write();
        let mut last = state.revision;
        // Usually one: a commit writes one key, or a few of one resource.
        let mut touched: Vec<String> = Vec::new();
        for mut event in events {
            let key = event.kv.key.clone();
            CacheState::note_topic(&mut state.topic_last, &key, event.revision());
            if let Some(t) = topic(&key)
                && !touched.iter().any(|seen| seen == t)
            {
                touched.push(t.to_string());
            }
            event.prev = match event.kind {
                EventKind::Deleted => {
                    let prev = state.objects.remove(&key);
                    if let Some(last) = prev.as_ref().filter(|_| event.kv.create_revision == 0) {
                        // The backend did not carry the last value (fills_deleted_values).
                        event.kv = Arc::new(KeyValue {
                            key,
                            value: last.value.clone(),
                            create_revision: last.create_revision,
                            mod_revision: event.kv.mod_revision,
                        });
                    }
                    prev
                }
                EventKind::Created | EventKind::Updated => {
                    state.live_bytes += event.kv.value.len() as u64;
                    state.objects.insert(key, event.kv.clone())
                }
            };
            if let Some(prev) = &event.prev {
                state.live_bytes = state.live_bytes.saturating_sub(prev.value.len() as u64);
            }
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
                CacheState::note_topic(&mut state.topic_evicted, &old.kv.key, old.revision());
            }
        }
        state.revision = last;
        drop(state);
        self.notify.send_replace(last);
        if !touched.is_empty() {
            let topics = self.topics.lock();
            for t in &touched {
                if let Some(sender) = topics.get(t) {
                    sender.send_replace(last);
                }
            }
        }
        self.waiters.advance(last);
    }

    fn fills_deleted_values(&self) -> bool {
        true
    }

    fn live_bytes(&self) -> Option<u64> {
        Some(self.state.read().live_bytes)
    }
}

/// A watch on one key prefix, from a revision on.
pub struct WatchStream {
    cache: Arc<WatchCache>,
    prefix: String,
    /// The prefix's topic; `None` watches every topic.
    topic: Option<String>,
    position: Revision,
    rx: watch::Receiver<Revision>,
    buffer: VecDeque<Arc<Event>>,
}

impl WatchStream {
    /// The revision up to which this watcher has seen every event (for bookmarks).
    pub fn position(&self) -> Revision {
        if !self.buffer.is_empty() {
            return self.position;
        }
        // Not woken by other topics' commits: as current as the cache unless its own
        // topic has events it has not taken yet.
        let state = self.cache.state.read();
        if state.topic_current(self.topic.as_deref(), self.position) {
            state.revision.max(self.position)
        } else {
            self.position
        }
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
        // Behind the window is fine while only other topics' events left it.
        if self.position < state.window_start
            && !state.topic_kept(self.topic.as_deref(), self.position)
        {
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

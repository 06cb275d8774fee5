//! Shared informers: one watch of a resource whose objects are decoded once and handed,
//! as `Arc`s, to every component inside the server that watches that resource
//! (upstream's `SharedInformerFactory`).
//!
//! With 30k pods and a dozen in-process pod watchers (scheduler, simulated nodes,
//! ReplicaSet, Job, endpoints, disruption … controllers), each pod write was encoded once
//! by the server but decoded from JSON a dozen times; the informer decodes it once and
//! keeps one copy of each object that its subscribers may read instead of their own.
//!
//! A subscriber sees the same event sequence a `kube::runtime::watcher` gives: `Init`,
//! `InitApply` for each object, `InitDone`, then `Apply`/`Delete`; after the shared watch
//! re-lists (a 410 Gone, a dropped connection), again `Init` … `InitDone`. One that
//! subscribes after the first list gets the cache's objects as its own initial list.
//!
//! A subscriber that lags does not hold every version of every object: its queue keeps
//! at most one pending `Apply` per object (a newer version replaces the queued one in
//! place, as upstream's work queues keep one entry per key), so what waits for a slow
//! subscriber is bounded by the number of objects, not by the rate of writes. Deletes
//! and re-lists stay in order and are never merged.

mod backlog;
mod pods;

pub use backlog::Backlog;
pub use pods::slim_pod;

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

/// An object's key: namespace ("" for cluster-scoped kinds) and name.
pub type Key = (String, String);

/// The key of `obj`.
pub fn key_of<K: Resource>(obj: &K) -> Key {
    let m = obj.meta();
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

/// One subscriber's queue of events not yet taken, shared with the informer's watch task.
struct Queue<K> {
    events: VecDeque<Queued<K>>,
    /// The position (counted from the first event ever queued) of `events[0]`.
    head: u64,
    /// Where each object's pending `Apply` sits, by the hash of its key, while a newer
    /// version may still replace it.
    apply_at: HashMap<u64, u64>,
    waker: Option<Waker>,
}

/// A queued event and the hash of its object's key (0 for `Init`/`InitDone`).
struct Queued<K> {
    hash: u64,
    ev: Event<Arc<K>>,
}

impl<K: Resource> Queue<K> {
    fn new() -> Self {
        Self {
            events: VecDeque::new(),
            head: 0,
            apply_at: HashMap::new(),
            waker: None,
        }
    }

    /// Queues `ev` (whose object's key hashes to `hash`); true when it replaced a pending
    /// `Apply` of the same object instead of growing the queue.
    fn push(&mut self, hash: u64, ev: Event<Arc<K>>) -> bool {
        let merged = match &ev {
            Event::Apply(new) => match self.apply_at.get(&hash) {
                Some(&pos) if pos >= self.head => {
                    let slot = &mut self.events[(pos - self.head) as usize];
                    // Two keys may share a hash: merge only into the same object.
                    if let Event::Apply(old) = &slot.ev
                        && same_key(old.as_ref(), new.as_ref())
                    {
                        slot.ev = ev.clone();
                        true
                    } else {
                        false
                    }
                }
                _ => false,
            },
            _ => false,
        };
        if !merged {
            let pos = self.head + self.events.len() as u64;
            match &ev {
                Event::Apply(_) => {
                    self.apply_at.insert(hash, pos);
                }
                // A later Apply must come after the delete (the name may be reused).
                Event::Delete(_) => {
                    self.apply_at.remove(&hash);
                }
                // Nothing merges across the boundaries of a list.
                Event::Init | Event::InitApply(_) | Event::InitDone => self.apply_at.clear(),
            }
            self.events.push_back(Queued { hash, ev });
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        merged
    }

    fn pop(&mut self) -> Option<Event<Arc<K>>> {
        let q = self.events.pop_front()?;
        let pos = self.head;
        self.head += 1;
        if matches!(q.ev, Event::Apply(_)) && self.apply_at.get(&q.hash) == Some(&pos) {
            self.apply_at.remove(&q.hash);
        }
        Some(q.ev)
    }
}

fn same_key<K: Resource>(a: &K, b: &K) -> bool {
    let (a, b) = (a.meta(), b.meta());
    a.name == b.name && a.namespace == b.namespace
}

/// The informer's side of a subscription; gone once the subscription is dropped.
type Sender<K> = Weak<Mutex<Queue<K>>>;

/// What the subscribers' queues have held, for the measurements in the server's log.
#[derive(Debug, Default)]
struct Stats {
    /// The most events one subscriber's queue has held.
    peak: AtomicUsize,
    /// Versions replaced by a newer one before their subscriber took them.
    merged: AtomicU64,
}

struct State<K> {
    /// The objects as of the last complete list and the events after it.
    store: HashMap<Key, Arc<K>>,
    /// A re-list in progress: the objects listed so far.
    relist: Option<HashMap<Key, Arc<K>>>,
    /// Whether a list has completed once.
    synced: bool,
    /// Subscribers that get every event as it comes.
    live: Vec<Sender<K>>,
    /// Subscribers that joined during a list: they get the whole store at `InitDone`.
    waiting: Vec<Sender<K>>,
    /// Hashes objects' keys for the subscribers' queues.
    hasher: RandomState,
    /// Tells readers waiting for the first complete list.
    synced_tx: tokio::sync::watch::Sender<bool>,
    stats: Arc<Stats>,
}

impl<K: Resource<DynamicType = ()>> State<K> {
    fn new() -> Self {
        Self {
            store: HashMap::new(),
            relist: None,
            synced: false,
            live: Vec::new(),
            waiting: Vec::new(),
            hasher: RandomState::new(),
            synced_tx: tokio::sync::watch::Sender::new(false),
            stats: Arc::default(),
        }
    }

    fn hash(&self, obj: &K) -> u64
    where
        K: Resource,
    {
        let m = obj.meta();
        self.hasher.hash_one((
            m.namespace.as_deref().unwrap_or(""),
            m.name.as_deref().unwrap_or(""),
        ))
    }

    /// Queues `ev` for one subscriber; false when the subscriber is gone.
    fn send(&self, tx: &Sender<K>, hash: u64, ev: Event<Arc<K>>) -> bool
    where
        K: Resource,
    {
        let Some(q) = tx.upgrade() else {
            return false;
        };
        let mut q = q.lock();
        if q.push(hash, ev) {
            self.stats.merged.fetch_add(1, Ordering::Relaxed);
        } else {
            let len = q.events.len();
            let peak = self.stats.peak.fetch_max(len, Ordering::Relaxed);
            // Logged at each doubling past 1024: how far the slowest subscriber lags.
            if len > peak && len >= 1024 && len.is_power_of_two() {
                tracing::info!(
                    queued = len,
                    merged = self.stats.merged.load(Ordering::Relaxed),
                    kind = K::kind(&()).as_ref(),
                    "a shared informer's subscriber lags"
                );
            }
        }
        true
    }

    /// Sends the store as an initial list; false when the subscriber is gone.
    fn replay(&self, tx: &Sender<K>) -> bool {
        if !self.send(tx, 0, Event::Init) {
            return false;
        }
        for obj in self.store.values() {
            if !self.send(tx, 0, Event::InitApply(obj.clone())) {
                return false;
            }
        }
        self.send(tx, 0, Event::InitDone)
    }

    fn broadcast(&mut self, ev: &Event<Arc<K>>) {
        let hash = match ev {
            Event::Apply(o) | Event::Delete(o) => self.hash(o),
            Event::Init | Event::InitApply(_) | Event::InitDone => 0,
        };
        let mut live = std::mem::take(&mut self.live);
        live.retain(|tx| self.send(tx, hash, ev.clone()));
        self.live = live;
    }
}

struct Inner<K> {
    state: Arc<Mutex<State<K>>>,
    /// The watch, started by the first subscriber.
    task: Mutex<Option<JoinHandle<()>>>,
    api: Api<K>,
    slim: fn(&mut K),
}

impl<K> Drop for Inner<K> {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().take() {
            task.abort();
        }
    }
}

/// One watch of every object of kind `K`, shared by its subscribers; cheap to clone.
/// The watch starts with the first subscriber and stops once every handle and every
/// subscription is dropped.
pub struct Informer<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K> Debug for Informer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Informer").finish_non_exhaustive()
    }
}

/// Drops what no in-process reader uses from any object: its managedFields (the field
/// sets of server-side apply, often the largest part of an object as decoded).
pub fn drop_managed_fields<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    /// An informer over every object of `api` (which should be cluster-wide); `slim`
    /// strips what no subscriber reads from each object before it is shared.
    pub fn new(api: Api<K>, slim: fn(&mut K)) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Arc::new(Mutex::new(State::new())),
                task: Mutex::new(None),
                api,
                slim,
            }),
        }
    }

    /// An informer over every object of kind `K` the client may read, without
    /// managedFields.
    pub fn all(client: kube::Client) -> Self {
        Self::new(Api::all(client), drop_managed_fields::<K>)
    }

    fn ensure_started(&self) {
        let mut task = self.inner.task.lock();
        if task.is_some() {
            return;
        }
        let state = self.inner.state.clone();
        let slim = self.inner.slim;
        let stream = watcher::watcher(self.inner.api.clone(), watcher::Config::default())
            .default_backoff()
            .modify(slim);
        *task = Some(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(ev) => apply(&state, ev),
                    Err(e) => tracing::debug!(error = %e, "shared watch failed; retrying"),
                }
            }
        }));
    }

    /// The events of every object from now on, preceded by an initial list.
    pub fn subscribe(&self) -> Subscription<K> {
        let queue = Arc::new(Mutex::new(Queue::new()));
        let tx = Arc::downgrade(&queue);
        {
            let mut state = self.inner.state.lock();
            if state.synced && state.relist.is_none() {
                if state.replay(&tx) {
                    state.live.push(tx);
                }
            } else {
                state.waiting.push(tx);
            }
        }
        self.ensure_started();
        Subscription {
            queue,
            _informer: self.clone(),
        }
    }

    /// [`subscribe`](Self::subscribe) as a `kube::runtime::watcher` stream of owned
    /// objects (each a copy of the shared one), for code written against a watcher.
    pub fn watch(&self) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + use<K> {
        self.subscribe().map(|ev| Ok(owned(ev)))
    }

    /// The objects of every event (applied, deleted, listed), shared: a trigger stream
    /// for `Controller::watches_shared_stream`.
    pub fn touched(&self) -> impl Stream<Item = Arc<K>> + Send + use<K> {
        self.subscribe().filter_map(|ev| {
            futures::future::ready(match ev {
                Event::Apply(o) | Event::Delete(o) | Event::InitApply(o) => Some(o),
                Event::Init | Event::InitDone => None,
            })
        })
    }

    /// The object with this key, as last seen.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let key = (namespace.to_string(), name.to_string());
        self.inner.state.lock().store.get(&key).cloned()
    }

    /// Every object, as last seen.
    pub fn state(&self) -> Vec<Arc<K>> {
        self.inner.state.lock().store.values().cloned().collect()
    }

    /// The objects, as last seen, for which `keep` holds.
    pub fn state_filter(&self, keep: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        self.inner
            .state
            .lock()
            .store
            .values()
            .filter(|o| keep(o))
            .cloned()
            .collect()
    }

    /// Starts the shared watch without subscribing, for readers of the cache alone; it
    /// runs while any handle is held.
    pub fn start(&self) {
        self.ensure_started();
    }

    /// Completes once a complete list has been seen (starting the watch if need be).
    pub async fn wait_until_ready(&self) {
        self.ensure_started();
        let mut rx = self.inner.state.lock().synced_tx.subscribe();
        // The sender lives as long as the informer, which `self` holds.
        let _ = rx.wait_for(|synced| *synced).await;
    }

    /// Whether a complete list has been seen.
    pub fn is_synced(&self) -> bool {
        self.inner.state.lock().synced
    }

    /// The most events one subscriber has had queued, and how many queued versions a
    /// newer one replaced before they were taken.
    pub fn queue_stats(&self) -> (usize, u64) {
        let stats = self.inner.state.lock().stats.clone();
        (
            stats.peak.load(Ordering::Relaxed),
            stats.merged.load(Ordering::Relaxed),
        )
    }
}

impl Informer<Pod> {
    /// An informer over every pod the client may read, each pruned to what readers
    /// inside the server use ([`slim_pod`]).
    pub fn pods(client: kube::Client) -> Self {
        Self::new(Api::all(client), slim_pod)
    }
}

/// An event of shared objects as one of owned copies.
pub fn owned<K: Clone>(ev: Event<Arc<K>>) -> Event<K> {
    match ev {
        Event::Apply(o) => Event::Apply(Arc::unwrap_or_clone(o)),
        Event::Delete(o) => Event::Delete(Arc::unwrap_or_clone(o)),
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(Arc::unwrap_or_clone(o)),
        Event::InitDone => Event::InitDone,
    }
}

fn apply<K: Resource<DynamicType = ()>>(state: &Mutex<State<K>>, ev: Event<K>) {
    let mut s = state.lock();
    match ev {
        Event::Init => {
            s.relist = Some(HashMap::new());
            s.broadcast(&Event::Init);
        }
        Event::InitApply(o) => {
            let o = Arc::new(o);
            if let Some(relist) = s.relist.as_mut() {
                relist.insert(key_of(&*o), o.clone());
            }
            s.broadcast(&Event::InitApply(o));
        }
        Event::InitDone => {
            if let Some(relist) = s.relist.take() {
                s.store = relist;
            }
            s.synced = true;
            s.synced_tx.send_replace(true);
            s.broadcast(&Event::InitDone);
            let waiting = std::mem::take(&mut s.waiting);
            for tx in waiting {
                if s.replay(&tx) {
                    s.live.push(tx);
                }
            }
        }
        Event::Apply(o) => {
            let o = Arc::new(o);
            s.store.insert(key_of(&*o), o.clone());
            s.broadcast(&Event::Apply(o));
        }
        Event::Delete(o) => {
            let o = Arc::new(o);
            s.store.remove(&key_of(&*o));
            s.broadcast(&Event::Delete(o));
        }
    }
}

/// The events of one subscriber; keeps the informer running while held.
pub struct Subscription<K> {
    queue: Arc<Mutex<Queue<K>>>,
    _informer: Informer<K>,
}

impl<K: Resource> Subscription<K> {
    /// Events queued and not yet taken.
    pub fn len(&self) -> usize {
        self.queue.lock().events.len()
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Resource> Stream for Subscription<K> {
    type Item = Event<Arc<K>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut q = self.queue.lock();
        match q.pop() {
            Some(ev) => Poll::Ready(Some(ev)),
            None => {
                q.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{DeleteParams, PostParams};

    use super::*;

    fn cm(name: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm
    }

    async fn next(sub: &mut Subscription<ConfigMap>) -> Event<Arc<ConfigMap>> {
        tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
    }

    fn name(ev: &Event<Arc<ConfigMap>>) -> Option<(&'static str, String)> {
        let (what, o) = match ev {
            Event::Apply(o) => ("apply", o),
            Event::Delete(o) => ("delete", o),
            Event::InitApply(o) => ("init-apply", o),
            Event::Init | Event::InitDone => return None,
        };
        Some((what, o.metadata.name.clone().unwrap_or_default()))
    }

    /// Reads events until `InitDone`; returns the names listed.
    async fn initial(sub: &mut Subscription<ConfigMap>, ns_prefix: &str) -> Vec<String> {
        assert!(matches!(next(sub).await, Event::Init));
        let mut names = Vec::new();
        loop {
            let ev = next(sub).await;
            match &ev {
                Event::InitDone => break,
                Event::InitApply(o) => {
                    if o.metadata.namespace.as_deref() == Some(ns_prefix) {
                        names.push(o.metadata.name.clone().unwrap_or_default());
                    }
                }
                other => panic!("unexpected {:?}", name(other)),
            }
        }
        names.sort();
        names
    }

    fn versioned(name: &str, v: &str) -> Arc<ConfigMap> {
        let mut c = cm(name);
        c.metadata.resource_version = Some(v.into());
        Arc::new(c)
    }

    fn drain(q: &mut Queue<ConfigMap>) -> Vec<String> {
        std::iter::from_fn(|| q.pop())
            .map(|ev| match ev {
                Event::Apply(o) => format!(
                    "apply {}@{}",
                    o.metadata.name.clone().unwrap_or_default(),
                    o.metadata.resource_version.clone().unwrap_or_default()
                ),
                Event::Delete(o) => {
                    format!("delete {}", o.metadata.name.clone().unwrap_or_default())
                }
                Event::InitApply(o) => {
                    format!("init-apply {}", o.metadata.name.clone().unwrap_or_default())
                }
                Event::Init => "init".into(),
                Event::InitDone => "init-done".into(),
            })
            .collect()
    }

    #[test]
    fn a_lagging_queue_keeps_one_pending_version_per_object_and_the_order_of_deletes() {
        let state = State::<ConfigMap>::new();
        let h = |name: &str| state.hash(&cm(name));
        let mut q = Queue::new();
        // Newer versions replace the queued one in place; other objects keep their place.
        assert!(!q.push(h("a"), Event::Apply(versioned("a", "1"))));
        assert!(!q.push(h("b"), Event::Apply(versioned("b", "2"))));
        assert!(q.push(h("a"), Event::Apply(versioned("a", "3"))));
        assert_eq!(q.events.len(), 2);
        assert_eq!(drain(&mut q), ["apply a@3", "apply b@2"]);
        // Once taken, a new version queues again.
        assert!(!q.push(h("a"), Event::Apply(versioned("a", "4"))));
        assert_eq!(drain(&mut q), ["apply a@4"]);
        // A delete separates the versions before it from a new object of the same name.
        q.push(h("a"), Event::Apply(versioned("a", "5")));
        q.push(h("a"), Event::Delete(versioned("a", "6")));
        assert!(!q.push(h("a"), Event::Apply(versioned("a", "7"))));
        assert!(q.push(h("a"), Event::Apply(versioned("a", "8"))));
        assert_eq!(drain(&mut q), ["apply a@5", "delete a", "apply a@8"]);
        // Nothing merges across a re-list.
        q.push(h("a"), Event::Apply(versioned("a", "9")));
        q.push(0, Event::Init);
        q.push(0, Event::InitApply(versioned("a", "10")));
        q.push(0, Event::InitDone);
        assert!(!q.push(h("a"), Event::Apply(versioned("a", "11"))));
        assert_eq!(
            drain(&mut q),
            [
                "apply a@9",
                "init",
                "init-apply a",
                "init-done",
                "apply a@11"
            ]
        );
        // Two keys that share a hash are never merged.
        q.push(7, Event::Apply(versioned("a", "12")));
        assert!(!q.push(7, Event::Apply(versioned("b", "13"))));
        assert_eq!(drain(&mut q), ["apply a@12", "apply b@13"]);
        assert!(q.apply_at.is_empty());
    }

    #[tokio::test]
    async fn subscribers_share_one_watch_and_late_ones_get_the_cache_as_a_list() {
        let server = k1s_apiserver::test_util::TestApiServer::new().await.server;
        let client =
            k1s_apiserver::client::client(server, k1s_apiserver::auth::UserInfo::loopback());
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        api.create(&PostParams::default(), &cm("a")).await.unwrap();

        let informer = Informer::<ConfigMap>::all(client);
        let mut first = informer.subscribe();
        assert_eq!(initial(&mut first, "default").await, ["a"]);
        assert!(informer.is_synced());
        assert!(informer.get("default", "a").is_some());

        api.create(&PostParams::default(), &cm("b")).await.unwrap();
        loop {
            if let Some(("apply", n)) = name(&next(&mut first).await)
                && n == "b"
            {
                break;
            }
        }
        // A late subscriber lists from the cache, then sees what happens next.
        let mut late = informer.subscribe();
        assert_eq!(initial(&mut late, "default").await, ["a", "b"]);
        api.delete("a", &DeleteParams::default()).await.unwrap();
        for sub in [&mut first, &mut late] {
            loop {
                if let Some(("delete", n)) = name(&next(sub).await)
                    && n == "a"
                {
                    break;
                }
            }
        }
        assert!(informer.get("default", "a").is_none());
        // Owned copies read the same.
        let mut owned_events = std::pin::pin!(informer.watch());
        let ev = owned_events.next().await.unwrap().unwrap();
        assert!(matches!(ev, Event::Init));
    }
}

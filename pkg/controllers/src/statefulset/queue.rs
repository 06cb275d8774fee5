//! A small work queue and watch-cache plumbing for controllers that sync one owner at a
//! time from several caches (the StatefulSet and DaemonSet controllers share it): keys are
//! queued at most once, failed syncs come back with exponential back-off, and every
//! owner is resynced periodically so time-based state (minReadySeconds) converges.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector::Lookup};
use kube::{Api, Resource};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::Shutdown;

/// The first retry delay after a failed sync; it doubles per failure up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(200);
/// The longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often every owner is synced even without events.
pub const RESYNC: Duration = Duration::from_secs(30);

/// A de-duplicating queue of `namespace/name` keys.
#[derive(Clone, Debug)]
pub struct Queue {
    tx: mpsc::UnboundedSender<String>,
    queued: Arc<Mutex<HashSet<String>>>,
}

impl Queue {
    /// An empty queue and the receiving end the worker reads.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                tx,
                queued: Arc::default(),
            },
            rx,
        )
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: String) {
        if self.queued.lock().insert(key.clone()) {
            let _ = self.tx.send(key);
        }
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: String, delay: Duration) {
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// Marks `key` taken: events from now on queue it again.
    fn taken(&self, key: &str) {
        self.queued.lock().remove(key);
    }
}

/// The `namespace/name` key of an object.
pub fn key_of(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

/// Starts a watch cache of `api`'s objects (managed fields dropped to save memory);
/// `on_change` sees every added, changed or deleted (`true`) object, `on_ready` runs after
/// each (re)list.
pub fn cache<K, F, R>(api: Api<K>, on_change: F, on_ready: R) -> (Store<K>, JoinHandle<()>)
where
    K: Resource<DynamicType = ()>
        + Lookup<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    <K as Lookup>::DynamicType: Eq + Hash + Clone + Default,
    F: Fn(&K, bool) + Send + 'static,
    R: Fn() + Send + 'static,
{
    cache_filtered(api, |_: &K| true, on_change, on_ready)
}

/// Like [`cache`], holding only the objects `keep` accepts: one that stops being kept
/// leaves the cache as if deleted. Controllers that care for a few kinds of owner keep
/// their pods and the orphans, not every pod of the cluster.
pub fn cache_filtered<K, P, F, R>(
    api: Api<K>,
    keep: P,
    on_change: F,
    on_ready: R,
) -> (Store<K>, JoinHandle<()>)
where
    P: Fn(&K) -> bool + Send + 'static,
    K: Resource<DynamicType = ()>
        + Lookup<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    <K as Lookup>::DynamicType: Eq + Hash + Clone + Default,
    F: Fn(&K, bool) + Send + 'static,
    R: Fn() + Send + 'static,
{
    let stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|o: &mut K| o.meta_mut().managed_fields = None)
        .filter_map(move |ev| {
            let ev = match ev {
                Ok(Event::Apply(o)) if !keep(&o) => Some(Ok(Event::Delete(o))),
                Ok(Event::InitApply(o)) if !keep(&o) => None,
                other => Some(other),
            };
            std::future::ready(ev)
        });
    cache_stream(stream, on_change, on_ready)
}

/// Like [`cache_filtered`], fed by a shared informer's events: only the objects `keep`
/// accepts are copied out of the shared ones.
pub fn cache_shared<K, P, F, R>(
    events: k1s_informer::Subscription<K>,
    keep: P,
    on_change: F,
    on_ready: R,
) -> (Store<K>, JoinHandle<()>)
where
    P: Fn(&K) -> bool + Send + 'static,
    K: Resource<DynamicType = ()>
        + Lookup<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    <K as Lookup>::DynamicType: Eq + Hash + Clone + Default,
    F: Fn(&K, bool) + Send + 'static,
    R: Fn() + Send + 'static,
{
    let stream = events.filter_map(move |ev| {
        let ev = match ev {
            Event::Apply(o) if !keep(&o) => Some(Event::Delete(Arc::unwrap_or_clone(o))),
            Event::InitApply(o) if !keep(&o) => None,
            other => Some(k1s_informer::owned(other)),
        };
        std::future::ready(ev.map(Ok))
    });
    cache_stream(stream, on_change, on_ready)
}

fn cache_stream<K, S, F, R>(stream: S, on_change: F, on_ready: R) -> (Store<K>, JoinHandle<()>)
where
    S: futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    K: Resource<DynamicType = ()>
        + Lookup<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    <K as Lookup>::DynamicType: Eq + Hash + Clone + Default,
    F: Fn(&K, bool) + Send + 'static,
    R: Fn() + Send + 'static,
{
    let (store, writer) = reflector::store();
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(reflector::reflector(writer, stream));
        while let Some(ev) = events.next().await {
            match ev {
                Ok(Event::Apply(o) | Event::InitApply(o)) => on_change(&o, false),
                Ok(Event::Delete(o)) => on_change(&o, true),
                Ok(Event::InitDone) => on_ready(),
                Ok(Event::Init) => {}
                Err(e) => tracing::debug!(error = %e, "watch failed; retrying"),
            }
        }
    });
    (store, task)
}

/// Pods by controller uid, and orphans by namespace, so that a sync reads the pods of
/// one owner rather than every pod in the cache. Entries are names; the cache stays the
/// source of truth (an entry whose pod is gone from it is skipped by the reader).
#[derive(Clone, Debug, Default)]
pub struct PodIndex(Arc<Mutex<PodIndexInner>>);

#[derive(Debug, Default)]
struct PodIndexInner {
    by_owner: HashMap<String, HashSet<(String, String)>>,
    orphans: HashMap<String, HashSet<String>>,
    owner_of: HashMap<(String, String), Option<String>>,
}

impl PodIndex {
    /// Records a pod's add, change (its controller may have changed) or deletion.
    pub fn update(&self, meta: &ObjectMeta, deleted: bool) {
        let ns = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let key = (ns.clone(), name.clone());
        let owner = crate::workload::controller_of(meta).map(|r| r.uid.clone());
        let mut ix = self.0.lock();
        if let Some(old) = ix.owner_of.remove(&key) {
            match old {
                Some(uid) => {
                    if let Some(set) = ix.by_owner.get_mut(&uid) {
                        set.remove(&key);
                        if set.is_empty() {
                            ix.by_owner.remove(&uid);
                        }
                    }
                }
                None => {
                    if let Some(set) = ix.orphans.get_mut(&ns) {
                        set.remove(&name);
                        if set.is_empty() {
                            ix.orphans.remove(&ns);
                        }
                    }
                }
            }
        }
        if deleted {
            return;
        }
        match &owner {
            Some(uid) => {
                ix.by_owner
                    .entry(uid.clone())
                    .or_default()
                    .insert(key.clone());
            }
            None => {
                ix.orphans.entry(ns).or_default().insert(name);
            }
        }
        ix.owner_of.insert(key, owner);
    }

    /// The (namespace, name) of the pods whose controller has this uid, and of the
    /// orphans in `namespace`.
    pub fn candidates(&self, uid: &str, namespace: &str) -> Vec<(String, String)> {
        let ix = self.0.lock();
        let mut out: Vec<(String, String)> = ix
            .by_owner
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if let Some(orphans) = ix.orphans.get(namespace) {
            out.extend(orphans.iter().map(|n| (namespace.to_string(), n.clone())));
        }
        out
    }
}

/// Runs `sync` for each queued key, one at a time, until `shutdown`: a failed sync is
/// retried with back-off, `Ok(Some(delay))` asks for another sync after `delay`; every key
/// `all_keys` lists is queued every [`RESYNC`].
pub async fn work<S, Fut, A>(
    queue: Queue,
    mut rx: mpsc::UnboundedReceiver<String>,
    shutdown: Shutdown,
    all_keys: A,
    mut sync: S,
) where
    S: FnMut(String) -> Fut,
    Fut: Future<Output = Result<Option<Duration>, kube::Error>>,
    A: Fn() -> Vec<String>,
{
    let mut failures: HashMap<String, u32> = HashMap::new();
    let mut resync = tokio::time::interval(RESYNC);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        let key = tokio::select! {
            _ = &mut stop => return,
            _ = resync.tick() => {
                for k in all_keys() {
                    queue.add(k);
                }
                continue;
            }
            key = rx.recv() => match key {
                Some(k) => k,
                None => return,
            },
        };
        queue.taken(&key);
        match sync(key.clone()).await {
            Ok(again) => {
                failures.remove(&key);
                if let Some(delay) = again {
                    queue.add_after(key, delay);
                }
            }
            Err(e) => {
                let n = failures.entry(key.clone()).or_default();
                *n = n.saturating_add(1);
                let delay = BASE_BACKOFF
                    .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(16)))
                    .min(MAX_BACKOFF);
                tracing::debug!(%key, error = %e, ?delay, "sync failed; retrying");
                queue.add_after(key, delay);
            }
        }
    }
}

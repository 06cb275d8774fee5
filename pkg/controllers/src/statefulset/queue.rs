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
pub fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

/// Starts a watch cache of `api`'s objects (managed fields dropped to save memory);
/// `on_change` sees every added, changed or deleted object, `on_ready` runs after each
/// (re)list.
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
    F: Fn(&K) + Send + 'static,
    R: Fn() + Send + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|o: &mut K| o.meta_mut().managed_fields = None);
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(reflector::reflector(writer, stream));
        while let Some(ev) = events.next().await {
            match ev {
                Ok(Event::Apply(o) | Event::Delete(o) | Event::InitApply(o)) => on_change(&o),
                Ok(Event::InitDone) => on_ready(),
                Ok(Event::Init) => {}
                Err(e) => tracing::debug!(error = %e, "watch failed; retrying"),
            }
        }
    });
    (store, task)
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

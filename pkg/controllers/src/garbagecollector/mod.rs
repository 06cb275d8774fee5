//! Garbage collector (upstream `pkg/controller/garbagecollector`): watches the metadata of
//! every resource that supports list, watch and delete, keeps a graph of
//! `ownerReferences`, and
//!
//! - deletes objects whose owners are all gone (verified by a live read of each owner by
//!   name and uid), and drops references to gone owners from objects that still have a
//!   live one;
//! - for an owner deleted with the `orphan` finalizer, removes its reference from every
//!   dependent, then the finalizer;
//! - for an owner deleted with the `foregroundDeletion` finalizer, deletes its dependents
//!   and removes the finalizer once no dependent with `blockOwnerDeletion` remains.
//!
//! Discovery is refreshed periodically, so custom resources are collected too.

mod attempt;
pub mod graph;
pub mod queue;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt, pin_mut};
use kube::Api;
use kube::api::DynamicObject;
use kube::core::{ObjectMeta, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinSet};

use crate::Shutdown;
use crate::discovery::{self, DiscoveredResource};
use graph::{Graph, Kind, Node, Work};
use queue::WorkQueue;

pub use attempt::GcError;

/// Resources the collector never watches (upstream's `ignoredResources`): events are
/// many, short-lived and never owners.
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

/// Settings of the collector.
#[derive(Debug, Clone)]
pub struct GcConfig {
    /// Concurrent workers.
    pub workers: usize,
    /// How often discovery is refreshed and the graph swept for pending work.
    pub resync: Duration,
    /// How long workers wait for new watches to list before acting anyway.
    pub sync_timeout: Duration,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            resync: Duration::from_secs(30),
            sync_timeout: Duration::from_secs(30),
        }
    }
}

/// Starts the collector with default settings (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, GcConfig::default(), shutdown))
}

/// A watch of one resource.
struct Watch {
    resource: DiscoveredResource,
    synced: Arc<AtomicBool>,
    task: AbortHandle,
}

/// State shared by the watches and the workers.
pub(crate) struct Collector {
    client: kube::Client,
    config: GcConfig,
    graph: Mutex<Graph>,
    queue: Arc<WorkQueue<Work>>,
    /// `(group, kind)` → resource, for resolving owner references.
    kinds: RwLock<HashMap<(String, String), Arc<Kind>>>,
    watches: Mutex<HashMap<(String, String), Watch>>,
    synced_changed: Notify,
    /// Workers stop waiting for unsynced watches at this instant (set when watches are
    /// added), so one resource that cannot be listed does not stall collection forever.
    sync_deadline: Mutex<tokio::time::Instant>,
    /// The controllers' shared pod informer: pods' metadata comes from it rather than
    /// from a watch of its own (30k pods, every status write decoded once more).
    pods: k1s_informer::Informer<k8s_openapi::api::core::v1::Pod>,
}

impl Collector {
    fn enqueue(&self, work: Vec<Work>) {
        for w in work {
            self.queue.add(w);
        }
    }

    /// Whether every watch has listed its resource once.
    fn synced(&self) -> bool {
        self.watches
            .lock()
            .values()
            .all(|w| w.synced.load(Ordering::Acquire))
    }

    /// Waits until every watch has listed once (or the sync deadline passes, as
    /// upstream's sync timeout): acting on a half-built graph could orphan or delete too
    /// early.
    async fn wait_synced(&self) {
        loop {
            let changed = self.synced_changed.notified();
            if self.synced() {
                return;
            }
            let deadline = *self.sync_deadline.lock();
            if tokio::time::Instant::now() >= deadline {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                tracing::warn!("timed out waiting for the garbage collector's watches to sync");
                return;
            }
        }
    }

    /// The resource type of `(group, kind)`, as last discovered.
    fn kind(&self, group: &str, kind: &str) -> Option<Arc<Kind>> {
        self.kinds
            .read()
            .get(&(group.to_string(), kind.to_string()))
            .cloned()
    }

    /// Refreshes discovery: starts watches for new resources, stops those that vanished.
    async fn sync_resources(self: &Arc<Self>) {
        let discovered = match discovery::preferred_resources(&self.client).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "garbage collector: discovery failed");
                return;
            }
        };
        if let Some(msg) = discovered.failure_message() {
            tracing::warn!("garbage collector: {msg}");
        }
        let failed_groups: HashSet<String> = discovered
            .failed
            .keys()
            .map(|gv| gv.rsplit_once('/').map_or("", |(g, _)| g).to_string())
            .collect();
        {
            let mut kinds = self.kinds.write();
            for r in discovered.resources.iter().filter(|r| r.supports(&["get"])) {
                kinds.insert(
                    (r.api.group.clone(), r.api.kind.clone()),
                    Arc::new(Kind {
                        api: r.api.clone(),
                        namespaced: r.namespaced,
                    }),
                );
            }
        }
        let wanted: HashMap<(String, String), DiscoveredResource> = discovered
            .resources
            .into_iter()
            .filter(|r| r.supports(&["list", "watch", "delete"]))
            .filter(|r| !IGNORED.contains(&(r.api.group.as_str(), r.api.plural.as_str())))
            .map(|r| ((r.api.group.clone(), r.api.plural.clone()), r))
            .collect();
        let mut stopped = Vec::new();
        {
            let mut watches = self.watches.lock();
            watches.retain(|key, w| {
                let keep = match wanted.get(key) {
                    Some(r) => *r == w.resource,
                    // A group that failed discovery keeps its watches.
                    None => failed_groups.contains(&key.0),
                };
                if !keep {
                    w.task.abort();
                    stopped.push(w.resource.clone());
                }
                keep
            });
            for (key, r) in wanted {
                if watches.contains_key(&key) {
                    continue;
                }
                let kind = Arc::new(Kind {
                    api: r.api.clone(),
                    namespaced: r.namespaced,
                });
                let synced = Arc::new(AtomicBool::new(false));
                *self.sync_deadline.lock() = tokio::time::Instant::now() + self.config.sync_timeout;
                let task = tokio::spawn(watch_resource(self.clone(), kind, synced.clone()));
                tracing::debug!(resource = %r.gvr_string(), "garbage collector: watching");
                watches.insert(
                    key,
                    Watch {
                        resource: r,
                        synced,
                        task: task.abort_handle(),
                    },
                );
            }
        }
        for r in stopped {
            tracing::debug!(resource = %r.gvr_string(), "garbage collector: no longer watching");
            let kind = Kind {
                api: r.api,
                namespaced: r.namespaced,
            };
            let work = self.graph.lock().retain_kind(&kind, &HashSet::new());
            self.enqueue(work);
        }
        self.synced_changed.notify_waiters();
    }

    fn stop_watches(&self) {
        for (_, w) in self.watches.lock().drain() {
            w.task.abort();
        }
    }
}

/// Feeds one resource's metadata watch into the graph.
async fn watch_resource(gc: Arc<Collector>, kind: Arc<Kind>, synced: Arc<AtomicBool>) {
    // Metadata only: the graph needs nothing else, and bodies (Secrets) stay out of memory.
    let events: futures::stream::BoxStream<'static, Result<Event<ObjectMeta>, watcher::Error>> =
        if kind.api.group.is_empty() && kind.api.plural == "pods" {
            gc.pods
                .subscribe()
                .map(|ev| Ok(meta_event(ev, |p| p.metadata.clone())))
                .boxed()
        } else {
            let api: Api<PartialObjectMeta<DynamicObject>> =
                Api::all_with(gc.client.clone(), &kind.api);
            watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .map_ok(|ev| meta_event(ev, |o| o.metadata))
                .boxed()
        };
    pin_mut!(events);
    let mut seen: HashSet<String> = HashSet::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => seen.clear(),
            Ok(Event::InitApply(obj)) => {
                if let Some((uid, node)) = Node::from_meta(&kind, &obj) {
                    seen.insert(uid.clone());
                    let work = gc.graph.lock().upsert(uid, node);
                    gc.enqueue(work);
                }
            }
            Ok(Event::InitDone) => {
                let work = gc.graph.lock().retain_kind(&kind, &seen);
                seen.clear();
                gc.enqueue(work);
                if !synced.swap(true, Ordering::AcqRel) {
                    gc.synced_changed.notify_waiters();
                }
            }
            Ok(Event::Apply(obj)) => {
                if let Some((uid, node)) = Node::from_meta(&kind, &obj) {
                    let work = gc.graph.lock().upsert(uid, node);
                    gc.enqueue(work);
                }
            }
            Ok(Event::Delete(obj)) => {
                if let Some(uid) = obj.uid.as_deref() {
                    let work = gc.graph.lock().remove(uid);
                    gc.enqueue(work);
                }
            }
            Err(e) => {
                tracing::debug!(resource = %kind.api.plural, group = %kind.api.group, error = %e, "garbage collector: watch failed");
            }
        }
    }
}

/// A watch event of `A` as one of `B`.
fn meta_event<A, B>(ev: Event<A>, f: impl Fn(A) -> B) -> Event<B> {
    match ev {
        Event::Apply(o) => Event::Apply(f(o)),
        Event::Delete(o) => Event::Delete(f(o)),
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(f(o)),
        Event::InitDone => Event::InitDone,
    }
}

/// Takes work from the queue until the task is aborted.
async fn worker(gc: Arc<Collector>) {
    loop {
        let work = gc.queue.next().await;
        gc.wait_synced().await;
        match attempt::process(&gc, &work).await {
            Ok(()) => gc.queue.forget(&work),
            Err(e) => {
                tracing::debug!(?work, error = %e, "garbage collector: will retry");
                gc.queue.add_rate_limited(work.clone());
            }
        }
        gc.queue.done(&work);
    }
}

/// Runs the collector until `shutdown` fires.
pub async fn run(client: kube::Client, config: GcConfig, shutdown: Shutdown) {
    let client_for_pods = client.clone();
    let gc = Arc::new(Collector {
        client,
        config: config.clone(),
        graph: Mutex::new(Graph::default()),
        queue: Arc::new(WorkQueue::new()),
        kinds: RwLock::new(HashMap::new()),
        watches: Mutex::new(HashMap::new()),
        synced_changed: Notify::new(),
        sync_deadline: Mutex::new(tokio::time::Instant::now() + config.sync_timeout),
        pods: crate::pod_informer(&client_for_pods),
    });
    let mut workers = JoinSet::new();
    for _ in 0..config.workers.max(1) {
        workers.spawn(worker(gc.clone()));
    }
    loop {
        gc.sync_resources().await;
        if gc.synced() {
            let work = gc.graph.lock().sweep();
            gc.enqueue(work);
        }
        tokio::select! {
            _ = tokio::time::sleep(config.resync) => {}
            _ = shutdown.clone().wait() => break,
        }
    }
    workers.abort_all();
    gc.stop_watches();
    while workers.join_next().await.is_some() {}
}

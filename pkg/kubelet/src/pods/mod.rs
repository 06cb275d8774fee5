//! The pods bound to this node: one watch (`spec.nodeName=<node>`) into a cache, one
//! worker task per pod UID, and a relist of the runtime every second (upstream's PLEG)
//! that wakes the worker of every pod whose containers changed — and makes a worker for
//! what the runtime holds of pods the API no longer has, so it gets cleaned up.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use parking_lot::Mutex;
use tokio::sync::Notify;

use k1s_net::PodNetwork;

use crate::events::Recorder;
use crate::runtime::{ContainerRuntime, Image, labels};
use crate::{Config, Error};

pub(crate) mod evict;
pub(crate) mod probes;
pub(crate) mod spec;
pub(crate) mod status;
pub(crate) mod volumes;
mod worker;

/// What every pod worker shares.
pub(crate) struct Ctx {
    pub client: kube::Client,
    pub config: Arc<Config>,
    pub runtime: Arc<dyn ContainerRuntime>,
    pub network: Arc<dyn PodNetwork>,
    pub recorder: Recorder,
    pub store: Store<Pod>,
    /// `containerd`: the scheme of container ids.
    pub runtime_name: String,
    /// Images seen, by id.
    pub images: Mutex<HashMap<String, Image>>,
    /// The wake-up of each pod's worker, by UID.
    pub workers: Mutex<HashMap<String, Arc<Notify>>>,
    /// The status each worker last wrote (or found written), by UID: the API echoing it
    /// back is no reason to sync the pod again.
    pub written: Mutex<HashMap<String, serde_json::Value>>,
    pub facts: spec::NodeFacts,
    /// Evictions decided by the eviction manager, by UID, for the pods' workers.
    pub evictions: Mutex<HashMap<String, evict::Eviction>>,
    /// The eviction manager (its pressure conditions admit new pods).
    pub pressure: Arc<crate::eviction::Manager>,
}

impl Ctx {
    /// The cached pod `ns/name` when it is still the one with `uid`.
    pub(crate) fn pod(&self, ns: &str, name: &str, uid: &str) -> Option<Arc<Pod>> {
        self.store
            .get(&ObjectRef::new(name).within(ns))
            .filter(|p| p.metadata.uid.as_deref() == Some(uid))
    }
}

/// Makes (or wakes) the worker of pod `uid`.
fn wake(ctx: &Arc<Ctx>, uid: &str, ns: &str, name: &str) {
    let mut workers = ctx.workers.lock();
    if let Some(n) = workers.get(uid) {
        n.notify_one();
        return;
    }
    let notify = Arc::new(Notify::new());
    workers.insert(uid.to_string(), notify.clone());
    tokio::spawn(worker::run(
        ctx.clone(),
        uid.to_string(),
        ns.to_string(),
        name.to_string(),
        notify,
    ));
}

fn node_facts(config: &Config) -> spec::NodeFacts {
    let m = crate::node::Machine::detect(&config.root_dir);
    spec::NodeFacts {
        node_ip: config.node_ip,
        cpu_millis: i64::try_from(m.cpus * 1000).unwrap_or(i64::MAX),
        memory_bytes: i64::try_from(m.memory_bytes).unwrap_or(i64::MAX),
    }
}

/// Runs the pods bound to this node until aborted.
pub async fn run(
    client: kube::Client,
    config: Arc<Config>,
    runtime: Arc<dyn ContainerRuntime>,
    network: Arc<dyn PodNetwork>,
    recorder: Recorder,
    pressure: Arc<crate::eviction::Manager>,
) -> Result<(), Error> {
    let version = runtime.version().await?;
    let (store, writer) = reflector::store::<Pod>();
    let images = runtime
        .list_images()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        facts: node_facts(&config),
        config: config.clone(),
        runtime,
        network,
        recorder,
        store: store.clone(),
        runtime_name: version.name,
        images: Mutex::new(images),
        workers: Mutex::new(HashMap::new()),
        written: Mutex::new(HashMap::new()),
        evictions: Mutex::new(HashMap::new()),
        pressure,
    });
    let synced = Arc::new(AtomicBool::new(false));
    let relist = tokio::spawn(relist(ctx.clone(), synced.clone()));
    let evictions = tokio::spawn(evict::run(ctx.clone(), ctx.pressure.clone()));
    let api: Api<Pod> = Api::all(client);
    let selector = format!("spec.nodeName={}", config.node_name);
    let mut first_sync = true;
    let events = watcher(api, watcher::Config::default().fields(&selector))
        .default_backoff()
        .reflect(writer);
    futures::pin_mut!(events);
    // What each pod was besides its status when last seen.
    let mut seen: HashMap<String, serde_json::Value> = HashMap::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(pod)) => {
                if let (Some(uid), Some(ns), Some(name)) = (
                    pod.metadata.uid.as_deref(),
                    pod.metadata.namespace.as_deref(),
                    pod.metadata.name.as_deref(),
                ) {
                    // As upstream's pod config source does, an update that changed only
                    // the status this kubelet wrote itself does not sync the pod again
                    // (the worker's own timers, probes and the relist do).
                    let semantic = semantic_of(&pod);
                    let unchanged = seen.get(uid) == Some(&semantic);
                    let own_status = ctx.written.lock().get(uid).is_some_and(|w| {
                        *w == serde_json::to_value(pod.status.clone().unwrap_or_default())
                            .unwrap_or_default()
                    });
                    seen.insert(uid.to_string(), semantic);
                    if !(unchanged && own_status) {
                        wake(&ctx, uid, ns, name);
                    }
                }
            }
            Ok(watcher::Event::Delete(pod)) => {
                if let (Some(uid), Some(ns), Some(name)) = (
                    pod.metadata.uid.as_deref(),
                    pod.metadata.namespace.as_deref(),
                    pod.metadata.name.as_deref(),
                ) {
                    seen.remove(uid);
                    wake(&ctx, uid, ns, name);
                }
            }
            Ok(watcher::Event::InitDone) => {
                let pods = store.state();
                let uids: Vec<String> =
                    pods.iter().filter_map(|p| p.metadata.uid.clone()).collect();
                for pod in &pods {
                    if let (Some(uid), Some(ns), Some(name)) = (
                        pod.metadata.uid.as_deref(),
                        pod.metadata.namespace.as_deref(),
                        pod.metadata.name.as_deref(),
                    ) {
                        wake(&ctx, uid, ns, name);
                    }
                }
                if first_sync {
                    first_sync = false;
                    // Addresses of pods deleted while we were down are free again.
                    if let Err(e) = ctx.network.reconcile(&uids).await {
                        tracing::warn!(error = %e, "cannot reconcile the pod network");
                    }
                }
                synced.store(true, Ordering::SeqCst);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "pod watch failed; retrying"),
        }
    }
    relist.abort();
    evictions.abort();
    Ok(())
}

/// What a pod is besides its status and bookkeeping (upstream's config source compares
/// the spec, labels, annotations and deletion fields to tell an update from a status echo).
fn semantic_of(pod: &Pod) -> serde_json::Value {
    serde_json::json!({
        "spec": pod.spec,
        "labels": pod.metadata.labels,
        "annotations": pod.metadata.annotations,
        "deletionTimestamp": pod.metadata.deletion_timestamp,
        "deletionGracePeriodSeconds": pod.metadata.deletion_grace_period_seconds,
    })
}

/// Every `relist_period`: what the runtime holds, per pod; wakes the workers of pods
/// whose sandboxes or containers changed (and makes workers for leftovers).
async fn relist(ctx: Arc<Ctx>, synced: Arc<AtomicBool>) {
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let mut tick = tokio::time::interval(ctx.config.relist_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !synced.load(Ordering::SeqCst) {
            continue;
        }
        let (sandboxes, containers) =
            match tokio::try_join!(ctx.runtime.list_sandboxes(), ctx.runtime.list_containers()) {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(error = %e, "relist failed");
                    continue;
                }
            };
        let mut now: BTreeMap<String, String> = BTreeMap::new();
        let mut names: HashMap<String, (String, String)> = HashMap::new();
        for s in &sandboxes {
            let Some(uid) = s.labels.get(labels::POD_UID) else {
                continue;
            };
            names.insert(
                uid.clone(),
                (
                    s.labels
                        .get(labels::POD_NAMESPACE)
                        .cloned()
                        .unwrap_or_default(),
                    s.labels.get(labels::POD_NAME).cloned().unwrap_or_default(),
                ),
            );
            let fp = now.entry(uid.clone()).or_default();
            fp.push_str(&format!("s:{}:{};", s.id, s.ready));
        }
        let mut sorted: Vec<_> = containers.iter().collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        for c in sorted {
            let Some(uid) = c.labels.get(labels::POD_UID) else {
                continue;
            };
            names.entry(uid.clone()).or_insert_with(|| {
                (
                    c.labels
                        .get(labels::POD_NAMESPACE)
                        .cloned()
                        .unwrap_or_default(),
                    c.labels.get(labels::POD_NAME).cloned().unwrap_or_default(),
                )
            });
            let fp = now.entry(uid.clone()).or_default();
            fp.push_str(&format!("c:{}:{:?}:{:?};", c.id, c.state, c.exit_code));
        }
        for (uid, fp) in &now {
            if last.get(uid) != Some(fp)
                && let Some((ns, name)) = names.get(uid)
            {
                wake(&ctx, uid, ns, name);
            }
        }
        for uid in last.keys() {
            if !now.contains_key(uid)
                && let Some(n) = ctx.workers.lock().get(uid)
            {
                n.notify_one();
            }
        }
        last = now;
    }
}

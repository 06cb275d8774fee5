//! Storage objects in use are not deleted under their users (upstream's
//! `persistentvolumeclaim-protection-controller` and
//! `persistentvolume-protection-controller`, with the `StorageObjectInUseProtection`
//! admission plugin that puts the finalizers on at create):
//! - a PersistentVolumeClaim carries `kubernetes.io/pvc-protection`; once it is being
//!   deleted, the finalizer comes off only when no scheduled pod names it (a volume's
//!   `persistentVolumeClaim.claimName`, or a generic ephemeral volume's claim of a pod not
//!   yet shut down), checked against a live list of the namespace's pods as upstream does,
//!   so a claim is never released on a stale cache;
//! - a PersistentVolume carries `kubernetes.io/pv-protection`, which comes off once it is
//!   being deleted and no longer `Bound`.
//!
//! Both also put their finalizer back on objects that lack it (made before the admission
//! plugin ran, or with it switched off) and are not being deleted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::Shutdown;

/// Upstream's name of the claim controller.
pub const CLAIMS_NAME: &str = "persistentvolumeclaim-protection-controller";
/// Upstream's name of the volume controller.
pub const VOLUMES_NAME: &str = "persistentvolume-protection-controller";
/// The finalizer that keeps a claim while pods use it.
pub const PVC_FINALIZER: &str = "kubernetes.io/pvc-protection";
/// The finalizer that keeps a volume while it is bound.
pub const PV_FINALIZER: &str = "kubernetes.io/pv-protection";

/// How long a burst of events is gathered before a pass, and how often a pass runs anyway
/// (a failed write is retried then).
const SETTLE: Duration = Duration::from_millis(100);
const RESYNC: Duration = Duration::from_secs(10);

/// Starts the claim controller (the [`crate::Descriptor`] entry point).
pub fn start_claims(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run_claims(client, shutdown))
}

/// Starts the volume controller (the [`crate::Descriptor`] entry point).
pub fn start_volumes(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run_volumes(client, shutdown))
}

/// The claims a scheduled pod holds: `(claim name, Some(pod uid))` for a generic ephemeral
/// volume's claim (it counts only if that pod controls the claim), `(name, None)` for a
/// named claim.
pub fn claims_held(pod: &Pod) -> Vec<(String, Option<String>)> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    // The kubelet only sees scheduled pods, and it will not start one whose claim is
    // being deleted, so an unscheduled pod holds nothing.
    if spec.node_name.as_deref().unwrap_or("").is_empty() {
        return Vec::new();
    }
    let shut_down = pod.metadata.deletion_timestamp.is_some()
        && pod.metadata.deletion_grace_period_seconds == Some(0);
    let name = pod.name_any();
    let uid = pod.metadata.uid.clone();
    spec.volumes
        .iter()
        .flatten()
        .filter_map(|v| {
            if let Some(claim) = &v.persistent_volume_claim {
                Some((claim.claim_name.clone(), None))
            } else if v.ephemeral.is_some() && !shut_down {
                Some((format!("{name}-{}", v.name), uid.clone()))
            } else {
                None
            }
        })
        .collect()
}

/// Whether `pod` holds `claim`.
pub fn pod_holds(pod: &Pod, claim: &PersistentVolumeClaim) -> bool {
    let name = claim.name_any();
    let controller = claim
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str());
    claims_held(pod).into_iter().any(|(held, owner)| {
        held == name
            && match owner {
                None => true,
                Some(uid) => controller == Some(uid.as_str()),
            }
    })
}

fn has_finalizer<K: Resource>(object: &K, finalizer: &str) -> bool {
    object
        .meta()
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == finalizer)
}

/// The merge patch that sets the finalizers to `finalizers`, conditional on the object
/// still being at the resourceVersion they were computed from.
fn finalizers_patch<K: Resource>(object: &K, finalizers: Vec<String>) -> Value {
    json!({"metadata": {
        "resourceVersion": object.meta().resource_version,
        "finalizers": if finalizers.is_empty() { Value::Null } else { json!(finalizers) },
    }})
}

fn with_finalizer<K: Resource>(object: &K, finalizer: &str) -> Value {
    let mut all: Vec<String> = object.meta().finalizers.clone().unwrap_or_default();
    all.push(finalizer.to_string());
    finalizers_patch(object, all)
}

fn without_finalizer<K: Resource>(object: &K, finalizer: &str) -> Value {
    let rest: Vec<String> = object
        .meta()
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect();
    finalizers_patch(object, rest)
}

/// Sends a finalizer patch; a conflict or a vanished object only means a later pass
/// decides again from fresher state.
async fn patch<K>(api: &Api<K>, name: &str, body: Value, what: &str)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
    {
        Ok(_) => tracing::debug!(object = what, name, "finalizers updated"),
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
        Err(e) => tracing::warn!(object = what, name, error = %e, "cannot update finalizers"),
    }
}

/// Watches `api` into a store, waking `wake` on every event.
fn reflect<K>(api: Api<K>, wake: Arc<Notify>) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let task = tokio::spawn(
        watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .for_each(move |_| {
                wake.notify_one();
                futures::future::ready(())
            }),
    );
    (store, task)
}

/// Waits for a wake-up (then lets the burst settle) or the resync period; false once
/// shutdown fires.
async fn next_pass(wake: &Notify, stop: &mut std::pin::Pin<&mut impl Future<Output = ()>>) -> bool {
    tokio::select! {
        _ = stop.as_mut() => return false,
        _ = wake.notified() => {}
        _ = tokio::time::sleep(RESYNC) => {}
    }
    tokio::select! {
        _ = stop.as_mut() => false,
        _ = tokio::time::sleep(SETTLE) => true,
    }
}

/// Pods by namespace and name with the claims each holds, kept from a watch that stores
/// no pods (at scale a full pod cache per controller is what costs).
type Holders = Arc<Mutex<HolderMap>>;
type HolderMap = HashMap<(String, String), Vec<(String, Option<String>)>>;

fn watch_holders(
    client: kube::Client,
    wake: Arc<Notify>,
) -> (Holders, tokio::task::JoinHandle<()>) {
    let holders: Holders = Arc::default();
    let map = holders.clone();
    let mut relisting = HolderMap::new();
    let key = |p: &Pod| (p.namespace().unwrap_or_default(), p.name_any());
    let task = tokio::spawn(crate::pod_informer(&client).watch().for_each(move |event| {
        match event {
            Ok(watcher::Event::Init) => relisting.clear(),
            Ok(watcher::Event::InitApply(pod)) => {
                let held = claims_held(&pod);
                if !held.is_empty() {
                    relisting.insert(key(&pod), held);
                }
            }
            Ok(watcher::Event::InitDone) => {
                *map.lock() = std::mem::take(&mut relisting);
            }
            Ok(watcher::Event::Apply(pod)) => {
                let held = claims_held(&pod);
                let mut map = map.lock();
                if held.is_empty() {
                    map.remove(&key(&pod));
                } else {
                    map.insert(key(&pod), held);
                }
            }
            Ok(watcher::Event::Delete(pod)) => {
                map.lock().remove(&key(&pod));
            }
            Err(_) => {}
        }
        wake.notify_one();
        futures::future::ready(())
    }));
    (holders, task)
}

/// Runs the claim controller until `shutdown` fires.
pub async fn run_claims(client: kube::Client, shutdown: Shutdown) {
    let wake = Arc::new(Notify::new());
    let (claims, claim_watch) = reflect(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        wake.clone(),
    );
    let (holders, pod_watch) = watch_holders(client.clone(), wake.clone());
    let stop = shutdown.wait();
    tokio::pin!(stop);
    tokio::select! {
        _ = &mut stop => { claim_watch.abort(); pod_watch.abort(); return; }
        _ = claims.wait_until_ready() => {}
    }
    while next_pass(&wake, &mut stop).await {
        for claim in claims.state() {
            let ns = claim.namespace().unwrap_or_default();
            let name = claim.name_any();
            let api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
            let protected = has_finalizer(claim.as_ref(), PVC_FINALIZER);
            if claim.metadata.deletion_timestamp.is_none() {
                if !protected {
                    let body = with_finalizer(claim.as_ref(), PVC_FINALIZER);
                    patch(&api, &name, body, "persistentvolumeclaim").await;
                }
                continue;
            }
            if !protected {
                continue;
            }
            let cached_use = holders
                .lock()
                .iter()
                .any(|((pod_ns, _), held)| *pod_ns == ns && held.iter().any(|(h, _)| *h == name));
            if cached_use {
                continue;
            }
            // The cache may lag behind a pod just created; the live list decides.
            let pods = match Api::<Pod>::namespaced(client.clone(), &ns)
                .list(&ListParams::default())
                .await
            {
                Ok(pods) => pods,
                Err(e) => {
                    tracing::warn!(namespace = %ns, error = %e, "live list of pods failed");
                    continue;
                }
            };
            if pods.items.iter().any(|p| pod_holds(p, &claim)) {
                continue;
            }
            tracing::debug!(namespace = %ns, claim = %name, "claim is unused; releasing it");
            let body = without_finalizer(claim.as_ref(), PVC_FINALIZER);
            patch(&api, &name, body, "persistentvolumeclaim").await;
        }
    }
    claim_watch.abort();
    pod_watch.abort();
}

/// Runs the volume controller until `shutdown` fires.
pub async fn run_volumes(client: kube::Client, shutdown: Shutdown) {
    let wake = Arc::new(Notify::new());
    let api = Api::<PersistentVolume>::all(client.clone());
    let (volumes, watch) = reflect(api.clone(), wake.clone());
    let stop = shutdown.wait();
    tokio::pin!(stop);
    tokio::select! {
        _ = &mut stop => { watch.abort(); return; }
        _ = volumes.wait_until_ready() => {}
    }
    while next_pass(&wake, &mut stop).await {
        for volume in volumes.state() {
            let name = volume.name_any();
            let protected = has_finalizer(volume.as_ref(), PV_FINALIZER);
            if volume.metadata.deletion_timestamp.is_none() {
                if !protected {
                    let body = with_finalizer(volume.as_ref(), PV_FINALIZER);
                    patch(&api, &name, body, "persistentvolume").await;
                }
                continue;
            }
            let bound = volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
            if protected && !bound {
                let body = without_finalizer(volume.as_ref(), PV_FINALIZER);
                patch(&api, &name, body, "persistentvolume").await;
            }
        }
    }
    watch.abort();
}

#[cfg(test)]
mod tests;

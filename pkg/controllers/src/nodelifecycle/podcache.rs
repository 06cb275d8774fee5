//! A slim cache of every pod for the node controllers (node lifecycle, taint eviction,
//! pod GC): a watch whose objects keep only what those controllers read — identity,
//! creation and deletion times, `spec.nodeName`, tolerations, the phase and the Ready
//! condition — so 30k pods cost a few MiB per controller, and no controller lists pods
//! with a field selector (a scan of every pod on the server) per node or per period.
//! The controllers started together share one such cache (one watch, one copy of each
//! pod): a reflector entry costs the whole `Pod` struct however slim, about 1.5 KiB.

use std::sync::{Arc, Weak};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

/// Strips a pod down to what the node controllers read.
pub fn slim(pod: &mut Pod) {
    let m = &mut pod.metadata;
    m.managed_fields = None;
    m.annotations = None;
    m.labels = None;
    m.finalizers = None;
    m.owner_references = None;
    m.generate_name = None;
    if let Some(spec) = pod.spec.take() {
        pod.spec = Some(PodSpec {
            node_name: spec.node_name,
            tolerations: spec.tolerations,
            ..PodSpec::default()
        });
    }
    if let Some(status) = pod.status.take() {
        pod.status = Some(PodStatus {
            phase: status.phase,
            conditions: status
                .conditions
                .map(|cs| cs.into_iter().filter(|c| c.type_ == "Ready").collect()),
            ..PodStatus::default()
        });
    }
}

/// Starts the watch, or joins the one the controllers started with this one share; the
/// store fills as it runs (await `wait_until_ready`). The watch stops once every handle
/// is dropped.
pub fn start(client: kube::Client) -> (Store<Pod>, PodWatch) {
    crate::config().node_pods.get_or_start(client)
}

/// Keeps the shared pod watch running while held.
#[derive(Debug)]
pub struct PodWatch(#[allow(dead_code)] Arc<Running>);

/// A running watch and its store.
#[derive(Debug)]
pub struct Running {
    store: Store<Pod>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The slot for the pod cache the node controllers of one `run` share.
#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<Weak<Running>>>);

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// The running cache, started with `client` if none runs.
    pub fn get_or_start(&self, client: kube::Client) -> (Store<Pod>, PodWatch) {
        let mut slot = self.0.lock();
        if let Some(running) = slot.upgrade() {
            return (running.store.clone(), PodWatch(running));
        }
        let (store, writer) = reflector::store::<Pod>();
        let watch = crate::pod_informer(&client)
            .watch()
            .modify(slim)
            .reflect(writer)
            .for_each(|_| futures::future::ready(()));
        let running = Arc::new(Running {
            store: store.clone(),
            task: tokio::spawn(watch),
        });
        *slot = Arc::downgrade(&running);
        (store, PodWatch(running))
    }
}

/// The pod's `spec.nodeName` ("" when unscheduled).
pub fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slim_pods_keep_what_node_controllers_read() {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u", "labels": {"a": "b"}},
            "spec": {"nodeName": "n", "tolerations": [{"operator": "Exists"}],
                     "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]}
        }))
        .expect("pod");
        slim(&mut pod);
        assert_eq!(node_of(&pod), "n");
        assert!(pod.metadata.labels.is_none());
        let spec = pod.spec.as_ref().expect("spec");
        assert!(spec.containers.is_empty());
        assert_eq!(spec.tolerations.as_ref().map(Vec::len), Some(1));
        let status = pod.status.as_ref().expect("status");
        assert_eq!(status.conditions.as_ref().map(Vec::len), Some(1));
        assert_eq!(pod.metadata.uid.as_deref(), Some("u"));
    }
}

//! A slim cache of every pod for the node controllers (node lifecycle, taint eviction,
//! pod GC): a watch whose objects keep only what those controllers read — identity,
//! creation and deletion times, `spec.nodeName`, tolerations, the phase and the Ready
//! condition — so 30k pods cost a few MiB per controller, and no controller lists pods
//! with a field selector (a scan of every pod on the server) per node or per period.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
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

/// Starts the watch; the store fills as it runs (await `wait_until_ready`). Abort the
/// handle to stop it.
pub fn start(client: kube::Client) -> (Store<Pod>, JoinHandle<()>) {
    let (store, writer) = reflector::store::<Pod>();
    let watch = watcher(Api::<Pod>::all(client), watcher::Config::default())
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .for_each(|_| futures::future::ready(()));
    (store, tokio::spawn(watch))
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

//! The pods the node controllers (node lifecycle, taint eviction, pod GC) read: the
//! shared pod informer's own objects, so those controllers keep no copy of any pod
//! (a slim copy still cost a whole `Pod` struct, 2.4 KB, per pod of the cluster) and
//! none lists pods with a field selector (a scan of every pod on the server) per node
//! or per period.

use k1s_informer::Informer;
use k8s_openapi::api::core::v1::Pod;

/// Starts the shared pod watch if none runs yet; the cache fills as it runs (await
/// `wait_until_ready`). The watch runs while the returned handle is held.
pub fn start(client: kube::Client) -> (Informer<Pod>, PodWatch) {
    let pods = crate::pod_informer(&client);
    pods.start();
    (pods.clone(), PodWatch(pods))
}

/// Keeps the shared pod watch running while held.
#[derive(Debug)]
pub struct PodWatch(#[allow(dead_code)] Informer<Pod>);

/// The pod's `spec.nodeName` ("" when unscheduled).
pub fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

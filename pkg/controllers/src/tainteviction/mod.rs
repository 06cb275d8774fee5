//! Taint eviction controller (upstream `pkg/controller/tainteviction`): pods on a node
//! with a NoExecute taint they do not tolerate are deleted; pods that tolerate every such
//! taint for a limited `tolerationSeconds` are deleted once that time has passed since the
//! taint was added (its `timeAdded`, so the clock survives a controller restart). Each
//! eviction records `TaintManagerEviction` ("Marking for deletion Pod ns/name") and adds
//! the `DisruptionTarget` condition (`DeletionByTaintManager`) before deleting.
//!
//! Pods are read from a slim watch cache (`nodelifecycle::podcache`); a pass over them
//! runs every second only while some node has a NoExecute taint.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Taint};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::{Event, EventType};

use crate::workload::Recorder;
use serde_json::json;

use crate::Shutdown;
use crate::nodelifecycle::podcache;
use crate::nodelifecycle::taints::tolerates;

/// Upstream's controller name.
pub const NAME: &str = "taint-eviction-controller";
/// How often due evictions are looked for.
const PERIOD: Duration = Duration::from_secs(1);

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown))
}

/// When the pod must go because of the node's NoExecute taints: now when one is not
/// tolerated, `timeAdded + tolerationSeconds` (the smallest over the taints) when all are
/// tolerated for a while, `None` when all are tolerated forever. `seen` stands in for a
/// taint without `timeAdded`.
pub fn eviction_time(pod: &Pod, taints: &[Taint], seen: Timestamp) -> Option<Timestamp> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut due: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<_> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(Timestamp::UNIX_EPOCH);
        }
        // The most generous toleration wins; one without seconds tolerates forever.
        if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        }
        let seconds = matching
            .iter()
            .filter_map(|t| t.toleration_seconds)
            .max()
            .unwrap_or(0)
            .max(0);
        let added = taint.time_added.as_ref().map(|t| t.0).unwrap_or(seen);
        let at = Timestamp::from_second(added.as_second().saturating_add(seconds)).unwrap_or(added);
        due = Some(due.map_or(at, |d| d.min(at)));
    }
    due
}

fn no_execute_taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| {
            ts.iter()
                .filter(|t| t.effect == "NoExecute")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown) {
    let nodes = crate::node_informer(&client);
    nodes.start();
    let (pods, pod_watch) = podcache::start(client.clone());
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let mut evictor = Evictor {
        recorder: crate::workload::recorder(client.clone(), NAME),
        client,
        nodes,
        pods,
        first_seen: HashMap::new(),
        evicted: HashSet::new(),
    };
    let ready = async {
        evictor.nodes.wait_until_ready().await;
        evictor.pods.wait_until_ready().await;
    };
    tokio::select! {
        _ = &mut stop => { drop(pod_watch); return; }
        _ = ready => {}
    }
    loop {
        evictor.pass().await;
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(PERIOD) => {}
        }
    }
    drop(pod_watch);
}

struct Evictor {
    client: kube::Client,
    recorder: Recorder,
    nodes: k1s_informer::Informer<Node>,
    pods: k1s_informer::Informer<Pod>,
    /// When each tainted node was first seen tainted (for taints without `timeAdded`).
    first_seen: HashMap<String, Timestamp>,
    /// Pods already evicted, until the cache shows them terminating.
    evicted: HashSet<String>,
}

impl Evictor {
    async fn pass(&mut self) {
        let mut tainted = HashMap::new();
        for node in self.nodes.state() {
            let taints = no_execute_taints(&node);
            if let (false, Some(name)) = (taints.is_empty(), node.metadata.name.clone()) {
                tainted.insert(name, taints);
            }
        }
        self.first_seen.retain(|name, _| tainted.contains_key(name));
        if tainted.is_empty() {
            self.evicted.clear();
            return;
        }
        let now = Timestamp::now();
        for name in tainted.keys() {
            self.first_seen.entry(name.clone()).or_insert(now);
        }
        let due: Vec<std::sync::Arc<Pod>> = self.pods.state_filter(|p| {
            let Some(taints) = tainted.get(podcache::node_of(p)) else {
                return false;
            };
            let seen = self
                .first_seen
                .get(podcache::node_of(p))
                .copied()
                .unwrap_or(now);
            p.metadata.deletion_timestamp.is_none()
                && !self
                    .evicted
                    .contains(p.metadata.uid.as_deref().unwrap_or(""))
                && eviction_time(p, taints, seen).is_some_and(|at| at <= now)
        });
        for pod in due {
            self.evict(&pod).await;
        }
    }

    async fn evict(&mut self, pod: &Pod) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            uid: Some(uid.clone()),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: EventType::Normal,
            reason: "TaintManagerEviction".into(),
            note: Some(format!("Marking for deletion Pod {ns}/{name}")),
            action: "Delete".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &reference).await {
            tracing::debug!(pod = %name, error = %e, "cannot record the eviction event");
        }
        let now = serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::now(),
        ))
        .unwrap_or_default();
        let condition = json!({"status": {"conditions": [{
            "type": "DisruptionTarget", "status": "True", "lastTransitionTime": now,
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
        }]}});
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(condition))
            .await
        {
            tracing::debug!(pod = %name, error = %e, "cannot add the DisruptionTarget condition");
        }
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => {
                tracing::info!(pod = %name, namespace = %ns, "evicted from a NoExecute-tainted node");
                self.evicted.insert(uid);
            }
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
                self.evicted.insert(uid);
            }
            Err(e) => tracing::debug!(pod = %name, error = %e, "cannot evict; next pass retries"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn eviction_times_follow_tolerations() {
        let added = Timestamp::from_second(1_000).expect("ts");
        let taints: Vec<Taint> = serde_json::from_value(json!([
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "1970-01-01T00:16:40Z"},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
        ]))
        .expect("taints");
        let pod = |tolerations: serde_json::Value| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": "p"},
                "spec": {"containers": [], "tolerations": tolerations}}))
            .expect("pod")
        };
        let now = Timestamp::now();
        assert_eq!(
            eviction_time(&pod(json!([])), &taints, now),
            Some(Timestamp::UNIX_EPOCH)
        );
        let default = pod(
            json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                  "effect": "NoExecute", "tolerationSeconds": 300}]),
        );
        assert_eq!(
            eviction_time(&default, &taints, now).map(|t| t.as_second()),
            Some(added.as_second() + 300)
        );
        let forever = pod(json!([{"operator": "Exists"}]));
        assert_eq!(eviction_time(&forever, &taints, now), None);
    }
}

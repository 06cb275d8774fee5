//! Pod garbage collector (upstream `pkg/controller/podgc`), every 20 s:
//! - terminated pods (Succeeded, Failed) beyond the threshold (upstream's
//!   `--terminated-pod-gc-threshold`, 12500) are deleted, oldest first;
//! - pods bound to a node that does not exist are deleted once the node has been missing
//!   for the quarantine (40 s, and a direct GET still says 404), after being marked
//!   Failed with the `DisruptionTarget` condition (`DeletionByPodGC`);
//! - terminating pods that were never scheduled are deleted at once.
//!
//! All deletions use `gracePeriodSeconds: 0`: nothing runs these pods any more. Pods are
//! read from a slim watch cache (`nodelifecycle::podcache`), not listed each period.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::json;
use tokio::time::Instant;

use crate::Shutdown;
use crate::nodelifecycle::podcache;

/// Upstream's controller name.
pub const NAME: &str = "pod-garbage-collector-controller";

/// Settings (kube-controller-manager's flags and constants).
#[derive(Debug, Clone)]
pub struct Config {
    /// `--terminated-pod-gc-threshold`: terminated pods kept (0 keeps all).
    pub terminated_threshold: usize,
    /// How long a node must be missing before its pods are collected.
    pub quarantine: Duration,
    /// How often the collector runs.
    pub period: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            terminated_threshold: 12_500,
            quarantine: Duration::from_secs(40),
            period: Duration::from_secs(20),
        }
    }
}

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown, Config::default()))
}

/// Runs the collector until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown, config: Config) {
    let nodes = crate::node_informer(&client);
    nodes.start();
    let (pods, pod_watch) = podcache::start(client.clone());
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let mut gc = Collector {
        client,
        config,
        nodes,
        pods,
        missing: HashMap::new(),
    };
    let ready = async {
        gc.nodes.wait_until_ready().await;
        gc.pods.wait_until_ready().await;
    };
    tokio::select! {
        _ = &mut stop => { drop(pod_watch); return; }
        _ = ready => {}
    }
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(gc.config.period) => {}
        }
        gc.pass().await;
    }
    drop(pod_watch);
}

struct Collector {
    client: kube::Client,
    config: Config,
    nodes: k1s_informer::Informer<Node>,
    pods: k1s_informer::Informer<Pod>,
    /// Nodes pods are bound to that were missing, and since when.
    missing: HashMap<String, Instant>,
}

fn key(pod: &Pod) -> (String, String) {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

/// The terminated pods to delete so that at most `threshold` remain, oldest first.
pub fn terminated_over_threshold(mut pods: Vec<Pod>, threshold: usize) -> Vec<Pod> {
    if threshold == 0 || pods.len() <= threshold {
        return Vec::new();
    }
    let excess = pods.len() - threshold;
    pods.sort_by(|a, b| {
        let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
        ta.cmp(&tb).then_with(|| key(a).cmp(&key(b)))
    });
    pods.truncate(excess);
    pods
}

impl Collector {
    async fn pass(&mut self) {
        // Terminated pods beyond the threshold.
        if self.config.terminated_threshold > 0 {
            let done: Vec<Pod> = self
                .pods
                .state_filter(|p| {
                    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                    matches!(phase, Some("Succeeded" | "Failed"))
                })
                .iter()
                .map(|p| Pod::clone(p))
                .collect();
            for pod in terminated_over_threshold(done, self.config.terminated_threshold) {
                self.delete(&pod).await;
            }
        }
        // Pods of nodes that are gone.
        let known: HashSet<String> = self
            .nodes
            .state()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let now = Instant::now();
        let mut orphans: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for pod in self.pods.state() {
            let node = podcache::node_of(&pod);
            if !node.is_empty() && !known.contains(node) {
                orphans.entry(node.to_string()).or_default().push(pod);
            }
        }
        self.missing.retain(|n, _| orphans.contains_key(n));
        let nodes: Api<Node> = Api::all(self.client.clone());
        for (node, pods) in orphans {
            let since = *self.missing.entry(node.clone()).or_insert(now);
            if now.duration_since(since) < self.config.quarantine {
                continue;
            }
            // The watch may lag: only a 404 from the API condemns the pods.
            match nodes.get_opt(&node).await {
                Ok(None) => {}
                Ok(Some(_)) => {
                    self.missing.remove(&node);
                    continue;
                }
                Err(e) => {
                    tracing::debug!(%node, error = %e, "pod GC cannot check the node");
                    continue;
                }
            }
            for pod in pods {
                self.fail_orphan(&pod).await;
                self.delete(&pod).await;
            }
        }
        // Terminating pods that never reached a node.
        let unscheduled = self.pods.state_filter(|p| {
            podcache::node_of(p).is_empty() && p.metadata.deletion_timestamp.is_some()
        });
        for pod in unscheduled {
            self.delete(&pod).await;
        }
    }

    /// Marks an orphaned pod Failed with why, as upstream does before deleting it.
    async fn fail_orphan(&self, pod: &Pod) {
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("");
        if matches!(phase, "Succeeded" | "Failed") {
            return;
        }
        let (ns, name) = key(pod);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let now = serde_json::to_value(Time(Timestamp::now())).unwrap_or_default();
        let patch = json!({"status": {"phase": "Failed", "conditions": [{
            "type": "DisruptionTarget", "status": "True", "lastTransitionTime": now,
            "reason": "DeletionByPodGC", "message": "PodGC: node no longer exists",
        }]}});
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            tracing::debug!(pod = %name, error = %e, "pod GC cannot mark the pod Failed");
        }
    }

    async fn delete(&self, pod: &Pod) {
        let (ns, name) = key(pod);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => tracing::info!(pod = %name, namespace = %ns, "pod GC deleted the pod"),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => tracing::debug!(pod = %name, error = %e, "pod GC cannot delete the pod"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_terminated_pods_go_first() {
        let pod = |name: &str, ts: &str| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": name, "namespace": "d",
                "creationTimestamp": ts}}))
            .expect("pod")
        };
        let pods = vec![
            pod("c", "2024-01-03T00:00:00Z"),
            pod("a", "2024-01-01T00:00:00Z"),
            pod("b", "2024-01-02T00:00:00Z"),
        ];
        let gone: Vec<_> = terminated_over_threshold(pods.clone(), 1)
            .iter()
            .map(|p| key(p).1)
            .collect();
        assert_eq!(gone, ["a", "b"]);
        assert!(terminated_over_threshold(pods.clone(), 3).is_empty());
        assert!(terminated_over_threshold(pods, 0).is_empty());
    }
}

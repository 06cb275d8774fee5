//! Node lifecycle controller (upstream `pkg/controller/nodelifecycle`): watches node
//! heartbeats (the Lease in `kube-node-lease` and the Ready condition's
//! `lastHeartbeatTime`); a node not heard from within the grace period gets every kubelet
//! condition set to Unknown (`NodeStatusUnknown`, "Kubelet stopped posting node
//! status."), its pods marked not Ready, and the `unreachable` taints; a node whose
//! kubelet says Ready=False gets the `not-ready` taints. The taints go when it recovers.
//! It also mirrors `spec.unschedulable` (kubectl cordon) as the `unschedulable` taint and
//! node pressure conditions as NoSchedule taints.
//!
//! Heartbeats are timed by this controller's clock when it sees them change (as upstream
//! does: no trust in the kubelet's clock), so after a restart every node gets a fresh
//! grace period. Left out from upstream: per-zone eviction rate limits (NoExecute taints
//! are added at once, except that none are added while every node is down — upstream's
//! full-disruption mode).

pub mod podcache;
pub mod taints;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};

use crate::workload::Recorder;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::time::Instant;

use crate::Shutdown;

/// Upstream's controller name.
pub const NAME: &str = "node-lifecycle-controller";
/// Namespace of node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The conditions the kubelet owns, which go Unknown when it stops posting.
const KUBELET_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// Timings (kube-controller-manager's flags).
#[derive(Debug, Clone)]
pub struct Config {
    /// `--node-monitor-grace-period`: how long a node may go without a heartbeat.
    pub grace_period: Duration,
    /// `--node-startup-grace-period`: the same for a node that never posted status.
    pub startup_grace_period: Duration,
    /// `--node-monitor-period`: how often nodes are checked.
    pub monitor_period: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(50),
            startup_grace_period: Duration::from_secs(60),
            monitor_period: Duration::from_secs(5),
        }
    }
}

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown, Config::default()))
}

/// What was last seen of a node's heartbeats, and when (by this controller's clock).
#[derive(Debug)]
struct Health {
    probed_at: Instant,
    heartbeat: Option<Time>,
    ready: Option<String>,
    lease_renew: Option<String>,
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown, config: Config) {
    let nodes = crate::node_informer(&client);
    let (leases, lease_writer) = reflector::store::<Lease>();
    // Node changes (a cordon, a condition) are acted on at once, not at the next period.
    let changed = Arc::new(tokio::sync::Notify::new());
    let notify = changed.clone();
    let node_watch = nodes.subscribe().for_each(move |_| {
        notify.notify_one();
        futures::future::ready(())
    });
    let lease_watch = watcher(
        Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(lease_writer)
    .for_each(|_| futures::future::ready(()));
    let watches = tokio::spawn(async move {
        tokio::join!(node_watch, lease_watch);
    });
    let (pods, pod_watch) = podcache::start(client.clone());
    let mut monitor = Monitor {
        client: client.clone(),
        recorder: crate::workload::recorder(client, NAME),
        config,
        nodes,
        leases,
        pods,
        health: HashMap::new(),
    };
    let stop = shutdown.clone().wait();
    tokio::pin!(stop);
    let ready = async {
        monitor.nodes.wait_until_ready().await;
        let _ = monitor.leases.wait_until_ready().await;
        monitor.pods.wait_until_ready().await;
    };
    tokio::select! {
        _ = &mut stop => { watches.abort(); drop(pod_watch); return; }
        _ = ready => {}
    }
    loop {
        monitor.pass().await;
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(monitor.config.monitor_period) => {}
            _ = changed.notified() => {
                // Let a burst of changes (a watch relist) settle into one pass.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    watches.abort();
    drop(pod_watch);
}

struct Monitor {
    client: kube::Client,
    recorder: Recorder,
    config: Config,
    nodes: k1s_informer::Informer<Node>,
    leases: Store<Lease>,
    pods: k1s_informer::Informer<Pod>,
    health: HashMap<String, Health>,
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

fn node_ref(node: &Node) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: node.metadata.name.clone(),
        uid: node.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// The node's conditions with every kubelet condition Unknown, as upstream writes them
/// when the kubelet went silent; `None` when they already are.
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conds = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let created = node.metadata.creation_timestamp.clone();
    let mut changed = false;
    for ty in KUBELET_CONDITIONS {
        match conds.iter_mut().find(|c| c.type_ == ty) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                conds.push(NodeCondition {
                    type_: ty.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: created.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conds)
}

impl Monitor {
    async fn pass(&mut self) {
        let nodes = self.nodes.state();
        let now = Instant::now();
        let names: std::collections::HashSet<&str> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.as_deref())
            .collect();
        self.health.retain(|name, _| names.contains(name.as_str()));
        // Every node down: NoExecute taints would evict everything for nothing.
        let all_down = !nodes.is_empty()
            && nodes
                .iter()
                .all(|n| ready_condition(n).map(|c| c.status.as_str()) != Some("True"));
        for node in nodes {
            let Some(name) = node.metadata.name.clone() else {
                continue;
            };
            let node = self.check_health(&name, &node, now).await.unwrap_or(node);
            self.sync_taints(&name, &node, !all_down).await;
        }
    }

    /// Marks the node Unknown when its heartbeats stopped; returns the written node.
    async fn check_health(
        &mut self,
        name: &str,
        node: &Arc<Node>,
        now: Instant,
    ) -> Option<Arc<Node>> {
        let ready = ready_condition(node);
        let heartbeat = ready.and_then(|c| c.last_heartbeat_time.clone());
        let ready_status = ready.map(|c| c.status.clone());
        let lease_renew = self
            .leases
            .get(&reflector::ObjectRef::new(name).within(LEASE_NAMESPACE))
            .and_then(|l| {
                l.spec
                    .as_ref()?
                    .renew_time
                    .as_ref()
                    .map(|t| t.0.to_string())
            });
        let health = self
            .health
            .entry(name.to_string())
            .or_insert_with(|| Health {
                probed_at: now,
                heartbeat: heartbeat.clone(),
                ready: ready_status.clone(),
                lease_renew: lease_renew.clone(),
            });
        let mut event = None;
        if health.heartbeat != heartbeat || health.ready != ready_status {
            let was = health.ready.as_deref();
            let is = ready_status.as_deref();
            if was == Some("True") && is != Some("True") {
                event = Some("NodeNotReady");
            } else if was.is_some() && was != Some("True") && is == Some("True") {
                event = Some("NodeReady");
            }
            health.heartbeat = heartbeat;
            health.ready = ready_status.clone();
            health.probed_at = now;
        }
        if lease_renew.is_some() && health.lease_renew != lease_renew {
            health.lease_renew = lease_renew;
            health.probed_at = now;
        }
        let probed_at = health.probed_at;
        if let Some(event) = event {
            self.node_event(node, event).await;
        }
        let grace = if ready.is_none() {
            self.config.startup_grace_period
        } else {
            self.config.grace_period
        };
        if now.duration_since(probed_at) <= grace {
            return None;
        }
        let conds = unknown_conditions(node, Timestamp::now())?;
        let was_ready = ready_status.as_deref() == Some("True");
        let api: Api<Node> = Api::all(self.client.clone());
        let body = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "status": {"conditions": conds},
        });
        let written = match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(body))
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(node = name, error = %e, "cannot mark the node Unknown; next pass retries");
                return None;
            }
        };
        tracing::info!(node = name, "node stopped posting status: marked Unknown");
        if let Some(h) = self.health.get_mut(name) {
            h.ready = Some("Unknown".into());
            h.heartbeat = ready_condition(&written).and_then(|c| c.last_heartbeat_time.clone());
        }
        if was_ready {
            self.node_event(&written, "NodeNotReady").await;
        }
        self.mark_pods_not_ready(name).await;
        Some(Arc::new(written))
    }

    async fn node_event(&self, node: &Node, status: &str) {
        let name = node.metadata.name.as_deref().unwrap_or("");
        let event = Event {
            type_: EventType::Normal,
            reason: status.into(),
            note: Some(format!("Node {name} status is now: {status}")),
            action: status.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &node_ref(node)).await {
            tracing::debug!(node = name, error = %e, "cannot record the node event");
        }
    }

    /// Upstream's `MarkPodsNotReady`: the pods of a silent node are no longer Ready.
    async fn mark_pods_not_ready(&self, node: &str) {
        let pods = self.pods.state_filter(|p| podcache::node_of(p) == node);
        for pod in pods {
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if !ready || pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let now = serde_json::to_value(Time(Timestamp::now())).unwrap_or_default();
            let patch = json!({"status": {"conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": now}
            ]}});
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            if let Err(e) = pods
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                tracing::debug!(pod = %name, error = %e, "cannot mark the pod not ready");
                continue;
            }
            let event = Event {
                type_: EventType::Warning,
                reason: "NodeNotReady".into(),
                note: Some("Node is not ready".into()),
                action: "NodeNotReady".into(),
                secondary: None,
            };
            let reference = ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(name),
                namespace: Some(ns),
                uid: pod.metadata.uid.clone(),
                ..ObjectReference::default()
            };
            let _ = self.recorder.publish(&event, &reference).await;
        }
    }

    async fn sync_taints(&self, name: &str, node: &Node, no_execute: bool) {
        let want = taints::desired(node, no_execute);
        let Some(new) = taints::reconcile(node, &want, Timestamp::now()) else {
            return;
        };
        let api: Api<Node> = Api::all(self.client.clone());
        let taints = if new.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::to_value(&new).unwrap_or_default()
        };
        let body = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": taints},
        });
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(body))
            .await
        {
            Ok(_) => tracing::debug!(node = name, ?want, "node taints updated"),
            Err(e) => {
                tracing::debug!(node = name, error = %e, "cannot update node taints; next pass retries")
            }
        }
    }
}

//! Node IPAM (upstream `pkg/controller/nodeipam`, its range allocator): every Node without
//! `spec.podCIDR` gets the next free subnet (a /24 by default for IPv4, /64 for IPv6) of
//! the cluster CIDR (`--cluster-cidr`) in `spec.podCIDR` and `spec.podCIDRs`; a node that
//! has one keeps it (the API server makes it immutable) and its subnet is marked taken,
//! whoever set it (the simulated nodes set their own). When the range is full the node
//! gets a `CIDRNotAvailable` event and waits until a subnet is freed by a deleted node.
//! Subnets overlapping the Service range (`--service-cidr`) are never handed out.
//!
//! Nothing is stored: on start (and on every relist) what is taken is rebuilt from the
//! Nodes, as upstream's allocator does.

mod cidrset;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Node, ObjectReference};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

pub use cidrset::{CidrSet, CidrSetError};

use crate::Shutdown;
use crate::workload::Recorder;

/// Upstream's controller name.
pub const NAME: &str = "node-ipam-controller";

/// The component upstream's range allocator records its events as.
const EVENT_SOURCE: &str = "cidrAllocator";

/// How often nodes still waiting for a subnet are tried again.
const RETRY: Duration = Duration::from_secs(30);

/// Starts the controller (the [`crate::Descriptor`] entry point) with the cluster CIDR of
/// [`crate::ControllerConfig`]; without one it idles, as upstream's does without
/// `--allocate-node-cidrs`.
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    let config = crate::config();
    let Some(cluster_cidr) = config.cluster_cidr else {
        tracing::info!("no cluster CIDR: node pod CIDRs are not allocated");
        return Box::pin(shutdown.wait());
    };
    let mask = config.node_cidr_mask_size.unwrap_or(match cluster_cidr {
        IpNet::V4(_) => 24,
        IpNet::V6(_) => 64,
    });
    match CidrSet::new(cluster_cidr, mask) {
        Ok(mut set) => {
            if let Some(service_cidr) = config.service_cidr {
                set.reserve(service_cidr);
            }
            Box::pin(run(client, shutdown, set))
        }
        Err(e) => {
            tracing::error!(%cluster_cidr, mask, error = %e, "node IPAM cannot start");
            Box::pin(shutdown.wait())
        }
    }
}

/// Runs the allocator over `set` until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown, set: CidrSet) {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut events = watcher(nodes.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut allocator = Allocator {
        nodes,
        recorder: crate::workload::recorder(client, EVENT_SOURCE),
        set,
        known: HashMap::new(),
        relist: None,
    };
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let mut retry = tokio::time::interval(RETRY);
    retry.tick().await;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            event = events.next() => match event {
                Some(Ok(event)) => allocator.handle(event).await,
                Some(Err(e)) => tracing::debug!(error = %e, "node watch failed; retrying"),
                None => break,
            },
            _ = retry.tick() => allocator.allocate_waiting().await,
        }
    }
}

/// What the allocator knows of a node: the subnets it holds (none while it waits).
type Held = Vec<IpNet>;

struct Allocator {
    nodes: Api<Node>,
    recorder: Recorder,
    set: CidrSet,
    /// Every node seen, with what it holds.
    known: HashMap<String, Held>,
    /// The nodes of a relist in progress.
    relist: Option<BTreeMap<String, Node>>,
}

/// The subnets a node has in its spec.
fn node_cidrs(node: &Node) -> Vec<String> {
    let Some(spec) = node.spec.as_ref() else {
        return Vec::new();
    };
    match (&spec.pod_cidrs, &spec.pod_cidr) {
        (Some(list), _) if !list.is_empty() => list.clone(),
        (_, Some(one)) if !one.is_empty() => vec![one.clone()],
        _ => Vec::new(),
    }
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

impl Allocator {
    async fn handle(&mut self, event: watcher::Event<Node>) {
        match event {
            watcher::Event::Init => self.relist = Some(BTreeMap::new()),
            watcher::Event::InitApply(node) => {
                if let (Some(list), Some(name)) = (&mut self.relist, node.metadata.name.clone()) {
                    list.insert(name, node);
                }
            }
            watcher::Event::InitDone => {
                // Rebuilt from scratch: what deleted nodes held while the watch was down
                // is free again.
                let nodes = self.relist.take().unwrap_or_default();
                self.set.clear();
                self.known.clear();
                for node in nodes.values() {
                    self.occupy(node);
                }
                for node in nodes.values() {
                    self.apply(node).await;
                }
            }
            watcher::Event::Apply(node) => self.apply(&node).await,
            watcher::Event::Delete(node) => {
                let Some(name) = node.metadata.name.as_deref() else {
                    return;
                };
                if let Some(held) = self.known.remove(name) {
                    for cidr in held {
                        self.set.release(cidr);
                    }
                    // A freed subnet may be what a waiting node needs.
                    self.allocate_waiting().await;
                }
            }
        }
    }

    /// Marks what a node holds as taken.
    fn occupy(&mut self, node: &Node) -> bool {
        let Some(name) = node.metadata.name.clone() else {
            return false;
        };
        let cidrs = node_cidrs(node);
        if cidrs.is_empty() {
            self.known.entry(name).or_default();
            return false;
        }
        let mut held = Vec::new();
        // Only the first family is allocated here; a second CIDR is left alone.
        if let Some(cidr) = cidrs.first() {
            match cidr.parse::<IpNet>() {
                Ok(net) => match self.set.occupy(net) {
                    Ok(()) => held.push(net),
                    Err(e) => {
                        tracing::debug!(node = %name, %cidr, error = %e, "pod CIDR not from the cluster CIDR")
                    }
                },
                Err(e) => tracing::warn!(node = %name, %cidr, error = %e, "unparsable pod CIDR"),
            }
        }
        self.known.insert(name, held);
        true
    }

    /// A node seen (added or updated): taken if it has a CIDR, given one if not.
    async fn apply(&mut self, node: &Node) {
        if node.metadata.deletion_timestamp.is_some() && node_cidrs(node).is_empty() {
            return;
        }
        let Some(name) = node.metadata.name.clone() else {
            return;
        };
        if !node_cidrs(node).is_empty() {
            // What we assigned (or someone else set) is now in the node: its truth wins.
            if let Some(held) = self.known.get(&name)
                && !held.is_empty()
            {
                let in_spec: Vec<String> = node_cidrs(node);
                if held.iter().all(|h| in_spec.contains(&h.to_string())) {
                    return;
                }
                for cidr in held.clone() {
                    self.set.release(cidr);
                }
            }
            self.occupy(node);
            return;
        }
        if self.known.get(&name).is_some_and(|held| !held.is_empty()) {
            // Assigned and patched; the update that shows it has not arrived yet.
            return;
        }
        self.assign(node).await;
    }

    /// Gives a node without a CIDR the next free one.
    async fn assign(&mut self, node: &Node) {
        let Some(name) = node.metadata.name.clone() else {
            return;
        };
        let cidr = match self.set.allocate_next() {
            Ok(cidr) => cidr,
            Err(e) => {
                tracing::warn!(node = %name, error = %e, "no pod CIDR left for the node");
                self.known.insert(name.clone(), Vec::new());
                self.status_event(node, "CIDRNotAvailable").await;
                return;
            }
        };
        let patch = json!({"spec": {"podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()]}});
        match self
            .nodes
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(node = %name, %cidr, "set node pod CIDR");
                self.known.insert(name, vec![cidr]);
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {
                self.set.release(cidr);
                self.known.remove(&name);
            }
            Err(e) => {
                tracing::warn!(node = %name, %cidr, error = %e, "cannot set the node's pod CIDR; retrying later");
                self.set.release(cidr);
                self.known.insert(name, Vec::new());
                self.status_event(node, "CIDRAssignmentFailed").await;
            }
        }
    }

    /// Tries again the nodes still without a CIDR.
    async fn allocate_waiting(&mut self) {
        let waiting: Vec<String> = self
            .known
            .iter()
            .filter(|(_, held)| held.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        for name in waiting {
            match self.nodes.get_opt(&name).await {
                Ok(Some(node)) => self.apply(&node).await,
                Ok(None) => {
                    self.known.remove(&name);
                }
                Err(e) => tracing::debug!(node = %name, error = %e, "cannot read the node"),
            }
        }
    }

    /// Upstream's `RecordNodeStatusChange`: a Normal event naming the node's new status.
    async fn status_event(&self, node: &Node, status: &str) {
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
}

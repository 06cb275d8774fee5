//! Simulated nodes (KWOK inside the binary): `N` Node objects that register, renew their
//! Leases, post their status, and mark the pods bound to them Running and Ready without
//! running any container. An ordinary kube client: in-process inside `k1s server
//! --simulate-nodes`, over HTTPS with `k1s simulate nodes`.
//!
//! What a simulated node does with a pod bound to it (`spec.nodeName`):
//! - it runs at once: init containers are reported completed (exit 0), then every
//!   container running and ready, with a pod IP from the node's `podCIDR`;
//! - `Ready` is True only when every readiness gate's condition is True;
//! - pods with `restartPolicy: Never|OnFailure` finish after
//!   [`RUN_SECONDS_ANNOTATION`] seconds when the pod carries it, with the exit code of
//!   [`EXIT_CODE_ANNOTATION`] (default 0); pods controlled by a Job finish after
//!   [`DEFAULT_JOB_RUN`] when they carry no annotation (KWOK's `pod-complete` stage).
//!   Other pods run until deleted. An `OnFailure` pod with a non-zero exit code keeps
//!   running (the kubelet would restart its containers forever);
//! - a deleted pod is finished after its grace period, capped at [`MAX_GRACE`], and
//!   removed with `gracePeriodSeconds: 0`, as the kubelet does once containers stopped.

mod events;
mod ipam;
mod nodes;
mod pods;
mod queue;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ipnet::Ipv4Net;

pub use pods::{desired_status, is_simulated_status_current};

/// Annotation: seconds a `restartPolicy: Never|OnFailure` pod runs before it finishes.
pub const RUN_SECONDS_ANNOTATION: &str = "simulate.k1s.io/run-seconds";
/// Annotation: exit code of the containers of a finishing pod (default 0).
pub const EXIT_CODE_ANNOTATION: &str = "simulate.k1s.io/exit-code";
/// How long a Job's pod runs when it carries no [`RUN_SECONDS_ANNOTATION`].
pub const DEFAULT_JOB_RUN: Duration = Duration::from_secs(1);
/// The longest a deleted pod's grace period is honoured: nothing runs, so nothing needs
/// longer to stop, and tests and benchmarks do not wait 30 s per pod.
pub const MAX_GRACE: Duration = Duration::from_secs(1);
/// The label every simulated node carries (`type=simulated`), as KWOK labels `type=kwok`.
pub const TYPE_LABEL: (&str, &str) = ("type", "simulated");
/// Namespace of node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{0}")]
    Kube(#[from] kube::Error),
    /// The configuration cannot work (e.g. the pod range is too small).
    #[error("{0}")]
    Config(String),
}

/// How the simulated nodes look and behave.
#[derive(Debug, Clone)]
pub struct Config {
    /// How many nodes.
    pub count: usize,
    /// Node names are `<prefix>-<index>`.
    pub name_prefix: String,
    /// The pod range split into one `podCIDR` per node.
    pub cluster_cidr: Ipv4Net,
    /// The range node addresses (InternalIP) come from.
    pub node_cidr: Ipv4Net,
    /// `status.capacity` (and allocatable) of each node.
    pub capacity: Vec<(String, String)>,
    /// How often each node renews its Lease (kubelet: 10 s).
    pub lease_renew_interval: Duration,
    /// `spec.leaseDurationSeconds` of the Leases (kubelet: 40).
    pub lease_duration_seconds: i32,
    /// How often each node posts its status when nothing changed (kubelet's
    /// `nodeStatusReportFrequency`: 5 min).
    pub status_report_interval: Duration,
    /// How many pod status writes and deletions run at once.
    pub concurrency: usize,
    /// Whether the nodes post the kubelet's events about pods (`Pulled`, `Created`,
    /// `Started`, `Killing`); off saves three writes per pod in benchmarks.
    pub events: bool,
    /// The pod informer to read, shared with the controllers and scheduler of the same
    /// server; none watches pods with the simulator's own client.
    pub pods: Option<k1s_informer::Informer<k8s_openapi::api::core::v1::Pod>>,
}

impl Config {
    /// `count` nodes named `sim-node-<i>` with upstream's kubelet timings.
    pub fn new(count: usize) -> Self {
        Self {
            count,
            name_prefix: "sim-node".into(),
            cluster_cidr: "10.42.0.0/16".parse().unwrap_or_default(),
            node_cidr: "172.16.0.0/12".parse().unwrap_or_default(),
            capacity: [
                ("cpu", "32"),
                ("ephemeral-storage", "1Ti"),
                ("hugepages-1Gi", "0"),
                ("hugepages-2Mi", "0"),
                ("memory", "256Gi"),
                ("pods", "110"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            lease_renew_interval: Duration::from_secs(10),
            lease_duration_seconds: 40,
            status_report_interval: Duration::from_secs(300),
            concurrency: 64,
            events: true,
            pods: None,
        }
    }

    /// The name of node `i`.
    pub fn node_name(&self, i: usize) -> String {
        format!("{}-{i}", self.name_prefix)
    }
}

/// What the pod loop knows about one simulated node.
#[derive(Debug)]
pub(crate) struct SimNode {
    pub(crate) host_ip: String,
    pub(crate) pod_cidr: Ipv4Net,
}

/// Runs the simulated nodes until `shutdown` completes: registers them, then heartbeats
/// and runs their pods. Registration errors are returned; later errors are logged and
/// retried.
pub async fn run<F>(client: kube::Client, config: Config, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let cidrs = ipam::split(config.cluster_cidr, config.count)?;
    let mut nodes = HashMap::new();
    for (i, cidr) in cidrs.into_iter().enumerate() {
        nodes.insert(
            config.node_name(i),
            SimNode {
                host_ip: ipam::node_ip(config.node_cidr, i)?.to_string(),
                pod_cidr: cidr,
            },
        );
    }
    let nodes = Arc::new(nodes);
    let version = client
        .apiserver_version()
        .await
        .map(|v| v.git_version)
        .unwrap_or_else(|_| "v0.0.0".into());
    let config = Arc::new(config);
    nodes::register_all(&client, &config, &nodes, &version).await?;
    tracing::info!(count = config.count, "simulated nodes registered");
    let heartbeat = tokio::spawn(nodes::heartbeat(
        client.clone(),
        config.clone(),
        nodes.clone(),
        version,
    ));
    let pods = tokio::spawn(pods::run(client, config, nodes));
    shutdown.await;
    heartbeat.abort();
    pods.abort();
    Ok(())
}

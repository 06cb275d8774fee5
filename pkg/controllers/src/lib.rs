//! The control loops embedded in `k1s server`: ordinary kube clients, each handed a
//! `kube::Client` (in-process inside the server, HTTPS elsewhere), all listed in one table.
//!
//! Every controller is level-triggered: it reads the world, makes it match, and requeues;
//! none assumes it saw every event.

pub mod certificates;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod discovery;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod garbagecollector;
pub mod history;
pub mod job;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod persistentvolume;
pub mod podautoscaler;
pub mod podgc;
pub mod replicaset;
pub mod resourcequota;
pub mod serviceaccount;
pub mod servicelb;
pub mod statefulset;
pub mod tainteviction;
pub mod ttlafterfinished;
pub mod volumeprotection;
pub mod workload;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Starts one controller: runs until `shutdown` fires, logging (never returning) the
/// errors it meets on the way.
pub type StartFn = fn(kube::Client, Shutdown) -> BoxFuture<'static, ()>;

/// One embedded controller: the name upstream's kube-controller-manager gives it, and
/// how to start it.
#[derive(Debug, Clone, Copy)]
pub struct Descriptor {
    /// Upstream's controller name (`kube-controller-manager --controllers`).
    pub name: &'static str,
    /// Starts it.
    pub start: StartFn,
    /// Whether `run_all` starts it.
    pub enabled_by_default: bool,
}

/// Every embedded controller.
pub const CONTROLLERS: &[Descriptor] = &[
    Descriptor {
        name: "namespace-controller",
        start: namespace::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: "garbage-collector-controller",
        start: garbagecollector::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: deployment::NAME,
        start: deployment::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: "replicaset-controller",
        start: replicaset::start_replicasets,
        enabled_by_default: true,
    },
    Descriptor {
        name: "replicationcontroller-controller",
        start: replicaset::start_replication_controllers,
        enabled_by_default: true,
    },
    Descriptor {
        name: "statefulset-controller",
        start: statefulset::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: "daemonset-controller",
        start: daemonset::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: "job-controller",
        start: job::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: "cronjob-controller",
        start: cronjob::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: "ttl-after-finished-controller",
        start: ttlafterfinished::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: disruption::NAME,
        start: disruption::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: resourcequota::NAME,
        start: resourcequota::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: podautoscaler::NAME,
        start: podautoscaler::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: persistentvolume::NAME,
        start: persistentvolume::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: volumeprotection::CLAIMS_NAME,
        start: volumeprotection::start_claims,
        enabled_by_default: true,
    },
    Descriptor {
        name: volumeprotection::VOLUMES_NAME,
        start: volumeprotection::start_volumes,
        enabled_by_default: true,
    },
    Descriptor {
        name: nodeipam::NAME,
        start: nodeipam::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: nodelifecycle::NAME,
        start: nodelifecycle::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: tainteviction::NAME,
        start: tainteviction::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: podgc::NAME,
        start: podgc::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: "endpoints-controller",
        start: endpoints::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: "endpointslice-controller",
        start: endpointslice::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: "endpointslice-mirroring-controller",
        start: endpointslice::mirroring::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: "serviceaccount-controller",
        start: serviceaccount::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: "root-ca-certificate-publisher-controller",
        start: serviceaccount::start_root_ca_publisher,
        enabled_by_default: true,
    },
    Descriptor {
        name: certificates::approver::NAME,
        start: certificates::approver::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: certificates::signer::NAME,
        start: certificates::signer::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: servicelb::NAME,
        start: servicelb::start,
        enabled_by_default: true,
    },
];

/// What controllers need besides a client, handed to `run_all`/`run` by the server
/// (upstream's kube-controller-manager flags). A controller reads it with [`config`]
/// when it starts, so the start functions keep their one signature.
#[derive(Debug, Clone, Default)]
pub struct ControllerConfig {
    /// The cluster CA bundle (PEM) the root CA publisher puts in every namespace
    /// (`--root-ca-file`); none publishes nothing.
    pub root_ca_pem: Option<String>,
    /// The one pod watch the controllers of a `run` read (and the scheduler and simulated
    /// nodes beside them, when the server hands them the same): each pod write is decoded
    /// once, not once per controller. `run` starts one when none is given.
    pub pods: Option<k1s_informer::Informer<k8s_openapi::api::core::v1::Pod>>,
    /// The one Node watch the controllers of a `run` read, for the same reason: six of
    /// them keep every node (2 KB of JSON, several decoded), and a simulated node's
    /// heartbeat was decoded six times. `run` starts one when none is given.
    pub nodes: Option<k1s_informer::Informer<k8s_openapi::api::core::v1::Node>>,
    /// The in-process scheduler's queue of untried pods, which ReplicaSet controllers
    /// read to hold back creates (none published: never held).
    pub scheduling_backlog: k1s_informer::Backlog,
    /// The cluster's pod range (`--cluster-cidr`) the node IPAM controller carves each
    /// node's `podCIDR` from; none allocates nothing (upstream without
    /// `--allocate-node-cidrs`).
    pub cluster_cidr: Option<ipnet::IpNet>,
    /// The prefix length of each node's `podCIDR` (`--node-cidr-mask-size`); none is 24
    /// for IPv4 and 64 for IPv6.
    pub node_cidr_mask_size: Option<u8>,
    /// The Service range (`--service-cidr`): node IPAM never hands out a subnet that
    /// overlaps it.
    pub service_cidr: Option<ipnet::IpNet>,
    /// The cluster CA the CSR signer issues approved requests from
    /// (`--cluster-signing-cert-file`/`-key-file`); none signs nothing.
    pub csr_signer: Option<Arc<k1s_pki::CaSigner>>,
}

tokio::task_local! {
    static CONFIG: Arc<ControllerConfig>;
}

/// The configuration of the controllers being started: valid while a start function
/// runs (synchronously or at the start of its future), default outside `run`.
pub fn config() -> Arc<ControllerConfig> {
    CONFIG.try_with(Arc::clone).unwrap_or_default()
}

/// The shared pod informer of the controllers being started, or (outside `run`) one of
/// the caller's own.
pub fn pod_informer(
    client: &kube::Client,
) -> k1s_informer::Informer<k8s_openapi::api::core::v1::Pod> {
    config()
        .pods
        .clone()
        .unwrap_or_else(|| k1s_informer::Informer::pods(client.clone()))
}

/// The shared Node informer of the controllers being started, or (outside `run`) one of
/// the caller's own; its nodes carry no managedFields.
pub fn node_informer(
    client: &kube::Client,
) -> k1s_informer::Informer<k8s_openapi::api::core::v1::Node> {
    config()
        .nodes
        .clone()
        .unwrap_or_else(|| k1s_informer::Informer::all(client.clone()))
}

/// How long controllers get to stop after shutdown is signalled before they are aborted.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A signal that tells controllers to stop; cheap to clone, one per controller.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal and the sender that fires it (by sending `true` or by being dropped).
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    /// Completes once shutdown is signalled.
    pub async fn wait(mut self) {
        // An error means the sender is gone, which is a shutdown too.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether shutdown has been signalled.
    pub fn is_signalled(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }
}

/// Spawns every controller that is enabled by default with a default configuration
/// (no CA bundle: the root CA publisher idles); the returned task completes once
/// `shutdown` has completed and the controllers have stopped.
pub fn run_all<F>(client: kube::Client, shutdown: F) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    run_all_with(client, ControllerConfig::default(), shutdown)
}

/// [`run_all`] with a configuration.
pub fn run_all_with<F>(
    client: kube::Client,
    config: ControllerConfig,
    shutdown: F,
) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let enabled = CONTROLLERS.iter().filter(|d| d.enabled_by_default).copied();
    run_with(client, config, enabled.collect(), shutdown)
}

/// Spawns the given controllers with a default configuration; the returned task
/// completes once `shutdown` has completed and the controllers have stopped.
pub fn run<F>(client: kube::Client, controllers: Vec<Descriptor>, shutdown: F) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    run_with(client, ControllerConfig::default(), controllers, shutdown)
}

/// [`run`] with a configuration.
pub fn run_with<F>(
    client: kube::Client,
    config: ControllerConfig,
    controllers: Vec<Descriptor>,
    shutdown: F,
) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop, signal) = Shutdown::new();
    let mut config = config;
    if config.pods.is_none() {
        config.pods = Some(k1s_informer::Informer::pods(client.clone()));
    }
    if config.nodes.is_none() {
        config.nodes = Some(k1s_informer::Informer::all(client.clone()));
    }
    let config = Arc::new(config);
    let mut set = JoinSet::new();
    for d in controllers {
        let name = d.name;
        let run = CONFIG.sync_scope(config.clone(), || (d.start)(client.clone(), signal.clone()));
        let run = CONFIG.scope(config.clone(), run);
        tracing::info!(controller = name, "starting controller");
        set.spawn(async move {
            run.await;
            tracing::info!(controller = name, "controller stopped");
        });
    }
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
        let drained = async { while set.join_next().await.is_some() {} };
        if tokio::time::timeout(STOP_GRACE, drained).await.is_err() {
            tracing::warn!("controllers did not stop in time; aborting them");
            set.abort_all();
            while set.join_next().await.is_some() {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_names_are_unique_and_upstreams() {
        // `--disable-controller`-style switches address controllers by these names.
        let mut names: Vec<_> = CONTROLLERS.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CONTROLLERS.len());
        assert!(names.contains(&"namespace-controller"));
        assert!(names.contains(&"garbage-collector-controller"));
        for name in [
            "node-ipam-controller",
            "endpoints-controller",
            "endpointslice-controller",
            "endpointslice-mirroring-controller",
            "serviceaccount-controller",
            "root-ca-certificate-publisher-controller",
        ] {
            assert!(names.contains(&name), "{name}");
        }
    }

    #[tokio::test]
    async fn shutdown_fires_when_the_sender_is_dropped() {
        // A server that drops its handle without sending must still stop its controllers.
        let (tx, signal) = Shutdown::new();
        assert!(!signal.is_signalled());
        drop(tx);
        assert!(signal.is_signalled());
        tokio::time::timeout(Duration::from_secs(1), signal.wait())
            .await
            .expect("wait() returned");
    }
}

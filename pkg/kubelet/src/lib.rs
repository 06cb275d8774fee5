//! The kubelet: registers this node and runs the pods bound to it as real containers.
//!
//! It is an ordinary kube client (in-process inside `k1s server`). The pieces:
//! - [`runtime`]: the [`runtime::ContainerRuntime`] contract the pod workers drive, shaped
//!   after upstream's CRI (sandboxes, containers, images, exec/attach), implemented on
//!   containerd's own gRPC API and by a fake for tests.
//! - [`server`]: the HTTPS endpoints the API server proxies `kubectl logs`, `exec`,
//!   `attach` and `port-forward` to.
//! - [`node`]: the Node object, its Lease in `kube-node-lease` and its status.
//! - [`pods`]: one worker per pod bound here (sandbox, network, images, init containers,
//!   containers, restarts with back-off, graceful termination), a relist of the runtime
//!   every second, and the pod status written back only when it changed.
//! - [`eviction`]: node-pressure eviction (signals, thresholds, pressure conditions, the
//!   pods evicted).
//! - [`events`]: the kubelet's events, aggregated.
//! - [`localpath`]: k3s's local-path provisioner (`rancher.io/local-path`): the default
//!   StorageClass and the PersistentVolumes it makes as folders on this node.
//! - [`stats`]: CPU and memory usage of the node and its containers, served as
//!   `/metrics/resource` for the API server's resource metrics.
//! - [`summary`]: the Summary API (`/stats/summary`) from the same readings.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k1s_net::PodNetwork;

pub mod containerd;
pub mod events;
pub mod eviction;
pub mod localpath;
pub mod node;
pub mod pods;
pub mod runtime;
pub mod server;
pub mod stats;
pub mod summary;

/// What went wrong running the kubelet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The container runtime failed.
    #[error("container runtime: {0}")]
    Runtime(#[from] runtime::RuntimeError),
    /// The pod network could not be set up.
    #[error("pod network: {0}")]
    Network(String),
    /// A local file or folder could not be used.
    #[error("{0}")]
    Io(String),
}

/// How this kubelet runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Node's name.
    pub node_name: String,
    /// The node's address (its `InternalIP`, the pods' `hostIP`).
    pub node_ip: IpAddr,
    /// Cluster DNS servers written into `ClusterFirst` pods' `/etc/resolv.conf`.
    pub cluster_dns: Vec<IpAddr>,
    /// The cluster's DNS domain (`cluster.local`).
    pub cluster_domain: String,
    /// The kubelet's own folder: `pods/<uid>/` (volumes, `etc-hosts`, `resolv.conf`,
    /// termination logs) lives under it.
    pub root_dir: PathBuf,
    /// Where container logs go: `<ns>_<pod>_<uid>/<container>/<attempt>.log`
    /// (upstream's `/var/log/pods`).
    pub log_dir: PathBuf,
    /// The port of the kubelet's HTTPS endpoint, published as
    /// `status.daemonEndpoints.kubeletEndpoint.port`.
    pub kubelet_port: u16,
    /// `spec.podCIDR` to set when registering (upstream kubelet's `--pod-cidr`); `None`
    /// waits for the server's node IPAM to assign one.
    pub pod_cidr: Option<String>,
    /// The node's `pods` capacity.
    pub max_pods: u32,
    /// The resolv.conf whose nameservers `Default` pods get, and whose search domains
    /// `ClusterFirst` pods append.
    pub host_resolv_conf: PathBuf,
    /// How often the runtime is relisted to notice containers that changed.
    pub relist_period: Duration,
    /// How often the Lease is renewed and the node's conditions are checked.
    pub node_status_update_period: Duration,
    /// How often the node's status is posted even when nothing changed.
    pub node_status_report_period: Duration,
    /// The Lease's `leaseDurationSeconds`.
    pub lease_duration_seconds: i32,
    /// First delay of a restart back-off (image pulls and crashing containers).
    pub backoff_initial: Duration,
    /// Longest delay of a restart back-off.
    pub backoff_max: Duration,
    /// Node-pressure eviction's thresholds and periods.
    pub eviction: eviction::Config,
    /// The container runtime's root folder (its filesystem is `imagefs`); `None` counts
    /// the kubelet's filesystem for both.
    pub image_fs_dir: Option<PathBuf>,
}

impl Config {
    /// Upstream's defaults for a node named `node_name` at `node_ip`, keeping its files
    /// under `root_dir` and its logs under `log_dir`.
    pub fn new(node_name: &str, node_ip: IpAddr, root_dir: PathBuf, log_dir: PathBuf) -> Self {
        Self {
            node_name: node_name.to_string(),
            node_ip,
            cluster_dns: vec![IpAddr::from([10, 43, 0, 10])],
            cluster_domain: "cluster.local".into(),
            root_dir,
            log_dir,
            kubelet_port: 10250,
            pod_cidr: None,
            max_pods: 110,
            host_resolv_conf: PathBuf::from("/etc/resolv.conf"),
            relist_period: Duration::from_secs(1),
            node_status_update_period: Duration::from_secs(10),
            node_status_report_period: Duration::from_secs(300),
            lease_duration_seconds: 40,
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            eviction: eviction::Config::default(),
            image_fs_dir: None,
        }
    }
}

/// Makes the pod network once the node's `podCIDR` is known (the bridge needs it).
pub type NetworkFactory =
    Box<dyn FnOnce(String) -> BoxFuture<'static, Result<Arc<dyn PodNetwork>, String>> + Send>;

/// Runs the kubelet until `shutdown` resolves: registers the Node (NotReady until the
/// network is up), renews its Lease, waits for its `podCIDR`, makes the network with
/// `network`, marks the node Ready and runs the pods bound to it.
///
/// Containers keep running when it stops: the next start adopts them.
pub async fn run<F>(
    client: kube::Client,
    config: Config,
    runtime: Arc<dyn runtime::ContainerRuntime>,
    network: NetworkFactory,
    shutdown: F,
) -> Result<(), Error>
where
    F: Future<Output = ()> + Send,
{
    let config = Arc::new(config);
    for dir in [&config.root_dir, &config.log_dir] {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
    }
    let version = runtime.version().await?;
    let recorder = events::Recorder::new(client.clone(), &config.node_name);
    let pressure = Arc::new(eviction::Manager::new(config.eviction.clone()));
    let node = node::NodeAgent::new(
        client.clone(),
        config.clone(),
        version,
        recorder.clone(),
        pressure.clone(),
    );
    node.register().await?;
    let heartbeat = tokio::spawn(node.clone().heartbeat());
    let work = async {
        let cidr = node.wait_pod_cidr().await?;
        let net = network(cidr).await.map_err(Error::Network)?;
        node.set_network_ready().await;
        pods::run(
            client.clone(),
            config.clone(),
            runtime,
            net,
            recorder,
            pressure,
        )
        .await
    };
    let result = tokio::select! {
        r = work => r,
        () = shutdown => Ok(()),
    };
    heartbeat.abort();
    result
}

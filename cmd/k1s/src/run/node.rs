//! What `k1s server` runs for its own node and `k1s agent` runs on a joined one, from the
//! shared flags (cli/node.rs): the container runtime, the kubelet with its HTTPS endpoint
//! and bridge pod network, the vxlan overlay and the Service proxy. The two differ only in
//! how they reach the API (in-process or over HTTPS) and where certificates come from.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::cli::node::NodeArgs;

/// The node's container runtime: the embedded containerd (supervised) or the one at
/// `--container-runtime-endpoint`.
pub(crate) struct RuntimeHandle {
    /// The CRI client of the runtime.
    pub runtime: k1s_kubelet::containerd::ContainerdRuntime,
    /// The embedded containerd's supervisor; none for an outside endpoint.
    pub supervisor: Option<k1s_kubelet::containerd::supervisor::Supervisor>,
}

/// Starts the embedded containerd, or connects to `--container-runtime-endpoint`.
pub(crate) async fn start_runtime(
    node: &NodeArgs,
    data_dir: &Path,
) -> anyhow::Result<RuntimeHandle> {
    let endpoint = node
        .container_runtime_endpoint
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    // Its errors are one line saying what to install or which endpoint failed.
    let started = k1s_kubelet::containerd::start(data_dir, endpoint.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(RuntimeHandle {
        runtime: started.runtime,
        supervisor: started.supervisor,
    })
}

/// Imports the images of `<data-dir>/agent/images` (k3s's airgap folder) into the runtime.
pub(crate) async fn import_airgap_images(
    runtime: &k1s_kubelet::containerd::ContainerdRuntime,
    data_dir: &Path,
) {
    let images = k1s_kubelet::containerd::airgap_images_dir(data_dir);
    let imported = k1s_kubelet::containerd::images::import_dir(runtime, &images).await;
    if !imported.is_empty() {
        tracing::info!(images = ?imported, "imported airgap images");
    }
}

/// The node flags, checked before anything starts.
pub(crate) struct NodeSettings {
    /// The cluster's IPv4 pod range.
    pub cluster_cidr: ipnet::Ipv4Net,
    /// The pod bridge's name.
    pub bridge: String,
    /// Whether the vxlan overlay runs.
    pub overlay: bool,
    /// The kubelet's eviction configuration: k3s's defaults and `--kubelet-arg`.
    pub eviction: k1s_kubelet::eviction::Config,
}

impl NodeSettings {
    /// Checks the flags a node needs: an IPv4 pod range, a bridge name the kernel takes,
    /// and `--kubelet-arg` values the kubelet knows.
    pub(crate) fn from_flags(node: &NodeArgs) -> anyhow::Result<Self> {
        let eviction = k1s_kubelet::eviction::Config::k3s(&node.kubelet_arg)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let cluster_cidr = match node.cluster_cidr {
            ipnet::IpNet::V4(net) => net,
            ipnet::IpNet::V6(_) => bail!("the agent needs an IPv4 --cluster-cidr"),
        };
        let bridge = node.bridge_name.clone();
        if bridge.is_empty() || bridge.len() > 15 {
            bail!("--bridge-name {bridge:?} must have 1 to 15 characters");
        }
        Ok(Self {
            cluster_cidr,
            bridge,
            overlay: node.flannel_backend == "vxlan",
            eviction,
        })
    }
}

/// The kubelet's HTTPS listener (logs, exec, attach, port-forward), which the API server
/// reaches at the node's address and the port the Node publishes; and that port.
pub(crate) async fn bind_kubelet(port: u16) -> anyhow::Result<(tokio::net::TcpListener, u16)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        .await
        .with_context(|| format!("cannot listen on the kubelet port {port}"))?;
    let bound = listener
        .local_addr()
        .context("the kubelet listener has no address")?
        .port();
    Ok((listener, bound))
}

/// A kubelet ready to run: its configuration, listener and serving TLS.
pub(crate) struct Kubelet {
    /// The kubelet's configuration; callers may adjust it before [`Kubelet::spawn`].
    pub config: k1s_kubelet::Config,
    /// The HTTPS listener from [`bind_kubelet`].
    pub listener: tokio::net::TcpListener,
    /// The serving certificate's TLS configuration.
    pub tls: rustls::ServerConfig,
}

impl Kubelet {
    /// The kubelet of this node, keeping its state under `<data-dir>/agent`.
    pub(crate) fn new(
        node: &NodeArgs,
        settings: &NodeSettings,
        node_name: &str,
        node_ip: IpAddr,
        data_dir: &Path,
        (listener, kubelet_port): (tokio::net::TcpListener, u16),
        tls: rustls::ServerConfig,
    ) -> Self {
        let agent_dir = data_dir.join("agent");
        let mut config = k1s_kubelet::Config::new(
            node_name,
            node_ip,
            agent_dir.join("kubelet"),
            node.pod_log_dir.clone(),
        );
        config.cluster_dns = vec![node.cluster_dns];
        config.cluster_domain = node.cluster_domain.clone();
        config.kubelet_port = kubelet_port;
        config.eviction = settings.eviction.clone();
        if node.container_runtime_endpoint.is_none() {
            // The embedded containerd keeps its images under the data dir: that is imagefs.
            config.image_fs_dir = Some(agent_dir.join("containerd"));
        }
        Self {
            config,
            listener,
            tls,
        }
    }

    /// Runs the kubelet and its HTTPS endpoint until `done`: it registers the node, waits
    /// for its podCIDR, makes the bridge network and runs the pods bound here.
    pub(crate) fn spawn(
        self,
        client: kube::Client,
        runtime: k1s_kubelet::containerd::ContainerdRuntime,
        settings: &NodeSettings,
        data_dir: &Path,
        done: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let network = bridge_network_factory(
            settings.bridge.clone(),
            settings.cluster_cidr,
            data_dir.join("agent").join("net"),
            settings.overlay,
        );
        let runtime: Arc<dyn k1s_kubelet::runtime::ContainerRuntime> = Arc::new(runtime);
        let config = self.config;
        let stats = k1s_kubelet::summary::Sources {
            node_name: config.node_name.clone(),
            root_dir: config.root_dir.clone(),
            log_dir: config.log_dir.clone(),
            image_fs_dir: config.image_fs_dir.clone(),
        };
        let server = k1s_kubelet::server::serve_with_stats(
            k1s_kubelet::server::ServerConfig {
                listener: self.listener,
                tls: self.tls,
                authorizer: Default::default(),
            },
            runtime.clone(),
            Some(stats),
        );
        tokio::spawn(async move {
            if let Err(e) = k1s_kubelet::run(client, config, runtime, network, done).await {
                tracing::error!(error = %e, "the kubelet failed");
            }
            server.abort();
        })
    }
}

/// The kubelet's pod network: the node's bridge on its podCIDR, once the node has one. With
/// the vxlan overlay the pods' MTU leaves room for its headers.
fn bridge_network_factory(
    bridge: String,
    cluster_cidr: ipnet::Ipv4Net,
    state_dir: PathBuf,
    overlay: bool,
) -> k1s_kubelet::NetworkFactory {
    use k1s_net::{BridgeConfig, BridgeNetwork};
    Box::new(move |cidr: String| {
        let bridge = bridge.clone();
        let state_dir = state_dir.clone();
        Box::pin(async move {
            let pod_cidr: ipnet::Ipv4Net = cidr
                .parse()
                .map_err(|e| format!("the node's podCIDR {cidr:?} is not an IPv4 CIDR: {e}"))?;
            let mut c = BridgeConfig::new(pod_cidr, cluster_cidr, state_dir);
            // The default bridge keeps k3s-like names; others (tests) get a table of their own.
            c.nft_table = k1s_net::cleanup::tables_for_bridge(&bridge).nat;
            c.bridge = bridge;
            if overlay {
                c.mtu = c.mtu.min(1500 - k1s_net::vxlan::OVERHEAD);
            }
            let net = BridgeNetwork::new(c).await.map_err(|e| e.to_string())?;
            Ok(Arc::new(net) as Arc<dyn k1s_net::PodNetwork>)
        })
    })
}

/// Runs this node's vxlan overlay until `done` (for `--flannel-backend vxlan`).
pub(crate) fn spawn_overlay(
    client: kube::Client,
    node: &NodeArgs,
    node_name: &str,
    node_ip: Ipv4Addr,
    done: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let mut config = k1s_net::vxlan::VxlanConfig::new(node_name, node_ip);
    config.device = k1s_net::vxlan::device_for_bridge(&node.bridge_name);
    config.port = node.vxlan_port;
    tokio::spawn(async move {
        if let Err(e) = k1s_net::vxlan::run(client, config, done).await {
            tracing::error!(error = %e, "the vxlan overlay failed");
        }
    })
}

/// Runs this node's Service proxy until `done`; traffic from outside `cluster_cidr` to a
/// Service is masqueraded.
pub(crate) fn spawn_proxy(
    client: kube::Client,
    node: &NodeArgs,
    node_name: &str,
    cluster_cidr: Option<ipnet::Ipv4Net>,
    done: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let mut config = k1s_net::proxy::ProxyConfig::new(cluster_cidr);
    config.node_name = Some(node_name.to_string());
    // Named after the bridge, so that nodes sharing a host (tests) keep apart.
    config.table = k1s_net::cleanup::tables_for_bridge(&node.bridge_name).proxy;
    tokio::spawn(async move {
        if let Err(e) = k1s_net::proxy::run(client, config, done).await {
            tracing::error!(error = %e, "service proxy failed");
        }
    })
}

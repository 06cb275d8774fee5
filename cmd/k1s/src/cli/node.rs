//! Flags that `k1s server` and `k1s agent` share, with k3s's names: the process's own
//! (config file, logs, data dir) and this node's (kubelet, pod network, Service proxy).
//! Both commands flatten them, so a flag and its help are written once.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;
use ipnet::IpNet;

/// Config file, logging and data dir of a `k1s server` or `k1s agent` process.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// Read flags from this YAML file (k3s's config.yaml: flag names as keys, lists for
    /// repeatable flags; `<FILE>.d/*.yaml` follow in name order). Command-line flags win.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        default_value = crate::cli::config_file::DEFAULT_CONFIG_FILE,
        env = "K1S_CONFIG_FILE",
        help_heading = "Data"
    )]
    pub config: PathBuf,

    /// Write the logs to this file (appended to; never coloured) instead of stderr.
    #[arg(
        long,
        short = 'l',
        value_name = "FILE",
        env = "K1S_LOG_FILE",
        help_heading = "Logging"
    )]
    pub log: Option<PathBuf>,

    /// With --log, write the logs to stderr too.
    #[arg(long, env = "K1S_ALSO_LOG_TO_STDERR", help_heading = "Logging")]
    pub alsologtostderr: bool,

    /// Folder for state: certificates, token, database, kubelet, containerd (default
    /// /var/lib/k1s as root, ~/.k1s otherwise).
    #[arg(long, short = 'd', env = "K1S_DATA_DIR", help_heading = "Data")]
    pub data_dir: Option<PathBuf>,
}

/// This node's kubelet, pod network and Service proxy, on a server's own node or an agent.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Do not run the Service proxy (kube-proxy's nftables rules) on this node, to bring
    /// your own; on a server the same as `--disable kube-proxy`.
    #[arg(long, env = "K1S_DISABLE_KUBE_PROXY", help_heading = "Components")]
    pub disable_kube_proxy: bool,

    /// The cluster's pod IP range (give an agent the server's; traffic leaving it is
    /// masqueraded).
    #[arg(
        long,
        default_value = "10.42.0.0/16",
        env = "K1S_CLUSTER_CIDR",
        help_heading = "Networking"
    )]
    pub cluster_cidr: IpNet,

    /// Cluster DNS service IP, written into pods' resolv.conf (inside the server's
    /// --service-cidr; give an agent the server's).
    #[arg(
        long,
        default_value = "10.43.0.10",
        env = "K1S_CLUSTER_DNS",
        help_heading = "Networking"
    )]
    pub cluster_dns: IpAddr,

    /// Cluster DNS domain (give an agent the server's).
    #[arg(
        long,
        default_value = "cluster.local",
        env = "K1S_CLUSTER_DOMAIN",
        help_heading = "Networking"
    )]
    pub cluster_domain: String,

    /// Cross-node pod network: `vxlan` (flannel's default overlay, made once a second node
    /// joins) or `none` (bring your own routes between nodes).
    #[arg(
        long,
        default_value = "vxlan",
        value_parser = ["vxlan", "none"],
        env = "K1S_FLANNEL_BACKEND",
        help_heading = "Networking"
    )]
    pub flannel_backend: String,

    /// UDP port of the vxlan overlay; the same on every node.
    #[arg(
        long,
        default_value_t = 8472,
        env = "K1S_VXLAN_PORT",
        help_heading = "Networking"
    )]
    pub vxlan_port: u16,

    /// Name of this node (default: the host name).
    #[arg(long, env = "K1S_NODE_NAME", help_heading = "Agent")]
    pub node_name: Option<String>,

    /// IP address this node advertises (its InternalIP; default: a server's advertise
    /// address, or on an agent the address the route to the server leaves from).
    #[arg(long, env = "K1S_NODE_IP", help_heading = "Agent")]
    pub node_ip: Option<IpAddr>,

    /// Use the containerd at this socket instead of starting the embedded one.
    #[arg(long, env = "K1S_CONTAINER_RUNTIME_ENDPOINT", help_heading = "Agent")]
    pub container_runtime_endpoint: Option<PathBuf>,

    /// Port of the kubelet's HTTPS endpoint (logs, exec, port-forward); 0 picks a free one.
    #[arg(
        long,
        default_value_t = 10250,
        env = "K1S_KUBELET_PORT",
        help_heading = "Agent"
    )]
    pub kubelet_port: u16,

    /// Customized flag for the kubelet, as `flag=value` (repeatable; k3s's
    /// `--kubelet-arg`). k1s's kubelet takes the eviction flags: `eviction-hard`,
    /// `eviction-soft`, `eviction-soft-grace-period`, `eviction-minimum-reclaim`,
    /// `eviction-pressure-transition-period`, `eviction-max-pod-grace-period` (default, as
    /// k3s: `eviction-hard=imagefs.available<5%,nodefs.available<5%`); others are refused.
    #[arg(
        long = "kubelet-arg",
        value_name = "FLAG=VALUE",
        help_heading = "Agent"
    )]
    pub kubelet_arg: Vec<String>,

    /// Where container logs are written (`<ns>_<pod>_<uid>/<container>/<n>.log`).
    #[arg(
        long,
        default_value = "/var/log/pods",
        env = "K1S_POD_LOG_DIR",
        help_heading = "Agent"
    )]
    pub pod_log_dir: PathBuf,

    /// Name of the node's pod bridge (at most 15 characters).
    #[arg(
        long,
        default_value = "k1s0",
        env = "K1S_BRIDGE_NAME",
        help_heading = "Agent"
    )]
    pub bridge_name: String,
}

//! Flags of `k1s agent`, with k3s's names.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;
use ipnet::IpNet;

/// Long help of `k1s agent`.
pub const LONG_ABOUT: &str = "\
Run a node that joins a k1s server: the kubelet on an embedded containerd, the pod network \
(bridge and vxlan overlay) and the Service proxy, talking to the server over HTTPS.

The token is the server's <data-dir>/server/token (K10<ca hash>::server:<secret>): the agent \
checks the server's CA against the hash, authenticates with a bootstrap token derived from \
the secret, and gets its kubelet certificates from the server by CertificateSigningRequests \
that the server approves. A bare secret joins too, without the CA check.

Example: k1s agent --server https://192.168.1.10:6443 --token K10…::server:…";

/// Runs an agent that joins a server.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Read flags from this YAML file (k3s's config.yaml: flag names as keys). Command-line
    /// flags win.
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

    /// The server to join: https://HOST:6443.
    #[arg(
        long,
        short = 's',
        value_name = "URL",
        env = "K1S_URL",
        help_heading = "Cluster"
    )]
    pub server: String,

    /// The join token: the server's <data-dir>/server/token, or its bare secret.
    #[arg(
        long,
        short = 't',
        env = "K1S_TOKEN",
        hide_env_values = true,
        help_heading = "Cluster"
    )]
    pub token: Option<String>,

    /// Read the join token from this file.
    #[arg(long, env = "K1S_TOKEN_FILE", help_heading = "Cluster")]
    pub token_file: Option<PathBuf>,

    /// Folder for state: certificates, kubelet, containerd (default /var/lib/k1s as root,
    /// ~/.k1s otherwise).
    #[arg(long, short = 'd', env = "K1S_DATA_DIR", help_heading = "Data")]
    pub data_dir: Option<PathBuf>,

    /// Name of this node (default: the host name).
    #[arg(long, env = "K1S_NODE_NAME", help_heading = "Agent")]
    pub node_name: Option<String>,

    /// IP address this node advertises (its InternalIP; default: the address the route to
    /// the server leaves from).
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

    /// Customized flag for the kubelet, as `flag=value` (repeatable; the eviction flags, as
    /// `k1s server --kubelet-arg`).
    #[arg(
        long = "kubelet-arg",
        value_name = "FLAG=VALUE",
        help_heading = "Agent"
    )]
    pub kubelet_arg: Vec<String>,

    /// Where container logs are written.
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

    /// The cluster's pod range, as the server's --cluster-cidr (traffic leaving it is
    /// masqueraded).
    #[arg(
        long,
        default_value = "10.42.0.0/16",
        env = "K1S_CLUSTER_CIDR",
        help_heading = "Networking"
    )]
    pub cluster_cidr: IpNet,

    /// Cluster DNS service IP written into pods' resolv.conf, as the server's.
    #[arg(
        long,
        default_value = "10.43.0.10",
        env = "K1S_CLUSTER_DNS",
        help_heading = "Networking"
    )]
    pub cluster_dns: IpAddr,

    /// Cluster DNS domain, as the server's.
    #[arg(
        long,
        default_value = "cluster.local",
        env = "K1S_CLUSTER_DOMAIN",
        help_heading = "Networking"
    )]
    pub cluster_domain: String,

    /// Cross-node pod network: `vxlan` (flannel's default overlay) or `none` (bring your
    /// own routes between nodes).
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

    /// Do not run the Service proxy on this node (the same as the server's `--disable
    /// kube-proxy`).
    #[arg(long, env = "K1S_DISABLE_KUBE_PROXY", help_heading = "Components")]
    pub disable_kube_proxy: bool,
}

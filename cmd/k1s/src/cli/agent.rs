//! Flags of `k1s agent`, with k3s's names.

use std::path::PathBuf;

use clap::Args;

/// Long help of `k1s agent`.
pub const LONG_ABOUT: &str = "\
Run a node that joins a k1s server: the kubelet on an embedded containerd, the pod network \
(bridge and vxlan overlay) and the Service proxy, talking to the server over HTTPS.

The token is the server's <data-dir>/server/token (K10<ca hash>::server:<secret>): the agent \
checks the server's CA against the hash, authenticates with a bootstrap token derived from \
the secret, and gets its kubelet certificates from the server by CertificateSigningRequests \
that the server approves. A bare secret joins too, without the CA check.

Every client of the agent goes through a load balancer on 127.0.0.1:<--lb-server-port> \
(TCP, TLS end to end) that forwards to the --server URL or any other server listed in the \
`kubernetes` Endpoints, and moves to another when one stops accepting connections; the list \
is kept in <data-dir>/agent/etc/k1s-agent-load-balancer.json for the next start.

Example: k1s agent --server https://192.168.1.10:6443 --token K10…::server:…";

/// Runs an agent that joins a server.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Config file, logs and data dir (shared with `k1s server`).
    #[command(flatten)]
    pub process: crate::cli::node::ProcessArgs,

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

    /// Port on 127.0.0.1 of the agent's API server load balancer: the kubelet, Service
    /// proxy and overlay connect there, and it forwards to a live server (the --server one,
    /// then every server the `kubernetes` Endpoints lists).
    #[arg(
        long,
        default_value_t = 6444,
        env = "K1S_LB_SERVER_PORT",
        help_heading = "Cluster"
    )]
    pub lb_server_port: u16,

    /// This node's kubelet, pod network and Service proxy (shared with `k1s server`).
    #[command(flatten)]
    pub node: crate::cli::node::NodeArgs,
}

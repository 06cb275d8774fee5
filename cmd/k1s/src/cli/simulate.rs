//! Flags of `k1s simulate`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use ipnet::Ipv4Net;

/// Runs simulated cluster members against a cluster.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// What to simulate.
    #[command(subcommand)]
    pub what: SimulateCommand,
}

/// What `k1s simulate` can run.
#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// Run N simulated nodes against any cluster: they register, heartbeat their Leases
    /// and mark pods bound to them Running and Ready without running containers.
    Nodes(SimulateNodesArgs),
}

/// Flags of `k1s simulate nodes`.
#[derive(Debug, Args)]
pub struct SimulateNodesArgs {
    /// How many nodes.
    #[arg(value_name = "N")]
    pub count: usize,

    /// URL of the API server (default: the kubeconfig's).
    #[arg(long)]
    pub server: Option<String>,

    /// Kubeconfig to authenticate with (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// Node names are `<prefix>-0`, `<prefix>-1`, …
    #[arg(long, default_value = "sim-node")]
    pub name_prefix: String,

    /// Pod range split into one podCIDR per node.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: Ipv4Net,
}

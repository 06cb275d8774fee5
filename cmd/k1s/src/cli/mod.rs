//! Command-line interface: one file of flags per subcommand, named as k3s names them.

pub mod agent;
pub mod check_config;
pub mod config_file;
pub mod datastore;
pub mod etcd;
pub mod image;
pub mod killall;
pub mod kubectl;
pub mod node;
pub mod secrets_encrypt;
pub mod server;
pub mod simulate;

use clap::{Parser, Subcommand};

/// k1s: Kubernetes in one binary.
#[derive(Debug, Parser)]
#[command(name = "k1s", version, about = "k1s: a Kubernetes distribution in one binary", long_about = None)]
pub struct Cli {
    /// Turn on debug logs (or set K1S_LOG, e.g. K1S_LOG=k1s_apiserver=debug).
    #[arg(long, global = true, env = "K1S_DEBUG")]
    pub debug: bool,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a k1s server: the API server and, unless disabled, the agent parts.
    Server(Box<server::ServerArgs>),
    /// Run an agent: a node that joins a server with its token.
    #[command(long_about = agent::LONG_ABOUT)]
    Agent(Box<agent::AgentArgs>),
    /// Run kubectl against this server (uses the kubeconfig k1s wrote).
    Kubectl(kubectl::KubectlArgs),
    /// Maintain the datastore (consistency check).
    Datastore(datastore::DatastoreArgs),
    /// Save, list and delete snapshots of the embedded etcd (k3s's etcd-snapshot).
    EtcdSnapshot(etcd::EtcdSnapshotArgs),
    /// Manage the embedded etcd's members.
    Etcd(etcd::EtcdArgs),
    /// Import, list and remove the node's container images.
    Image(image::ImageArgs),
    /// Stop k1s's containers and remove its mounts, pod network and nftables rules
    /// (k3s-killall.sh).
    #[command(long_about = killall::LONG_ABOUT)]
    Killall(killall::KillallArgs),
    /// Check that this host can run k1s (cgroups, kernel modules, nftables, swap,
    /// containerd, ports) and say how to fix what is missing.
    #[command(long_about = check_config::LONG_ABOUT)]
    CheckConfig(check_config::CheckConfigArgs),
    /// Show or rotate the keys that encrypt Secrets at rest (k3s's secrets-encrypt).
    SecretsEncrypt(secrets_encrypt::SecretsEncryptArgs),
    /// Run simulated nodes against a cluster (for tests and benchmarks).
    Simulate(simulate::SimulateArgs),
}

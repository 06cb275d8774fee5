//! Flags of `k1s killall`.

use std::path::PathBuf;

use clap::Args;

/// The long `--help` of `k1s killall`.
pub const LONG_ABOUT: &str = "Stops everything a k1s node runs and undoes what it set up on the \
host, as k3s's k3s-killall.sh: for cleaning up a node, or before uninstalling k1s.

In order:
  1. a `k1s server` still running on this data dir (SIGKILL);
  2. the embedded containerd and the shims of its containers, with every process they run
     (the pods' containers, k8s.io namespace);
  3. every mount under the data dir (container root file systems, pods' shm and
     volumes, the files that pin pods' network, IPC and UTS namespaces), deepest first;
     the pods' network namespaces go with them;
  4. the pod bridge (--bridge-name) and every veth on it, and the cluster DNS interface
     (--dns-interface);
  5. the nftables tables k1s owns: `k1s` (the pods' NAT and host ports) and `k1s-proxy`
     (the Service proxy), or `<bridge>` and `<bridge>-proxy` for another --bridge-name.

The data dir itself (datastore, certificates, images) is kept: `k1s server` starts again
on it, and runs its pods anew. Running killall again finds nothing and removes nothing.
Needs root.";

/// Stops everything a k1s node runs and undoes what it set up on the host, as k3s's
/// `k3s-killall.sh`.
#[derive(Debug, Args)]
pub struct KillallArgs {
    /// The server's config file, for its data-dir, bridge-name and dns-interface keys.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        default_value = crate::cli::config_file::DEFAULT_CONFIG_FILE,
        env = "K1S_CONFIG_FILE"
    )]
    pub config: PathBuf,
    /// The server's data dir (default /var/lib/k1s as root, ~/.k1s otherwise).
    #[arg(long, short = 'd', env = "K1S_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The server's pod bridge (its --bridge-name); also names the nftables tables.
    #[arg(long, default_value = "k1s0", env = "K1S_BRIDGE_NAME")]
    pub bridge_name: String,
    /// The server's cluster DNS interface (its --dns-interface).
    #[arg(long, default_value = "k1s-dns0", env = "K1S_DNS_INTERFACE")]
    pub dns_interface: String,
}

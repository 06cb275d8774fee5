//! Flags of `k1s check-config`.

use std::path::PathBuf;

use clap::Args;

/// The long `--help` of `k1s check-config`.
pub const LONG_ABOUT: &str = "Checks that this host can run a k1s node and says, for each thing \
that is missing, how to fix it (k3s's check-config, for Raspberry Pis first).

It checks:
  - cgroups: the memory controller, which Raspberry Pi OS turns off by default (the fix is
    `cgroup_memory=1 cgroup_enable=memory` in /boot/firmware/cmdline.txt), cpu and pids;
  - kernel modules: overlay, bridge, veth, br_netfilter, nf_tables, nf_conntrack and vxlan
    (loaded, built in, or loadable from /lib/modules);
  - programs k1s runs: containerd, containerd-shim-runc-v2, runc, nft, conntrack, modprobe, ip;
  - swap (kubelets expect it off);
  - ports: the API server's, the kubelet's and the ingress controller's are free.

Exit status: 0 when k1s can run (warnings are printed but allowed), 1 when something it
needs is missing.";

/// Checks the host for what k1s needs.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Check the host whose file system is mounted here (its /proc, /sys, /boot,
    /// /lib/modules and /usr/bin): for an SD card's root mounted elsewhere, and for tests.
    /// Ports are always checked on this machine.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub host_root: PathBuf,
    /// TCP ports that must be free (the API server's --https-listen-port, the kubelet's
    /// --kubelet-port, the ingress controller's ports).
    #[arg(long, value_delimiter = ',', default_values_t = [6443, 10250, 80, 443])]
    pub ports: Vec<u16>,
}

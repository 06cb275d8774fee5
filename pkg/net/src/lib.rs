//! The pod network of one node: each pod's network namespace is wired to the node's `k1s0`
//! bridge with a veth pair and given an address from the node's `podCIDR`; traffic leaving
//! the cluster CIDR is masqueraded; `hostPort`s are forwarded to their pods.
//!
//! The kubelet makes a pod's network namespace (see `k1s-kubelet`'s runtime sandbox) and
//! hands its path to [`PodNetwork::attach`]; [`PodNetwork::detach`] undoes it. What was
//! allocated is kept on disk so a restarted server finds it again ([`PodNetwork::reconcile`]).
//!
//! The implementation is [`BridgeNetwork`] (made with [`BridgeConfig::new`] from the
//! node's `spec.podCIDR` and `--cluster-cidr`); IPv4 only for now.

mod bridge;
pub mod cleanup;
mod ipam;
pub mod netpol;
mod nft;
pub mod proxy;
pub mod vxlan;

pub use bridge::{BridgeConfig, BridgeNetwork};

use std::net::IpAddr;
use std::path::Path;

use async_trait::async_trait;

/// What went wrong wiring a pod.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The node's `podCIDR` has no free address left.
    #[error("no IP addresses available in range set: {0}")]
    RangeFull(String),
    /// The kernel refused a change (netlink, nftables, namespaces).
    #[error("{0}")]
    Kernel(String),
}

/// A pod as the network knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    /// The pod's UID: the key allocations are kept under.
    pub uid: String,
    /// The pod's namespace, for messages.
    pub namespace: String,
    /// The pod's name, for messages.
    pub name: String,
}

/// A `hostPort` mapping of a pod's container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// The node's port.
    pub host_port: u16,
    /// The pod's port.
    pub container_port: u16,
    /// The node address it is bound to (`hostIP`); all when `None`.
    pub host_ip: Option<IpAddr>,
}

/// The addresses a pod was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodAddresses {
    /// One per IP family, IPv4 first.
    pub ips: Vec<IpAddr>,
}

/// The node's pod network.
#[async_trait]
pub trait PodNetwork: Send + Sync + 'static {
    /// Wires the pod's network namespace at `netns`: veth to the bridge, an address, the
    /// default route, loopback up, host ports. Idempotent: a pod already wired gets the
    /// addresses it has.
    async fn attach(
        &self,
        pod: &PodRef,
        netns: &Path,
        host_ports: &[HostPort],
    ) -> Result<PodAddresses, NetError>;
    /// Undoes [`Self::attach`] and frees the pod's addresses. Idempotent.
    async fn detach(&self, pod: &PodRef) -> Result<(), NetError>;
    /// After a restart: frees what belongs to none of `live_pod_uids`.
    async fn reconcile(&self, live_pod_uids: &[String]) -> Result<(), NetError>;
}

//! The cross-node pod network: a vxlan overlay in flannel's default shape.
//!
//! Each node publishes its VTEP on its Node object with flannel's annotations
//! (`flannel.alpha.coreos.com/backend-data` = `{"VNI":1,"VtepMAC":…}`, `public-ip`, …). For
//! every other node with a `podCIDR` and those annotations it keeps, on its vxlan device
//! (`flannel.1`, VNI 1, UDP 8472, no learning):
//! - a route to the peer's podCIDR via the peer subnet's first address, on-link;
//! - a permanent neighbour entry: that address has the peer's VTEP MAC;
//! - a forwarding entry: that MAC lives behind the peer's node IP.
//!
//! The VTEP MAC is derived from the node name, so it is known before the device exists: the
//! device is made only once a first peer appears, and a single-node cluster has none.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use netlink_packet_route::neighbour::NeighbourFlags;
use rtnetlink::{Handle, LinkUnspec, LinkVxlan, RouteMessageBuilder};

use crate::NetError;
use crate::bridge::{is_errno, link_index, nl_err};

/// Flannel's annotation holding `{"VNI":…,"VtepMAC":…}`.
pub const BACKEND_DATA: &str = "flannel.alpha.coreos.com/backend-data";
/// Flannel's annotation naming the backend (`vxlan`).
pub const BACKEND_TYPE: &str = "flannel.alpha.coreos.com/backend-type";
/// Flannel's annotation holding the address other nodes send the overlay's packets to.
pub const PUBLIC_IP: &str = "flannel.alpha.coreos.com/public-ip";
/// Flannel's annotation saying the subnets come from the Nodes' `podCIDR`s.
pub const KUBE_SUBNET_MANAGER: &str = "flannel.alpha.coreos.com/kube-subnet-manager";

/// The bytes vxlan adds to each packet (outer IPv4, UDP, vxlan headers and inner
/// Ethernet): pods' MTU is the node's less this.
pub const OVERHEAD: u32 = 50;

/// How this node's overlay is set up.
#[derive(Debug, Clone)]
pub struct VxlanConfig {
    /// This node's name.
    pub node_name: String,
    /// The address peers send encapsulated packets to (the node's InternalIP).
    pub node_ip: Ipv4Addr,
    /// The vxlan device (`flannel.1`).
    pub device: String,
    /// The UDP port (8472, the Linux default flannel uses).
    pub port: u16,
    /// The vxlan network identifier (1).
    pub vni: u32,
    /// The device's MTU (the uplink's less [`OVERHEAD`]).
    pub mtu: u32,
}

impl VxlanConfig {
    /// Flannel's defaults for `node_name` at `node_ip`.
    pub fn new(node_name: impl Into<String>, node_ip: Ipv4Addr) -> Self {
        VxlanConfig {
            node_name: node_name.into(),
            node_ip,
            device: "flannel.1".into(),
            port: 8472,
            vni: 1,
            mtu: 1500 - OVERHEAD,
        }
    }
}

/// The vxlan device of a node whose pod bridge is `bridge`: flannel's `flannel.1` beside the
/// default bridge, `<bridge>.1` beside others (nodes sharing a host in tests keep apart).
pub fn device_for_bridge(bridge: &str) -> String {
    if bridge == crate::cleanup::DEFAULT_BRIDGE {
        "flannel.1".into()
    } else {
        let mut name = format!("{bridge}.1");
        name.truncate(15);
        name
    }
}

/// The VTEP MAC of a node: stable, locally administered, unicast, from its name.
pub fn vtep_mac(node_name: &str) -> [u8; 6] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node_name.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = hash.to_be_bytes();
    [(b[0] & 0xfe) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    parts.try_into().ok()
}

/// Another node's end of the overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its pod range.
    pub pod_cidr: Ipv4Net,
    /// Its VTEP MAC.
    pub mac: [u8; 6],
    /// Its node address.
    pub ip: Ipv4Addr,
}

impl Peer {
    /// The first address of its pod range: the next hop (its vxlan device's address).
    pub fn gateway(&self) -> Ipv4Addr {
        self.pod_cidr.network()
    }
}

/// The node's overlay endpoint from its `podCIDR` and flannel annotations, when it has all
/// of them with this VNI.
pub fn peer_of(node: &Node, vni: u32) -> Option<Peer> {
    let pod_cidr: Ipv4Net = node.spec.as_ref()?.pod_cidr.as_ref()?.parse().ok()?;
    let annotations = node.metadata.annotations.as_ref()?;
    if annotations.get(BACKEND_TYPE).map(String::as_str) != Some("vxlan") {
        return None;
    }
    let data: serde_json::Value = serde_json::from_str(annotations.get(BACKEND_DATA)?).ok()?;
    if data["VNI"].as_u64() != Some(u64::from(vni)) {
        return None;
    }
    Some(Peer {
        pod_cidr: pod_cidr.trunc(),
        mac: parse_mac(data["VtepMAC"].as_str()?)?,
        ip: annotations.get(PUBLIC_IP)?.parse().ok()?,
    })
}

/// The annotations this node publishes.
fn annotations(config: &VxlanConfig) -> serde_json::Value {
    let data =
        serde_json::json!({"VNI": config.vni, "VtepMAC": mac_text(&vtep_mac(&config.node_name))});
    serde_json::json!({"metadata": {"annotations": {
        BACKEND_TYPE: "vxlan",
        BACKEND_DATA: data.to_string(),
        PUBLIC_IP: config.node_ip.to_string(),
        KUBE_SUBNET_MANAGER: "true",
    }}})
}

/// Publishes this node's VTEP and keeps the routes to the other nodes' pods until
/// `shutdown` completes. The device stays (pods keep talking across a restart).
pub async fn run(
    client: kube::Client,
    config: VxlanConfig,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), NetError> {
    let (connection, handle, _) = rtnetlink::new_connection()
        .map_err(|e| NetError::Kernel(format!("netlink socket: {e}")))?;
    let connection = tokio::spawn(connection);
    let overlay = Overlay {
        handle,
        config,
        peers: BTreeMap::new(),
        device: None,
    };
    tokio::select! {
        r = overlay.run(client) => { connection.abort(); r }
        () = shutdown => { connection.abort(); Ok(()) }
    }
}

struct Overlay {
    handle: Handle,
    config: VxlanConfig,
    /// Peers programmed, by node name.
    peers: BTreeMap<String, Peer>,
    device: Option<u32>,
}

impl Overlay {
    async fn run(mut self, client: kube::Client) -> Result<(), NetError> {
        let nodes: Api<Node> = Api::all(client);
        // The kubelet registers the Node; until then the patch finds nothing.
        let patch = annotations(&self.config);
        loop {
            match nodes
                .patch(
                    &self.config.node_name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => break,
                Err(e) => tracing::debug!(error = %e, "cannot publish the vxlan endpoint yet"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut known: BTreeMap<String, Node> = BTreeMap::new();
        let mut events = watcher(nodes, watcher::Config::default()).boxed();
        loop {
            let event = match events.try_next().await {
                Ok(Some(e)) => e,
                Ok(None) => return Ok(()),
                Err(e) => {
                    tracing::debug!(error = %e, "node watch failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            match event {
                watcher::Event::Init => known.clear(),
                watcher::Event::InitApply(n) => {
                    known.insert(n.name_any(), n);
                    continue;
                }
                watcher::Event::InitDone => {}
                watcher::Event::Apply(n) => {
                    known.insert(n.name_any(), n);
                }
                watcher::Event::Delete(n) => {
                    known.remove(&n.name_any());
                }
            }
            if let Err(e) = self.sync(&known).await {
                tracing::warn!(error = %e, "cannot program the vxlan overlay");
            }
        }
    }

    /// Brings the kernel to the wanted peers: new and changed ones in, gone ones out.
    async fn sync(&mut self, nodes: &BTreeMap<String, Node>) -> Result<(), NetError> {
        let Some(own_cidr) = nodes
            .get(&self.config.node_name)
            .and_then(|n| n.spec.as_ref()?.pod_cidr.as_ref()?.parse::<Ipv4Net>().ok())
        else {
            return Ok(());
        };
        let wanted: BTreeMap<String, Peer> = nodes
            .iter()
            .filter(|(name, _)| **name != self.config.node_name)
            .filter_map(|(name, n)| Some((name.clone(), peer_of(n, self.config.vni)?)))
            .filter(|(_, p)| p.ip != self.config.node_ip)
            .collect();
        if wanted.is_empty() && self.device.is_none() {
            return Ok(());
        }
        let index = self.ensure_device(own_cidr.trunc()).await?;
        let stale: Vec<(String, Peer)> = self
            .peers
            .iter()
            .filter(|(name, p)| wanted.get(*name) != Some(p))
            .map(|(n, p)| (n.clone(), p.clone()))
            .collect();
        for (name, peer) in stale {
            self.remove_peer(index, &peer).await;
            self.peers.remove(&name);
            tracing::info!(node = %name, "removed the overlay route to a node");
        }
        for (name, peer) in wanted {
            if self.peers.get(&name) == Some(&peer) {
                continue;
            }
            self.add_peer(index, &peer).await?;
            tracing::info!(node = %name, pod_cidr = %peer.pod_cidr, ip = %peer.ip, "overlay route to a node");
            self.peers.insert(name, peer);
        }
        Ok(())
    }

    async fn ensure_device(&mut self, own_cidr: Ipv4Net) -> Result<u32, NetError> {
        if let Some(index) = self.device {
            return Ok(index);
        }
        let name = &self.config.device;
        let index = match link_index(&self.handle, name).await? {
            Some(index) => index,
            None => {
                let link = LinkVxlan::new(name, self.config.vni)
                    .port(self.config.port)
                    .local(self.config.node_ip)
                    .learning(false)
                    .mtu(self.config.mtu)
                    .address(vtep_mac(&self.config.node_name).to_vec())
                    .build();
                match self.handle.link().add(link).execute().await {
                    Ok(()) => {}
                    Err(e) if is_errno(&e, libc::EEXIST) => {}
                    Err(e) => return Err(nl_err(format!("create vxlan device {name}"), e)),
                }
                link_index(&self.handle, name)
                    .await?
                    .ok_or_else(|| NetError::Kernel(format!("vxlan device {name} vanished")))?
            }
        };
        self.handle
            .address()
            .add(index, IpAddr::V4(own_cidr.network()), 32)
            .replace()
            .execute()
            .await
            .map_err(|e| nl_err(format!("address {} on {name}", own_cidr.network()), e))?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| nl_err(format!("set {name} up"), e))?;
        tracing::info!(device = %name, port = self.config.port, "vxlan overlay device ready");
        self.device = Some(index);
        Ok(index)
    }

    async fn add_peer(&self, index: u32, peer: &Peer) -> Result<(), NetError> {
        let gw = peer.gateway();
        self.handle
            .neighbours()
            .add(index, IpAddr::V4(gw))
            .link_layer_address(&peer.mac)
            .replace()
            .execute()
            .await
            .map_err(|e| nl_err(format!("neighbour {gw}"), e))?;
        self.handle
            .neighbours()
            .add_bridge(index, &peer.mac)
            .destination(IpAddr::V4(peer.ip))
            .flags(NeighbourFlags::Own)
            .replace()
            .execute()
            .await
            .map_err(|e| nl_err(format!("forwarding entry for {}", peer.ip), e))?;
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(peer.pod_cidr.network(), peer.pod_cidr.prefix_len())
            .gateway(gw)
            .output_interface(index)
            .onlink()
            .build();
        self.handle
            .route()
            .add(route)
            .replace()
            .execute()
            .await
            .map_err(|e| nl_err(format!("route to {}", peer.pod_cidr), e))
    }

    /// Best effort: an entry already gone is what was wanted.
    async fn remove_peer(&self, index: u32, peer: &Peer) {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(peer.pod_cidr.network(), peer.pod_cidr.prefix_len())
            .gateway(peer.gateway())
            .output_interface(index)
            .onlink()
            .build();
        if let Err(e) = self.handle.route().del(route).execute().await {
            tracing::debug!(error = %e, "route to a former peer");
        }
        let mut neigh = self
            .handle
            .neighbours()
            .add(index, IpAddr::V4(peer.gateway()));
        let msg = neigh.message_mut().clone();
        if let Err(e) = self.handle.neighbours().del(msg).execute().await {
            tracing::debug!(error = %e, "neighbour of a former peer");
        }
        let mut fdb = self
            .handle
            .neighbours()
            .add_bridge(index, &peer.mac)
            .destination(IpAddr::V4(peer.ip))
            .flags(NeighbourFlags::Own);
        let msg = fdb.message_mut().clone();
        if let Err(e) = self.handle.neighbours().del(msg).execute().await {
            tracing::debug!(error = %e, "forwarding entry of a former peer");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_read_from_flannels_annotations() {
        let config = VxlanConfig::new("pi-2", Ipv4Addr::new(192, 168, 1, 12));
        let mut node: Node = serde_json::from_value(annotations(&config)).unwrap();
        assert_eq!(peer_of(&node, 1), None, "no podCIDR yet");
        node.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
            pod_cidr: Some("10.42.2.0/24".into()),
            ..Default::default()
        });
        let peer = peer_of(&node, 1).unwrap();
        assert_eq!(peer.gateway(), Ipv4Addr::new(10, 42, 2, 0));
        assert_eq!(peer.ip, Ipv4Addr::new(192, 168, 1, 12));
        assert_eq!(peer.mac, vtep_mac("pi-2"));
        assert_eq!(peer_of(&node, 2), None, "another VNI");
        let mac = vtep_mac("pi-2");
        assert_eq!(mac[0] & 0x03, 0x02, "unicast, locally administered");
        assert_eq!(parse_mac(&mac_text(&mac)), Some(mac));
        assert_ne!(vtep_mac("pi-3"), mac);
    }
}

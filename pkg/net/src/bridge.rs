//! [`BridgeNetwork`]: the CNI `bridge` + `host-local` + `portmap` trio in-process, as k3s's
//! default flannel setup wires a node's pods: a Linux bridge holding the gateway address,
//! one veth pair per pod (host side on the bridge, `eth0` in the pod), addresses from the
//! node's pod CIDR, a default route via the gateway, and the node's NAT in nftables.
//!
//! Links and addresses are made over rtnetlink; the part inside a pod's namespace goes
//! through a netlink socket opened in that namespace by a short-lived thread that enters
//! it (a socket stays in the namespace it was made in, so no runtime thread ever switches).

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::ipam::{Ipam, io_err};
use crate::nft::{self, PodPorts, Scope};
use crate::{HostPort, NetError, PodAddresses, PodNetwork, PodRef};

/// The longest name Linux gives an interface (IFNAMSIZ - 1).
const IFNAMSIZ: usize = 15;
/// The pod side of every veth pair.
const POD_IFNAME: &str = "eth0";

/// How a node's bridge network is set up.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// The bridge's name (`k1s0` on a node; tests pass unique ones).
    pub bridge: String,
    /// The node's `spec.podCIDR`: pods get addresses from it, its first address is the
    /// gateway on the bridge.
    pub pod_cidr: Ipv4Net,
    /// The cluster's pod CIDR (`--cluster-cidr`): traffic leaving it is masqueraded.
    pub cluster_cidr: Ipv4Net,
    /// The MTU of the bridge and of every veth.
    pub mtu: u32,
    /// Where allocations are kept across restarts.
    pub state_dir: PathBuf,
    /// The nftables table (`ip` family) holding the node's NAT (`k1s` on a node).
    pub nft_table: String,
}

impl BridgeConfig {
    /// The node's defaults (bridge `k1s0`, MTU 1500, table `k1s`) for a pod CIDR.
    pub fn new(pod_cidr: Ipv4Net, cluster_cidr: Ipv4Net, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            bridge: "k1s0".to_owned(),
            pod_cidr: pod_cidr.trunc(),
            cluster_cidr: cluster_cidr.trunc(),
            mtu: 1500,
            state_dir: state_dir.into(),
            nft_table: "k1s".to_owned(),
        }
    }
}

/// What is kept on disk per attached pod, so a restart rebuilds the host ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodRecord {
    ip: Ipv4Addr,
    #[serde(default)]
    host_ports: Vec<StoredPort>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredPort {
    protocol: String,
    host_port: u16,
    container_port: u16,
    #[serde(default)]
    host_ip: Option<IpAddr>,
}

impl From<&HostPort> for StoredPort {
    fn from(p: &HostPort) -> Self {
        Self {
            protocol: p.protocol.clone(),
            host_port: p.host_port,
            container_port: p.container_port,
            host_ip: p.host_ip,
        }
    }
}

impl From<&StoredPort> for HostPort {
    fn from(p: &StoredPort) -> Self {
        Self {
            protocol: p.protocol.clone(),
            host_port: p.host_port,
            container_port: p.container_port,
            host_ip: p.host_ip,
        }
    }
}

/// A node's pod network on a Linux bridge; see the module documentation.
#[derive(Debug)]
pub struct BridgeNetwork {
    config: BridgeConfig,
    gateway: Ipv4Addr,
    ipam: Ipam,
    host: Handle,
    connection: JoinHandle<()>,
    // Pods with host ports, by UID; the nftables table is rebuilt from it under this lock.
    ports: Mutex<BTreeMap<String, PodPorts>>,
    // The kernel answers one dump at a time per netlink socket (EBUSY otherwise), and
    // attaches run side by side on the host socket.
    dumps: Mutex<()>,
}

impl Drop for BridgeNetwork {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl BridgeNetwork {
    /// Sets the node up (bridge with the gateway, `ip_forward`, the nftables table) and
    /// loads what a previous run allocated. Must run inside a tokio runtime.
    pub async fn new(config: BridgeConfig) -> Result<Self, NetError> {
        if config.bridge.is_empty() || config.bridge.len() > IFNAMSIZ {
            return Err(NetError::Kernel(format!(
                "bridge name {:?} must have 1 to {IFNAMSIZ} characters",
                config.bridge
            )));
        }
        let pod_cidr = config.pod_cidr.trunc();
        let gateway = pod_cidr
            .hosts()
            .next()
            .filter(|_| pod_cidr.prefix_len() <= 30)
            .ok_or_else(|| NetError::RangeFull(format!("{pod_cidr} has no room for pods")))?;
        let (connection, host, _) = rtnetlink::new_connection()
            .map_err(|e| NetError::Kernel(format!("netlink socket: {e}")))?;
        let connection = tokio::spawn(connection);
        let ipam = Ipam::open(&config.state_dir.join("ips"), pod_cidr, gateway)?;
        fs::create_dir_all(config.state_dir.join("pods"))
            .map_err(|e| io_err("create", &config.state_dir.join("pods"), e))?;
        let network = Self {
            config: BridgeConfig {
                pod_cidr,
                cluster_cidr: config.cluster_cidr.trunc(),
                ..config
            },
            gateway,
            ipam,
            host,
            connection,
            ports: Mutex::new(BTreeMap::new()),
            dumps: Mutex::new(()),
        };
        network.ensure_bridge().await?;
        sysctl("net/ipv4/ip_forward", "1")?;
        // Lets a host port be reached on 127.0.0.1: the DNATed packet leaves through the
        // bridge with a loopback source, which the kernel otherwise drops as martian.
        sysctl(
            &format!("net/ipv4/conf/{}/route_localnet", network.config.bridge),
            "1",
        )?;
        let mut ports = network.ports.lock().await;
        for (uid, record) in network.records()? {
            if !record.host_ports.is_empty() {
                ports.insert(
                    uid,
                    PodPorts {
                        ip: record.ip,
                        ports: record.host_ports.iter().map(HostPort::from).collect(),
                    },
                );
            }
        }
        network.apply_rules(&ports).await?;
        drop(ports);
        tracing::info!(
            bridge = %network.config.bridge,
            pod_cidr = %network.config.pod_cidr,
            gateway = %gateway,
            "pod network ready"
        );
        Ok(network)
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }

    /// The pods' default gateway: the bridge's address, the pod CIDR's first.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The host side of a pod's veth pair: `veth` and 11 hex digits of a hash of the
    /// bridge and the pod UID, so the name is the same after a restart and never longer
    /// than Linux allows.
    pub fn host_veth_name(&self, pod_uid: &str) -> String {
        let hash = fnv1a(
            self.config
                .bridge
                .bytes()
                .chain(std::iter::once(0))
                .chain(pod_uid.bytes()),
        );
        let name = format!("veth{:011x}", hash & 0x0fff_ffff_ffff);
        debug_assert!(name.len() <= IFNAMSIZ);
        name
    }

    /// The bridge's MAC: locally administered, unicast, derived from its name.
    fn bridge_mac(&self) -> [u8; 6] {
        let hash = fnv1a(self.config.bridge.bytes()).to_be_bytes();
        [0x02, hash[0], hash[1], hash[2], hash[3], hash[4]]
    }

    /// Removes everything the network made on the node (veths, bridge, nftables table),
    /// keeping the allocations on disk: for uninstalling a node, and for tests.
    pub async fn teardown(&self) -> Result<(), NetError> {
        if let Some(bridge) = link_index(&self.host, &self.config.bridge).await? {
            for (index, _) in self.bridge_ports(bridge).await? {
                delete_link(&self.host, index).await?;
            }
            delete_link(&self.host, bridge).await?;
        }
        nft::delete(&self.config.nft_table).await
    }

    /// Creates the bridge if it is missing, with the gateway address, and brings it up.
    async fn ensure_bridge(&self) -> Result<u32, NetError> {
        let name = &self.config.bridge;
        let index = match link_index(&self.host, name).await? {
            Some(index) => index,
            None => {
                let created = self
                    .host
                    .link()
                    .add(LinkBridge::new(name).mtu(self.config.mtu).build())
                    .execute()
                    .await;
                match created {
                    Ok(()) => {}
                    // Made meanwhile by someone else: as good.
                    Err(e) if is_errno(&e, libc::EEXIST) => {}
                    Err(e) => return Err(nl_err(format!("create bridge {name}"), e)),
                }
                link_index(&self.host, name)
                    .await?
                    .ok_or_else(|| NetError::Kernel(format!("bridge {name} vanished")))?
            }
        };
        // Another IPv4 address is a pod CIDR of before (the node was registered anew):
        // pods of this one must not be routed there.
        let dumping = self.dumps.lock().await;
        let mut addresses = self
            .host
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut stale = Vec::new();
        while let Some(address) = addresses
            .try_next()
            .await
            .map_err(|e| nl_err(format!("list addresses of {name}"), e))?
        {
            let ours = address.attributes.iter().any(
                |a| matches!(a, AddressAttribute::Address(IpAddr::V4(ip)) if *ip == self.gateway),
            ) && address.header.prefix_len == self.config.pod_cidr.prefix_len();
            if address.header.family == AddressFamily::Inet && !ours {
                stale.push(address);
            }
        }
        drop(addresses);
        drop(dumping);
        for address in stale {
            tracing::info!(bridge = %name, "removing an address of a former pod CIDR");
            self.host
                .address()
                .del(address)
                .execute()
                .await
                .map_err(|e| nl_err(format!("remove a stale address of {name}"), e))?;
        }
        self.host
            .address()
            .add(
                index,
                IpAddr::V4(self.gateway),
                self.config.pod_cidr.prefix_len(),
            )
            .replace()
            .execute()
            .await
            .map_err(|e| nl_err(format!("address {} on {name}", self.gateway), e))?;
        // A MAC of its own: a bridge left to pick one takes its lowest port's, and changes
        // it when that pod goes, leaving the others' ARP entry for the gateway stale.
        self.host
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .address(self.bridge_mac().to_vec())
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| nl_err(format!("set {name} up"), e))?;
        Ok(index)
    }

    /// The links plugged into the bridge: index and name.
    async fn bridge_ports(&self, bridge: u32) -> Result<Vec<(u32, String)>, NetError> {
        let _dumping = self.dumps.lock().await;
        let mut links = self.host.link().get().execute();
        let mut out = Vec::new();
        while let Some(link) = links
            .try_next()
            .await
            .map_err(|e| nl_err("list links", e))?
        {
            let mut controller = None;
            let mut name = None;
            for attr in &link.attributes {
                match attr {
                    LinkAttribute::Controller(c) => controller = Some(*c),
                    LinkAttribute::IfName(n) => name = Some(n.clone()),
                    _ => {}
                }
            }
            if let (Some(c), Some(name)) = (controller, name)
                && c == bridge
            {
                out.push((link.header.index, name));
            }
        }
        Ok(out)
    }

    /// Wires the namespace: the veth pair (made again when either side is missing), the
    /// host side on the bridge in hairpin mode, and `lo`, `eth0`, its address and the
    /// default route inside.
    async fn wire(&self, pod: &PodRef, netns: &Path, ip: Ipv4Addr) -> Result<(), NetError> {
        // The full set-up ran at start; again only if someone removed the bridge.
        let bridge = match link_index(&self.host, &self.config.bridge).await? {
            Some(index) => index,
            None => self.ensure_bridge().await?,
        };
        let host_name = self.host_veth_name(&pod.uid);
        let ns = NetnsLink::open(netns).await?;
        let eth0 = link_peer(&ns.handle, POD_IFNAME).await?;
        let host_index = link_index(&self.host, &host_name).await?;
        // eth0 names its peer's index on the host: another pair (a half-finished attach,
        // the pod's previous sandbox) is made again.
        let paired =
            matches!((eth0, host_index), (Some((_, Some(peer))), Some(host)) if peer == host);
        let eth0 = eth0.map(|(index, _)| index);
        if !paired {
            // Half a pair (or another one) is left from an interrupted attach: start over.
            if let Some(index) = host_index {
                delete_link(&self.host, index).await?;
            }
            if let Some(index) = eth0 {
                delete_link(&ns.handle, index).await?;
            }
            let ns_file = File::open(netns).map_err(|e| io_err("open", netns, e))?;
            let peer = LinkMessageBuilder::<LinkUnspec>::new()
                .name(POD_IFNAME.to_owned())
                .mtu(self.config.mtu)
                .setns_by_fd(ns_file.as_raw_fd())
                .build();
            let pair = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
                .name(host_name.clone())
                .mtu(self.config.mtu)
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                .build();
            self.host
                .link()
                .add(pair)
                .execute()
                .await
                .map_err(|e| nl_err(format!("create veth {host_name}"), e))?;
            drop(ns_file);
        }
        let host_index = link_index(&self.host, &host_name)
            .await?
            .ok_or_else(|| NetError::Kernel(format!("veth {host_name} vanished")))?;
        self.host
            .link()
            .set(
                LinkUnspec::new_with_index(host_index)
                    .controller(bridge)
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| nl_err(format!("plug {host_name} into {}", self.config.bridge), e))?;
        // Hairpin: a pod reaching a Service that picks the pod itself gets its packet back
        // through the port it came in by.
        self.host
            .link()
            .set_port(LinkBridgePort::new(host_index).hairpin(true).build())
            .execute()
            .await
            .map_err(|e| nl_err(format!("hairpin on {host_name}"), e))?;

        let lo = link_index(&ns.handle, "lo")
            .await?
            .ok_or_else(|| NetError::Kernel(format!("no lo in {}", netns.display())))?;
        ns.handle
            .link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .map_err(|e| nl_err("set lo up", e))?;
        let eth0 = link_index(&ns.handle, POD_IFNAME)
            .await?
            .ok_or_else(|| NetError::Kernel(format!("no eth0 in {}", netns.display())))?;
        ns.handle
            .address()
            .add(eth0, IpAddr::V4(ip), self.config.pod_cidr.prefix_len())
            .replace()
            .execute()
            .await
            .map_err(|e| nl_err(format!("address {ip} on eth0"), e))?;
        ns.handle
            .link()
            .set(LinkUnspec::new_with_index(eth0).up().build())
            .execute()
            .await
            .map_err(|e| nl_err("set eth0 up", e))?;
        let default_route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(Ipv4Addr::UNSPECIFIED, 0)
            .gateway(self.gateway)
            .output_interface(eth0)
            .build();
        ns.handle
            .route()
            .add(default_route)
            .replace()
            .execute()
            .await
            .map_err(|e| nl_err(format!("default route via {}", self.gateway), e))?;
        Ok(())
    }

    /// Records (or forgets) a pod's host ports, rewriting the nftables table when they
    /// changed.
    async fn set_ports(&self, uid: &str, entry: Option<PodPorts>) -> Result<(), NetError> {
        let mut ports = self.ports.lock().await;
        let changed = match (&entry, ports.get(uid)) {
            (None, None) => false,
            (Some(new), Some(old)) => new.ip != old.ip || new.ports != old.ports,
            _ => true,
        };
        if !changed {
            return Ok(());
        }
        match entry {
            Some(entry) => ports.insert(uid.to_owned(), entry),
            None => ports.remove(uid),
        };
        self.apply_rules(&ports).await
    }

    async fn apply_rules(&self, ports: &BTreeMap<String, PodPorts>) -> Result<(), NetError> {
        let scope = Scope {
            table: self.config.nft_table.clone(),
            bridge: self.config.bridge.clone(),
            pod_cidr: self.config.pod_cidr,
            cluster_cidr: self.config.cluster_cidr,
        };
        let pods: Vec<PodPorts> = ports.values().cloned().collect();
        nft::apply(&scope, &pods).await
    }

    fn record_path(&self, uid: &str) -> PathBuf {
        self.config.state_dir.join("pods").join(uid)
    }

    /// Every pod record on disk, by UID.
    fn records(&self) -> Result<Vec<(String, PodRecord)>, NetError> {
        let dir = self.config.state_dir.join("pods");
        let entries = fs::read_dir(&dir).map_err(|e| io_err("read", &dir, e))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some(uid) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if uid.starts_with('.') {
                continue;
            }
            match fs::read(entry.path()) {
                Ok(bytes) => match serde_json::from_slice::<PodRecord>(&bytes) {
                    Ok(record) => out.push((uid, record)),
                    Err(e) => tracing::warn!(path = %entry.path().display(), error = %e,
                        "ignoring an unreadable pod network record"),
                },
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("read", &entry.path(), e)),
            }
        }
        Ok(out)
    }

    fn write_record(&self, uid: &str, record: &PodRecord) -> Result<(), NetError> {
        let path = self.record_path(uid);
        let tmp = self
            .config
            .state_dir
            .join("pods")
            .join(format!(".{uid}.tmp"));
        let bytes = serde_json::to_vec(record)
            .map_err(|e| NetError::Kernel(format!("encode {}: {e}", path.display())))?;
        fs::write(&tmp, bytes).map_err(|e| io_err("write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_err("rename", &path, e))
    }

    fn remove_record(&self, uid: &str) -> Result<(), NetError> {
        let path = self.record_path(uid);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(io_err("remove", &path, e)),
            _ => Ok(()),
        }
    }

    /// Undoes a pod's wiring by UID: the veth (its peer goes with it), the address, the
    /// host ports.
    async fn release(&self, uid: &str) -> Result<(), NetError> {
        let host_name = self.host_veth_name(uid);
        if let Some(index) = link_index(&self.host, &host_name).await? {
            delete_link(&self.host, index).await?;
        }
        self.set_ports(uid, None).await?;
        let freed = self.ipam.release(uid)?;
        self.remove_record(uid)?;
        if !freed.is_empty() {
            tracing::debug!(pod_uid = uid, ips = ?freed, "pod network released");
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl PodNetwork for BridgeNetwork {
    async fn attach(
        &self,
        pod: &PodRef,
        netns: &Path,
        host_ports: &[HostPort],
    ) -> Result<PodAddresses, NetError> {
        let had = self.ipam.get(&pod.uid)?;
        let ip = self.ipam.allocate(&pod.uid)?;
        let wired = async {
            self.wire(pod, netns, ip).await?;
            let record = PodRecord {
                ip,
                host_ports: host_ports.iter().map(StoredPort::from).collect(),
            };
            self.write_record(&pod.uid, &record)?;
            let entry = (!host_ports.is_empty()).then(|| PodPorts {
                ip,
                ports: host_ports.to_vec(),
            });
            self.set_ports(&pod.uid, entry).await
        }
        .await;
        if let Err(e) = wired {
            tracing::warn!(pod = %format!("{}/{}", pod.namespace, pod.name), error = %e,
                "attaching the pod network failed");
            if had.is_none() {
                // Nothing of it may linger: the kubelet will attach again from scratch.
                if let Err(undo) = self.release(&pod.uid).await {
                    tracing::warn!(pod_uid = %pod.uid, error = %undo, "undoing a failed attach");
                }
            }
            return Err(e);
        }
        tracing::debug!(pod = %format!("{}/{}", pod.namespace, pod.name), %ip, "pod network attached");
        Ok(PodAddresses {
            ips: vec![IpAddr::V4(ip)],
        })
    }

    async fn detach(&self, pod: &PodRef) -> Result<(), NetError> {
        self.release(&pod.uid).await
    }

    async fn reconcile(&self, live_pod_uids: &[String]) -> Result<(), NetError> {
        let live: HashSet<&str> = live_pod_uids.iter().map(String::as_str).collect();
        let mut dead: HashSet<String> = HashSet::new();
        for (_, owner) in self.ipam.list()? {
            if !live.contains(owner.as_str()) {
                dead.insert(owner);
            }
        }
        for (uid, _) in self.records()? {
            if !live.contains(uid.as_str()) {
                dead.insert(uid);
            }
        }
        for uid in &dead {
            self.release(uid).await?;
        }
        // Veths on the bridge that belong to no live pod (left by a crash between creating
        // the pair and recording it).
        let bridge = self.ensure_bridge().await?;
        let wanted: HashSet<String> = live.iter().map(|uid| self.host_veth_name(uid)).collect();
        for (index, name) in self.bridge_ports(bridge).await? {
            if name.starts_with("veth") && !wanted.contains(&name) {
                delete_link(&self.host, index).await?;
            }
        }
        let ports = self.ports.lock().await;
        self.apply_rules(&ports).await?;
        if !dead.is_empty() {
            tracing::info!(freed = dead.len(), "pod network reconciled");
        }
        Ok(())
    }
}

/// A netlink connection inside a network namespace; closed on drop.
struct NetnsLink {
    handle: Handle,
    connection: JoinHandle<()>,
}

impl Drop for NetnsLink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl NetnsLink {
    /// Opens a netlink socket in the namespace bound at `path`: a thread of its own enters
    /// the namespace, makes the socket and ends, so no runtime thread changes namespace.
    async fn open(path: &Path) -> Result<Self, NetError> {
        let file = File::open(path).map_err(|e| io_err("open network namespace", path, e))?;
        let runtime = tokio::runtime::Handle::current();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let shown = path.display().to_string();
        std::thread::Builder::new()
            .name("k1s-netns".to_owned())
            .spawn(move || {
                // The socket registers with the runtime's reactor.
                let _enter = runtime.enter();
                let made = rustix::thread::move_into_link_name_space(
                    file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(|e| NetError::Kernel(format!("enter network namespace {shown}: {e}")))
                .and_then(|()| {
                    rtnetlink::new_connection()
                        .map_err(|e| NetError::Kernel(format!("netlink socket in {shown}: {e}")))
                });
                let _ = tx.send(made.map(|(connection, handle, _)| (connection, handle)));
            })
            .map_err(|e| NetError::Kernel(format!("spawn a namespace thread: {e}")))?;
        let (connection, handle) = rx
            .await
            .map_err(|_| NetError::Kernel("the namespace thread died".to_owned()))??;
        Ok(Self {
            handle,
            connection: tokio::spawn(connection),
        })
    }
}

/// The index of the link called `name`, if there is one.
pub(crate) async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, NetError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link.map(|l| l.header.index)),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
        Err(e) => Err(nl_err(format!("look up link {name}"), e)),
    }
}

/// The index of the link called `name` and the index of the link it is tied to (a veth's
/// peer), if there is one.
async fn link_peer(handle: &Handle, name: &str) -> Result<Option<(u32, Option<u32>)>, NetError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(link)) => {
            let peer = link.attributes.iter().find_map(|a| match a {
                LinkAttribute::Link(peer) => Some(*peer),
                _ => None,
            });
            Ok(Some((link.header.index, peer)))
        }
        Ok(None) => Ok(None),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
        Err(e) => Err(nl_err(format!("look up link {name}"), e)),
    }
}

/// Deletes a link; one already gone is fine.
pub(crate) async fn delete_link(handle: &Handle, index: u32) -> Result<(), NetError> {
    match handle.link().del(index).execute().await {
        Err(e) if !is_errno(&e, libc::ENODEV) => Err(nl_err(format!("delete link {index}"), e)),
        _ => Ok(()),
    }
}

/// FNV-1a: stable across builds and runs, unlike std's hasher.
fn fnv1a(bytes: impl Iterator<Item = u8>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

pub(crate) fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.code.map(|c| c.get()) == Some(-errno))
}

pub(crate) fn nl_err(what: impl std::fmt::Display, e: rtnetlink::Error) -> NetError {
    NetError::Kernel(format!("{what}: {e}"))
}

/// Writes a value under `/proc/sys`.
fn sysctl(key: &str, value: &str) -> Result<(), NetError> {
    let path = Path::new("/proc/sys").join(key);
    if fs::read_to_string(&path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    fs::write(&path, value).map_err(|e| io_err("write", &path, e))
}

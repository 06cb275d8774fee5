//! NetworkPolicies, Pods and Namespaces → what the `k1s-netpol` table holds, and the `nft`
//! script that turns one state into another.
//!
//! Layout: two verdict maps keyed by the address of a pod of this node that some policy
//! isolates (`ingress-pods`, `egress-pods`), jumping to that pod's chain. A pod's chain
//! holds one `accept` rule per (policy rule, port) that selects it, then `drop`. The peers
//! of each policy rule are a named interval set of addresses (`ip saddr @…`): a pod that
//! comes, goes or changes its labels changes only set elements. Egress rules with named
//! ports use a set of `address . protocol . port` instead, since the name resolves on each
//! peer pod.
//!
//! The table is of the `inet` family, so one rule set covers both: IPv6 addresses (a
//! dual-stack pod's second address, IPv6 `ipBlock`s and their `except`s) get maps and sets
//! of their own (`ingress-pods6`, `peers6-…`, `named6-…`) matched with `ip6 saddr`/`ip6
//! daddr` in the same pod chains; an IPv6 peer set and its rule exist only while it has
//! elements. Neighbour discovery is never filtered (without it no IPv6 traffic flows).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Map of isolated-for-ingress local pod addresses to their chains.
pub(crate) const INGRESS_PODS: &str = "ingress-pods";
/// Map of isolated-for-egress local pod addresses to their chains.
pub(crate) const EGRESS_PODS: &str = "egress-pods";
/// The same for IPv6 addresses.
pub(crate) const INGRESS_PODS6: &str = "ingress-pods6";
/// The same for IPv6 addresses.
pub(crate) const EGRESS_PODS6: &str = "egress-pods6";

/// What a named set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetKind {
    /// Addresses and address ranges.
    Addrs,
    /// `address . protocol . port`.
    AddrPorts,
    /// IPv6 addresses and ranges.
    Addrs6,
    /// IPv6 `address . protocol . port`.
    AddrPorts6,
}

impl SetKind {
    fn definition(self) -> &'static str {
        match self {
            SetKind::Addrs => "type ipv4_addr; flags interval;",
            SetKind::AddrPorts => "type ipv4_addr . inet_proto . inet_service;",
            SetKind::Addrs6 => "type ipv6_addr; flags interval;",
            SetKind::AddrPorts6 => "type ipv6_addr . inet_proto . inet_service;",
        }
    }
}

/// A named set and its elements (as `nft` writes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Set {
    pub kind: SetKind,
    pub elements: BTreeSet<String>,
}

/// Everything the table holds beside its base chains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ruleset {
    /// Set name → set.
    pub sets: BTreeMap<String, Set>,
    /// Chain name → its rules, in order.
    pub chains: BTreeMap<String, Vec<String>>,
    /// Pod address (each of a dual-stack pod's) → its ingress chain.
    pub ingress: BTreeMap<IpAddr, String>,
    /// Pod address → its egress chain.
    pub egress: BTreeMap<IpAddr, String>,
}

/// The cluster as the policies see it.
pub(crate) struct Cluster<'a> {
    pub policies: Vec<&'a NetworkPolicy>,
    pub pods: Vec<&'a Pod>,
    pub namespaces: Vec<&'a Namespace>,
    /// This node: only its pods get chains.
    pub node_name: &'a str,
}

/// A pod that has an address on the pod network.
struct NetPod<'a> {
    pod: &'a Pod,
    ns: &'a str,
    /// Its addresses (`podIPs`; one per family on a dual-stack pod), the first one first.
    ips: Vec<IpAddr>,
    labels: BTreeMap<String, String>,
}

impl NetPod<'_> {
    /// The name of its chain for one direction: after its first address, made of
    /// characters `nft` takes unquoted.
    fn chain(&self, is_in: bool) -> String {
        let dir = if is_in { "ingress" } else { "egress" };
        let first = self
            .ips
            .first()
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        format!("{dir}-{}", first.replace(':', "_"))
    }
}

fn net_pods<'a>(pods: &[&'a Pod]) -> Vec<NetPod<'a>> {
    let mut out = Vec::new();
    for pod in pods {
        let Some(spec) = pod.spec.as_ref() else {
            continue;
        };
        if spec.host_network == Some(true) {
            continue;
        }
        let status = pod.status.as_ref();
        if matches!(
            status.and_then(|s| s.phase.as_deref()),
            Some("Succeeded") | Some("Failed")
        ) {
            continue;
        }
        let ips = status
            .and_then(|s| s.pod_ips.as_ref())
            .into_iter()
            .flatten()
            .map(|p| p.ip.as_str())
            .chain(status.and_then(|s| s.pod_ip.as_deref()));
        let mut addrs: Vec<IpAddr> = Vec::new();
        for ip in ips.filter_map(|s| s.parse::<IpAddr>().ok()) {
            if !addrs.contains(&ip) {
                addrs.push(ip);
            }
        }
        if addrs.is_empty() {
            continue;
        }
        out.push(NetPod {
            pod,
            ns: pod.metadata.namespace.as_deref().unwrap_or(""),
            ips: addrs,
            labels: pod.metadata.labels.clone().unwrap_or_default(),
        });
    }
    out
}

/// Whether `sel` selects `labels` (`matchLabels` and `matchExpressions`, all of them); an
/// empty selector selects everything. An unknown operator selects nothing.
pub(crate) fn selects(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if let Some(ml) = &sel.match_labels
        && ml.iter().any(|(k, v)| labels.get(k) != Some(v))
    {
        return false;
    }
    sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    })
}

/// The policy types of a policy, defaulted as upstream: `Ingress` always, `Egress` when it
/// has egress rules. Returns (ingress, egress).
pub(crate) fn policy_types(policy: &NetworkPolicy) -> (bool, bool) {
    let Some(spec) = policy.spec.as_ref() else {
        return (true, false);
    };
    match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => (
            types.iter().any(|t| t == "Ingress"),
            types.iter().any(|t| t == "Egress"),
        ),
        _ => (true, spec.egress.as_ref().is_some_and(|e| !e.is_empty())),
    }
}

/// A name unique to `readable`, made of characters `nft` takes unquoted.
fn object_name(kind: &str, readable: &str) -> String {
    let mut h = DefaultHasher::new();
    readable.hash(&mut h);
    let hash = format!("{:08X}", h.finish() as u32);
    let clean: String = readable
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(160)
        .collect();
    format!("{kind}-{hash}-{clean}")
}

/// The nftables protocol keyword of a Kubernetes `protocol` (TCP when absent).
fn l4(protocol: Option<&str>) -> Option<&'static str> {
    match protocol.unwrap_or("TCP") {
        "TCP" => Some("tcp"),
        "UDP" => Some("udp"),
        "SCTP" => Some("sctp"),
        _ => None,
    }
}

/// The number of the container port of `pod` named `name` with `protocol`.
fn named_port(pod: &Pod, name: &str, protocol: &str) -> Option<u16> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name) && l4(p.protocol.as_deref()) == Some(protocol))
        .and_then(|p| u16::try_from(p.container_port).ok())
}

/// A port entry as the kernel matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PortMatch {
    /// Any port of the protocol.
    Proto(&'static str),
    /// A port or range.
    Range(&'static str, u16, u16),
    /// A named port, resolved on the pod at the far end.
    Named(&'static str, String),
}

fn port_match(p: &NetworkPolicyPort) -> Option<PortMatch> {
    let proto = l4(p.protocol.as_deref())?;
    Some(match &p.port {
        None => PortMatch::Proto(proto),
        Some(IntOrString::Int(n)) => {
            let lo = u16::try_from(*n).ok()?;
            let hi = p
                .end_port
                .and_then(|e| u16::try_from(e).ok())
                .filter(|e| *e >= lo)
                .unwrap_or(lo);
            PortMatch::Range(proto, lo, hi)
        }
        Some(IntOrString::String(s)) => match s.parse::<u16>() {
            Ok(n) => PortMatch::Range(proto, n, n),
            Err(_) => PortMatch::Named(proto, s.clone()),
        },
    })
}

/// An address family's inclusive address ranges, as numbers (IPv4 ones below 2^32).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Ranges {
    v4: Vec<(u128, u128)>,
    v6: Vec<(u128, u128)>,
}

impl Ranges {
    fn push(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => self.v4.push((u32::from(a).into(), u32::from(a).into())),
            IpAddr::V6(a) => self.v6.push((u128::from(a), u128::from(a))),
        }
    }
}

/// The first and last address of `net`, as numbers.
fn net_bounds(net: &IpNet) -> (u128, u128) {
    match net.trunc() {
        IpNet::V4(n) => (
            u32::from(n.network()).into(),
            u32::from(n.broadcast()).into(),
        ),
        IpNet::V6(n) => (u128::from(n.network()), u128::from(n.broadcast())),
    }
}

/// `cidr` less each of `except` (of the same family, as validation requires), as
/// inclusive ranges of the block's family.
fn block_ranges(block: &IPBlock, out: &mut Ranges) {
    let Ok(net) = block.cidr.parse::<IpNet>() else {
        return;
    };
    let is_v4 = matches!(net, IpNet::V4(_));
    let mut ranges = vec![net_bounds(&net)];
    for ex in block.except.iter().flatten() {
        let Ok(ex) = ex.parse::<IpNet>() else {
            continue;
        };
        if matches!(ex, IpNet::V4(_)) != is_v4 {
            continue;
        }
        let (elo, ehi) = net_bounds(&ex);
        let mut next = Vec::new();
        for (lo, hi) in ranges {
            if ehi < lo || elo > hi {
                next.push((lo, hi));
                continue;
            }
            if elo > lo {
                next.push((lo, elo - 1));
            }
            if ehi < hi {
                next.push((ehi + 1, hi));
            }
        }
        ranges = next;
    }
    if is_v4 {
        out.v4.extend(ranges);
    } else {
        out.v6.extend(ranges);
    }
}

/// Sorted, merged ranges as set elements (`a` or `a-b`; IPv4 addresses unless `v6`): an
/// interval set refuses overlaps.
fn range_elements(mut ranges: Vec<(u128, u128)>, v6: bool) -> BTreeSet<String> {
    let addr = |n: u128| -> String {
        if v6 {
            Ipv6Addr::from(n).to_string()
        } else {
            Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX)).to_string()
        }
    };
    ranges.sort_unstable();
    let mut merged: Vec<(u128, u128)> = Vec::new();
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
        .into_iter()
        .map(|(lo, hi)| {
            if lo == hi {
                addr(lo)
            } else {
                format!("{}-{}", addr(lo), addr(hi))
            }
        })
        .collect()
}

impl Cluster<'_> {
    /// Whether namespace `ns` has labels selected by `sel`.
    fn ns_selected(
        &self,
        ns_labels: &BTreeMap<&str, BTreeMap<String, String>>,
        sel: &LabelSelector,
        ns: &str,
    ) -> bool {
        match ns_labels.get(ns) {
            Some(l) => selects(sel, l),
            // Not seen yet: only its name label is certain.
            None => selects(
                sel,
                &BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), ns.to_owned())]),
            ),
        }
    }

    /// The pods a rule's `from`/`to` peers name (ipBlocks aside), for a policy in `ns`.
    fn peer_pods<'p>(
        &self,
        ns_labels: &BTreeMap<&str, BTreeMap<String, String>>,
        pods: &'p [NetPod<'p>],
        peers: &[NetworkPolicyPeer],
        ns: &str,
    ) -> Vec<&'p NetPod<'p>> {
        pods.iter()
            .filter(|p| {
                peers.iter().any(|peer| {
                    if peer.ip_block.is_some() {
                        return false;
                    }
                    let ns_ok = match &peer.namespace_selector {
                        Some(sel) => self.ns_selected(ns_labels, sel, p.ns),
                        None => p.ns == ns,
                    };
                    ns_ok
                        && peer
                            .pod_selector
                            .as_ref()
                            .is_none_or(|sel| selects(sel, &p.labels))
                })
            })
            .collect()
    }

    /// The whole table content for this node.
    pub(crate) fn ruleset(&self) -> Ruleset {
        let mut out = Ruleset::default();
        // The common case, and the pods of a large cluster change often.
        if self.policies.is_empty() {
            return out;
        }
        let pods = net_pods(&self.pods);
        let mut ns_labels: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
        for n in &self.namespaces {
            let name = n.metadata.name.as_deref().unwrap_or("");
            let mut labels = n.metadata.labels.clone().unwrap_or_default();
            labels
                .entry("kubernetes.io/metadata.name".to_owned())
                .or_insert_with(|| name.to_owned());
            ns_labels.insert(name, labels);
        }
        let local: Vec<&NetPod> = pods
            .iter()
            .filter(|p| {
                p.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(self.node_name)
            })
            .collect();
        let mut policies = self.policies.clone();
        policies.sort_by_key(|p| (p.metadata.namespace.clone(), p.metadata.name.clone()));

        for policy in policies {
            let Some(spec) = policy.spec.as_ref() else {
                continue;
            };
            let ns = policy.metadata.namespace.as_deref().unwrap_or("");
            let name = policy.metadata.name.as_deref().unwrap_or("");
            let (ingress, egress) = policy_types(policy);
            let selected: Vec<&&NetPod> = local
                .iter()
                .filter(|p| {
                    p.ns == ns
                        && spec
                            .pod_selector
                            .as_ref()
                            .is_none_or(|s| selects(s, &p.labels))
                })
                .collect();
            if selected.is_empty() {
                continue;
            }
            for (dir, on, rules) in [
                (
                    "in",
                    ingress,
                    spec.ingress
                        .iter()
                        .flatten()
                        .map(|r| (r.from.as_deref(), r.ports.as_deref()))
                        .collect::<Vec<_>>(),
                ),
                (
                    "eg",
                    egress,
                    spec.egress
                        .iter()
                        .flatten()
                        .map(|r| (r.to.as_deref(), r.ports.as_deref()))
                        .collect::<Vec<_>>(),
                ),
            ] {
                if !on {
                    continue;
                }
                let is_in = dir == "in";
                let (addr, addr6, map) = if is_in {
                    ("ip saddr", "ip6 saddr", &mut out.ingress)
                } else {
                    ("ip daddr", "ip6 daddr", &mut out.egress)
                };
                // (chain, rule)
                let mut pod_rules: Vec<(String, String)> = Vec::new();
                for (i, (peers, ports)) in rules.iter().enumerate() {
                    let peers = peers.unwrap_or_default();
                    let ports: Vec<PortMatch> = ports
                        .unwrap_or_default()
                        .iter()
                        .filter_map(port_match)
                        .collect();
                    // No ports listed: every port; listed but none usable: nothing.
                    if ports.is_empty() && !rules[i].1.unwrap_or_default().is_empty() {
                        continue;
                    }
                    let readable = format!("{ns}/{name}/{dir}/{i}");
                    // What a rule starts with: one per family with peers of it (IPv4
                    // always, as before IPv6 was handled), or nothing for every peer.
                    let peer_matches: Vec<String> = if peers.is_empty() {
                        vec![String::new()]
                    } else {
                        let mut ranges = Ranges::default();
                        for p in self.peer_pods(&ns_labels, &pods, peers, ns) {
                            for ip in &p.ips {
                                ranges.push(*ip);
                            }
                        }
                        for b in peers.iter().filter_map(|p| p.ip_block.as_ref()) {
                            block_ranges(b, &mut ranges);
                        }
                        let set = object_name("peers", &readable);
                        out.sets.insert(
                            set.clone(),
                            Set {
                                kind: SetKind::Addrs,
                                elements: range_elements(ranges.v4, false),
                            },
                        );
                        let mut matches = vec![format!("{addr} @{set} ")];
                        if !ranges.v6.is_empty() {
                            let set6 = object_name("peers6", &readable);
                            out.sets.insert(
                                set6.clone(),
                                Set {
                                    kind: SetKind::Addrs6,
                                    elements: range_elements(ranges.v6, true),
                                },
                            );
                            matches.push(format!("{addr6} @{set6} "));
                        }
                        matches
                    };
                    // Egress to named ports: the name resolves on each peer pod.
                    let named: Vec<(&str, &str)> = ports
                        .iter()
                        .filter_map(|p| match p {
                            PortMatch::Named(proto, n) if !is_in => Some((*proto, n.as_str())),
                            _ => None,
                        })
                        .collect();
                    // The named-port matches: IPv4 always, IPv6 while it has elements.
                    let mut named_matches: Vec<String> = Vec::new();
                    if !named.is_empty() {
                        let candidates: Vec<&NetPod> = if peers.is_empty() {
                            pods.iter().collect()
                        } else {
                            self.peer_pods(&ns_labels, &pods, peers, ns)
                        };
                        let (mut elements, mut elements6) = (BTreeSet::new(), BTreeSet::new());
                        for p in candidates {
                            for (proto, n) in &named {
                                if let Some(port) = named_port(p.pod, n, proto) {
                                    for ip in &p.ips {
                                        let e = format!("{ip} . {proto} . {port}");
                                        if ip.is_ipv4() {
                                            elements.insert(e);
                                        } else {
                                            elements6.insert(e);
                                        }
                                    }
                                }
                            }
                        }
                        // Peers are already in the set: only pods with the port are.
                        let set = object_name("named", &readable);
                        named_matches
                            .push(format!("ip daddr . meta l4proto . th dport @{set} accept"));
                        out.sets.insert(
                            set,
                            Set {
                                kind: SetKind::AddrPorts,
                                elements,
                            },
                        );
                        if !elements6.is_empty() {
                            let set6 = object_name("named6", &readable);
                            named_matches.push(format!(
                                "ip6 daddr . meta l4proto . th dport @{set6} accept"
                            ));
                            out.sets.insert(
                                set6,
                                Set {
                                    kind: SetKind::AddrPorts6,
                                    elements: elements6,
                                },
                            );
                        }
                    }
                    for pod in &selected {
                        let chain = pod.chain(is_in);
                        for peer_match in &peer_matches {
                            let mut add = |r: String| pod_rules.push((chain.clone(), r));
                            if ports.is_empty() {
                                add(format!("{peer_match}accept"));
                            }
                            for p in &ports {
                                match p {
                                    PortMatch::Proto(proto) => {
                                        add(format!("{peer_match}meta l4proto {proto} accept"))
                                    }
                                    PortMatch::Range(proto, lo, hi) if lo == hi => {
                                        add(format!("{peer_match}{proto} dport {lo} accept"))
                                    }
                                    PortMatch::Range(proto, lo, hi) => {
                                        add(format!("{peer_match}{proto} dport {lo}-{hi} accept"))
                                    }
                                    // Ingress: the name resolves on the selected pod itself.
                                    PortMatch::Named(proto, n) if is_in => {
                                        if let Some(port) = named_port(pod.pod, n, proto) {
                                            add(format!("{peer_match}{proto} dport {port} accept"));
                                        }
                                    }
                                    PortMatch::Named(..) => {}
                                }
                            }
                        }
                        for m in &named_matches {
                            pod_rules.push((chain.clone(), m.clone()));
                        }
                    }
                }
                // Every selected pod is isolated in this direction, rules or not, on each
                // of its addresses.
                for pod in &selected {
                    let chain = pod.chain(is_in);
                    for ip in &pod.ips {
                        map.insert(*ip, chain.clone());
                    }
                    out.chains.entry(chain).or_default();
                }
                for (chain, rule) in pod_rules {
                    out.chains.entry(chain).or_default().push(rule);
                }
            }
        }
        for rules in out.chains.values_mut() {
            rules.push("drop".to_owned());
        }
        out
    }
}

/// The table with its maps and base chains, replacing whatever was there (the `ip`
/// table of the same name that k1s made before IPv6 was handled included).
pub(crate) fn base_script(table: &str) -> String {
    format!(
        r#"add table ip {table}
delete table ip {table}
add table inet {table}
delete table inet {table}
table inet {table} {{
  comment "k1s network policies"
  map {INGRESS_PODS} {{ type ipv4_addr : verdict ; }}
  map {EGRESS_PODS} {{ type ipv4_addr : verdict ; }}
  map {INGRESS_PODS6} {{ type ipv6_addr : verdict ; }}
  map {EGRESS_PODS6} {{ type ipv6_addr : verdict ; }}
  chain egress {{
    type filter hook forward priority 10; policy accept;
    ct state established,related accept
    {NEIGHBOUR_DISCOVERY}
    ip saddr vmap @{EGRESS_PODS}
    ip6 saddr vmap @{EGRESS_PODS6}
  }}
  chain egress-to-host {{
    type filter hook input priority 10; policy accept;
    ct state established,related accept
    {NEIGHBOUR_DISCOVERY}
    ip saddr vmap @{EGRESS_PODS}
    ip6 saddr vmap @{EGRESS_PODS6}
  }}
  chain ingress {{
    type filter hook forward priority 11; policy accept;
    ct state established,related accept
    {NEIGHBOUR_DISCOVERY}
    ip daddr vmap @{INGRESS_PODS}
    ip6 daddr vmap @{INGRESS_PODS6}
  }}
}}
"#
    )
}

/// IPv6 neighbour and router discovery: a pod that cannot resolve its peers' link-layer
/// addresses has no IPv6 at all, so these pass whatever the policies (as ARP does for IPv4,
/// which never reaches the `inet` hooks).
const NEIGHBOUR_DISCOVERY: &str = "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept";

/// Appends to `out` the commands that turn `old` into `new` in table `table`.
pub(crate) fn diff_script(table: &str, old: &Ruleset, new: &Ruleset, out: &mut String) {
    for (name, set) in &new.sets {
        match old.sets.get(name) {
            Some(o) if o == set => continue,
            // A name's kind never changes (`peers-` or `named-`): refill it.
            Some(_) => {
                let _ = writeln!(out, "flush set inet {table} {name}");
            }
            None => {
                let _ = writeln!(
                    out,
                    "add set inet {table} {name} {{ {} }}",
                    set.kind.definition()
                );
            }
        }
        if !set.elements.is_empty() {
            let elems: Vec<&str> = set.elements.iter().map(String::as_str).collect();
            let _ = writeln!(
                out,
                "add element inet {table} {name} {{ {} }}",
                elems.join(", ")
            );
        }
    }
    for (name, rules) in &new.chains {
        match old.chains.get(name) {
            Some(o) if o == rules => continue,
            Some(_) => {
                let _ = writeln!(out, "flush chain inet {table} {name}");
            }
            None => {
                let _ = writeln!(out, "add chain inet {table} {name}");
            }
        }
        for rule in rules {
            let _ = writeln!(out, "add rule inet {table} {name} {rule}");
        }
    }
    for (maps, o, n) in [
        ((INGRESS_PODS, INGRESS_PODS6), &old.ingress, &new.ingress),
        ((EGRESS_PODS, EGRESS_PODS6), &old.egress, &new.egress),
    ] {
        let map_of = |ip: &IpAddr| if ip.is_ipv4() { maps.0 } else { maps.1 };
        for (ip, chain) in o {
            if n.get(ip) != Some(chain) {
                let map = map_of(ip);
                let _ = writeln!(out, "delete element inet {table} {map} {{ {ip} }}");
            }
        }
        for (ip, chain) in n {
            if o.get(ip) != Some(chain) {
                let map = map_of(ip);
                let _ = writeln!(
                    out,
                    "add element inet {table} {map} {{ {ip} : jump {chain} }}"
                );
            }
        }
    }
    let stale: Vec<&String> = old
        .chains
        .keys()
        .filter(|c| !new.chains.contains_key(*c))
        .collect();
    for name in &stale {
        let _ = writeln!(out, "flush chain inet {table} {name}");
    }
    for name in &stale {
        let _ = writeln!(out, "delete chain inet {table} {name}");
    }
    for name in old.sets.keys() {
        if !new.sets.contains_key(name) {
            let _ = writeln!(out, "delete set inet {table} {name}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str, node: &str, ip: &str, labels: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i",
                "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
        }))
        .expect("pod")
    }

    fn ns(name: &str, labels: serde_json::Value) -> Namespace {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": labels}}))
            .expect("namespace")
    }

    fn policy(ns: &str, name: &str, spec: serde_json::Value) -> NetworkPolicy {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": ns, "name": name}, "spec": spec
        }))
        .expect("policy")
    }

    struct World {
        pods: Vec<Pod>,
        namespaces: Vec<Namespace>,
    }

    fn world() -> World {
        World {
            pods: vec![
                pod(
                    "a",
                    "web",
                    "n1",
                    "10.42.0.5",
                    serde_json::json!({"app": "web"}),
                ),
                pod(
                    "a",
                    "client",
                    "n1",
                    "10.42.0.6",
                    serde_json::json!({"role": "client"}),
                ),
                pod("a", "other", "n1", "10.42.0.7", serde_json::json!({})),
                pod(
                    "b",
                    "remote",
                    "n2",
                    "10.42.1.9",
                    serde_json::json!({"role": "client"}),
                ),
            ],
            namespaces: vec![
                ns("a", serde_json::json!({})),
                ns("b", serde_json::json!({"team": "b"})),
            ],
        }
    }

    fn ruleset(w: &World, policies: &[NetworkPolicy]) -> Ruleset {
        Cluster {
            policies: policies.iter().collect(),
            pods: w.pods.iter().collect(),
            namespaces: w.namespaces.iter().collect(),
            node_name: "n1",
        }
        .ruleset()
    }

    fn peers(r: &Ruleset) -> Vec<BTreeSet<String>> {
        r.sets
            .iter()
            .filter(|(k, _)| k.starts_with("peers-"))
            .map(|(_, s)| s.elements.clone())
            .collect()
    }

    #[test]
    fn deny_all_ingress_isolates_the_selected_local_pods_only() {
        let w = world();
        let r = ruleset(
            &w,
            &[policy(
                "a",
                "deny",
                serde_json::json!({"podSelector": {"matchLabels": {"app": "web"}}}),
            )],
        );
        assert_eq!(r.ingress.len(), 1);
        let chain = &r.ingress[&"10.42.0.5".parse::<IpAddr>().expect("ip")];
        assert_eq!(r.chains[chain], vec!["drop".to_owned()]);
        assert!(r.egress.is_empty(), "egress is not a default policy type");
    }

    #[test]
    fn pod_and_namespace_selectors_pick_the_right_peers() {
        let w = world();
        let r = ruleset(
            &w,
            &[policy(
                "a",
                "allow",
                serde_json::json!({
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "ingress": [
                        {"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]},
                        {"from": [{"namespaceSelector": {"matchLabels": {"team": "b"}}}]},
                        {"from": [{"namespaceSelector": {}, "podSelector": {"matchExpressions": [{"key": "role", "operator": "In", "values": ["client"]}]}}]}
                    ]
                }),
            )],
        );
        let mut got = peers(&r);
        got.sort();
        let mut want: Vec<BTreeSet<String>> = vec![
            ["10.42.0.6".to_owned()].into(),
            ["10.42.1.9".to_owned()].into(),
            ["10.42.0.6".to_owned(), "10.42.1.9".to_owned()].into(),
        ];
        want.sort();
        assert_eq!(got, want);
        let chain = &r.chains["ingress-10.42.0.5"];
        assert_eq!(chain.len(), 4);
        assert!(chain[0].starts_with("ip saddr @peers-") && chain[0].ends_with(" accept"));
        assert_eq!(chain[3], "drop");
    }

    #[test]
    fn ip_blocks_leave_out_their_exceptions_and_ports_follow_protocol_end_port_and_names() {
        let w = world();
        let r = ruleset(
            &w,
            &[policy(
                "a",
                "ports",
                serde_json::json!({
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [{
                        "from": [{"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.1.0/24"]}}],
                        "ports": [
                            {"port": 80},
                            {"protocol": "UDP", "port": 5000, "endPort": 5010},
                            {"protocol": "SCTP"},
                            {"port": "http"},
                            {"port": "missing"}
                        ]
                    }]
                }),
            )],
        );
        assert_eq!(
            peers(&r),
            vec![BTreeSet::from([
                "192.168.0.0-192.168.0.255".to_owned(),
                "192.168.2.0-192.168.255.255".to_owned()
            ])]
        );
        // Every pod of the namespace on this node is selected.
        assert_eq!(r.ingress.len(), 3);
        let rules: Vec<String> = r.chains["ingress-10.42.0.7"]
            .iter()
            .map(|r| {
                r.split_once("@").map_or(r.clone(), |(_, rest)| {
                    rest.split_once(' ')
                        .map_or(rest.to_owned(), |x| x.1.to_owned())
                })
            })
            .collect();
        assert_eq!(
            rules,
            vec![
                "tcp dport 80 accept",
                "udp dport 5000-5010 accept",
                "meta l4proto sctp accept",
                "tcp dport 8080 accept",
                "drop"
            ]
        );
    }

    #[test]
    fn egress_defaults_on_with_egress_rules_and_named_ports_resolve_on_the_peer() {
        let w = world();
        let r = ruleset(
            &w,
            &[policy(
                "a",
                "out",
                serde_json::json!({
                    "podSelector": {"matchLabels": {"role": "client"}},
                    "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": "http"}]}]
                }),
            )],
        );
        assert_eq!(r.ingress.len(), 1, "Ingress is always a type");
        assert_eq!(r.egress.len(), 1);
        let named: Vec<&Set> = r
            .sets
            .iter()
            .filter(|(k, _)| k.starts_with("named-"))
            .map(|(_, s)| s)
            .collect();
        assert_eq!(named.len(), 1);
        assert_eq!(
            named[0].elements,
            BTreeSet::from(["10.42.0.5 . tcp . 8080".to_owned()])
        );
        let chain = &r.chains["egress-10.42.0.6"];
        assert!(chain[0].starts_with("ip daddr . meta l4proto . th dport @named-"));
        assert_eq!(
            policy_types(&policy(
                "a",
                "x",
                serde_json::json!({"podSelector": {}, "egress": []})
            )),
            (true, false)
        );
    }

    #[test]
    fn a_label_change_touches_only_set_elements() {
        let mut w = world();
        let pols = [policy(
            "a",
            "allow",
            serde_json::json!({"podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}),
        )];
        let old = ruleset(&w, &pols);
        w.pods[2] = pod(
            "a",
            "other",
            "n1",
            "10.42.0.7",
            serde_json::json!({"role": "client"}),
        );
        let new = ruleset(&w, &pols);
        let mut script = String::new();
        diff_script("t", &old, &new, &mut script);
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(lines.len(), 2, "{script}");
        assert!(lines[0].starts_with("flush set inet t peers-"));
        assert!(lines[1].ends_with("{ 10.42.0.6-10.42.0.7 }"), "{script}");
        // And removing every policy removes everything.
        let mut script = String::new();
        diff_script("t", &new, &Ruleset::default(), &mut script);
        assert!(script.contains("delete element inet t ingress-pods { 10.42.0.5 }"));
        assert!(script.contains("delete chain inet t ingress-10.42.0.5"));
        assert!(script.contains("delete set inet t peers-"));
    }

    #[test]
    fn overlapping_peers_become_one_interval() {
        assert_eq!(
            range_elements(vec![(10, 10), (5, 20), (21, 21), (30, 30)], false),
            BTreeSet::from(["0.0.0.5-0.0.0.21".to_owned(), "0.0.0.30".to_owned()])
        );
        let all = IPBlock {
            cidr: "0.0.0.0/0".into(),
            except: Some(vec!["10.0.0.0/8".into(), "bad".into(), "fd00::/8".into()]),
        };
        let mut ranges = Ranges::default();
        block_ranges(&all, &mut ranges);
        assert!(ranges.v6.is_empty());
        assert_eq!(
            range_elements(ranges.v4, false),
            BTreeSet::from([
                "0.0.0.0-9.255.255.255".to_owned(),
                "11.0.0.0-255.255.255.255".to_owned()
            ])
        );
    }

    fn dual(ns: &str, name: &str, node: &str, v4: &str, v6: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": ns, "name": name, "labels": {"app": "dual"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i",
                "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": v4, "podIPs": [{"ip": v4}, {"ip": v6}]}
        }))
        .expect("pod")
    }

    #[test]
    fn ipv6_blocks_leave_out_their_exceptions_in_a_set_of_their_own() {
        let w = world();
        let r = ruleset(
            &w,
            &[policy(
                "a",
                "v6",
                serde_json::json!({
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "ingress": [{"from": [
                        {"ipBlock": {"cidr": "2001:db8::/32", "except": ["2001:db8:1::/48", "10.0.0.0/8"]}},
                        {"ipBlock": {"cidr": "192.168.0.0/16"}}
                    ], "ports": [{"port": 443}]}]
                }),
            )],
        );
        let v6: Vec<&Set> = r
            .sets
            .iter()
            .filter(|(k, _)| k.starts_with("peers6-"))
            .map(|(_, s)| s)
            .collect();
        assert_eq!(v6.len(), 1);
        assert_eq!(v6[0].kind, SetKind::Addrs6);
        assert_eq!(
            v6[0].elements,
            BTreeSet::from([
                "2001:db8::-2001:db8:0:ffff:ffff:ffff:ffff:ffff".to_owned(),
                "2001:db8:2::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff".to_owned()
            ])
        );
        assert_eq!(
            peers(&r),
            vec![BTreeSet::from(["192.168.0.0-192.168.255.255".to_owned()])]
        );
        let chain = &r.chains["ingress-10.42.0.5"];
        assert_eq!(chain.len(), 3, "{chain:?}");
        assert!(
            chain[0].starts_with("ip saddr @peers-") && chain[0].ends_with(" tcp dport 443 accept")
        );
        assert!(
            chain[1].starts_with("ip6 saddr @peers6-")
                && chain[1].ends_with(" tcp dport 443 accept")
        );
        // The script declares it as an IPv6 interval set of the inet table.
        let mut script = String::new();
        diff_script("t", &Ruleset::default(), &r, &mut script);
        assert!(
            script.contains("{ type ipv6_addr; flags interval; }"),
            "{script}"
        );
        assert!(script.contains("2001:db8::-2001:db8:0:ffff:ffff:ffff:ffff:ffff"));
        // Without IPv6 peers there is no IPv6 set nor rule (IPv4 clusters see no change).
        let r4 = ruleset(
            &w,
            &[policy(
                "a",
                "v4",
                serde_json::json!({"podSelector": {"matchLabels": {"app": "web"}},
                    "ingress": [{"from": [{"podSelector": {}}]}]}),
            )],
        );
        assert!(r4.sets.keys().all(|k| !k.starts_with("peers6-")));
        assert_eq!(r4.chains["ingress-10.42.0.5"].len(), 2);
    }

    #[test]
    fn dual_stack_pods_are_isolated_and_selected_on_both_addresses() {
        let mut w = world();
        w.pods
            .push(dual("a", "dual", "n1", "10.42.0.8", "fd00:42::8"));
        w.pods
            .push(dual("b", "far", "n2", "10.42.1.8", "fd00:42:1::8"));
        let v6_only: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "a", "name": "six", "labels": {"app": "dual"}},
            "spec": {"nodeName": "n1", "containers": []},
            "status": {"phase": "Running", "podIP": "fd00:42::9", "podIPs": [{"ip": "fd00:42::9"}]}
        }))
        .expect("pod");
        w.pods.push(v6_only);
        let r = ruleset(
            &w,
            &[policy(
                "a",
                "dual",
                serde_json::json!({
                    "podSelector": {"matchLabels": {"app": "dual"}},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "dual"}}}]}],
                    "egress": [{"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "dual"}}}], "ports": [{"port": "http"}]}]
                }),
            )],
        );
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        // Both addresses of the local dual-stack pod lead to its one chain; the IPv6-only
        // pod's chain is named after its address.
        assert_eq!(r.ingress[&ip("10.42.0.8")], "ingress-10.42.0.8");
        assert_eq!(r.ingress[&ip("fd00:42::8")], "ingress-10.42.0.8");
        assert_eq!(r.ingress[&ip("fd00:42::9")], "ingress-fd00_42__9");
        assert_eq!(r.egress[&ip("fd00:42::8")], "egress-10.42.0.8");
        assert!(
            !r.ingress.contains_key(&ip("fd00:42:1::8")),
            "not on this node"
        );
        // Peers: every address of every selected pod, by family.
        assert_eq!(
            peers(&r)[0],
            BTreeSet::from(["10.42.0.8".to_owned(), "10.42.1.8".to_owned()])
        );
        let v6: Vec<&BTreeSet<String>> = r
            .sets
            .iter()
            .filter(|(k, _)| k.starts_with("peers6-"))
            .map(|(_, s)| &s.elements)
            .collect();
        // One set per rule (the ingress one and the egress one); adjacent addresses
        // become a range.
        let want = BTreeSet::from([
            "fd00:42::8-fd00:42::9".to_owned(),
            "fd00:42:1::8".to_owned(),
        ]);
        assert_eq!(v6, [&want, &want]);
        // Named egress ports resolve on IPv6 peers into an IPv6 set.
        let named6: Vec<&Set> = r
            .sets
            .iter()
            .filter(|(k, _)| k.starts_with("named6-"))
            .map(|(_, s)| s)
            .collect();
        assert_eq!(named6.len(), 1);
        assert_eq!(named6[0].kind, SetKind::AddrPorts6);
        assert!(named6[0].elements.contains("fd00:42:1::8 . tcp . 8080"));
        let eg = &r.chains["egress-10.42.0.8"];
        assert!(
            eg.iter()
                .any(|r| r.starts_with("ip6 daddr . meta l4proto . th dport @named6-"))
        );
        let mut script = String::new();
        diff_script("t", &Ruleset::default(), &r, &mut script);
        assert!(
            script.contains(
                "add element inet t ingress-pods6 { fd00:42::8 : jump ingress-10.42.0.8 }"
            ),
            "{script}"
        );
        assert!(
            script
                .contains("add element inet t ingress-pods { 10.42.0.8 : jump ingress-10.42.0.8 }")
        );
        assert!(base_script("t").contains("ip6 daddr vmap @ingress-pods6"));
    }

    /// The scripts are what nft takes: applied to a real table of their own (needs root
    /// and nft, as the node does).
    #[tokio::test]
    async fn the_scripts_apply_to_the_kernel() {
        let table = format!("k1s-netpol-test-{}", std::process::id());
        let mut w = world();
        w.pods
            .push(dual("a", "dual", "n1", "10.42.0.8", "fd00:42::8"));
        let pols = [policy(
            "a",
            "all",
            serde_json::json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.42.0.0/24"]}},
                                          {"ipBlock": {"cidr": "fd00::/8", "except": ["fd00:42::/64"]}}, {"podSelector": {}}],
                                 "ports": [{"port": 80, "endPort": 90}, {"protocol": "SCTP"}]}],
                    "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": "http"}, {"protocol": "UDP", "port": 53}]}]}),
        )];
        let full = ruleset(&w, &pols);
        let mut script = base_script(&table);
        diff_script(&table, &Ruleset::default(), &full, &mut script);
        let applied = crate::proxy::nft(&script).await;
        let mut undo = String::new();
        diff_script(&table, &full, &Ruleset::default(), &mut undo);
        let undone = match &applied {
            Ok(()) => crate::proxy::nft(&undo).await,
            Err(_) => Ok(()),
        };
        let _ = super::super::cleanup(&table).await;
        applied.unwrap_or_else(|e| panic!("{e}\n{script}"));
        undone.unwrap_or_else(|e| panic!("{e}\n{undo}"));
    }
}

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

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
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

/// What a named set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetKind {
    /// Addresses and address ranges.
    Addrs,
    /// `address . protocol . port`.
    AddrPorts,
}

impl SetKind {
    fn definition(self) -> &'static str {
        match self {
            SetKind::Addrs => "type ipv4_addr; flags interval;",
            SetKind::AddrPorts => "type ipv4_addr . inet_proto . inet_service;",
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
    /// Pod address → its ingress chain.
    pub ingress: BTreeMap<Ipv4Addr, String>,
    /// Pod address → its egress chain.
    pub egress: BTreeMap<Ipv4Addr, String>,
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
    ip: Ipv4Addr,
    labels: BTreeMap<String, String>,
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
        let Some(ip) = ips.filter_map(|s| s.parse::<Ipv4Addr>().ok()).next() else {
            continue;
        };
        out.push(NetPod {
            pod,
            ns: pod.metadata.namespace.as_deref().unwrap_or(""),
            ip,
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

fn v4(ip: u32) -> Ipv4Addr {
    Ipv4Addr::from(ip)
}

/// `cidr` less each of `except`, as inclusive ranges.
fn block_ranges(block: &IPBlock) -> Vec<(u32, u32)> {
    let Ok(net) = block.cidr.parse::<Ipv4Net>() else {
        return Vec::new();
    };
    let net = net.trunc();
    let mut ranges = vec![(u32::from(net.network()), u32::from(net.broadcast()))];
    for ex in block.except.iter().flatten() {
        let Ok(ex) = ex.parse::<Ipv4Net>() else {
            continue;
        };
        let (elo, ehi) = (u32::from(ex.network()), u32::from(ex.broadcast()));
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
    ranges
}

/// Sorted, merged ranges as set elements (`a` or `a-b`): an interval set refuses overlaps.
fn range_elements(mut ranges: Vec<(u32, u32)>) -> BTreeSet<String> {
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
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
                v4(lo).to_string()
            } else {
                format!("{}-{}", v4(lo), v4(hi))
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
                let (addr, map) = if is_in {
                    ("ip saddr", &mut out.ingress)
                } else {
                    ("ip daddr", &mut out.egress)
                };
                let mut pod_rules: Vec<(Ipv4Addr, String)> = Vec::new();
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
                    let peer_match = if peers.is_empty() {
                        String::new()
                    } else {
                        let set = object_name("peers", &readable);
                        let mut ranges: Vec<(u32, u32)> = self
                            .peer_pods(&ns_labels, &pods, peers, ns)
                            .iter()
                            .map(|p| (u32::from(p.ip), u32::from(p.ip)))
                            .collect();
                        for b in peers.iter().filter_map(|p| p.ip_block.as_ref()) {
                            ranges.extend(block_ranges(b));
                        }
                        out.sets.insert(
                            set.clone(),
                            Set {
                                kind: SetKind::Addrs,
                                elements: range_elements(ranges),
                            },
                        );
                        format!("{addr} @{set} ")
                    };
                    // Egress to named ports: the name resolves on each peer pod.
                    let named: Vec<(&str, &str)> = ports
                        .iter()
                        .filter_map(|p| match p {
                            PortMatch::Named(proto, n) if !is_in => Some((*proto, n.as_str())),
                            _ => None,
                        })
                        .collect();
                    let named_set = (!named.is_empty()).then(|| {
                        let set = object_name("named", &readable);
                        let candidates: Vec<&NetPod> = if peers.is_empty() {
                            pods.iter().collect()
                        } else {
                            self.peer_pods(&ns_labels, &pods, peers, ns)
                        };
                        let mut elements = BTreeSet::new();
                        for p in candidates {
                            for (proto, n) in &named {
                                if let Some(port) = named_port(p.pod, n, proto) {
                                    elements.insert(format!("{} . {proto} . {port}", p.ip));
                                }
                            }
                        }
                        out.sets.insert(
                            set.clone(),
                            Set {
                                kind: SetKind::AddrPorts,
                                elements,
                            },
                        );
                        set
                    });
                    for pod in &selected {
                        let mut add = |r: String| pod_rules.push((pod.ip, r));
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
                        if let Some(set) = &named_set {
                            // Peers are already in the set: only pods with the port are.
                            add(format!("ip daddr . meta l4proto . th dport @{set} accept"));
                        }
                    }
                }
                // Every selected pod is isolated in this direction, rules or not.
                for pod in &selected {
                    let chain = format!("{}-{}", if is_in { "ingress" } else { "egress" }, pod.ip);
                    map.insert(pod.ip, chain.clone());
                    out.chains.entry(chain).or_default();
                }
                for (ip, rule) in pod_rules {
                    let chain = format!("{}-{ip}", if is_in { "ingress" } else { "egress" });
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

/// The table with its maps and base chains, replacing whatever was there.
pub(crate) fn base_script(table: &str) -> String {
    format!(
        r#"add table ip {table}
delete table ip {table}
table ip {table} {{
  comment "k1s network policies"
  map {INGRESS_PODS} {{ type ipv4_addr : verdict ; }}
  map {EGRESS_PODS} {{ type ipv4_addr : verdict ; }}
  chain egress {{
    type filter hook forward priority 10; policy accept;
    ct state established,related accept
    ip saddr vmap @{EGRESS_PODS}
  }}
  chain egress-to-host {{
    type filter hook input priority 10; policy accept;
    ct state established,related accept
    ip saddr vmap @{EGRESS_PODS}
  }}
  chain ingress {{
    type filter hook forward priority 11; policy accept;
    ct state established,related accept
    ip daddr vmap @{INGRESS_PODS}
  }}
}}
"#
    )
}

/// Appends to `out` the commands that turn `old` into `new` in table `table`.
pub(crate) fn diff_script(table: &str, old: &Ruleset, new: &Ruleset, out: &mut String) {
    for (name, set) in &new.sets {
        match old.sets.get(name) {
            Some(o) if o == set => continue,
            // A name's kind never changes (`peers-` or `named-`): refill it.
            Some(_) => {
                let _ = writeln!(out, "flush set ip {table} {name}");
            }
            None => {
                let _ = writeln!(
                    out,
                    "add set ip {table} {name} {{ {} }}",
                    set.kind.definition()
                );
            }
        }
        if !set.elements.is_empty() {
            let elems: Vec<&str> = set.elements.iter().map(String::as_str).collect();
            let _ = writeln!(
                out,
                "add element ip {table} {name} {{ {} }}",
                elems.join(", ")
            );
        }
    }
    for (name, rules) in &new.chains {
        match old.chains.get(name) {
            Some(o) if o == rules => continue,
            Some(_) => {
                let _ = writeln!(out, "flush chain ip {table} {name}");
            }
            None => {
                let _ = writeln!(out, "add chain ip {table} {name}");
            }
        }
        for rule in rules {
            let _ = writeln!(out, "add rule ip {table} {name} {rule}");
        }
    }
    for (map, o, n) in [
        (INGRESS_PODS, &old.ingress, &new.ingress),
        (EGRESS_PODS, &old.egress, &new.egress),
    ] {
        for (ip, chain) in o {
            if n.get(ip) != Some(chain) {
                let _ = writeln!(out, "delete element ip {table} {map} {{ {ip} }}");
            }
        }
        for (ip, chain) in n {
            if o.get(ip) != Some(chain) {
                let _ = writeln!(
                    out,
                    "add element ip {table} {map} {{ {ip} : jump {chain} }}"
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
        let _ = writeln!(out, "flush chain ip {table} {name}");
    }
    for name in &stale {
        let _ = writeln!(out, "delete chain ip {table} {name}");
    }
    for name in old.sets.keys() {
        if !new.sets.contains_key(name) {
            let _ = writeln!(out, "delete set ip {table} {name}");
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
        let chain = &r.ingress[&"10.42.0.5".parse::<Ipv4Addr>().expect("ip")];
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
        assert!(lines[0].starts_with("flush set ip t peers-"));
        assert!(lines[1].ends_with("{ 10.42.0.6-10.42.0.7 }"), "{script}");
        // And removing every policy removes everything.
        let mut script = String::new();
        diff_script("t", &new, &Ruleset::default(), &mut script);
        assert!(script.contains("delete element ip t ingress-pods { 10.42.0.5 }"));
        assert!(script.contains("delete chain ip t ingress-10.42.0.5"));
        assert!(script.contains("delete set ip t peers-"));
    }

    #[test]
    fn overlapping_peers_become_one_interval() {
        assert_eq!(
            range_elements(vec![(10, 10), (5, 20), (21, 21), (30, 30)]),
            BTreeSet::from(["0.0.0.5-0.0.0.21".to_owned(), "0.0.0.30".to_owned()])
        );
        let all = IPBlock {
            cidr: "0.0.0.0/0".into(),
            except: Some(vec!["10.0.0.0/8".into(), "bad".into()]),
        };
        assert_eq!(
            range_elements(block_ranges(&all)),
            BTreeSet::from([
                "0.0.0.0-9.255.255.255".to_owned(),
                "11.0.0.0-255.255.255.255".to_owned()
            ])
        );
    }

    /// The scripts are what nft takes: applied to a real table of their own (needs root
    /// and nft, as the node does).
    #[tokio::test]
    async fn the_scripts_apply_to_the_kernel() {
        let table = format!("k1s-netpol-test-{}", std::process::id());
        let w = world();
        let pols = [policy(
            "a",
            "all",
            serde_json::json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.42.0.0/24"]}}, {"podSelector": {}}],
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

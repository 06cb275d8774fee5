//! What one Service asks of the kernel, as nftables chains and map elements (upstream
//! kube-proxy's nftables layout), and the `nft` script that turns one state into another.
//!
//! The table holds verdict maps keyed by `address . protocol . port` (`service-ips`) and
//! `protocol . port` (`service-nodeports`, for every local address) that jump to a chain of
//! the Service port; that chain picks an endpoint with `numgen random` rules that DNAT to
//! it. A Service port without usable endpoints gets an element in the `no-endpoint-*` maps
//! instead, checked in the filter hooks, which rejects at once.
//!
//! Unlike upstream, endpoints get no chain of their own (only with `sessionAffinity:
//! ClientIP`, whose sets need one): `nft` reads every chain of the ruleset before each
//! transaction, so with 10 000 Services one chain per Service port instead of three made
//! every small change cost a third (about 130 ms before). The hairpin masquerade the
//! endpoint chains did (a pod reaching itself through its Service) is one rule over the
//! `hairpin` set of `endpoint . endpoint` pairs, kept by [`Hairpins`].

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The mark that asks `masquerading` (postrouting) to masquerade a connection.
const MASQ_MARK: &str = "0x4000";
/// Map of Service addresses (ClusterIP, externalIPs) to their chains.
pub(crate) const SERVICE_IPS: &str = "service-ips";
/// Map of node ports to their chains.
pub(crate) const SERVICE_NODEPORTS: &str = "service-nodeports";
/// The label of Services another proxy implements; this one leaves them alone.
pub const SERVICE_PROXY_NAME_LABEL: &str = "service.kubernetes.io/service-proxy-name";
/// Map of Service addresses without endpoints to the reject chain.
pub(crate) const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
/// Map of node ports without endpoints to the reject chain.
pub(crate) const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
/// Set of `endpoint . endpoint` address pairs: a connection DNATed back to its own source.
pub(crate) const HAIRPIN: &str = "hairpin";
const MAPS: [&str; 4] = [
    SERVICE_IPS,
    SERVICE_NODEPORTS,
    NO_ENDPOINT_SERVICES,
    NO_ENDPOINT_NODEPORTS,
];

/// Everything the table holds for one Service: chains by name with their rules, and the
/// elements it owns in each map (`key` → verdict).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ServiceRules {
    /// Chain name → its rules, in order.
    pub chains: BTreeMap<String, Vec<String>>,
    /// Set name → its definition (`sessionAffinity: ClientIP`: clients by endpoint).
    pub sets: BTreeMap<String, String>,
    /// Map name → element key → verdict.
    pub elements: BTreeMap<&'static str, BTreeMap<String, String>>,
    /// UDP flows to clear from conntrack when an endpoint goes: (original destination
    /// address or `None` for a node port, original destination port) → endpoint addresses.
    pub udp: BTreeMap<(Option<Ipv4Addr>, u16), BTreeSet<Ipv4Addr>>,
    /// The endpoint addresses it DNATs to (their hairpin pairs are shared, see [`Hairpins`]).
    pub endpoints: BTreeSet<Ipv4Addr>,
}

/// The `hairpin` set's elements: an endpoint address is in it while at least one Service
/// DNATs to it, so a change of one Service adds or deletes only the addresses whose count
/// starts or ends.
#[derive(Debug, Default)]
pub(crate) struct Hairpins {
    refs: std::collections::HashMap<Ipv4Addr, usize>,
}

impl Hairpins {
    /// Forgets every address (the table is being rebuilt from empty).
    pub fn clear(&mut self) {
        self.refs.clear();
    }

    /// Counts a Service going from `old` to `new` endpoint addresses; writes the element
    /// changes to `out`.
    pub fn update(
        &mut self,
        table: &str,
        old: &BTreeSet<Ipv4Addr>,
        new: &BTreeSet<Ipv4Addr>,
        out: &mut String,
    ) {
        for ip in new.difference(old) {
            let n = self.refs.entry(*ip).or_default();
            *n += 1;
            if *n == 1 {
                let _ = writeln!(out, "add element ip {table} {HAIRPIN} {{ {ip} . {ip} }}");
            }
        }
        for ip in old.difference(new) {
            if let Some(n) = self.refs.get_mut(ip) {
                *n -= 1;
                if *n == 0 {
                    self.refs.remove(ip);
                    let _ = writeln!(out, "delete element ip {table} {HAIRPIN} {{ {ip} . {ip} }}");
                }
            }
        }
    }
}

/// An endpoint of one Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Target {
    ip: Ipv4Addr,
    port: u16,
    /// On this node (the endpoint's `nodeName` is the proxy's node).
    local: bool,
}

/// The nftables protocol keyword of a Kubernetes `protocol`.
fn l4(protocol: Option<&str>) -> Option<&'static str> {
    match protocol.unwrap_or("TCP").to_ascii_uppercase().as_str() {
        "TCP" => Some("tcp"),
        "UDP" => Some("udp"),
        "SCTP" => Some("sctp"),
        _ => None,
    }
}

/// A chain name as upstream makes them: a hash keeping it unique, then something a person
/// can read (`[A-Za-z0-9/_.-]`, no quoting needed), bounded well under the kernel's 256.
fn chain_name(kind: &str, readable: &str) -> String {
    let mut h = DefaultHasher::new();
    readable.hash(&mut h);
    let hash = format!("{:08X}", h.finish() as u32);
    let clean: String = readable
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(180)
        .collect();
    format!("{kind}-{hash}-{clean}")
}

/// The endpoints of the port named `port_name` (`protocol`) of a Service, from its slices:
/// the ready ones, or where none is ready the serving-and-terminating ones (as upstream,
/// so connections drain during a rollout). Target ports come from each slice, so a named
/// `targetPort` resolves per pod.
fn targets(
    slices: &[&EndpointSlice],
    port_name: &str,
    protocol: &str,
    node_name: Option<&str>,
) -> Vec<Target> {
    let mut ready = BTreeSet::new();
    let mut terminating = BTreeSet::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let port = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == port_name
                && l4(p.protocol.as_deref()) == Some(protocol)
        });
        let Some(port) = port
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for ep in &slice.endpoints {
            let Some(ip) = ep
                .addresses
                .first()
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            let cond = ep.conditions.as_ref();
            let is_ready = cond.and_then(|c| c.ready).unwrap_or(true);
            let serving = cond.and_then(|c| c.serving).unwrap_or(is_ready);
            let is_terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
            let local = node_name.is_some() && ep.node_name.as_deref() == node_name;
            let t = Target { ip, port, local };
            if is_ready {
                ready.insert(t);
            } else if serving && is_terminating {
                terminating.insert(t);
            }
        }
    }
    let chosen = if ready.is_empty() { terminating } else { ready };
    chosen.into_iter().collect()
}

/// The rules for `svc` with its `slices`; empty for Services the proxy leaves alone
/// (headless, ExternalName, IPv6-only).
pub(crate) fn service_rules(
    svc: &Service,
    slices: &[&EndpointSlice],
    cluster_cidr: Option<Ipv4Net>,
    node_name: Option<&str>,
) -> ServiceRules {
    let mut out = ServiceRules::default();
    let Some(spec) = svc.spec.as_ref() else {
        return out;
    };
    // As kube-proxy: a Service naming another proxy is that proxy's (k1s's cluster DNS
    // serves its own address on the node).
    if svc
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(SERVICE_PROXY_NAME_LABEL))
    {
        return out;
    }
    let ns = svc.metadata.namespace.as_deref().unwrap_or("");
    let name = svc.metadata.name.as_deref().unwrap_or("");
    if spec.type_.as_deref() == Some("ExternalName") {
        return out;
    }
    let Some(cluster_ip) = spec
        .cluster_ip
        .as_deref()
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
    else {
        return out;
    };
    let with_node_ports = matches!(
        spec.type_.as_deref(),
        Some("NodePort") | Some("LoadBalancer")
    );
    // externalIPs, and the LoadBalancer's ingress addresses (servicelb's node addresses)
    // unless it asks for `ipMode: Proxy` (a load balancer that forwards to the nodes
    // itself): both are outside addresses taking the Service port, as upstream treats them.
    let mut external_ips: Vec<Ipv4Addr> = spec
        .external_ips
        .iter()
        .flatten()
        .filter_map(|ip| ip.parse().ok())
        .collect();
    if spec.type_.as_deref() == Some("LoadBalancer") {
        let ingress = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref());
        for i in ingress.into_iter().flatten() {
            if i.ip_mode.as_deref() == Some("Proxy") {
                continue;
            }
            if let Some(ip) = i.ip.as_deref().and_then(|ip| ip.parse().ok())
                && !external_ips.contains(&ip)
            {
                external_ips.push(ip);
            }
        }
    }
    // sessionAffinity ClientIP: the seconds a client sticks to its endpoint.
    let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .filter(|t| *t > 0)
            .unwrap_or(10800)
    });
    for port in spec.ports.iter().flatten() {
        let Some(proto) = l4(port.protocol.as_deref()) else {
            continue;
        };
        let Ok(svc_port) = u16::try_from(port.port) else {
            continue;
        };
        let port_name = port.name.as_deref().unwrap_or("");
        let node_port = port
            .node_port
            .filter(|_| with_node_ports)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0);
        let readable = format!("{ns}/{name}/{proto}/{port_name}");
        let svc_chain = chain_name("service", &readable);
        let ext_chain = chain_name("external", &readable);
        let endpoints = targets(slices, port_name, proto, node_name);
        let local: Vec<Target> = endpoints.iter().copied().filter(|t| t.local).collect();
        let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
        let external_local = spec.external_traffic_policy.as_deref() == Some("Local");

        let mut add = |map: &'static str, key: String, verdict: String| {
            out.elements.entry(map).or_default().insert(key, verdict);
        };
        if endpoints.is_empty() {
            let reject = "goto reject-chain".to_owned();
            add(
                NO_ENDPOINT_SERVICES,
                format!("{cluster_ip} . {proto} . {svc_port}"),
                reject.clone(),
            );
            for ip in &external_ips {
                add(
                    NO_ENDPOINT_SERVICES,
                    format!("{ip} . {proto} . {svc_port}"),
                    reject.clone(),
                );
            }
            if let Some(np) = node_port {
                add(NO_ENDPOINT_NODEPORTS, format!("{proto} . {np}"), reject);
            }
            continue;
        }

        // Hairpin: a pod reaching itself through the Service must see the answer come
        // from the Service, so it goes through the node's NAT (the `hairpin` set).
        out.endpoints.extend(endpoints.iter().map(|t| t.ip));
        // What sends a connection to endpoint `t`: with ClientIP affinity a chain of its
        // own, which records the client in the endpoint's set; else the DNAT itself.
        let ep_chain_of =
            |t: &Target| chain_name("endpoint", &format!("{readable}__{}/{}", t.ip, t.port));
        let dnat = |t: &Target| format!("meta l4proto {proto} dnat to {}:{}", t.ip, t.port);
        let to_endpoint = |t: &Target| match affinity {
            Some(_) => format!("goto {}", ep_chain_of(t)),
            None => dnat(t),
        };
        if let Some(timeout) = affinity {
            for t in &endpoints {
                let ep_readable = format!("{readable}__{}/{}", t.ip, t.port);
                // The timeout is part of the name: a new timeout makes new sets.
                let set = chain_name("affinity", &format!("{timeout}/{ep_readable}"));
                out.sets.insert(
                    set.clone(),
                    format!("type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ;"),
                );
                out.chains.insert(
                    ep_chain_of(t),
                    vec![format!("update @{set} {{ ip saddr }}"), dnat(t)],
                );
            }
        }
        // Picks one of `eps` at random, as iptables' cascade of `statistic` rules: the
        // i-th of n is taken with probability 1/(n-i), the last always — uniform, and
        // without an anonymous verdict map per Service (the kernel names each of those by
        // scanning every set of the table: quadratic, a minute for 10 000 Services).
        let balance = |eps: &[Target]| -> Vec<String> {
            let n = eps.len();
            eps.iter()
                .enumerate()
                .map(|(i, t)| {
                    if i + 1 == n {
                        to_endpoint(t)
                    } else {
                        format!("numgen random mod {} == 0 {}", n - i, to_endpoint(t))
                    }
                })
                .collect()
        };

        // The Service port's chain (ClusterIP traffic): masquerade what comes from outside
        // the cluster network (its answers must come back through this node), a client
        // seen lately goes back to its endpoint (ClientIP affinity), else one at random.
        // internalTrafficPolicy Local keeps to this node's endpoints, and drops without.
        let internal = if internal_local { &local } else { &endpoints };
        if internal.is_empty() {
            add(
                NO_ENDPOINT_SERVICES,
                format!("{cluster_ip} . {proto} . {svc_port}"),
                "drop".to_owned(),
            );
        } else {
            let mut svc_rules = Vec::new();
            if let Some(cidr) = cluster_cidr {
                svc_rules.push(format!(
                    "ip daddr {cluster_ip} {proto} dport {svc_port} ip saddr != {cidr} jump mark-for-masquerade"
                ));
            }
            if let Some(timeout) = affinity {
                for t in internal {
                    let set = chain_name(
                        "affinity",
                        &format!("{timeout}/{readable}__{}/{}", t.ip, t.port),
                    );
                    svc_rules.push(format!("ip saddr @{set} goto {}", ep_chain_of(t)));
                }
            }
            svc_rules.extend(balance(internal));
            out.chains.insert(svc_chain.clone(), svc_rules);
            add(
                SERVICE_IPS,
                format!("{cluster_ip} . {proto} . {svc_port}"),
                format!("goto {svc_chain}"),
            );
        }
        if proto == "udp" {
            let ips: BTreeSet<Ipv4Addr> = endpoints.iter().map(|t| t.ip).collect();
            out.udp.insert((Some(cluster_ip), svc_port), ips.clone());
            for ip in &external_ips {
                out.udp.insert((Some(*ip), svc_port), ips.clone());
            }
            if let Some(np) = node_port {
                out.udp.insert((None, np), ips);
            }
        }

        // Traffic from outside (node ports, externalIPs). With externalTrafficPolicy
        // Cluster it is masqueraded (the endpoint may be on another node) and balanced as
        // ClusterIP traffic; with Local it keeps its source and goes to this node's
        // endpoints only (dropped without), except from pods and from the node itself,
        // which reach every endpoint as upstream lets them.
        if node_port.is_some() || !external_ips.is_empty() {
            // Where traffic balanced over every endpoint goes.
            let to_cluster = if internal_local {
                let cluster_chain = chain_name("cluster", &readable);
                out.chains
                    .insert(cluster_chain.clone(), balance(&endpoints));
                format!("goto {cluster_chain}")
            } else {
                format!("goto {svc_chain}")
            };
            let mut ext_rules = Vec::new();
            if external_local {
                if let Some(cidr) = cluster_cidr {
                    ext_rules.push(format!("ip saddr {cidr} {to_cluster}"));
                }
                ext_rules.push("fib saddr type local jump mark-for-masquerade".to_owned());
                ext_rules.push(format!("fib saddr type local {to_cluster}"));
                if local.is_empty() {
                    ext_rules.push("drop".to_owned());
                } else {
                    ext_rules.extend(balance(&local));
                }
            } else {
                ext_rules.push("jump mark-for-masquerade".to_owned());
                ext_rules.push(to_cluster);
            }
            out.chains.insert(ext_chain.clone(), ext_rules);
            for ip in &external_ips {
                add(
                    SERVICE_IPS,
                    format!("{ip} . {proto} . {svc_port}"),
                    format!("goto {ext_chain}"),
                );
            }
            if let Some(np) = node_port {
                add(
                    SERVICE_NODEPORTS,
                    format!("{proto} . {np}"),
                    format!("goto {ext_chain}"),
                );
            }
        }
    }
    out
}

/// The table's fixed part, after deleting whatever was there: one transaction that
/// starts from an empty table.
pub(crate) fn base_script(table: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "add table ip {table}");
    let _ = writeln!(s, "delete table ip {table}");
    let _ = writeln!(
        s,
        r#"table ip {table} {{
  comment "k1s service proxy (kube-proxy)"
  map {SERVICE_IPS} {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}
  map {SERVICE_NODEPORTS} {{ type inet_proto . inet_service : verdict ; }}
  map {NO_ENDPOINT_SERVICES} {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}
  map {NO_ENDPOINT_NODEPORTS} {{ type inet_proto . inet_service : verdict ; }}
  set {HAIRPIN} {{ type ipv4_addr . ipv4_addr ; }}
  chain mark-for-masquerade {{
    meta mark set meta mark or {MASQ_MARK}
  }}
  chain masquerading {{
    meta mark & {MASQ_MARK} == 0 return
    meta mark set meta mark xor {MASQ_MARK}
    masquerade fully-random
  }}
  chain services {{
    ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}
    fib daddr type local meta l4proto . th dport vmap @{SERVICE_NODEPORTS}
  }}
  chain reject-chain {{
    reject
  }}
  chain endpoints-check {{
    ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}
    fib daddr type local meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}
  }}
  chain nat-prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    jump services
  }}
  chain nat-output {{
    type nat hook output priority -100; policy accept;
    jump services
  }}
  chain nat-postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ct status dnat ip saddr . ip daddr @{HAIRPIN} jump mark-for-masquerade
    jump masquerading
  }}
  chain filter-input {{
    type filter hook input priority -1; policy accept;
    ct state new jump endpoints-check
  }}
  chain filter-forward {{
    type filter hook forward priority -1; policy accept;
    ct state new jump endpoints-check
  }}
  chain filter-output {{
    type filter hook output priority -1; policy accept;
    ct state new jump endpoints-check
  }}
}}"#
    );
    s
}

/// The `nft` commands taking the table from `old` to `new` for one Service: only the
/// chains whose rules differ are rewritten and only the map elements that differ change.
/// Chains are added before anything refers to them and deleted after nothing does.
pub(crate) fn diff_script(table: &str, old: &ServiceRules, new: &ServiceRules, out: &mut String) {
    for (name, def) in &new.sets {
        if !old.sets.contains_key(name) {
            let _ = writeln!(out, "add set ip {table} {name} {{ {def} }}");
        }
    }
    for name in new.chains.keys() {
        if !old.chains.contains_key(name) {
            let _ = writeln!(out, "add chain ip {table} {name}");
        }
    }
    // Endpoint chains first: a service chain's vmap names them.
    let mut changed: Vec<(&String, &Vec<String>)> = new
        .chains
        .iter()
        .filter(|(name, rules)| old.chains.get(*name) != Some(rules))
        .collect();
    changed.sort_by_key(|(name, _)| !name.starts_with("endpoint-"));
    for (name, rules) in changed {
        if old.chains.contains_key(name) {
            let _ = writeln!(out, "flush chain ip {table} {name}");
        }
        for rule in rules {
            let _ = writeln!(out, "add rule ip {table} {name} {rule}");
        }
    }
    let empty = BTreeMap::new();
    for map in MAPS {
        let (o, n) = (
            old.elements.get(map).unwrap_or(&empty),
            new.elements.get(map).unwrap_or(&empty),
        );
        for (key, verdict) in o {
            if n.get(key) != Some(verdict) {
                let _ = writeln!(out, "delete element ip {table} {map} {{ {key} }}");
            }
        }
        for (key, verdict) in n {
            if o.get(key) != Some(verdict) {
                let _ = writeln!(out, "add element ip {table} {map} {{ {key} : {verdict} }}");
            }
        }
    }
    let stale: Vec<&String> = old
        .chains
        .keys()
        .filter(|name| !new.chains.contains_key(*name))
        .collect();
    for name in &stale {
        let _ = writeln!(out, "flush chain ip {table} {name}");
    }
    for name in &stale {
        let _ = writeln!(out, "delete chain ip {table} {name}");
    }
    // Sets last: no rule refers to them any more.
    for name in old.sets.keys() {
        if !new.sets.contains_key(name) {
            let _ = writeln!(out, "delete set ip {table} {name}");
        }
    }
}

/// The UDP conntrack entries made stale going from `old` to `new`: (original destination,
/// port, endpoint) for each endpoint that went away.
pub(crate) fn stale_udp(
    old: &ServiceRules,
    new: &ServiceRules,
) -> Vec<(Option<Ipv4Addr>, u16, Ipv4Addr)> {
    let mut out = Vec::new();
    for ((dst, port), eps) in &old.udp {
        let now = new.udp.get(&(*dst, *port));
        for ep in eps {
            if now.is_none_or(|n| !n.contains(ep)) {
                out.push((*dst, *port, *ep));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).expect("service")
    }

    fn slice(v: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(v).expect("slice")
    }

    fn web() -> Service {
        svc(json!({
            "metadata": {"namespace": "ns", "name": "web"},
            "spec": {"type": "NodePort", "clusterIP": "10.43.0.20",
                     "externalIPs": ["192.0.2.50"],
                     "ports": [{"name": "http", "port": 80, "targetPort": "web",
                                "protocol": "TCP", "nodePort": 30080}]}
        }))
    }

    fn web_slice(ready_b: bool) -> EndpointSlice {
        slice(json!({
            "metadata": {"namespace": "ns", "name": "web-1",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.42.0.5"], "conditions": {"ready": true}},
                {"addresses": ["10.42.0.6"], "conditions": {"ready": ready_b}},
            ]
        }))
    }

    fn cidr() -> Option<Ipv4Net> {
        "10.42.0.0/16".parse().ok()
    }

    #[test]
    fn a_service_gets_a_chain_per_port_an_endpoint_chain_per_ready_endpoint_and_map_elements() {
        let s = web_slice(true);
        let r = service_rules(&web(), &[&s], cidr(), None);
        let svc_chain = chain_name("service", "ns/web/tcp/http");
        let ext_chain = chain_name("external", "ns/web/tcp/http");
        let rules = &r.chains[&svc_chain];
        assert_eq!(
            rules[0],
            "ip daddr 10.43.0.20 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade"
        );
        assert_eq!(
            rules[1],
            "numgen random mod 2 == 0 meta l4proto tcp dnat to 10.42.0.5:8080"
        );
        assert_eq!(rules[2], "meta l4proto tcp dnat to 10.42.0.6:8080");
        // No chain per endpoint: a Service port has one chain (two with outside traffic).
        assert_eq!(
            r.chains.keys().collect::<Vec<_>>(),
            [&ext_chain, &svc_chain]
        );
        assert_eq!(
            r.endpoints,
            BTreeSet::from([
                "10.42.0.5".parse().expect("ip"),
                "10.42.0.6".parse().expect("ip")
            ])
        );
        assert_eq!(
            r.elements[SERVICE_IPS]["10.43.0.20 . tcp . 80"],
            format!("goto {svc_chain}")
        );
        assert_eq!(
            r.elements[SERVICE_IPS]["192.0.2.50 . tcp . 80"],
            format!("goto {ext_chain}")
        );
        assert_eq!(
            r.elements[SERVICE_NODEPORTS]["tcp . 30080"],
            format!("goto {ext_chain}")
        );
        assert!(!r.elements.contains_key(NO_ENDPOINT_SERVICES));
    }

    #[test]
    fn unready_endpoints_are_left_out_and_terminating_ones_serve_only_when_none_is_ready() {
        let s = web_slice(false);
        let r = service_rules(&web(), &[&s], cidr(), None);
        assert_eq!(
            r.endpoints,
            BTreeSet::from(["10.42.0.5".parse().expect("ip")])
        );
        let term = slice(json!({
            "metadata": {"namespace": "ns", "name": "web-1"},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.42.0.7"], "conditions": {"ready": false, "serving": true, "terminating": true}},
                {"addresses": ["10.42.0.8"], "conditions": {"ready": false, "serving": false, "terminating": true}},
            ]
        }));
        let r = service_rules(&web(), &[&term], cidr(), None);
        assert_eq!(
            r.endpoints,
            BTreeSet::from(["10.42.0.7".parse().expect("ip")])
        );
        let svc_rules = &r.chains[&chain_name("service", "ns/web/tcp/http")];
        assert_eq!(
            svc_rules.last().expect("rule"),
            "meta l4proto tcp dnat to 10.42.0.7:8080"
        );
    }

    #[test]
    fn a_service_without_endpoints_is_rejected_and_headless_ones_are_left_alone() {
        let r = service_rules(&web(), &[], cidr(), None);
        assert!(r.chains.is_empty());
        assert_eq!(
            r.elements[NO_ENDPOINT_SERVICES]["10.43.0.20 . tcp . 80"],
            "goto reject-chain"
        );
        assert_eq!(
            r.elements[NO_ENDPOINT_NODEPORTS]["tcp . 30080"],
            "goto reject-chain"
        );
        let other = svc(json!({"metadata": {"namespace": "ns", "name": "o",
                "labels": {SERVICE_PROXY_NAME_LABEL: "elsewhere"}},
            "spec": {"clusterIP": "10.43.0.10", "ports": [{"port": 53, "protocol": "UDP"}]}}));
        assert_eq!(
            service_rules(&other, &[], cidr(), None),
            ServiceRules::default()
        );
        let headless = svc(json!({"metadata": {"namespace": "ns", "name": "h"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}));
        assert_eq!(
            service_rules(&headless, &[], cidr(), None),
            ServiceRules::default()
        );
    }

    #[test]
    fn a_change_of_one_endpoint_rewrites_only_what_differs() {
        let (a, b) = (web_slice(true), web_slice(false));
        let old = service_rules(&web(), &[&a], cidr(), None);
        let new = service_rules(&web(), &[&b], cidr(), None);
        let mut script = String::new();
        diff_script("t", &old, &new, &mut script);
        let svc_chain = chain_name("service", "ns/web/tcp/http");
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(
            lines[0],
            format!("flush chain ip t {svc_chain}"),
            "{script}"
        );
        assert!(lines[1].starts_with(&format!("add rule ip t {svc_chain} ip daddr")));
        assert_eq!(
            lines[2],
            format!("add rule ip t {svc_chain} meta l4proto tcp dnat to 10.42.0.5:8080")
        );
        // The external chain only jumps to the service chain: unchanged, untouched; so
        // are the map elements.
        assert_eq!(lines.len(), 3, "{script}");
        // Nothing changed: nothing to do.
        let mut none = String::new();
        diff_script("t", &new, &new, &mut none);
        assert!(none.is_empty(), "{none}");
        // Deleted: every element and chain goes.
        let mut del = String::new();
        diff_script("t", &new, &ServiceRules::default(), &mut del);
        assert!(del.contains("delete element ip t service-ips { 10.43.0.20 . tcp . 80 }"));
        assert!(del.contains("delete element ip t service-nodeports { tcp . 30080 }"));
        assert!(del.contains(&format!("delete chain ip t {svc_chain}")));
    }

    #[test]
    fn client_ip_affinity_sends_a_known_client_back_to_its_endpoint() {
        let mut s = web();
        let spec = s.spec.as_mut().expect("spec");
        spec.session_affinity = Some("ClientIP".into());
        let sl = web_slice(true);
        let r = service_rules(&s, &[&sl], cidr(), None);
        let ep = chain_name("endpoint", "ns/web/tcp/http__10.42.0.5/8080");
        let set = chain_name("affinity", "10800/ns/web/tcp/http__10.42.0.5/8080");
        assert_eq!(
            r.sets[&set],
            "type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ;"
        );
        assert_eq!(
            r.chains[&ep],
            [
                format!("update @{set} {{ ip saddr }}"),
                "meta l4proto tcp dnat to 10.42.0.5:8080".to_owned()
            ]
        );
        let svc_rules = &r.chains[&chain_name("service", "ns/web/tcp/http")];
        assert!(svc_rules.contains(&format!("ip saddr @{set} goto {ep}")));
        assert!(svc_rules[svc_rules.len() - 2].starts_with("numgen random mod 2 == 0 goto"));
        let mut script = String::new();
        diff_script("t", &r, &ServiceRules::default(), &mut script);
        assert!(
            script.ends_with(&format!(
                "delete set ip t {}\n",
                r.sets.keys().last().expect("set")
            )),
            "{script}"
        );
    }

    #[test]
    fn local_traffic_policies_keep_to_this_nodes_endpoints() {
        let mut s = web();
        let spec = s.spec.as_mut().expect("spec");
        spec.internal_traffic_policy = Some("Local".into());
        spec.external_traffic_policy = Some("Local".into());
        let mut sl = web_slice(true);
        sl.endpoints[0].node_name = Some("n1".into());
        sl.endpoints[1].node_name = Some("n2".into());
        let r = service_rules(&s, &[&sl], cidr(), Some("n1"));
        let here = "meta l4proto tcp dnat to 10.42.0.5:8080";
        let svc_rules = &r.chains[&chain_name("service", "ns/web/tcp/http")];
        assert_eq!(svc_rules.last().expect("rule"), here);
        let ext = &r.chains[&chain_name("external", "ns/web/tcp/http")];
        let cluster = chain_name("cluster", "ns/web/tcp/http");
        assert_eq!(ext[0], format!("ip saddr 10.42.0.0/16 goto {cluster}"));
        assert_eq!(ext[1], "fib saddr type local jump mark-for-masquerade");
        assert_eq!(ext[3], here);
        assert_eq!(r.chains[&cluster].len(), 2);
        // Nothing on this node: ClusterIP traffic is dropped, external traffic too.
        let r = service_rules(&s, &[&sl], cidr(), Some("n3"));
        assert_eq!(
            r.elements[NO_ENDPOINT_SERVICES]["10.43.0.20 . tcp . 80"],
            "drop"
        );
        let ext = &r.chains[&chain_name("external", "ns/web/tcp/http")];
        assert_eq!(ext.last().expect("rule"), "drop");
    }

    #[test]
    fn load_balancer_ingress_addresses_take_the_service_port_as_external_traffic() {
        let lb = svc(json!({
            "metadata": {"namespace": "ns", "name": "web"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.20",
                     "externalTrafficPolicy": "Local",
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]},
            "status": {"loadBalancer": {"ingress": [
                {"ip": "192.0.2.7", "ipMode": "VIP"},
                {"ip": "192.0.2.8", "ipMode": "Proxy"},
                {"hostname": "lb.example"}
            ]}}
        }));
        let mut s = web_slice(true);
        s.endpoints[0].node_name = Some("n1".into());
        let r = service_rules(&lb, &[&s], cidr(), Some("n1"));
        let ext_chain = chain_name("external", "ns/web/tcp/http");
        assert_eq!(
            r.elements[SERVICE_IPS]["192.0.2.7 . tcp . 80"],
            format!("goto {ext_chain}")
        );
        assert!(!r.elements[SERVICE_IPS].contains_key("192.0.2.8 . tcp . 80"));
        // externalTrafficPolicy Local: outside traffic goes to this node's endpoint only.
        assert_eq!(
            r.chains[&ext_chain].last().expect("rule"),
            "meta l4proto tcp dnat to 10.42.0.5:8080"
        );
        // Without endpoints the address rejects at once, as the ClusterIP does.
        let r = service_rules(&lb, &[], cidr(), Some("n1"));
        assert_eq!(
            r.elements[NO_ENDPOINT_SERVICES]["192.0.2.7 . tcp . 80"],
            "goto reject-chain"
        );
        // A ClusterIP Service's stale status is not an address.
        let mut plain = lb.clone();
        plain.spec.as_mut().expect("spec").type_ = Some("ClusterIP".into());
        let r = service_rules(&plain, &[&s], cidr(), Some("n1"));
        assert!(!r.elements[SERVICE_IPS].contains_key("192.0.2.7 . tcp . 80"));
    }

    #[test]
    fn named_target_ports_resolve_per_slice_and_udp_endpoints_that_go_are_reported() {
        let s = svc(json!({"metadata": {"namespace": "ns", "name": "dns"},
            "spec": {"clusterIP": "10.43.0.10",
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"}]}}));
        let one = slice(
            json!({"metadata": {"namespace": "ns", "name": "a"}, "addressType": "IPv4",
            "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}],
            "endpoints": [{"addresses": ["10.42.0.5"]}]}),
        );
        let two = slice(
            json!({"metadata": {"namespace": "ns", "name": "b"}, "addressType": "IPv4",
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}],
            "endpoints": [{"addresses": ["10.42.0.6"]}]}),
        );
        let r = service_rules(&s, &[&one, &two], cidr(), None);
        let text: Vec<String> = r.chains.values().flatten().cloned().collect();
        for dnat in [
            "meta l4proto udp dnat to 10.42.0.5:5353",
            "meta l4proto udp dnat to 10.42.0.6:53",
        ] {
            assert!(text.iter().any(|r| r.ends_with(dnat)), "{text:?}");
        }
        let after = service_rules(&s, &[&two], cidr(), None);
        assert_eq!(
            stale_udp(&r, &after),
            vec![(
                Some("10.43.0.10".parse().expect("ip")),
                53,
                "10.42.0.5".parse().expect("ip")
            )]
        );
    }

    #[test]
    fn hairpin_pairs_are_counted_over_services_and_change_only_at_the_first_and_last() {
        let ip = |s: &str| -> Ipv4Addr { s.parse().expect("ip") };
        let set = |ips: &[&str]| -> BTreeSet<Ipv4Addr> { ips.iter().map(|s| ip(s)).collect() };
        let mut h = Hairpins::default();
        let mut out = String::new();
        // Two Services share 10.42.0.5.
        h.update("t", &set(&[]), &set(&["10.42.0.5", "10.42.0.6"]), &mut out);
        assert_eq!(
            out,
            "add element ip t hairpin { 10.42.0.5 . 10.42.0.5 }\n\
             add element ip t hairpin { 10.42.0.6 . 10.42.0.6 }\n"
        );
        out.clear();
        h.update("t", &set(&[]), &set(&["10.42.0.5"]), &mut out);
        assert_eq!(out, "", "already there");
        // The first Service drops it: the second still DNATs to it.
        h.update(
            "t",
            &set(&["10.42.0.5", "10.42.0.6"]),
            &set(&["10.42.0.6"]),
            &mut out,
        );
        assert_eq!(out, "");
        h.update("t", &set(&["10.42.0.5"]), &set(&["10.42.0.7"]), &mut out);
        assert_eq!(
            out,
            "add element ip t hairpin { 10.42.0.7 . 10.42.0.7 }\n\
             delete element ip t hairpin { 10.42.0.5 . 10.42.0.5 }\n"
        );
        // A full rewrite counts afresh.
        h.clear();
        out.clear();
        h.update("t", &set(&[]), &set(&["10.42.0.6"]), &mut out);
        assert_eq!(out, "add element ip t hairpin { 10.42.0.6 . 10.42.0.6 }\n");
    }

    #[test]
    fn a_readiness_change_touches_only_its_services_chain_in_a_table_of_10000() {
        // The sync's script for one endpoint change: the Service's own chain and the
        // hairpin element of the endpoint that went, nothing of the 9 999 others.
        let mut h = Hairpins::default();
        let mut all = String::new();
        let mut applied = Vec::new();
        for i in 0..10_000u32 {
            let s = svc(json!({
                "metadata": {"namespace": "ns", "name": format!("s{i}")},
                "spec": {"clusterIP": format!("10.43.{}.{}", i / 250, i % 250 + 1),
                         "ports": [{"name": "http", "port": 80}]}
            }));
            let sl = slice(json!({
                "metadata": {"namespace": "ns", "name": format!("s{i}-1")},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [
                    {"addresses": [format!("10.42.{}.{}", i / 250, i % 250 + 1)]},
                    {"addresses": [format!("10.44.{}.{}", i / 250, i % 250 + 1)]},
                ]
            }));
            let r = service_rules(&s, &[&sl], cidr(), None);
            diff_script("t", &ServiceRules::default(), &r, &mut all);
            h.update("t", &BTreeSet::new(), &r.endpoints, &mut all);
            applied.push((s, sl, r));
        }
        // One chain per Service port, one map element, two hairpin pairs.
        assert_eq!(all.matches("add chain").count(), 10_000);
        let (s, sl, old) = &applied[42];
        let mut one = sl.clone();
        one.endpoints[1].conditions = serde_json::from_value(json!({"ready": false})).ok();
        let new = service_rules(s, &[&one], cidr(), None);
        let mut script = String::new();
        diff_script("t", old, &new, &mut script);
        h.update("t", &old.endpoints, &new.endpoints, &mut script);
        let chain = chain_name("service", "ns/s42/tcp/http");
        assert_eq!(
            script,
            format!(
                "flush chain ip t {chain}\n\
                 add rule ip t {chain} ip daddr 10.43.0.43 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade\n\
                 add rule ip t {chain} meta l4proto tcp dnat to 10.42.0.43:8080\n\
                 delete element ip t hairpin {{ 10.44.0.43 . 10.44.0.43 }}\n"
            )
        );
    }
}

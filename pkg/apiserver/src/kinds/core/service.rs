//! Services: defaults, validation, and cluster IP and node port allocation.
//!
//! The services themselves are the record of what is allocated: the allocators live in
//! memory and are rebuilt from the stored services at start ([`Strategy::restore`]), so
//! a crash can neither leak nor double-allocate an address.

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ipnet::IpNet;
use k1s_apimachinery::meta::validate_labels;
use k1s_apimachinery::validation::{
    is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_port_name,
    is_valid_port_num,
};
use k1s_apimachinery::{ErrorList, FieldError, GroupKind, Path, Status};
use parking_lot::Mutex;
use rand::Rng;
use serde_json::{Value, json};

use super::endpoints::PROTOCOLS;
use crate::kinds::validation::Fields;
use crate::kinds::validation::ip::{
    is_ipv4_like, legacy_ip_errors, parse_ip_sloppy, validate_lb_hostname, validate_legacy_cidr,
    validate_non_special_ip,
};
use crate::kinds::validation::{invalid_each, strings};
use crate::meta::{self, default_path, get_path};
use crate::registry::Strategy;

/// Hands out cluster IPs from the service CIDR.
#[derive(Debug)]
pub struct ClusterIpAllocator {
    net: IpNet,
    used: BTreeSet<IpAddr>,
}

/// Upstream's range for NodePort services.
pub const NODE_PORT_RANGE: (u16, u16) = (30000, 32767);

fn offset_ip(net: &IpNet, offset: u128) -> Option<IpAddr> {
    match net {
        IpNet::V4(n) => {
            let base = u32::from(n.network()) as u128;
            u32::try_from(base + offset)
                .ok()
                .map(|v| IpAddr::V4(Ipv4Addr::from(v)))
        }
        IpNet::V6(n) => {
            let base = u128::from(n.network());
            base.checked_add(offset)
                .map(|v| IpAddr::V6(Ipv6Addr::from(v)))
        }
    }
}

impl ClusterIpAllocator {
    /// An allocator over `net`.
    pub fn new(net: IpNet) -> Self {
        Self {
            net,
            used: BTreeSet::new(),
        }
    }

    /// Number of usable addresses (network and broadcast excluded, capped).
    fn size(&self) -> u128 {
        let bits = self.net.max_prefix_len() - self.net.prefix_len();
        let total: u128 = if bits >= 64 {
            u64::MAX as u128
        } else {
            1u128 << bits
        };
        total.saturating_sub(2)
    }

    /// The `n`th usable address (0-based: the first is network + 1).
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        (n < self.size())
            .then(|| offset_ip(&self.net, n + 1))
            .flatten()
    }

    /// Whether `ip` is a usable address of the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.net.contains(&ip) && ip != self.net.network() && ip != self.net.broadcast()
    }

    /// Marks a specific address used; errors carry upstream's wording.
    pub fn allocate(&mut self, ip: IpAddr) -> Result<(), String> {
        if !self.contains(ip) {
            return Err(format!(
                "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                self.net
            ));
        }
        if !self.used.insert(ip) {
            return Err(format!(
                "failed to allocate IP {ip}: provided IP is already allocated"
            ));
        }
        Ok(())
    }

    /// Picks a free address. Like upstream, dynamic allocation prefers the upper part of
    /// the range so that the lower part stays free for addresses users choose.
    pub fn allocate_next(&mut self) -> Result<IpAddr, String> {
        let size = self.size();
        if size == 0 || self.used.len() as u128 >= size {
            return Err("range is full".into());
        }
        let static_band = (size / 16).clamp(16.min(size), 256);
        let mut rng = rand::rng();
        let (lo, hi) = if size > static_band {
            (static_band, size)
        } else {
            (0, size)
        };
        let start = rng.random_range(lo..hi);
        for n in (start..hi).chain(lo..start).chain(0..lo) {
            if let Some(ip) = self.nth(n)
                && !self.used.contains(&ip)
            {
                self.used.insert(ip);
                return Ok(ip);
            }
        }
        Err("range is full".into())
    }

    /// Frees an address.
    pub fn release(&mut self, ip: IpAddr) {
        self.used.remove(&ip);
    }

    /// Replaces what is marked used (servers sharing a datastore refresh their view
    /// from the IPAddress objects in the store).
    pub fn replace_used(&mut self, used: BTreeSet<IpAddr>) {
        self.used = used;
    }
}

/// Hands out node ports.
#[derive(Debug, Default)]
pub struct NodePortAllocator {
    used: BTreeSet<u16>,
}

impl NodePortAllocator {
    /// Marks a specific port used.
    pub fn allocate(&mut self, port: u16) -> Result<(), String> {
        let (lo, hi) = NODE_PORT_RANGE;
        if port < lo || port > hi {
            return Err(format!(
                "provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
            ));
        }
        if !self.used.insert(port) {
            return Err("provided port is already allocated".into());
        }
        Ok(())
    }

    /// Picks a free port.
    pub fn allocate_next(&mut self) -> Result<u16, String> {
        let (lo, hi) = NODE_PORT_RANGE;
        let start = rand::rng().random_range(lo..=hi);
        for p in (start..=hi).chain(lo..start) {
            if self.used.insert(p) {
                return Ok(p);
            }
        }
        Err("range is full".into())
    }

    /// Frees a port.
    pub fn release(&mut self, port: u16) {
        self.used.remove(&port);
    }

    /// Whether `port` is in the node port range.
    pub fn in_range(port: u16) -> bool {
        (NODE_PORT_RANGE.0..=NODE_PORT_RANGE.1).contains(&port)
    }

    /// Replaces what is marked used (servers sharing a datastore refresh their view
    /// from the reservations in the store).
    pub fn replace_used(&mut self, used: BTreeSet<u16>) {
        self.used = used;
    }
}

/// The allocators shared by every version of the Service resource.
#[derive(Debug, Clone)]
pub struct ServiceAllocators {
    /// Cluster IPs.
    pub ips: Arc<Mutex<ClusterIpAllocator>>,
    /// Node ports.
    pub ports: Arc<Mutex<NodePortAllocator>>,
    /// Whether other servers allocate from the same ranges (a shared datastore): the
    /// in-memory sets are then only hints, and a value is held once its reservation in
    /// the store is written ([`super::service_reservations`]).
    shared: Arc<AtomicBool>,
}

impl ServiceAllocators {
    /// Allocators over the service CIDR.
    pub fn new(service_cidr: IpNet) -> Self {
        Self {
            ips: Arc::new(Mutex::new(ClusterIpAllocator::new(service_cidr))),
            ports: Arc::new(Mutex::new(NodePortAllocator::default())),
            shared: Arc::default(),
        }
    }

    /// Marks the ranges shared with other servers.
    pub fn set_shared(&self) {
        self.shared.store(true, Ordering::SeqCst);
    }

    /// Whether the ranges are shared with other servers.
    pub fn is_shared(&self) -> bool {
        self.shared.load(Ordering::SeqCst)
    }
}

/// The Service strategy.
pub struct ServiceStrategy {
    alloc: ServiceAllocators,
}

impl ServiceStrategy {
    /// A strategy over shared allocators.
    pub fn new(alloc: ServiceAllocators) -> Self {
        Self { alloc }
    }
}

fn svc_type(obj: &Value) -> &str {
    get_path(obj, &["spec", "type"])
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

fn cluster_ip(obj: &Value) -> Option<&str> {
    get_path(obj, &["spec", "clusterIP"])
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn uses_node_ports(obj: &Value) -> bool {
    match svc_type(obj) {
        "NodePort" => true,
        "LoadBalancer" => get_path(obj, &["spec", "allocateLoadBalancerNodePorts"])
            .and_then(Value::as_bool)
            .unwrap_or(true),
        _ => false,
    }
}

fn node_ports(obj: &Value) -> Vec<u16> {
    get_path(obj, &["spec", "ports"])
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .filter_map(|p| u16::try_from(p).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A cluster IP as the allocator holds it: parsed as sloppily as validation accepts it
/// (leading zeros), and an IPv4-mapped address as the IPv4 address it maps (Go's
/// allocator works on `To4()`).
fn service_ip(ip: &str) -> Option<IpAddr> {
    parse_ip_sloppy(ip).map(|a| match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    })
}

fn owned_ip(obj: &Value) -> Option<IpAddr> {
    cluster_ip(obj)
        .filter(|ip| *ip != "None")
        .and_then(service_ip)
}

/// The cluster IP a Service holds (none for headless and ExternalName ones).
pub(crate) fn owned_ip_of(obj: &Value) -> Option<IpAddr> {
    (svc_type(obj) != "ExternalName")
        .then(|| owned_ip(obj))
        .flatten()
}

/// Whether a Service holds node ports.
pub(crate) fn uses_node_ports_of(obj: &Value) -> bool {
    uses_node_ports(obj)
}

/// The node ports a Service's ports name.
pub(crate) fn node_ports_of(obj: &Value) -> Vec<u16> {
    node_ports(obj)
}

/// The health check node port a Service holds.
pub(crate) fn health_check_port_of(obj: &Value) -> Option<u16> {
    needs_health_check(obj)
        .then(|| health_check_port(obj))
        .flatten()
}

fn invalid(name: &str, path: Path, value: Value, msg: String) -> Status {
    Status::invalid(
        &GroupKind::new("", "Service"),
        name,
        &[FieldError::invalid(&path, value, msg)],
    )
}

impl ServiceStrategy {
    /// Allocates what `obj` needs and does not already hold per `old`.
    fn allocate(&self, obj: &mut Value, old: Option<&Value>) -> Result<(), Status> {
        let name = meta::name(obj).to_string();
        let spec = Path::new("spec");
        let is_external = svc_type(obj) == "ExternalName";
        let old_ip = old.and_then(owned_ip);
        let shared = self.alloc.is_shared();
        // Cluster IP.
        if !is_external && old_ip.is_none() && cluster_ip(obj) != Some("None") {
            let mut ips = self.alloc.ips.lock();
            // A requested IP is kept as written (upstream stores the string it was
            // given, legacy forms included); an allocated one is written canonically.
            let ip = match cluster_ip(obj) {
                Some(requested) => {
                    let ip = service_ip(requested).ok_or_else(|| {
                        invalid(
                            &name,
                            spec.child("clusterIPs").index(0),
                            json!(requested),
                            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into(),
                        )
                    })?;
                    // With other servers allocating too, a local mark may be stale (the
                    // service was deleted through another server): the reservation in
                    // the store decides.
                    if let Err(m) = ips.allocate(ip)
                        && !(shared && ips.contains(ip))
                    {
                        return Err(invalid(
                            &name,
                            spec.child("clusterIPs"),
                            json!([requested]),
                            m,
                        ));
                    }
                    requested.to_string()
                }
                None => ips
                    .allocate_next()
                    .map_err(|m| {
                        Status::internal_error(&format!("failed to allocate a serviceIP: {m}"))
                    })?
                    .to_string(),
            };
            obj["spec"]["clusterIP"] = json!(ip);
            obj["spec"]["clusterIPs"] = json!([ip]);
        }
        if cluster_ip(obj) == Some("None") {
            obj["spec"]["clusterIPs"] = json!(["None"]);
        }
        // Node ports.
        if uses_node_ports(obj) {
            let held: Vec<u16> = old
                .filter(|o| uses_node_ports(o))
                .map(node_ports)
                .unwrap_or_default();
            let mut ports = self.alloc.ports.lock();
            let mut taken = Vec::new();
            let count = get_path(obj, &["spec", "ports"])
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            for i in 0..count {
                let p = &mut obj["spec"]["ports"][i];
                let requested = p.get("nodePort").and_then(Value::as_u64).filter(|n| *n > 0);
                let result = match requested {
                    Some(n) if held.contains(&(n as u16)) => Ok(n as u16),
                    Some(n) => match u16::try_from(n) {
                        Ok(n16) if shared && NodePortAllocator::in_range(n16) => {
                            let _ = ports.allocate(n16);
                            Ok(n16)
                        }
                        Ok(n16) => ports.allocate(n16).map(|_| n16),
                        Err(_) => Err("provided port is not in the valid range. The range of valid ports is 30000-32767".into()),
                    },
                    None => ports.allocate_next(),
                };
                match result {
                    Ok(n) => {
                        if !held.contains(&n) {
                            taken.push(n);
                        }
                        p["nodePort"] = json!(n);
                    }
                    Err(m) => {
                        for t in taken {
                            ports.release(t);
                        }
                        return Err(invalid(
                            &name,
                            spec.child("ports").index(i).child("nodePort"),
                            json!(requested.unwrap_or(0)),
                            m,
                        ));
                    }
                }
            }
        } else if let Some(Value::Array(ps)) = obj.get_mut("spec").and_then(|s| s.get_mut("ports"))
        {
            for p in ps {
                if let Some(o) = p.as_object_mut() {
                    o.remove("nodePort");
                }
            }
        }
        // The health check node port of a LoadBalancer with externalTrafficPolicy Local
        // (upstream allocates it before validating; a set one was validated already).
        if needs_health_check(obj) {
            let held = old
                .filter(|o| needs_health_check(o))
                .and_then(health_check_port);
            let requested = health_check_port(obj);
            let mut ports = self.alloc.ports.lock();
            let result = match requested {
                Some(n) if Some(n) == held => Ok(n),
                Some(n) if shared && NodePortAllocator::in_range(n) => {
                    let _ = ports.allocate(n);
                    Ok(n)
                }
                Some(n) => ports.allocate(n).map(|_| n),
                None => ports.allocate_next(),
            };
            match result {
                Ok(n) => obj["spec"]["healthCheckNodePort"] = json!(n),
                Err(m) => {
                    drop(ports);
                    // Give back what this write took before failing.
                    self.free(obj, old);
                    return Err(invalid(
                        &name,
                        spec.child("healthCheckNodePort"),
                        json!(requested.unwrap_or(0)),
                        m,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Frees what `obj` holds beyond what `keep` holds.
    fn free(&self, obj: &Value, keep: Option<&Value>) {
        if let Some(ip) = owned_ip(obj)
            && keep.and_then(owned_ip) != Some(ip)
        {
            self.alloc.ips.lock().release(ip);
        }
        if uses_node_ports(obj) {
            let kept: Vec<u16> = keep
                .filter(|k| uses_node_ports(k))
                .map(node_ports)
                .unwrap_or_default();
            let mut ports = self.alloc.ports.lock();
            for p in node_ports(obj) {
                if !kept.contains(&p) {
                    ports.release(p);
                }
            }
        }
        if needs_health_check(obj)
            && let Some(p) = health_check_port(obj)
            && keep
                .filter(|k| needs_health_check(k))
                .and_then(health_check_port)
                != Some(p)
        {
            self.alloc.ports.lock().release(p);
        }
    }
}

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const AFFINITIES: &[&str] = &["ClientIP", "None"];
const EXTERNAL_TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];
const INTERNAL_TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];
const IP_FAMILIES: &[&str] = &["IPv4", "IPv6"];
const IP_FAMILY_POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
const TRAFFIC_DISTRIBUTIONS: &[&str] = &["PreferClose", "PreferSameZone", "PreferSameNode"];
const LB_IP_MODES: &[&str] = &["Proxy", "VIP"];
/// Upstream's `DefaultClientIPServiceAffinitySeconds` and its maximum.
const DEFAULT_AFFINITY_SECONDS: i64 = 10800;
const MAX_AFFINITY_SECONDS: i64 = 86400;
const SOURCE_RANGES_ANNOTATION: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
const TOPOLOGY_MODE_ANNOTATION: &str = "service.kubernetes.io/topology-mode";
const TOPOLOGY_HINTS_ANNOTATION: &str = "service.kubernetes.io/topology-aware-hints";

/// `clusterIPs == ["None"]` (upstream's `isHeadlessService`).
fn is_headless(obj: &Value) -> bool {
    strings(obj.f("spec").f("clusterIPs")) == ["None"]
}

/// LoadBalancer and NodePort services, and ClusterIP ones with external IPs.
fn externally_accessible(obj: &Value) -> bool {
    let spec = obj.f("spec");
    match spec.s("type") {
        "LoadBalancer" | "NodePort" => true,
        "ClusterIP" => !spec.a("externalIPs").is_empty(),
        _ => false,
    }
}

/// LoadBalancer services with `externalTrafficPolicy: Local` get a health check port.
fn needs_health_check(obj: &Value) -> bool {
    let spec = obj.f("spec");
    spec.s("type") == "LoadBalancer" && spec.s("externalTrafficPolicy") == "Local"
}

fn health_check_port(obj: &Value) -> Option<u16> {
    obj.f("spec")
        .i("healthCheckNodePort")
        .filter(|p| *p > 0)
        .and_then(|p| u16::try_from(p).ok())
}

fn validate_service_port(
    port: &Value,
    require_name: bool,
    names: &mut Vec<String>,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = port.s("name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        // Port names are DNS-1123 labels here, so kubectl's generated "80-8080" is valid.
        errs.extend(invalid_each(
            name,
            &path.child("name"),
            is_dns1123_label(name),
        ));
        if names.iter().any(|n| n == name) {
            errs.push(FieldError::duplicate(&path.child("name"), name));
        } else {
            names.push(name.to_string());
        }
    }
    let number = port.i("port").unwrap_or(0);
    for msg in is_valid_port_num(number) {
        errs.push(FieldError::invalid(&path.child("port"), number, msg));
    }
    match port.s("protocol") {
        "" => errs.push(FieldError::required(&path.child("protocol"), "")),
        p if !PROTOCOLS.contains(&p) => errs.push(FieldError::not_supported(
            &path.child("protocol"),
            p,
            PROTOCOLS,
        )),
        _ => {}
    }
    // ValidatePortNumOrName.
    let tp = path.child("targetPort");
    match port.f("targetPort") {
        Value::Number(n) => {
            let n = n.as_i64().unwrap_or(0);
            for msg in is_valid_port_num(n) {
                errs.push(FieldError::invalid(&tp, n, msg));
            }
        }
        Value::String(s) => errs.extend(invalid_each(s, &tp, is_valid_port_name(s))),
        _ => {}
    }
    if let Some(app) = port.get("appProtocol").and_then(Value::as_str) {
        errs.extend(invalid_each(
            app,
            &path.child("appProtocol"),
            is_qualified_name(app),
        ));
    }
    errs
}

/// Upstream's `ValidateServiceClusterIPsRelatedFields`.
fn validate_cluster_ips(obj: &Value) -> ErrorList {
    let spec = obj.f("spec");
    if spec.s("type") == "ExternalName" {
        return ErrorList::new();
    }
    let mut errs = ErrorList::new();
    let sp = Path::new("spec");
    let (ips_path, families_path) = (sp.child("clusterIPs"), sp.child("ipFamilies"));
    let ips_value = spec.f("clusterIPs").clone();
    let ips = strings(&ips_value);
    let cluster_ip = spec.s("clusterIP");
    if !cluster_ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(&ips_path, ""));
        } else if ips[0] != cluster_ip {
            errs.push(FieldError::invalid(
                &ips_path,
                ips_value.clone(),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            &ips_path,
            ips_value.clone(),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let families = strings(spec.f("ipFamilies"));
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, f) in families.iter().enumerate() {
        if !IP_FAMILIES.contains(f) {
            errs.push(FieldError::not_supported(
                &families_path.index(i),
                *f,
                IP_FAMILIES,
            ));
        }
        if !seen.insert(f) {
            errs.push(FieldError::duplicate(&families_path.index(i), *f));
        }
    }
    if let Some(policy) = spec.get("ipFamilyPolicy").and_then(Value::as_str)
        && !IP_FAMILY_POLICIES.contains(&policy)
    {
        errs.push(FieldError::not_supported(
            &sp.child("ipFamilyPolicy"),
            policy,
            IP_FAMILY_POLICIES,
        ));
    }
    let mut bad_ips = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && *ip == "None" {
            if ips.len() > 1 {
                bad_ips = true;
                errs.push(FieldError::invalid(
                    &ips_path,
                    ips_value.clone(),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        // A legacy field: upstream's IsValidIPForLegacyField, with StrictIPCIDRValidation
        // off by default in 1.35, refuses only what does not parse at all.
        let e = invalid_each(ip, &ips_path.index(i), legacy_ip_errors(ip));
        bad_ips |= !e.is_empty();
        errs.extend(e);
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            &ips_path,
            ips_value.clone(),
            "may only hold up to 2 values",
        ));
    }
    if bad_ips {
        return errs;
    }
    // `netutils.IsIPv6String`: parsed sloppily, and an IPv4-mapped address is IPv4.
    let is_v6 = |ip: &str| parse_ip_sloppy(ip).is_some_and(|a| !is_ipv4_like(a));
    if ips.len() > 1 {
        let v6 = ips.iter().filter(|ip| is_v6(ip)).count();
        if ips.len() != 2 || v6 != 1 {
            errs.push(FieldError::invalid(
                &ips_path,
                ips_value.clone(),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if !is_headless(obj) && !ips.is_empty() && !families.is_empty() {
        for (i, ip) in ips.iter().enumerate().take(families.len()) {
            if families[i] == "IPv4" && is_v6(ip) {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    *ip,
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if families[i] == "IPv6" && !is_v6(ip) {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    *ip,
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

/// Upstream's `ValidateService` (without the metadata, which the registry checks).
fn validate_service(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = obj.f("spec");
    let sp = Path::new("spec");
    let ty = spec.s("type");
    let headless = is_headless(obj);
    let annotations = obj.f("metadata").f("annotations");
    if let (Some(mode), Some(hints)) = (
        annotations
            .get(TOPOLOGY_MODE_ANNOTATION)
            .and_then(Value::as_str),
        annotations
            .get(TOPOLOGY_HINTS_ANNOTATION)
            .and_then(Value::as_str),
    ) && mode != hints
    {
        errs.push(FieldError::invalid(
            &Path::new("metadata")
                .child("annotations")
                .key(TOPOLOGY_MODE_ANNOTATION),
            mode,
            format!("must match annotations[{TOPOLOGY_HINTS_ANNOTATION}] when both are specified"),
        ));
    }
    let ports = spec.a("ports");
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required(&sp.child("ports"), ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            &sp.child("clusterIPs").index(0),
            "None",
            format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => {
            for key in ["clusterIPs", "ipFamilies"] {
                if !spec.a(key).is_empty() {
                    errs.push(FieldError::forbidden(
                        &sp.child(key),
                        "may not be set for ExternalName services",
                    ));
                }
            }
            if spec.has("ipFamilyPolicy") {
                errs.push(FieldError::forbidden(
                    &sp.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            // A CNAME may end with a dot.
            let cname = spec
                .s("externalName")
                .strip_suffix('.')
                .unwrap_or(spec.s("externalName"));
            if cname.is_empty() {
                errs.push(FieldError::required(&sp.child("externalName"), ""));
            } else {
                errs.extend(invalid_each(
                    cname,
                    &sp.child("externalName"),
                    is_dns1123_subdomain(cname),
                ));
            }
        }
        _ => {}
    }
    let mut names = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        errs.extend(validate_service_port(
            p,
            ports.len() > 1,
            &mut names,
            &sp.child("ports").index(i),
        ));
    }
    if spec.has("selector") {
        errs.extend(validate_labels(
            Some(spec.f("selector")),
            &sp.child("selector"),
        ));
    }
    let affinity = spec.s("sessionAffinity");
    if affinity.is_empty() {
        errs.push(FieldError::required(&sp.child("sessionAffinity"), ""));
    } else if !AFFINITIES.contains(&affinity) {
        errs.push(FieldError::not_supported(
            &sp.child("sessionAffinity"),
            affinity,
            AFFINITIES,
        ));
    }
    let config_path = sp.child("sessionAffinityConfig");
    if affinity == "ClientIP" {
        let detail = "when session affinity type is ClientIP";
        let config = spec.f("sessionAffinityConfig");
        if !spec.has("sessionAffinityConfig") {
            errs.push(FieldError::required(&config_path, detail));
        } else if !config.has("clientIP") {
            errs.push(FieldError::required(&config_path.child("clientIP"), detail));
        } else {
            let tp = config_path.child("clientIP").child("timeoutSeconds");
            match config.f("clientIP").i("timeoutSeconds") {
                None => errs.push(FieldError::required(&tp, detail)),
                Some(t) if t <= 0 || t > MAX_AFFINITY_SECONDS => errs.push(FieldError::invalid(
                    &tp,
                    t,
                    format!("must be greater than 0 and less than {MAX_AFFINITY_SECONDS}"),
                )),
                Some(_) => {}
            }
        }
    } else if affinity == "None" && spec.has("sessionAffinityConfig") {
        errs.push(FieldError::forbidden(
            &config_path,
            "must not be set when session affinity is None",
        ));
    }
    errs.extend(validate_cluster_ips(obj));
    for (i, ip) in strings(spec.f("externalIPs")).iter().enumerate() {
        let p = sp.child("externalIPs").index(i);
        let e = invalid_each(ip, &p, legacy_ip_errors(ip));
        if e.is_empty() {
            errs.extend(validate_non_special_ip(ip, &p));
        } else {
            errs.extend(e);
        }
    }
    if ty.is_empty() {
        errs.push(FieldError::required(&sp.child("type"), ""));
    } else if !SERVICE_TYPES.contains(&ty) {
        errs.push(FieldError::not_supported(
            &sp.child("type"),
            ty,
            SERVICE_TYPES,
        ));
    }
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.i("nodePort").unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    &sp.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports: HashSet<(&str, i64)> = HashSet::new();
    let mut port_keys: HashSet<(&str, i64)> = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = p.i("nodePort").unwrap_or(0);
        if np != 0 && !node_ports.insert((p.s("protocol"), np)) {
            errs.push(FieldError::duplicate(
                &sp.child("ports").index(i).child("nodePort"),
                np,
            ));
        }
    }
    for (i, p) in ports.iter().enumerate() {
        let key = (p.s("protocol"), p.i("port").unwrap_or(0));
        if !port_keys.insert(key) {
            errs.push(FieldError::duplicate(
                &sp.child("ports").index(i),
                json!({"port": key.1, "protocol": key.0}),
            ));
        }
    }
    let ranges = strings(spec.f("loadBalancerSourceRanges"));
    if !ranges.is_empty() {
        // Upstream capitalises this path.
        let p = sp.child("LoadBalancerSourceRanges");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &p,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            errs.extend(validate_legacy_cidr(r.trim(), &p.index(i)));
        }
    } else if let Some(val) = annotations
        .get(SOURCE_RANGES_ANNOTATION)
        .and_then(Value::as_str)
    {
        let p = Path::new("metadata")
            .child("annotations")
            .key(SOURCE_RANGES_ANNOTATION);
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &p,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let val = val.trim();
        if !val.is_empty() {
            for r in val.split(',') {
                errs.extend(validate_legacy_cidr(r.trim(), &p));
            }
        }
    }
    if spec.has("allocateLoadBalancerNodePorts") && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            &sp.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && !spec.has("allocateLoadBalancerNodePorts") {
        // Upstream leaves out `spec` here.
        errs.push(FieldError::required(
            &Path::new("allocateLoadBalancerNodePorts"),
            "",
        ));
    }
    if let Some(class) = spec.get("loadBalancerClass").and_then(Value::as_str) {
        if ty == "LoadBalancer" {
            errs.extend(invalid_each(
                class,
                &sp.child("loadBalancerClass"),
                is_qualified_name(class),
            ));
        } else {
            errs.push(FieldError::forbidden(
                &sp.child("loadBalancerClass"),
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
    }
    // validateServiceExternalTrafficPolicy.
    let etp = spec.s("externalTrafficPolicy");
    let etp_path = sp.child("externalTrafficPolicy");
    if !externally_accessible(obj) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                &etp_path,
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required(&etp_path, ""));
    } else if !EXTERNAL_TRAFFIC_POLICIES.contains(&etp) {
        errs.push(FieldError::not_supported(
            &etp_path,
            etp,
            EXTERNAL_TRAFFIC_POLICIES,
        ));
    }
    let hc = spec.i("healthCheckNodePort").unwrap_or(0);
    let hc_path = sp.child("healthCheckNodePort");
    if !needs_health_check(obj) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                &hc_path,
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc != 0 {
        // Upstream allocates a missing one before validating; k1s allocates it after.
        for msg in is_valid_port_num(hc) {
            errs.push(FieldError::invalid(&hc_path, hc, msg));
        }
    }
    // validateServiceInternalTrafficFieldsValue.
    let itp_path = sp.child("internalTrafficPolicy");
    match spec.get("internalTrafficPolicy").and_then(Value::as_str) {
        None => {
            if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") {
                errs.push(FieldError::required(&itp_path, ""));
            }
        }
        Some(itp) if !INTERNAL_TRAFFIC_POLICIES.contains(&itp) => errs.push(
            FieldError::not_supported(&itp_path, itp, INTERNAL_TRAFFIC_POLICIES),
        ),
        Some(_) => {}
    }
    if let Some(td) = spec.get("trafficDistribution").and_then(Value::as_str)
        && !TRAFFIC_DISTRIBUTIONS.contains(&td)
    {
        errs.push(FieldError::not_supported(
            &sp.child("trafficDistribution"),
            td,
            TRAFFIC_DISTRIBUTIONS,
        ));
    }
    errs
}

/// Upstream's `validateUpgradeDowngradeClusterIPs`.
fn validate_cluster_ips_update(old: &Value, new: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    if old.f("spec").s("type") == "ExternalName" || new.f("spec").s("type") == "ExternalName" {
        return errs;
    }
    if is_headless(old) && is_headless(new) {
        return errs;
    }
    let ips_path = Path::new("spec").child("clusterIPs");
    let new_value = new.f("spec").f("clusterIPs").clone();
    let (o, n) = (
        strings(old.f("spec").f("clusterIPs")),
        strings(new.f("spec").f("clusterIPs")),
    );
    let changed = || {
        FieldError::invalid(
            &ips_path.index(0),
            new_value.clone(),
            "may not change once set",
        )
    };
    if o.len() == n.len() {
        for (i, ip) in o.iter().enumerate() {
            if *ip != n[i] {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    new_value.clone(),
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if n.is_empty() {
            errs.push(FieldError::invalid(
                &ips_path.index(0),
                new_value.clone(),
                "primary clusterIP can not be unset",
            ));
        }
        if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
            errs.push(changed());
        }
        if n.len() == 1 && new.f("spec").s("ipFamilyPolicy") != "SingleStack" {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("ipFamilyPolicy"),
                new.f("spec").f("ipFamilyPolicy").clone(),
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !o.is_empty() && n[0] != o[0] {
        errs.push(changed());
    }
    errs
}

/// Upstream's `validateUpgradeDowngradeIPFamilies`.
fn validate_ip_families_update(old: &Value, new: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    if old.f("spec").s("type") == "ExternalName" || new.f("spec").s("type") == "ExternalName" {
        return errs;
    }
    if is_headless(old) || is_headless(new) {
        return errs;
    }
    let p = Path::new("spec").child("ipFamilies").index(0);
    let new_families = new.f("spec").f("ipFamilies").clone();
    let new_ips = new.f("spec").f("clusterIPs").clone();
    let (o, n) = (
        strings(old.f("spec").f("ipFamilies")),
        strings(new.f("spec").f("ipFamilies")),
    );
    if o.len() == n.len() {
        for (i, f) in o.iter().enumerate() {
            if *f != n[i] {
                errs.push(FieldError::invalid(
                    &p,
                    new_families.clone(),
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if new.f("spec").a("clusterIPs").is_empty() {
            errs.push(FieldError::invalid(
                &p,
                new_families.clone(),
                "primary ipFamily can not be unset",
            ));
        }
        if !n.is_empty() && n[0] != o[0] {
            errs.push(FieldError::invalid(
                &p,
                new_ips.clone(),
                "may not change once set",
            ));
        }
        if n.len() == 1 && new.f("spec").s("ipFamilyPolicy") != "SingleStack" {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("ipFamilyPolicy"),
                new.f("spec").f("ipFamilyPolicy").clone(),
                "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
        errs.push(FieldError::invalid(&p, new_ips, "may not change once set"));
    }
    errs
}

/// Upstream's `ValidateLoadBalancerStatus`.
fn validate_load_balancer_status(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let ingress = obj.f("status").f("loadBalancer").a("ingress");
    let path = Path::new("status").child("loadBalancer").child("ingress");
    if obj.f("spec").s("type") != "LoadBalancer" && !ingress.is_empty() {
        return vec![FieldError::forbidden(
            &path,
            "may only be used when `spec.type` is 'LoadBalancer'",
        )];
    }
    for (i, ing) in ingress.iter().enumerate() {
        let p = path.index(i);
        let ip = ing.s("ip");
        if !ip.is_empty() {
            errs.extend(invalid_each(ip, &p.child("ip"), legacy_ip_errors(ip)));
        }
        match ing.get("ipMode").and_then(Value::as_str) {
            None if !ip.is_empty() => errs.push(FieldError::required(
                &p.child("ipMode"),
                "must be specified when `ip` is set",
            )),
            Some(_) if ip.is_empty() => errs.push(FieldError::forbidden(
                &p.child("ipMode"),
                "may not be specified when `ip` is not set",
            )),
            Some(mode) if !LB_IP_MODES.contains(&mode) => errs.push(FieldError::not_supported(
                &p.child("ipMode"),
                mode,
                LB_IP_MODES,
            )),
            _ => {}
        }
        let host = ing.s("hostname");
        if !host.is_empty() {
            errs.extend(validate_lb_hostname(host, &p.child("hostname")));
        }
    }
    errs
}

impl ServiceStrategy {
    /// What upstream's allocator checks before the strategy validates, and answers alone
    /// when it fails: the cluster IP fields, then the families this cluster offers.
    fn allocator_checks(&self, obj: &Value) -> ErrorList {
        let errs = validate_cluster_ips(obj);
        if !errs.is_empty() {
            return errs;
        }
        self.validate_families(obj)
    }

    /// The family of the service CIDR.
    fn cluster_family(&self) -> &'static str {
        match self.alloc.ips.lock().net {
            IpNet::V4(_) => "IPv4",
            IpNet::V6(_) => "IPv6",
        }
    }

    /// What upstream's allocator refuses before validating (`initIPFamilyFields`): a
    /// single-stack cluster offers one family.
    fn validate_families(&self, obj: &Value) -> ErrorList {
        let spec = obj.f("spec");
        if spec.s("type") == "ExternalName" {
            return ErrorList::new();
        }
        let mut errs = ErrorList::new();
        let policy_path = Path::new("spec").child("ipFamilyPolicy");
        let policy = spec.s("ipFamilyPolicy");
        if policy == "SingleStack" {
            if spec.a("clusterIPs").len() == 2 {
                errs.push(FieldError::invalid(
                    &policy_path,
                    policy,
                    "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
                ));
            }
            if spec.a("ipFamilies").len() == 2 {
                errs.push(FieldError::invalid(
                    &policy_path,
                    policy,
                    "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
                ));
            }
        }
        if !errs.is_empty() {
            return errs;
        }
        // Headless services without a selector may name any families.
        if spec.s("clusterIP") == "None" && spec.m("selector").is_none_or(|m| m.is_empty()) {
            return errs;
        }
        if policy == "RequireDualStack" {
            errs.push(FieldError::invalid(
                &policy_path,
                policy,
                "this cluster is not configured for dual-stack services",
            ));
        }
        let family = self.cluster_family();
        for (i, f) in strings(spec.f("ipFamilies")).iter().enumerate() {
            if *f != family && IP_FAMILIES.contains(f) {
                errs.push(FieldError::invalid(
                    &Path::new("spec").child("ipFamilies").index(i),
                    *f,
                    "not configured on this cluster",
                ));
            }
        }
        errs
    }
}

/// Upstream's `NormalizeClusterIPs`: `clusterIPs` follows a `clusterIP` set alone.
fn normalize_cluster_ips(new: &mut Value, old: Option<&Value>) {
    let spec = &mut new["spec"];
    let cluster_ip = spec.s("clusterIP").to_string();
    let ips: Vec<String> = strings(spec.f("clusterIPs"))
        .iter()
        .map(|s| s.to_string())
        .collect();
    let Some(old) = old else {
        if !cluster_ip.is_empty() && ips.is_empty() {
            spec["clusterIPs"] = json!([cluster_ip]);
        }
        return;
    };
    let old_ip = old.f("spec").s("clusterIP");
    let old_ips = strings(old.f("spec").f("clusterIPs"));
    if !old_ips.is_empty() && ips.is_empty() && old_ip == cluster_ip {
        spec["clusterIPs"] = old.f("spec").f("clusterIPs").clone();
    }
    if old_ip != cluster_ip && old_ips == ips {
        if !old_ip.is_empty() && cluster_ip.is_empty() {
            if let Some(o) = spec.as_object_mut() {
                o.remove("clusterIPs");
            }
        } else {
            spec["clusterIPs"] = json!([cluster_ip]);
        }
    }
}

/// Upstream's `dropTypeDependentFields`: fields the new type does not use are cleared
/// when the user left them as they were.
fn drop_type_dependent_fields(new: &mut Value, old: &Value) {
    let (os, ns) = (old.f("spec").clone(), new.f("spec").clone());
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let needs_ip = |s: &Value| s.s("type") != "ExternalName";
    let needs_node_port = |s: &Value| matches!(s.s("type"), "NodePort" | "LoadBalancer");
    if needs_ip(&os) && !needs_ip(&ns) {
        if os.s("clusterIP") == ns.s("clusterIP")
            && strings(os.f("clusterIPs")) == strings(ns.f("clusterIPs"))
        {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        if os.f("ipFamilies") == ns.f("ipFamilies") {
            spec.remove("ipFamilies");
        }
        if os.s("ipFamilyPolicy") == ns.s("ipFamilyPolicy") {
            spec.remove("ipFamilyPolicy");
        }
    }
    let all_node_ports = |s: &Value| -> Vec<i64> {
        s.a("ports")
            .iter()
            .filter_map(|p| p.i("nodePort"))
            .filter(|n| *n != 0)
            .collect()
    };
    if needs_node_port(&os) && !needs_node_port(&ns) {
        let old_ports = all_node_ports(&os);
        if all_node_ports(&ns).iter().all(|p| old_ports.contains(p))
            && let Some(Value::Array(ports)) = spec.get_mut("ports")
        {
            for p in ports {
                if let Some(o) = p.as_object_mut() {
                    o.remove("nodePort");
                }
            }
        }
    }
    let needs_hc =
        |s: &Value| s.s("type") == "LoadBalancer" && s.s("externalTrafficPolicy") == "Local";
    if needs_hc(&os) && !needs_hc(&ns) && os.i("healthCheckNodePort") == ns.i("healthCheckNodePort")
    {
        spec.remove("healthCheckNodePort");
    }
    if os.s("type") == "LoadBalancer" && ns.s("type") != "LoadBalancer" {
        if ns.has("allocateLoadBalancerNodePorts")
            && os.f("allocateLoadBalancerNodePorts") == ns.f("allocateLoadBalancerNodePorts")
        {
            spec.remove("allocateLoadBalancerNodePorts");
        }
        if os.f("loadBalancerClass") == ns.f("loadBalancerClass") {
            spec.remove("loadBalancerClass");
        }
    }
    let accessible = |s: &Value| match s.s("type") {
        "LoadBalancer" | "NodePort" => true,
        "ClusterIP" => !s.a("externalIPs").is_empty(),
        _ => false,
    };
    if accessible(&os)
        && !accessible(&ns)
        && os.s("externalTrafficPolicy") == ns.s("externalTrafficPolicy")
    {
        spec.remove("externalTrafficPolicy");
    }
}

/// Upstream's `trimFieldsForDualStackDowngrade`.
fn trim_for_downgrade(new: &mut Value, old: &Value) {
    let old_dual = matches!(
        old.f("spec").s("ipFamilyPolicy"),
        "RequireDualStack" | "PreferDualStack"
    );
    if !old_dual || new.f("spec").s("ipFamilyPolicy") != "SingleStack" {
        return;
    }
    for key in ["clusterIPs", "ipFamilies"] {
        if let Some(list) = new["spec"].get_mut(key).and_then(Value::as_array_mut) {
            list.truncate(1);
        }
    }
}

impl Strategy for ServiceStrategy {
    fn default(&self, obj: &mut Value) {
        if !obj.get("spec").is_some_and(Value::is_object) {
            obj["spec"] = json!({});
        }
        let family = self.cluster_family();
        default_path(&mut obj["spec"], &["type"], json!("ClusterIP"));
        let accessible = externally_accessible(obj);
        let spec = &mut obj["spec"];
        default_path(spec, &["sessionAffinity"], json!("None"));
        match spec.s("sessionAffinity") {
            "None" => {
                if let Some(o) = spec.as_object_mut() {
                    o.remove("sessionAffinityConfig");
                }
            }
            "ClientIP"
                if spec
                    .f("sessionAffinityConfig")
                    .f("clientIP")
                    .i("timeoutSeconds")
                    .is_none() =>
            {
                spec["sessionAffinityConfig"] =
                    json!({"clientIP": {"timeoutSeconds": DEFAULT_AFFINITY_SECONDS}});
            }
            _ => {}
        }
        let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
        if ty != "ExternalName" {
            // Upstream's allocator fills these before validating.
            default_path(spec, &["ipFamilies"], json!([family]));
            default_path(spec, &["ipFamilyPolicy"], json!("SingleStack"));
        }
        if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
            default_path(spec, &["internalTrafficPolicy"], json!("Cluster"));
        }
        if accessible && spec.s("externalTrafficPolicy").is_empty() {
            spec["externalTrafficPolicy"] = json!("Cluster");
        }
        if ty == "LoadBalancer" {
            default_path(spec, &["allocateLoadBalancerNodePorts"], json!(true));
        }
        if let Some(Value::Array(ports)) = spec.get_mut("ports") {
            for p in ports {
                default_path(p, &["protocol"], json!("TCP"));
                if p.get("targetPort")
                    .is_none_or(|t| t.is_null() || t == &json!(0) || t == &json!(""))
                    && let Some(port) = p.get("port").cloned()
                {
                    p["targetPort"] = port;
                }
            }
        }
        if ty == "LoadBalancer"
            && let Some(Value::Array(ingress)) = obj
                .get_mut("status")
                .and_then(|s| s.get_mut("loadBalancer"))
                .and_then(|l| l.get_mut("ingress"))
        {
            for ing in ingress {
                if !ing.s("ip").is_empty() {
                    default_path(ing, &["ipMode"], json!("VIP"));
                }
            }
        }
        if obj.get("status").is_none() {
            obj["status"] = json!({"loadBalancer": {}});
        }
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        obj["status"] = json!({"loadBalancer": {}});
        normalize_cluster_ips(obj, None);
    }

    fn validate_name(&self, name: &str, prefix: bool) -> Vec<String> {
        k1s_apimachinery::meta::name_is_dns1035_label(name, prefix)
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        let errs = self.allocator_checks(obj);
        if !errs.is_empty() {
            return errs;
        }
        validate_service(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.allocator_checks(new);
        if !errs.is_empty() {
            return errs;
        }
        errs.extend(validate_cluster_ips_update(old, new));
        errs.extend(validate_ip_families_update(old, new));
        let (os, ns) = (old.f("spec"), new.f("spec"));
        if os.s("type") == "LoadBalancer"
            && ns.s("type") == "LoadBalancer"
            && os.f("loadBalancerClass") != ns.f("loadBalancerClass")
        {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("loadBalancerClass"),
                ns.f("loadBalancerClass").clone(),
                "may not change once set",
            ));
        }
        if needs_health_check(old)
            && needs_health_check(new)
            && health_check_port(new).is_some()
            && health_check_port(new) != health_check_port(old)
        {
            errs.push(FieldError::forbidden(
                &Path::new("spec").child("healthCheckNodePort"),
                "field is immutable",
            ));
        }
        errs.extend(validate_service(new));
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> ErrorList {
        validate_load_balancer_status(new)
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value, has_status: bool) {
        if has_status {
            new["status"] = old
                .get("status")
                .cloned()
                .unwrap_or(json!({"loadBalancer": {}}));
        }
        // patchAllocatedValues: an update that omits what was allocated keeps it.
        let needs_ip = |o: &Value| svc_type(o) != "ExternalName";
        if needs_ip(old) && needs_ip(new) {
            if new.f("spec").s("clusterIP").is_empty() && !old.f("spec").s("clusterIP").is_empty() {
                new["spec"]["clusterIP"] = old["spec"]["clusterIP"].clone();
            }
            if new.f("spec").a("clusterIPs").is_empty() && !old.f("spec").a("clusterIPs").is_empty()
            {
                new["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
            }
        }
        let needs_np = |o: &Value| matches!(svc_type(o), "NodePort" | "LoadBalancer");
        if needs_np(old) && needs_np(new) {
            // Node ports are matched by port name, like upstream.
            let by_name: Vec<(String, Value)> = old
                .f("spec")
                .a("ports")
                .iter()
                .map(|p| (p.s("name").to_string(), p.f("nodePort").clone()))
                .collect();
            if let Some(Value::Array(ports)) = new.get_mut("spec").and_then(|s| s.get_mut("ports"))
            {
                for p in ports {
                    if p.i("nodePort").unwrap_or(0) != 0 {
                        continue;
                    }
                    let name = p.s("name").to_string();
                    if let Some((_, np)) =
                        by_name.iter().find(|(n, np)| *n == name && !np.is_null())
                    {
                        p["nodePort"] = np.clone();
                    }
                }
            }
        }
        if needs_health_check(old)
            && needs_health_check(new)
            && health_check_port(new).is_none()
            && let Some(hc) = health_check_port(old)
        {
            new["spec"]["healthCheckNodePort"] = json!(hc);
        }
        normalize_cluster_ips(new, Some(old));
        drop_type_dependent_fields(new, old);
        trim_for_downgrade(new, old);
    }

    fn admit_create(&self, obj: &mut Value) -> Result<(), Status> {
        self.allocate(obj, None)
    }

    fn admit_update(&self, new: &mut Value, old: &Value) -> Result<(), Status> {
        self.allocate(new, Some(old))
    }

    fn release(&self, obj: &Value, old: Option<&Value>) {
        self.free(obj, old);
    }

    fn after_delete(&self, obj: &Value) {
        self.free(obj, None);
    }

    fn restore(&self, objects: &mut dyn Iterator<Item = Value>) {
        for obj in objects {
            let obj = &obj;
            if let Some(ip) = owned_ip(obj)
                && let Err(e) = self.alloc.ips.lock().allocate(ip)
            {
                tracing::warn!(service = meta::name(obj), error = %e, "cluster IP held twice");
            }
            if uses_node_ports(obj) {
                for p in node_ports(obj) {
                    if let Err(e) = self.alloc.ports.lock().allocate(p) {
                        tracing::warn!(service = meta::name(obj), port = p, error = %e, "node port held twice");
                    }
                }
            }
            if needs_health_check(obj)
                && let Some(p) = health_check_port(obj)
                && let Err(e) = self.alloc.ports.lock().allocate(p)
            {
                tracing::warn!(service = meta::name(obj), port = p, error = %e, "health check node port held twice");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    fn allocators() -> ServiceAllocators {
        ServiceAllocators::new("10.43.0.0/16".parse().unwrap())
    }

    #[test]
    fn cluster_ips_are_unique_and_requested_ips_honoured() {
        let s = ServiceStrategy::new(allocators());
        let mut a = json!({"metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}});
        s.default(&mut a);
        s.admit_create(&mut a).unwrap();
        let ip_a = cluster_ip(&a).unwrap().to_string();
        assert!(ip_a.starts_with("10.43."));
        let mut b = json!({"metadata": {"name": "b"}, "spec": {"clusterIP": ip_a, "ports": [{"port": 80}]}});
        let err = s.admit_create(&mut b).unwrap_err();
        assert_eq!(err.code(), 422);
        assert!(
            err.message.contains("provided IP is already allocated"),
            "{}",
            err.message
        );
        s.after_delete(&a);
        s.admit_create(&mut b).unwrap();
    }

    #[test]
    fn node_ports_are_allocated_in_range_and_restored() {
        let alloc = allocators();
        let s = ServiceStrategy::new(alloc.clone());
        let mut svc = json!({"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81, "nodePort": 30080}]}});
        s.default(&mut svc);
        s.admit_create(&mut svc).unwrap();
        let ports = node_ports(&svc);
        assert_eq!(ports.len(), 2);
        assert!(ports.iter().all(|p| (30000..=32767).contains(p)));
        assert!(ports.contains(&30080));
        // A restart rebuilds the allocators from the stored services.
        let fresh = ServiceStrategy::new(allocators());
        fresh.restore(&mut std::iter::once(svc.clone()));
        assert!(fresh.alloc.ports.lock().allocate(30080).is_err());
    }

    #[test]
    fn target_port_defaults_to_port() {
        let s = ServiceStrategy::new(allocators());
        let mut svc = json!({"spec": {"ports": [{"port": 8080}]}});
        s.default(&mut svc);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], json!(8080));
        assert_eq!(svc["spec"]["ports"][0]["protocol"], json!("TCP"));
    }

    #[test]
    fn port_names_are_dns1123_labels_so_kubectl_generated_names_pass() {
        // `kubectl create service clusterip s --tcp=80:8080` names its port "80-8080".
        let s = ServiceStrategy::new(allocators());
        let mut svc = json!({"metadata": {"name": "s", "namespace": "d"},
            "spec": {"ports": [{"name": "80-8080", "port": 80, "targetPort": 8080}]}});
        s.default(&mut svc);
        assert!(s.validate(&svc).is_empty(), "{:?}", s.validate(&svc));
        svc["spec"]["ports"][0]["name"] = json!("Bad_Name");
        assert_eq!(s.validate(&svc).len(), 1);
    }

    #[test]
    fn external_name_and_affinity_rules() {
        let s = ServiceStrategy::new(allocators());
        let mut svc = json!({"metadata": {"name": "x"}, "spec": {"type": "ExternalName",
            "externalName": "Bad_Host", "clusterIP": "10.43.0.5"}});
        s.default(&mut svc);
        s.prepare_for_create(&mut svc, true);
        let t = texts(s.validate(&svc));
        assert!(
            t.contains(
                &"spec.clusterIPs: Forbidden: may not be set for ExternalName services".to_string()
            ),
            "{t:?}"
        );
        assert!(
            t.iter().any(|e| e.starts_with(
                "spec.externalName: Invalid value: \"Bad_Host\": a lowercase RFC 1123 subdomain"
            )),
            "{t:?}"
        );
        let mut svc = json!({"metadata": {"name": "x"}, "spec": {"sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86401}}, "ports": [{"port": 80}]}});
        s.default(&mut svc);
        assert_eq!(
            texts(s.validate(&svc)),
            vec![
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be greater than 0 and less than 86400"
            ]
        );
    }

    #[test]
    fn cluster_ips_may_not_change_and_single_stack_clusters_refuse_dual_stack() {
        let s = ServiceStrategy::new(allocators());
        let old = json!({"spec": {"type": "ClusterIP", "clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "ports": [{"port": 80}]}});
        let mut new = old.clone();
        new["spec"]["clusterIP"] = json!("10.43.0.6");
        s.prepare_for_update(&mut new, &old, true);
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.43.0.6"]));
        let t = texts(validate_cluster_ips_update(&old, &new));
        assert_eq!(
            t,
            vec!["spec.clusterIPs[0]: Invalid value: [\"10.43.0.6\"]: may not change once set"]
        );
        let mut dual = json!({"metadata": {"name": "d"}, "spec": {"ipFamilyPolicy": "PreferDualStack",
            "ipFamilies": ["IPv4", "IPv6"], "ports": [{"port": 80}]}});
        s.default(&mut dual);
        assert_eq!(
            texts(s.validate(&dual)),
            vec!["spec.ipFamilies[1]: Invalid value: \"IPv6\": not configured on this cluster"]
        );
    }

    #[test]
    fn legacy_ip_fields_take_any_form_that_parses() {
        // IsValidIPForLegacyField with StrictIPCIDRValidation off (1.35's default):
        // non-canonical IPv6, leading zeros and IPv4-mapped IPv6 pass; only what does not
        // parse is refused.
        let s = ServiceStrategy::new(allocators());
        let mut svc = json!({"metadata": {"name": "x"}, "spec": {"clusterIP": "010.043.000.010",
            "externalIPs": ["2001:DB8::1", "010.1.2.3", "::ffff:1.2.3.4", "nope"],
            "ports": [{"port": 80}]}});
        s.default(&mut svc);
        s.prepare_for_create(&mut svc, true);
        assert_eq!(
            texts(s.validate(&svc)),
            vec![
                "spec.externalIPs[3]: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
            ]
        );
        // The requested cluster IP is held as the address it names and kept as written.
        svc["spec"]["externalIPs"] = json!([]);
        s.admit_create(&mut svc).unwrap();
        assert_eq!(svc["spec"]["clusterIPs"], json!(["010.043.000.010"]));
        assert!(
            s.alloc
                .ips
                .lock()
                .allocate("10.43.0.10".parse().unwrap())
                .is_err()
        );
        // An IPv4-mapped address is IPv4 to the family checks, as Go's To4() has it.
        let mut mapped = json!({"metadata": {"name": "m"}, "spec": {"clusterIP": "::ffff:10.43.0.11",
            "ipFamilies": ["IPv4"], "ports": [{"port": 80}]}});
        s.default(&mut mapped);
        s.prepare_for_create(&mut mapped, true);
        assert!(
            validate_cluster_ips(&mapped).is_empty(),
            "{:?}",
            texts(validate_cluster_ips(&mapped))
        );
        let lb = json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [
            {"ip": "2001:DB8::1", "ipMode": "VIP"}, {"ip": "1.2.3", "ipMode": "VIP"}]}}});
        assert_eq!(
            texts(validate_load_balancer_status(&lb)),
            vec![
                "status.loadBalancer.ingress[1].ip: Invalid value: \"1.2.3\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
            ]
        );
    }
}

//! Services: defaults, validation, and cluster IP and node port allocation.
//!
//! The services themselves are the record of what is allocated: the allocators live in
//! memory and are rebuilt from the stored services at start ([`Strategy::restore`]), so
//! a crash can neither leak nor double-allocate an address.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;
use k1s_apimachinery::validation::{is_dns1123_label, is_valid_port_num};
use k1s_apimachinery::{ErrorList, FieldError, GroupKind, Path, Status};
use parking_lot::Mutex;
use rand::Rng;
use serde_json::{Value, json};

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
}

/// The allocators shared by every version of the Service resource.
#[derive(Debug, Clone)]
pub struct ServiceAllocators {
    /// Cluster IPs.
    pub ips: Arc<Mutex<ClusterIpAllocator>>,
    /// Node ports.
    pub ports: Arc<Mutex<NodePortAllocator>>,
}

impl ServiceAllocators {
    /// Allocators over the service CIDR.
    pub fn new(service_cidr: IpNet) -> Self {
        Self {
            ips: Arc::new(Mutex::new(ClusterIpAllocator::new(service_cidr))),
            ports: Arc::new(Mutex::new(NodePortAllocator::default())),
        }
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

fn owned_ip(obj: &Value) -> Option<IpAddr> {
    cluster_ip(obj)
        .filter(|ip| *ip != "None")
        .and_then(|ip| ip.parse().ok())
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
        // Cluster IP.
        if !is_external && old_ip.is_none() && cluster_ip(obj) != Some("None") {
            let mut ips = self.alloc.ips.lock();
            let ip = match cluster_ip(obj) {
                Some(requested) => {
                    let ip: IpAddr = requested.parse().map_err(|_| {
                        invalid(
                            &name,
                            spec.child("clusterIPs").index(0),
                            json!(requested),
                            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into(),
                        )
                    })?;
                    ips.allocate(ip).map_err(|m| {
                        invalid(&name, spec.child("clusterIPs"), json!([requested]), m)
                    })?;
                    ip
                }
                None => ips.allocate_next().map_err(|m| {
                    Status::internal_error(&format!("failed to allocate a serviceIP: {m}"))
                })?,
            };
            obj["spec"]["clusterIP"] = json!(ip.to_string());
            obj["spec"]["clusterIPs"] = json!([ip.to_string()]);
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
    }
}

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const AFFINITIES: &[&str] = &["ClientIP", "None"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

impl Strategy for ServiceStrategy {
    fn default(&self, obj: &mut Value) {
        if !obj.get("spec").is_some_and(Value::is_object) {
            obj["spec"] = json!({});
        }
        let spec = &mut obj["spec"];
        default_path(spec, &["type"], json!("ClusterIP"));
        default_path(spec, &["sessionAffinity"], json!("None"));
        let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
        if ty != "ExternalName" {
            default_path(spec, &["ipFamilies"], json!(["IPv4"]));
            default_path(spec, &["ipFamilyPolicy"], json!("SingleStack"));
            default_path(spec, &["internalTrafficPolicy"], json!("Cluster"));
        }
        if ty == "NodePort" || ty == "LoadBalancer" {
            default_path(spec, &["externalTrafficPolicy"], json!("Cluster"));
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
        if spec.get("clusterIPs").is_none()
            && let Some(ip) = spec
                .get("clusterIP")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        {
            spec["clusterIPs"] = json!([ip]);
        }
        if obj.get("status").is_none() {
            obj["status"] = json!({"loadBalancer": {}});
        }
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        obj["status"] = json!({"loadBalancer": {}});
    }

    fn validate_name(&self, name: &str, prefix: bool) -> Vec<String> {
        k1s_apimachinery::meta::name_is_dns1035_label(name, prefix)
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = ErrorList::new();
        let spec = Path::new("spec");
        let ty = svc_type(obj);
        if !SERVICE_TYPES.contains(&ty) {
            errs.push(FieldError::not_supported(
                &spec.child("type"),
                json!(ty),
                SERVICE_TYPES,
            ));
        }
        if let Some(a) = get_path(obj, &["spec", "sessionAffinity"]).and_then(Value::as_str)
            && !AFFINITIES.contains(&a)
        {
            errs.push(FieldError::not_supported(
                &spec.child("sessionAffinity"),
                json!(a),
                AFFINITIES,
            ));
        }
        let ports = get_path(obj, &["spec", "ports"]).and_then(Value::as_array);
        let headless = cluster_ip(obj) == Some("None");
        if ty == "ExternalName" {
            if get_path(obj, &["spec", "externalName"])
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                errs.push(FieldError::required(&spec.child("externalName"), ""));
            }
        } else if ports.is_none_or(Vec::is_empty) && !headless {
            errs.push(FieldError::required(&spec.child("ports"), ""));
        }
        if let Some(ports) = ports {
            let multi = ports.len() > 1;
            let mut names: Vec<&str> = Vec::new();
            let mut seen: Vec<(i64, &str)> = Vec::new();
            for (i, p) in ports.iter().enumerate() {
                let pp = spec.child("ports").index(i);
                let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                if multi && name.is_empty() {
                    errs.push(FieldError::required(&pp.child("name"), ""));
                } else if !name.is_empty() {
                    // Port names are DNS-1123 labels (upstream validateServicePort), so
                    // kubectl's generated "80-8080" is valid.
                    for msg in is_dns1123_label(name) {
                        errs.push(FieldError::invalid(&pp.child("name"), json!(name), msg));
                    }
                    if names.contains(&name) {
                        errs.push(FieldError::duplicate(&pp.child("name"), json!(name)));
                    }
                    names.push(name);
                }
                match p.get("port").and_then(Value::as_i64) {
                    None => errs.push(FieldError::required(&pp.child("port"), "")),
                    Some(n) => {
                        for msg in is_valid_port_num(n) {
                            errs.push(FieldError::invalid(&pp.child("port"), json!(n), msg));
                        }
                        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                        if seen.contains(&(n, proto)) {
                            errs.push(FieldError::duplicate(
                                &pp,
                                json!({"port": n, "protocol": proto}),
                            ));
                        }
                        seen.push((n, proto));
                    }
                }
                if let Some(proto) = p.get("protocol").and_then(Value::as_str)
                    && !PROTOCOLS.contains(&proto)
                {
                    errs.push(FieldError::not_supported(
                        &pp.child("protocol"),
                        json!(proto),
                        PROTOCOLS,
                    ));
                }
                if let Some(np) = p.get("nodePort").and_then(Value::as_i64)
                    && np != 0
                    && !uses_node_ports(obj)
                {
                    errs.push(FieldError::forbidden(
                        &pp.child("nodePort"),
                        "may not be used when `type` is 'ClusterIP'",
                    ));
                }
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        let (new_ip, old_ip) = (cluster_ip(new), cluster_ip(old));
        if old_ip.is_some()
            && new_ip.is_some()
            && new_ip != old_ip
            && svc_type(new) != "ExternalName"
        {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("clusterIPs").index(0),
                json!(new_ip),
                "may not change once set",
            ));
        }
        errs
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value, has_status: bool) {
        if has_status {
            new["status"] = old
                .get("status")
                .cloned()
                .unwrap_or(json!({"loadBalancer": {}}));
        }
        // An update that omits the cluster IP keeps the allocated one (upstream
        // patchAllocatedValues), and likewise node ports.
        if cluster_ip(new).is_none()
            && svc_type(new) != "ExternalName"
            && let Some(ip) = cluster_ip(old)
        {
            new["spec"]["clusterIP"] = json!(ip);
            new["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
        }
        if uses_node_ports(new) && uses_node_ports(old) {
            let old_ports = get_path(old, &["spec", "ports"])
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(Value::Array(ports)) = new.get_mut("spec").and_then(|s| s.get_mut("ports"))
            {
                for p in ports {
                    if p.get("nodePort").and_then(Value::as_u64).unwrap_or(0) != 0 {
                        continue;
                    }
                    let same = old_ports.iter().find(|o| {
                        o.get("port") == p.get("port") && o.get("protocol") == p.get("protocol")
                    });
                    if let Some(np) = same.and_then(|o| o.get("nodePort")) {
                        p["nodePort"] = np.clone();
                    }
                }
            }
        }
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! EndpointSlices (upstream `ValidateEndpointSliceCreate`/`Update`,
//! `SetDefaults_EndpointPort` and the endpointslice strategy): the address type, which
//! never changes, addresses of that type, node names, topology labels, hostnames, zone
//! hints and ports.

use k1s_apimachinery::meta::{name_is_dns_subdomain, validate_labels};
use k1s_apimachinery::validation::{
    is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_label_value,
};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use crate::kinds::validation::invalid_each;
use crate::kinds::validation::ip::{ipv4_errors, ipv6_errors, non_special_ip_errors};
use crate::kinds::validation::{Fields, immutable_field, semantic_eq};
use crate::registry::Strategy;

/// The EndpointSlice strategy.
pub struct EndpointSliceStrategy;

const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const MAX_TOPOLOGY_LABELS: usize = 16;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;
const MAX_ENDPOINTS: usize = 1000;
const MAX_ZONE_HINTS: usize = 8;

/// `IsFullyQualifiedDomainName`.
fn fqdn_errors(path: &Path, name: &str) -> ErrorList {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let msgs = is_dns1123_subdomain(name);
    if !msgs.is_empty() {
        return vec![FieldError::invalid(path, name, msgs.join(","))];
    }
    if name.split('.').count() < 2 {
        return vec![FieldError::invalid(
            path,
            name,
            "should be a domain with at least two segments separated by dots",
        )];
    }
    for label in name.split('.') {
        let msgs = is_dns1123_label(label);
        if !msgs.is_empty() {
            return vec![FieldError::invalid(path, label, msgs.join(","))];
        }
    }
    Vec::new()
}

/// The `kubernetes` Service's slice, which k1s writes itself: a single-node k1s may
/// advertise a loopback address, which upstream's apiserver never does.
fn is_apiserver_slice(obj: &Value) -> bool {
    let m = obj.f("metadata");
    m.s("name") == "kubernetes"
        && m.s("namespace") == "default"
        && m.f("labels").s("kubernetes.io/service-name") == "kubernetes"
}

/// `validateEndpoints`.
fn validate_endpoints(obj: &Value, address_type: &str) -> ErrorList {
    let path = Path::new("endpoints");
    let endpoints = obj.a("endpoints");
    if endpoints.len() > MAX_ENDPOINTS {
        return vec![FieldError::too_many(
            &path,
            endpoints.len() as i64,
            MAX_ENDPOINTS as i64,
        )];
    }
    let allow_loopback = is_apiserver_slice(obj);
    let mut errs = ErrorList::new();
    for (i, ep) in endpoints.iter().enumerate() {
        let idx = path.index(i);
        let addr_path = idx.child("addresses");
        let addresses = ep.a("addresses");
        if addresses.is_empty() {
            errs.push(FieldError::required(
                &addr_path,
                "must contain at least 1 address",
            ));
        } else if addresses.len() > MAX_ADDRESSES {
            errs.push(FieldError::too_many(
                &addr_path,
                addresses.len() as i64,
                MAX_ADDRESSES as i64,
            ));
        }
        for (j, a) in addresses.iter().enumerate() {
            let a = a.as_str().unwrap_or_default();
            let p = addr_path.index(j);
            match address_type {
                "IPv4" | "IPv6" => {
                    let family = if address_type == "IPv4" {
                        ipv4_errors(a)
                    } else {
                        ipv6_errors(a)
                    };
                    errs.extend(invalid_each(a, &p, family));
                    errs.extend(invalid_each(
                        a,
                        &p,
                        non_special_ip_errors(a, allow_loopback),
                    ));
                }
                "FQDN" => errs.extend(fqdn_errors(&p, a)),
                // Unknown types are reported once, on addressType.
                _ => {}
            }
        }
        if let Some(node) = ep.get("nodeName").and_then(Value::as_str) {
            errs.extend(invalid_each(
                node,
                &idx.child("nodeName"),
                name_is_dns_subdomain(node, false),
            ));
        }
        let topology_path = idx.child("deprecatedTopology");
        let topology = ep.m("deprecatedTopology").map_or(0, |m| m.len());
        if topology > MAX_TOPOLOGY_LABELS {
            errs.push(FieldError::too_many(
                &topology_path,
                topology as i64,
                MAX_TOPOLOGY_LABELS as i64,
            ));
        }
        errs.extend(validate_labels(
            ep.get("deprecatedTopology"),
            &topology_path,
        ));
        if let Some(host) = ep.get("hostname").and_then(Value::as_str) {
            errs.extend(invalid_each(
                host,
                &idx.child("hostname"),
                is_dns1123_label(host),
            ));
        }
        if ep.has("hints") {
            errs.extend(validate_hints(ep.f("hints"), &idx.child("hints")));
        }
    }
    errs
}

/// `validateHints`: at most eight zones, each named once by a label value.
fn validate_hints(hints: &Value, path: &Path) -> ErrorList {
    let zones_path = path.child("forZones");
    let zones = hints.a("forZones");
    if zones.len() > MAX_ZONE_HINTS {
        return vec![FieldError::too_many(
            &zones_path,
            zones.len() as i64,
            MAX_ZONE_HINTS as i64,
        )];
    }
    let mut errs = ErrorList::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, zone) in zones.iter().enumerate() {
        let p = zones_path.index(i).child("name");
        let name = zone.s("name");
        if names.contains(&name) {
            errs.push(FieldError::duplicate(&p, name));
        } else {
            names.push(name);
        }
        errs.extend(invalid_each(name, &p, is_valid_label_value(name)));
    }
    errs
}

/// `validatePorts`.
fn validate_ports(ports: &[Value]) -> ErrorList {
    let path = Path::new("ports");
    if ports.len() > MAX_PORTS {
        return vec![FieldError::too_many(
            &path,
            ports.len() as i64,
            MAX_PORTS as i64,
        )];
    }
    let mut errs = ErrorList::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let idx = path.index(i);
        let name = port.s("name");
        if !name.is_empty() {
            errs.extend(invalid_each(
                name,
                &idx.child("name"),
                is_dns1123_label(name),
            ));
        }
        if names.contains(&name) {
            errs.push(FieldError::duplicate(&idx.child("name"), name));
        } else {
            names.push(name);
        }
        match port.get("protocol").and_then(Value::as_str) {
            None => errs.push(FieldError::required(&idx.child("protocol"), "")),
            Some(p) if !PROTOCOLS.contains(&p) => {
                errs.push(FieldError::not_supported(
                    &idx.child("protocol"),
                    p,
                    PROTOCOLS,
                ));
            }
            Some(_) => {}
        }
        if let Some(app) = port.get("appProtocol").and_then(Value::as_str) {
            errs.extend(invalid_each(
                app,
                &idx.child("appProtocol"),
                is_qualified_name(app),
            ));
        }
    }
    errs
}

/// `ValidateEndpointSlice`.
fn validate_slice(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let address_type = obj.s("addressType");
    let path = Path::new("addressType");
    if address_type.is_empty() {
        errs.push(FieldError::required(&path, ""));
    } else if !ADDRESS_TYPES.contains(&address_type) {
        errs.push(FieldError::not_supported(
            &path,
            address_type,
            ADDRESS_TYPES,
        ));
    }
    errs.extend(validate_endpoints(obj, address_type));
    errs.extend(validate_ports(obj.a("ports")));
    errs
}

/// v1 requests clear the deprecated topology of every endpoint (upstream
/// `dropTopologyOnV1`).
fn drop_topology(obj: &mut Value) {
    if let Some(eps) = obj.get_mut("endpoints").and_then(Value::as_array_mut) {
        for ep in eps.iter_mut().filter_map(Value::as_object_mut) {
            ep.remove("deprecatedTopology");
        }
    }
}

impl Strategy for EndpointSliceStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(ports) = obj.get_mut("ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                port.entry("name").or_insert_with(|| json!(""));
                port.entry("protocol").or_insert_with(|| json!("TCP"));
            }
        }
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        drop_topology(obj);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value, _has_status: bool) {
        // An update that leaves the endpoints alone keeps their old topology.
        if !semantic_eq(new.f("endpoints"), old.f("endpoints")) {
            drop_topology(new);
        }
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_slice(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = validate_slice(new);
        errs.extend(immutable_field(new, old, "addressType", &Path::root()));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    #[test]
    fn a_controller_written_slice_is_valid() {
        let mut obj = json!({
            "metadata": {"name": "web-abc12", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.42.0.7"], "conditions": {"ready": true}, "nodeName": "node-1", "zone": "a",
                           "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-1"}}],
            "ports": [{"name": "http", "port": 8080, "appProtocol": "http"}]
        });
        EndpointSliceStrategy.default(&mut obj);
        assert_eq!(obj["ports"][0]["protocol"], json!("TCP"));
        assert!(texts(EndpointSliceStrategy.validate(&obj)).is_empty());
    }

    #[test]
    fn addresses_follow_the_address_type() {
        let obj = json!({"addressType": "IPv4", "endpoints": [
            {"addresses": ["fe80::1", "169.254.0.1"]}, {"addresses": []}
        ], "ports": [{"name": "", "protocol": "TCP"}, {"name": "", "protocol": "HTTP"}]});
        assert_eq!(
            texts(EndpointSliceStrategy.validate(&obj)),
            vec![
                "endpoints[0].addresses[0]: Invalid value: \"fe80::1\": must be a valid IPv4 address",
                "endpoints[0].addresses[0]: Invalid value: \"fe80::1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
                "endpoints[0].addresses[1]: Invalid value: \"169.254.0.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
                "endpoints[1].addresses: Required value: must contain at least 1 address",
                "ports[1].name: Duplicate value: \"\"",
                "ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ]
        );
    }

    #[test]
    fn fqdn_addresses() {
        let p = Path::new("a");
        assert!(fqdn_errors(&p, "example.com.").is_empty());
        assert_eq!(
            fqdn_errors(&p, "localhost")[0].to_string(),
            "a: Invalid value: \"localhost\": should be a domain with at least two segments separated by dots"
        );
    }
}

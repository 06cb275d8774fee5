//! Endpoints: upstream's `SetDefaults_Endpoints` and `ValidateEndpoints` (addresses,
//! ports, no special IPs). An update of a missing Endpoints object creates it.

use k1s_apimachinery::meta::name_is_dns_subdomain;
use k1s_apimachinery::validation::{is_dns1123_label, is_qualified_name, is_valid_port_num};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use crate::kinds::validation::Fields;
use crate::kinds::validation::invalid_each;
use crate::kinds::validation::ip::legacy_ip_errors;
pub use crate::kinds::validation::ip::validate_non_special_ip;
use crate::meta::{self, default_path};
use crate::registry::Strategy;

/// The Endpoints strategy.
pub struct EndpointsStrategy;

/// The protocols of service, endpoint and container ports, sorted as upstream lists them.
pub const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn validate_address(address: &Value, path: &Path, special_ok: bool) -> ErrorList {
    let ip = address.s("ip");
    // A legacy field: IsValidIPForLegacyField, strict validation off by default in 1.35.
    let mut errs = invalid_each(ip, &path.child("ip"), legacy_ip_errors(ip));
    let hostname = address.s("hostname");
    if !hostname.is_empty() {
        errs.extend(invalid_each(
            hostname,
            &path.child("hostname"),
            is_dns1123_label(hostname),
        ));
    }
    if let Some(node) = address.get("nodeName").and_then(Value::as_str) {
        errs.extend(invalid_each(
            node,
            &path.child("nodeName"),
            name_is_dns_subdomain(node, false),
        ));
    }
    if !special_ok {
        errs.extend(validate_non_special_ip(ip, &path.child("ip")));
    }
    errs
}

fn validate_port(port: &Value, require_name: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = port.s("name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(invalid_each(
            name,
            &path.child("name"),
            is_dns1123_label(name),
        ));
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
    if let Some(app) = port.get("appProtocol").and_then(Value::as_str) {
        errs.extend(invalid_each(
            app,
            &path.child("appProtocol"),
            is_qualified_name(app),
        ));
    }
    errs
}

/// Upstream's `ValidateEndpoints` without the metadata (the registry checks that).
///
/// One deviation: the apiserver's own `default/kubernetes` Endpoints may hold a loopback
/// address. k1s advertises 127.0.0.1 when it finds no other address (a single-node
/// server, the tests), where upstream's apiserver needs a routable one.
pub fn validate_endpoints(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let special_ok = meta::namespace(obj) == "default" && meta::name(obj) == "kubernetes";
    let subsets = Path::new("subsets");
    for (i, ss) in obj.a("subsets").iter().enumerate() {
        let p = subsets.index(i);
        let (ready, not_ready) = (ss.a("addresses"), ss.a("notReadyAddresses"));
        if ready.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                &p,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (j, a) in ready.iter().enumerate() {
            errs.extend(validate_address(
                a,
                &p.child("addresses").index(j),
                special_ok,
            ));
        }
        for (j, a) in not_ready.iter().enumerate() {
            errs.extend(validate_address(
                a,
                &p.child("notReadyAddresses").index(j),
                special_ok,
            ));
        }
        let ports = ss.a("ports");
        for (j, port) in ports.iter().enumerate() {
            errs.extend(validate_port(
                port,
                ports.len() > 1,
                &p.child("ports").index(j),
            ));
        }
    }
    errs
}

impl Strategy for EndpointsStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(subsets) = obj.get_mut("subsets").and_then(Value::as_array_mut) else {
            return;
        };
        for ss in subsets {
            if let Some(ports) = ss.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    default_path(p, &["protocol"], json!("TCP"));
                }
            }
        }
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_endpoints(obj)
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    #[test]
    fn a_controller_written_endpoints_object_passes() {
        let mut ep = json!({"subsets": [{
            "addresses": [{"ip": "10.42.0.5", "nodeName": "node-1",
                "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "default"}}],
            "notReadyAddresses": [{"ip": "fd00::5", "hostname": "web-1"}],
            "ports": [{"name": "http", "port": 80}, {"name": "metrics", "port": 9090, "appProtocol": "http"}]}]});
        EndpointsStrategy.default(&mut ep);
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], json!("TCP"));
        assert!(
            validate_endpoints(&ep).is_empty(),
            "{:?}",
            validate_endpoints(&ep)
        );
    }

    #[test]
    fn addresses_are_a_legacy_ip_field() {
        // IsValidIPForLegacyField with strict validation off: any form that parses.
        let ep = json!({"subsets": [{"addresses": [{"ip": "2001:DB8::5"}, {"ip": "010.42.0.5"}, {"ip": "10.42.0"}],
            "ports": [{"port": 80, "protocol": "TCP"}]}]});
        assert_eq!(
            texts(validate_endpoints(&ep)),
            vec![
                "subsets[0].addresses[2].ip: Invalid value: \"10.42.0\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "subsets[0].addresses[2].ip: Invalid value: \"10.42.0\": must be a valid IP address",
            ]
        );
    }

    #[test]
    fn special_addresses_and_unnamed_ports_are_refused() {
        let ep = json!({"subsets": [
            {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 80, "protocol": "TCP"}, {"name": "b", "port": 81, "protocol": "TCP"}]},
            {"ports": [{"port": 80, "protocol": "TCP"}]}]});
        let t = texts(validate_endpoints(&ep));
        assert_eq!(
            t,
            vec![
                "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "subsets[0].ports[0].name: Required value",
                "subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`",
            ]
        );
        let t = texts(validate_non_special_ip("169.254.169.254", &Path::new("ip")));
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(
            validate_non_special_ip("0.0.0.0", &Path::new("ip"))[0]
                .to_string()
                .ends_with("may not be unspecified (0.0.0.0)")
        );
    }
}

//! NetworkPolicies (upstream `ValidateNetworkPolicy`, `ValidateNetworkPolicyUpdate`,
//! `SetDefaults_NetworkPolicy`/`_NetworkPolicyPort`): selectors, ports, peers, ipBlocks
//! and policy types.

use k1s_apimachinery::goformat::{go_strings, invalid_go};
use k1s_apimachinery::meta::{label_selector_has_errors, validate_label_selector_with};
use k1s_apimachinery::validation::{is_valid_port_name, is_valid_port_num};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use crate::kinds::validation::Fields;
use crate::kinds::validation::ip::{legacy_cidr_errors, parse_cidr_sloppy};
use crate::kinds::validation::list_of;
use crate::registry::Strategy;

/// The NetworkPolicy strategy.
pub struct NetworkPolicyStrategy;

const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
const POLICY_TYPES: &[&str] = &["Ingress", "Egress"];

/// Upstream's `NetworkPolicyValidationOptions`. (Its `AllowCIDRsEvenIfInvalid` changes
/// nothing clients see: the strategy validates the new policy once without it, and with
/// strict CIDR validation off only unparseable CIDRs fail, which are never stored.)
#[derive(Default)]
struct Options {
    allow_invalid_label_values: bool,
}

/// `ValidateNetworkPolicyPort`.
fn validate_port(port: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(proto) = port.get("protocol").and_then(Value::as_str)
        && !PROTOCOLS.contains(&proto)
    {
        errs.push(FieldError::not_supported(
            &path.child("protocol"),
            proto,
            PROTOCOLS,
        ));
    }
    let end_port = port.i("endPort");
    match port.get("port") {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            for msg in is_valid_port_num(n) {
                errs.push(FieldError::invalid(&path.child("port"), n, msg));
            }
            if let Some(end) = end_port {
                if end < n {
                    errs.push(FieldError::invalid(
                        &path.child("endPort"),
                        end,
                        "must be greater than or equal to `port`",
                    ));
                }
                for msg in is_valid_port_num(end) {
                    errs.push(FieldError::invalid(&path.child("endPort"), end, msg));
                }
            }
        }
        Some(Value::String(name)) => {
            if let Some(end) = end_port {
                errs.push(FieldError::invalid(
                    &path.child("endPort"),
                    end,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            for msg in is_valid_port_name(name) {
                errs.push(FieldError::invalid(&path.child("port"), name.as_str(), msg));
            }
        }
        _ => {
            if let Some(end) = end_port {
                errs.push(FieldError::invalid(
                    &path.child("endPort"),
                    end,
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
    errs
}

/// `ValidateIPBlock`.
fn validate_ip_block(block: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let cidr = block.s("cidr");
    if cidr.is_empty() {
        errs.push(FieldError::required(&path.child("cidr"), ""));
        return errs;
    }
    for msg in legacy_cidr_errors(cidr) {
        errs.push(FieldError::invalid(&path.child("cidr"), cidr, msg));
    }
    let Some(net) = parse_cidr_sloppy(cidr) else {
        return errs;
    };
    for (i, except) in block.a("except").iter().enumerate() {
        let except = except.as_str().unwrap_or_default();
        let except_path = path.child("except").index(i);
        for msg in legacy_cidr_errors(except) {
            errs.push(FieldError::invalid(&except_path, except, msg));
        }
        let Some(ex) = parse_cidr_sloppy(except) else {
            continue;
        };
        if !net.contains(ex.network()) || net.prefix >= ex.prefix {
            errs.push(FieldError::invalid(
                &except_path,
                except,
                "must be a strict subset of `cidr`",
            ));
        }
    }
    errs
}

/// `ValidateNetworkPolicyPeer`.
fn validate_peer(peer: &Value, path: &Path, opts: &Options) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut peers = 0;
    for key in ["podSelector", "namespaceSelector"] {
        if peer.has(key) {
            peers += 1;
            errs.extend(validate_label_selector_with(
                peer.get(key),
                opts.allow_invalid_label_values,
                &path.child(key),
            ));
        }
    }
    let has_block = peer.has("ipBlock");
    if has_block {
        peers += 1;
        errs.extend(validate_ip_block(peer.f("ipBlock"), &path.child("ipBlock")));
    }
    if peers == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if peers > 1 && has_block {
        errs.push(FieldError::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
    errs
}

/// `ValidateNetworkPolicySpec`.
fn validate_spec(spec: &Value, opts: &Options) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = validate_label_selector_with(
        Some(spec.get("podSelector").unwrap_or(&json!({}))),
        opts.allow_invalid_label_values,
        &path.child("podSelector"),
    );
    for (direction, peers_key) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in spec.a(direction).iter().enumerate() {
            let rule_path = path.child(direction).index(i);
            for (j, port) in rule.a("ports").iter().enumerate() {
                errs.extend(validate_port(port, &rule_path.child("ports").index(j)));
            }
            for (j, peer) in rule.a(peers_key).iter().enumerate() {
                errs.extend(validate_peer(
                    peer,
                    &rule_path.child(peers_key).index(j),
                    opts,
                ));
            }
        }
    }
    let types = spec.a("policyTypes");
    if types.len() > POLICY_TYPES.len() {
        errs.push(invalid_go(
            &path.child("policyTypes"),
            go_strings("networking.PolicyType", list_of(spec, "policyTypes")),
            "may not specify more than two policyTypes",
        ));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        let t = t.as_str().unwrap_or_default();
        if !POLICY_TYPES.contains(&t) {
            errs.push(FieldError::not_supported(
                &path.child("policyTypes").index(i),
                t,
                POLICY_TYPES,
            ));
        }
    }
    errs
}

fn default_ports(rules: Option<&mut Value>) {
    let Some(rules) = rules.and_then(Value::as_array_mut) else {
        return;
    };
    for rule in rules {
        if let Some(ports) = rule.get_mut("ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                port.entry("protocol").or_insert_with(|| json!("TCP"));
            }
        }
    }
}

impl Strategy for NetworkPolicyStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        default_ports(spec.get_mut("ingress"));
        default_ports(spec.get_mut("egress"));
        let empty = spec
            .get("policyTypes")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if empty {
            // A policy without policyTypes is an Ingress policy, and an Egress one too
            // when it has egress rules.
            let egress = spec
                .get("egress")
                .and_then(Value::as_array)
                .is_some_and(|e| !e.is_empty());
            let types = if egress {
                json!(["Ingress", "Egress"])
            } else {
                json!(["Ingress"])
            };
            spec.insert("policyTypes".into(), types);
        }
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec(obj.f("spec"), &Options::default())
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let opts = Options {
            allow_invalid_label_values: label_selector_has_errors(Some(
                old.f("spec").get("podSelector").unwrap_or(&json!({})),
            )),
        };
        validate_spec(new.f("spec"), &opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    #[test]
    fn the_docs_policy_is_valid_and_gets_its_defaults() {
        let mut obj = json!({"metadata": {"name": "test-network-policy"}, "spec": {
            "podSelector": {"matchLabels": {"role": "db"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [
                {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
                {"podSelector": {"matchLabels": {"role": "frontend"}}}
            ], "ports": [{"protocol": "TCP", "port": 6379}]}],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"port": 32000, "endPort": 32768}]}]
        }});
        NetworkPolicyStrategy.default(&mut obj);
        assert_eq!(
            obj["spec"]["egress"][0]["ports"][0]["protocol"],
            json!("TCP")
        );
        assert!(texts(NetworkPolicyStrategy.validate(&obj)).is_empty());
        let mut deny = json!({"spec": {"podSelector": {}, "egress": [{}]}});
        NetworkPolicyStrategy.default(&mut deny);
        assert_eq!(deny["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    }

    #[test]
    fn peers_ports_and_types() {
        let obj = json!({"spec": {"podSelector": {}, "ingress": [{"from": [
            {},
            {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}, "podSelector": {}}
        ], "ports": [{"port": "http", "endPort": 90}]}], "policyTypes": ["Ingress", "Egress", "Ingress"]}});
        assert_eq!(
            texts(NetworkPolicyStrategy.validate(&obj)),
            vec![
                "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
                "spec.ingress[0].from[0]: Required value: must specify a peer",
                "spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: \"10.1.0.0/24\": must be a strict subset of `cidr`",
                "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
                "spec.policyTypes: Invalid value: []networking.PolicyType{\"Ingress\", \"Egress\", \"Ingress\"}: may not specify more than two policyTypes",
            ]
        );
    }
}

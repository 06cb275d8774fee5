//! Nodes: upstream's `ValidateNode`/`ValidateNodeUpdate` (taints, pod CIDRs that may only
//! be set once, provider ID, resource quantities), status accepted on create, and
//! `spec.unschedulable` selectable.

use std::collections::HashSet;

use k1s_apimachinery::meta::validate_label_name;
use k1s_apimachinery::validation::is_valid_label_value;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use crate::kinds::validation::Fields;
use crate::kinds::validation::ip::{cidr_is_ipv4, validate_legacy_cidr};
use crate::kinds::validation::resources::{quantity_of, validate_resource_quantity_value};
use crate::meta;
use crate::registry::Strategy;

/// The Node strategy.
pub struct NodeStrategy;

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// Upstream's `validateNodeTaints`, reported (like upstream) under `metadata.taints`.
fn validate_taints(taints: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for (i, t) in taints.iter().enumerate() {
        let p = path.index(i);
        let (key, effect) = (t.s("key"), t.s("effect"));
        errs.extend(validate_label_name(key, &p.child("key")));
        let value = t.s("value");
        let msgs = is_valid_label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &p.child("value"),
                value,
                msgs.join(";"),
            ));
        }
        if effect.is_empty() {
            errs.push(FieldError::required(&p.child("effect"), ""));
        } else if !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(
                &p.child("effect"),
                effect,
                TAINT_EFFECTS,
            ));
        }
        if !seen.insert((key, effect)) {
            let mut dup = FieldError::duplicate(&p, t.clone());
            dup.detail = "taints must be unique by key and effect pair".into();
            errs.push(dup);
        }
    }
    errs
}

/// Upstream's `ValidateNodeResources`: capacity and allocatable quantities.
fn validate_resources(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    for key in ["capacity", "allocatable"] {
        for (k, v) in obj.f("status").m(key).into_iter().flatten() {
            if let Some(q) = quantity_of(v) {
                errs.extend(validate_resource_quantity_value(
                    k,
                    &q,
                    &Path::new("status").child(key).child(k),
                ));
            }
        }
    }
    errs
}

fn validate(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let taints = obj.f("spec").a("taints");
    if !taints.is_empty() {
        errs.extend(validate_taints(
            taints,
            &Path::new("metadata").child("taints"),
        ));
    }
    errs.extend(validate_resources(obj));
    let cidrs = obj.f("spec").a("podCIDRs");
    if !cidrs.is_empty() {
        let p = Path::new("spec").child("podCIDRs");
        let values: Vec<&str> = cidrs.iter().map(|c| c.as_str().unwrap_or("")).collect();
        for (i, c) in values.iter().enumerate() {
            errs.extend(validate_legacy_cidr(c, &p.index(i)));
        }
        if values.len() > 1 {
            // `netutils.IsDualStackCIDRStrings`: two parsable CIDRs of different families.
            let families: Vec<bool> = values.iter().filter_map(|c| cidr_is_ipv4(c)).collect();
            let dual = families.len() == 2 && families[0] != families[1];
            if !dual || values.len() > 2 {
                errs.push(FieldError::invalid(
                    &p,
                    obj.f("spec").f("podCIDRs").clone(),
                    "may specify no more than one CIDR for each IP family",
                ));
            }
            let mut seen: HashSet<&str> = HashSet::new();
            for (i, c) in values.iter().enumerate() {
                if !seen.insert(c) {
                    errs.push(FieldError::duplicate(&p.index(i), *c));
                }
            }
        }
    }
    errs
}

/// Upstream's `ValidateNodeUpdate` (it does not validate the new node's own spec again).
fn validate_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_resources(new);
    // Upstream keys a map by the NodeAddress struct: its type and address.
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for (i, a) in new.f("status").a("addresses").iter().enumerate() {
        if !seen.insert((a.s("type"), a.s("address"))) {
            errs.push(FieldError::duplicate(
                &Path::new("status").child("addresses").index(i),
                a.clone(),
            ));
        }
    }
    let msg = "node updates may not change podCIDR except from \"\" to valid";
    let (old_cidrs, new_cidrs) = (old.f("spec").a("podCIDRs"), new.f("spec").a("podCIDRs"));
    if !old_cidrs.is_empty() {
        let p = Path::new("spec").child("podCIDRs");
        if old_cidrs.len() != new_cidrs.len() {
            errs.push(FieldError::forbidden(&p, msg));
        } else {
            for (o, n) in old_cidrs.iter().zip(new_cidrs) {
                if o != n {
                    errs.push(FieldError::forbidden(&p, msg));
                }
            }
        }
    }
    let old_provider = old.f("spec").s("providerID");
    if !old_provider.is_empty() && old_provider != new.f("spec").s("providerID") {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("providerID"),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    let taints = new.f("spec").a("taints");
    if !taints.is_empty() {
        errs.extend(validate_taints(
            taints,
            &Path::new("metadata").child("taints"),
        ));
    }
    if new.f("spec").s("externalID") != old.f("spec").s("externalID") {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("externalID"),
            "may not be updated",
        ));
    }
    errs
}

impl Strategy for NodeStrategy {
    fn default(&self, obj: &mut Value) {
        // v1 keeps podCIDR and podCIDRs in step (the conversion through the internal
        // type): podCIDR alone becomes the only podCIDRs entry, and the first entry is
        // podCIDR.
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            let single = spec
                .get("podCIDR")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            let first = spec
                .get("podCIDRs")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .cloned();
            match (single, first) {
                (Some(s), None) => {
                    spec.insert("podCIDRs".into(), json!([s]));
                }
                (_, Some(f)) => {
                    spec.insert("podCIDR".into(), f);
                }
                _ => {}
            }
        }
        // SetDefaults_NodeStatus: allocatable defaults to capacity.
        if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut)
            && !status.contains_key("allocatable")
            && let Some(cap) = status.get("capacity").cloned()
        {
            status.insert("allocatable".into(), cap);
        }
    }

    fn prepare_for_create(&self, _obj: &mut Value, _has_status: bool) {
        // Nodes may set their status on create (the kubelet registers that way).
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = validate(new);
        errs.extend(validate_update(new, old));
        errs
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> ErrorList {
        validate_update(new, old)
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let unsched = meta::get_path(obj, &["spec", "unschedulable"])
            .and_then(Value::as_bool)
            .unwrap_or(false);
        vec![("spec.unschedulable", unsched.to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    #[test]
    fn pod_cidrs_parse_sloppily_like_legacy_fields() {
        // IsValidCIDRForLegacyField with strict validation off: Go's sloppy parser takes
        // leading zeros; families come from the same parser.
        let ok = json!({"metadata": {"name": "n"}, "spec": {"podCIDRs": ["010.42.0.0/24", "fd00::/64"]}});
        assert!(validate(&ok).is_empty(), "{:?}", texts(validate(&ok)));
        let bad = json!({"metadata": {"name": "n"}, "spec": {"podCIDRs": ["10.42.0.0", "010.43.0.0/24"]}});
        assert_eq!(
            texts(validate(&bad)),
            vec![
                "spec.podCIDRs[0]: Invalid value: \"10.42.0.0\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                "spec.podCIDRs: Invalid value: [\"10.42.0.0\",\"010.43.0.0/24\"]: may specify no more than one CIDR for each IP family",
            ]
        );
    }

    #[test]
    fn a_kubelet_registration_passes_and_keeps_its_status() {
        let mut node = json!({"metadata": {"name": "node-1"},
            "spec": {"podCIDR": "10.42.0.0/24", "providerID": "k1s://node-1",
                "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "node-1"}]}});
        NodeStrategy.default(&mut node);
        NodeStrategy.prepare_for_create(&mut node, true);
        assert_eq!(node["spec"]["podCIDRs"], json!(["10.42.0.0/24"]));
        assert_eq!(node["status"]["allocatable"]["pods"], json!("110"));
        assert!(
            NodeStrategy.validate(&node).is_empty(),
            "{:?}",
            NodeStrategy.validate(&node)
        );
    }

    #[test]
    fn pod_cidrs_and_provider_id_are_set_once() {
        let old = json!({"spec": {"podCIDRs": ["10.42.0.0/24"], "podCIDR": "10.42.0.0/24", "providerID": "a"}});
        let fresh = json!({"spec": {}});
        assert!(NodeStrategy.validate_update(&old, &fresh).is_empty());
        let new = json!({"spec": {"podCIDRs": ["10.42.1.0/24"], "podCIDR": "10.42.1.0/24", "providerID": "b"}});
        assert_eq!(
            texts(NodeStrategy.validate_update(&new, &old)),
            vec![
                "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid",
                "spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid",
            ]
        );
    }

    #[test]
    fn taints_are_checked_under_metadata_taints() {
        let node = json!({"spec": {"taints": [{"key": "a", "effect": "Sometimes"}, {"key": "b"},
            {"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"}]}});
        let t = texts(NodeStrategy.validate(&node));
        assert_eq!(
            t,
            vec![
                "metadata.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
                "metadata.taints[1].effect: Required value",
                "metadata.taints[3]: Duplicate value: {\"key\":\"a\",\"effect\":\"NoSchedule\"}: taints must be unique by key and effect pair",
            ]
        );
    }

    #[test]
    fn long_address_lists_report_each_repeat_in_order() {
        // Every kubelet status update runs this: 40,000 addresses, every fourth a repeat
        // of the one before it, are checked with a set (pairwise, this took minutes).
        let addresses: Vec<Value> = (0..40_000)
            .map(|i| {
                let n = i - usize::from(i % 4 == 3);
                json!({"type": "InternalIP", "address": format!("10.0.{}.{}", n / 256, n % 256)})
            })
            .collect();
        let mut new = json!({"status": {"addresses": addresses}});
        let errs = texts(NodeStrategy.validate_update(&new, &json!({})));
        assert_eq!(errs.len(), 10_000);
        assert_eq!(
            errs[0],
            "status.addresses[3]: Duplicate value: {\"type\":\"InternalIP\",\"address\":\"10.0.0.2\"}"
        );
        // The type is part of what makes an address the same one.
        new["status"]["addresses"][3]["type"] = json!("ExternalIP");
        let errs = texts(NodeStrategy.validate_update(&new, &json!({})));
        assert_eq!(errs.len(), 9_999);
        assert!(errs[0].starts_with("status.addresses[7]: "), "{}", errs[0]);
    }
}

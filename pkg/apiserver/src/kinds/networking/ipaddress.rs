//! IPAddresses (upstream `ValidateIPAddress`, `ValidateIPAddressUpdate`): the name is an
//! IP in canonical form, and the parent reference is required and never changes.

use k1s_apimachinery::goformat::invalid_go;
use k1s_apimachinery::goformat::quote;
use k1s_apimachinery::validation::{is_dns1123_subdomain, is_valid_ip, validate_path_segment_name};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::validation::{Fields, semantic_eq};
use crate::registry::Strategy;

/// The IPAddress strategy.
pub struct IpAddressStrategy;

/// `validateIPAddressParentReference`.
fn validate_parent_ref(spec: &Value) -> ErrorList {
    let path = Path::new("spec").child("parentRef");
    let mut errs = ErrorList::new();
    if !spec.has("parentRef") {
        errs.push(FieldError::required(&path, ""));
        return errs;
    }
    let r = spec.f("parentRef");
    let group = r.s("group");
    // The core group (Services) is "", so a group can not be required.
    if !group.is_empty() {
        for msg in is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid(&path.child("group"), group, msg));
        }
    }
    for key in ["resource", "name"] {
        let v = r.s(key);
        if v.is_empty() {
            errs.push(FieldError::required(&path.child(key), ""));
        } else {
            for msg in validate_path_segment_name(v, false) {
                errs.push(FieldError::invalid(&path.child(key), v, msg));
            }
        }
    }
    let ns = r.s("namespace");
    if !ns.is_empty() {
        for msg in validate_path_segment_name(ns, false) {
            errs.push(FieldError::invalid(&path.child("namespace"), ns, msg));
        }
    }
    errs
}

/// `%#v` of a `*networking.ParentReference` (`null` when absent).
fn go_parent_ref(spec: &Value) -> String {
    if !spec.has("parentRef") {
        return "null".to_string();
    }
    let r = spec.f("parentRef");
    format!(
        "networking.ParentReference{{Group:{}, Resource:{}, Namespace:{}, Name:{}}}",
        quote(r.s("group")),
        quote(r.s("resource")),
        quote(r.s("namespace")),
        quote(r.s("name"))
    )
}

impl Strategy for IpAddressStrategy {
    fn validate_name(&self, name: &str, _prefix: bool) -> Vec<String> {
        // Upstream checks the name itself even for a generateName (it generates none).
        is_valid_ip(name)
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_parent_ref(obj.f("spec"))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = validate_parent_ref(new.f("spec"));
        let (n, o) = (new.f("spec"), old.f("spec"));
        if !semantic_eq(n.f("parentRef"), o.f("parentRef"))
            || n.has("parentRef") != o.has("parentRef")
        {
            errs.push(invalid_go(
                &Path::new("spec").child("parentRef"),
                go_parent_ref(n),
                "field is immutable",
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_are_canonical_ips_and_parents_are_fixed() {
        assert!(
            IpAddressStrategy
                .validate_name("10.96.0.10", false)
                .is_empty()
        );
        assert!(
            IpAddressStrategy
                .validate_name("2001:db8::1", false)
                .is_empty()
        );
        assert_eq!(
            IpAddressStrategy.validate_name("2001:db8:0::1", false),
            vec!["must be in canonical form (\"2001:db8::1\")"]
        );
        let old = json!({"spec": {"parentRef": {"resource": "services", "namespace": "default", "name": "a"}}});
        let new = json!({"spec": {"parentRef": {"resource": "services", "namespace": "default", "name": "b"}}});
        assert_eq!(
            IpAddressStrategy.validate_update(&new, &old)[0].to_string(),
            "spec.parentRef: Invalid value: networking.ParentReference{Group:\"\", Resource:\"services\", Namespace:\"default\", Name:\"b\"}: field is immutable"
        );
        assert_eq!(
            IpAddressStrategy.validate(&json!({"spec": {}}))[0].to_string(),
            "spec.parentRef: Required value"
        );
    }
}

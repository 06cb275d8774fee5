//! ServiceCIDRs (upstream `ValidateServiceCIDR`, `ValidateServiceCIDRUpdate` and the
//! servicecidr strategy): one or two canonical CIDRs, one per family, that never change
//! except that a single-stack range may gain its second family.

use k1s_apimachinery::goformat::{go_strings, invalid_go};
use k1s_apimachinery::meta::FIELD_IMMUTABLE_ERROR_MSG;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::validation::Fields;
use crate::kinds::validation::ip::{cidr_is_ipv4, strict_cidr_errors};
use crate::kinds::validation::list_of;
use crate::registry::Strategy;

/// The ServiceCIDR strategy.
pub struct ServiceCidrStrategy;

fn cidrs_path() -> Path {
    Path::new("spec").child("cidrs")
}

/// `validateServiceCIDRSpec`.
fn validate_spec(spec: &Value) -> ErrorList {
    let path = cidrs_path();
    let mut errs = ErrorList::new();
    let cidrs = spec.a("cidrs");
    if cidrs.is_empty() {
        errs.push(FieldError::required(&path, "at least one CIDR required"));
        return errs;
    }
    if cidrs.len() > 2 {
        errs.push(invalid_go(
            &path,
            format!(
                "networking.ServiceCIDRSpec{{CIDRs:{}}}",
                go_strings("string", list_of(spec, "cidrs"))
            ),
            "may only hold up to 2 values",
        ));
        return errs;
    }
    for (i, cidr) in cidrs.iter().enumerate() {
        let cidr = cidr.as_str().unwrap_or_default();
        for msg in strict_cidr_errors(cidr) {
            errs.push(FieldError::invalid(&path.index(i), cidr, msg));
        }
    }
    if let [a, b] = cidrs {
        let fa = cidr_is_ipv4(a.as_str().unwrap_or_default());
        if fa.is_some() && fa == cidr_is_ipv4(b.as_str().unwrap_or_default()) {
            errs.push(invalid_go(
                &path,
                go_strings("string", list_of(spec, "cidrs")),
                "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64",
            ));
        }
    }
    errs
}

impl Strategy for ServiceCidrStrategy {
    // Upstream's strategy neither clears the status on create nor keeps the stored one on
    // a main-resource update; only /status resets the spec.
    fn prepare_for_create(&self, _obj: &mut Value, _has_status: bool) {}

    fn prepare_for_update(&self, _new: &mut Value, _old: &Value, _has_status: bool) {}

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec(obj.f("spec"))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let (new_spec, old_spec) = (new.f("spec"), old.f("spec"));
        let (n, o) = (new_spec.a("cidrs"), old_spec.a("cidrs"));
        let mut errs = ErrorList::new();
        if n.len() == o.len() {
            for (i, (a, b)) in n.iter().zip(o).enumerate() {
                if a != b {
                    errs.push(FieldError::invalid(
                        &cidrs_path().index(i),
                        a.clone(),
                        FIELD_IMMUTABLE_ERROR_MSG,
                    ));
                }
            }
        } else if o.len() == 1 && n.len() == 2 {
            // Adding the second family (issue 131261) is the one change allowed.
            if n[0] != o[0] {
                errs.push(FieldError::invalid(
                    &cidrs_path().index(0),
                    n[0].clone(),
                    FIELD_IMMUTABLE_ERROR_MSG,
                ));
            }
            errs.extend(validate_spec(new_spec));
        } else {
            errs.push(invalid_go(
                &cidrs_path(),
                go_strings("string", list_of(new_spec, "cidrs")),
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        errs
    }

    fn validate_status_update(&self, _new: &Value, _old: &Value) -> ErrorList {
        ErrorList::new()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_util::texts;

    #[test]
    fn cidrs_are_canonical_and_one_per_family() {
        let s = ServiceCidrStrategy;
        assert!(
            s.validate(&json!({"spec": {"cidrs": ["10.96.0.0/12", "fd00::/108"]}}))
                .is_empty()
        );
        assert_eq!(
            texts(s.validate(&json!({"spec": {"cidrs": ["10.96.0.0/12", "10.0.0.0/16"]}}))),
            vec![
                "spec.cidrs: Invalid value: []string{\"10.96.0.0/12\", \"10.0.0.0/16\"}: may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64"
            ]
        );
        assert_eq!(
            texts(s.validate(&json!({"spec": {}}))),
            vec!["spec.cidrs: Required value: at least one CIDR required"]
        );
    }

    #[test]
    fn a_single_stack_range_may_gain_its_second_family_only() {
        let s = ServiceCidrStrategy;
        let old = json!({"spec": {"cidrs": ["10.96.0.0/12"]}});
        assert!(
            s.validate_update(
                &json!({"spec": {"cidrs": ["10.96.0.0/12", "fd00::/108"]}}),
                &old
            )
            .is_empty()
        );
        assert_eq!(
            texts(s.validate_update(&json!({"spec": {"cidrs": ["10.97.0.0/16"]}}), &old)),
            vec!["spec.cidrs[0]: Invalid value: \"10.97.0.0/16\": field is immutable"]
        );
        assert_eq!(
            texts(s.validate_update(&json!({"spec": {}}), &old)),
            vec!["spec.cidrs: Invalid value: []string(nil): field is immutable"]
        );
    }
}

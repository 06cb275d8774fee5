//! CSIStorageCapacities (upstream `ValidateCSIStorageCapacity`,
//! `ValidateCSIStorageCapacityUpdate`): a node topology selector and storage class name
//! that never change, and a non-negative capacity.

use k1s_apimachinery::goformat::invalid_go;
use k1s_apimachinery::goformat::quote;
use k1s_apimachinery::meta::{IS_NEGATIVE_ERROR_MSG, name_is_dns_subdomain};
use k1s_apimachinery::meta::{label_selector_has_errors, validate_label_selector_with};
use k1s_apimachinery::{ErrorList, FieldError, Path, Quantity};
use serde_json::Value;

use crate::kinds::validation::{Fields, semantic_eq};
use crate::registry::Strategy;

/// The CSIStorageCapacity strategy.
pub struct CsiStorageCapacityStrategy;

fn validate_capacity(obj: &Value, allow_invalid_values: bool) -> ErrorList {
    let mut errs = validate_label_selector_with(
        obj.get("nodeTopology"),
        allow_invalid_values,
        &Path::new("nodeTopology"),
    );
    let class = obj.s("storageClassName");
    for msg in name_is_dns_subdomain(class, false) {
        errs.push(FieldError::invalid(
            &Path::new("storageClassName"),
            class,
            msg,
        ));
    }
    if let Some(q) = obj.get("capacity").and_then(quantity_of)
        && q.signum() < 0
    {
        errs.push(FieldError::invalid(
            &Path::new("capacity"),
            q.canonical(),
            IS_NEGATIVE_ERROR_MSG,
        ));
    }
    errs
}

fn quantity_of(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s).ok(),
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

/// The generated `String()` of a `*metav1.LabelSelector` (what upstream prints for a
/// changed node topology).
fn go_label_selector(sel: &Value) -> String {
    if sel.is_null() {
        return "null".to_string();
    }
    let mut keys: Vec<&String> = sel
        .m("matchLabels")
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    keys.sort();
    let labels: String = keys
        .iter()
        .map(|k| format!("{k}: {},", sel.f("matchLabels").s(k)))
        .collect();
    let exprs: String = sel
        .a("matchExpressions")
        .iter()
        .map(|e| {
            let values: Vec<&str> = e.a("values").iter().filter_map(Value::as_str).collect();
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                e.s("key"),
                e.s("operator"),
                values.join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )
}

impl Strategy for CsiStorageCapacityStrategy {
    // Upstream's strategy refuses a PUT without a resourceVersion; patches apply to the
    // current version and are not affected.
    fn allow_unconditional_update(&self) -> bool {
        false
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_capacity(obj, false)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = validate_capacity(new, label_selector_has_errors(old.get("nodeTopology")));
        if !semantic_eq(new.f("nodeTopology"), old.f("nodeTopology"))
            || new.has("nodeTopology") != old.has("nodeTopology")
        {
            errs.push(invalid_go(
                &Path::new("nodeTopology"),
                go_label_selector(new.f("nodeTopology")),
                "field is immutable",
            ));
        }
        if new.s("storageClassName") != old.s("storageClassName") {
            errs.push(invalid_go(
                &Path::new("storageClassName"),
                quote(new.s("storageClassName")),
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
    fn capacity_and_immutables() {
        let old = json!({"storageClassName": "fast", "capacity": "10Gi",
            "nodeTopology": {"matchLabels": {"topology.kubernetes.io/zone": "a"}}});
        assert!(CsiStorageCapacityStrategy.validate(&old).is_empty());
        let mut new = old.clone();
        new["capacity"] = json!("-1Gi");
        new["nodeTopology"]["matchLabels"]["topology.kubernetes.io/zone"] = json!("b");
        let msgs: Vec<String> = CsiStorageCapacityStrategy
            .validate_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            msgs,
            vec![
                "capacity: Invalid value: \"-1Gi\": must be greater than or equal to 0",
                "nodeTopology: Invalid value: &LabelSelector{MatchLabels:map[string]string{topology.kubernetes.io/zone: b,},MatchExpressions:[]LabelSelectorRequirement{},}: field is immutable",
            ]
        );
    }
}

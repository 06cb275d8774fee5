//! RuntimeClasses (upstream `ValidateRuntimeClass`, `ValidateRuntimeClassUpdate` and the
//! strategy): a DNS-label handler that never changes, a non-negative pod overhead, and
//! scheduling constraints (node selector labels, tolerations).

use k1s_apimachinery::goformat::invalid_go;
use k1s_apimachinery::meta::{IS_NEGATIVE_ERROR_MSG, name_is_dns_label, validate_labels};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::validation::resources::{
    is_integer_resource_name, quantity_of, validate_container_resource_name,
};
use crate::kinds::validation::scheduling::validate_tolerations;
use crate::kinds::validation::{Fields, immutable_field};
use crate::registry::Strategy;

/// The RuntimeClass strategy.
pub struct RuntimeClassStrategy;

/// `validateOverhead`: upstream reuses the container limits check, so errors name
/// `overhead.limits[...]`.
fn validate_overhead(overhead: &Value) -> ErrorList {
    let path = Path::new("overhead").child("limits");
    let mut errs = ErrorList::new();
    for (name, q) in overhead.m("podFixed").into_iter().flatten() {
        let p = path.key(name);
        errs.extend(validate_container_resource_name(name, &p));
        let Some(q) = quantity_of(q) else {
            continue;
        };
        if q.signum() < 0 {
            errs.push(FieldError::invalid(
                &p,
                q.canonical(),
                IS_NEGATIVE_ERROR_MSG,
            ));
        }
        // `ValidateResourceQuantityValue`, but printed as upstream prints it: the
        // Quantity itself goes into the error and shows through its String(), unquoted
        // (the shared `validate_resource_quantity_value` quotes it, as ResourceQuota's
        // tests expect).
        if is_integer_resource_name(name) && q.milli_value() % 1000 != 0 {
            errs.push(invalid_go(&p, q.canonical(), "must be an integer"));
        }
    }
    errs
}

fn validate_class(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let handler = obj.s("handler");
    for msg in name_is_dns_label(handler, false) {
        errs.push(FieldError::invalid(&Path::new("handler"), handler, msg));
    }
    if obj.has("overhead") {
        errs.extend(validate_overhead(obj.f("overhead")));
    }
    if obj.has("scheduling") {
        let s = obj.f("scheduling");
        let path = Path::new("scheduling");
        if s.has("nodeSelector") {
            errs.extend(validate_labels(
                s.get("nodeSelector"),
                &path.child("nodeSelector"),
            ));
        }
        errs.extend(validate_tolerations(
            s.a("tolerations"),
            &path.child("tolerations"),
        ));
    }
    errs
}

impl Strategy for RuntimeClassStrategy {
    // Upstream's strategy refuses a PUT without a resourceVersion; patches apply to the
    // current version and are not affected.
    fn allow_unconditional_update(&self) -> bool {
        false
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_class(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = validate_class(new);
        errs.extend(immutable_field(new, old, "handler", &Path::root()));
        errs
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_util::texts;

    #[test]
    fn gvisor_class_is_valid_and_its_handler_fixed() {
        let rc = json!({"metadata": {"name": "gvisor"}, "handler": "runsc",
            "overhead": {"podFixed": {"cpu": "250m", "memory": "120Mi"}},
            "scheduling": {"nodeSelector": {"runtime": "gvisor"},
                           "tolerations": [{"key": "runtime", "operator": "Equal", "value": "gvisor", "effect": "NoSchedule"}]}});
        assert!(texts(RuntimeClassStrategy.validate(&rc)).is_empty());
        let mut changed = rc.clone();
        changed["handler"] = json!("kata");
        assert_eq!(
            texts(RuntimeClassStrategy.validate_update(&changed, &rc)),
            vec!["handler: Invalid value: \"kata\": field is immutable"]
        );
    }

    #[test]
    fn overhead_resources_are_container_resources() {
        let rc = json!({"handler": "kata", "overhead": {"podFixed": {"foo": "1", "example.com/dev": "500m"}}});
        assert_eq!(
            texts(RuntimeClassStrategy.validate(&rc)),
            vec![
                "overhead.limits[foo]: Invalid value: \"foo\": must be a standard resource type or fully qualified",
                "overhead.limits[foo]: Invalid value: \"foo\": must be a standard resource for containers",
                "overhead.limits[example.com/dev]: Invalid value: 500m: must be an integer",
            ]
        );
    }

    #[test]
    fn overhead_names_use_the_core_resource_sets() {
        // `storage` and `resourcequotas` are standard resources (just not container ones),
        // and `pods` counts whole units.
        let rc = json!({"handler": "kata", "overhead": {"podFixed": {"storage": "1", "quotas": "1", "pods": "1500m"}}});
        assert_eq!(
            texts(RuntimeClassStrategy.validate(&rc)),
            vec![
                "overhead.limits[storage]: Invalid value: \"storage\": must be a standard resource for containers",
                "overhead.limits[quotas]: Invalid value: \"quotas\": must be a standard resource type or fully qualified",
                "overhead.limits[quotas]: Invalid value: \"quotas\": must be a standard resource for containers",
                "overhead.limits[pods]: Invalid value: \"pods\": must be a standard resource for containers",
                "overhead.limits[pods]: Invalid value: 1500m: must be an integer",
            ]
        );
    }

    #[test]
    fn tolerations_follow_core() {
        let t = json!([{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "value": "v"},
                       {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]);
        assert_eq!(
            texts(validate_tolerations(
                t.as_array().map(Vec::as_slice).unwrap_or(&[]),
                &Path::new("t")
            )),
            vec![
                "t[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                "t[1].operator: Invalid value: core.Toleration{Key:\"k\", Operator:\"Exists\", Value:\"v\", Effect:\"\", TolerationSeconds:(*int64)(nil)}: value must be empty when `operator` is 'Exists'",
                "t[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
            ]
        );
    }
}

//! PodDisruptionBudgets (upstream `ValidatePodDisruptionBudget*` and
//! `pkg/registry/policy/poddisruptionbudget`). In policy/v1 the whole spec, selector
//! included, may change.

use k1s_apimachinery::meta::{validate_conditions, validate_label_selector};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::apps::workload::{not_more_than_100_percent, validate_int_or_percent};
use crate::kinds::validation::{Fields, nonnegative};
use crate::registry::Strategy;

/// The PodDisruptionBudget strategy.
pub struct PodDisruptionBudgetStrategy;

const EVICTION_POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];

/// `ValidatePodDisruptionBudgetSpec`.
fn validate_spec(spec: &Value) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    if spec.has("minAvailable") && spec.has("maxUnavailable") {
        errs.push(FieldError::invalid(
            &path,
            spec.clone(),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for f in ["minAvailable", "maxUnavailable"] {
        if spec.has(f) {
            errs.extend(validate_int_or_percent(spec.f(f), &path.child(f)));
            errs.extend(not_more_than_100_percent(spec.f(f), &path.child(f)));
        }
    }
    errs.extend(validate_label_selector(
        Some(spec.f("selector")),
        &path.child("selector"),
    ));
    if spec.has("unhealthyPodEvictionPolicy") {
        let p = spec.s("unhealthyPodEvictionPolicy");
        if !EVICTION_POLICIES.contains(&p) {
            errs.push(FieldError::not_supported(
                &path.child("unhealthyPodEvictionPolicy"),
                p,
                EVICTION_POLICIES,
            ));
        }
    }
    errs
}

impl Strategy for PodDisruptionBudgetStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec(obj.f("spec"))
    }

    /// `ValidatePodDisruptionBudgetStatusUpdate` (policy/v1): metav1 conditions, and
    /// the counters are non-negative.
    fn validate_status_update(&self, new: &Value, _old: &Value) -> ErrorList {
        let status = new.f("status");
        let path = Path::new("status");
        let mut errs = validate_conditions(status.a("conditions"), &path.child("conditions"));
        for f in [
            "disruptionsAllowed",
            "currentHealthy",
            "desiredHealthy",
            "expectedPods",
        ] {
            errs.extend(nonnegative(status.i(f), &path.child(f)));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors(spec: Value) -> Vec<String> {
        PodDisruptionBudgetStrategy
            .validate(&json!({"metadata": {"name": "p"}, "spec": spec}))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn min_available_xor_max_unavailable() {
        assert!(
            errors(json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "a"}}}))
                .is_empty()
        );
        assert!(errors(json!({"maxUnavailable": "50%"})).is_empty());
        let e = errors(json!({"minAvailable": 1, "maxUnavailable": 1}));
        assert!(
            e[0].starts_with("spec: Invalid value:")
                && e[0].ends_with("minAvailable and maxUnavailable cannot be both set"),
            "{e:?}"
        );
        assert_eq!(
            errors(json!({"minAvailable": "120%"})),
            vec!["spec.minAvailable: Invalid value: \"120%\": must not be greater than 100%"]
        );
        assert_eq!(
            errors(json!({"unhealthyPodEvictionPolicy": "Sometimes"})),
            vec![
                "spec.unhealthyPodEvictionPolicy: Unsupported value: \"Sometimes\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\""
            ]
        );
    }

    #[test]
    fn status_conditions_are_metav1_conditions() {
        let pdb = |status: Value| json!({"metadata": {"name": "p"}, "spec": {}, "status": status});
        let old = pdb(json!({}));
        let errs: Vec<String> = PodDisruptionBudgetStrategy
            .validate_status_update(
                &pdb(json!({"conditions": [{"type": "", "status": "", "observedGeneration": -1}], "currentHealthy": -1})),
                &old,
            )
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            errs.iter().any(
                |e| e == "status.conditions[0].lastTransitionTime: Required value: must be set"
            ),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(
                |e| e.starts_with("status.conditions[0].observedGeneration: Invalid value: -1")
            ),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("status.currentHealthy: Invalid value: -1")),
            "{errs:?}"
        );
        let ok = pdb(
            json!({"conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
        );
        assert!(
            PodDisruptionBudgetStrategy
                .validate_status_update(&ok, &old)
                .is_empty()
        );
    }
}

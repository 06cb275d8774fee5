//! PriorityClasses (upstream `ValidatePriorityClass`, `ValidatePriorityClassUpdate`,
//! `SetDefaults_PriorityClass` and the strategy): `system-` names are reserved for the
//! two built-in classes, user values stay at or below one billion, and neither the value
//! nor the preemption policy changes.

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use crate::kinds::validation::{Fields, immutable_field};
use crate::meta::{self, default_path};
use crate::registry::Strategy;

/// The PriorityClass strategy.
pub struct PriorityClassStrategy;

const SYSTEM_PREFIX: &str = "system-";
/// Upstream's `HighestUserDefinablePriority`.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;
/// Upstream's `SystemCriticalPriority`.
pub const SYSTEM_CRITICAL_PRIORITY: i64 = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;
/// The built-in classes: name, value (neither is a global default).
const SYSTEM_CLASSES: &[(&str, i64)] = &[
    ("system-node-critical", SYSTEM_CRITICAL_PRIORITY + 1000),
    ("system-cluster-critical", SYSTEM_CRITICAL_PRIORITY),
];

/// `IsKnownSystemPriorityClass`: `None` when the name, value and globalDefault match a
/// built-in class, otherwise why not.
fn system_class_error(name: &str, value: i64, global_default: bool) -> Option<String> {
    match SYSTEM_CLASSES.iter().find(|(n, _)| *n == name) {
        None => Some(format!("{name} is not a known system priority class")),
        Some((n, v)) if *v != value => Some(format!("value of {n} PriorityClass must be {v}")),
        Some((n, _)) if global_default => {
            Some(format!("globalDefault of {n} PriorityClass must be false"))
        }
        Some(_) => None,
    }
}

/// Core's `ValidatePreemptionPolicy`.
fn validate_preemption_policy(policy: &str, path: &Path) -> ErrorList {
    match policy {
        "PreemptLowerPriority" | "Never" => ErrorList::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["PreemptLowerPriority", "Never"],
        )],
    }
}

impl Strategy for PriorityClassStrategy {
    fn default(&self, obj: &mut Value) {
        default_path(obj, &["preemptionPolicy"], json!("PreemptLowerPriority"));
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        // Upstream sets the generation on create and never bumps it.
        meta::set_meta(obj, "generation", Some(json!(1)));
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = ErrorList::new();
        let name = meta::name(obj);
        let value = obj.i("value").unwrap_or(0);
        if name.starts_with(SYSTEM_PREFIX) {
            if let Some(why) = system_class_error(name, value, obj.b("globalDefault")) {
                errs.push(FieldError::forbidden(
                    &Path::new("metadata").child("name"),
                    format!(
                        "priority class names with '{SYSTEM_PREFIX}' prefix are reserved for system use only. error: {why}"
                    ),
                ));
            }
        } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
            errs.push(FieldError::forbidden(
                &Path::new("value"),
                format!(
                    "maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"
                ),
            ));
        }
        if let Some(policy) = obj.get("preemptionPolicy").and_then(Value::as_str) {
            errs.extend(validate_preemption_policy(
                policy,
                &Path::new("preemptionPolicy"),
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        // Upstream checks only what may not change on update.
        let mut errs = ErrorList::new();
        if new.i("value").unwrap_or(0) != old.i("value").unwrap_or(0) {
            errs.push(FieldError::forbidden(
                &Path::new("value"),
                "may not be changed in an update.",
            ));
        }
        errs.extend(immutable_field(new, old, "preemptionPolicy", &Path::root()));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    #[test]
    fn system_names_and_values() {
        let s = PriorityClassStrategy;
        let ok = json!({"metadata": {"name": "system-cluster-critical"}, "value": 2_000_000_000});
        assert!(s.validate(&ok).is_empty());
        let bad = json!({"metadata": {"name": "system-cluster-critical"}, "value": 2_000_000_000, "globalDefault": true});
        assert_eq!(
            texts(s.validate(&bad)),
            vec![
                "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: globalDefault of system-cluster-critical PriorityClass must be false"
            ]
        );
        let high = json!({"metadata": {"name": "high"}, "value": 1_000_000_001});
        assert_eq!(
            texts(s.validate(&high)),
            vec![
                "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
            ]
        );
        let old = json!({"value": 10, "preemptionPolicy": "PreemptLowerPriority"});
        let new = json!({"value": 11, "preemptionPolicy": "Never"});
        assert_eq!(
            texts(s.validate_update(&new, &old)),
            vec![
                "value: Forbidden: may not be changed in an update.",
                "preemptionPolicy: Invalid value: \"Never\": field is immutable",
            ]
        );
    }
}

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

/// The built-in classes as stored objects, created at start as upstream's scheduling
/// storage does.
pub fn system_classes() -> Vec<Value> {
    SYSTEM_CLASSES
        .iter()
        .map(|(name, value)| {
            let description = if *name == "system-node-critical" {
                "Used for system critical pods that must not be moved from their current node."
            } else {
                "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."
            };
            json!({
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": name}, "value": value, "description": description,
            })
        })
        .collect()
}

/// Upstream's Priority admission on pod create: `spec.priority` (and
/// `spec.preemptionPolicy`) from the named PriorityClass, or from the global default
/// class when none is named (then its name is set too; without one the priority is 0).
/// `lookup` finds a class by name; the built-in classes resolve even when not stored.
/// The error is the reason the pod is forbidden.
pub fn admit_pod_priority(
    pod: &mut Value,
    lookup: impl Fn(&str) -> Option<Value>,
    global_default: Option<Value>,
) -> Result<(), String> {
    let name = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let (class_name, priority, policy) = if name.is_empty() {
        match global_default {
            Some(pc) => (
                meta::name(&pc).to_string(),
                pc.i("value").unwrap_or(0),
                pc.get("preemptionPolicy")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            ),
            None => (String::new(), 0, None),
        }
    } else {
        match lookup(&name) {
            Some(pc) => (
                name.clone(),
                pc.i("value").unwrap_or(0),
                pc.get("preemptionPolicy")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            ),
            None => match SYSTEM_CLASSES.iter().find(|(n, _)| *n == name) {
                Some((_, v)) => (name.clone(), *v, Some("PreemptLowerPriority".to_string())),
                None => return Err(format!("no PriorityClass with name {name} was found")),
            },
        }
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64)
        && given != priority
    {
        return Err(format!(
            "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
        ));
    }
    if !class_name.is_empty() {
        spec.insert("priorityClassName".into(), json!(class_name));
    }
    spec.insert("priority".into(), json!(priority));
    if let Some(policy) = policy {
        if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str)
            && given != policy
        {
            return Err(format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            ));
        }
        spec.insert("preemptionPolicy".into(), json!(policy));
    }
    Ok(())
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

    #[test]
    fn pod_priority_comes_from_its_class() {
        let user =
            json!({"metadata": {"name": "high"}, "value": 1000, "preemptionPolicy": "Never"});
        let lookup = |n: &str| (n == "high").then(|| user.clone());
        let mut pod = json!({"spec": {"priorityClassName": "high"}});
        admit_pod_priority(&mut pod, lookup, None).unwrap();
        assert_eq!(pod["spec"]["priority"], 1000);
        assert_eq!(pod["spec"]["preemptionPolicy"], "Never");
        let mut pod = json!({"spec": {"priorityClassName": "system-node-critical"}});
        admit_pod_priority(&mut pod, lookup, None).unwrap();
        assert_eq!(pod["spec"]["priority"], 2_000_001_000);
        let mut pod = json!({"spec": {}});
        admit_pod_priority(&mut pod, lookup, Some(user.clone())).unwrap();
        assert_eq!(pod["spec"]["priorityClassName"], "high");
        let mut pod = json!({"spec": {}});
        admit_pod_priority(&mut pod, lookup, None).unwrap();
        assert_eq!(pod["spec"]["priority"], 0);
        assert!(pod["spec"].get("priorityClassName").is_none());
        let mut pod = json!({"spec": {"priorityClassName": "nope"}});
        assert_eq!(
            admit_pod_priority(&mut pod, lookup, None).unwrap_err(),
            "no PriorityClass with name nope was found"
        );
        let mut pod = json!({"spec": {"priorityClassName": "high", "priority": 5}});
        assert_eq!(
            admit_pod_priority(&mut pod, lookup, None).unwrap_err(),
            "the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"
        );
    }
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

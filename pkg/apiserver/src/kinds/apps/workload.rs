//! What every pod-template workload shares (the apps kinds, Jobs, and anything shaped
//! like a ReplicationController): template defaults, the selector rules (required, valid,
//! not empty, selects the template's labels, immutable), replicas, the template's
//! restart policy, int-or-percent fields and the status counters. Upstream repeats these
//! in each `Validate<Kind>Spec` of `pkg/apis/apps/validation`; here they live once and
//! every kind calls them with its own wording.

use k1s_apimachinery::meta::validate_label_selector;
use k1s_apimachinery::validation::is_valid_percent;
use k1s_apimachinery::{ErrorList, FieldError, Path, Selector};
use serde_json::{Map, Value};

use crate::kinds::core::podspec::{default_pod_spec, validate_pod_template_spec};
use crate::kinds::validation::{Fields, immutable_field, nonnegative};

/// Defaults the pod template at `template` (a path of keys to the PodTemplateSpec).
pub fn default_template(obj: &mut Value, template: &[&str]) {
    let mut cur = Some(obj);
    for k in template {
        cur = cur.and_then(|v| v.get_mut(*k));
    }
    if let Some(spec) = cur.and_then(|t| t.get_mut("spec")) {
        default_pod_spec(spec);
    }
}

/// The labels of a pod template (empty when it has none).
pub fn template_labels(template: &Value) -> Map<String, Value> {
    template
        .f("metadata")
        .m("labels")
        .cloned()
        .unwrap_or_default()
}

/// `metav1.LabelSelectorAsSelector`: a missing selector selects nothing, a malformed one
/// is `None`.
pub fn as_selector(selector: &Value) -> Option<Selector> {
    if selector.is_null() {
        return Some(Selector::nothing());
    }
    Selector::from_label_selector(selector).ok()
}

/// A required `metav1.LabelSelector` at `path` (the apps kinds' `spec.selector`): Required
/// when absent, validated strictly, and not empty (`empty selector is invalid for
/// <kind>`).
pub fn validate_required_selector(selector: &Value, path: &Path, kind: &str) -> ErrorList {
    if selector.is_null() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = validate_label_selector(Some(selector), path);
    errs.extend(non_empty_selector(selector, path, kind));
    errs
}

/// `empty selector is invalid for <kind>` when a present selector has neither
/// matchLabels nor matchExpressions.
pub fn non_empty_selector(selector: &Value, path: &Path, kind: &str) -> ErrorList {
    if selector.is_null()
        || selector.m("matchLabels").map_or(0, Map::len) + selector.a("matchExpressions").len() > 0
    {
        return ErrorList::new();
    }
    vec![FieldError::invalid(
        path,
        selector.clone(),
        format!("empty selector is invalid for {kind}"),
    )]
}

/// ``selector` does not match template `labels`` when a non-empty `selector` does not
/// select the template's labels; `template` is the PodTemplateSpec at `path`.
pub fn validate_selector_matches_template(
    selector: &Selector,
    template: &Value,
    path: &Path,
) -> ErrorList {
    let labels = template_labels(template);
    if selector.is_empty() || selector.matches(&labels) {
        return ErrorList::new();
    }
    vec![FieldError::invalid(
        &path.child("metadata").child("labels"),
        Value::Object(labels),
        "`selector` does not match template `labels`",
    )]
}

/// The restart policy rule of controllers whose pods run forever (ReplicaSet,
/// Deployment, DaemonSet, StatefulSet): only `Always`, and no `activeDeadlineSeconds`
/// (`activeDeadlineSeconds in <Kind> is not Supported`). `path` is the template's.
pub fn validate_template_runs_forever(template: &Value, path: &Path, kind: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = template.f("spec");
    let policy = spec.s("restartPolicy");
    if policy != "Always" {
        errs.push(FieldError::not_supported(
            &path.child("spec").child("restartPolicy"),
            policy,
            &["Always"],
        ));
    }
    if spec.has("activeDeadlineSeconds") {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errs
}

/// Upstream's `ValidatePodTemplateSpecForReplicaSet` (ReplicaSets, Deployments, and with
/// `kind` DaemonSet the same rules): the selector selects the template, the template is a
/// valid pod template, and its pods run forever.
pub fn validate_template_for_replica_set(
    template: &Value,
    selector: Option<&Selector>,
    path: &Path,
    kind: &str,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(sel) = selector {
        errs.extend(validate_selector_matches_template(sel, template, path));
    }
    errs.extend(validate_pod_template_spec(template, path));
    errs.extend(validate_template_runs_forever(template, path, kind));
    errs
}

/// The shared spec of ReplicaSets and Deployments (`ValidateReplicaSetSpec`'s and
/// `ValidateDeploymentSpec`'s common part): replicas, minReadySeconds, the selector and
/// the template. `kind` names the kind in messages: upstream says `deployment` for both
/// ReplicaSets and Deployments in the empty-selector message, and the Kind in the
/// activeDeadlineSeconds one.
pub fn validate_replicated_spec(spec: &Value, path: &Path, kind: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    errs.extend(nonnegative(spec.i("replicas"), &path.child("replicas")));
    errs.extend(nonnegative(
        spec.i("minReadySeconds"),
        &path.child("minReadySeconds"),
    ));
    errs.extend(validate_required_selector(
        spec.f("selector"),
        &path.child("selector"),
        "deployment",
    ));
    match as_selector(spec.f("selector")) {
        None => errs.push(FieldError::invalid(
            &path.child("selector"),
            spec.f("selector").clone(),
            "invalid label selector",
        )),
        Some(selector) => errs.extend(validate_template_for_replica_set(
            spec.f("template"),
            Some(&selector),
            &path.child("template"),
            kind,
        )),
    }
    errs
}

/// `spec.selector: … field is immutable` (apps/v1 selectors never change).
pub fn validate_selector_immutable(new: &Value, old: &Value) -> ErrorList {
    immutable_field(new.f("spec"), old.f("spec"), "selector", &Path::new("spec"))
}

/// An int-or-string that must be a non-negative integer or a percentage
/// (`ValidatePositiveIntOrPercent`).
pub fn validate_int_or_percent(value: &Value, path: &Path) -> ErrorList {
    match value {
        Value::String(s) => is_valid_percent(s)
            .into_iter()
            .map(|msg| FieldError::invalid(path, s.as_str(), msg))
            .collect(),
        Value::Number(n) => nonnegative(n.as_i64(), path),
        Value::Null => ErrorList::new(),
        other => vec![FieldError::invalid(
            path,
            other.clone(),
            "must be an integer or percentage (e.g '5%')",
        )],
    }
}

/// The number in an int-or-percent value (`getIntOrPercentValue`): the integer, or the
/// percentage's digits; anything else is 0.
pub fn int_or_percent_value(value: &Value) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) if is_valid_percent(s).is_empty() => {
            s.trim_end_matches('%').parse().unwrap_or(i64::MAX)
        }
        _ => 0,
    }
}

/// `must not be greater than 100%` for a percentage above 100 (`IsNotMoreThan100Percent`).
pub fn not_more_than_100_percent(value: &Value, path: &Path) -> ErrorList {
    match value {
        Value::String(s) if is_valid_percent(s).is_empty() && int_or_percent_value(value) > 100 => {
            vec![FieldError::invalid(
                path,
                s.as_str(),
                "must not be greater than 100%",
            )]
        }
        _ => ErrorList::new(),
    }
}

/// Status counters of the replicated kinds: each listed counter is non-negative, and
/// each `(counter, bound)` pair says `counter` may not exceed `bound`
/// (`cannot be greater than status.replicas`). `bounds` holds the message per pair.
pub fn validate_status_counts(
    status: &Value,
    nonnegative_fields: &[&str],
    bounds: &[(&str, &str, &str)],
) -> ErrorList {
    let path = Path::new("status");
    let mut errs = ErrorList::new();
    for f in nonnegative_fields {
        errs.extend(nonnegative(status.i(f), &path.child(f)));
    }
    for (field, bound, msg) in bounds {
        let (v, b) = (status.i(field).unwrap_or(0), status.i(bound).unwrap_or(0));
        if v > b {
            errs.push(FieldError::invalid(&path.child(field), v, *msg));
        }
    }
    errs
}

/// `status.collisionCount: … cannot be decremented` (`IsDecremented`): a set counter may
/// not go down or be cleared.
pub fn validate_collision_count(new: &Value, old: &Value) -> ErrorList {
    let (n, o) = (
        new.f("status").i("collisionCount"),
        old.f("status").i("collisionCount"),
    );
    match (n, o) {
        (None, Some(_)) => vec![FieldError::invalid(
            &Path::new("status").child("collisionCount"),
            0,
            "cannot be decremented",
        )],
        (Some(n), Some(o)) if n < o => vec![FieldError::invalid(
            &Path::new("status").child("collisionCount"),
            n,
            "cannot be decremented",
        )],
        _ => ErrorList::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn int_or_percent_rules() {
        let p = Path::new("x");
        assert!(validate_int_or_percent(&json!("25%"), &p).is_empty());
        assert!(validate_int_or_percent(&json!(3), &p).is_empty());
        assert_eq!(validate_int_or_percent(&json!(-1), &p).len(), 1);
        assert_eq!(validate_int_or_percent(&json!("abc"), &p).len(), 1);
        assert_eq!(int_or_percent_value(&json!("30%")), 30);
        assert_eq!(not_more_than_100_percent(&json!("101%"), &p).len(), 1);
        assert!(not_more_than_100_percent(&json!(101), &p).is_empty());
    }

    #[test]
    fn selector_must_select_the_template() {
        let p = Path::new("spec");
        let sel_json = json!({"matchLabels": {"app": "a"}});
        assert!(
            validate_required_selector(&sel_json, &p.child("selector"), "deployment").is_empty()
        );
        let sel = as_selector(&sel_json).expect("parses");
        let errs = validate_selector_matches_template(
            &sel,
            &json!({"metadata": {"labels": {"app": "b"}}}),
            &p.child("template"),
        );
        assert_eq!(
            errs[0].to_string(),
            "spec.template.metadata.labels: Invalid value: {\"app\":\"b\"}: `selector` does not match template `labels`"
        );
        let errs = validate_required_selector(&json!({}), &p.child("selector"), "daemonset");
        assert!(
            errs[0]
                .to_string()
                .ends_with("empty selector is invalid for daemonset")
        );
    }
}

//! DaemonSets (upstream `ValidateDaemonSet*` and `pkg/registry/apps/daemonset`).

use k1s_apimachinery::meta::validate_label_selector;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::workload::{
    as_selector, default_template, int_or_percent_value, non_empty_selector,
    not_more_than_100_percent, template_labels, validate_collision_count, validate_int_or_percent,
    validate_selector_immutable, validate_status_counts, validate_template_runs_forever,
};
use crate::kinds::core::podspec::validate_pod_template_spec;
use crate::kinds::validation::{Fields, nonnegative, semantic_eq};
use crate::meta::{default_path, get_path};
use crate::registry::Strategy;

/// The DaemonSet strategy.
pub struct DaemonSetStrategy;

/// Where apps/v1 keeps the internal `spec.templateGeneration`: bumped on every template
/// change; the controller labels pods with it (`pod-template-generation`).
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

fn template_generation(ds: &Value) -> Option<i64> {
    ds.f("metadata")
        .f("annotations")
        .s(TEMPLATE_GENERATION_ANNOTATION)
        .parse()
        .ok()
}

fn set_template_generation(ds: &mut Value, generation: i64) {
    let Some(meta) = ds.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations[TEMPLATE_GENERATION_ANNOTATION] = json!(generation.to_string());
}

/// `ValidateRollingUpdateDaemonSet`: exactly one of maxSurge and maxUnavailable is
/// non-zero, both are ints or percentages of at most 100%.
fn validate_rolling_update(ru: &Value, path: &Path) -> ErrorList {
    let (unavailable, surge) = (ru.f("maxUnavailable"), ru.f("maxSurge"));
    let mut errs = validate_int_or_percent(unavailable, &path.child("maxUnavailable"));
    errs.extend(validate_int_or_percent(surge, &path.child("maxSurge")));
    errs.extend(not_more_than_100_percent(
        unavailable,
        &path.child("maxUnavailable"),
    ));
    errs.extend(not_more_than_100_percent(surge, &path.child("maxSurge")));
    let has_unavailable = int_or_percent_value(unavailable) != 0;
    let has_surge = int_or_percent_value(surge) != 0;
    if has_unavailable && has_surge {
        errs.push(FieldError::invalid(
            &path.child("maxSurge"),
            surge.clone(),
            "may not be set when maxUnavailable is non-zero",
        ));
    } else if !has_unavailable && !has_surge {
        errs.push(FieldError::required(
            &path.child("maxUnavailable"),
            "cannot be 0 when maxSurge is 0",
        ));
    }
    errs
}

/// `ValidateDaemonSetUpdateStrategy`.
fn validate_update_strategy(strategy: &Value, path: &Path) -> ErrorList {
    match strategy.s("type") {
        "OnDelete" => ErrorList::new(),
        "RollingUpdate" => {
            if strategy.has("rollingUpdate") {
                validate_rolling_update(strategy.f("rollingUpdate"), &path.child("rollingUpdate"))
            } else {
                vec![FieldError::required(&path.child("rollingUpdate"), "")]
            }
        }
        _ => vec![FieldError::not_supported(
            path,
            strategy.clone(),
            &["RollingUpdate", "OnDelete"],
        )],
    }
}

/// `ValidateDaemonSetSpec`. Unlike the other workloads a missing selector is not
/// reported as required: it selects nothing, so the template's labels do not match.
fn validate_spec(spec: &Value) -> ErrorList {
    let path = Path::new("spec");
    let selector = spec.f("selector");
    let template = spec.f("template");
    let mut errs = validate_label_selector(Some(selector), &path.child("selector"));
    if let Some(sel) = as_selector(selector)
        && !sel.matches(&template_labels(template))
    {
        errs.push(FieldError::invalid(
            &path.child("template").child("metadata").child("labels"),
            Value::Object(template_labels(template)),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(non_empty_selector(
        selector,
        &path.child("selector"),
        "daemonset",
    ));
    errs.extend(validate_pod_template_spec(
        template,
        &path.child("template"),
    ));
    errs.extend(validate_template_runs_forever(
        template,
        &path.child("template"),
        "DaemonSet",
    ));
    errs.extend(nonnegative(
        spec.i("minReadySeconds"),
        &path.child("minReadySeconds"),
    ));
    errs.extend(validate_update_strategy(
        spec.f("updateStrategy"),
        &path.child("updateStrategy"),
    ));
    errs.extend(nonnegative(
        spec.i("revisionHistoryLimit"),
        &path.child("revisionHistoryLimit"),
    ));
    errs
}

impl Strategy for DaemonSetStrategy {
    fn default(&self, obj: &mut Value) {
        default_path(
            obj,
            &["spec", "updateStrategy", "type"],
            json!("RollingUpdate"),
        );
        if get_path(obj, &["spec", "updateStrategy", "type"]).and_then(Value::as_str)
            == Some("RollingUpdate")
        {
            default_path(
                obj,
                &["spec", "updateStrategy", "rollingUpdate", "maxUnavailable"],
                json!(1),
            );
            default_path(
                obj,
                &["spec", "updateStrategy", "rollingUpdate", "maxSurge"],
                json!(0),
            );
        }
        default_path(obj, &["spec", "revisionHistoryLimit"], json!(10));
        default_template(obj, &["spec", "template"]);
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value, has_status: bool) {
        if has_status && let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
        // A generation the client gives is kept when it is a positive number, as the
        // conversion from apps/v1 reads it; anything else starts at 1.
        let given = template_generation(obj).filter(|g| *g >= 1).unwrap_or(1);
        set_template_generation(obj, given);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value, has_status: bool) {
        if has_status && let Some(o) = new.as_object_mut() {
            match old.get("status") {
                Some(s) => o.insert("status".into(), s.clone()),
                None => o.remove("status"),
            };
        }
        // An update may not set the template generation; a changed template bumps it.
        let previous = template_generation(old).unwrap_or(0);
        let changed = !semantic_eq(new.f("spec").f("template"), old.f("spec").f("template"));
        let generation = if changed { previous + 1 } else { previous };
        if generation >= 1 {
            set_template_generation(new, generation);
        }
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec(obj.f("spec"))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = validate_selector_immutable(new, old);
        errs.extend(validate_spec(new.f("spec")));
        errs
    }

    /// `ValidateDaemonSetStatusUpdate`.
    fn validate_status_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = validate_status_counts(
            new.f("status"),
            &[
                "currentNumberScheduled",
                "numberMisscheduled",
                "desiredNumberScheduled",
                "numberReady",
                "observedGeneration",
                "updatedNumberScheduled",
                "numberAvailable",
                "numberUnavailable",
                "collisionCount",
            ],
            &[],
        );
        errs.extend(validate_collision_count(new, old));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(spec: Value) -> Vec<String> {
        let mut o = json!({"metadata": {"name": "ds"}, "spec": spec});
        DaemonSetStrategy.default(&mut o);
        DaemonSetStrategy
            .validate(&o)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "agent"}},
               "spec": {"containers": [{"name": "agent", "image": "agent:1"}]}})
    }

    #[test]
    fn the_template_generation_starts_at_one_and_follows_template_changes() {
        let s = DaemonSetStrategy;
        let mut ds = json!({"metadata": {"name": "d"}, "spec": {
            "selector": {"matchLabels": {"a": "b"}}, "template": template()}});
        s.default(&mut ds);
        s.prepare_for_create(&mut ds, true);
        assert_eq!(
            ds["metadata"]["annotations"][TEMPLATE_GENERATION_ANNOTATION],
            "1"
        );
        let mut same = ds.clone();
        same["metadata"]["annotations"][TEMPLATE_GENERATION_ANNOTATION] = json!("7");
        same["spec"]["minReadySeconds"] = json!(3);
        s.prepare_for_update(&mut same, &ds, true);
        assert_eq!(
            same["metadata"]["annotations"][TEMPLATE_GENERATION_ANNOTATION],
            "1"
        );
        let mut changed = ds.clone();
        changed["spec"]["template"]["metadata"]["labels"]["x"] = json!("y");
        s.prepare_for_update(&mut changed, &ds, true);
        assert_eq!(
            changed["metadata"]["annotations"][TEMPLATE_GENERATION_ANNOTATION],
            "2"
        );
    }

    #[test]
    fn a_plain_daemonset_is_accepted() {
        let e =
            errors(json!({"selector": {"matchLabels": {"app": "agent"}}, "template": template()}));
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn a_missing_selector_selects_nothing() {
        let e = errors(json!({"template": template()}));
        assert_eq!(
            e,
            vec![
                "spec.template.metadata.labels: Invalid value: {\"app\":\"agent\"}: `selector` does not match template `labels`"
            ]
        );
    }

    #[test]
    fn surge_and_unavailable_are_exclusive() {
        let e = errors(
            json!({"selector": {"matchLabels": {"app": "agent"}}, "template": template(),
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}}),
        );
        assert_eq!(
            e,
            vec![
                "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero"
            ]
        );
    }
}

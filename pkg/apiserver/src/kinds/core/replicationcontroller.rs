//! ReplicationControllers: selector and labels default from the template; upstream's
//! `ValidateReplicationController(Update|StatusUpdate)`.

use k1s_apimachinery::meta::IS_NEGATIVE_ERROR_MSG;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::podspec::{default_pod_spec, validate_pod_template_spec};
use crate::kinds::validation::{Fields, nonnegative};
use crate::meta;
use crate::registry::{ScaleSpec, Strategy};

/// The ReplicationController strategy.
pub struct ReplicationControllerStrategy;

/// Whether every `selector` pair is among `labels`.
fn selector_matches(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
}

/// Upstream's `ValidateReplicationControllerSpec`.
fn validate_spec(obj: &Value) -> ErrorList {
    let spec = obj.f("spec");
    let path = Path::new("spec");
    let mut errs = nonnegative(spec.i("minReadySeconds"), &path.child("minReadySeconds"));
    let selector = spec.f("selector");
    let selector_empty = selector.as_object().is_none_or(|m| m.is_empty());
    if selector_empty {
        errs.push(FieldError::required(&path.child("selector"), ""));
    }
    errs.extend(nonnegative(spec.i("replicas"), &path.child("replicas")));
    let tpath = path.child("template");
    if !spec.has("template") {
        errs.push(FieldError::required(&tpath, ""));
        return errs;
    }
    let template = spec.f("template");
    let labels = template.f("metadata").f("labels");
    if !selector_empty && !selector_matches(selector, labels) {
        errs.push(FieldError::invalid(
            &tpath.child("metadata").child("labels"),
            labels.clone(),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template_spec(template, &tpath));
    let tspec = template.f("spec");
    let restart = tspec.s("restartPolicy");
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            &tpath.child("spec").child("restartPolicy"),
            restart,
            &["Always"],
        ));
    }
    if tspec.has("activeDeadlineSeconds") {
        errs.push(FieldError::forbidden(
            &tpath.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in ReplicationController is not Supported",
        ));
    }
    errs
}

/// Upstream's `ValidateReplicationControllerStatus`.
fn validate_status(obj: &Value) -> ErrorList {
    let status = obj.f("status");
    let path = Path::new("status");
    let mut errs = ErrorList::new();
    for f in [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ] {
        if let Some(n) = status.i(f)
            && n < 0
        {
            errs.push(FieldError::invalid(
                &path.child(f),
                n,
                IS_NEGATIVE_ERROR_MSG,
            ));
        }
    }
    let get = |f: &str| status.i(f).unwrap_or(0);
    let msg = "cannot be greater than status.replicas";
    for f in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
        if get(f) > get("replicas") {
            errs.push(FieldError::invalid(&path.child(f), get(f), msg));
        }
    }
    if get("availableReplicas") > get("readyReplicas") {
        errs.push(FieldError::invalid(
            &path.child("availableReplicas"),
            get("availableReplicas"),
            "cannot be greater than readyReplicas",
        ));
    }
    errs
}

impl Strategy for ReplicationControllerStrategy {
    fn default(&self, obj: &mut Value) {
        let template_labels =
            meta::get_path(obj, &["spec", "template", "metadata", "labels"]).cloned();
        if let Some(labels) =
            template_labels.filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        {
            meta::default_path(obj, &["spec", "selector"], labels.clone());
            if meta::get_path(obj, &["spec", "selector"])
                .and_then(Value::as_object)
                .is_some_and(|m| m.is_empty())
            {
                obj["spec"]["selector"] = labels.clone();
            }
            if meta::labels(obj).is_empty() {
                meta::set_meta(obj, "labels", Some(labels));
            }
        }
        meta::default_path(obj, &["spec", "replicas"], json!(1));
        if let Some(spec) = obj
            .get_mut("spec")
            .and_then(|s| s.get_mut("template"))
            .and_then(|t| t.get_mut("spec"))
        {
            default_pod_spec(spec);
        }
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec(obj)
    }

    fn validate_update(&self, new: &Value, _old: &Value) -> ErrorList {
        validate_spec(new)
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> ErrorList {
        validate_status(new)
    }

    fn scale(&self) -> Option<ScaleSpec> {
        Some(ScaleSpec::replication_controller())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    fn rc() -> Value {
        let mut o = json!({"metadata": {"name": "nginx"}, "spec": {"replicas": 3,
            "template": {"metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}}}});
        ReplicationControllerStrategy.default(&mut o);
        o
    }

    #[test]
    fn the_docs_example_passes_with_its_defaulted_selector() {
        let o = rc();
        assert_eq!(o["spec"]["selector"], json!({"app": "nginx"}));
        assert!(
            validate_spec(&o).is_empty(),
            "{:?}",
            texts(validate_spec(&o))
        );
    }

    #[test]
    fn selector_template_and_restart_policy() {
        let mut o = rc();
        o["spec"]["selector"] = json!({"app": "other"});
        o["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
        let t = texts(validate_spec(&o));
        assert!(t.contains(&"spec.template.metadata.labels: Invalid value: {\"app\":\"nginx\"}: `selector` does not match template `labels`".to_string()), "{t:?}");
        assert!(t.contains(&"spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"".to_string()), "{t:?}");
        let mut o = rc();
        o["spec"].as_object_mut().map(|s| s.remove("template"));
        o["spec"]["selector"] = json!({});
        assert_eq!(
            texts(validate_spec(&o)),
            vec![
                "spec.selector: Required value",
                "spec.template: Required value"
            ]
        );
    }

    #[test]
    fn status_counts() {
        let o = json!({"status": {"replicas": 1, "readyReplicas": 2, "availableReplicas": 2}});
        assert_eq!(
            texts(validate_status(&o)),
            vec![
                "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
                "status.availableReplicas: Invalid value: 2: cannot be greater than status.replicas",
            ]
        );
    }
}

//! Jobs: a generated selector bound to the Job's uid, and batch defaults.

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use crate::kinds::apps::workload::{default_template, validate_workload};
use crate::meta::{self, default_path, get_path};
use crate::registry::Strategy;

/// The Job strategy.
pub struct JobStrategy;

/// Label that binds a Job's pods to it.
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// Label with the Job's name on its pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

impl Strategy for JobStrategy {
    fn default(&self, obj: &mut Value) {
        let has = |o: &Value, f: &str| get_path(o, &["spec", f]).is_some_and(|v| !v.is_null());
        if !has(obj, "completions") && !has(obj, "parallelism") {
            default_path(obj, &["spec", "completions"], json!(1));
        }
        default_path(obj, &["spec", "parallelism"], json!(1));
        default_path(obj, &["spec", "backoffLimit"], json!(6));
        default_path(obj, &["spec", "completionMode"], json!("NonIndexed"));
        default_path(obj, &["spec", "suspend"], json!(false));
        default_path(obj, &["spec", "manualSelector"], Value::Null);
        if get_path(obj, &["spec", "manualSelector"]).is_some_and(Value::is_null)
            && let Some(s) = obj.get_mut("spec").and_then(Value::as_object_mut)
        {
            s.remove("manualSelector");
        }
        let failed = get_path(obj, &["spec", "podFailurePolicy"]).is_some();
        default_path(
            obj,
            &["spec", "podReplacementPolicy"],
            json!(if failed {
                "Failed"
            } else {
                "TerminatingOrFailed"
            }),
        );
        default_template(obj, &["spec", "template"]);
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
        // Unless the user manages the selector, bind the template to this Job's uid.
        let manual =
            get_path(obj, &["spec", "manualSelector"]).and_then(Value::as_bool) == Some(true);
        let uid = meta::uid(obj).to_string();
        let name = meta::name(obj).to_string();
        if !manual && !uid.is_empty() {
            obj["spec"]["selector"] = json!({"matchLabels": {CONTROLLER_UID_LABEL: uid}});
            let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
            if !labels.is_object() {
                *labels = json!({});
            }
            for (k, v) in [
                (CONTROLLER_UID_LABEL, &uid),
                (JOB_NAME_LABEL, &name),
                ("controller-uid", &uid),
                ("job-name", &name),
            ] {
                labels[k] = json!(v);
            }
        }
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = validate_workload(obj, &["spec", "template"], &["OnFailure", "Never"]);
        for f in [
            "parallelism",
            "completions",
            "backoffLimit",
            "activeDeadlineSeconds",
        ] {
            if let Some(n) = get_path(obj, &["spec", f]).and_then(Value::as_i64)
                && n < 0
            {
                errs.push(FieldError::invalid(
                    &Path::new("spec").child(f),
                    json!(n),
                    "must be greater than or equal to 0",
                ));
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        for f in ["selector", "template", "completions", "completionMode"] {
            if get_path(new, &["spec", f]) != get_path(old, &["spec", f]) && f != "completions" {
                errs.push(FieldError::invalid(
                    &Path::new("spec").child(f),
                    get_path(new, &["spec", f]).cloned().unwrap_or(Value::Null),
                    "field is immutable",
                ));
            }
        }
        errs
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let succeeded = get_path(obj, &["status", "succeeded"])
            .and_then(Value::as_i64)
            .unwrap_or(0);
        vec![("status.successful", succeeded.to_string())]
    }
}

//! ReplicationControllers: selector and labels default from the template.

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::podspec::{default_pod_spec, validate_pod_spec};
use crate::meta;
use crate::registry::{ScaleSpec, Strategy};

/// The ReplicationController strategy.
pub struct ReplicationControllerStrategy;

impl Strategy for ReplicationControllerStrategy {
    fn default(&self, obj: &mut Value) {
        let template_labels =
            meta::get_path(obj, &["spec", "template", "metadata", "labels"]).cloned();
        if let Some(labels) =
            template_labels.filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        {
            meta::default_path(obj, &["spec", "selector"], labels.clone());
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
        let mut errs = ErrorList::new();
        let spec = Path::new("spec");
        if let Some(r) = meta::get_path(obj, &["spec", "replicas"]).and_then(Value::as_i64)
            && r < 0
        {
            errs.push(FieldError::invalid(
                &spec.child("replicas"),
                json!(r),
                "must be greater than or equal to 0",
            ));
        }
        match meta::get_path(obj, &["spec", "template", "spec"]) {
            Some(ps) => errs.extend(validate_pod_spec(ps, &spec.child("template").child("spec"))),
            None => errs.push(FieldError::required(&spec.child("template"), "")),
        }
        errs
    }

    fn scale(&self) -> Option<ScaleSpec> {
        Some(ScaleSpec::replication_controller())
    }
}

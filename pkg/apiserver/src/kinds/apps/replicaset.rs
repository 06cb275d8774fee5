//! ReplicaSets.

use k1s_apimachinery::ErrorList;
use serde_json::{Value, json};

use super::workload::{default_template, validate_selector_immutable, validate_workload};
use crate::meta::default_path;
use crate::registry::{ScaleSpec, Strategy};

/// The ReplicaSet strategy.
pub struct ReplicaSetStrategy;

impl Strategy for ReplicaSetStrategy {
    fn default(&self, obj: &mut Value) {
        default_path(obj, &["spec", "replicas"], json!(1));
        default_template(obj, &["spec", "template"]);
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_workload(obj, &["spec", "template"], &["Always"])
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(validate_selector_immutable(new, old));
        errs
    }

    fn scale(&self) -> Option<ScaleSpec> {
        Some(ScaleSpec::apps())
    }
}

//! DaemonSets.

use k1s_apimachinery::ErrorList;
use serde_json::{Value, json};

use super::workload::{default_template, validate_selector_immutable, validate_workload};
use crate::meta::{default_path, get_path};
use crate::registry::Strategy;

/// The DaemonSet strategy.
pub struct DaemonSetStrategy;

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

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_workload(obj, &["spec", "template"], &["Always"])
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(validate_selector_immutable(new, old));
        errs
    }
}

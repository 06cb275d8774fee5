//! Deployments.

use k1s_apimachinery::ErrorList;
use serde_json::{Value, json};

use super::workload::{default_template, validate_selector_immutable, validate_workload};
use crate::meta::default_path;
use crate::registry::{ScaleSpec, Strategy};

/// The Deployment strategy.
pub struct DeploymentStrategy;

impl Strategy for DeploymentStrategy {
    fn default(&self, obj: &mut Value) {
        default_path(obj, &["spec", "replicas"], json!(1));
        let strategy_type = crate::meta::get_path(obj, &["spec", "strategy", "type"])
            .and_then(Value::as_str)
            .unwrap_or("RollingUpdate")
            .to_string();
        default_path(obj, &["spec", "strategy", "type"], json!(strategy_type));
        if strategy_type == "RollingUpdate" {
            default_path(
                obj,
                &["spec", "strategy", "rollingUpdate", "maxUnavailable"],
                json!("25%"),
            );
            default_path(
                obj,
                &["spec", "strategy", "rollingUpdate", "maxSurge"],
                json!("25%"),
            );
        }
        default_path(obj, &["spec", "revisionHistoryLimit"], json!(10));
        default_path(obj, &["spec", "progressDeadlineSeconds"], json!(600));
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

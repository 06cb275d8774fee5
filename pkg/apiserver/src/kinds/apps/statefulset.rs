//! StatefulSets.

use k1s_apimachinery::ErrorList;
use serde_json::{Value, json};

use super::workload::{default_template, validate_selector_immutable, validate_workload};
use crate::meta::{default_path, get_path};
use crate::registry::{ScaleSpec, Strategy};

/// The StatefulSet strategy.
pub struct StatefulSetStrategy;

impl Strategy for StatefulSetStrategy {
    fn default(&self, obj: &mut Value) {
        default_path(obj, &["spec", "replicas"], json!(1));
        default_path(obj, &["spec", "podManagementPolicy"], json!("OrderedReady"));
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
                &["spec", "updateStrategy", "rollingUpdate", "partition"],
                json!(0),
            );
        }
        default_path(obj, &["spec", "revisionHistoryLimit"], json!(10));
        default_path(
            obj,
            &[
                "spec",
                "persistentVolumeClaimRetentionPolicy",
                "whenDeleted",
            ],
            json!("Retain"),
        );
        default_path(
            obj,
            &["spec", "persistentVolumeClaimRetentionPolicy", "whenScaled"],
            json!("Retain"),
        );
        default_template(obj, &["spec", "template"]);
        if let Some(Value::Array(claims)) = obj
            .get_mut("spec")
            .and_then(|s| s.get_mut("volumeClaimTemplates"))
        {
            for c in claims {
                default_path(c, &["spec", "volumeMode"], json!("Filesystem"));
                default_path(c, &["apiVersion"], json!("v1"));
                default_path(c, &["kind"], json!("PersistentVolumeClaim"));
            }
        }
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

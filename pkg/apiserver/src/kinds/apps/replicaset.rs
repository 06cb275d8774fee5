//! ReplicaSets (upstream `ValidateReplicaSet*` and `pkg/registry/apps/replicaset`).

use k1s_apimachinery::{ErrorList, Path};
use serde_json::{Value, json};

use super::workload::{
    default_template, validate_replicated_spec, validate_selector_immutable, validate_status_counts,
};
use crate::kinds::validation::Fields;
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
        validate_replicated_spec(obj.f("spec"), &Path::new("spec"), "ReplicaSet")
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(validate_selector_immutable(new, old));
        errs
    }

    /// `ValidateReplicaSetStatusUpdate`.
    fn validate_status_update(&self, new: &Value, _old: &Value) -> ErrorList {
        let msg = "cannot be greater than status.replicas";
        validate_status_counts(
            new.f("status"),
            &[
                "replicas",
                "fullyLabeledReplicas",
                "readyReplicas",
                "availableReplicas",
                "observedGeneration",
                "terminatingReplicas",
            ],
            &[
                ("fullyLabeledReplicas", "replicas", msg),
                ("readyReplicas", "replicas", msg),
                ("availableReplicas", "replicas", msg),
                (
                    "availableReplicas",
                    "readyReplicas",
                    "cannot be greater than readyReplicas",
                ),
            ],
        )
    }

    fn scale(&self) -> Option<ScaleSpec> {
        Some(ScaleSpec::apps())
    }
}

//! Bindings (`POST /api/v1/namespaces/<ns>/bindings`): upstream's `ValidatePodBinding`.
//!
//! Upstream never stores a Binding: its `BindingREST.Create` (in
//! `pkg/registry/core/pod/storage`) validates it, then sets the named pod's
//! `spec.nodeName`, merges the Binding's annotations into the pod and marks it
//! `PodScheduled`, answering with a `Status` of `Success`. So does k1s
//! (`handlers/binding.rs`, for the collection and the pods' `binding` subresource); the
//! strategy only holds the validation, as nothing stores Bindings.

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::validation::Fields;
use crate::registry::Strategy;

/// The Binding strategy.
pub struct BindingStrategy;

/// Upstream's `ValidatePodBinding`: the target is a Node (or of no kind) with a name.
pub fn validate_pod_binding(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let target = obj.f("target");
    let kind = target.s("kind");
    if !kind.is_empty() && kind != "Node" {
        errs.push(FieldError::not_supported(
            &Path::new("target").child("kind"),
            kind,
            &["Node", "<empty>"],
        ));
    }
    if target.s("name").is_empty() {
        errs.push(FieldError::required(&Path::new("target").child("name"), ""));
    }
    errs
}

impl Strategy for BindingStrategy {
    fn validate(&self, obj: &Value) -> ErrorList {
        validate_pod_binding(obj)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_target_must_name_a_node() {
        assert!(
            validate_pod_binding(&json!({"target": {"kind": "Node", "name": "n1"}})).is_empty()
        );
        assert!(validate_pod_binding(&json!({"target": {"name": "n1"}})).is_empty());
        let t: Vec<String> = validate_pod_binding(&json!({"target": {"kind": "Pod"}}))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            t,
            vec![
                "target.kind: Unsupported value: \"Pod\": supported values: \"Node\", \"<empty>\"",
                "target.name: Required value",
            ]
        );
    }
}

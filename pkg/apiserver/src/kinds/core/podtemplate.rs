//! PodTemplates: a stored pod template (upstream `pkg/registry/core/podtemplate` and
//! `ValidatePodTemplate`, `ValidatePodTemplateUpdate`).

use k1s_apimachinery::{ErrorList, Path};
use serde_json::{Value, json};

use super::podspec::{default_pod_spec, validate_pod_template_spec};
use crate::kinds::validation::Fields;
use crate::registry::Strategy;

/// The PodTemplate strategy: the template is defaulted like any pod template, validated
/// at `template`, and its changes bump the generation.
pub struct PodTemplateStrategy;

impl Strategy for PodTemplateStrategy {
    fn default(&self, obj: &mut Value) {
        // The template and its spec are plain structs upstream: an absent one is an
        // empty one, and gets the spec's defaults.
        if !obj.is_object() {
            return;
        }
        if !obj.f("template").is_object() {
            obj["template"] = json!({});
        }
        if !obj["template"].f("spec").is_object() {
            obj["template"]["spec"] = json!({});
        }
        default_pod_spec(&mut obj["template"]["spec"]);
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_pod_template_spec(obj.f("template"), &Path::new("template"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_validated_at_template() {
        let mut pt = json!({"metadata": {"name": "t"}, "template": {"metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "a"}]}}});
        PodTemplateStrategy.default(&mut pt);
        let errs: Vec<String> = PodTemplateStrategy
            .validate(&pt)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec!["template.spec.containers[0].image: Required value"]
        );
    }
}

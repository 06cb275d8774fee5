//! ResourceClaimTemplates (upstream `ValidateResourceClaimTemplate`,
//! `ValidateResourceClaimTemplateUpdate`): the claim spec inside, validated and defaulted
//! as a claim's, and immutable.

use k1s_apimachinery::{ErrorList, Path};
use serde_json::Value;

use super::{default_claim_spec, immutable_spec, validate_device_claim};
use crate::kinds::validation::Fields;
use crate::registry::Strategy;

/// The ResourceClaimTemplate strategy.
pub struct ResourceClaimTemplateStrategy;

impl Strategy for ResourceClaimTemplateStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(|s| s.get_mut("spec")) {
            default_claim_spec(spec);
        }
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_device_claim(
            obj.f("spec").f("spec").f("devices"),
            &Path::new("spec").child("spec").child("devices"),
        )
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        immutable_spec(new, old, &Path::new("spec"))
    }
}

//! VolumeAttributesClasses (upstream `ValidateVolumeAttributesClass`,
//! `ValidateVolumeAttributesClassUpdate`): a driver name and at least one parameter,
//! neither of which changes.

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use super::{validate_parameters, validate_provisioner};
use crate::kinds::validation::{Fields, semantic_eq};
use crate::registry::Strategy;

/// The VolumeAttributesClass strategy.
pub struct VolumeAttributesClassStrategy;

fn validate_class(obj: &Value) -> ErrorList {
    let mut errs = validate_provisioner(obj.s("driverName"), &Path::new("driverName"));
    errs.extend(validate_parameters(
        obj.m("parameters"),
        false,
        &Path::new("parameters"),
    ));
    errs
}

impl Strategy for VolumeAttributesClassStrategy {
    fn validate(&self, obj: &Value) -> ErrorList {
        validate_class(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = ErrorList::new();
        if new.s("driverName") != old.s("driverName") {
            errs.push(FieldError::forbidden(
                &Path::new("driverName"),
                "updates to driverName are forbidden.",
            ));
        }
        if !semantic_eq(new.f("parameters"), old.f("parameters")) {
            errs.push(FieldError::forbidden(
                &Path::new("parameters"),
                "updates to parameters are forbidden.",
            ));
        }
        errs.extend(validate_class(new));
        errs
    }
}

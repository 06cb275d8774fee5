//! DeviceClasses (upstream `ValidateDeviceClass`, `ValidateDeviceClassUpdate` and the
//! deviceclass strategy): selectors that compile, opaque configurations, and a
//! generation that follows the spec.

use k1s_apimachinery::{ErrorList, Path};
use serde_json::Value;

use super::{DEVICE_CONFIG_MAX, too_many, validate_device_configuration, validate_selectors};
use crate::kinds::validation::{Fields, semantic_eq};
use crate::registry::Strategy;

/// The DeviceClass strategy.
pub struct DeviceClassStrategy;

fn validate_spec(spec: &Value, old: Option<&Value>) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    // Selectors stored before are not compiled again: they were valid when written.
    if old.is_none_or(|o| !semantic_eq(spec.f("selectors"), o.f("selectors"))) {
        errs.extend(validate_selectors(
            spec.a("selectors"),
            &path.child("selectors"),
        ));
    }
    let configs = spec.a("config");
    let cpath = path.child("config");
    errs.extend(too_many(configs, DEVICE_CONFIG_MAX, &cpath));
    for (i, c) in configs.iter().enumerate() {
        errs.extend(validate_device_configuration(c, &cpath.index(i)));
    }
    errs
}

/// `spec.extendedResourceName` belongs to the alpha `DRAExtendedResource` gate, off by
/// default in 1.35: dropped unless the stored class already has it.
fn drop_disabled(new: &mut Value, old: Option<&Value>) {
    if old.is_some_and(|o| o.f("spec").has("extendedResourceName")) {
        return;
    }
    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("extendedResourceName");
    }
}

impl Strategy for DeviceClassStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        drop_disabled(obj, None);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value, _has_status: bool) {
        drop_disabled(new, Some(old));
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec(obj.f("spec"), None)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        validate_spec(new.f("spec"), Some(old.f("spec")))
    }
}

//! ResourceSlices (upstream `ValidateResourceSlice`, `ValidateResourceSliceUpdate` and
//! the resourceslice strategy): a driver's pool of devices on one node, a selection of
//! nodes or all of them; the driver, pool name and node never change; lists can be
//! filtered by `spec.nodeName` and `spec.driver`.

use k1s_apimachinery::validation::{is_dns1123_label, is_dns1123_subdomain};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::{duplicates, validate_qualified_name};
use crate::kinds::core::volumesource::csi_driver_name;
use crate::kinds::validation::scheduling::validate_node_selector;
use crate::kinds::validation::{Fields, immutable, invalid_each, required_name};
use crate::registry::Strategy;

/// The ResourceSlice strategy.
pub struct ResourceSliceStrategy;

/// `ResourceSliceMaxDevices`.
const MAX_DEVICES: usize = 128;
/// `ResourceSliceMaxDevicesWithTaintsOrConsumesCounters`.
const MAX_DEVICES_ADVANCED: usize = 64;
/// `ResourceSliceMaxAttributesAndCapacitiesPerDevice`.
const MAX_ATTRIBUTES_AND_CAPACITIES: usize = 32;
/// `DeviceAttributeMaxValueLength`.
const MAX_ATTRIBUTE_VALUE: usize = 64;
/// `PoolNameMaxLength`.
const POOL_NAME_MAX: usize = 253;

/// `validatePoolName`: required, at most 253 characters, DNS subdomains separated by `/`.
fn validate_pool_name(name: &str, path: &Path) -> ErrorList {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = ErrorList::new();
    if name.len() > POOL_NAME_MAX {
        errs.push(FieldError::too_long(path, "", POOL_NAME_MAX as i64));
    }
    for part in name.split('/') {
        errs.extend(invalid_each(part, path, is_dns1123_subdomain(part)));
    }
    errs
}

/// `validateResourcePool`: name, generation and slice count.
fn validate_pool(pool: &Value, path: &Path) -> ErrorList {
    let mut errs = validate_pool_name(pool.s("name"), &path.child("name"));
    let generation = pool.i("generation").unwrap_or(0);
    if generation < 0 {
        errs.push(FieldError::invalid(
            &path.child("generation"),
            generation,
            "must be greater than or equal to zero",
        ));
    }
    let count = pool.i("resourceSliceCount").unwrap_or(0);
    if count <= 0 {
        errs.push(FieldError::invalid(
            &path.child("resourceSliceCount"),
            count,
            "must be greater than zero",
        ));
    }
    errs
}

/// `validateDeviceAttribute`: exactly one typed value; strings and versions at most 64
/// characters.
fn validate_attribute(attr: &Value, path: &Path) -> ErrorList {
    let set: Vec<&str> = ["int", "bool", "string", "version"]
        .into_iter()
        .filter(|k| attr.has(k))
        .collect();
    let mut errs = ErrorList::new();
    match set.len() {
        0 => errs.push(FieldError::required(
            path,
            "exactly one value must be specified",
        )),
        1 => {
            for key in ["string", "version"] {
                let v = attr.s(key);
                if attr.has(key) && v.len() > MAX_ATTRIBUTE_VALUE {
                    errs.push(FieldError::too_long(
                        &path.child(key),
                        "",
                        MAX_ATTRIBUTE_VALUE as i64,
                    ));
                }
            }
        }
        _ => errs.push(FieldError::invalid(
            path,
            attr.clone(),
            "exactly one value must be specified",
        )),
    }
    errs
}

/// `validateDevice`: a DNS-label name, qualified attribute and capacity names, and at
/// most 32 of them together.
fn validate_device(device: &Value, path: &Path) -> ErrorList {
    let mut errs = required_name(device.s("name"), &path.child("name"), is_dns1123_label);
    let attributes = device.m("attributes");
    let capacity = device.m("capacity");
    let total = attributes.map_or(0, |m| m.len()) + capacity.map_or(0, |m| m.len());
    if total > MAX_ATTRIBUTES_AND_CAPACITIES {
        errs.push(FieldError::too_many(
            path,
            total as i64,
            MAX_ATTRIBUTES_AND_CAPACITIES as i64,
        ));
    }
    let apath = path.child("attributes");
    for (k, v) in attributes.into_iter().flatten() {
        errs.extend(validate_qualified_name(k, &apath));
        errs.extend(validate_attribute(v, &apath.key(k)));
    }
    let cpath = path.child("capacity");
    for (k, v) in capacity.into_iter().flatten() {
        errs.extend(validate_qualified_name(k, &cpath));
        if !v.has("value") {
            errs.push(FieldError::required(&cpath.key(k).child("value"), ""));
        }
    }
    errs
}

fn validate_spec(spec: &Value, old: Option<&Value>) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = csi_driver_name(spec.s("driver"), &path.child("driver"));
    errs.extend(validate_pool(spec.f("pool"), &path.child("pool")));
    if let Some(old) = old {
        errs.extend(immutable(
            spec.f("pool").f("name"),
            old.f("pool").f("name"),
            &path.child("pool").child("name"),
        ));
        errs.extend(immutable(
            spec.f("driver"),
            old.f("driver"),
            &path.child("driver"),
        ));
        errs.extend(immutable(
            spec.f("nodeName"),
            old.f("nodeName"),
            &path.child("nodeName"),
        ));
    }
    let mut set = Vec::new();
    if let Some(node) = spec.get("nodeName").and_then(Value::as_str) {
        if node.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("nodeName"),
                node,
                "must be either unset or set to a non-empty string",
            ));
        } else {
            set.push("`nodeName`");
            errs.extend(invalid_each(
                node,
                &path.child("nodeName"),
                is_dns1123_subdomain(node),
            ));
        }
    }
    if spec.has("nodeSelector") {
        set.push("`nodeSelector`");
        let sel = spec.f("nodeSelector");
        let spath = path.child("nodeSelector");
        errs.extend(validate_node_selector(sel, false, &spath));
        let terms = sel.a("nodeSelectorTerms");
        if terms.len() != 1 {
            errs.push(FieldError::invalid(
                &spath.child("nodeSelectorTerms"),
                json!(terms),
                "must have exactly one node selector term",
            ));
        }
    }
    for key in ["allNodes", "perDeviceNodeSelection"] {
        match spec.get(key).and_then(Value::as_bool) {
            Some(true) => set.push(if key == "allNodes" {
                "`allNodes`"
            } else {
                "`perDeviceNodeSelection`"
            }),
            Some(false) => errs.push(FieldError::invalid(
                &path.child(key),
                false,
                "must be either unset or set to true",
            )),
            None => {}
        }
    }
    const ONE_OF: &str = "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required";
    match set.len() {
        0 => errs.push(FieldError::required(&path, ONE_OF)),
        1 => {}
        _ => errs.push(FieldError::invalid(
            &path,
            format!("{{{}}}", set.join(", ")),
            format!("{ONE_OF}, but multiple fields are set"),
        )),
    }
    if spec.has("sharedCounters") && spec.has("devices") {
        errs.push(FieldError::invalid(
            &path,
            "",
            "only one of `sharedCounters` or `devices` is allowed",
        ));
    }
    let devices = spec.a("devices");
    let dpath = path.child("devices");
    let advanced = devices
        .iter()
        .any(|d| !d.a("taints").is_empty() || !d.a("consumesCounters").is_empty());
    let max = if advanced {
        MAX_DEVICES_ADVANCED
    } else {
        MAX_DEVICES
    };
    if devices.len() > max {
        errs.push(FieldError::too_many(
            &dpath,
            devices.len() as i64,
            max as i64,
        ));
    }
    for (i, d) in devices.iter().enumerate() {
        errs.extend(validate_device(d, &dpath.index(i)));
    }
    errs.extend(duplicates(
        devices.iter().map(|d| d.s("name")),
        &dpath,
        Some("name"),
    ));
    errs
}

impl Strategy for ResourceSliceStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec(obj.f("spec"), None)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        validate_spec(new.f("spec"), Some(old.f("spec")))
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let spec = obj.f("spec");
        vec![
            ("spec.nodeName", spec.s("nodeName").to_string()),
            ("spec.driver", spec.s("driver").to_string()),
        ]
    }
}

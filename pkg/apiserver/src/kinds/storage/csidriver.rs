//! CSIDrivers (upstream `ValidateCSIDriver`, `ValidateCSIDriverUpdate`,
//! `SetDefaults_CSIDriver` and the csidriver strategy): the defaulted booleans, the
//! fsGroup policy, token requests, lifecycle modes; attachRequired and
//! volumeLifecycleModes never change.

use std::collections::HashSet;

use k1s_apimachinery::goformat::{go_strings, invalid_go};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use crate::kinds::validation::list_of;
use crate::kinds::validation::{Fields, semantic_eq};
use crate::meta::default_path;
use crate::registry::Strategy;

/// The CSIDriver strategy.
pub struct CsiDriverStrategy;

const FS_GROUP_POLICIES: &[&str] = &["File", "None", "ReadWriteOnceWithFSType"];
const LIFECYCLE_MODES: &[&str] = &["Persistent", "Ephemeral"];
const MIN_TOKEN_SECONDS: i64 = 10 * 60;
const MAX_TOKEN_SECONDS: i64 = 1 << 32;

/// `validateCSIDriverSpec`.
fn validate_spec(obj: &Value) -> ErrorList {
    let spec = obj.f("spec");
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    // Upstream's path says "attachedRequired" (sic).
    for (key, shown) in [
        ("attachRequired", "attachedRequired"),
        ("podInfoOnMount", "podInfoOnMount"),
        ("storageCapacity", "storageCapacity"),
    ] {
        if !spec.has(key) {
            errs.push(FieldError::required(&path.child(shown), ""));
        }
    }
    if let Some(policy) = spec.get("fsGroupPolicy").and_then(Value::as_str)
        && !FS_GROUP_POLICIES.contains(&policy)
    {
        errs.push(FieldError::not_supported(
            &path.child("fsGroupPolicy"),
            policy,
            FS_GROUP_POLICIES,
        ));
    }
    let mut audiences: HashSet<&str> = HashSet::new();
    for (i, req) in spec.a("tokenRequests").iter().enumerate() {
        let p = path.child("tokenRequests").index(i);
        let audience = req.s("audience");
        if !audiences.insert(audience) {
            errs.push(FieldError::duplicate(&p.child("audience"), audience));
            continue;
        }
        if let Some(secs) = req.i("expirationSeconds") {
            if secs < MIN_TOKEN_SECONDS {
                errs.push(FieldError::invalid(
                    &p.child("expirationSeconds"),
                    secs,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if secs > MAX_TOKEN_SECONDS {
                errs.push(FieldError::invalid(
                    &p.child("expirationSeconds"),
                    secs,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
        }
    }
    for mode in spec.a("volumeLifecycleModes") {
        let mode = mode.as_str().unwrap_or_default();
        if !LIFECYCLE_MODES.contains(&mode) {
            errs.push(FieldError::not_supported(
                &path.child("volumeLifecycleModes"),
                mode,
                LIFECYCLE_MODES,
            ));
        }
    }
    // SELinuxMountReadWriteOncePod is on by default, so seLinuxMount is required (and
    // defaulted).
    if !spec.has("seLinuxMount") {
        errs.push(FieldError::required(&path.child("seLinuxMount"), ""));
    }
    if let Some(period) = spec.i("nodeAllocatableUpdatePeriodSeconds")
        && period < 10
    {
        errs.push(FieldError::invalid(
            &path.child("nodeAllocatableUpdatePeriodSeconds"),
            period,
            "must be greater than or equal to 10 seconds",
        ));
    }
    errs
}

impl Strategy for CsiDriverStrategy {
    // Upstream's strategy refuses a PUT without a resourceVersion; patches apply to the
    // current version and are not affected.
    fn allow_unconditional_update(&self) -> bool {
        false
    }

    fn default(&self, obj: &mut Value) {
        default_path(obj, &["spec", "attachRequired"], json!(true));
        default_path(obj, &["spec", "podInfoOnMount"], json!(false));
        default_path(obj, &["spec", "storageCapacity"], json!(false));
        default_path(
            obj,
            &["spec", "fsGroupPolicy"],
            json!("ReadWriteOnceWithFSType"),
        );
        let modes_empty = obj
            .f("spec")
            .get("volumeLifecycleModes")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if modes_empty {
            obj["spec"]["volumeLifecycleModes"] = json!(["Persistent"]);
        }
        default_path(obj, &["spec", "requiresRepublish"], json!(false));
        default_path(obj, &["spec", "seLinuxMount"], json!(false));
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = validate_spec(new);
        let (n, o) = (new.f("spec"), old.f("spec"));
        let path = Path::new("spec");
        if !semantic_eq(n.f("attachRequired"), o.f("attachRequired")) {
            errs.push(FieldError::invalid(
                &path.child("attachedRequired"),
                n.f("attachRequired").clone(),
                "field is immutable",
            ));
        }
        if !semantic_eq(n.f("volumeLifecycleModes"), o.f("volumeLifecycleModes")) {
            errs.push(invalid_go(
                &path.child("volumeLifecycleModes"),
                go_strings(
                    "storage.VolumeLifecycleMode",
                    list_of(n, "volumeLifecycleModes"),
                ),
                "field is immutable",
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    #[test]
    fn a_minimal_driver_gets_its_defaults_and_keeps_its_immutables() {
        let mut d = json!({"metadata": {"name": "hostpath.csi.k8s.io"}, "spec": {"volumeLifecycleModes": ["Persistent", "Ephemeral"]}});
        CsiDriverStrategy.default(&mut d);
        assert!(texts(CsiDriverStrategy.validate(&d)).is_empty());
        let mut changed = d.clone();
        changed["spec"]["attachRequired"] = json!(false);
        changed["spec"]["volumeLifecycleModes"] = json!(["Persistent"]);
        changed["spec"]["podInfoOnMount"] = json!(true);
        assert_eq!(
            texts(CsiDriverStrategy.validate_update(&changed, &d)),
            vec![
                "spec.attachedRequired: Invalid value: false: field is immutable",
                "spec.volumeLifecycleModes: Invalid value: []storage.VolumeLifecycleMode{\"Persistent\"}: field is immutable",
            ]
        );
    }
}

//! ResourceClaims (upstream `ValidateResourceClaim`, `ValidateResourceClaimUpdate`,
//! `ValidateResourceClaimStatusUpdate` and the resourceclaim strategy): an immutable
//! spec of device requests, and a status written by the scheduler (the allocation,
//! fixed once made) and the kubelet (who the claim is reserved for).

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use super::{RequestNames, default_claim_spec, duplicates, immutable_spec, validate_device_claim};
use crate::kinds::validation::{Fields, immutable};
use crate::registry::Strategy;

/// The ResourceClaim strategy.
pub struct ResourceClaimStrategy;

/// `ResourceClaimReservedForMaxSize`.
const RESERVED_FOR_MAX: usize = 256;

fn validate_status(new: &Value, old: &Value) -> ErrorList {
    let path = Path::new("status");
    let status = new.f("status");
    let old_status = old.f("status");
    let mut errs = ErrorList::new();
    let reserved = status.a("reservedFor");
    let rpath = path.child("reservedFor");
    if reserved.len() > RESERVED_FOR_MAX {
        errs.push(FieldError::too_many(
            &rpath,
            reserved.len() as i64,
            RESERVED_FOR_MAX as i64,
        ));
    }
    for (i, r) in reserved.iter().enumerate() {
        let p = rpath.index(i);
        for key in ["resource", "name", "uid"] {
            if r.s(key).is_empty() {
                errs.push(FieldError::required(&p.child(key), ""));
            }
        }
    }
    errs.extend(duplicates(
        reserved.iter().map(|r| r.s("uid")),
        &rpath,
        Some("uid"),
    ));
    let allocated = status.has("allocation");
    if !reserved.is_empty() {
        if !allocated {
            errs.push(FieldError::forbidden(
                &rpath,
                "may not be specified when `allocated` is not set",
            ));
        } else if new.f("metadata").has("deletionTimestamp") {
            let before: Vec<&str> = old_status
                .a("reservedFor")
                .iter()
                .map(|r| r.s("uid"))
                .collect();
            if reserved.iter().any(|r| !before.contains(&r.s("uid"))) {
                errs.push(FieldError::forbidden(
                    &rpath,
                    "new entries may not be added while `deallocationRequested` or `deletionTimestamp` are set",
                ));
            }
        }
    }
    let apath = path.child("allocation");
    if allocated && old_status.has("allocation") {
        errs.extend(immutable(
            status.f("allocation"),
            old_status.f("allocation"),
            &apath,
        ));
    } else if allocated {
        let names = RequestNames::of(new.f("spec").f("devices"));
        let results = status.f("allocation").f("devices").a("results");
        let rp = apath.child("devices").child("results");
        for (i, r) in results.iter().enumerate() {
            let p = rp.index(i);
            if !names.has(r.s("request")) {
                errs.push(FieldError::invalid(
                    &p.child("request"),
                    r.s("request"),
                    "must be the name of a request in the claim or the name of a request and a subrequest separated by '/'",
                ));
            }
            errs.extend(crate::kinds::core::volumesource::csi_driver_name(
                r.s("driver"),
                &p.child("driver"),
            ));
            if r.s("pool").is_empty() {
                errs.push(FieldError::required(&p.child("pool"), ""));
            }
            errs.extend(crate::kinds::validation::required_name(
                r.s("device"),
                &p.child("device"),
                k1s_apimachinery::validation::is_dns1123_label,
            ));
        }
    }
    errs
}

impl Strategy for ResourceClaimStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec") {
            default_claim_spec(spec);
        }
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_device_claim(
            obj.f("spec").f("devices"),
            &Path::new("spec").child("devices"),
        )
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        immutable_spec(new, old, &Path::new("spec"))
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> ErrorList {
        validate_status(new, old)
    }
}

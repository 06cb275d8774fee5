//! Kinds of the `storage.k8s.io` group (upstream `pkg/apis/storage/validation`,
//! `pkg/apis/storage/v1/defaults.go`, `pkg/registry/storage/*`).

mod csidriver;
mod csinode;
mod csistoragecapacity;
mod storageclass;
mod volumeattachment;
mod volumeattributesclass;

pub use csidriver::CsiDriverStrategy;
pub use csinode::CsiNodeStrategy;
pub use csistoragecapacity::CsiStorageCapacityStrategy;
pub use storageclass::StorageClassStrategy;
pub use volumeattachment::VolumeAttachmentStrategy;
pub use volumeattributesclass::VolumeAttributesClassStrategy;

use k1s_apimachinery::validation::is_qualified_name;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Map, Value};

const MAX_PARAMETERS: usize = 512;
const MAX_PARAMETERS_SIZE: usize = 256 * 1024;

/// `validateProvisioner` (also a VolumeAttributesClass's `driverName`): required, and a
/// qualified name once lowercased.
fn validate_provisioner(value: &str, path: &Path) -> ErrorList {
    if value.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let lower = value.to_lowercase();
    is_qualified_name(&lower)
        .into_iter()
        .map(|msg| FieldError::invalid(path, lower.as_str(), msg))
        .collect()
}

/// `validateParameters`: at most 512 entries of 256 KiB in all, no empty key, and (for
/// VolumeAttributesClasses) at least one.
fn validate_parameters(
    params: Option<&Map<String, Value>>,
    allow_empty: bool,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let len = params.map_or(0, Map::len);
    if len > MAX_PARAMETERS {
        errs.push(FieldError::too_long(path, "", MAX_PARAMETERS as i64));
        return errs;
    }
    let mut total = 0;
    for (k, v) in params.into_iter().flatten() {
        if k.is_empty() {
            errs.push(FieldError::invalid(
                path,
                k.as_str(),
                "field can not be empty.",
            ));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > MAX_PARAMETERS_SIZE {
        errs.push(FieldError::too_long(path, "", MAX_PARAMETERS_SIZE as i64));
    }
    if !allow_empty && len == 0 {
        errs.push(FieldError::required(
            path,
            "must contain at least one key/value pair",
        ));
    }
    errs
}

//! VolumeAttachments (upstream `ValidateVolumeAttachment`, `ValidateVolumeAttachmentV1`,
//! `ValidateVolumeAttachmentUpdate` and the strategy): an attacher, exactly one source
//! and a node name; the spec never changes; status sizes are bounded.

use k1s_apimachinery::goformat::invalid_go;
use k1s_apimachinery::meta::name_is_dns_subdomain;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::core::volumesource::csi_driver_name;
use crate::kinds::validation::{Fields, semantic_eq};
use crate::registry::Strategy;

/// The VolumeAttachment strategy.
pub struct VolumeAttachmentStrategy;

const MAX_METADATA_SIZE: usize = 256 * 1024;
const MAX_ERROR_MESSAGE: usize = 1024;

fn validate_spec(spec: &Value) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    if spec.s("attacher").is_empty() {
        errs.push(FieldError::required(&path.child("attacher"), ""));
    }
    let source = spec.f("source");
    let source_path = path.child("source");
    let (inline, pv) = (
        source.has("inlineVolumeSpec"),
        source.get("persistentVolumeName"),
    );
    const ONE_OF: &str = "must specify exactly one of inlineVolumeSpec and persistentVolumeName";
    match (inline, pv.and_then(Value::as_str)) {
        (false, None) => errs.push(FieldError::required(&source_path, ONE_OF)),
        (true, Some(_)) => errs.push(FieldError::forbidden(&source_path, ONE_OF)),
        (false, Some("")) => errs.push(FieldError::required(
            &source_path.child("persistentVolumeName"),
            "must specify non empty persistentVolumeName",
        )),
        // The inline PersistentVolumeSpec is left to the core PersistentVolume checks.
        _ => {}
    }
    let node = spec.s("nodeName");
    for msg in name_is_dns_subdomain(node, false) {
        errs.push(FieldError::invalid(&path.child("nodeName"), node, msg));
    }
    errs
}

fn validate_volume_error(e: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if e.s("message").len() > MAX_ERROR_MESSAGE {
        // Upstream names the metadata limit here, not the message one.
        errs.push(FieldError::too_long(
            &path.child("message"),
            "",
            MAX_METADATA_SIZE as i64,
        ));
    }
    if let Some(code) = e.i("errorCode")
        && code < 0
    {
        errs.push(FieldError::invalid(
            &path.child("errorCode"),
            code,
            "must be between 0 and 2147483647, inclusive",
        ));
    }
    errs
}

fn validate_status(status: &Value) -> ErrorList {
    let path = Path::new("status");
    let mut errs = ErrorList::new();
    let size: usize = status
        .m("attachmentMetadata")
        .map(|m| {
            m.iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
                .sum()
        })
        .unwrap_or(0);
    if size > MAX_METADATA_SIZE {
        errs.push(FieldError::too_long(
            &path.child("attachmentMetadata"),
            "",
            MAX_METADATA_SIZE as i64,
        ));
    }
    for key in ["attachError", "detachError"] {
        if status.has(key) {
            errs.extend(validate_volume_error(status.f(key), &path.child(key)));
        }
    }
    errs
}

/// `ValidateVolumeAttachment`.
fn validate_attachment(obj: &Value) -> ErrorList {
    let mut errs = validate_spec(obj.f("spec"));
    errs.extend(validate_status(obj.f("status")));
    errs
}

impl Strategy for VolumeAttachmentStrategy {
    // Upstream's strategy refuses a PUT without a resourceVersion; patches apply to the
    // current version and are not affected.
    fn allow_unconditional_update(&self) -> bool {
        false
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        // Upstream resets the status to its zero value, which serializes like this.
        obj["status"] = serde_json::json!({"attached": false});
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = validate_attachment(obj);
        // `ValidateVolumeAttachmentV1`: stricter checks for objects created through v1.
        let spec = obj.f("spec");
        errs.extend(csi_driver_name(
            spec.s("attacher"),
            &Path::new("spec.attacher"),
        ));
        if let Some(pv) = spec
            .f("source")
            .get("persistentVolumeName")
            .and_then(Value::as_str)
        {
            for msg in name_is_dns_subdomain(pv, false) {
                errs.push(FieldError::invalid(
                    &Path::new("spec.source.persistentVolumeName"),
                    pv,
                    msg,
                ));
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = validate_attachment(new);
        if !semantic_eq(new.f("spec"), old.f("spec")) {
            // Upstream prints the Go struct, pointers as addresses; those can not be
            // reproduced, so the spec shows as JSON.
            errs.push(invalid_go(
                &Path::new("spec"),
                serde_json::to_string(new.f("spec")).unwrap_or_default(),
                "field is immutable",
            ));
        }
        errs
    }

    // The status subresource validates like an update (upstream's status strategy
    // inherits ValidateUpdate); the registry keeps the spec from the stored object.
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_attachment_needs_a_source_and_keeps_its_spec() {
        let va = json!({"spec": {"attacher": "ebs.csi.aws.com", "nodeName": "node-1",
            "source": {"persistentVolumeName": "pvc-123"}}});
        assert!(VolumeAttachmentStrategy.validate(&va).is_empty());
        let msgs: Vec<String> = VolumeAttachmentStrategy
            .validate(&json!({"spec": {"attacher": "a.b", "nodeName": "n"}}))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            msgs,
            vec![
                "spec.source: Required value: must specify exactly one of inlineVolumeSpec and persistentVolumeName"
            ]
        );
        let mut moved = va.clone();
        moved["spec"]["nodeName"] = json!("node-2");
        assert!(
            VolumeAttachmentStrategy.validate_update(&moved, &va)[0]
                .to_string()
                .ends_with(": field is immutable")
        );
    }
}

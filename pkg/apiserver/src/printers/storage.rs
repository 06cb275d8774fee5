//! Printers for the `storage.k8s.io` API group: StorageClass, VolumeAttributesClass,
//! VolumeAttachment, CSIDriver, CSINode and CSIStorageCapacity.

use jiff::Timestamp;
use serde_json::Value;

use super::docs::*;
use super::quantity::quantity_string;
use super::util::*;
use super::{AGE, Column, NAME, Printer, RowFn, col};

/// Printer for a `storage.k8s.io` kind, if upstream has one.
pub(super) fn printer(kind: &str) -> Option<Printer> {
    let (columns, row): (&'static [Column], RowFn) = match kind {
        "StorageClass" => (&STORAGE_CLASS_COLUMNS, storage_class_row),
        "VolumeAttributesClass" => (&VAC_COLUMNS, vac_row),
        "VolumeAttachment" => (&VOLUME_ATTACHMENT_COLUMNS, volume_attachment_row),
        "CSIDriver" => (&CSI_DRIVER_COLUMNS, csi_driver_row),
        "CSINode" => (&CSI_NODE_COLUMNS, csi_node_row),
        "CSIStorageCapacity" => (&CSI_STORAGE_CAPACITY_COLUMNS, csi_storage_capacity_row),
        _ => return None,
    };
    Some(Printer { columns, row })
}

static STORAGE_CLASS_COLUMNS: [Column; 6] = [
    NAME,
    col("Provisioner", "string", SC_PROVISIONER),
    col("ReclaimPolicy", "string", SC_RECLAIM),
    col("VolumeBindingMode", "string", SC_BINDING),
    col("AllowVolumeExpansion", "string", SC_EXPANSION),
    AGE,
];

fn storage_class_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let is_default = annotation(obj, "storageclass.kubernetes.io/is-default-class") == Some("true")
        || annotation(obj, "storageclass.beta.kubernetes.io/is-default-class") == Some("true");
    let mut display = name(obj).to_string();
    if is_default {
        display.push_str(" (default)");
    }
    vec![
        cell(display),
        cell(str_at(obj, &["provisioner"])),
        cell(opt_str(obj, &["reclaimPolicy"]).unwrap_or("Delete")),
        cell(opt_str(obj, &["volumeBindingMode"]).unwrap_or("Immediate")),
        Value::Bool(bool_at(obj, &["allowVolumeExpansion"])),
        age(obj, now),
    ]
}

static VAC_COLUMNS: [Column; 3] = [NAME, col("DriverName", "string", VAC_DRIVER), AGE];

fn vac_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut display = name(obj).to_string();
    if annotation(
        obj,
        "volumeattributesclass.alpha.kubernetes.io/is-default-class",
    ) == Some("true")
    {
        display.push_str(" (default)");
    }
    vec![
        cell(display),
        cell(str_at(obj, &["driverName"])),
        age(obj, now),
    ]
}

static VOLUME_ATTACHMENT_COLUMNS: [Column; 6] = [
    NAME,
    // Upstream marks this column with the `name` format too.
    Column {
        name: "Attacher",
        ty: "string",
        format: "name",
        description: VA_ATTACHER,
        priority: 0,
    },
    col("PV", "string", VA_PV),
    col("Node", "string", VA_NODE),
    col("Attached", "boolean", VA_ATTACHED),
    AGE,
];

fn volume_attachment_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "attacher"])),
        cell(str_at(obj, &["spec", "source", "persistentVolumeName"])),
        cell(str_at(obj, &["spec", "nodeName"])),
        Value::Bool(bool_at(obj, &["status", "attached"])),
        age(obj, now),
    ]
}

static CSI_DRIVER_COLUMNS: [Column; 8] = [
    NAME,
    col("AttachRequired", "boolean", CSID_ATTACH),
    col("PodInfoOnMount", "boolean", CSID_POD_INFO),
    col("StorageCapacity", "boolean", CSID_STORAGE_CAP),
    col("TokenRequests", "string", CSID_TOKEN),
    col("RequiresRepublish", "boolean", CSID_REPUBLISH),
    col("Modes", "string", CSID_MODES),
    AGE,
];

fn csi_driver_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let token_requests = match get(obj, &["spec", "tokenRequests"]).and_then(Value::as_array) {
        Some(reqs) => reqs
            .iter()
            .map(|r| str_at(r, &["audience"]))
            .collect::<Vec<_>>()
            .join(","),
        None => "<unset>".to_string(),
    };
    // volumeLifecycleModes defaults to [Persistent].
    let modes = match get(obj, &["spec", "volumeLifecycleModes"]).and_then(Value::as_array) {
        Some(m) => m
            .iter()
            .map(|v| v.as_str().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(","),
        None => "Persistent".to_string(),
    };
    let modes = if modes.is_empty() {
        "<none>".to_string()
    } else {
        modes
    };
    vec![
        cell(name(obj)),
        Value::Bool(opt_bool(obj, &["spec", "attachRequired"]).unwrap_or(true)),
        Value::Bool(bool_at(obj, &["spec", "podInfoOnMount"])),
        Value::Bool(bool_at(obj, &["spec", "storageCapacity"])),
        cell(token_requests),
        Value::Bool(bool_at(obj, &["spec", "requiresRepublish"])),
        cell(modes),
        age(obj, now),
    ]
}

static CSI_NODE_COLUMNS: [Column; 3] = [
    NAME,
    col(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    ),
    AGE,
];

fn csi_node_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        cell(name(obj)),
        int_cell(arr(obj, &["spec", "drivers"]).len() as i64),
        age(obj, now),
    ]
}

static CSI_STORAGE_CAPACITY_COLUMNS: [Column; 3] = [
    NAME,
    col("StorageClassName", "string", CSISC_SC),
    col("Capacity", "string", CSISC_CAP),
];

fn csi_storage_capacity_row(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let capacity = match present(obj, &["capacity"]) {
        Some(q) => quantity_string(Some(q)),
        None => "<unset>".to_string(),
    };
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["storageClassName"])),
        cell(capacity),
    ]
}

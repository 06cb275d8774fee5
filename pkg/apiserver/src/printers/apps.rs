//! Printers for the `apps` API group: Deployment, ReplicaSet, StatefulSet, DaemonSet and
//! ControllerRevision.

use jiff::Timestamp;
use serde_json::Value;

use super::docs::*;
use super::util::*;
use super::{AGE, CONTAINERS_WIDE, Column, IMAGES_WIDE, NAME, Printer, RowFn, col, wide};

/// Printer for an `apps` kind, if upstream has one.
pub(super) fn printer(kind: &str) -> Option<Printer> {
    let (columns, row): (&'static [Column], RowFn) = match kind {
        "Deployment" => (&DEPLOYMENT_COLUMNS, deployment_row),
        "ReplicaSet" => (&REPLICA_SET_COLUMNS, replica_set_row),
        "StatefulSet" => (&STATEFUL_SET_COLUMNS, stateful_set_row),
        "DaemonSet" => (&DAEMON_SET_COLUMNS, daemon_set_row),
        "ControllerRevision" => (&CONTROLLER_REVISION_COLUMNS, controller_revision_row),
        _ => return None,
    };
    Some(Printer { columns, row })
}

/// `spec.replicas`, which API defaulting sets to 1 when omitted.
fn desired_replicas(obj: &Value) -> i64 {
    opt_int(obj, &["spec", "replicas"]).unwrap_or(1)
}

/// Container names and images of `spec.template`.
fn template_containers(obj: &Value) -> (String, String) {
    container_cells(arr(obj, &["spec", "template", "spec", "containers"]))
}

static DEPLOYMENT_COLUMNS: [Column; 8] = [
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col("Up-to-date", "string", DEP_UPDATED),
    col("Available", "string", DEP_AVAILABLE),
    AGE,
    CONTAINERS_WIDE,
    IMAGES_WIDE,
    wide("Selector", "string", DEP_SELECTOR),
];

fn deployment_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    // Unlike other printers, Deployments render an empty selector as "".
    let selector = label_selector_string(get(obj, &["spec", "selector"]))
        .unwrap_or_else(|_| "<invalid>".to_string());
    vec![
        cell(name(obj)),
        cell(format!(
            "{}/{}",
            int_at(obj, &["status", "readyReplicas"]),
            desired_replicas(obj)
        )),
        int_cell(int_at(obj, &["status", "updatedReplicas"])),
        int_cell(int_at(obj, &["status", "availableReplicas"])),
        age(obj, now),
        cell(names),
        cell(images),
        cell(selector),
    ]
}

static REPLICA_SET_COLUMNS: [Column; 8] = [
    NAME,
    col("Desired", "integer", RS_SPEC_REPLICAS),
    col("Current", "integer", RS_STATUS_REPLICAS),
    col("Ready", "integer", RS_STATUS_READY),
    AGE,
    CONTAINERS_WIDE,
    IMAGES_WIDE,
    wide("Selector", "string", RS_SPEC_SELECTOR),
];

fn replica_set_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    vec![
        cell(name(obj)),
        int_cell(desired_replicas(obj)),
        int_cell(int_at(obj, &["status", "replicas"])),
        int_cell(int_at(obj, &["status", "readyReplicas"])),
        age(obj, now),
        cell(names),
        cell(images),
        cell(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

static STATEFUL_SET_COLUMNS: [Column; 5] = [
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE,
    CONTAINERS_WIDE,
    IMAGES_WIDE,
];

fn stateful_set_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    vec![
        cell(name(obj)),
        cell(format!(
            "{}/{}",
            int_at(obj, &["status", "readyReplicas"]),
            desired_replicas(obj)
        )),
        age(obj, now),
        cell(names),
        cell(images),
    ]
}

static DAEMON_SET_COLUMNS: [Column; 11] = [
    NAME,
    col("Desired", "integer", DS_DESIRED),
    col("Current", "integer", DS_CURRENT),
    col("Ready", "integer", DS_READY),
    col("Up-to-date", "integer", DS_UPDATED),
    col("Available", "integer", DS_AVAILABLE),
    col("Node Selector", "string", POD_NODE_SELECTOR),
    AGE,
    CONTAINERS_WIDE,
    IMAGES_WIDE,
    wide("Selector", "string", DS_SELECTOR),
];

fn daemon_set_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    let status = |field: &str| int_cell(int_at(obj, &["status", field]));
    vec![
        cell(name(obj)),
        status("desiredNumberScheduled"),
        status("currentNumberScheduled"),
        status("numberReady"),
        status("updatedNumberScheduled"),
        status("numberAvailable"),
        cell(format_labels(
            obj,
            &["spec", "template", "spec", "nodeSelector"],
        )),
        age(obj, now),
        cell(names),
        cell(images),
        cell(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

static CONTROLLER_REVISION_COLUMNS: [Column; 4] = [
    NAME,
    col("Controller", "string", "Controller of the object"),
    col("Revision", "string", CR_REVISION),
    AGE,
];

/// `kind.group/name` of the controlling owner (upstream `formatResourceName`), `<none>` if
/// no owner reference has `controller: true`.
pub(super) fn controller_name(obj: &Value) -> String {
    let Some(owner) = arr(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|o| bool_at(o, &["controller"]))
    else {
        return "<none>".to_string();
    };
    let api_version = str_at(owner, &["apiVersion"]);
    let group = match api_version.split_once('/') {
        Some((g, _)) => g,
        None => "",
    };
    let kind = str_at(owner, &["kind"]);
    let owner_name = str_at(owner, &["name"]);
    if group.is_empty() && kind.is_empty() {
        return owner_name.to_string();
    }
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{owner_name}", group_kind.to_lowercase())
}

fn controller_revision_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(controller_name(obj)),
        int_cell(int_at(obj, &["revision"])),
        age(obj, now),
    ]
}

//! Printers for the core (`""`) API group: Pod, PodTemplate, ReplicationController,
//! Service, Endpoints, Node, Event, Namespace, Secret, ServiceAccount, PersistentVolume,
//! PersistentVolumeClaim, ConfigMap, ResourceQuota and ComponentStatus.
//!
//! LimitRange, Binding and the other core kinds have no upstream printer and use the
//! default table.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use serde_json::Value;

use super::docs::*;
use super::quantity::quantity_string;
use super::util::*;
use super::{AGE, CONTAINERS_WIDE, Column, IMAGES_WIDE, NAME, Printer, RowFn, col, wide};

/// Printer for a core kind, if upstream has one.
pub(super) fn printer(kind: &str) -> Option<Printer> {
    let (columns, row): (&'static [Column], RowFn) = match kind {
        "Pod" => (&POD_COLUMNS, pod_row),
        "PodTemplate" => (&POD_TEMPLATE_COLUMNS, pod_template_row),
        "ReplicationController" => (&RC_COLUMNS, rc_row),
        "Service" => (&SERVICE_COLUMNS, service_row),
        "Endpoints" => (&ENDPOINTS_COLUMNS, endpoints_row),
        "Node" => (&NODE_COLUMNS, node_row),
        "Event" => (&EVENT_COLUMNS, core_event_row),
        "Namespace" => (&NAMESPACE_COLUMNS, namespace_row),
        "Secret" => (&SECRET_COLUMNS, secret_row),
        "ServiceAccount" => (&SERVICE_ACCOUNT_COLUMNS, service_account_row),
        "PersistentVolume" => (&PV_COLUMNS, pv_row),
        "PersistentVolumeClaim" => (&PVC_COLUMNS, pvc_row),
        "ConfigMap" => (&CONFIG_MAP_COLUMNS, config_map_row),
        "ResourceQuota" => (&RESOURCE_QUOTA_COLUMNS, resource_quota_row),
        "ComponentStatus" => (&COMPONENT_STATUS_COLUMNS, component_status_row),
        _ => return None,
    };
    Some(Printer { columns, row })
}

// ---------------------------------------------------------------------------------------
// Pod

static POD_COLUMNS: [Column; 9] = [
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last \
         container in this pod has restarted.",
    ),
    AGE,
    wide("IP", "string", POD_IP),
    wide("Node", "string", POD_NODE_NAME),
    wide("Nominated Node", "string", POD_NOMINATED),
    wide("Readiness Gates", "string", POD_READINESS_GATES),
];

/// The later of the two optional instants (`None` is Go's zero time).
fn later(cur: Option<Timestamp>, t: Option<Timestamp>) -> Option<Timestamp> {
    match (cur, t) {
        (Some(c), Some(t)) if c < t => Some(t),
        (None, Some(t)) => Some(t),
        (c, _) => c,
    }
}

/// `lastState.terminated.finishedAt` of a container status, when the container was terminated.
fn last_termination(status: &Value) -> Option<Option<Timestamp>> {
    present(status, &["lastState", "terminated"]).map(|t| parse_time(get(t, &["finishedAt"])))
}

/// Whether the pod carries a `type`-condition whose status is `True`.
fn pod_condition_true(obj: &Value, ty: &str) -> bool {
    arr(obj, &["status", "conditions"])
        .iter()
        .any(|c| str_at(c, &["type"]) == ty && str_at(c, &["status"]) == "True")
}

/// Upstream `isPodInitializedConditionTrue`: the first `Initialized` condition decides.
fn pod_initialized(obj: &Value) -> bool {
    arr(obj, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Initialized")
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

fn pod_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let containers = arr(obj, &["spec", "containers"]);
    let init_containers = arr(obj, &["spec", "initContainers"]);
    let mut restarts: i64 = 0;
    let mut restartable_restarts: i64 = 0;
    let mut total = containers.len();
    let mut ready = 0usize;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_restart: Option<Timestamp> = None;

    // The API server always sets a phase on create; treat a missing one as Pending.
    let phase = opt_str(obj, &["status", "phase"]).unwrap_or("Pending");
    let status_reason = str_at(obj, &["status", "reason"]);
    let mut reason = if status_reason.is_empty() {
        phase
    } else {
        status_reason
    }
    .to_string();

    for c in arr(obj, &["status", "conditions"]) {
        if str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }

    // Sidecars: init containers with restartPolicy Always count as regular containers.
    let mut restartable: HashMap<&str, bool> = HashMap::new();
    for ic in init_containers {
        let is_sidecar = str_at(ic, &["restartPolicy"]) == "Always";
        restartable.insert(str_at(ic, &["name"]), is_sidecar);
        if is_sidecar {
            total += 1;
        }
    }

    let mut initializing = false;
    for (i, cs) in arr(obj, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = int_at(cs, &["restartCount"]);
        restarts = restarts.saturating_add(count);
        if let Some(t) = last_termination(cs) {
            last_restart = later(last_restart, t);
        }
        let is_sidecar = restartable
            .get(str_at(cs, &["name"]))
            .copied()
            .unwrap_or(false);
        if is_sidecar {
            restartable_restarts = restartable_restarts.saturating_add(count);
            if let Some(t) = last_termination(cs) {
                last_restartable_restart = later(last_restartable_restart, t);
            }
        }
        let terminated = present(cs, &["state", "terminated"]);
        let waiting = present(cs, &["state", "waiting"]);
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if is_sidecar && opt_bool(cs, &["started"]) == Some(true) {
            if bool_at(cs, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            let r = str_at(t, &["reason"]);
            reason = if !r.is_empty() {
                format!("Init:{r}")
            } else if int_at(t, &["signal"]) != 0 {
                format!("Init:Signal:{}", int_at(t, &["signal"]))
            } else {
                format!("Init:ExitCode:{}", int_at(t, &["exitCode"]))
            };
        } else if let Some(r) = waiting
            .map(|w| str_at(w, &["reason"]))
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{}", init_containers.len());
        }
        initializing = true;
        break;
    }

    if !initializing || pod_initialized(obj) {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        for cs in arr(obj, &["status", "containerStatuses"]).iter().rev() {
            restarts = restarts.saturating_add(int_at(cs, &["restartCount"]));
            if let Some(t) = last_termination(cs) {
                last_restart = later(last_restart, t);
            }
            let waiting_reason = present(cs, &["state", "waiting"])
                .map(|w| str_at(w, &["reason"]))
                .unwrap_or("");
            let terminated = present(cs, &["state", "terminated"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                let r = str_at(t, &["reason"]);
                reason = if !r.is_empty() {
                    r.to_string()
                } else if int_at(t, &["signal"]) != 0 {
                    format!("Signal:{}", int_at(t, &["signal"]))
                } else {
                    format!("ExitCode:{}", int_at(t, &["exitCode"]))
                };
            } else if bool_at(cs, &["ready"]) && present(cs, &["state", "running"]).is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed but another still runs is not "Completed".
        if reason == "Completed" && has_running {
            reason = if pod_condition_true(obj, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    if deleting(obj) && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting(obj) && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    let mut pod_ip = arr(obj, &["status", "podIPs"])
        .first()
        .map(|ip| str_at(ip, &["ip"]))
        .unwrap_or_else(|| str_at(obj, &["status", "podIP"]));
    if pod_ip.is_empty() {
        pod_ip = "<none>";
    }
    let node_name = non_empty_or(str_at(obj, &["spec", "nodeName"]), "<none>");
    let nominated = non_empty_or(str_at(obj, &["status", "nominatedNodeName"]), "<none>");
    let gates = arr(obj, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = arr(obj, &["status", "conditions"]);
        let true_count = gates
            .iter()
            .filter(|g| {
                let ty = str_at(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| str_at(c, &["type"]) == ty)
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };

    vec![
        cell(name(obj)),
        cell(format!("{ready}/{total}")),
        cell(reason),
        cell(restarts_cell),
        age(obj, now),
        cell(pod_ip),
        cell(node_name),
        cell(nominated),
        cell(readiness_gates),
    ]
}

/// `s`, or `fallback` when `s` is empty.
fn non_empty_or<'a>(s: &'a str, fallback: &'a str) -> &'a str {
    if s.is_empty() { fallback } else { s }
}

// ---------------------------------------------------------------------------------------
// PodTemplate

static POD_TEMPLATE_COLUMNS: [Column; 4] = [
    NAME,
    col(
        "Containers",
        "string",
        "Names of each container in the template.",
    ),
    col(
        "Images",
        "string",
        "Images referenced by each container in the template.",
    ),
    col("Pod Labels", "string", "The labels for the pod template."),
];

fn pod_template_row(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(arr(obj, &["template", "spec", "containers"]));
    vec![
        cell(name(obj)),
        cell(names),
        cell(images),
        cell(format_labels(obj, &["template", "metadata", "labels"])),
    ]
}

// ---------------------------------------------------------------------------------------
// ReplicationController

static RC_COLUMNS: [Column; 8] = [
    NAME,
    col("Desired", "integer", RC_SPEC_REPLICAS),
    col("Current", "integer", RC_STATUS_REPLICAS),
    col("Ready", "integer", RC_STATUS_READY),
    AGE,
    CONTAINERS_WIDE,
    IMAGES_WIDE,
    wide("Selector", "string", RC_SPEC_SELECTOR),
];

fn rc_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(arr(obj, &["spec", "template", "spec", "containers"]));
    vec![
        cell(name(obj)),
        // spec.replicas defaults to 1.
        int_cell(opt_int(obj, &["spec", "replicas"]).unwrap_or(1)),
        int_cell(int_at(obj, &["status", "replicas"])),
        int_cell(int_at(obj, &["status", "readyReplicas"])),
        age(obj, now),
        cell(names),
        cell(images),
        cell(format_labels(obj, &["spec", "selector"])),
    ]
}

// ---------------------------------------------------------------------------------------
// Service

static SERVICE_COLUMNS: [Column; 7] = [
    NAME,
    col("Type", "string", SVC_TYPE),
    col("Cluster-IP", "string", SVC_CLUSTER_IP),
    col("External-IP", "string", SVC_EXTERNAL_IPS),
    col("Port(s)", "string", SVC_PORTS),
    AGE,
    wide("Selector", "string", SVC_SELECTOR),
];

/// The EXTERNAL-IP cell of a Service (upstream `getServiceExternalIP`, wide form).
fn service_external_ip(obj: &Value, svc_type: &str) -> String {
    let external_ips: Vec<&str> = arr(obj, &["spec", "externalIPs"])
        .iter()
        .map(|v| v.as_str().unwrap_or(""))
        .collect();
    match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(get(obj, &["status", "loadBalancer"]));
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = Vec::new();
                if !lb.is_empty() {
                    all.extend(lb.split(','));
                }
                all.extend(external_ips);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => str_at(obj, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn service_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    // spec.type defaults to ClusterIP.
    let svc_type = non_empty_or(str_at(obj, &["spec", "type"]), "ClusterIP");
    let cluster_ip = arr(obj, &["spec", "clusterIPs"])
        .first()
        .map(|v| v.as_str().unwrap_or(""))
        .or_else(|| opt_str(obj, &["spec", "clusterIP"]).filter(|s| !s.is_empty()))
        .unwrap_or("<none>");
    let ports: Vec<String> = arr(obj, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int_at(p, &["port"]);
            // protocol defaults to TCP.
            let proto = non_empty_or(str_at(p, &["protocol"]), "TCP");
            let node_port = int_at(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        cell(name(obj)),
        cell(svc_type),
        cell(cluster_ip),
        cell(service_external_ip(obj, svc_type)),
        cell(ports),
        age(obj, now),
        cell(format_labels(obj, &["spec", "selector"])),
    ]
}

// ---------------------------------------------------------------------------------------
// Endpoints

static ENDPOINTS_COLUMNS: [Column; 3] = [NAME, col("Endpoints", "string", EP_SUBSETS), AGE];

/// `host:port`, bracketing IPv6 hosts like Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Upstream `formatEndpoints` with all ports: at most three addresses, then `+ N more...`.
fn format_endpoints(obj: &Value) -> String {
    let subsets = arr(obj, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr(ss, &["addresses"]);
        let ports = arr(ss, &["ports"]);
        if ports.is_empty() {
            // Headless services without ports.
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, &["ip"]).to_string());
            }
            continue;
        }
        for p in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(a, &["ip"]), int_at(p, &["port"])));
            }
        }
    }
    let out = list.join(",");
    if more {
        format!("{out} + {} more...", count.saturating_sub(MAX))
    } else {
        out
    }
}

fn endpoints_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![cell(name(obj)), cell(format_endpoints(obj)), age(obj, now)]
}

// ---------------------------------------------------------------------------------------
// Node

static NODE_COLUMNS: [Column; 10] = [
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", NODE_KUBELET_VERSION),
    wide("Internal-IP", "string", NODE_ADDRESSES),
    wide("External-IP", "string", NODE_ADDRESSES),
    wide("OS-Image", "string", NODE_OS_IMAGE),
    wide("Kernel-Version", "string", NODE_KERNEL),
    wide("Container-Runtime", "string", NODE_CRI),
];

/// Node roles from `node-role.kubernetes.io/<role>` keys and the `kubernetes.io/role` value.
fn node_roles(obj: &Value) -> String {
    let mut roles = BTreeSet::new();
    for (k, v) in string_map(obj, &["metadata", "labels"]) {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role);
            }
        } else if k == "kubernetes.io/role" && !v.is_empty() {
            roles.insert(v);
        }
    }
    let out = roles.into_iter().collect::<Vec<_>>().join(",");
    if out.is_empty() {
        "<none>".to_string()
    } else {
        out
    }
}

/// The first node address of the given type, `<none>` if there is none.
fn node_address(obj: &Value, ty: &str) -> String {
    arr(obj, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == ty)
        .map_or_else(
            || "<none>".to_string(),
            |a| str_at(a, &["address"]).to_string(),
        )
}

fn node_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    // The last condition of a type wins, like upstream's condition map.
    let ready = arr(obj, &["status", "conditions"])
        .iter()
        .rfind(|c| str_at(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if bool_at(obj, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }
    let info = |field: &str| {
        non_empty_or(str_at(obj, &["status", "nodeInfo", field]), "<unknown>").to_string()
    };
    vec![
        cell(name(obj)),
        cell(status.join(",")),
        cell(node_roles(obj)),
        age(obj, now),
        cell(str_at(obj, &["status", "nodeInfo", "kubeletVersion"])),
        cell(node_address(obj, "InternalIP")),
        cell(node_address(obj, "ExternalIP")),
        cell(info("osImage")),
        cell(info("kernelVersion")),
        cell(info("containerRuntimeVersion")),
    ]
}

// ---------------------------------------------------------------------------------------
// Event (core/v1 and events.k8s.io/v1 share the printer)

/// Columns of the Event table (both `v1` and `events.k8s.io` Events).
pub(super) static EVENT_COLUMNS: [Column; 10] = [
    col("Last Seen", "string", EV_LAST),
    col("Type", "string", EV_TYPE),
    col("Reason", "string", EV_REASON),
    col("Object", "string", EV_INVOLVED),
    wide("Subobject", "string", EV_FIELD_PATH),
    wide("Source", "string", EV_SOURCE),
    col("Message", "string", EV_MESSAGE),
    wide("First Seen", "string", EV_FIRST),
    wide("Count", "string", EV_COUNT),
    Column {
        name: "Name",
        ty: "string",
        format: "name",
        description: OBJ_NAME,
        priority: 1,
    },
];

/// JSON field names of an Event in one of its two API shapes.
pub(super) struct EventFields {
    /// The object the event is about (`involvedObject` / `regarding`).
    pub(super) regarding: &'static str,
    /// Human-readable description (`message` / `note`).
    pub(super) message: &'static str,
    /// Legacy source (`source` / `deprecatedSource`).
    pub(super) source: &'static str,
    /// Legacy first timestamp.
    pub(super) first: &'static str,
    /// Legacy last timestamp.
    pub(super) last: &'static str,
    /// Legacy count.
    pub(super) count: &'static str,
    /// Reporting controller (`reportingComponent` / `reportingController`).
    pub(super) controller: &'static str,
}

/// Field names of a core/v1 Event.
const CORE_EVENT: EventFields = EventFields {
    regarding: "involvedObject",
    message: "message",
    source: "source",
    first: "firstTimestamp",
    last: "lastTimestamp",
    count: "count",
    controller: "reportingComponent",
};

fn core_event_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    event_row(obj, now, &CORE_EVENT)
}

/// Row of the Event table for an Event with the given field names.
pub(super) fn event_row(obj: &Value, now: Timestamp, f: &EventFields) -> Vec<Value> {
    let first_ts = parse_time(get(obj, &[f.first]));
    let first = match first_ts {
        Some(t) => since(Some(t), now),
        None => since_at(obj, &["eventTime"], now),
    };
    let mut last = match parse_time(get(obj, &[f.last])) {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = int_at(obj, &[f.count]);
    if let Some(series) = present(obj, &["series"]) {
        last = since_at(series, &["lastObservedTime"], now);
        count = int_at(series, &["count"]);
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }
    let kind = str_at(obj, &[f.regarding, "kind"]).to_lowercase();
    let involved_name = str_at(obj, &[f.regarding, "name"]);
    let target = if involved_name.is_empty() {
        kind
    } else {
        format!("{kind}/{involved_name}")
    };
    let component = non_empty_or(
        str_at(obj, &[f.source, "component"]),
        str_at(obj, &[f.controller]),
    );
    let host = non_empty_or(
        str_at(obj, &[f.source, "host"]),
        str_at(obj, &["reportingInstance"]),
    );
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        cell(last),
        cell(str_at(obj, &["type"])),
        cell(str_at(obj, &["reason"])),
        cell(target),
        cell(str_at(obj, &[f.regarding, "fieldPath"])),
        cell(source),
        cell(str_at(obj, &[f.message]).trim()),
        cell(first),
        int_cell(count),
        cell(name(obj)),
    ]
}

// ---------------------------------------------------------------------------------------
// Namespace, Secret, ServiceAccount, ConfigMap, ComponentStatus

static NAMESPACE_COLUMNS: [Column; 3] = [
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

fn namespace_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    // status.phase defaults to Active.
    let phase = non_empty_or(str_at(obj, &["status", "phase"]), "Active");
    vec![cell(name(obj)), cell(phase), age(obj, now)]
}

static SECRET_COLUMNS: [Column; 4] = [
    NAME,
    col("Type", "string", SECRET_TYPE),
    col("Data", "string", SECRET_DATA),
    AGE,
];

fn secret_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    // type defaults to Opaque.
    let ty = non_empty_or(str_at(obj, &["type"]), "Opaque");
    vec![
        cell(name(obj)),
        cell(ty),
        int_cell(obj_len(obj, &["data"]) as i64),
        age(obj, now),
    ]
}

static SERVICE_ACCOUNT_COLUMNS: [Column; 3] = [NAME, col("Secrets", "string", SA_SECRETS), AGE];

fn service_account_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        cell(name(obj)),
        int_cell(arr(obj, &["secrets"]).len() as i64),
        age(obj, now),
    ]
}

static CONFIG_MAP_COLUMNS: [Column; 3] = [NAME, col("Data", "string", CM_DATA), AGE];

fn config_map_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let n = obj_len(obj, &["data"]) + obj_len(obj, &["binaryData"]);
    vec![cell(name(obj)), int_cell(n as i64), age(obj, now)]
}

static COMPONENT_STATUS_COLUMNS: [Column; 4] = [
    NAME,
    col("Status", "string", "Status of the component conditions"),
    col("Message", "string", "Message of the component conditions"),
    col("Error", "string", "Error of the component conditions"),
];

fn component_status_row(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let healthy = arr(obj, &["conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if str_at(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            str_at(c, &["message"]),
            str_at(c, &["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    vec![cell(name(obj)), cell(status), cell(message), cell(error)]
}

// ---------------------------------------------------------------------------------------
// PersistentVolume / PersistentVolumeClaim

static PV_COLUMNS: [Column; 11] = [
    NAME,
    col("Capacity", "string", PV_CAPACITY),
    col("Access Modes", "string", PV_ACCESS_MODES),
    col("Reclaim Policy", "string", PV_RECLAIM),
    col("Status", "string", PV_PHASE),
    col("Claim", "string", PV_CLAIM),
    col("StorageClass", "string", "StorageClass of the pv"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    col("Reason", "string", PV_REASON),
    AGE,
    wide("VolumeMode", "string", PV_VOLUME_MODE),
];

/// Upstream `GetAccessModesAsString`: `RWO,ROX,RWX,RWOP` in that order, duplicates dropped.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The beta storage-class annotation, which takes precedence over `spec.storageClassName`.
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

fn pv_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let claim = present(obj, &["spec", "claimRef"]).map_or_else(String::new, |c| {
        format!("{}/{}", str_at(c, &["namespace"]), str_at(c, &["name"]))
    });
    // Defaults: phase Pending, reclaim policy Retain, volume mode Filesystem.
    let phase = if deleting(obj) {
        "Terminating"
    } else {
        non_empty_or(str_at(obj, &["status", "phase"]), "Pending")
    };
    let reclaim = non_empty_or(
        str_at(obj, &["spec", "persistentVolumeReclaimPolicy"]),
        "Retain",
    );
    let class = annotation(obj, BETA_STORAGE_CLASS)
        .unwrap_or_else(|| str_at(obj, &["spec", "storageClassName"]));
    let vac = opt_str(obj, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>");
    let volume_mode = opt_str(obj, &["spec", "volumeMode"]).unwrap_or("Filesystem");
    vec![
        cell(name(obj)),
        cell(quantity_string(get(obj, &["spec", "capacity", "storage"]))),
        cell(access_modes(arr(obj, &["spec", "accessModes"]))),
        cell(reclaim),
        cell(phase),
        cell(claim),
        cell(class),
        cell(vac),
        cell(str_at(obj, &["status", "reason"])),
        age(obj, now),
        cell(volume_mode),
    ]
}

static PVC_COLUMNS: [Column; 9] = [
    NAME,
    col("Status", "string", PVC_PHASE),
    col("Volume", "string", PVC_VOLUME_NAME),
    col("Capacity", "string", PVC_CAPACITY),
    col("Access Modes", "string", PVC_ACCESS_MODES),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    wide("VolumeMode", "string", PVC_VOLUME_MODE),
];

fn pvc_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let phase = if deleting(obj) {
        "Terminating"
    } else {
        non_empty_or(str_at(obj, &["status", "phase"]), "Pending")
    };
    let volume = str_at(obj, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity_string(get(obj, &["status", "capacity", "storage"])),
            access_modes(arr(obj, &["status", "accessModes"])),
        )
    };
    let class = annotation(obj, BETA_STORAGE_CLASS)
        .or_else(|| opt_str(obj, &["spec", "storageClassName"]))
        .unwrap_or("");
    let vac = opt_str(obj, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>");
    let volume_mode = opt_str(obj, &["spec", "volumeMode"]).unwrap_or("Filesystem");
    vec![
        cell(name(obj)),
        cell(phase),
        cell(volume),
        cell(capacity),
        cell(modes),
        cell(class),
        cell(vac),
        age(obj, now),
        cell(volume_mode),
    ]
}

// ---------------------------------------------------------------------------------------
// ResourceQuota

static RESOURCE_QUOTA_COLUMNS: [Column; 4] = [
    NAME,
    col(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent \
         of contention on the node.",
    ),
    AGE,
];

fn resource_quota_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let hard: BTreeMap<&str, &Value> = get(obj, &["status", "hard"])
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default();
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    for (resource, hard_q) in hard {
        let used = quantity_string(get(obj, &["status", "used", resource]));
        let entry = format!("{resource}: {used}/{}", quantity_string(Some(hard_q)));
        let mut pieces = resource.split('.');
        let is_limit = pieces.next() == Some("limits") && pieces.next().is_some();
        if is_limit {
            limits.push(entry)
        } else {
            requests.push(entry)
        }
    }
    vec![
        cell(name(obj)),
        cell(requests.join(", ")),
        cell(limits.join(", ")),
        age(obj, now),
    ]
}

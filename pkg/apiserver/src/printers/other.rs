//! Printers for the remaining API groups: `autoscaling` (HorizontalPodAutoscaler v1/v2,
//! Scale), `policy` (PodDisruptionBudget), `scheduling.k8s.io` (PriorityClass),
//! `node.k8s.io` (RuntimeClass), `coordination.k8s.io` (Lease, LeaseCandidate),
//! `certificates.k8s.io` (CertificateSigningRequest, ClusterTrustBundle),
//! `discovery.k8s.io` (EndpointSlice), `events.k8s.io` (Event),
//! `flowcontrol.apiserver.k8s.io` (FlowSchema, PriorityLevelConfiguration),
//! `admissionregistration.k8s.io` (webhook configurations, admission policies and bindings),
//! `resource.k8s.io` (DeviceClass, ResourceClaim, ResourceClaimTemplate, ResourceSlice) and
//! `internal.apiserver.k8s.io` (StorageVersion).

use jiff::Timestamp;
use serde_json::{Value, json};

use super::core::{EVENT_COLUMNS, EventFields, event_row};
use super::docs::*;
use super::quantity::{quantity_ptr_string, quantity_string};
use super::util::*;
use super::{AGE, Column, NAME, Printer, RowFn, col};

/// Printer for `group`/`kind`, if upstream has one.
pub(super) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, row): (&'static [Column], RowFn) = match (group, kind) {
        ("autoscaling", "HorizontalPodAutoscaler") => (&HPA_COLUMNS, hpa_row),
        ("autoscaling", "Scale") => (&SCALE_COLUMNS, scale_row),
        ("policy", "PodDisruptionBudget") => (&PDB_COLUMNS, pdb_row),
        ("scheduling.k8s.io", "PriorityClass") => (&PRIORITY_CLASS_COLUMNS, priority_class_row),
        ("node.k8s.io", "RuntimeClass") => (&RUNTIME_CLASS_COLUMNS, runtime_class_row),
        ("coordination.k8s.io", "Lease") => (&LEASE_COLUMNS, lease_row),
        ("coordination.k8s.io", "LeaseCandidate") => {
            (&LEASE_CANDIDATE_COLUMNS, lease_candidate_row)
        }
        ("certificates.k8s.io", "CertificateSigningRequest") => (&CSR_COLUMNS, csr_row),
        ("certificates.k8s.io", "ClusterTrustBundle") => (&CTB_COLUMNS, ctb_row),
        ("discovery.k8s.io", "EndpointSlice") => (&ENDPOINT_SLICE_COLUMNS, endpoint_slice_row),
        ("events.k8s.io", "Event") => (&EVENT_COLUMNS, events_event_row),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => (&FLOW_SCHEMA_COLUMNS, flow_schema_row),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => {
            (&PRIORITY_LEVEL_COLUMNS, priority_level_row)
        }
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration")
        | ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            (&WEBHOOK_COLUMNS, webhook_row)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            (&VAP_COLUMNS, validating_policy_row)
        }
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy") => {
            (&MAP_COLUMNS, mutating_policy_row)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding")
        | ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding") => {
            (&POLICY_BINDING_COLUMNS, policy_binding_row)
        }
        ("resource.k8s.io", "DeviceClass") | ("resource.k8s.io", "ResourceClaimTemplate") => {
            (&NAME_AGE_COLUMNS, name_age_row)
        }
        ("resource.k8s.io", "ResourceClaim") => (&RESOURCE_CLAIM_COLUMNS, resource_claim_row),
        ("resource.k8s.io", "ResourceSlice") => (&RESOURCE_SLICE_COLUMNS, resource_slice_row),
        ("internal.apiserver.k8s.io", "StorageVersion") => {
            (&STORAGE_VERSION_COLUMNS, storage_version_row)
        }
        _ => return None,
    };
    Some(Printer { columns, row })
}

// ---------------------------------------------------------------------------------------
// autoscaling

static HPA_COLUMNS: [Column; 7] = [
    NAME,
    col("Reference", "string", HPA_REF),
    col("Targets", "string", HPA_METRICS),
    col("MinPods", "string", HPA_MIN),
    col("MaxPods", "string", HPA_MAX),
    col("Replicas", "string", HPA_CURRENT),
    AGE,
];

/// The metric specs and statuses of an HPA in the autoscaling/v2 shape. A v1 object's
/// `targetCPUUtilizationPercentage` / `currentCPUUtilizationPercentage` are converted like
/// upstream's v1 conversion; with no metrics at all, API defaulting's 80% CPU target applies.
fn hpa_metrics(obj: &Value) -> (Vec<Value>, Vec<Value>) {
    let cpu_utilization = |field: &str, pct: i64| json!({"type": "Resource", "resource": {"name": "cpu", field: {"averageUtilization": pct}}});
    let mut specs = arr(obj, &["spec", "metrics"]).to_vec();
    if specs.is_empty() {
        let pct = opt_int(obj, &["spec", "targetCPUUtilizationPercentage"]).unwrap_or(80);
        specs.push(cpu_utilization("target", pct));
    }
    let statuses = match get(obj, &["status", "currentMetrics"]).and_then(Value::as_array) {
        Some(list) => list.clone(),
        None => opt_int(obj, &["status", "currentCPUUtilizationPercentage"])
            .map(|pct| vec![cpu_utilization("current", pct)])
            .unwrap_or_default(),
    };
    (specs, statuses)
}

/// `<n>%` for an `averageUtilization` field, if set.
fn percent(v: &Value, path: &[&str]) -> Option<String> {
    opt_int(v, path).map(|p| format!("{p}%"))
}

/// Upstream `formatHPAMetrics`: at most two metrics, `current/target` each.
fn format_hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    const MAX: usize = 2;
    let null = Value::Null;
    let unknown = || "<unknown>".to_string();
    let mut list = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i).unwrap_or(&null);
        let entry = match str_at(spec, &["type"]) {
            ty @ ("External" | "Object") => {
                let field = if ty == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = get(spec, &[field, "target"]).unwrap_or(&null);
                let status = present(status, &[field]);
                if let Some(avg) = present(target, &["averageValue"]) {
                    let current = status
                        .and_then(|s| present(s, &["current", "averageValue"]))
                        .map_or_else(unknown, |q| quantity_string(Some(q)));
                    format!("{current}/{} (avg)", quantity_string(Some(avg)))
                } else {
                    let current = status.map_or_else(unknown, |s| {
                        quantity_ptr_string(get(s, &["current", "value"]))
                    });
                    format!("{current}/{}", quantity_ptr_string(get(target, &["value"])))
                }
            }
            "Pods" => {
                let current = present(status, &["pods"]).map_or_else(unknown, |s| {
                    quantity_ptr_string(get(s, &["current", "averageValue"]))
                });
                let target = quantity_ptr_string(get(spec, &["pods", "target", "averageValue"]));
                format!("{current}/{target}")
            }
            ty @ ("Resource" | "ContainerResource") => {
                let field = if ty == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let source = get(spec, &[field]).unwrap_or(&null);
                let resource = str_at(source, &["name"]);
                let status = present(status, &[field]);
                if let Some(avg) = present(source, &["target", "averageValue"]) {
                    let current = status.map_or_else(unknown, |s| {
                        quantity_ptr_string(get(s, &["current", "averageValue"]))
                    });
                    format!("{resource}: {current}/{}", quantity_string(Some(avg)))
                } else {
                    let current = status
                        .and_then(|s| percent(s, &["current", "averageUtilization"]))
                        .unwrap_or_else(unknown);
                    let target = percent(source, &["target", "averageUtilization"])
                        .unwrap_or_else(|| "<auto>".to_string());
                    format!("{resource}: {current}/{target}")
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(entry);
    }
    if list.len() > MAX {
        return format!("{} + {} more...", list[..MAX].join(", "), list.len() - MAX);
    }
    list.join(", ")
}

fn hpa_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(obj, &["spec", "scaleTargetRef", "kind"]),
        str_at(obj, &["spec", "scaleTargetRef", "name"])
    );
    let (specs, statuses) = hpa_metrics(obj);
    // spec.minReplicas defaults to 1.
    let min_pods = opt_int(obj, &["spec", "minReplicas"]).unwrap_or(1);
    vec![
        cell(name(obj)),
        cell(reference),
        cell(format_hpa_metrics(&specs, &statuses)),
        cell(min_pods.to_string()),
        int_cell(int_at(obj, &["spec", "maxReplicas"])),
        int_cell(int_at(obj, &["status", "currentReplicas"])),
        age(obj, now),
    ]
}

static SCALE_COLUMNS: [Column; 4] = [
    // Upstream's Scale table does not mark its Name column with the `name` format.
    col("Name", "string", OBJ_NAME),
    col("Desired", "integer", SCALE_SPEC_REPLICAS),
    col("Available", "integer", SCALE_STATUS_REPLICAS),
    AGE,
];

fn scale_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        cell(name(obj)),
        int_cell(int_at(obj, &["spec", "replicas"])),
        int_cell(int_at(obj, &["status", "replicas"])),
        age(obj, now),
    ]
}

// ---------------------------------------------------------------------------------------
// policy, scheduling, node, coordination

static PDB_COLUMNS: [Column; 5] = [
    NAME,
    col(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    col(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

fn pdb_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let int_or_na = |field: &str| {
        present(obj, &["spec", field]).map_or_else(|| "N/A".to_string(), int_or_string)
    };
    vec![
        cell(name(obj)),
        cell(int_or_na("minAvailable")),
        cell(int_or_na("maxUnavailable")),
        int_cell(int_at(obj, &["status", "disruptionsAllowed"])),
        age(obj, now),
    ]
}

static PRIORITY_CLASS_COLUMNS: [Column; 5] = [
    NAME,
    col("Value", "integer", PC_VALUE),
    col("Global-Default", "boolean", PC_GLOBAL_DEFAULT),
    AGE,
    col("PreemptionPolicy", "string", PC_PREEMPTION),
];

fn priority_class_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    // preemptionPolicy defaults to PreemptLowerPriority.
    let preemption = opt_str(obj, &["preemptionPolicy"]).unwrap_or("PreemptLowerPriority");
    vec![
        cell(name(obj)),
        int_cell(int_at(obj, &["value"])),
        Value::Bool(bool_at(obj, &["globalDefault"])),
        age(obj, now),
        cell(preemption),
    ]
}

static RUNTIME_CLASS_COLUMNS: [Column; 3] = [
    NAME,
    // Upstream looks the description up under a key ObjectMeta does not have: it is empty.
    col("Handler", "string", ""),
    AGE,
];

fn runtime_class_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["handler"])),
        age(obj, now),
    ]
}

static LEASE_COLUMNS: [Column; 3] = [NAME, col("Holder", "string", LEASE_HOLDER), AGE];

fn lease_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "holderIdentity"])),
        age(obj, now),
    ]
}

static LEASE_CANDIDATE_COLUMNS: [Column; 5] = [
    NAME,
    col("LeaseName", "string", LC_LEASE_NAME),
    col("BinaryVersion", "string", ""),
    col("EmulationVersion", "string", ""),
    AGE,
];

fn lease_candidate_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "leaseName"])),
        cell(str_at(obj, &["spec", "binaryVersion"])),
        cell(str_at(obj, &["spec", "emulationVersion"])),
        age(obj, now),
    ]
}

// ---------------------------------------------------------------------------------------
// certificates

static CSR_COLUMNS: [Column; 6] = [
    NAME,
    AGE,
    col("SignerName", "string", CSR_SIGNER),
    col("Requestor", "string", CSR_REQUEST),
    col("RequestedDuration", "string", CSR_EXPIRATION),
    col("Condition", "string", CSR_CONDITIONS),
];

/// Upstream `extractCSRStatus`: `Denied`/`Approved`/`Pending`, then `,Failed`, `,Issued`.
fn csr_condition(obj: &Value) -> String {
    let has = |ty: &str| {
        arr(obj, &["status", "conditions"])
            .iter()
            .any(|c| str_at(c, &["type"]) == ty)
    };
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(obj, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

fn csr_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let signer = opt_str(obj, &["spec", "signerName"])
        .filter(|s| !s.is_empty())
        .unwrap_or("<none>");
    let duration = opt_int(obj, &["spec", "expirationSeconds"])
        .map_or_else(|| "<none>".to_string(), seconds_duration);
    vec![
        cell(name(obj)),
        age(obj, now),
        cell(signer),
        cell(str_at(obj, &["spec", "username"])),
        cell(duration),
        cell(csr_condition(obj)),
    ]
}

static CTB_COLUMNS: [Column; 2] = [NAME, col("SignerName", "string", CTB_SIGNER)];

fn ctb_row(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let signer = opt_str(obj, &["spec", "signerName"])
        .filter(|s| !s.is_empty())
        .unwrap_or("<none>");
    vec![cell(name(obj)), cell(signer)]
}

// ---------------------------------------------------------------------------------------
// discovery, events

static ENDPOINT_SLICE_COLUMNS: [Column; 5] = [
    NAME,
    col("AddressType", "string", ES_ADDRESS_TYPE),
    col("Ports", "string", ES_PORTS),
    col("Endpoints", "string", ES_ENDPOINTS),
    AGE,
];

fn endpoint_slice_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let ports: Vec<String> = arr(obj, &["ports"])
        .iter()
        .map(|p| match (opt_int(p, &["port"]), opt_str(p, &["name"])) {
            (Some(port), _) => port.to_string(),
            (None, Some(n)) => n.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<String> = arr(obj, &["endpoints"])
        .iter()
        .flat_map(|e| arr(e, &["addresses"]))
        .map(|a| a.as_str().unwrap_or("").to_string())
        .collect();
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["addressType"])),
        cell(list_with_more(&ports, 3, "<unset>")),
        cell(list_with_more(&addresses, 3, "<unset>")),
        age(obj, now),
    ]
}

/// Field names of an `events.k8s.io/v1` Event.
const EVENTS_V1: EventFields = EventFields {
    regarding: "regarding",
    message: "note",
    source: "deprecatedSource",
    first: "deprecatedFirstTimestamp",
    last: "deprecatedLastTimestamp",
    count: "deprecatedCount",
    controller: "reportingController",
};

fn events_event_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    event_row(obj, now, &EVENTS_V1)
}

// ---------------------------------------------------------------------------------------
// flowcontrol

static FLOW_SCHEMA_COLUMNS: [Column; 6] = [
    NAME,
    col("PriorityLevel", "string", FS_PL),
    col("MatchingPrecedence", "string", FS_PRECEDENCE),
    col("DistinguisherMethod", "string", FS_DISTINGUISHER),
    AGE,
    col(
        "MissingPL",
        "string",
        "references a broken or non-existent PriorityLevelConfiguration",
    ),
];

fn flow_schema_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let distinguisher = present(obj, &["spec", "distinguisherMethod"]).map_or_else(
        || "<none>".to_string(),
        |d| str_at(d, &["type"]).to_string(),
    );
    let missing = arr(obj, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Dangling")
        .map_or("?", |c| str_at(c, &["status"]));
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "priorityLevelConfiguration", "name"])),
        int_cell(int_at(obj, &["spec", "matchingPrecedence"])),
        cell(distinguisher),
        age(obj, now),
        cell(missing),
    ]
}

static PRIORITY_LEVEL_COLUMNS: [Column; 7] = [
    NAME,
    col("Type", "string", PL_TYPE),
    col("NominalConcurrencyShares", "string", PL_NCS),
    col("Queues", "string", PL_QUEUES),
    col("HandSize", "string", PL_HAND),
    col("QueueLengthLimit", "string", PL_QLL),
    AGE,
];

fn priority_level_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let none = || cell("<none>");
    let (mut ncs, mut queues, mut hand, mut qll) = (none(), none(), none(), none());
    if let Some(limited) = present(obj, &["spec", "limited"]) {
        // v1 defaulting: 30 shares; queuing 64 queues, hand size 8, queue length limit 50.
        ncs = int_cell(opt_int(limited, &["nominalConcurrencyShares"]).unwrap_or(30));
        if let Some(q) = present(limited, &["limitResponse", "queuing"]) {
            queues = int_cell(opt_int(q, &["queues"]).unwrap_or(64));
            hand = int_cell(opt_int(q, &["handSize"]).unwrap_or(8));
            qll = int_cell(opt_int(q, &["queueLengthLimit"]).unwrap_or(50));
        }
    }
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "type"])),
        ncs,
        queues,
        hand,
        qll,
        age(obj, now),
    ]
}

// ---------------------------------------------------------------------------------------
// admissionregistration

static WEBHOOK_COLUMNS: [Column; 3] = [
    NAME,
    col(
        "Webhooks",
        "integer",
        "Webhooks indicates the number of webhooks registered in this configuration",
    ),
    AGE,
];

fn webhook_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        cell(name(obj)),
        int_cell(arr(obj, &["webhooks"]).len() as i64),
        age(obj, now),
    ]
}

/// Description of the `ParamKind` column of admission policies.
const PARAM_KIND_DESC: &str =
    "ParamKind specifies the kind of resources used to parameterize this policy";

static VAP_COLUMNS: [Column; 4] = [
    NAME,
    col(
        "Validations",
        "integer",
        "Validations indicates the number of validation rules defined in this configuration",
    ),
    col("ParamKind", "string", PARAM_KIND_DESC),
    AGE,
];

static MAP_COLUMNS: [Column; 4] = [
    NAME,
    col(
        "Mutations",
        "integer",
        "Mutation indicates the number of mutations rules defined in this configuration",
    ),
    col("ParamKind", "string", PARAM_KIND_DESC),
    AGE,
];

/// Row of an admission policy whose rule list lives at `spec.<rules>`.
fn policy_row(obj: &Value, now: Timestamp, rules: &str) -> Vec<Value> {
    let param_kind = present(obj, &["spec", "paramKind"]).map_or_else(
        || "<unset>".to_string(),
        |p| format!("{}/{}", str_at(p, &["apiVersion"]), str_at(p, &["kind"])),
    );
    vec![
        cell(name(obj)),
        int_cell(arr(obj, &["spec", rules]).len() as i64),
        cell(param_kind),
        age(obj, now),
    ]
}

fn validating_policy_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    policy_row(obj, now, "validations")
}

fn mutating_policy_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    policy_row(obj, now, "mutations")
}

static POLICY_BINDING_COLUMNS: [Column; 4] = [
    NAME,
    col(
        "PolicyName",
        "string",
        "PolicyName indicates the policy definition which the policy binding binded to",
    ),
    col(
        "ParamRef",
        "string",
        "ParamRef indicates the param resource which sets the configration param",
    ),
    AGE,
];

fn policy_binding_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let param = match present(obj, &["spec", "paramRef"]) {
        Some(p) => {
            let param_name = str_at(p, &["name"]);
            let ns = str_at(p, &["namespace"]);
            if !param_name.is_empty() {
                // A reference without namespace may be cluster-scoped: shown as `*/name`.
                format!("{}/{param_name}", if ns.is_empty() { "*" } else { ns })
            } else if let Some(sel) = present(p, &["selector"]) {
                label_selector_debug_string(sel)
            } else {
                "<unset>".to_string()
            }
        }
        None => "<unset>".to_string(),
    };
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "policyName"])),
        cell(param),
        age(obj, now),
    ]
}

// ---------------------------------------------------------------------------------------
// resource.k8s.io (DRA)

static NAME_AGE_COLUMNS: [Column; 2] = [NAME, AGE];

fn name_age_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![cell(name(obj)), age(obj, now)]
}

static RESOURCE_CLAIM_COLUMNS: [Column; 3] = [
    NAME,
    col(
        "State",
        "string",
        "A summary of the current state (allocated, pending, reserved, etc.).",
    ),
    AGE,
];

fn resource_claim_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut states = Vec::new();
    if deleting(obj) {
        states.push("deleted");
    }
    if present(obj, &["status", "allocation"]).is_none() {
        if !deleting(obj) {
            states.push("pending");
        }
    } else {
        states.push("allocated");
        if !arr(obj, &["status", "reservedFor"]).is_empty() {
            states.push("reserved");
        }
    }
    vec![cell(name(obj)), cell(states.join(",")), age(obj, now)]
}

static RESOURCE_SLICE_COLUMNS: [Column; 5] = [
    NAME,
    col("Node", "string", RSL_NODE),
    col("Driver", "string", RSL_DRIVER),
    col("Pool", "string", RSL_POOL),
    AGE,
];

fn resource_slice_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "nodeName"])),
        cell(str_at(obj, &["spec", "driver"])),
        cell(str_at(obj, &["spec", "pool", "name"])),
        age(obj, now),
    ]
}

// ---------------------------------------------------------------------------------------
// internal.apiserver.k8s.io

static STORAGE_VERSION_COLUMNS: [Column; 4] = [
    NAME,
    col("CommonEncodingVersion", "string", SV_COMMON),
    col("StorageVersions", "string", SV_VERSIONS),
    AGE,
];

fn storage_version_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let common = opt_str(obj, &["status", "commonEncodingVersion"]).unwrap_or("<unset>");
    let versions: Vec<String> = arr(obj, &["status", "storageVersions"])
        .iter()
        .map(|v| {
            format!(
                "{}={}",
                str_at(v, &["apiServerID"]),
                str_at(v, &["encodingVersion"])
            )
        })
        .collect();
    vec![
        cell(name(obj)),
        cell(common),
        cell(list_with_more(&versions, 3, "<unset>")),
        age(obj, now),
    ]
}

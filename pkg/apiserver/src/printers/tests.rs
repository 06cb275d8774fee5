//! Tests of the printers, modelled on upstream's `printers_test.go` cases (adapted to the
//! always-wide server-side rows and to JSON objects).

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{columns, human_duration, row};

/// The fixed reference time of all tests.
fn now() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().unwrap()
}

/// RFC 3339 string of `now - secs` (negative: in the future).
fn ago(secs: i64) -> String {
    now()
        .checked_sub(SignedDuration::from_secs(secs))
        .unwrap()
        .to_string()
}

const MIN: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// Row of `obj` as a JSON array, checked to have one cell per column.
fn cells(group: &str, kind: &str, obj: Value) -> Value {
    let r = row(group, kind, &obj, now());
    assert_eq!(
        r.len(),
        columns(group, kind).len(),
        "{group}/{kind} cell count"
    );
    Value::Array(r)
}

/// Every kind with a dedicated printer, plus a few that use the default table.
const KINDS: &[(&str, &str)] = &[
    ("", "Pod"),
    ("", "PodTemplate"),
    ("", "ReplicationController"),
    ("", "Service"),
    ("", "Endpoints"),
    ("", "Node"),
    ("", "Event"),
    ("", "Namespace"),
    ("", "Secret"),
    ("", "ServiceAccount"),
    ("", "PersistentVolume"),
    ("", "PersistentVolumeClaim"),
    ("", "ConfigMap"),
    ("", "ResourceQuota"),
    ("", "ComponentStatus"),
    ("", "LimitRange"),
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ControllerRevision"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("autoscaling", "Scale"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("policy", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "CSIStorageCapacity"),
    ("storage.k8s.io", "VolumeAttributesClass"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("coordination.k8s.io", "Lease"),
    ("coordination.k8s.io", "LeaseCandidate"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("events.k8s.io", "Event"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "ResourceClaim"),
    ("resource.k8s.io", "ResourceClaimTemplate"),
    ("resource.k8s.io", "ResourceSlice"),
    ("internal.apiserver.k8s.io", "StorageVersion"),
    ("example.com", "Widget"),
];

/// Column names of `group`/`kind`.
fn names(group: &str, kind: &str) -> Vec<&'static str> {
    columns(group, kind).iter().map(|c| c.name).collect()
}

#[test]
fn column_definitions_are_well_formed() {
    for (group, kind) in KINDS {
        let cols = columns(group, kind);
        assert!(!cols.is_empty(), "{group}/{kind}");
        for c in cols {
            assert!(!c.name.is_empty());
            assert!(
                ["string", "integer", "number", "boolean", "date"].contains(&c.ty),
                "{c:?}"
            );
            assert!(c.priority == 0 || c.priority == 1, "{c:?}");
            assert!(c.format.is_empty() || c.format == "name", "{c:?}");
            let undocumented = ["Handler", "BinaryVersion", "EmulationVersion"];
            assert!(
                !c.description.is_empty() || undocumented.contains(&c.name),
                "{c:?}"
            );
        }
    }
}

#[test]
fn column_sets_match_upstream() {
    assert_eq!(
        names("", "Pod"),
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
    assert_eq!(
        columns("", "Pod")
            .iter()
            .map(|c| c.priority)
            .collect::<Vec<_>>(),
        [0, 0, 0, 0, 0, 1, 1, 1, 1]
    );
    assert_eq!(
        names("apps", "Deployment"),
        [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert_eq!(
        names("", "Service"),
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "Selector"
        ]
    );
    assert_eq!(
        names("", "Node"),
        [
            "Name",
            "Status",
            "Roles",
            "Age",
            "Version",
            "Internal-IP",
            "External-IP",
            "OS-Image",
            "Kernel-Version",
            "Container-Runtime"
        ]
    );
    assert_eq!(
        names("", "Event"),
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
    assert_eq!(names("events.k8s.io", "Event"), names("", "Event"));
    assert_eq!(
        names("batch", "Job"),
        [
            "Name",
            "Status",
            "Completions",
            "Duration",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert_eq!(
        names("batch", "CronJob"),
        [
            "Name",
            "Schedule",
            "Timezone",
            "Suspend",
            "Active",
            "Last Schedule",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert_eq!(
        names("networking.k8s.io", "Ingress"),
        ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    );
    assert_eq!(
        names("autoscaling", "HorizontalPodAutoscaler"),
        [
            "Name",
            "Reference",
            "Targets",
            "MinPods",
            "MaxPods",
            "Replicas",
            "Age"
        ]
    );
    assert_eq!(
        names("rbac.authorization.k8s.io", "Role"),
        ["Name", "Created At"]
    );
    assert_eq!(columns("", "LimitRange")[1].ty, "date");
    assert!(
        columns("", "Pod")[0]
            .description
            .starts_with("Name must be unique within a namespace.")
    );
    assert!(
        columns("", "Pod")[4]
            .description
            .starts_with("CreationTimestamp is a timestamp")
    );
    assert_eq!(columns("", "Pod")[0].format, "name");
    let event_name = columns("", "Event")[9];
    assert_eq!((event_name.format, event_name.priority), ("name", 1));
}

#[test]
fn malformed_objects_never_panic() {
    let weird = [
        json!(null),
        json!([]),
        json!("pod"),
        json!(42),
        json!({}),
        json!({"metadata": 5, "spec": "x", "status": [], "subsets": "y", "data": 1}),
        json!({
            "metadata": {"name": 7, "labels": [1], "annotations": "a", "creationTimestamp": "yesterday",
                         "deletionTimestamp": 3, "ownerReferences": {"controller": true}},
            "spec": {"containers": {"a": 1}, "initContainers": [null, 3, {"name": 4}],
                     "replicas": "3", "selector": {"matchLabels": [1], "matchExpressions": [{"operator": 1}]},
                     "ports": [null, {"port": "80"}], "type": 9, "metrics": [{"type": "Resource"}, {"type": "Pods"},
                     {"type": "External"}, {"type": "Object"}, {"type": "ContainerResource"}, 1],
                     "completions": "x", "rules": [1, {"host": 2}], "tls": 5, "capacity": {"storage": true},
                     "claimRef": 1, "template": [], "jobTemplate": 1, "limited": {"limitResponse": 1}},
            "status": {"phase": 1, "conditions": [1, {"type": 2}], "containerStatuses": [1, {"state": 1}],
                       "initContainerStatuses": [{"state": {"terminated": {"exitCode": "1"}}}],
                       "hard": {"cpu": 1, "limits.cpu": [1]}, "used": 3, "currentMetrics": [1, 2],
                       "loadBalancer": {"ingress": [1, {"ip": 3}]}, "addresses": "x"},
            "involvedObject": 3, "regarding": [], "series": 5, "subsets": [1, {"addresses": [1], "ports": [2]}],
            "webhooks": 1, "ports": [1, {"port": 1e40}], "endpoints": [{"addresses": [1, "a"]}],
        }),
    ];
    for (group, kind) in KINDS {
        for obj in &weird {
            let r = row(group, kind, obj, now());
            assert_eq!(
                r.len(),
                columns(group, kind).len(),
                "{group}/{kind} on {obj}"
            );
        }
    }
}

#[test]
fn human_duration_boundaries() {
    let d = |secs: i64| human_duration(SignedDuration::from_secs(secs));
    assert_eq!(
        human_duration(SignedDuration::from_millis(-2100)),
        "<invalid>"
    );
    assert_eq!(human_duration(SignedDuration::from_millis(-1900)), "0s");
    assert_eq!(d(-2), "<invalid>");
    assert_eq!(d(-1), "0s");
    assert_eq!(d(0), "0s");
    assert_eq!(d(5), "5s");
    assert_eq!(d(119), "119s");
    assert_eq!(d(120), "2m");
    assert_eq!(d(192), "3m12s");
    assert_eq!(d(9 * MIN + 59), "9m59s");
    assert_eq!(d(10 * MIN), "10m");
    assert_eq!(d(100 * MIN), "100m");
    assert_eq!(d(3 * HOUR - 1), "179m");
    assert_eq!(d(3 * HOUR), "3h");
    assert_eq!(d(5 * HOUR + 30 * MIN), "5h30m");
    assert_eq!(d(8 * HOUR - 1), "7h59m");
    assert_eq!(d(8 * HOUR), "8h");
    assert_eq!(d(47 * HOUR), "47h");
    assert_eq!(d(48 * HOUR), "2d");
    assert_eq!(d(3 * DAY + 4 * HOUR), "3d4h");
    assert_eq!(d(8 * DAY - 1), "7d23h");
    assert_eq!(d(8 * DAY), "8d");
    assert_eq!(d(90 * DAY), "90d");
    assert_eq!(d(2 * 365 * DAY - 1), "729d");
    assert_eq!(d(2 * 365 * DAY), "2y");
    assert_eq!(d((3 * 365 + 45) * DAY), "3y45d");
    assert_eq!(d(8 * 365 * DAY - 1), "7y364d");
    assert_eq!(d(8 * 365 * DAY), "8y");
    assert_eq!(d(10 * 365 * DAY), "10y");
}

#[test]
fn default_table() {
    let obj = json!({"metadata": {"name": "r1", "creationTimestamp": "2024-03-04T05:06:07.5Z"}});
    assert_eq!(
        cells("rbac.authorization.k8s.io", "Role", obj),
        json!(["r1", "2024-03-04T05:06:07Z"])
    );
    assert_eq!(
        cells("", "LimitRange", json!({})),
        json!(["", "0001-01-01T00:00:00Z"])
    );
    assert_eq!(
        cells(
            "example.com",
            "Widget",
            json!({"metadata": {"name": "w", "creationTimestamp": "2024-03-04T07:06:07+02:00"}})
        ),
        json!(["w", "2024-03-04T05:06:07Z"])
    );
}

// ---------------------------------------------------------------------------------------
// Pod

/// A pod named `name` with `n` empty containers and the given status.
fn pod(name: &str, n: usize, status: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": {"containers": vec![json!({}); n]}, "status": status})
}

/// Expected pod row with empty wide cells.
fn pod_cells(name: &str, ready: &str, status: &str, restarts: &str) -> Value {
    json!([
        name,
        ready,
        status,
        restarts,
        "<unknown>",
        "<none>",
        "<none>",
        "<none>",
        "<none>"
    ])
}

#[test]
fn pod_ready_restarts_and_reasons() {
    let running = json!({"running": {}});
    let cases = [
        (
            pod(
                "test1",
                2,
                json!({"phase": "podPhase", "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": running}, {"restartCount": 3}]}),
            ),
            pod_cells("test1", "1/2", "podPhase", "6"),
        ),
        (
            pod(
                "test2",
                2,
                json!({"phase": "podPhase", "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": running},
                {"restartCount": 3, "state": {"waiting": {"reason": "ContainerWaitingReason"}}}]}),
            ),
            pod_cells("test2", "1/2", "ContainerWaitingReason", "6"),
        ),
        (
            pod(
                "test3",
                2,
                json!({"phase": "podPhase", "containerStatuses": [
                {"restartCount": 3, "state": {"waiting": {"reason": "ContainerWaitingReason"}}},
                {"restartCount": 3, "state": {"terminated": {"reason": "ContainerTerminatedReason"}}}]}),
            ),
            pod_cells("test3", "0/2", "ContainerWaitingReason", "6"),
        ),
        (
            pod(
                "test4",
                2,
                json!({"phase": "podPhase", "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": running},
                {"ready": true, "restartCount": 3}]}),
            ),
            pod_cells("test4", "1/2", "podPhase", "6"),
        ),
        (
            pod(
                "test5",
                2,
                json!({"phase": "podPhase", "reason": "podReason", "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": running},
                {"ready": true, "restartCount": 3}]}),
            ),
            pod_cells("test5", "1/2", "podReason", "6"),
        ),
        (
            pod(
                "test6",
                2,
                json!({"phase": "Running", "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}},
                {"ready": true, "restartCount": 3, "state": running}]}),
            ),
            pod_cells("test6", "1/2", "NotReady", "6"),
        ),
        (
            pod(
                "test6b",
                2,
                json!({"phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}},
                {"ready": true, "restartCount": 3, "state": running}]}),
            ),
            pod_cells("test6b", "1/2", "Running", "6"),
        ),
        (
            pod(
                "exit",
                1,
                json!({"phase": "Running", "containerStatuses": [
                {"state": {"terminated": {"exitCode": 137}}}]}),
            ),
            pod_cells("exit", "0/1", "ExitCode:137", "0"),
        ),
        (
            pod(
                "signal",
                1,
                json!({"phase": "Running", "containerStatuses": [
                {"state": {"terminated": {"exitCode": 0, "signal": 9}}}]}),
            ),
            pod_cells("signal", "0/1", "Signal:9", "0"),
        ),
        (
            pod(
                "crash",
                1,
                json!({"phase": "Running", "containerStatuses": [
                {"restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(3 * MIN + 12)}}}]}),
            ),
            pod_cells("crash", "0/1", "CrashLoopBackOff", "5 (3m12s ago)"),
        ),
        (
            pod(
                "test15",
                2,
                json!({"phase": "podPhase", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
            ),
            pod_cells("test15", "0/2", "SchedulingGated", "0"),
        ),
        (
            pod(
                "test16",
                1,
                json!({"phase": "Succeeded", "containerStatuses": [
                {"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}),
            ),
            pod_cells("test16", "0/1", "Completed", "0"),
        ),
        (
            pod(
                "test17",
                1,
                json!({"phase": "Failed", "containerStatuses": [
                {"state": {"terminated": {"reason": "Error", "exitCode": 1}}}]}),
            ),
            pod_cells("test17", "0/1", "Error", "0"),
        ),
        (
            pod("pending", 1, json!({})),
            pod_cells("pending", "0/1", "Pending", "0"),
        ),
        (
            pod(
                "evicted",
                1,
                json!({"phase": "Failed", "reason": "Evicted"}),
            ),
            pod_cells("evicted", "0/1", "Evicted", "0"),
        ),
    ];
    for (obj, want) in cases {
        assert_eq!(cells("", "Pod", obj), want);
    }
}

#[test]
fn pod_restarts_show_last_restart_age() {
    let running = json!({"running": {}});
    let obj = pod(
        "test12",
        1,
        json!({"phase": "Running", "containerStatuses": [
        {"ready": true, "restartCount": 3, "state": running,
         "lastState": {"terminated": {"finishedAt": ago(5 * DAY)}}}]}),
    );
    assert_eq!(
        cells("", "Pod", obj),
        pod_cells("test12", "1/1", "Running", "3 (5d ago)")
    );

    let obj = pod(
        "test14",
        2,
        json!({"phase": "Running", "containerStatuses": [
        {"ready": true, "restartCount": 6, "state": running,
         "lastState": {"terminated": {"finishedAt": ago(5 * DAY)}}},
        {"ready": true, "restartCount": 3, "state": running,
         "lastState": {"terminated": {"finishedAt": ago(20 * DAY)}}}]}),
    );
    assert_eq!(
        cells("", "Pod", obj),
        pod_cells("test14", "2/2", "Running", "9 (5d ago)")
    );

    // Restarted, but without a termination time: the plain count.
    let obj = pod(
        "test1",
        1,
        json!({"phase": "Running", "containerStatuses": [
        {"ready": true, "restartCount": 2, "state": running}]}),
    );
    assert_eq!(
        cells("", "Pod", obj),
        pod_cells("test1", "1/1", "Running", "2")
    );
}

#[test]
fn pod_init_containers() {
    let running = json!({"running": {}});
    let with_init = |name: &str, n_init: usize, status: Value| {
        json!({"metadata": {"name": name},
               "spec": {"initContainers": vec![json!({}); n_init], "containers": [{}]},
               "status": status})
    };
    let cases = [
        (
            with_init(
                "test7",
                1,
                json!({"phase": "podPhase",
                "initContainerStatuses": [{"restartCount": 3, "state": running,
                    "lastState": {"terminated": {"finishedAt": ago(10)}}}],
                "containerStatuses": [{"state": {"waiting": {}}}]}),
            ),
            pod_cells("test7", "0/1", "Init:0/1", "3 (10s ago)"),
        ),
        (
            with_init(
                "test9",
                2,
                json!({"phase": "podPhase",
                "initContainerStatuses": [
                    {"state": {"terminated": {}}},
                    {"restartCount": 3, "state": running,
                     "lastState": {"terminated": {"finishedAt": ago(10)}}}],
                "containerStatuses": [{"state": {"waiting": {}}}]}),
            ),
            pod_cells("test9", "0/1", "Init:1/2", "3 (10s ago)"),
        ),
        (
            with_init(
                "test10",
                2,
                json!({"phase": "podPhase",
                "initContainerStatuses": [
                    {"restartCount": 2, "state": {"terminated": {}},
                     "lastState": {"terminated": {"finishedAt": ago(2 * MIN)}}},
                    {"restartCount": 3, "state": running,
                     "lastState": {"terminated": {"finishedAt": ago(10)}}}],
                "containerStatuses": [{"state": {"waiting": {}}}]}),
            ),
            pod_cells("test10", "0/1", "Init:1/2", "5 (10s ago)"),
        ),
        (
            with_init(
                "test11",
                1,
                json!({"phase": "Running",
                "initContainerStatuses": [
                    {"restartCount": 2, "state": {"terminated": {}},
                     "lastState": {"terminated": {"finishedAt": ago(2 * MIN)}}}],
                "containerStatuses": [{"restartCount": 4, "state": running,
                     "lastState": {"terminated": {"finishedAt": ago(20)}}}]}),
            ),
            pod_cells("test11", "0/1", "Running", "4 (20s ago)"),
        ),
        (
            with_init(
                "initcrash",
                1,
                json!({"phase": "Pending",
                "initContainerStatuses": [{"restartCount": 1,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
            ),
            pod_cells("initcrash", "0/1", "Init:CrashLoopBackOff", "1"),
        ),
        (
            with_init(
                "initfail",
                1,
                json!({"phase": "Pending",
                "initContainerStatuses": [{"state": {"terminated": {"exitCode": 2}}}]}),
            ),
            pod_cells("initfail", "0/1", "Init:ExitCode:2", "0"),
        ),
        (
            with_init(
                "initsig",
                1,
                json!({"phase": "Pending",
                "initContainerStatuses": [{"state": {"terminated": {"exitCode": 2, "signal": 15}}}]}),
            ),
            pod_cells("initsig", "0/1", "Init:Signal:15", "0"),
        ),
        (
            with_init(
                "initreason",
                1,
                json!({"phase": "Pending",
                "initContainerStatuses": [{"state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}),
            ),
            pod_cells("initreason", "0/1", "Init:Error", "0"),
        ),
        (
            with_init(
                "podinit",
                1,
                json!({"phase": "Pending",
                "initContainerStatuses": [{"state": {"waiting": {"reason": "PodInitializing"}}}]}),
            ),
            pod_cells("podinit", "0/1", "Init:0/1", "0"),
        ),
    ];
    for (obj, want) in cases {
        assert_eq!(cells("", "Pod", obj), want);
    }
}

#[test]
fn pod_sidecar_containers() {
    let spec = json!({
        "initContainers": [
            {"name": "restartable-init-1", "restartPolicy": "Always"},
            {"name": "restartable-init-2", "restartPolicy": "Always"}],
        "containers": [{}]});
    let running = json!({"running": {}});
    let obj = json!({"metadata": {"name": "test1"}, "spec": spec, "status": {
        "phase": "Pending",
        "initContainerStatuses": [
            {"name": "restartable-init-1", "restartCount": 3, "state": running, "started": false,
             "lastState": {"terminated": {"finishedAt": ago(10)}}},
            {"name": "restartable-init-2", "state": {"waiting": {}}, "started": false}],
        "containerStatuses": [{"state": {"waiting": {}}}],
        "conditions": [{"type": "Initialized", "status": "False"}]}});
    assert_eq!(
        cells("", "Pod", obj),
        pod_cells("test1", "0/3", "Init:0/2", "3 (10s ago)")
    );

    let obj = json!({"metadata": {"name": "test2"}, "spec": spec, "status": {
        "phase": "Running",
        "initContainerStatuses": [
            {"name": "restartable-init-1", "restartCount": 3, "state": running, "started": true,
             "lastState": {"terminated": {"finishedAt": ago(10)}}},
            {"name": "restartable-init-2", "state": running, "started": true}],
        "containerStatuses": [{"ready": true, "restartCount": 4, "state": running,
             "lastState": {"terminated": {"finishedAt": ago(20)}}}],
        "conditions": [{"type": "Initialized", "status": "True"}]}});
    assert_eq!(
        cells("", "Pod", obj),
        pod_cells("test2", "1/3", "Running", "7 (10s ago)")
    );

    let obj = json!({"metadata": {"name": "test4"}, "spec": {
            "initContainers": [{"name": "init1"}, {"name": "sidecar1", "restartPolicy": "Always"}],
            "containers": [{"name": "container1"}]},
        "status": {"phase": "Running",
            "initContainerStatuses": [{"name": "initinvalid"}, {"name": "init1"}, {"name": "sidecar1"}],
            "containerStatuses": [{"name": "containerinvalid"}, {"name": "container1"}]}});
    assert_eq!(
        cells("", "Pod", obj),
        pod_cells("test4", "0/2", "Init:0/2", "0")
    );
}

#[test]
fn pod_terminating() {
    let deleted = |phase: &str, reason: &str| {
        json!({"metadata": {"name": "p", "deletionTimestamp": ago(10)},
               "spec": {"containers": [{}]},
               "status": {"phase": phase, "reason": reason}})
    };
    assert_eq!(cells("", "Pod", deleted("Running", ""))[2], "Terminating");
    assert_eq!(cells("", "Pod", deleted("Pending", ""))[2], "Terminating");
    assert_eq!(cells("", "Pod", deleted("Succeeded", ""))[2], "Succeeded");
    assert_eq!(cells("", "Pod", deleted("Failed", ""))[2], "Failed");
    assert_eq!(
        cells("", "Pod", deleted("Running", "NodeLost"))[2],
        "Unknown"
    );
}

#[test]
fn pod_wide_columns() {
    let obj = json!({
        "metadata": {"name": "test1", "creationTimestamp": ago(5 * HOUR)},
        "spec": {"containers": [{}, {}], "nodeName": "test1",
                 "readinessGates": [{"conditionType": "condition1"}, {"conditionType": "condition2"},
                                    {"conditionType": "condition3"}]},
        "status": {"phase": "podPhase", "podIP": "1.1.1.1",
                   "podIPs": [{"ip": "1.1.1.1"}, {"ip": "2001:db8::"}],
                   "nominatedNodeName": "node1",
                   "conditions": [{"type": "condition1", "status": "False"},
                                  {"type": "condition2", "status": "True"}],
                   "containerStatuses": [{"ready": true, "restartCount": 3, "state": {"running": {}}},
                                         {"restartCount": 3}]}});
    assert_eq!(
        cells("", "Pod", obj),
        json!([
            "test1", "1/2", "podPhase", "6", "5h", "1.1.1.1", "test1", "node1", "1/3"
        ])
    );
}

// ---------------------------------------------------------------------------------------
// Workloads

/// Two-container pod template spec used by workload tests.
fn template() -> Value {
    json!({"spec": {"containers": [
        {"name": "fake-container1", "image": "fake-image1"},
        {"name": "fake-container2", "image": "fake-image2"}]}})
}

#[test]
fn deployment() {
    let obj = json!({
        "metadata": {"name": "test1", "creationTimestamp": ago(0)},
        "spec": {"replicas": 5, "template": template(), "selector": {"matchLabels": {"foo": "bar"}}},
        "status": {"replicas": 10, "updatedReplicas": 2, "availableReplicas": 1, "unavailableReplicas": 4}});
    assert_eq!(
        cells("apps", "Deployment", obj),
        json!([
            "test1",
            "0/5",
            2,
            1,
            "0s",
            "fake-container1,fake-container2",
            "fake-image1,fake-image2",
            "foo=bar"
        ])
    );
    let obj = json!({"metadata": {"name": "d", "creationTimestamp": ago(3 * DAY)},
        "spec": {"selector": {"matchLabels": {"app": "web", "tier": "fe"},
                              "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                                   {"key": "canary", "operator": "DoesNotExist"}]}},
        "status": {"readyReplicas": 1}});
    assert_eq!(
        cells("apps", "Deployment", obj),
        json!([
            "d",
            "1/1",
            0,
            0,
            "3d",
            "",
            "",
            "app=web,!canary,env in (dev,prod),tier=fe"
        ])
    );
    // An empty selector prints as an empty string; an invalid one as <invalid>.
    let obj = json!({"spec": {"selector": {}}});
    assert_eq!(cells("apps", "Deployment", obj)[7], "");
    let obj =
        json!({"spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}}});
    assert_eq!(cells("apps", "Deployment", obj)[7], "<invalid>");
}

#[test]
fn replica_set() {
    let obj = json!({
        "metadata": {"name": "test1", "creationTimestamp": ago(0)},
        "spec": {"replicas": 5, "template": template(), "selector": {"matchLabels": {"foo": "bar"}}},
        "status": {"replicas": 5, "readyReplicas": 2}});
    assert_eq!(
        cells("apps", "ReplicaSet", obj),
        json!([
            "test1",
            5,
            5,
            2,
            "0s",
            "fake-container1,fake-container2",
            "fake-image1,fake-image2",
            "foo=bar"
        ])
    );
    let obj = json!({"metadata": {"name": "rs2"}, "spec": {"replicas": 4}, "status": {"replicas": 3, "readyReplicas": 1}});
    assert_eq!(
        cells("apps", "ReplicaSet", obj),
        json!(["rs2", 4, 3, 1, "<unknown>", "", "", "<none>"])
    );
}

#[test]
fn stateful_set() {
    let obj = json!({
        "metadata": {"name": "test1", "creationTimestamp": ago(0)},
        "spec": {"replicas": 5, "template": template()},
        "status": {"replicas": 5, "readyReplicas": 2}});
    assert_eq!(
        cells("apps", "StatefulSet", obj),
        json!([
            "test1",
            "2/5",
            "0s",
            "fake-container1,fake-container2",
            "fake-image1,fake-image2"
        ])
    );
    // spec.replicas defaults to 1.
    assert_eq!(cells("apps", "StatefulSet", json!({}))[1], "0/1");
}

#[test]
fn daemon_set() {
    let obj = json!({
        "metadata": {"name": "test1", "creationTimestamp": ago(0)},
        "spec": {"template": template(), "selector": {"matchLabels": {"foo": "bar"}}},
        "status": {"currentNumberScheduled": 2, "desiredNumberScheduled": 3, "numberReady": 1,
                   "updatedNumberScheduled": 2, "numberAvailable": 0}});
    assert_eq!(
        cells("apps", "DaemonSet", obj),
        json!([
            "test1",
            3,
            2,
            1,
            2,
            0,
            "<none>",
            "0s",
            "fake-container1,fake-container2",
            "fake-image1,fake-image2",
            "foo=bar"
        ])
    );
    let obj = json!({"metadata": {"name": "ds"},
        "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux", "a": "b"}}}}});
    assert_eq!(
        cells("apps", "DaemonSet", obj)[6],
        "a=b,kubernetes.io/os=linux"
    );
}

#[test]
fn controller_revision() {
    let rev = |owner: Value| {
        cells(
            "apps",
            "ControllerRevision",
            json!({
            "metadata": {"name": "r", "creationTimestamp": ago(0), "ownerReferences": owner},
            "revision": 3}),
        )
    };
    assert_eq!(
        rev(
            json!([{"controller": true, "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "foo"}])
        ),
        json!(["r", "daemonset.apps/foo", 3, "0s"])
    );
    assert_eq!(
        rev(json!([{"controller": false, "kind": "ABC", "name": "foo"}])),
        json!(["r", "<none>", 3, "0s"])
    );
    assert_eq!(rev(json!([])), json!(["r", "<none>", 3, "0s"]));
    assert_eq!(
        rev(json!([{"controller": true, "apiVersion": "v1", "kind": "Pod", "name": "p"}])),
        json!(["r", "pod/p", 3, "0s"])
    );
}

#[test]
fn replication_controller() {
    let obj = json!({"metadata": {"name": "rc1"},
        "spec": {"replicas": 5, "selector": {"a": "b"},
                 "template": {"metadata": {"labels": {"a": "b"}},
                              "spec": {"containers": [{"name": "test", "image": "test_image"}]}}},
        "status": {"replicas": 3, "readyReplicas": 1}});
    assert_eq!(
        cells("", "ReplicationController", obj),
        json!(["rc1", 5, 3, 1, "<unknown>", "test", "test_image", "a=b"])
    );
    let obj = json!({"metadata": {"annotations": {"k8s.io/initial-events-end": "true"}}, "spec": {"replicas": 0}});
    assert_eq!(
        cells("", "ReplicationController", obj),
        json!(["", 0, 0, 0, "<unknown>", "", "", "<none>"])
    );
}

#[test]
fn job() {
    let base = |name: &str, spec: Value, status: Value| json!({"metadata": {"name": name, "creationTimestamp": ago(0)}, "spec": spec, "status": status});
    let obj = base(
        "job1",
        json!({"completions": 2, "template": {"spec": {"containers": [
            {"name": "fake-job-container1", "image": "fake-job-image1"},
            {"name": "fake-job-container2", "image": "fake-job-image2"}]}},
            "selector": {"matchLabels": {"job-label": "job-label-value"}}}),
        json!({"succeeded": 1}),
    );
    assert_eq!(
        cells("batch", "Job", obj),
        json!([
            "job1",
            "Running",
            "1/2",
            "",
            "0s",
            "fake-job-container1,fake-job-container2",
            "fake-job-image1,fake-job-image2",
            "job-label=job-label-value"
        ])
    );
    let row_of = |obj: Value| cells("batch", "Job", obj).as_array().unwrap()[..5].to_vec();
    assert_eq!(
        row_of(json!({"metadata": {"name": "job2", "creationTimestamp": ago(10 * 365 * DAY)}})),
        json!(["job2", "Running", "0/1", "", "10y"])
            .as_array()
            .unwrap()
            .clone()
    );
    let job3 = json!({"metadata": {"name": "job3", "creationTimestamp": ago(10 * 365 * DAY)},
        "status": {"startTime": ago(-MIN), "completionTime": ago(-31 * MIN)}});
    assert_eq!(
        row_of(job3),
        json!(["job3", "Running", "0/1", "30m", "10y"])
            .as_array()
            .unwrap()
            .clone()
    );
    let job4 = base("job4", json!({}), json!({"startTime": ago(20 * MIN)}));
    assert_eq!(row_of(job4)[3], "20m");
    let parallel = base("p", json!({"parallelism": 3}), json!({"succeeded": 1}));
    assert_eq!(row_of(parallel)[2], "1/1 of 3");
    for (cond, want) in [
        ("Complete", "Complete"),
        ("Failed", "Failed"),
        ("Suspended", "Suspended"),
        ("FailureTarget", "FailureTarget"),
        ("SuccessCriteriaMet", "Running"),
    ] {
        let obj = base(
            "j",
            json!({}),
            json!({"conditions": [{"type": cond, "status": "True"}]}),
        );
        assert_eq!(row_of(obj)[1], want, "{cond}");
    }
    let not_true = base(
        "j",
        json!({}),
        json!({"conditions": [{"type": "Complete", "status": "False"}]}),
    );
    assert_eq!(row_of(not_true)[1], "Running");
    let terminating = json!({"metadata": {"name": "job9", "deletionTimestamp": ago(0)}});
    assert_eq!(row_of(terminating)[1], "Terminating");
    let complete_and_deleted = json!({"metadata": {"name": "j", "deletionTimestamp": ago(0)},
        "status": {"conditions": [{"type": "Complete", "status": "True"}]}});
    assert_eq!(row_of(complete_and_deleted)[1], "Complete");
}

#[test]
fn cron_job() {
    let obj = json!({
        "metadata": {"name": "cronjob1", "creationTimestamp": ago(0)},
        "spec": {"schedule": "0/5 * * * ?", "suspend": false,
                 "jobTemplate": {"spec": {"completions": 2, "template": {"spec": {"containers": [
                     {"name": "fake-job-container1", "image": "fake-job-image1"},
                     {"name": "fake-job-container2", "image": "fake-job-image2"}]}},
                     "selector": {"matchLabels": {"a": "b"}}}}},
        "status": {"lastScheduleTime": ago(0)}});
    assert_eq!(
        cells("batch", "CronJob", obj),
        json!([
            "cronjob1",
            "0/5 * * * ?",
            "<none>",
            "False",
            0,
            "0s",
            "0s",
            "fake-job-container1,fake-job-container2",
            "fake-job-image1,fake-job-image2",
            "a=b"
        ])
    );
    let obj = json!({"metadata": {"name": "cronjob2", "creationTimestamp": ago(5 * MIN)},
        "spec": {"schedule": "0/5 * * * ?", "timeZone": "LOCAL", "suspend": true},
        "status": {"lastScheduleTime": ago(30), "active": [{"name": "j1"}, {"name": "j2"}]}});
    assert_eq!(
        cells("batch", "CronJob", obj),
        json!([
            "cronjob2",
            "0/5 * * * ?",
            "LOCAL",
            "True",
            2,
            "30s",
            "5m",
            "",
            "",
            "<none>"
        ])
    );
    let obj = json!({"metadata": {"name": "cronjob3", "creationTimestamp": ago(5 * MIN)},
        "spec": {"schedule": "@hourly"}});
    assert_eq!(
        cells("batch", "CronJob", obj),
        json!([
            "cronjob3", "@hourly", "<none>", "False", 0, "<none>", "5m", "", "", "<none>"
        ])
    );
}

// ---------------------------------------------------------------------------------------
// Service, Endpoints, Node

/// A service named `name` with the given spec and status.
fn service(name: &str, spec: Value, status: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": spec, "status": status})
}

#[test]
fn service_types() {
    let cases = [
        (
            service(
                "test1",
                json!({"type": "ClusterIP", "ports": [{"protocol": "tcp", "port": 2233}],
                "clusterIPs": ["10.9.8.7"], "selector": {"foo": "bar"}}),
                json!({}),
            ),
            json!([
                "test1",
                "ClusterIP",
                "10.9.8.7",
                "<none>",
                "2233/tcp",
                "<unknown>",
                "foo=bar"
            ]),
        ),
        (
            service(
                "test2",
                json!({"type": "NodePort", "ports": [{"protocol": "tcp", "port": 8888, "nodePort": 9999}],
                "clusterIPs": ["10.9.8.7"]}),
                json!({}),
            ),
            json!([
                "test2",
                "NodePort",
                "10.9.8.7",
                "<none>",
                "8888:9999/tcp",
                "<unknown>",
                "<none>"
            ]),
        ),
        (
            service(
                "test3",
                json!({"type": "LoadBalancer", "ports": [{"protocol": "tcp", "port": 8888}],
                "clusterIPs": ["10.9.8.7"]}),
                json!({}),
            ),
            json!([
                "test3",
                "LoadBalancer",
                "10.9.8.7",
                "<pending>",
                "8888/tcp",
                "<unknown>",
                "<none>"
            ]),
        ),
        (
            service(
                "test4",
                json!({"type": "LoadBalancer", "ports": [{"protocol": "tcp", "port": 8888}],
                "clusterIPs": ["10.9.8.7"], "externalIPs": ["80.11.12.10"]}),
                json!({}),
            ),
            json!([
                "test4",
                "LoadBalancer",
                "10.9.8.7",
                "80.11.12.10",
                "8888/tcp",
                "<unknown>",
                "<none>"
            ]),
        ),
        (
            service(
                "test5",
                json!({"type": "LoadBalancer", "ports": [{"protocol": "tcp", "port": 8888}],
                "clusterIPs": ["10.9.8.7"], "externalIPs": ["80.11.12.10"]}),
                json!({"loadBalancer": {"ingress": [{"ip": "3.4.5.6", "hostname": "test.cluster.com"}]}}),
            ),
            json!([
                "test5",
                "LoadBalancer",
                "10.9.8.7",
                "3.4.5.6,80.11.12.10",
                "8888/tcp",
                "<unknown>",
                "<none>"
            ]),
        ),
        (
            service(
                "test6",
                json!({"type": "LoadBalancer", "ports": [{"protocol": "tcp", "port": 8888}],
                "clusterIPs": ["10.9.8.7"], "externalIPs": ["80.11.12.10", "80.11.12.11"]}),
                json!({"loadBalancer": {"ingress": [{"ip": "2.3.4.5", "hostname": "test.cluster.local"},
                                                    {"ip": "3.4.5.6", "hostname": "test.cluster.com"}]}}),
            ),
            json!([
                "test6",
                "LoadBalancer",
                "10.9.8.7",
                "2.3.4.5,3.4.5.6,80.11.12.10,80.11.12.11",
                "8888/tcp",
                "<unknown>",
                "<none>"
            ]),
        ),
        (
            service(
                "test7",
                json!({"type": "ExternalName", "externalName": "my.database.example.com"}),
                json!({}),
            ),
            json!([
                "test7",
                "ExternalName",
                "<none>",
                "my.database.example.com",
                "<none>",
                "<unknown>",
                "<none>"
            ]),
        ),
        (
            // Server-side rows are wide: the load-balancer list is not truncated.
            service(
                "service4",
                json!({"type": "LoadBalancer", "clusterIPs": ["1.5.6.7"],
                "ports": [{"port": 80, "protocol": "TCP"}, {"port": 8090, "protocol": "UDP"},
                          {"port": 8000, "protocol": "TCP"}]}),
                json!({"loadBalancer": {"ingress": [{"ip": "2.3.4.5"}, {"ip": "3.4.5.6"},
                                                    {"ip": "5.6.7.8", "hostname": "host5678"}]}}),
            ),
            json!([
                "service4",
                "LoadBalancer",
                "1.5.6.7",
                "2.3.4.5,3.4.5.6,5.6.7.8",
                "80/TCP,8090/UDP,8000/TCP",
                "<unknown>",
                "<none>"
            ]),
        ),
        (
            service(
                "lbhost",
                json!({"type": "LoadBalancer", "clusterIP": "10.0.0.9",
                "ports": [{"port": 80, "nodePort": 30080}, {"port": 443, "nodePort": 30443}]}),
                json!({"loadBalancer": {"ingress": [{"hostname": "b.example.com"}, {"hostname": "a.example.com"}]}}),
            ),
            json!([
                "lbhost",
                "LoadBalancer",
                "10.0.0.9",
                "a.example.com,b.example.com",
                "80:30080/TCP,443:30443/TCP",
                "<unknown>",
                "<none>"
            ]),
        ),
        (
            // type and protocol default to ClusterIP and TCP; headless clusterIP prints as is.
            service(
                "headless",
                json!({"clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 53}],
                "externalIPs": ["1.2.3.4", "5.6.7.8"]}),
                json!({}),
            ),
            json!([
                "headless",
                "ClusterIP",
                "None",
                "1.2.3.4,5.6.7.8",
                "53/TCP",
                "<unknown>",
                "<none>"
            ]),
        ),
    ];
    for (obj, want) in cases {
        assert_eq!(cells("", "Service", obj), want);
    }
}

#[test]
fn endpoints() {
    let ep = |subsets: Value| {
        cells(
            "",
            "Endpoints",
            json!({"metadata": {"name": "e"}, "subsets": subsets}),
        )
    };
    assert_eq!(ep(json!(null)), json!(["e", "<none>", "<unknown>"]));
    assert_eq!(
        ep(json!([{"addresses": [{"ip": "1.2.3.4"}, {"ip": "5.6.7.8"}]}])),
        json!(["e", "1.2.3.4,5.6.7.8", "<unknown>"])
    );
    assert_eq!(
        ep(
            json!([{"addresses": [{"ip": "1.2.3.4"}, {"ip": "5.6.7.8"}], "ports": [{"port": 8001, "protocol": "tcp"}]}])
        ),
        json!(["e", "1.2.3.4:8001,5.6.7.8:8001", "<unknown>"])
    );
    assert_eq!(
        ep(
            json!([{"addresses": [{"ip": "1.2.3.4"}, {"ip": "5.6.7.8"}, {"ip": "9.8.7.6"}, {"ip": "6.6.6.6"}],
                   "ports": [{"port": 8001}]}])
        ),
        json!([
            "e",
            "1.2.3.4:8001,5.6.7.8:8001,9.8.7.6:8001 + 1 more...",
            "<unknown>"
        ])
    );
    assert_eq!(
        ep(json!([{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}])),
        json!(["e", "[fd00::1]:80", "<unknown>"])
    );
}

#[test]
fn endpoint_slice() {
    let obj = json!({"metadata": {"name": "abcslice.123", "creationTimestamp": ago(0)}, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.1.2.3", "2001:db8::1234:5678"]}]});
    assert_eq!(
        cells("discovery.k8s.io", "EndpointSlice", obj),
        json!([
            "abcslice.123",
            "IPv4",
            "80",
            "10.1.2.3,2001:db8::1234:5678",
            "0s"
        ])
    );
    let obj = json!({"metadata": {"name": "multiportslice.123", "creationTimestamp": ago(5 * MIN)},
        "addressType": "IPv4",
        "ports": [{"port": 80}, {"port": 443}, {"port": 3000}, {"port": 3001}],
        "endpoints": [{"addresses": ["10.1.2.3", "2001:db8::1234:5678"]},
                      {"addresses": ["10.2.3.4", "2001:db8::2345:6789"]}]});
    assert_eq!(
        cells("discovery.k8s.io", "EndpointSlice", obj),
        json!([
            "multiportslice.123",
            "IPv4",
            "80,443,3000 + 1 more...",
            "10.1.2.3,2001:db8::1234:5678,10.2.3.4 + 1 more...",
            "5m"
        ])
    );
    let obj =
        json!({"metadata": {"name": "s"}, "addressType": "FQDN", "ports": [{"name": "dns"}, {}]});
    assert_eq!(
        cells("discovery.k8s.io", "EndpointSlice", obj),
        json!(["s", "FQDN", "dns,*", "<unset>", "<unknown>"])
    );
}

#[test]
fn node_status_and_roles() {
    let node = |name: &str, unschedulable: bool, conditions: Value, labels: Value| {
        cells(
            "",
            "Node",
            json!({"metadata": {"name": name, "labels": labels},
            "spec": {"unschedulable": unschedulable}, "status": {"conditions": conditions}}),
        )
    };
    let head = |v: Value| v.as_array().unwrap()[..5].to_vec();
    let ready = json!([{"type": "Ready", "status": "True"}]);
    let not_ready = json!([{"type": "Ready", "status": "False"}]);
    let unknown = json!([{"type": "Ready", "status": "Unknown"}]);
    let cases = [
        (
            node("foo1", false, ready.clone(), json!({})),
            json!(["foo1", "Ready", "<none>", "<unknown>", ""]),
        ),
        (
            node("foo2", true, ready, json!({})),
            json!([
                "foo2",
                "Ready,SchedulingDisabled",
                "<none>",
                "<unknown>",
                ""
            ]),
        ),
        (
            node("foo4", false, not_ready.clone(), json!({})),
            json!(["foo4", "NotReady", "<none>", "<unknown>", ""]),
        ),
        (
            node("foo5", true, not_ready, json!({})),
            json!([
                "foo5",
                "NotReady,SchedulingDisabled",
                "<none>",
                "<unknown>",
                ""
            ]),
        ),
        (
            node("foou", false, unknown, json!({})),
            json!(["foou", "NotReady", "<none>", "<unknown>", ""]),
        ),
        (
            node(
                "foo6",
                false,
                json!([{"type": "InvalidValue", "status": "True"}]),
                json!({}),
            ),
            json!(["foo6", "Unknown", "<none>", "<unknown>", ""]),
        ),
        (
            node("foo8", true, json!([{}]), json!({})),
            json!([
                "foo8",
                "Unknown,SchedulingDisabled",
                "<none>",
                "<unknown>",
                ""
            ]),
        ),
        (
            node(
                "foo10",
                false,
                json!([]),
                json!({"node-role.kubernetes.io/master": "",
                "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/proxy": "",
                "kubernetes.io/role": "node"}),
            ),
            json!([
                "foo10",
                "Unknown",
                "control-plane,master,node,proxy",
                "<unknown>",
                ""
            ]),
        ),
        (
            node(
                "foo11",
                false,
                json!([]),
                json!({"kubernetes.io/role": "node"}),
            ),
            json!(["foo11", "Unknown", "node", "<unknown>", ""]),
        ),
    ];
    for (got, want) in cases {
        assert_eq!(head(got), want.as_array().unwrap().clone());
    }
    // The last Ready condition wins.
    let dup = node(
        "foo3",
        false,
        json!([{"type": "Ready", "status": "False"}, {"type": "Ready", "status": "True"}]),
        json!({}),
    );
    assert_eq!(dup[1], "Ready");
}

#[test]
fn node_wide_columns() {
    let obj = json!({"metadata": {"name": "foo3", "creationTimestamp": ago(2 * DAY)},
        "status": {"nodeInfo": {"kubeletVersion": "v1.35.0", "osImage": "Debian", "kernelVersion": "6.1",
                                "containerRuntimeVersion": "containerd://2.0"},
                   "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "ExternalIP", "address": "2.2.2.2"},
                                 {"type": "InternalIP", "address": "3.3.3.3"},
                                 {"type": "ExternalIP", "address": "4.4.4.4"}]}});
    assert_eq!(
        cells("", "Node", obj),
        json!([
            "foo3",
            "Ready",
            "<none>",
            "2d",
            "v1.35.0",
            "3.3.3.3",
            "2.2.2.2",
            "Debian",
            "6.1",
            "containerd://2.0"
        ])
    );
    let obj = json!({"metadata": {"name": "foo1"},
        "status": {"nodeInfo": {"osImage": "fake-os-image"}, "addresses": [{"type": "ExternalIP", "address": "1.1.1.1"}]}});
    assert_eq!(
        cells("", "Node", obj),
        json!([
            "foo1",
            "Unknown",
            "<none>",
            "<unknown>",
            "",
            "<none>",
            "1.1.1.1",
            "fake-os-image",
            "<unknown>",
            "<unknown>"
        ])
    );
}

// ---------------------------------------------------------------------------------------
// Networking

#[test]
fn ingress() {
    let obj = json!({"metadata": {"name": "test1", "creationTimestamp": ago(10 * 365 * DAY)},
        "spec": {"ingressClassName": "foo",
                 "defaultBackend": {"service": {"name": "default-backend", "port": {"name": "default-backend", "number": 80}}}},
        "status": {"loadBalancer": {"ingress": [{"ip": "2.3.4.5", "hostname": "localhost.localdomain"}]}}});
    assert_eq!(
        cells("networking.k8s.io", "Ingress", obj),
        json!(["test1", "foo", "*", "2.3.4.5", "80", "10y"])
    );
    let obj = json!({"metadata": {"name": "multi"},
        "spec": {"rules": [{"host": "a.com"}, {"host": ""}, {"host": "b.com"}, {"host": "c.com"}, {"host": "d.com"}],
                 "tls": [{"hosts": ["a.com"]}]}});
    assert_eq!(
        cells("networking.k8s.io", "Ingress", obj),
        json!([
            "multi",
            "<none>",
            "a.com,b.com,c.com + 2 more...",
            "",
            "80, 443",
            "<unknown>"
        ])
    );
}

#[test]
fn ingress_class_network_policy_cidr_ip() {
    let ic = |params: Value| {
        cells(
            "networking.k8s.io",
            "IngressClass",
            json!({"metadata": {"name": "test1", "creationTimestamp": ago(10 * 365 * DAY)},
            "spec": {"controller": "example.com/controller", "parameters": params}}),
        )
    };
    assert_eq!(
        ic(json!({"kind": "customgroup", "name": "example"})),
        json!([
            "test1",
            "example.com/controller",
            "customgroup/example",
            "10y"
        ])
    );
    assert_eq!(
        ic(json!({"apiGroup": "example.com", "kind": "customgroup", "name": "example"})),
        json!([
            "test1",
            "example.com/controller",
            "customgroup.example.com/example",
            "10y"
        ])
    );
    assert_eq!(
        ic(json!(null)),
        json!(["test1", "example.com/controller", "<none>", "10y"])
    );

    let np = |spec: Value| {
        cells(
            "networking.k8s.io",
            "NetworkPolicy",
            json!({"metadata": {"name": "p", "creationTimestamp": ago(0)}, "spec": spec}),
        )
    };
    assert_eq!(np(json!({})), json!(["p", "<none>", "0s"]));
    assert_eq!(
        np(json!({"podSelector": {"matchLabels": {"foo": "bar"}}})),
        json!(["p", "foo=bar", "0s"])
    );

    let cidr = json!({"metadata": {"name": "kubernetes"}, "spec": {"cidrs": ["10.1.0.0/16", "fd00:1:1::/64"]}});
    assert_eq!(
        cells("networking.k8s.io", "ServiceCIDR", cidr),
        json!(["kubernetes", "10.1.0.0/16,fd00:1:1::/64", "<unknown>"])
    );
    let ip = json!({"metadata": {"name": "192.168.2.2"},
        "spec": {"parentRef": {"group": "mygroup", "resource": "myresource", "namespace": "mynamespace", "name": "myname"}}});
    assert_eq!(
        cells("networking.k8s.io", "IPAddress", ip),
        json!(["192.168.2.2", "myresource.mygroup/mynamespace/myname"])
    );
    let ip = json!({"metadata": {"name": "10.0.0.1"}, "spec": {"parentRef": {"resource": "services", "namespace": "default", "name": "kubernetes"}}});
    assert_eq!(
        cells("networking.k8s.io", "IPAddress", ip)[1],
        "services/default/kubernetes"
    );
}

// ---------------------------------------------------------------------------------------
// Autoscaling

/// An HPA targeting `ReplicationController/some-rc` with the given spec additions and status.
fn hpa(metrics: Value, current: Value) -> Value {
    cells(
        "autoscaling",
        "HorizontalPodAutoscaler",
        json!({
        "metadata": {"name": "some-hpa"},
        "spec": {"scaleTargetRef": {"kind": "ReplicationController", "name": "some-rc"},
                 "minReplicas": 2, "maxReplicas": 10, "metrics": metrics},
        "status": {"currentReplicas": 4, "desiredReplicas": 5, "currentMetrics": current}}),
    )
}

#[test]
fn hpa_v2_targets() {
    let targets = |metrics: Value, current: Value| hpa(metrics, current)[2].clone();
    let ext_avg = json!([{"type": "External", "external": {"metric": {"name": "m"},
        "target": {"type": "AverageValue", "averageValue": "100m"}}}]);
    assert_eq!(
        targets(ext_avg.clone(), json!(null)),
        "<unknown>/100m (avg)"
    );
    assert_eq!(
        targets(
            ext_avg,
            json!([{"type": "External", "external": {"current": {"averageValue": "50m"}}}])
        ),
        "50m/100m (avg)"
    );
    let ext_val =
        json!([{"type": "External", "external": {"target": {"type": "Value", "value": "100m"}}}]);
    assert_eq!(targets(ext_val.clone(), json!(null)), "<unknown>/100m");
    assert_eq!(
        targets(
            ext_val,
            json!([{"type": "External", "external": {"current": {"value": "50m"}}}])
        ),
        "50m/100m"
    );
    let pods = json!([{"type": "Pods", "pods": {"target": {"type": "AverageValue", "averageValue": "100m"}}}]);
    assert_eq!(targets(pods.clone(), json!(null)), "<unknown>/100m");
    assert_eq!(
        targets(
            pods,
            json!([{"type": "Pods", "pods": {"current": {"averageValue": "50m"}}}])
        ),
        "50m/100m"
    );
    let object = json!([{"type": "Object", "object": {"describedObject": {"kind": "Service", "name": "s"},
        "target": {"type": "Value", "value": "100m"}}}]);
    assert_eq!(targets(object.clone(), json!(null)), "<unknown>/100m");
    assert_eq!(
        targets(
            object,
            json!([{"type": "Object", "object": {"current": {"value": "50m"}}}])
        ),
        "50m/100m"
    );
    let res_val = json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "AverageValue", "averageValue": "100m"}}}]);
    assert_eq!(targets(res_val.clone(), json!(null)), "cpu: <unknown>/100m");
    assert_eq!(
        targets(
            res_val,
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "50m"}}}])
        ),
        "cpu: 50m/100m"
    );
    let res_util = json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]);
    assert_eq!(targets(res_util.clone(), json!(null)), "cpu: <unknown>/80%");
    assert_eq!(
        targets(
            res_util,
            json!([{"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": 50, "averageValue": "40m"}}}])
        ),
        "cpu: 50%/80%"
    );
    let cres = json!([{"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "application",
        "target": {"type": "Utilization", "averageUtilization": 80}}}]);
    assert_eq!(
        targets(
            cres,
            json!([{"type": "ContainerResource", "containerResource": {"name": "cpu",
            "container": "application", "current": {"averageUtilization": 50}}}])
        ),
        "cpu: 50%/80%"
    );
    let multi = json!([
        {"type": "Pods", "pods": {"target": {"type": "AverageValue", "averageValue": "100m"}}},
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
        {"type": "Pods", "pods": {"target": {"type": "AverageValue", "averageValue": "400m"}}}]);
    let current = json!([
        {"type": "Pods", "pods": {"current": {"averageValue": "50m"}}},
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 50, "averageValue": "40m"}}}]);
    assert_eq!(
        hpa(multi, current),
        json!([
            "some-hpa",
            "ReplicationController/some-rc",
            "50m/100m, cpu: 50%/80% + 1 more...",
            "2",
            10,
            4,
            "<unknown>"
        ])
    );
    let memory = json!([{"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1073741824"}}}]);
    assert_eq!(
        targets(
            memory,
            json!([{"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "512Mi"}}}])
        ),
        "memory: 512Mi/1073741824"
    );
}

#[test]
fn hpa_v1_shape_and_defaults() {
    let v1 = |spec: Value, status: Value| {
        cells(
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"metadata": {"name": "web", "creationTimestamp": ago(HOUR)},
            "spec": spec, "status": status}),
        )
    };
    assert_eq!(
        v1(
            json!({"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 10,
                  "targetCPUUtilizationPercentage": 50}),
            json!({"currentReplicas": 3, "currentCPUUtilizationPercentage": 20})
        ),
        json!(["web", "Deployment/web", "cpu: 20%/50%", "1", 10, 3, "60m"])
    );
    assert_eq!(
        v1(
            json!({"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5,
                  "targetCPUUtilizationPercentage": 50}),
            json!({})
        ),
        json!([
            "web",
            "Deployment/web",
            "cpu: <unknown>/50%",
            "1",
            5,
            0,
            "60m"
        ])
    );
    // No metrics at all: API defaulting's 80% CPU utilization target.
    assert_eq!(
        v1(
            json!({"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5}),
            json!({})
        )[2],
        "cpu: <unknown>/80%"
    );
    assert_eq!(
        v1(
            json!({"maxReplicas": 5, "metrics": []}),
            json!({"currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12}}}]})
        )[2],
        "cpu: 12%/80%"
    );
}

#[test]
fn pdb_and_scale() {
    let pdb = |spec: Value| {
        cells(
            "policy",
            "PodDisruptionBudget",
            json!({"metadata": {"name": "pdb1", "creationTimestamp": ago(0)},
        "spec": spec, "status": {"disruptionsAllowed": 5}}),
        )
    };
    assert_eq!(
        pdb(json!({"minAvailable": 22})),
        json!(["pdb1", "22", "N/A", 5, "0s"])
    );
    assert_eq!(
        pdb(json!({"maxUnavailable": "25%"})),
        json!(["pdb1", "N/A", "25%", 5, "0s"])
    );
    let scale = json!({"metadata": {"name": "test-autoscaling", "creationTimestamp": ago(0)},
        "spec": {"replicas": 2}, "status": {"replicas": 1}});
    assert_eq!(
        cells("autoscaling", "Scale", scale),
        json!(["test-autoscaling", 2, 1, "0s"])
    );
}

// ---------------------------------------------------------------------------------------
// Storage

#[test]
fn persistent_volume() {
    let pv = |name: &str, extra_spec: Value, phase: &str| {
        let mut spec = json!({"claimRef": {"name": "test", "namespace": "default"},
            "accessModes": ["ReadOnlyMany"], "capacity": {"storage": "4Gi"},
            "persistentVolumeReclaimPolicy": "Retain"});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
            s.extend(e.clone());
        }
        cells(
            "",
            "PersistentVolume",
            json!({"metadata": {"name": name}, "spec": spec, "status": {"phase": phase}}),
        )
    };
    assert_eq!(
        pv("test1", json!({}), "Bound"),
        json!([
            "test1",
            "4Gi",
            "ROX",
            "Retain",
            "Bound",
            "default/test",
            "",
            "<unset>",
            "",
            "<unknown>",
            "Filesystem"
        ])
    );
    assert_eq!(
        pv(
            "test4",
            json!({"storageClassName": "my-scn", "volumeAttributesClassName": "my-vacn",
            "accessModes": ["ReadWriteOnce", "ReadWriteOnce", "ReadWriteMany"], "capacity": {"storage": "10240Mi"},
            "volumeMode": "Block"}),
            "Pending"
        ),
        json!([
            "test4",
            "10Gi",
            "RWO,RWX",
            "Retain",
            "Pending",
            "default/test",
            "my-scn",
            "my-vacn",
            "",
            "<unknown>",
            "Block"
        ])
    );
    let annotated = json!({"metadata": {"name": "old", "deletionTimestamp": ago(1),
            "annotations": {"volume.beta.kubernetes.io/storage-class": "beta"}},
        "spec": {"storageClassName": "ignored", "persistentVolumeReclaimPolicy": "Delete"},
        "status": {"phase": "Released", "reason": "Because"}});
    assert_eq!(
        cells("", "PersistentVolume", annotated),
        json!([
            "old",
            "0",
            "",
            "Delete",
            "Terminating",
            "",
            "beta",
            "<unset>",
            "Because",
            "<unknown>",
            "Filesystem"
        ])
    );
}

#[test]
fn persistent_volume_claim() {
    let pvc = |name: &str, spec: Value, phase: &str| {
        cells(
            "",
            "PersistentVolumeClaim",
            json!({"metadata": {"name": name}, "spec": spec,
            "status": {"phase": phase, "accessModes": ["ReadOnlyMany"], "capacity": {"storage": "4Gi"}}}),
        )
    };
    assert_eq!(
        pvc(
            "test1",
            json!({"volumeName": "my-volume", "volumeMode": "Filesystem"}),
            "Bound"
        ),
        json!([
            "test1",
            "Bound",
            "my-volume",
            "4Gi",
            "ROX",
            "",
            "<unset>",
            "<unknown>",
            "Filesystem"
        ])
    );
    assert_eq!(
        pvc("test2", json!({"volumeMode": "Filesystem"}), "Lost"),
        json!([
            "test2",
            "Lost",
            "",
            "",
            "",
            "",
            "<unset>",
            "<unknown>",
            "Filesystem"
        ])
    );
    assert_eq!(
        pvc(
            "test5",
            json!({"volumeName": "my-volume", "storageClassName": "my-scn",
            "volumeAttributesClassName": "my-vacn", "volumeMode": "Block"}),
            "Pending"
        ),
        json!([
            "test5",
            "Pending",
            "my-volume",
            "4Gi",
            "ROX",
            "my-scn",
            "my-vacn",
            "<unknown>",
            "Block"
        ])
    );
    let pending = cells(
        "",
        "PersistentVolumeClaim",
        json!({"metadata": {"name": "p"}}),
    );
    assert_eq!(
        pending,
        json!([
            "p",
            "Pending",
            "",
            "",
            "",
            "",
            "<unset>",
            "<unknown>",
            "Filesystem"
        ])
    );
}

#[test]
fn storage_kinds() {
    let sc = json!({"metadata": {"name": "standard", "creationTimestamp": ago(5 * MIN),
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": true});
    assert_eq!(
        cells("storage.k8s.io", "StorageClass", sc),
        json!([
            "standard (default)",
            "rancher.io/local-path",
            "Delete",
            "WaitForFirstConsumer",
            true,
            "5m"
        ])
    );
    let sc = json!({"metadata": {"name": "sc4"}, "provisioner": "kubernetes.io/nfs", "reclaimPolicy": "Retain"});
    assert_eq!(
        cells("storage.k8s.io", "StorageClass", sc),
        json!([
            "sc4",
            "kubernetes.io/nfs",
            "Retain",
            "Immediate",
            false,
            "<unknown>"
        ])
    );
    let vac =
        json!({"metadata": {"name": "vac1", "creationTimestamp": ago(0)}, "driverName": "fake"});
    assert_eq!(
        cells("storage.k8s.io", "VolumeAttributesClass", vac),
        json!(["vac1", "fake", "0s"])
    );
    let driver = json!({"metadata": {"name": "csi.example.com"},
        "spec": {"attachRequired": false, "podInfoOnMount": true, "volumeLifecycleModes": ["Persistent", "Ephemeral"],
                 "tokenRequests": [{"audience": "a"}, {"audience": "b"}]}});
    assert_eq!(
        cells("storage.k8s.io", "CSIDriver", driver),
        json!([
            "csi.example.com",
            false,
            true,
            false,
            "a,b",
            false,
            "Persistent,Ephemeral",
            "<unknown>"
        ])
    );
    assert_eq!(
        cells(
            "storage.k8s.io",
            "CSIDriver",
            json!({"metadata": {"name": "d"}})
        ),
        json!([
            "d",
            true,
            false,
            false,
            "<unset>",
            false,
            "Persistent",
            "<unknown>"
        ])
    );
    let node =
        json!({"metadata": {"name": "n1"}, "spec": {"drivers": [{"name": "a"}, {"name": "b"}]}});
    assert_eq!(
        cells("storage.k8s.io", "CSINode", node),
        json!(["n1", 2, "<unknown>"])
    );
    let va = json!({"metadata": {"name": "va"}, "spec": {"attacher": "csi.example.com", "nodeName": "n1",
        "source": {"persistentVolumeName": "pv1"}}, "status": {"attached": true}});
    assert_eq!(
        cells("storage.k8s.io", "VolumeAttachment", va),
        json!(["va", "csi.example.com", "pv1", "n1", true, "<unknown>"])
    );
    let cap = json!({"metadata": {"name": "c"}, "storageClassName": "fast", "capacity": "1024Mi"});
    assert_eq!(
        cells("storage.k8s.io", "CSIStorageCapacity", cap),
        json!(["c", "fast", "1Gi"])
    );
    let cap = json!({"metadata": {"name": "c"}, "storageClassName": "fast"});
    assert_eq!(
        cells("storage.k8s.io", "CSIStorageCapacity", cap),
        json!(["c", "fast", "<unset>"])
    );
}

// ---------------------------------------------------------------------------------------
// Events

#[test]
fn core_events() {
    let obj = json!({"metadata": {"name": "event1"}, "source": {"component": "kubelet"},
        "involvedObject": {"kind": "Pod", "name": "Pod Name", "fieldPath": "spec.containers{foo}"},
        "reason": "Event Reason", "message": "Message Data\n", "firstTimestamp": ago(3 * DAY),
        "lastTimestamp": ago(2 * DAY), "count": 6, "type": "Normal"});
    assert_eq!(
        cells("", "Event", obj),
        json!([
            "2d",
            "Normal",
            "Event Reason",
            "pod/Pod Name",
            "spec.containers{foo}",
            "kubelet",
            "Message Data",
            "3d",
            6,
            "event1"
        ])
    );
    let obj = json!({"metadata": {"name": "event2"}, "source": {"component": "kubelet", "host": "Node1"},
        "involvedObject": {"kind": "Deployment", "name": "Deployment Name"},
        "reason": "R", "message": "M", "eventTime": ago(3 * DAY), "type": "Warning"});
    assert_eq!(
        cells("", "Event", obj),
        json!([
            "3d",
            "Warning",
            "R",
            "deployment/Deployment Name",
            "",
            "kubelet, Node1",
            "M",
            "3d",
            1,
            "event2"
        ])
    );
    let obj = json!({"metadata": {"name": "event6"}, "reportingComponent": "kubelet", "reportingInstance": "test",
        "involvedObject": {"kind": "Deployment"}, "eventTime": ago(3 * DAY),
        "series": {"count": 2, "lastObservedTime": ago(2 * DAY)}, "type": "Warning"});
    assert_eq!(
        cells("", "Event", obj),
        json!([
            "2d",
            "Warning",
            "",
            "deployment",
            "",
            "kubelet, test",
            "",
            "3d",
            2,
            "event6"
        ])
    );
}

#[test]
fn events_k8s_io_events() {
    let obj = json!({"metadata": {"name": "e1"}, "eventTime": ago(90), "reportingController": "default-scheduler",
        "reportingInstance": "default-scheduler-node1", "action": "Binding", "reason": "Scheduled",
        "regarding": {"kind": "Pod", "name": "web-0", "namespace": "default"},
        "note": "Successfully assigned default/web-0 to node1", "type": "Normal"});
    assert_eq!(
        cells("events.k8s.io", "Event", obj),
        json!([
            "90s",
            "Normal",
            "Scheduled",
            "pod/web-0",
            "",
            "default-scheduler, default-scheduler-node1",
            "Successfully assigned default/web-0 to node1",
            "90s",
            1,
            "e1"
        ])
    );
    let obj = json!({"metadata": {"name": "e2"}, "deprecatedSource": {"component": "kubelet", "host": "n"},
        "deprecatedFirstTimestamp": ago(HOUR), "deprecatedLastTimestamp": ago(MIN), "deprecatedCount": 4,
        "regarding": {"kind": "Node", "name": "n"}, "note": "x", "type": "Normal", "reason": "Ok"});
    assert_eq!(
        cells("events.k8s.io", "Event", obj),
        json!([
            "60s",
            "Normal",
            "Ok",
            "node/n",
            "",
            "kubelet, n",
            "x",
            "60m",
            4,
            "e2"
        ])
    );
}

// ---------------------------------------------------------------------------------------
// Small core kinds

#[test]
fn namespace_configmap_secret_serviceaccount() {
    assert_eq!(
        cells(
            "",
            "Namespace",
            json!({"metadata": {"name": "namespace1", "creationTimestamp": ago(-1)},
            "status": {"phase": "FooStatus"}})
        ),
        json!(["namespace1", "FooStatus", "0s"])
    );
    assert_eq!(
        cells("", "Namespace", json!({"metadata": {"name": "namespace2"}})),
        json!(["namespace2", "Active", "<unknown>"])
    );
    assert_eq!(
        cells(
            "",
            "Namespace",
            json!({"metadata": {"name": "ns", "creationTimestamp": ago(-3)}})
        )[2],
        "<invalid>"
    );
    assert_eq!(
        cells(
            "",
            "ConfigMap",
            json!({"metadata": {"name": "configmap1", "creationTimestamp": ago(0)}})
        ),
        json!(["configmap1", 0, "0s"])
    );
    assert_eq!(
        cells(
            "",
            "ConfigMap",
            json!({"metadata": {"name": "configmap3", "creationTimestamp": ago(0)},
            "data": {"foo": "bar"}, "binaryData": {"bin": "YmluYXJ5"}})
        ),
        json!(["configmap3", 2, "0s"])
    );
    assert_eq!(
        cells(
            "",
            "Secret",
            json!({"metadata": {"name": "secret1", "creationTimestamp": ago(0)},
            "type": "kubernetes.io/service-account-token", "data": {"token": "c2VjcmV0"}})
        ),
        json!(["secret1", "kubernetes.io/service-account-token", 1, "0s"])
    );
    assert_eq!(
        cells("", "Secret", json!({"metadata": {"name": "s2"}})),
        json!(["s2", "Opaque", 0, "<unknown>"])
    );
    assert_eq!(
        cells(
            "",
            "ServiceAccount",
            json!({"metadata": {"name": "sa1", "creationTimestamp": ago(0)},
            "secrets": [{"name": "Secret1"}, {"name": "Secret2"}]})
        ),
        json!(["sa1", 2, "0s"])
    );
}

#[test]
fn pod_template_quota_component_status() {
    let tpl = json!({"metadata": {"name": "pod-template-2"},
        "template": {"metadata": {"labels": {"foo": "bar", "a": "b"}}, "spec": {"containers": [
            {"name": "fake-container1", "image": "fake-image1"}, {"name": "fake-container2", "image": "fake-image2"}]}}});
    assert_eq!(
        cells("", "PodTemplate", tpl),
        json!([
            "pod-template-2",
            "fake-container1,fake-container2",
            "fake-image1,fake-image2",
            "a=b,foo=bar"
        ])
    );
    let quota = json!({"metadata": {"name": "test-resourcequota", "creationTimestamp": ago(5 * MIN)},
        "status": {
            "used": {"cpu": "1", "memory": "1Gi", "pods": "1", "services": "1", "replicationcontrollers": "1",
                     "resourcequotas": "1", "limits.cpu": "2", "limits.memory": "2Gi"},
            "hard": {"cpu": "100", "memory": "4Gi", "pods": "10", "services": "10", "replicationcontrollers": "10",
                     "resourcequotas": "1", "limits.cpu": "200", "limits.memory": "8Gi", "requests.storage": "1000Gi",
                     "count/deployments.apps": "5"}}});
    assert_eq!(
        cells("", "ResourceQuota", quota),
        json!([
            "test-resourcequota",
            "count/deployments.apps: 0/5, cpu: 1/100, memory: 1Gi/4Gi, pods: 1/10, replicationcontrollers: 1/10, \
requests.storage: 0/1000Gi, resourcequotas: 1/1, services: 1/10",
            "limits.cpu: 2/200, limits.memory: 2Gi/8Gi",
            "5m"
        ])
    );
    let cs = |conds: Value| {
        cells(
            "",
            "ComponentStatus",
            json!({"metadata": {"name": "cs"}, "conditions": conds}),
        )
    };
    assert_eq!(cs(json!([])), json!(["cs", "Unknown", "", ""]));
    assert_eq!(
        cs(json!([{"type": "Healthy", "status": "True", "message": "ok", "error": "e"}])),
        json!(["cs", "Healthy", "ok", "e"])
    );
    assert_eq!(
        cs(json!([{"type": "Healthy", "status": "False", "message": "m", "error": "e"}])),
        json!(["cs", "Unhealthy", "m", "e"])
    );
}

// ---------------------------------------------------------------------------------------
// RBAC and the remaining groups

#[test]
fn role_bindings() {
    let obj = json!({"metadata": {"name": "binding2", "creationTimestamp": ago(0)},
        "subjects": [{"kind": "User", "name": "user-name"}, {"kind": "Group", "name": "group-name"},
                     {"kind": "ServiceAccount", "name": "service-account-name", "namespace": "service-account-namespace"},
                     {"kind": "User", "name": "u2"}],
        "roleRef": {"kind": "Role", "name": "role-name"}});
    assert_eq!(
        cells("rbac.authorization.k8s.io", "RoleBinding", obj.clone()),
        json!([
            "binding2",
            "Role/role-name",
            "0s",
            "user-name, u2",
            "group-name",
            "service-account-namespace/service-account-name"
        ])
    );
    assert_eq!(
        cells(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            json!({"metadata": {"name": "b"},
            "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}})
        ),
        json!(["b", "ClusterRole/cluster-admin", "<unknown>", "", "", ""])
    );
}

#[test]
fn certificates_coordination_scheduling_node() {
    let csr = |spec: Value, status: Value| {
        cells(
            "certificates.k8s.io",
            "CertificateSigningRequest",
            json!({"metadata": {"name": "csr1", "creationTimestamp": ago(0)}, "spec": spec, "status": status}),
        )
    };
    assert_eq!(
        csr(json!({}), json!({})),
        json!(["csr1", "0s", "<none>", "", "<none>", "Pending"])
    );
    assert_eq!(
        csr(
            json!({"username": "CSR Requestor", "signerName": "example.com/test-signer",
                   "expirationSeconds": 7 * DAY + HOUR}),
            json!({"conditions": [{"type": "Approved"}], "certificate": "Y2VydA=="})
        ),
        json!([
            "csr1",
            "0s",
            "example.com/test-signer",
            "CSR Requestor",
            "7d1h",
            "Approved,Issued"
        ])
    );
    assert_eq!(
        csr(
            json!({}),
            json!({"conditions": [{"type": "Approved"}, {"type": "Denied"}, {"type": "Failed"}]})
        )[5],
        "Denied,Failed"
    );
    assert_eq!(
        cells(
            "certificates.k8s.io",
            "ClusterTrustBundle",
            json!({"metadata": {"name": "b"}, "spec": {"signerName": "s"}})
        ),
        json!(["b", "s"])
    );
    assert_eq!(
        cells(
            "coordination.k8s.io",
            "Lease",
            json!({"metadata": {"name": "lease1", "creationTimestamp": ago(0)},
            "spec": {"holderIdentity": "holder1"}})
        ),
        json!(["lease1", "holder1", "0s"])
    );
    assert_eq!(
        cells(
            "coordination.k8s.io",
            "LeaseCandidate",
            json!({"metadata": {"name": "test-lease", "creationTimestamp": ago(5 * MIN)},
            "spec": {"binaryVersion": "b", "emulationVersion": "e", "leaseName": "l"}})
        ),
        json!(["test-lease", "l", "b", "e", "5m"])
    );
    assert_eq!(
        cells(
            "scheduling.k8s.io",
            "PriorityClass",
            json!({"metadata": {"name": "pc2", "creationTimestamp": ago(5 * MIN)},
            "value": 1_000_000_000, "globalDefault": true, "preemptionPolicy": "Never"})
        ),
        json!(["pc2", 1_000_000_000, true, "5m", "Never"])
    );
    assert_eq!(
        cells(
            "scheduling.k8s.io",
            "PriorityClass",
            json!({"metadata": {"name": "pc1"}, "value": 1})
        ),
        json!(["pc1", 1, false, "<unknown>", "PreemptLowerPriority"])
    );
    assert_eq!(
        cells(
            "node.k8s.io",
            "RuntimeClass",
            json!({"metadata": {"name": "rc1", "creationTimestamp": ago(0)}, "handler": "h1"})
        ),
        json!(["rc1", "h1", "0s"])
    );
}

#[test]
fn flowcontrol() {
    let fs = json!({"metadata": {"name": "some-matcher", "creationTimestamp": ago(5 * MIN)},
        "spec": {"priorityLevelConfiguration": {"name": "allee"}, "matchingPrecedence": 0,
                 "distinguisherMethod": {"type": "ByNamespace"}},
        "status": {"conditions": [{"type": "Dangling", "status": "True"}]}});
    assert_eq!(
        cells("flowcontrol.apiserver.k8s.io", "FlowSchema", fs),
        json!(["some-matcher", "allee", 0, "ByNamespace", "5m", "True"])
    );
    let fs = json!({"metadata": {"name": "exempt"}, "spec": {"priorityLevelConfiguration": {"name": "exempt"},
        "matchingPrecedence": 1}});
    assert_eq!(
        cells("flowcontrol.apiserver.k8s.io", "FlowSchema", fs),
        json!(["exempt", "exempt", 1, "<none>", "<unknown>", "?"])
    );
    let pl = |spec: Value| {
        cells(
            "flowcontrol.apiserver.k8s.io",
            "PriorityLevelConfiguration",
            json!({"metadata": {"name": "p", "creationTimestamp": ago(0)}, "spec": spec}),
        )
    };
    assert_eq!(
        pl(json!({"type": "Exempt"})),
        json!(["p", "Exempt", "<none>", "<none>", "<none>", "<none>", "0s"])
    );
    assert_eq!(
        pl(
            json!({"type": "Limited", "limited": {"nominalConcurrencyShares": 47, "limitResponse": {"type": "Reject"}}})
        ),
        json!(["p", "Limited", 47, "<none>", "<none>", "<none>", "0s"])
    );
    assert_eq!(
        pl(
            json!({"type": "Limited", "limited": {"nominalConcurrencyShares": 42, "limitResponse": {"type": "Queue",
            "queuing": {"queues": 8, "handSize": 3, "queueLengthLimit": 4}}}})
        ),
        json!(["p", "Limited", 42, 8, 3, 4, "0s"])
    );
}

#[test]
fn admission_registration() {
    let g = "admissionregistration.k8s.io";
    let hooks = json!({"metadata": {"name": "w", "creationTimestamp": ago(0)}, "webhooks": [{"name": "a"}, {"name": "b"}]});
    assert_eq!(
        cells(g, "MutatingWebhookConfiguration", hooks.clone()),
        json!(["w", 2, "0s"])
    );
    assert_eq!(
        cells(g, "ValidatingWebhookConfiguration", hooks),
        json!(["w", 2, "0s"])
    );
    let vap = json!({"metadata": {"name": "p"}, "spec": {"validations": [{"expression": "true"}],
        "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}});
    assert_eq!(
        cells(g, "ValidatingAdmissionPolicy", vap),
        json!(["p", 1, "v1/ConfigMap", "<unknown>"])
    );
    assert_eq!(
        cells(
            g,
            "MutatingAdmissionPolicy",
            json!({"metadata": {"name": "m"}})
        ),
        json!(["m", 0, "<unset>", "<unknown>"])
    );
    let binding = |param: Value| {
        cells(
            g,
            "ValidatingAdmissionPolicyBinding",
            json!({
        "metadata": {"name": "config", "creationTimestamp": ago(5 * MIN)},
        "spec": {"policyName": "test-scale.example.com", "paramRef": param}}),
        )
    };
    assert_eq!(
        binding(
            json!({"name": "test-scale-setting.example.com", "parameterNotFoundAction": "Deny"})
        ),
        json!([
            "config",
            "test-scale.example.com",
            "*/test-scale-setting.example.com",
            "5m"
        ])
    );
    assert_eq!(binding(json!({"name": "n", "namespace": "ns"}))[2], "ns/n");
    assert_eq!(binding(json!(null))[2], "<unset>");
    assert_eq!(
        binding(json!({"selector": {"matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [{"key": "k", "operator": "In", "values": ["x", "y"]}]}}))[2],
        "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:[]LabelSelectorRequirement{\
LabelSelectorRequirement{Key:k,Operator:In,Values:[x y],},},}"
    );
}

#[test]
fn dra_and_storage_version() {
    let g = "resource.k8s.io";
    let claim = |meta: Value, status: Value| {
        cells(
            g,
            "ResourceClaim",
            json!({"metadata": meta, "status": status}),
        )
    };
    assert_eq!(
        claim(
            json!({"name": "c", "creationTimestamp": ago(5 * MIN)}),
            json!({})
        ),
        json!(["c", "pending", "5m"])
    );
    assert_eq!(
        claim(
            json!({"name": "c"}),
            json!({"allocation": {}, "reservedFor": [{"resource": "pods", "name": "p"}]})
        )[1],
        "allocated,reserved"
    );
    assert_eq!(
        claim(json!({"name": "c", "deletionTimestamp": ago(0)}), json!({}))[1],
        "deleted"
    );
    assert_eq!(
        cells(g, "DeviceClass", json!({"metadata": {"name": "gpu"}})),
        json!(["gpu", "<unknown>"])
    );
    assert_eq!(
        cells(
            g,
            "ResourceSlice",
            json!({"metadata": {"name": "s"}, "spec": {"nodeName": "n", "driver": "d",
            "pool": {"name": "p", "resourceSliceCount": 1}}})
        ),
        json!(["s", "n", "d", "p", "<unknown>"])
    );
    let sv = json!({"metadata": {"name": "agreeWithMore"}, "status": {"commonEncodingVersion": "v1",
        "storageVersions": [{"apiServerID": "1", "encodingVersion": "v1"}, {"apiServerID": "2", "encodingVersion": "v1"},
                            {"apiServerID": "3", "encodingVersion": "v1"}, {"apiServerID": "4", "encodingVersion": "v1"}]}});
    assert_eq!(
        cells("internal.apiserver.k8s.io", "StorageVersion", sv),
        json!([
            "agreeWithMore",
            "v1",
            "1=v1,2=v1,3=v1 + 1 more...",
            "<unknown>"
        ])
    );
    assert_eq!(
        cells(
            "internal.apiserver.k8s.io",
            "StorageVersion",
            json!({"metadata": {"name": "empty"}})
        ),
        json!(["empty", "<unset>", "<unset>", "<unknown>"])
    );
}

// ---------------------------------------------------------------------------------------
// Robustness: every node of realistic objects replaced by wrongly-typed values.

/// Copies of `v` where one node at a time is replaced by each of `replacements`.
fn mutations(v: &Value, replacements: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = replacements.to_vec();
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                for m in mutations(child, replacements) {
                    let mut copy = map.clone();
                    copy.insert(k.clone(), m);
                    out.push(Value::Object(copy));
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                for m in mutations(child, replacements) {
                    let mut copy = items.clone();
                    copy[i] = m;
                    out.push(Value::Array(copy));
                }
            }
        }
        _ => {}
    }
    out
}

#[test]
fn mutated_objects_never_panic() {
    let replacements = [
        json!(null),
        json!(-1),
        json!(i64::MAX),
        json!(1.5e300),
        json!("\u{e9}\u{1F600}-1e99999"),
        json!([{}]),
        json!({"a": [1]}),
    ];
    let samples = [
        json!({"metadata": {"name": "p", "creationTimestamp": ago(HOUR), "deletionTimestamp": ago(1),
                "labels": {"node-role.kubernetes.io/x": ""}, "annotations": {"a": "b"},
                "ownerReferences": [{"controller": true, "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r"}]},
               "spec": {"initContainers": [{"name": "i", "restartPolicy": "Always"}], "containers": [{"name": "c", "image": "i"}],
                        "readinessGates": [{"conditionType": "x"}], "nodeName": "n",
                        "selector": {"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]},
                        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c"}], "nodeSelector": {"a": "b"}}},
                        "replicas": 3, "completions": 2, "parallelism": 2, "ports": [{"port": 80, "nodePort": 30000, "protocol": "TCP"}],
                        "type": "LoadBalancer", "externalIPs": ["1.1.1.1"], "claimRef": {"name": "c", "namespace": "n"},
                        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "volumeName": "v",
                        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"averageValue": "1"}}}],
                        "jobTemplate": {"spec": {"template": {"spec": {"containers": [{}]}}}},
                        "rules": [{"host": "h"}], "tls": [{}], "parameters": {"kind": "K", "name": "n"},
                        "paramRef": {"selector": {"matchLabels": {"a": "b"}}}, "paramKind": {"kind": "K"},
                        "limited": {"limitResponse": {"queuing": {"queues": 1}}}, "expirationSeconds": 60,
                        "parentRef": {"resource": "r", "name": "n"}, "tokenRequests": [{"audience": "a"}]},
               "status": {"phase": "Running", "reason": "r", "podIPs": [{"ip": "1.2.3.4"}],
                          "conditions": [{"type": "Ready", "status": "True"}, {"type": "Complete", "status": "True"}],
                          "initContainerStatuses": [{"name": "i", "started": true, "restartCount": 1,
                              "state": {"terminated": {"exitCode": 1, "signal": 2}},
                              "lastState": {"terminated": {"finishedAt": ago(5)}}}],
                          "containerStatuses": [{"ready": true, "restartCount": 2, "state": {"running": {}},
                              "lastState": {"terminated": {"finishedAt": ago(7)}}}],
                          "loadBalancer": {"ingress": [{"ip": "1.1.1.1"}, {"hostname": "h"}]},
                          "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                          "nodeInfo": {"kubeletVersion": "v1"}, "startTime": ago(60), "completionTime": ago(30),
                          "currentMetrics": [{"type": "Resource", "resource": {"current": {"averageValue": "1"}}}],
                          "hard": {"cpu": "1", "limits.cpu": "2"}, "used": {"cpu": "500m"}, "allocation": {},
                          "storageVersions": [{"apiServerID": "a", "encodingVersion": "v1"}]},
               "involvedObject": {"kind": "Pod", "name": "p"}, "series": {"count": 2, "lastObservedTime": ago(3)},
               "source": {"component": "c"}, "firstTimestamp": ago(9), "lastTimestamp": ago(8), "count": 3,
               "subsets": [{"addresses": [{"ip": "1.1.1.1"}], "ports": [{"port": 80}]}],
               "endpoints": [{"addresses": ["1.1.1.1"]}], "ports": [{"port": 80, "name": "p"}],
               "data": {"a": "b"}, "secrets": [{"name": "s"}], "webhooks": [{}], "subjects": [{"kind": "User", "name": "u"}],
               "roleRef": {"kind": "Role", "name": "r"}, "conditions": [{"type": "Healthy", "status": "True"}],
               "revision": 1, "capacity": "1Gi", "value": 5}),
    ];
    for sample in &samples {
        let variants = mutations(sample, &replacements);
        assert!(variants.len() > 500);
        for (group, kind) in KINDS {
            for v in &variants {
                let r = row(group, kind, v, now());
                assert_eq!(r.len(), columns(group, kind).len(), "{group}/{kind}");
            }
        }
    }
}

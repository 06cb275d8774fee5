//! Tests of upstream's "API operations" kind: one resource walked through discovery,
//! create, get, list, watch, patch, update, status, delete and delete-collection
//! ([`lifecycle`]). Each test is its resource and body.

use serde_json::{Value, json};

use super::lifecycle::{Resource, lifecycle};
use super::{Test, t};
use crate::ctx::{Ctx, R};

/// A condition a status patch sets (a type no controller owns).
fn patched_condition() -> Value {
    json!({"status": {"conditions": [{
        "type": "StatusPatched", "status": "True", "reason": "E2E",
        "message": "Set from an e2e test", "lastTransitionTime": "2024-01-01T00:00:00Z"
    }]}})
}

/// A resource walked through [`lifecycle`].
fn res(
    api_version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    body: Value,
    status_patch: Option<Value>,
) -> Resource {
    Resource {
        api_version,
        kind,
        plural,
        namespaced,
        body,
        status_patch,
    }
}

async fn flowschema(c: Ctx) -> R {
    let body = json!({"spec": {
        "priorityLevelConfiguration": {"name": "global-default"},
        "matchingPrecedence": 10000,
        "rules": [{"subjects": [{"kind": "Group", "group": {"name": "system:unauthenticated"}}],
                   "resourceRules": [{"verbs": ["get"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"]}]}]
    }});
    let r = res(
        "flowcontrol.apiserver.k8s.io/v1",
        "FlowSchema",
        "flowschemas",
        false,
        body,
        Some(patched_condition()),
    );
    lifecycle(&c, &r).await
}

async fn priority_level(c: Ctx) -> R {
    let body = json!({"spec": {"type": "Limited", "limited": {
        "nominalConcurrencyShares": 2, "lendablePercent": 0, "limitResponse": {"type": "Reject"}
    }}});
    let r = res(
        "flowcontrol.apiserver.k8s.io/v1",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        false,
        body,
        Some(patched_condition()),
    );
    lifecycle(&c, &r).await
}

async fn storage_version_migration(c: Ctx) -> R {
    let body = json!({"spec": {"resource": {"group": "", "resource": "configmaps"}}});
    let r = res(
        "storagemigration.k8s.io/v1",
        "StorageVersionMigration",
        "storageversionmigrations",
        false,
        body,
        None,
    );
    lifecycle(&c, &r).await
}

async fn device_class(c: Ctx) -> R {
    let body = json!({"spec": {"selectors": [{"cel": {"expression": "device.driver == \"example.com\""}}]}});
    lifecycle(
        &c,
        &res(
            "resource.k8s.io/v1",
            "DeviceClass",
            "deviceclasses",
            false,
            body,
            None,
        ),
    )
    .await
}

async fn device_taint_rule(c: Ctx) -> R {
    let body = json!({"spec": {"deviceSelector": {"driver": "example.com"},
        "taint": {"key": "example.com/taint", "value": "x", "effect": "NoSchedule"}}});
    lifecycle(
        &c,
        &res(
            "resource.k8s.io/v1",
            "DeviceTaintRule",
            "devicetaintrules",
            false,
            body,
            None,
        ),
    )
    .await
}

fn device_requests() -> Value {
    json!({"requests": [{"name": "req-0", "exactly": {"deviceClassName": "example-class"}}]})
}

async fn resource_claim(c: Ctx) -> R {
    let body = json!({"spec": {"devices": device_requests()}});
    lifecycle(
        &c,
        &res(
            "resource.k8s.io/v1",
            "ResourceClaim",
            "resourceclaims",
            true,
            body,
            None,
        ),
    )
    .await
}

async fn resource_claim_template(c: Ctx) -> R {
    let body = json!({"spec": {"spec": {"devices": device_requests()}}});
    lifecycle(
        &c,
        &res(
            "resource.k8s.io/v1",
            "ResourceClaimTemplate",
            "resourceclaimtemplates",
            true,
            body,
            None,
        ),
    )
    .await
}

async fn resource_slice(c: Ctx) -> R {
    let body = json!({"spec": {"driver": "example.com", "nodeName": c.name("node"),
        "pool": {"name": "pool", "generation": 1, "resourceSliceCount": 1},
        "devices": [{"name": "device-0"}]}});
    lifecycle(
        &c,
        &res(
            "resource.k8s.io/v1",
            "ResourceSlice",
            "resourceslices",
            false,
            body,
            None,
        ),
    )
    .await
}

async fn core_event(c: Ctx) -> R {
    let body = json!({
        "involvedObject": {"kind": "Pod", "name": "some-pod", "namespace": c.ns, "apiVersion": "v1"},
        "reason": "Testing", "message": "This is a test event", "type": "Normal",
        "source": {"component": "conformance"}, "count": 1
    });
    lifecycle(&c, &res("v1", "Event", "events", true, body, None)).await
}

async fn events_v1_event(c: Ctx) -> R {
    let body = json!({
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "reportingController": "example.com/conformance", "reportingInstance": "conformance-1",
        "action": "Testing", "reason": "Testing", "type": "Normal", "note": "This is a test event",
        "regarding": {"kind": "Pod", "name": "some-pod", "namespace": c.ns, "apiVersion": "v1"}
    });
    lifecycle(
        &c,
        &res("events.k8s.io/v1", "Event", "events", true, body, None),
    )
    .await
}

async fn endpoints(c: Ctx) -> R {
    let body = json!({"subsets": [{"addresses": [{"ip": "10.0.0.24"}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]});
    lifecycle(&c, &res("v1", "Endpoints", "endpoints", true, body, None)).await
}

async fn endpoint_slice(c: Ctx) -> R {
    let body = json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.24"]}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]});
    lifecycle(
        &c,
        &res(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            "endpointslices",
            true,
            body,
            None,
        ),
    )
    .await
}

async fn ingress(c: Ctx) -> R {
    let body = json!({"spec": {"defaultBackend": {"service": {"name": "default-backend", "port": {"number": 8080}}}}});
    let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": "169.1.1.1"}]}}});
    lifecycle(
        &c,
        &res(
            "networking.k8s.io/v1",
            "Ingress",
            "ingresses",
            true,
            body,
            Some(status),
        ),
    )
    .await
}

async fn ingress_class(c: Ctx) -> R {
    let body = json!({"spec": {"controller": "example.com/conformance"}});
    lifecycle(
        &c,
        &res(
            "networking.k8s.io/v1",
            "IngressClass",
            "ingressclasses",
            false,
            body,
            None,
        ),
    )
    .await
}

async fn lease(c: Ctx) -> R {
    let body = json!({"spec": {"holderIdentity": "holder", "leaseDurationSeconds": 30,
        "acquireTime": "2024-01-01T00:00:00.000000Z", "renewTime": "2024-01-01T00:00:00.000000Z"}});
    lifecycle(
        &c,
        &res(
            "coordination.k8s.io/v1",
            "Lease",
            "leases",
            true,
            body,
            None,
        ),
    )
    .await
}

async fn node(c: Ctx) -> R {
    // Tainted, so that no pod of another test is ever scheduled to this fake node.
    let body =
        json!({"spec": {"taints": [{"key": "k1s-conformance/fake", "effect": "NoSchedule"}]}});
    let status = json!({"status": {"capacity": {"example.com/fakecpu": "2"}}});
    lifecycle(&c, &res("v1", "Node", "nodes", false, body, Some(status))).await
}

async fn pod_template(c: Ctx) -> R {
    let body = json!({"template": {"metadata": {"labels": {"app": "demo"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}});
    lifecycle(
        &c,
        &res("v1", "PodTemplate", "podtemplates", true, body, None),
    )
    .await
}

async fn priority_class(c: Ctx) -> R {
    let body = json!({"value": 1000, "description": "conformance"});
    lifecycle(
        &c,
        &res(
            "scheduling.k8s.io/v1",
            "PriorityClass",
            "priorityclasses",
            false,
            body,
            None,
        ),
    )
    .await
}

async fn csi_driver(c: Ctx) -> R {
    let body = json!({"spec": {"attachRequired": true, "podInfoOnMount": true}});
    lifecycle(
        &c,
        &res(
            "storage.k8s.io/v1",
            "CSIDriver",
            "csidrivers",
            false,
            body,
            None,
        ),
    )
    .await
}

async fn csi_node(c: Ctx) -> R {
    let body = json!({"spec": {"drivers": [{"name": "example.csi.k8s.io", "nodeID": "node-1"}]}});
    lifecycle(
        &c,
        &res(
            "storage.k8s.io/v1",
            "CSINode",
            "csinodes",
            false,
            body,
            None,
        ),
    )
    .await
}

async fn csi_storage_capacity(c: Ctx) -> R {
    let body = json!({"storageClassName": "example-class", "capacity": "1Gi"});
    lifecycle(
        &c,
        &res(
            "storage.k8s.io/v1",
            "CSIStorageCapacity",
            "csistoragecapacities",
            true,
            body,
            None,
        ),
    )
    .await
}

async fn storage_class(c: Ctx) -> R {
    let body = json!({"provisioner": "example.com/conformance", "reclaimPolicy": "Delete"});
    lifecycle(
        &c,
        &res(
            "storage.k8s.io/v1",
            "StorageClass",
            "storageclasses",
            false,
            body,
            None,
        ),
    )
    .await
}

fn volume_attachment() -> Value {
    json!({"spec": {"attacher": "example.csi.k8s.io", "nodeName": "node-1",
        "source": {"persistentVolumeName": "pv-1"}}})
}

async fn volume_attachment_lifecycle(c: Ctx) -> R {
    lifecycle(
        &c,
        &res(
            "storage.k8s.io/v1",
            "VolumeAttachment",
            "volumeattachments",
            false,
            volume_attachment(),
            None,
        ),
    )
    .await
}

async fn volume_attachment_status(c: Ctx) -> R {
    let status = json!({"status": {"attached": true, "attachmentMetadata": {"a": "b"}}});
    lifecycle(
        &c,
        &res(
            "storage.k8s.io/v1",
            "VolumeAttachment",
            "volumeattachments",
            false,
            volume_attachment(),
            Some(status),
        ),
    )
    .await
}

async fn volume_attributes_class(c: Ctx) -> R {
    let body = json!({"driverName": "example.csi.k8s.io", "parameters": {"iops": "3000"}});
    lifecycle(
        &c,
        &res(
            "storage.k8s.io/v1",
            "VolumeAttributesClass",
            "volumeattributesclasses",
            false,
            body,
            None,
        ),
    )
    .await
}

fn pv_body() -> Value {
    json!({"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "conformance-manual",
        "hostPath": {"path": "/tmp/k1s-conformance-pv"}}})
}

fn pvc_body() -> Value {
    json!({"spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "conformance-manual",
        "resources": {"requests": {"storage": "1Gi"}}}})
}

async fn pv_pvc_lifecycle(c: Ctx) -> R {
    lifecycle(
        &c,
        &res(
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            false,
            pv_body(),
            None,
        ),
    )
    .await?;
    lifecycle(
        &c,
        &res(
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            pvc_body(),
            None,
        ),
    )
    .await
}

async fn pv_pvc_status(c: Ctx) -> R {
    let pv_status = json!({"status": {"message": "patched by the conformance test"}});
    lifecycle(
        &c,
        &res(
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            false,
            pv_body(),
            Some(pv_status),
        ),
    )
    .await?;
    lifecycle(
        &c,
        &res(
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            pvc_body(),
            Some(patched_condition()),
        ),
    )
    .await
}

async fn controller_revision(c: Ctx) -> R {
    let body = json!({"data": {"spec": {"template": {"metadata": {"labels": {"app": "x"}}}}}, "revision": 1});
    lifecycle(
        &c,
        &res(
            "apps/v1",
            "ControllerRevision",
            "controllerrevisions",
            true,
            body,
            None,
        ),
    )
    .await
}

fn pdb_body() -> Value {
    json!({"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "conformance-pdb"}}}})
}

async fn pdb(c: Ctx) -> R {
    lifecycle(
        &c,
        &res(
            "policy/v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            pdb_body(),
            None,
        ),
    )
    .await
}

async fn cronjob(c: Ctx) -> R {
    let body = json!({"spec": {"schedule": "*/1 * * * *", "suspend": true,
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}}}});
    let status = json!({"status": {"lastScheduleTime": "2024-01-01T00:00:00Z"}});
    lifecycle(
        &c,
        &res("batch/v1", "CronJob", "cronjobs", true, body, Some(status)),
    )
    .await
}

async fn validating_admission_policy(c: Ctx) -> R {
    // Matches only namespaces with a label none has: it never judges another test's object.
    let body = json!({"spec": {"failurePolicy": "Fail",
        "matchConstraints": {"namespaceSelector": {"matchLabels": {"conformance-vap": c.tag}},
            "resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
        "validations": [{"expression": "object.spec.replicas < 100"}]}});
    lifecycle(
        &c,
        &res(
            "admissionregistration.k8s.io/v1",
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
            false,
            body,
            None,
        ),
    )
    .await
}

async fn validating_admission_policy_binding(c: Ctx) -> R {
    let body = json!({"spec": {"policyName": c.name("no-such-policy"), "validationActions": ["Deny"],
        "matchResources": {"namespaceSelector": {"matchLabels": {"conformance-vap": c.tag}}}}});
    lifecycle(
        &c,
        &res(
            "admissionregistration.k8s.io/v1",
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
            false,
            body,
            None,
        ),
    )
    .await
}

async fn limit_range_collection(c: Ctx) -> R {
    let body = json!({"spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "500Mi"},
        "defaultRequest": {"cpu": "100m", "memory": "200Mi"}}]}});
    lifecycle(
        &c,
        &res("v1", "LimitRange", "limitranges", true, body, None),
    )
    .await
}

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    vec![
        t!(
            "Priority and Fairness FlowSchema API",
            "[sig-api-machinery] API priority and fairness should support FlowSchema API operations [Conformance]",
            flowschema
        ),
        t!(
            "Priority and Fairness PriorityLevelConfiguration API",
            "[sig-api-machinery] API priority and fairness should support PriorityLevelConfiguration API operations [Conformance]",
            priority_level
        ),
        t!(
            "CRUD operations for storageversionmigrations",
            "[sig-api-machinery] StorageVersionMigration CRUD Tests storagemigration.k8s.io/v1 StorageVersionMigration [Conformance]",
            storage_version_migration
        ),
        t!(
            "CRUD operations for deviceclasses",
            "[sig-node] [DRA] CRUD Tests resource.k8s.io/v1 DeviceClass [Conformance]",
            device_class
        ),
        t!(
            "CRUD operations for devicetaintrules",
            "[sig-node] [DRA] CRUD Tests resource.k8s.io/v1 DeviceTaintRule [Conformance]",
            device_taint_rule
        ),
        t!(
            "CRUD operations for resourceclaims",
            "[sig-node] [DRA] CRUD Tests resource.k8s.io/v1 ResourceClaim [Conformance]",
            resource_claim
        ),
        t!(
            "CRUD operations for resourceclaimtemplates",
            "[sig-node] [DRA] CRUD Tests resource.k8s.io/v1 ResourceClaimTemplate [Conformance]",
            resource_claim_template
        ),
        t!(
            "CRUD operations for resoureslices",
            "[sig-node] [DRA] CRUD Tests resource.k8s.io/v1 ResourceSlice [Conformance]",
            resource_slice
        ),
        t!(
            "Event, delete a collection",
            "[sig-instrumentation] Events should delete a collection of events [Conformance]",
            core_event
        ),
        t!(
            "Event, manage lifecycle of an Event",
            "[sig-instrumentation] Events should manage the lifecycle of an event [Conformance]",
            core_event
        ),
        t!(
            "New Event resource lifecycle, testing a list of events",
            "[sig-instrumentation] Events API should delete a collection of events [Conformance]",
            events_v1_event
        ),
        t!(
            "New Event resource lifecycle, testing a single event",
            "[sig-instrumentation] Events API should ensure that an event can be fetched, patched, deleted, and listed [Conformance]",
            events_v1_event
        ),
        t!(
            "Endpoint resource lifecycle",
            "[sig-network] Endpoints should test the lifecycle of an Endpoint [Conformance]",
            endpoints
        ),
        t!(
            "EndpointSlice API",
            "[sig-network] EndpointSlice should support creating EndpointSlice API operations [Conformance]",
            endpoint_slice
        ),
        t!(
            "Ingress API",
            "[sig-network] Ingress API should support creating Ingress API operations [Conformance]",
            ingress
        ),
        t!(
            "IngressClass API",
            "[sig-network] IngressClass API should support creating IngressClass API operations [Conformance]",
            ingress_class
        ),
        t!(
            "lease API should be available",
            "[sig-node] Lease lease API should be available [Conformance]",
            lease
        ),
        t!(
            "Node, resource lifecycle",
            "[sig-node] Node Lifecycle should run through the lifecycle of a node [Conformance]",
            node
        ),
        t!(
            "PodTemplate lifecycle",
            "[sig-node] PodTemplates should run the lifecycle of PodTemplates [Conformance]",
            pod_template
        ),
        t!(
            "PodTemplate, delete a collection",
            "[sig-node] PodTemplates should delete a collection of pod templates [Conformance]",
            pod_template
        ),
        t!(
            "PodTemplate, replace",
            "[sig-node] PodTemplates should replace a pod template [Conformance]",
            pod_template
        ),
        t!(
            "Scheduler, Verify PriorityClass endpoints",
            "[sig-scheduling] SchedulerPreemption PriorityClass endpoints verify PriorityClass endpoints can be operated with different HTTP methods [Conformance] [Serial]",
            priority_class
        ),
        t!(
            "CSIDriver, lifecycle",
            "[sig-storage] CSIInlineVolumes should run through the lifecycle of a CSIDriver [Conformance]",
            csi_driver
        ),
        t!(
            "CSINode, lifecycle",
            "[sig-storage] CSINodes CSI Conformance should run through the lifecycle of a csinode [Conformance]",
            csi_node
        ),
        t!(
            "CSIStorageCapacity API",
            "[sig-storage] CSIStorageCapacity should support CSIStorageCapacities API operations [Conformance]",
            csi_storage_capacity
        ),
        t!(
            "StorageClass, lifecycle",
            "[sig-storage] StorageClasses CSI Conformance should run through the lifecycle of a StorageClass [Conformance]",
            storage_class
        ),
        t!(
            "VolumeAttachment, lifecycle",
            "[sig-storage] VolumeAttachment Conformance should run through the lifecycle of a VolumeAttachment [Conformance]",
            volume_attachment_lifecycle
        ),
        t!(
            "VolumeAttachment, apply changes to a volumeattachment status",
            "[sig-storage] VolumeAttachment Conformance should apply changes to a volumeattachment status [Conformance]",
            volume_attachment_status
        ),
        t!(
            "VolumeAttributesClass, lifecycle",
            "[sig-storage] VolumeAttributesClass [FeatureGate:VolumeAttributesClass] should run through the lifecycle of a VolumeAttributesClass [Conformance]",
            volume_attributes_class
        ),
        t!(
            "PersistentVolumes(Claims), lifecycle",
            "[sig-storage] PersistentVolumes CSI Conformance should run through the lifecycle of a PV and a PVC [Conformance]",
            pv_pvc_lifecycle
        ),
        t!(
            "PersistentVolumes(Claims), apply changes to a pv/pvc status",
            "[sig-storage] PersistentVolumes CSI Conformance should apply changes to a pv/pvc status [Conformance]",
            pv_pvc_status
        ),
        t!(
            "ControllerRevision, resource lifecycle",
            "[sig-apps] ControllerRevision should manage the lifecycle of a ControllerRevision [Conformance] [Serial]",
            controller_revision
        ),
        t!(
            "PodDisruptionBudget: create, update, patch, and delete object",
            "[sig-apps] DisruptionController should create a PodDisruptionBudget [Conformance]",
            pdb
        ),
        t!(
            "PodDisruptionBudget: list and delete collection",
            "[sig-apps] DisruptionController Listing PodDisruptionBudgets for all namespaces should list and delete a collection of PodDisruptionBudgets [Conformance]",
            pdb
        ),
        t!(
            "CronJob API Operations",
            "[sig-apps] CronJob should support CronJob API operations [Conformance]",
            cronjob
        ),
        t!(
            "ValidatingAdmissionPolicy API",
            "[sig-api-machinery] ValidatingAdmissionPolicy [Privileged:ClusterAdmin] should support ValidatingAdmissionPolicy API operations [Conformance]",
            validating_admission_policy
        ),
        t!(
            "ValidatingadmissionPolicyBinding API",
            "[sig-api-machinery] ValidatingAdmissionPolicy [Privileged:ClusterAdmin] should support ValidatingAdmissionPolicyBinding API operations [Conformance]",
            validating_admission_policy_binding
        ),
        t!(
            "LimitRange, list, patch and delete a LimitRange by collection",
            "[sig-scheduling] LimitRange should list, patch and delete a LimitRange by collection [Conformance]",
            limit_range_collection
        ),
    ]
}

//! Storage protection against a real API server: a claim a scheduled pod uses stays
//! (terminating) until the pod goes; a volume goes once it is no longer bound.

mod common;

use std::time::Duration;

use common::{Cluster, eventually, is_not_found};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

const PVC_FINALIZER: &str = "kubernetes.io/pvc-protection";

#[tokio::test]
async fn a_claim_in_use_outlives_its_delete_until_the_pod_goes() {
    let c = Cluster::start().await;
    c.namespace("prot").await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "prot");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "prot");
    let claim = serde_json::from_value(json!({
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                 "resources": {"requests": {"storage": "1Gi"}}}}))
    .expect("claim");
    pvcs.create(&PostParams::default(), &claim)
        .await
        .expect("create claim");
    // The test server runs without the admission plugin: the controller adds it.
    eventually("the claim gets its finalizer", || async {
        let p = pvcs.get("data").await.ok()?;
        p.metadata
            .finalizers?
            .iter()
            .any(|f| f == PVC_FINALIZER)
            .then_some(())
    })
    .await;
    let pod = serde_json::from_value(json!({
        "metadata": {"name": "user"},
        "spec": {"nodeName": "somewhere", "containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");

    pvcs.delete("data", &DeleteParams::default())
        .await
        .expect("delete claim");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = pvcs.get("data").await.expect("claim still there");
    assert!(held.metadata.deletion_timestamp.is_some(), "{held:?}");

    pods.delete("user", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete pod");
    eventually("the claim goes with its last user", || async {
        match pvcs.get("data").await {
            Err(e) if is_not_found(&e) => Some(()),
            _ => None,
        }
    })
    .await;
}

#[tokio::test]
async fn an_unbound_volume_goes_at_once() {
    let c = Cluster::start().await;
    let pvs: Api<PersistentVolume> = Api::all(c.client.clone());
    let pv = serde_json::from_value(json!({
        "metadata": {"name": "spare"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "storageClassName": "manual", "hostPath": {"path": "/tmp/spare"}}}))
    .expect("volume");
    pvs.create(&PostParams::default(), &pv)
        .await
        .expect("create volume");
    eventually("the volume gets its finalizer", || async {
        let v = pvs.get("spare").await.ok()?;
        v.metadata
            .finalizers?
            .iter()
            .any(|f| f == "kubernetes.io/pv-protection")
            .then_some(())
    })
    .await;
    pvs.delete("spare", &DeleteParams::default())
        .await
        .expect("delete volume");
    eventually("the unbound volume is deleted", || async {
        match pvs.get("spare").await {
            Err(e) if is_not_found(&e) => Some(()),
            _ => None,
        }
    })
    .await;
}

//! The PV binder against a real API server: claims bind to the smallest matching
//! volume, volumes are released or deleted with their claim, and claims it cannot
//! bind stay Pending with upstream's events.

mod common;

use common::{Cluster, eventually, is_not_found};
use k8s_openapi::api::core::v1::{Event, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};

async fn create<K>(api: &Api<K>, v: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(v).expect("object");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create");
}

fn pv(name: &str, size: &str, class: &str, policy: &str) -> Value {
    json!({"metadata": {"name": name},
           "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                    "storageClassName": class, "persistentVolumeReclaimPolicy": policy,
                    "hostPath": {"path": format!("/tmp/{name}")}}})
}

fn pvc(name: &str, size: &str, class: &str) -> Value {
    json!({"metadata": {"name": name},
           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                    "resources": {"requests": {"storage": size}}}})
}

async fn event_of(c: &Cluster, ns: &str, claim: &str, reason: &str) -> String {
    let events: Api<Event> = Api::namespaced(c.client.clone(), ns);
    eventually(&format!("{reason} event for {claim}"), || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.involved_object.name.as_deref() == Some(claim)
            })
            .and_then(|e| e.message)
    })
    .await
}

#[tokio::test]
async fn claims_bind_to_matching_volumes_and_release_them() {
    let c = Cluster::start().await;
    c.namespace("pv").await;
    let pvs: Api<PersistentVolume> = Api::all(c.client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "pv");
    create(&pvs, pv("pv-small", "1Gi", "manual", "Retain")).await;
    create(&pvs, pv("pv-fit", "2Gi", "manual", "Retain")).await;
    create(&pvs, pv("pv-big", "10Gi", "manual", "Retain")).await;
    create(&pvs, pv("pv-del", "1Gi", "scratch", "Delete")).await;
    eventually("volumes Available", || async {
        let v = pvs.get("pv-fit").await.ok()?;
        (v.status?.phase.as_deref() == Some("Available")).then_some(())
    })
    .await;

    create(&pvcs, pvc("data", "1500Mi", "manual")).await;
    let claim = eventually("data Bound", || async {
        let p = pvcs.get("data").await.ok()?;
        (p.status.as_ref()?.phase.as_deref() == Some("Bound")).then_some(p)
    })
    .await;
    assert_eq!(
        claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()),
        Some("pv-fit")
    );
    let ann = claim.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        ann.get("pv.kubernetes.io/bind-completed")
            .map(String::as_str),
        Some("yes")
    );
    assert_eq!(
        ann.get("pv.kubernetes.io/bound-by-controller")
            .map(String::as_str),
        Some("yes")
    );
    let cap = claim.status.and_then(|s| s.capacity).unwrap_or_default();
    assert_eq!(cap.get("storage").map(|q| q.0.as_str()), Some("2Gi"));
    let vol = eventually("pv-fit Bound", || async {
        let v = pvs.get("pv-fit").await.ok()?;
        (v.status.as_ref()?.phase.as_deref() == Some("Bound")).then_some(v)
    })
    .await;
    let r = vol.spec.and_then(|s| s.claim_ref).expect("claimRef");
    assert_eq!(
        (r.namespace.as_deref(), r.name.as_deref()),
        (Some("pv"), Some("data"))
    );
    assert_eq!(r.uid, claim.metadata.uid);
    assert_eq!(
        vol.metadata
            .annotations
            .unwrap_or_default()
            .get("pv.kubernetes.io/bound-by-controller")
            .map(String::as_str),
        Some("yes")
    );

    // Retain: the volume outlives its claim, Released.
    pvcs.delete("data", &DeleteParams::default())
        .await
        .expect("delete claim");
    eventually("pv-fit Released", || async {
        let v = pvs.get("pv-fit").await.ok()?;
        (v.status?.phase.as_deref() == Some("Released")).then_some(())
    })
    .await;

    // Delete: the volume goes with its claim.
    create(&pvcs, pvc("tmp", "1Gi", "scratch")).await;
    eventually("tmp Bound", || async {
        let p = pvcs.get("tmp").await.ok()?;
        (p.status?.phase.as_deref() == Some("Bound")).then_some(())
    })
    .await;
    pvcs.delete("tmp", &DeleteParams::default())
        .await
        .expect("delete claim");
    eventually("pv-del deleted", || async {
        match pvs.get("pv-del").await {
            Err(e) if is_not_found(&e) => Some(()),
            _ => None,
        }
    })
    .await;
}

#[tokio::test]
async fn unbindable_claims_stay_pending_with_upstreams_events() {
    let c = Cluster::start().await;
    c.namespace("pending").await;
    let classes: Api<StorageClass> = Api::all(c.client.clone());
    create(&classes, json!({"metadata": {"name": "local-wait"},
        "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer"})).await;
    create(
        &classes,
        json!({"metadata": {"name": "csi"}, "provisioner": "example.com/csi"}),
    )
    .await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "pending");
    create(&pvcs, pvc("wait", "1Gi", "local-wait")).await;
    create(&pvcs, pvc("ext", "1Gi", "csi")).await;
    create(&pvcs, pvc("none", "1Gi", "")).await;

    assert_eq!(
        event_of(&c, "pending", "wait", "WaitForFirstConsumer").await,
        "waiting for first consumer to be created before binding"
    );
    assert_eq!(
        event_of(&c, "pending", "ext", "ExternalProvisioning").await,
        "Waiting for a volume to be created either by the external provisioner 'example.com/csi' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
    );
    assert_eq!(
        event_of(&c, "pending", "none", "FailedBinding").await,
        "no persistent volumes available for this claim and no storage class is set"
    );
    for name in ["wait", "ext", "none"] {
        let p = pvcs.get(name).await.expect("claim");
        assert_eq!(
            p.status.and_then(|s| s.phase).as_deref(),
            Some("Pending"),
            "{name}"
        );
    }
    let ext = pvcs.get("ext").await.expect("claim");
    assert_eq!(
        ext.metadata
            .annotations
            .unwrap_or_default()
            .get("volume.kubernetes.io/storage-provisioner")
            .map(String::as_str),
        Some("example.com/csi")
    );
}

#[tokio::test]
async fn a_claim_without_a_class_gets_the_default_class_once_one_exists() {
    let c = Cluster::start().await;
    c.namespace("late").await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "late");
    let mut unset = pvc("late", "1Gi", "");
    if let Some(spec) = unset["spec"].as_object_mut() {
        spec.remove("storageClassName");
    }
    create(&pvcs, unset).await;
    create(&pvcs, pvc("none", "1Gi", "")).await;
    event_of(&c, "late", "late", "FailedBinding").await;
    let classes: Api<StorageClass> = Api::all(c.client.clone());
    create(
        &classes,
        json!({"metadata": {"name": "local-path",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}),
    )
    .await;
    eventually("the default class on the claim", || async {
        let p = pvcs.get("late").await.ok()?;
        (p.spec?.storage_class_name.as_deref() == Some("local-path")).then_some(())
    })
    .await;
    event_of(&c, "late", "late", "WaitForFirstConsumer").await;
    // An empty class means "no class": it stays.
    let none = pvcs.get("none").await.expect("claim");
    assert_eq!(
        none.spec.and_then(|s| s.storage_class_name).as_deref(),
        Some("")
    );
}

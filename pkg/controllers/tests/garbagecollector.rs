//! The garbage collector against a real API server, with a hand-made
//! Deployment → ReplicaSet → Pod chain; only the garbage collector runs, since the
//! workload controllers would manage (and race with) the hand-made chain.

mod common;

use common::{Cluster, eventually, is_not_found};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

const GC: &[&str] = &["garbage-collector-controller"];

fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into(),
        kind: K::kind(&()).into(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn pod_template(app: &str) -> serde_json::Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    })
}

/// What a deployment controller would have made: one Deployment, one ReplicaSet, two Pods.
struct Chain {
    deploys: Api<Deployment>,
    sets: Api<ReplicaSet>,
    pods: Api<Pod>,
    rs_uid: String,
}

async fn chain(c: &Cluster, ns: &str) -> Chain {
    c.namespace(ns).await;
    let pp = PostParams::default();
    let deploys: Api<Deployment> = Api::namespaced(c.client.clone(), ns);
    let sets: Api<ReplicaSet> = Api::namespaced(c.client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), ns);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": pod_template("web")}
    }))
    .expect("deployment");
    let d = deploys.create(&pp, &d).await.expect("create deployment");
    let mut rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web-1"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": pod_template("web")}
    }))
    .expect("replicaset");
    rs.metadata.owner_references = Some(vec![owner_ref(&d)]);
    let rs = sets.create(&pp, &rs).await.expect("create replicaset");
    for i in 0..2 {
        let mut p: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("web-1-{i}"), "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}
        }))
        .expect("pod");
        p.metadata.owner_references = Some(vec![owner_ref(&rs)]);
        pods.create(&pp, &p).await.expect("create pod");
    }
    Chain {
        deploys,
        sets,
        pods,
        rs_uid: rs.uid().unwrap_or_default(),
    }
}

async fn gone<K>(api: &Api<K>, name: &str) -> Option<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get(name).await {
        Err(e) if is_not_found(&e) => Some(()),
        _ => None,
    }
}

async fn count<K>(api: &Api<K>) -> usize
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .expect("list")
        .items
        .len()
}

#[tokio::test]
async fn background_deletion_collects_the_whole_chain() {
    // `kubectl delete deployment` (Background) must not leave ReplicaSets and Pods behind.
    let c = Cluster::start_only(GC).await;
    let ch = chain(&c, "bg").await;
    ch.deploys
        .delete("web", &DeleteParams::background())
        .await
        .expect("delete");
    eventually("the ReplicaSet to be collected", || gone(&ch.sets, "web-1")).await;
    eventually("the Pods to be collected", || async {
        (count(&ch.pods).await == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_and_drops_their_owner_references() {
    // `kubectl delete --cascade=orphan` must leave the ReplicaSet running, unowned.
    let c = Cluster::start_only(GC).await;
    let ch = chain(&c, "orphan").await;
    ch.deploys
        .delete("web", &DeleteParams::orphan())
        .await
        .expect("delete");
    eventually("the Deployment to go", || gone(&ch.deploys, "web")).await;
    // The owner went only after its reference was removed from the dependent.
    let rs = ch.sets.get("web-1").await.expect("ReplicaSet survives");
    assert!(rs.metadata.owner_references.unwrap_or_default().is_empty());
    assert!(rs.metadata.deletion_timestamp.is_none());
    // Grandchildren keep their own (living) owner.
    let pods = ch.pods.list(&ListParams::default()).await.expect("list");
    assert_eq!(pods.items.len(), 2);
    for p in pods.items {
        let owners = p.metadata.owner_references.unwrap_or_default();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].uid, ch.rs_uid);
    }
}

#[tokio::test]
async fn foreground_deletion_removes_dependents_before_the_owner() {
    // `--cascade=foreground`: the owner stays (with the foregroundDeletion finalizer) for
    // as long as a blocking dependent exists, all the way down the chain.
    let c = Cluster::start_only(GC).await;
    let ch = chain(&c, "fg").await;
    // The Pods hold on to a finalizer of their own, so the chain cannot finish early.
    let pods = ch.pods.list(&ListParams::default()).await.expect("list");
    for p in &pods.items {
        ch.pods
            .patch(
                &p.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold"]}})),
            )
            .await
            .expect("hold pod");
    }
    ch.deploys
        .delete("web", &DeleteParams::foreground())
        .await
        .expect("delete");
    eventually("the Pods to be marked for deletion", || async {
        let pods = ch.pods.list(&ListParams::default()).await.ok()?;
        pods.items
            .iter()
            .all(|p| p.metadata.deletion_timestamp.is_some())
            .then_some(())
    })
    .await;
    // The ReplicaSet has dependents of its own, so it was deleted in the foreground too.
    let rs = ch
        .sets
        .get("web-1")
        .await
        .expect("ReplicaSet waits for its Pods");
    assert!(rs.metadata.deletion_timestamp.is_some());
    assert_eq!(
        rs.metadata.finalizers.unwrap_or_default(),
        vec!["foregroundDeletion".to_string()]
    );
    let d = ch
        .deploys
        .get("web")
        .await
        .expect("Deployment waits for its ReplicaSet");
    assert_eq!(
        d.metadata.finalizers.unwrap_or_default(),
        vec!["foregroundDeletion".to_string()]
    );

    for p in &pods.items {
        ch.pods
            .patch(
                &p.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await
            .expect("release pod");
    }
    eventually("the Deployment to go", || gone(&ch.deploys, "web")).await;
    assert_eq!(count(&ch.sets).await, 0, "ReplicaSet outlived its owner");
    assert_eq!(count(&ch.pods).await, 0, "Pods outlived their grand-owner");
}

#[tokio::test]
async fn a_dependent_with_a_living_owner_only_loses_the_dangling_reference() {
    // Two owners, one deleted: the object stays, owned by the survivor.
    let c = Cluster::start_only(GC).await;
    c.namespace("two").await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "two");
    let pp = PostParams::default();
    let mk = |name: &str| {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm
    };
    let a = cms.create(&pp, &mk("owner-a")).await.expect("a");
    let b = cms.create(&pp, &mk("owner-b")).await.expect("b");
    let mut dep = mk("dep");
    let mut second = owner_ref(&b);
    second.controller = None;
    dep.metadata.owner_references = Some(vec![owner_ref(&a), second]);
    cms.create(&pp, &dep).await.expect("dep");

    cms.delete("owner-a", &DeleteParams::background())
        .await
        .expect("delete a");
    let owners = eventually("the dangling reference to be removed", || async {
        let owners = cms.get("dep").await.ok()?.metadata.owner_references?;
        (owners.len() == 1).then_some(owners)
    })
    .await;
    assert_eq!(owners[0].uid, b.uid().unwrap_or_default());
    assert!(
        cms.get("dep").await.is_ok(),
        "a dependent with a live owner stays"
    );
}

#[tokio::test]
async fn an_owner_reference_into_another_namespace_counts_as_absent() {
    // Owner references name objects in the dependent's own namespace; a uid that only
    // exists elsewhere must not keep the dependent alive (upstream treats it as absent).
    let c = Cluster::start_only(GC).await;
    c.namespace("here").await;
    c.namespace("there").await;
    let pp = PostParams::default();
    let there: Api<ConfigMap> = Api::namespaced(c.client.clone(), "there");
    let here: Api<ConfigMap> = Api::namespaced(c.client.clone(), "here");
    let mut owner = ConfigMap::default();
    owner.metadata.name = Some("owner".into());
    let owner = there.create(&pp, &owner).await.expect("owner");
    let mut dep = ConfigMap::default();
    dep.metadata.name = Some("dep".into());
    dep.metadata.owner_references = Some(vec![owner_ref(&owner)]);
    here.create(&pp, &dep).await.expect("dep");
    eventually("the dependent to be collected", || gone(&here, "dep")).await;
    assert!(
        there.get("owner").await.is_ok(),
        "the real owner is untouched"
    );
}

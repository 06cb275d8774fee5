//! The controllers against a real (in-memory) API server.

use std::time::Duration;

use k1s_apiserver::test_util::TestApiServer;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cm(name: &str, owner: Option<&ConfigMap>, block: bool) -> ConfigMap {
    let mut v = json!({"metadata": {"name": name}});
    if let Some(o) = owner {
        v["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "ConfigMap",
            "name": o.metadata.name, "uid": o.metadata.uid,
            "blockOwnerDeletion": block,
        }]);
    }
    serde_json::from_value(v).expect("a valid ConfigMap")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_deletion_empties_then_removes_the_namespace() {
    let api = TestApiServer::new().await;
    let client = api.client();
    let _controllers = k1s_controllers::start_all(client.clone());
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    cms.create(&PostParams::default(), &cm("a", None, false))
        .await
        .unwrap();
    let mut held = cm("held", None, false);
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();

    nss.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    eventually("plain objects deleted", || async {
        cms.get_opt("a").await.unwrap().is_none()
    })
    .await;
    // The held object keeps the namespace Terminating.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let phase = nss
        .get("doomed")
        .await
        .unwrap()
        .status
        .unwrap()
        .phase
        .unwrap();
    assert_eq!(phase, "Terminating");
    let patch = json!({"metadata": {"finalizers": null}});
    cms.patch(
        "held",
        &Default::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
    eventually("namespace gone", || async {
        nss.get_opt("doomed").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collector_background_orphan_and_foreground() {
    let api = TestApiServer::new().await;
    let client = api.client();
    let _controllers = k1s_controllers::start_all(client.clone());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();

    // Background: the dependent follows its owner.
    let owner = cms.create(&pp, &cm("owner1", None, false)).await.unwrap();
    cms.create(&pp, &cm("dep1", Some(&owner), false))
        .await
        .unwrap();
    cms.delete("owner1", &DeleteParams::background())
        .await
        .unwrap();
    eventually("dependent collected", || async {
        cms.get_opt("dep1").await.unwrap().is_none()
    })
    .await;

    // Orphan: the dependent stays, without the reference.
    let owner = cms.create(&pp, &cm("owner2", None, false)).await.unwrap();
    cms.create(&pp, &cm("dep2", Some(&owner), false))
        .await
        .unwrap();
    cms.delete("owner2", &DeleteParams::orphan()).await.unwrap();
    eventually("owner gone", || async {
        cms.get_opt("owner2").await.unwrap().is_none()
    })
    .await;
    let dep = cms.get("dep2").await.unwrap();
    assert!(dep.metadata.owner_references.unwrap_or_default().is_empty());

    // Foreground: the owner waits for its blocking dependent.
    let owner = cms.create(&pp, &cm("owner3", None, false)).await.unwrap();
    let mut dep = cm("dep3", Some(&owner), true);
    dep.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&pp, &dep).await.unwrap();
    cms.delete("owner3", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually("dependent being deleted", || async {
        cms.get("dep3")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    })
    .await;
    assert!(
        cms.get_opt("owner3").await.unwrap().is_some(),
        "owner waits"
    );
    let patch = json!({"metadata": {"finalizers": null}});
    cms.patch(
        "dep3",
        &Default::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
    eventually("owner gone after its dependent", || async {
        cms.get_opt("owner3").await.unwrap().is_none()
    })
    .await;
}

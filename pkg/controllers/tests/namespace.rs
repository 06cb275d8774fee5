//! The namespace controller against a real API server: deleting a namespace deletes
//! its content first, and waits for content that carries finalizers.

mod common;

use std::collections::BTreeMap;

use common::{Cluster, eventually, is_not_found};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn config_map(name: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm.data = Some(BTreeMap::from([("k".to_string(), "v".to_string())]));
    cm
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}
            }
        }
    }))
    .expect("deployment")
}

async fn namespace_gone(ns: &Api<Namespace>, name: &str) -> Option<()> {
    match ns.get(name).await {
        Err(e) if is_not_found(&e) => Some(()),
        _ => None,
    }
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_content_then_the_namespace() {
    // Without the controller a deleted namespace stays Terminating forever and its
    // objects survive; with it, both go, content first.
    let c = Cluster::start().await;
    c.namespace("doomed").await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "doomed");
    let secrets: Api<Secret> = Api::namespaced(c.client.clone(), "doomed");
    let deploys: Api<Deployment> = Api::namespaced(c.client.clone(), "doomed");
    let pp = PostParams::default();
    for i in 0..3 {
        cms.create(&pp, &config_map(&format!("cm-{i}")))
            .await
            .expect("cm");
    }
    let mut secret = Secret::default();
    secret.metadata.name = Some("s".into());
    secrets.create(&pp, &secret).await.expect("secret");
    deploys
        .create(&pp, &deployment("web"))
        .await
        .expect("deployment");
    // A namespace nobody deletes keeps its content.
    c.namespace("kept").await;
    let kept: Api<ConfigMap> = Api::namespaced(c.client.clone(), "kept");
    kept.create(&pp, &config_map("stays")).await.expect("cm");

    let ns: Api<Namespace> = Api::all(c.client.clone());
    ns.delete("doomed", &DeleteParams::default())
        .await
        .expect("delete namespace");
    eventually("namespace doomed to disappear", || {
        namespace_gone(&ns, "doomed")
    })
    .await;

    // The API server does not delete content by itself: it is gone because the
    // controller deleted it before finalizing.
    let lp = ListParams::default();
    assert!(cms.list(&lp).await.expect("list").items.is_empty());
    assert!(secrets.list(&lp).await.expect("list").items.is_empty());
    assert!(deploys.list(&lp).await.expect("list").items.is_empty());
    // (The root CA publisher's kube-root-ca.crt lives there too.)
    assert!(kept.get_opt("stays").await.expect("get").is_some());
    assert!(ns.get("kept").await.is_ok());
}

#[tokio::test]
async fn a_namespace_stays_terminating_until_content_finalizers_are_removed() {
    // Finalizers on content must be honoured: the namespace may not go (and take the
    // object's record with it) before the finalizer's owner is done.
    let c = Cluster::start().await;
    c.namespace("held").await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "held");
    let mut cm = config_map("held");
    cm.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &cm).await.expect("cm");
    cms.create(&PostParams::default(), &config_map("free"))
        .await
        .expect("cm");

    let ns: Api<Namespace> = Api::all(c.client.clone());
    ns.delete("held", &DeleteParams::default())
        .await
        .expect("delete namespace");

    // The controller reports what it waits for, in upstream's words.
    let waiting = eventually("the NamespaceFinalizersRemaining condition", || async {
        let n = ns.get("held").await.ok()?;
        let status = n.status?;
        let cond = status
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "NamespaceFinalizersRemaining" && c.status == "True")?;
        Some((status.phase, cond, n.spec))
    })
    .await;
    assert_eq!(waiting.0.as_deref(), Some("Terminating"));
    assert_eq!(waiting.1.reason.as_deref(), Some("SomeFinalizerRemain"));
    assert_eq!(
        waiting.1.message.as_deref(),
        Some("Some finalizers are remaining: example.com/hold in 1 resource instances")
    );
    let spec_finalizers = waiting.2.and_then(|s| s.finalizers).unwrap_or_default();
    assert_eq!(spec_finalizers, vec!["kubernetes".to_string()]);
    let remaining = ns
        .get("held")
        .await
        .expect("still there")
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "NamespaceContentRemaining")
        .expect("content condition");
    assert_eq!(
        remaining.message.as_deref(),
        Some("Some resources are remaining: configmaps. has 1 resource instances")
    );
    // The object without a finalizer is gone; the held one waits, marked for deletion.
    assert!(matches!(cms.get("free").await, Err(e) if is_not_found(&e)));
    let held = cms.get("held").await.expect("held object remains");
    assert!(held.metadata.deletion_timestamp.is_some());

    // Releasing the finalizer lets the namespace finish.
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("remove finalizer");
    eventually("namespace held to disappear", || {
        namespace_gone(&ns, "held")
    })
    .await;
}

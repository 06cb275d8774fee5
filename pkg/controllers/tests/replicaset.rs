//! The ReplicaSet and ReplicationController controllers against a real API server, with the
//! test acting as the kubelet (patching pod status) where pods must become Ready.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Cluster, eventually};
use k1s_apiserver::test_util::TestApiServer;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

fn replicaset(name: &str, app: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app, "tier": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}
            }
        }
    }))
    .expect("replicaset")
}

fn bare_pod(name: &str, app: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }))
    .expect("pod")
}

/// The active pods the set with this uid controls.
async fn owned(pods: &Api<Pod>, uid: &str) -> Vec<Pod> {
    pods.list(&ListParams::default())
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.owner_references()
                    .iter()
                    .any(|r| r.uid == uid && r.controller == Some(true))
        })
        .collect()
}

async fn wait_owned(pods: &Api<Pod>, uid: &str, n: usize) -> Vec<Pod> {
    eventually(&format!("{n} pods owned by {uid}"), || async {
        let o = owned(pods, uid).await;
        (o.len() == n).then_some(o)
    })
    .await
}

/// Marks a pod Running and Ready, as a kubelet would.
async fn make_ready(pods: &Api<Pod>, name: &str) {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = json!({"status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("mark ready");
}

fn uid<K: Resource>(o: &K) -> String {
    o.meta().uid.clone().expect("uid")
}

#[tokio::test]
async fn scales_up_and_down_with_status_and_events() {
    let c = Cluster::start().await;
    c.namespace("rs-scale").await;
    let sets: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "rs-scale");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "rs-scale");
    let rs = sets
        .create(&PostParams::default(), &replicaset("web", "web", 3))
        .await
        .expect("create");
    let u = uid(&rs);
    let made = wait_owned(&pods, &u, 3).await;
    for p in &made {
        assert!(p.name_any().starts_with("web-"), "{}", p.name_any());
        assert_eq!(p.labels().get("tier").map(String::as_str), Some("web"));
    }
    eventually("status replicas 3", || async {
        let s = sets.get("web").await.ok()?.status?;
        (s.replicas == 3
            && s.fully_labeled_replicas == Some(3)
            && s.observed_generation == Some(1)
            && s.terminating_replicas == Some(0))
        .then_some(())
    })
    .await;

    let events: Api<Event> = Api::namespaced(c.client.clone(), "rs-scale");
    eventually("three SuccessfulCreate events", || async {
        let evs = events.list(&ListParams::default()).await.ok()?.items;
        let notes: Vec<String> = evs
            .iter()
            .filter(|e| e.reason.as_deref() == Some("SuccessfulCreate"))
            .filter(|e| e.reporting_controller.as_deref() == Some("replicaset-controller"))
            .filter_map(|e| e.note.clone())
            .collect();
        (notes.len() == 3
            && made
                .iter()
                .all(|p| notes.contains(&format!("Created pod: {}", p.name_any()))))
        .then_some(())
    })
    .await;

    let scale = json!({"spec": {"replicas": 1}});
    sets.patch("web", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .expect("scale down");
    wait_owned(&pods, &u, 1).await;
    eventually("status replicas 1, generation 2", || async {
        let s = sets.get("web").await.ok()?.status?;
        (s.replicas == 1 && s.observed_generation == Some(2)).then_some(())
    })
    .await;
    eventually("SuccessfulDelete events", || async {
        let evs = events.list(&ListParams::default()).await.ok()?.items;
        let n = evs
            .iter()
            .filter(|e| e.reason.as_deref() == Some("SuccessfulDelete"))
            .filter(|e| {
                e.note
                    .as_deref()
                    .is_some_and(|n| n.starts_with("Deleted pod: web-"))
            })
            .count();
        (n == 2).then_some(())
    })
    .await;

    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .expect("scale up");
    wait_owned(&pods, &u, 4).await;
}

#[tokio::test]
async fn adopts_orphans_releases_relabelled_pods_and_replaces_deleted_ones() {
    let c = Cluster::start().await;
    c.namespace("rs-adopt").await;
    let sets: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "rs-adopt");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "rs-adopt");
    let pp = PostParams::default();
    pods.create(&pp, &bare_pod("bare-1", "shop"))
        .await
        .expect("bare-1");
    pods.create(&pp, &bare_pod("bare-2", "shop"))
        .await
        .expect("bare-2");
    pods.create(&pp, &bare_pod("other", "db"))
        .await
        .expect("other");
    let rs = sets
        .create(&pp, &replicaset("shop", "shop", 3))
        .await
        .expect("create");
    let u = uid(&rs);
    let mine = wait_owned(&pods, &u, 3).await;
    let names: Vec<String> = mine.iter().map(|p| p.name_any()).collect();
    assert!(names.contains(&"bare-1".to_string()), "{names:?}");
    assert!(names.contains(&"bare-2".to_string()), "{names:?}");
    let other = pods.get("other").await.expect("other");
    assert!(other.owner_references().is_empty());
    // The adopted pods lack the template's `tier` label: not fully labelled.
    eventually("fullyLabeledReplicas 1", || async {
        let s = sets.get("shop").await.ok()?.status?;
        (s.replicas == 3 && s.fully_labeled_replicas == Some(1)).then_some(())
    })
    .await;

    // Relabelled out of the selector: released, and replaced.
    let relabel = json!({"metadata": {"labels": {"app": "shop-debug"}}});
    pods.patch("bare-1", &PatchParams::default(), &Patch::Merge(&relabel))
        .await
        .expect("relabel");
    eventually("bare-1 released and replaced", || async {
        let o = owned(&pods, &u).await;
        (o.len() == 3 && o.iter().all(|p| p.name_any() != "bare-1")).then_some(())
    })
    .await;
    let released = pods.get("bare-1").await.expect("bare-1 kept");
    assert!(released.owner_references().is_empty(), "{released:?}");
    assert!(released.metadata.deletion_timestamp.is_none());

    // A deleted pod is replaced.
    pods.delete("bare-2", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("bare-2 replaced", || async {
        let o = owned(&pods, &u).await;
        (o.len() == 3 && o.iter().all(|p| p.name_any() != "bare-2")).then_some(())
    })
    .await;

    // An extra matching orphan is adopted and the surplus deleted.
    pods.create(&pp, &bare_pod("late", "shop"))
        .await
        .expect("late");
    eventually("back to 3 pods with app=shop", || async {
        let all = pods
            .list(&ListParams::default().labels("app=shop"))
            .await
            .ok()?
            .items;
        let live: Vec<_> = all
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        (live.len() == 3
            && live
                .iter()
                .all(|p| p.owner_references().iter().any(|r| r.uid == u)))
        .then_some(())
    })
    .await;
}

#[tokio::test]
async fn many_syncs_make_no_duplicates() {
    let c = Cluster::start().await;
    c.namespace("rs-dup").await;
    let sets: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "rs-dup");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "rs-dup");
    let rs = sets
        .create(&PostParams::default(), &replicaset("dup", "dup", 20))
        .await
        .expect("create");
    let u = uid(&rs);
    // Every change to the set triggers a sync, while the first creates are in flight.
    for i in 0..30 {
        let p = json!({"metadata": {"annotations": {"touch": i.to_string()}}});
        sets.patch("dup", &PatchParams::default(), &Patch::Merge(&p))
            .await
            .expect("touch");
    }
    wait_owned(&pods, &u, 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..10 {
        let p = json!({"metadata": {"annotations": {"touch": format!("again-{i}")}}});
        sets.patch("dup", &PatchParams::default(), &Patch::Merge(&p))
            .await
            .expect("touch");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = pods.list(&ListParams::default()).await.expect("list").items;
    assert_eq!(all.len(), 20, "no pod created twice or deleted needlessly");
}

#[tokio::test]
async fn ready_and_available_counts_follow_the_pods() {
    let c = Cluster::start().await;
    c.namespace("rs-ready").await;
    let sets: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "rs-ready");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "rs-ready");
    let mut rs = replicaset("ready", "ready", 2);
    if let Some(spec) = rs.spec.as_mut() {
        spec.min_ready_seconds = Some(2);
    }
    let rs = sets
        .create(&PostParams::default(), &rs)
        .await
        .expect("create");
    let made = wait_owned(&pods, &uid(&rs), 2).await;
    for p in &made {
        make_ready(&pods, &p.name_any()).await;
    }
    eventually("2 ready, none available yet", || async {
        let s = sets.get("ready").await.ok()?.status?;
        (s.ready_replicas == Some(2) && s.available_replicas.unwrap_or(0) == 0).then_some(())
    })
    .await;
    // No pod changes after this: only the controller's own requeue counts them available.
    eventually("2 available after minReadySeconds", || async {
        let s = sets.get("ready").await.ok()?.status?;
        (s.available_replicas == Some(2)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn pods_being_deleted_are_terminating_and_replaced() {
    let c = Cluster::start().await;
    c.namespace("rs-term").await;
    let sets: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "rs-term");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "rs-term");
    // Bound pods are deleted gracefully: they stay, Terminating, until a kubelet is done.
    let mut rs = replicaset("term", "term", 2);
    if let Some(t) = rs
        .spec
        .as_mut()
        .and_then(|s| s.template.as_mut())
        .and_then(|t| t.spec.as_mut())
    {
        t.node_name = Some("node-1".into());
    }
    let rs = sets
        .create(&PostParams::default(), &rs)
        .await
        .expect("create");
    let u = uid(&rs);
    let made = wait_owned(&pods, &u, 2).await;
    pods.delete(&made[0].name_any(), &DeleteParams::default())
        .await
        .expect("delete");
    let gone = made[0].name_any();
    eventually("the deleted pod replaced", || async {
        let o = owned(&pods, &u).await;
        (o.len() == 2 && o.iter().all(|p| p.name_any() != gone)).then_some(())
    })
    .await;
    eventually("terminatingReplicas 1", || async {
        let s = sets.get("term").await.ok()?.status?;
        (s.replicas == 2 && s.terminating_replicas == Some(1)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn replication_controllers_run_the_same_logic() {
    let c = Cluster::start().await;
    c.namespace("rc").await;
    let rcs: Api<ReplicationController> = Api::namespaced(c.client.clone(), "rc");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "rc");
    let rc: ReplicationController = serde_json::from_value(json!({
        "metadata": {"name": "legacy"},
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"labels": {"app": "legacy"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}
            }
        }
    }))
    .expect("rc");
    let rc = rcs
        .create(&PostParams::default(), &rc)
        .await
        .expect("create");
    let made = wait_owned(&pods, &uid(&rc), 2).await;
    let r = &made[0].owner_references()[0];
    assert_eq!(
        (r.kind.as_str(), r.api_version.as_str()),
        ("ReplicationController", "v1")
    );
    make_ready(&pods, &made[0].name_any()).await;
    eventually("rc status", || async {
        let s = rcs.get("legacy").await.ok()?.status?;
        (s.replicas == 2 && s.ready_replicas == Some(1) && s.available_replicas == Some(1))
            .then_some(())
    })
    .await;
    let events: Api<Event> = Api::namespaced(c.client.clone(), "rc");
    eventually("events from replication-controller", || async {
        let evs = events.list(&ListParams::default()).await.ok()?.items;
        evs.iter()
            .any(|e| {
                e.reporting_controller.as_deref() == Some("replication-controller")
                    && e.reason.as_deref() == Some("SuccessfulCreate")
            })
            .then_some(())
    })
    .await;
    rcs.patch(
        "legacy",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 0}})),
    )
    .await
    .expect("scale to 0");
    wait_owned(&pods, &uid(&rc), 0).await;
}

/// A client that answers pod creates with a quota refusal while `fail` is set.
fn quota_client(inner: kube::Client, fail: Arc<AtomicBool>) -> kube::Client {
    let svc = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let inner = inner.clone();
        let fail = fail.clone();
        async move {
            let create_pod =
                req.method() == http::Method::POST && req.uri().path().ends_with("/pods");
            if create_pod && fail.load(Ordering::SeqCst) {
                let status = json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "pods \"q\" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=1, limited: pods=1",
                    "reason": "Forbidden", "code": 403
                });
                let body = serde_json::to_vec(&status).unwrap_or_default();
                let resp = http::Response::builder()
                    .status(403)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(body))
                    .map_err(kube::Error::HttpError)?;
                return Ok::<_, kube::Error>(resp);
            }
            inner.send(req).await
        }
    });
    kube::Client::new(svc, "default")
}

#[tokio::test]
async fn failing_creates_set_replica_failure_until_they_succeed() {
    let server = TestApiServer::new().await;
    let admin = server.client();
    let fail = Arc::new(AtomicBool::new(true));
    let (stop, signal) = k1s_controllers::Shutdown::new();
    let controller = tokio::spawn(k1s_controllers::replicaset::run::<ReplicaSet>(
        quota_client(admin.clone(), fail.clone()),
        signal,
    ));
    let sets: Api<ReplicaSet> = Api::namespaced(admin.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let rs = sets
        .create(&PostParams::default(), &replicaset("quota", "quota", 2))
        .await
        .expect("create");
    eventually("ReplicaFailure FailedCreate", || async {
        let s = sets.get("quota").await.ok()?.status?;
        let c = s
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "ReplicaFailure")?;
        (c.status == "True"
            && c.reason.as_deref() == Some("FailedCreate")
            && c.message
                .as_deref()
                .is_some_and(|m| m.contains("exceeded quota")))
        .then_some(())
    })
    .await;
    let events: Api<Event> = Api::namespaced(admin.clone(), "default");
    eventually("a FailedCreate warning", || async {
        let evs = events.list(&ListParams::default()).await.ok()?.items;
        evs.iter()
            .any(|e| {
                e.reason.as_deref() == Some("FailedCreate")
                    && e.type_.as_deref() == Some("Warning")
                    && e.note
                        .as_deref()
                        .is_some_and(|n| n.starts_with("Error creating: pods \"q\" is forbidden"))
            })
            .then_some(())
    })
    .await;
    assert!(owned(&pods, &uid(&rs)).await.is_empty());

    fail.store(false, Ordering::SeqCst);
    wait_owned(&pods, &uid(&rs), 2).await;
    eventually("ReplicaFailure cleared", || async {
        let s = sets.get("quota").await.ok()?.status?;
        (s.replicas == 2 && s.conditions.unwrap_or_default().is_empty()).then_some(())
    })
    .await;
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), controller).await;
}

#[tokio::test]
async fn a_restarted_controller_does_not_create_the_pods_again() {
    // What a controller finds after a server restart: a set and its pods, already there.
    let server = TestApiServer::new().await;
    let admin = server.client();
    let sets: Api<ReplicaSet> = Api::namespaced(admin.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let rs = sets
        .create(&PostParams::default(), &replicaset("again", "again", 3))
        .await
        .expect("create");
    let owner = k1s_controllers::workload::controller_ref(&rs);
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .expect("template");
    for _ in 0..3 {
        let pod = k1s_controllers::workload::pod_from_template(
            &template,
            "default",
            "again",
            owner.clone(),
        );
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("pod");
    }
    let (stop, signal) = k1s_controllers::Shutdown::new();
    let controller = tokio::spawn(k1s_controllers::replicaset::run::<ReplicaSet>(
        admin.clone(),
        signal,
    ));
    eventually("status written", || async {
        let s = sets.get("again").await.ok()?.status?;
        (s.replicas == 3 && s.observed_generation == Some(1)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        pods.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        3
    );
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), controller).await;
}

#[tokio::test]
async fn a_set_being_deleted_creates_nothing() {
    let c = Cluster::start().await;
    c.namespace("rs-del").await;
    let sets: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "rs-del");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "rs-del");
    let mut rs = replicaset("going", "going", 2);
    // A finalizer of someone else's keeps the set, being deleted, in place.
    rs.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    let rs = sets
        .create(&PostParams::default(), &rs)
        .await
        .expect("create");
    let u = uid(&rs);
    let made = wait_owned(&pods, &u, 2).await;
    sets.delete("going", &DeleteParams::orphan())
        .await
        .expect("delete");
    eventually("the set marked deleted", || async {
        sets.get("going")
            .await
            .ok()?
            .metadata
            .deletion_timestamp
            .map(|_| ())
    })
    .await;
    // Orphaning releases the pods; a pod deleted now is not replaced.
    pods.delete(&made[0].name_any(), &DeleteParams::default())
        .await
        .expect("delete pod");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let left: Vec<Pod> = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    let rm = json!({"metadata": {"finalizers": null}});
    sets.patch("going", &PatchParams::default(), &Patch::Merge(&rm))
        .await
        .expect("drop finalizer");
}

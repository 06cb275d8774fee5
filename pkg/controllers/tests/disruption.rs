//! The disruption controller against a real API server: PodDisruptionBudget status from
//! the pods it selects and their controllers' scale, and evictions that honour it.

mod common;

use common::{Cluster, eventually};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// Creates a Running pod, Ready or not, acting as the kubelet for its status.
async fn running_pod(c: &Cluster, ns: &str, name: &str, ready: bool, owner: Option<&ReplicaSet>) {
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), ns);
    let mut meta = json!({"name": name, "labels": {"app": "web"}});
    if let Some(rs) = owner {
        meta["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": true,
            "name": rs.metadata.name, "uid": rs.metadata.uid,
        }]);
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": meta,
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let status = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pod status");
}

async fn create_pdb(c: &Cluster, ns: &str, name: &str, spec: Value) {
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(c.client.clone(), ns);
    let pdb: PodDisruptionBudget =
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pdb");
    pdbs.create(&PostParams::default(), &pdb)
        .await
        .expect("create pdb");
}

/// Waits until the budget's status reads (expected, desired, current, allowed).
async fn status_reads(
    c: &Cluster,
    ns: &str,
    name: &str,
    want: (i32, i32, i32, i32),
) -> PodDisruptionBudget {
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(c.client.clone(), ns);
    eventually(&format!("{name} status {want:?}"), || async {
        let p = pdbs.get(name).await.ok()?;
        let s = p.status.clone()?;
        let got = (
            s.expected_pods,
            s.desired_healthy,
            s.current_healthy,
            s.disruptions_allowed,
        );
        (got == want && s.observed_generation == p.metadata.generation).then_some(p)
    })
    .await
}

async fn evict(c: &Cluster, ns: &str, pod: &str) -> (u16, Value) {
    c.server
        .api()
        .call(
            "POST",
            &format!("/api/v1/namespaces/{ns}/pods/{pod}/eviction"),
            &json!({"apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": pod, "namespace": ns}}),
        )
        .await
}

#[tokio::test]
async fn min_available_budget_counts_pods_and_guards_evictions() {
    let c = Cluster::start().await;
    c.namespace("pdb-min").await;
    for i in 0..3 {
        running_pod(&c, "pdb-min", &format!("web-{i}"), true, None).await;
    }
    running_pod(&c, "pdb-min", "web-unready", false, None).await;
    create_pdb(
        &c,
        "pdb-min",
        "web",
        json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}),
    )
    .await;
    let p = status_reads(&c, "pdb-min", "web", (4, 2, 3, 1)).await;
    let cond = &p.status.and_then(|s| s.conditions).expect("conditions")[0];
    assert_eq!(
        (
            cond.type_.as_str(),
            cond.status.as_str(),
            cond.reason.as_str()
        ),
        ("DisruptionAllowed", "True", "SufficientPods")
    );

    let (code, body) = evict(&c, "pdb-min", "web-0").await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = evict(&c, "pdb-min", "web-1").await;
    assert_eq!(code, 429, "{body}");
    assert_eq!(
        body["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    // The evicted pod is gone; the budget counts what is left.
    let p = status_reads(&c, "pdb-min", "web", (3, 2, 2, 0)).await;
    let cond = &p.status.and_then(|s| s.conditions).expect("conditions")[0];
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("False", "InsufficientPods")
    );
}

#[tokio::test]
async fn max_unavailable_uses_the_controllers_scale() {
    let c = Cluster::start().await;
    c.namespace("pdb-max").await;
    let rss: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "pdb-max");
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }))
    .expect("rs");
    let rs = rss
        .create(&PostParams::default(), &rs)
        .await
        .expect("create rs");
    for i in 0..3 {
        running_pod(&c, "pdb-max", &format!("web-{i}"), true, Some(&rs)).await;
    }
    create_pdb(
        &c,
        "pdb-max",
        "web",
        json!({"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "web"}}}),
    )
    .await;
    // Four replicas wanted, one may be unavailable: three healthy leave no room.
    status_reads(&c, "pdb-max", "web", (4, 3, 3, 0)).await;

    // A pod without a controller makes a percentage budget unmanaged but not failed;
    // a controller kind the budget cannot scale makes it fail safe.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "pdb-max");
    let odd = json!({"metadata": {"ownerReferences": [{
        "apiVersion": "example.com/v1", "kind": "Thing", "controller": true,
        "name": "t", "uid": "00000000-0000-0000-0000-000000000001"}]}});
    pods.patch("web-2", &PatchParams::default(), &Patch::Merge(&odd))
        .await
        .expect("patch");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(c.client.clone(), "pdb-max");
    eventually("SyncFailed", || async {
        let p = pdbs.get("web").await.ok()?;
        let c = p
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "DisruptionAllowed")?;
        (c.reason == "SyncFailed").then_some(c.message)
    })
    .await;
}

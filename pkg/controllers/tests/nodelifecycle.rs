//! The node lifecycle and taint eviction controllers against a real API server, with the
//! test acting as the kubelets (renewing one node's Lease, letting the other's lapse).

mod common;

use std::time::Duration;

use common::eventually;
use k1s_apiserver::test_util::TestApiServer;
use k1s_controllers::{Shutdown, nodelifecycle, podgc, tainteviction};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

fn ready_node(name: &str) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "status": {"conditions": [
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
            {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "lastHeartbeatTime": "2026-01-01T00:00:00Z"},
        ]}
    }))
    .expect("node")
}

async fn renew(leases: &Api<Lease>, name: &str) {
    let now = serde_json::to_value(MicroTime(Timestamp::now())).expect("time");
    let spec = json!({"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now});
    let patch = json!({"metadata": {"name": name}, "spec": spec});
    if leases
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .is_err()
    {
        let lease: Lease =
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))
                .expect("lease");
        leases
            .create(&PostParams::default(), &lease)
            .await
            .expect("create lease");
    }
}

fn taint_keys(node: &Node) -> Vec<(String, String)> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.effect))
        .collect()
}

fn ready_of(node: &Node) -> Option<(String, Option<String>)> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test]
async fn silent_nodes_go_unknown_get_tainted_and_lose_their_pods() {
    let server = TestApiServer::new().await;
    let client = server.client();
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["alive", "silent"] {
        nodes
            .create(&PostParams::default(), &ready_node(name))
            .await
            .expect("node");
        renew(&leases, name).await;
    }
    let (stop, signal) = Shutdown::new();
    let config = nodelifecycle::Config {
        grace_period: Duration::from_secs(2),
        startup_grace_period: Duration::from_secs(2),
        monitor_period: Duration::from_millis(200),
    };
    tokio::spawn(nodelifecycle::run(client.clone(), signal.clone(), config));
    tokio::spawn(tainteviction::run(client.clone(), signal.clone()));
    let heartbeat = {
        let leases = leases.clone();
        tokio::spawn(async move {
            loop {
                renew(&leases, "alive").await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let pod = |name: &str, tolerations: serde_json::Value| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"nodeName": "silent", "tolerations": tolerations,
                     "containers": [{"name": "c", "image": "nginx"}]}
        }))
        .expect("pod")
    };
    let unreachable = "node.kubernetes.io/unreachable";
    for p in [
        pod(
            "briefly",
            json!([{"key": unreachable, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}]),
        ),
        pod("forever", json!([{"operator": "Exists"}])),
    ] {
        pods.create(&PostParams::default(), &p).await.expect("pod");
    }

    let silent = eventually("the silent node Unknown and tainted", || async {
        let n = nodes.get("silent").await.ok()?;
        let keys = taint_keys(&n);
        (ready_of(&n)?.0 == "Unknown"
            && keys.contains(&(unreachable.into(), "NoExecute".into()))
            && keys.contains(&(unreachable.into(), "NoSchedule".into())))
        .then_some(n)
    })
    .await;
    let (_, reason) = ready_of(&silent).expect("ready");
    assert_eq!(reason.as_deref(), Some("NodeStatusUnknown"));
    let alive = nodes.get("alive").await.expect("alive");
    assert_eq!(ready_of(&alive).map(|r| r.0).as_deref(), Some("True"));
    assert!(taint_keys(&alive).is_empty());

    // tolerationSeconds: 2 runs out; a toleration without seconds never does.
    let evicted = eventually("the briefly tolerating pod evicted", || async {
        let p = pods.get("briefly").await.ok()?;
        p.metadata.deletion_timestamp.is_some().then_some(p)
    })
    .await;
    let target = evicted
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "DisruptionTarget")
        .expect("DisruptionTarget");
    assert_eq!(target.reason.as_deref(), Some("DeletionByTaintManager"));
    let forever = pods.get("forever").await.expect("forever");
    assert!(forever.metadata.deletion_timestamp.is_none());

    // An untolerated NoExecute taint evicts at once.
    pods.create(
        &PostParams::default(),
        &pod("plain", json!([{"key": unreachable, "operator": "Exists"}])),
    )
    .await
    .expect("pod");
    let taint = json!({"spec": {"taints": [{"key": "example.com/evict", "effect": "NoExecute"}]}});
    nodes
        .patch("alive", &PatchParams::default(), &Patch::Merge(taint))
        .await
        .expect("taint");
    let mut on_alive = pod("on-alive", json!([]));
    on_alive.spec.as_mut().expect("spec").node_name = Some("alive".into());
    pods.create(&PostParams::default(), &on_alive)
        .await
        .expect("pod");
    eventually("the untolerating pod evicted", || async {
        let p = pods.get("on-alive").await.ok()?;
        p.metadata.deletion_timestamp.is_some().then_some(())
    })
    .await;
    let untaint = json!({"spec": {"taints": null}});
    nodes
        .patch("alive", &PatchParams::default(), &Patch::Merge(untaint))
        .await
        .expect("untaint");

    // Cordon mirrors into a taint, and back.
    let cordon = |on: bool| json!({"spec": {"unschedulable": on}});
    nodes
        .patch(
            "alive",
            &PatchParams::default(),
            &Patch::Merge(cordon(true)),
        )
        .await
        .expect("cordon");
    let unschedulable = (
        "node.kubernetes.io/unschedulable".to_string(),
        "NoSchedule".to_string(),
    );
    eventually("the cordon taint", || async {
        let n = nodes.get("alive").await.ok()?;
        taint_keys(&n).contains(&unschedulable).then_some(())
    })
    .await;
    nodes
        .patch(
            "alive",
            &PatchParams::default(),
            &Patch::Merge(cordon(false)),
        )
        .await
        .expect("uncordon");
    eventually("the cordon taint gone", || async {
        let n = nodes.get("alive").await.ok()?;
        taint_keys(&n).is_empty().then_some(())
    })
    .await;

    // The silent node's kubelet comes back: Ready again, taints gone.
    let status = json!({"status": {"conditions": [
        {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
        {"type": "DiskPressure", "status": "False"},
        {"type": "PIDPressure", "status": "False"},
        {"type": "Ready", "status": "True", "reason": "KubeletReady",
         "lastHeartbeatTime": "2026-01-02T00:00:00Z"}]}});
    nodes
        .patch_status("silent", &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("ready again");
    renew(&leases, "silent").await;
    eventually("the silent node untainted", || async {
        let n = nodes.get("silent").await.ok()?;
        taint_keys(&n).is_empty().then_some(())
    })
    .await;
    heartbeat.abort();
    let _ = stop.send(true);
}

#[tokio::test]
async fn pod_gc_collects_pods_of_missing_nodes_and_unscheduled_terminating_pods() {
    let server = TestApiServer::new().await;
    let client = server.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let (stop, signal) = Shutdown::new();
    let config = podgc::Config {
        terminated_threshold: 1,
        quarantine: Duration::from_millis(300),
        period: Duration::from_millis(200),
    };
    tokio::spawn(podgc::run(client.clone(), signal, config));
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan"},
        "spec": {"nodeName": "gone", "containers": [{"name": "c", "image": "nginx"}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &orphan)
        .await
        .expect("pod");
    for name in ["done-1", "done-2"] {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}
        }))
        .expect("pod");
        pods.create(&PostParams::default(), &p).await.expect("pod");
        pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
        )
        .await
        .expect("succeeded");
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    eventually("the orphan and the oldest terminated pod collected", || async {
        let gone = |r: Result<Pod, kube::Error>| matches!(r, Err(kube::Error::Api(e)) if e.code == 404);
        (gone(pods.get("orphan").await) && gone(pods.get("done-1").await))
            .then_some(())
    })
    .await;
    assert!(pods.get("done-2").await.is_ok());
    let _ = stop.send(true);
}

//! Simulated nodes against a real (in-memory) API server: registration, leases, and
//! pods bound to them running, gated, and deleted.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use k1s_apiserver::test_util::TestApiServer;
use k1s_simulator::Config;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn condition(pod: &Pod, ty: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)
        .map(|c| c.status.clone())
}

async fn start(
    count: usize,
) -> (
    TestApiServer,
    kube::Client,
    tokio::sync::oneshot::Sender<()>,
) {
    let server = TestApiServer::new().await;
    let client = server.client();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let c = client.clone();
    tokio::spawn(async move {
        let done = async move {
            let _ = stopped.await;
        };
        if let Err(e) = k1s_simulator::run(c, Config::new(count), done).await {
            panic!("simulator failed: {e}");
        }
    });
    (server, client, stop)
}

#[tokio::test]
async fn nodes_register_ready_with_leases_and_run_their_pods() {
    let (_server, client, _stop) = start(2).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    eventually("2 ready nodes with leases", || async {
        let list = nodes.list(&Default::default()).await.ok()?;
        let ready = list
            .items
            .iter()
            .filter(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        let lease = leases.get("sim-node-1").await.ok()?;
        let spec = lease.spec?;
        (ready == 2 && spec.holder_identity.as_deref() == Some("sim-node-1")).then_some(())
    })
    .await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"nodeName": "sim-node-0",
                 "initContainers": [{"name": "init", "image": "busybox"}],
                 "containers": [{"name": "c", "image": "nginx"}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create");
    let running = eventually("the pod running and ready", || async {
        let p = pods.get("web").await.ok()?;
        let phase = p.status.as_ref()?.phase.clone()?;
        (phase == "Running" && condition(&p, "Ready").as_deref() == Some("True")).then_some(p)
    })
    .await;
    let status = running.status.expect("status");
    assert!(
        status
            .pod_ip
            .as_deref()
            .is_some_and(|ip| ip.starts_with("10.42.0."))
    );
    assert_eq!(status.host_ip.as_deref(), Some("172.16.0.1"));
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
    let init = &status.init_container_statuses.expect("init statuses")[0];
    let term = init
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("terminated");
    assert_eq!(
        (term.exit_code, term.reason.as_deref()),
        (0, Some("Completed"))
    );

    // Deletion: the node finishes the pod within the capped grace period.
    pods.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the pod gone", || async {
        matches!(pods.get("web").await, Err(kube::Error::Api(e)) if e.code == 404).then_some(())
    })
    .await;
}

#[tokio::test]
async fn readiness_gates_hold_ready_and_job_pods_finish() {
    let (_server, client, _stop) = start(1).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "gated"},
        "spec": {"nodeName": "sim-node-0",
                 "readinessGates": [{"conditionType": "example.com/lb"}],
                 "containers": [{"name": "c", "image": "nginx"}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create");
    eventually("running, not ready", || async {
        let p = pods.get("gated").await.ok()?;
        (p.status.as_ref()?.phase.as_deref() == Some("Running")
            && condition(&p, "ContainersReady").as_deref() == Some("True")
            && condition(&p, "Ready").as_deref() == Some("False"))
        .then_some(())
    })
    .await;
    let gate = json!({"status": {"conditions": [{"type": "example.com/lb", "status": "True"}]}});
    pods.patch_status("gated", &PatchParams::default(), &Patch::Strategic(gate))
        .await
        .expect("set the gate");
    eventually("ready once the gate is true", || async {
        let p = pods.get("gated").await.ok()?;
        (condition(&p, "Ready").as_deref() == Some("True")).then_some(())
    })
    .await;

    let failing: Pod = serde_json::from_value(json!({
        "metadata": {"name": "fails", "annotations": {
            k1s_simulator::RUN_SECONDS_ANNOTATION: "0.2", k1s_simulator::EXIT_CODE_ANNOTATION: "2"}},
        "spec": {"nodeName": "sim-node-0", "restartPolicy": "Never",
                 "containers": [{"name": "c", "image": "busybox"}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &failing)
        .await
        .expect("create");
    eventually("the pod failed", || async {
        let p = pods.get("fails").await.ok()?;
        (p.status.as_ref()?.phase.as_deref() == Some("Failed")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_nodes_run_a_thousand_pods() {
    let (_server, client, _stop) = start(100).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let started = std::time::Instant::now();
    let creates = (0..1000).map(|i| {
        let pods = pods.clone();
        async move {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": format!("p-{i}")},
                "spec": {"nodeName": format!("sim-node-{}", i % 100),
                         "containers": [{"name": "c", "image": "nginx"}]}
            }))
            .expect("pod");
            pods.create(&PostParams::default(), &pod)
                .await
                .expect("create");
        }
    });
    futures::stream::iter(creates)
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    let list = eventually("1000 running pods", || async {
        let list = pods.list(&Default::default()).await.ok()?;
        let running = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        (running == 1000).then_some(list)
    })
    .await;
    eprintln!("1000 pods created and running in {:?}", started.elapsed());
    // Every pod of a node has its own address.
    let mut ips: Vec<String> = list
        .items
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 1000);
}

//! The scheduler against a real API server in memory: pods land on nodes through
//! `pods/binding` with `PodScheduled` and `Scheduled` events; pods no node fits stay
//! Pending with `FailedScheduling`, and are scheduled once a node fits.

use std::future::Future;
use std::time::Duration;

use k1s_apiserver::test_util::TestApiServer;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn node(name: &str, cpu: &str, extra: Value) -> Node {
    let mut n = json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                   "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"}},
    });
    if let (Some(n), Some(e)) = (n.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            n.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(n).expect("a node")
}

fn pod(name: &str, cpu: &str, extra: Value) -> Pod {
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox",
        "resources": {"requests": {"cpu": cpu}}}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("a pod")
}

async fn create_node(client: &kube::Client, n: Node) {
    let nodes: Api<Node> = Api::all(client.clone());
    let name = n.metadata.name.clone().unwrap_or_default();
    let status = json!({"status": n.status});
    nodes
        .create(&PostParams::default(), &n)
        .await
        .expect("node created");
    // Status is written through /status, as a kubelet does.
    nodes
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("node status");
}

fn node_of(p: &Pod) -> Option<String> {
    p.spec.as_ref().and_then(|s| s.node_name.clone())
}

fn scheduled_condition(p: &Pod) -> Option<(String, Option<String>, Option<String>)> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn events_of(client: &kube::Client, pod: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    events
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(pod))
        .collect()
}

#[tokio::test]
async fn pods_are_bound_and_unfit_pods_wait_with_the_reason() {
    let server = TestApiServer::new().await;
    let client = server.client();
    create_node(
        &client,
        node(
            "cp",
            "4",
            json!({"spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
        ),
    )
    .await;
    create_node(&client, node("w1", "1", json!({}))).await;
    create_node(&client, node("w2", "1", json!({}))).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(k1s_scheduler::run(client.clone(), async move {
        let _ = stopped.await;
    }));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("small", "500m", json!({})))
        .await
        .expect("pod");
    pods.create(&PostParams::default(), &pod("big", "2", json!({})))
        .await
        .expect("pod");
    pods.create(
        &PostParams::default(),
        &pod("other", "100m", json!({"schedulerName": "my-scheduler"})),
    )
    .await
    .expect("pod");

    let p = eventually("small to be bound", || async {
        pods.get("small")
            .await
            .ok()
            .filter(|p| node_of(p).is_some())
    })
    .await;
    let bound_to = node_of(&p).unwrap_or_default();
    assert!(bound_to == "w1" || bound_to == "w2", "{bound_to}");
    assert_eq!(
        scheduled_condition(&p).map(|c| c.0),
        Some("True".to_string())
    );
    let ev = eventually("the Scheduled event", || async {
        events_of(&client, "small")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Scheduled"))
    })
    .await;
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    assert_eq!(
        ev.message,
        Some(format!("Successfully assigned default/small to {bound_to}"))
    );

    let expected = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.";
    let p = eventually("big to be marked unschedulable", || async {
        pods.get("big")
            .await
            .ok()
            .filter(|p| scheduled_condition(p).is_some_and(|c| c.0 == "False"))
    })
    .await;
    assert_eq!(node_of(&p), None);
    assert_eq!(
        scheduled_condition(&p),
        Some((
            "False".to_string(),
            Some("Unschedulable".to_string()),
            Some(expected.to_string())
        ))
    );
    let ev = eventually("the FailedScheduling event", || async {
        events_of(&client, "big")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling"))
    })
    .await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert_eq!(ev.message.as_deref(), Some(expected));

    // A node that fits arrives: the waiting pod is retried and bound there.
    create_node(&client, node("w3", "4", json!({}))).await;
    let p = eventually("big to be bound once a node fits", || async {
        pods.get("big").await.ok().filter(|p| node_of(p).is_some())
    })
    .await;
    assert_eq!(node_of(&p).as_deref(), Some("w3"));

    // The pod for another scheduler is left alone.
    let other = pods.get("other").await.expect("other");
    assert_eq!(node_of(&other), None);
    assert_eq!(scheduled_condition(&other), None);

    let _ = stop.send(());
    let _ = scheduler.await;
}

#[tokio::test]
async fn higher_priority_pods_go_first_and_assumed_pods_count() {
    let server = TestApiServer::new().await;
    let client = server.client();
    create_node(&client, node("only", "1", json!({}))).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // Both are queued before the scheduler starts; only one fits.
    pods.create(&PostParams::default(), &pod("low", "800m", json!({})))
        .await
        .expect("pod");
    pods.create(
        &PostParams::default(),
        &pod(
            "high",
            "800m",
            json!({"priorityClassName": "system-cluster-critical"}),
        ),
    )
    .await
    .expect("pod");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(k1s_scheduler::run(client.clone(), async move {
        let _ = stopped.await;
    }));
    let high = eventually("high to be bound", || async {
        pods.get("high").await.ok().filter(|p| node_of(p).is_some())
    })
    .await;
    assert_eq!(node_of(&high).as_deref(), Some("only"));
    let low = eventually("low to be unschedulable", || async {
        pods.get("low")
            .await
            .ok()
            .filter(|p| scheduled_condition(p).is_some_and(|c| c.0 == "False"))
    })
    .await;
    assert_eq!(node_of(&low), None);
    let msg = scheduled_condition(&low)
        .and_then(|c| c.2)
        .unwrap_or_default();
    assert!(
        msg.starts_with("0/1 nodes are available: 1 Insufficient cpu."),
        "{msg}"
    );

    // Many small pods at once: the assumed ones count, so none overcommits the node
    // (tainted, so that only they go there).
    create_node(
        &client,
        node(
            "big",
            "2",
            json!({"spec": {"taints": [{"key": "small", "effect": "NoSchedule"}]}}),
        ),
    )
    .await;
    for i in 0..15 {
        let extra = json!({"tolerations": [{"key": "small", "operator": "Exists"}],
                           "nodeSelector": {"kubernetes.io/hostname": "big"}});
        pods.create(
            &PostParams::default(),
            &pod(&format!("s{i}"), "150m", extra),
        )
        .await
        .expect("pod");
    }
    eventually("13 small pods bound and 2 waiting", || async {
        let list = pods.list(&ListParams::default()).await.ok()?;
        let small: Vec<&Pod> = list
            .items
            .iter()
            .filter(|p| {
                p.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with('s'))
            })
            .collect();
        let bound = small
            .iter()
            .filter(|p| node_of(p).as_deref() == Some("big"))
            .count();
        let waiting = small
            .iter()
            .filter(|p| scheduled_condition(p).is_some_and(|c| c.0 == "False"))
            .count();
        (bound == 13 && waiting == 2).then_some(())
    })
    .await;
    let _ = stop.send(());
    let _ = scheduler.await;
}

#[tokio::test]
async fn a_higher_priority_pod_preempts_a_lower_one() {
    let server = TestApiServer::new().await;
    let client = server.client();
    create_node(&client, node("only", "1", json!({}))).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(k1s_scheduler::run(client.clone(), async move {
        let _ = stopped.await;
    }));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("victim", "800m", json!({})))
        .await
        .expect("pod");
    eventually("victim to be bound", || async {
        pods.get("victim")
            .await
            .ok()
            .filter(|p| node_of(p).is_some())
    })
    .await;
    pods.create(
        &PostParams::default(),
        &pod(
            "vip",
            "800m",
            json!({"priorityClassName": "system-cluster-critical"}),
        ),
    )
    .await
    .expect("pod");
    let vip = eventually("vip to be nominated", || async {
        pods.get("vip").await.ok().filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.nominated_node_name.as_deref())
                == Some("only")
        })
    })
    .await;
    assert_eq!(node_of(&vip), None);
    let victim = eventually("the victim to be terminating", || async {
        pods.get("victim")
            .await
            .ok()
            .filter(|p| p.metadata.deletion_timestamp.is_some())
    })
    .await;
    let disruption = victim
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "DisruptionTarget").cloned());
    assert_eq!(
        disruption.and_then(|c| c.reason),
        Some("PreemptionByScheduler".to_string())
    );
    let ev = eventually("the Preempted event", || async {
        events_of(&client, "victim")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Preempted"))
    })
    .await;
    let vip_uid = vip.metadata.uid.clone().unwrap_or_default();
    assert_eq!(
        ev.message,
        Some(format!("Preempted by pod {vip_uid} on node only"))
    );
    // The kubelet's part: the victim's containers stop and the pod goes.
    pods.delete(
        "victim",
        &kube::api::DeleteParams::default().grace_period(0),
    )
    .await
    .expect("force delete");
    let vip = eventually("vip to be bound", || async {
        pods.get("vip").await.ok().filter(|p| node_of(p).is_some())
    })
    .await;
    assert_eq!(node_of(&vip).as_deref(), Some("only"));
    let _ = stop.send(());
    let _ = scheduler.await;
}

#[tokio::test]
async fn without_nodes_pods_wait_and_go_to_the_first_node() {
    let server = TestApiServer::new().await;
    let client = server.client();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(k1s_scheduler::run(client.clone(), async move {
        let _ = stopped.await;
    }));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("early", "100m", json!({})))
        .await
        .expect("pod");
    let p = eventually("early to be marked", || async {
        pods.get("early")
            .await
            .ok()
            .filter(|p| scheduled_condition(p).is_some())
    })
    .await;
    assert_eq!(
        scheduled_condition(&p),
        Some((
            "False".to_string(),
            Some("SchedulerError".to_string()),
            Some("no nodes available to schedule pods".to_string())
        ))
    );
    create_node(&client, node("first", "1", json!({}))).await;
    let p = eventually("early to be bound", || async {
        pods.get("early")
            .await
            .ok()
            .filter(|p| node_of(p).is_some())
    })
    .await;
    assert_eq!(node_of(&p).as_deref(), Some("first"));
    let _ = stop.send(());
    let _ = scheduler.await;
}

#[tokio::test]
async fn a_claim_waiting_for_its_consumer_gets_the_node_before_the_pod_is_bound() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use k8s_openapi::api::storage::v1::StorageClass;
    let server = TestApiServer::new().await;
    let client = server.client();
    create_node(&client, node("n1", "1", json!({}))).await;
    let classes: Api<StorageClass> = Api::all(client.clone());
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": "local-path"}, "provisioner": "rancher.io/local-path",
        "volumeBindingMode": "WaitForFirstConsumer"}))
    .expect("class");
    classes
        .create(&PostParams::default(), &class)
        .await
        .expect("class");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                 "resources": {"requests": {"storage": "1Gi"}}}}))
    .expect("claim");
    claims
        .create(&PostParams::default(), &claim)
        .await
        .expect("claim");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(k1s_scheduler::run(client.clone(), async move {
        let _ = stopped.await;
    }));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let volumes =
        json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]});
    pods.create(&PostParams::default(), &pod("user", "100m", volumes))
        .await
        .expect("pod");
    eventually("the selected node", || async {
        claims.get("data").await.ok().filter(|c| {
            c.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("volume.kubernetes.io/selected-node"))
                .map(String::as_str)
                == Some("n1")
        })
    })
    .await;
    // Not bound while the claim waits for its volume.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p = pods.get("user").await.expect("pod");
    assert_eq!(node_of(&p), None);
    // What the provisioner and the binder would do.
    let bound = json!({"metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
                       "spec": {"volumeName": "pvc-1"}});
    claims
        .patch("data", &PatchParams::default(), &Patch::Merge(&bound))
        .await
        .expect("bind the claim");
    let p = eventually("user to be bound", || async {
        pods.get("user").await.ok().filter(|p| node_of(p).is_some())
    })
    .await;
    assert_eq!(node_of(&p).as_deref(), Some("n1"));
    let _ = stop.send(());
    let _ = scheduler.await;
}

/// Binding throughput through the in-process API server: 1000 nodes, 5000 pending pods,
/// then the scheduler. Prints pods bound per second; a measurement, not a check. Run with
/// `cargo test -p k1s-scheduler --test scheduler bind_throughput -- --ignored --nocapture`
/// (best with `--config 'profile.dev.package.k1s-apiserver.opt-level=3'` and the same for
/// k1s-store, k1s-apimachinery and k1s-scheduler).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn bind_throughput() {
    let server = TestApiServer::new().await;
    let client = server.client();
    let nodes = 1000;
    let count = 5000;
    for i in 0..nodes {
        create_node(&client, node(&format!("node-{i:04}"), "32", json!({}))).await;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in 0..8 {
        let pods = pods.clone();
        tasks.spawn(async move {
            for i in (chunk..count).step_by(8) {
                pods.create(
                    &PostParams::default(),
                    &pod(&format!("p{i}"), "100m", json!({})),
                )
                .await
                .expect("pod");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let start = std::time::Instant::now();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(k1s_scheduler::run(client.clone(), async move {
        let _ = stopped.await;
    }));
    let unbound = ListParams::default().fields("spec.nodeName=");
    loop {
        let left = pods
            .list_metadata(&unbound)
            .await
            .map(|l| l.items.len())
            .unwrap_or(count);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "bound {count} pods on {nodes} nodes in {secs:.2}s: {:.0} pods/s",
        count as f64 / secs
    );
    let _ = stop.send(());
    let _ = scheduler.await;
}

//! The StatefulSet and DaemonSet controllers against a real API server, the test playing
//! the kubelet (and, for DaemonSets, providing the nodes): ordinals and claims, ordered
//! creation and reverse scale-down, rolling updates with partitions, claim retention,
//! one daemon pod per eligible node and daemon rolling updates.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Cluster, eventually, is_not_found};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// Plays the kubelet: the pod is Running and Ready.
async fn mark_ready(pods: &Api<Pod>, name: &str) {
    let now = Timestamp::now().to_string();
    let patch = json!({"status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap_or_else(|e| panic!("mark {name} ready: {e}"));
}

async fn live_pod(pods: &Api<Pod>, name: &str) -> Option<Pod> {
    pods.get_opt(name)
        .await
        .ok()
        .flatten()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
}

fn revision(p: &Pod) -> String {
    p.labels()
        .get("controller-revision-hash")
        .cloned()
        .unwrap_or_default()
}

fn sts(name: &str, replicas: i32, extra: Value) -> StatefulSet {
    let mut v = json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": "nginx",
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "www"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}
                }
            }]
        }
    });
    if let (Some(spec), Value::Object(extra)) = (v["spec"].as_object_mut(), extra) {
        spec.extend(extra);
    }
    serde_json::from_value(v).expect("statefulset")
}

async fn set_image(sets: &Api<StatefulSet>, name: &str, image: &str) {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    sets.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("set image");
}

async fn status(sets: &Api<StatefulSet>, name: &str) -> Value {
    let s = sets.get(name).await.expect("get set");
    serde_json::to_value(s.status).expect("status")
}

#[tokio::test]
async fn ordered_ready_creates_in_order_rolls_from_the_top_and_scales_down_in_reverse() {
    let c = Cluster::start().await;
    c.namespace("ordered").await;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "ordered");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "ordered");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "ordered");
    sets.create(&PostParams::default(), &sts("web", 3, json!({})))
        .await
        .expect("create");

    for i in 0..3 {
        let name = format!("web-{i}");
        let pod = eventually(&format!("{name} created"), || live_pod(&pods, &name)).await;
        // The claim exists before the pod and is wired into it.
        let claim = claims.get(&format!("www-web-{i}")).await.expect("claim");
        assert_eq!(claim.labels().get("app").map(String::as_str), Some("web"));
        let spec = pod.spec.clone().expect("spec");
        let vol = spec
            .volumes
            .as_ref()
            .and_then(|v| v.first())
            .expect("volume");
        assert_eq!(
            vol.persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            Some(format!("www-web-{i}").as_str())
        );
        assert_eq!(spec.hostname.as_deref(), Some(name.as_str()));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let labels = pod.labels();
        assert_eq!(labels["statefulset.kubernetes.io/pod-name"], name);
        assert_eq!(labels["apps.kubernetes.io/pod-index"], i.to_string());
        // OrderedReady: the next ordinal waits for this one to be Ready.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            live_pod(&pods, &format!("web-{}", i + 1)).await.is_none(),
            "web-{} created before web-{i} was ready",
            i + 1
        );
        mark_ready(&pods, &name).await;
    }
    let st = eventually("status of 3 ready replicas", || async {
        let st = status(&sets, "web").await;
        (st["readyReplicas"] == json!(3) && st["availableReplicas"] == json!(3)).then_some(st)
    })
    .await;
    assert_eq!(st["replicas"], json!(3));
    assert_eq!(st["currentRevision"], st["updateRevision"], "{st}");
    let first_revision = st["updateRevision"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(first_revision.starts_with("web-"), "{st}");
    let revs: Api<ControllerRevision> = Api::namespaced(c.client.clone(), "ordered");
    revs.get(&first_revision).await.expect("revision");

    // Rolling update: highest ordinal first, each waiting for the one before.
    set_image(&sets, "web", "nginx:2").await;
    let update = eventually("a new update revision", || async {
        let st = status(&sets, "web").await;
        let u = st["updateRevision"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (u != first_revision).then_some(u)
    })
    .await;
    for i in [2, 1, 0] {
        let name = format!("web-{i}");
        eventually(&format!("{name} at the new revision"), || async {
            live_pod(&pods, &name)
                .await
                .filter(|p| revision(p) == update)
        })
        .await;
        if i > 0 {
            let below = live_pod(&pods, &format!("web-{}", i - 1))
                .await
                .expect("below");
            assert_eq!(
                revision(&below),
                first_revision,
                "web-{} updated too early",
                i - 1
            );
        }
        mark_ready(&pods, &name).await;
    }
    eventually("rollout complete", || async {
        let st = status(&sets, "web").await;
        (st["currentRevision"] == json!(update) && st["updatedReplicas"] == json!(3)).then_some(())
    })
    .await;

    // Scale down in reverse, one at a time: a finalizer holds web-2 terminating, and web-1
    // must wait for it.
    pods.patch(
        "web-2",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["test/hold"]}})),
    )
    .await
    .expect("hold web-2");
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .expect("scale");
    eventually("web-2 terminating", || async {
        pods.get_opt("web-2")
            .await
            .ok()
            .flatten()
            .filter(|p| p.metadata.deletion_timestamp.is_some())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        live_pod(&pods, "web-1").await.is_some(),
        "web-1 deleted before web-2 was gone"
    );
    pods.patch(
        "web-2",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release web-2");
    eventually("web-1 gone", || async {
        match pods.get("web-1").await {
            Err(e) if is_not_found(&e) => Some(()),
            _ => None,
        }
    })
    .await;
    assert!(live_pod(&pods, "web-0").await.is_some());
    // Claims are retained by default.
    claims.get("www-web-2").await.expect("www-web-2 kept");
    eventually("status of 1 replica", || async {
        (status(&sets, "web").await["replicas"] == json!(1)).then_some(())
    })
    .await;
    // One event per pod and claim, in upstream's words.
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(c.client.clone(), "ordered");
    let notes: Vec<String> = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter_map(|e| e.message)
        .collect();
    for want in [
        "create Claim www-web-0 Pod web-0 in StatefulSet web success",
        "create Pod web-0 in StatefulSet web successful",
        "create Pod web-2 in StatefulSet web successful",
        "delete Pod web-2 in StatefulSet web successful",
        "delete Pod web-1 in StatefulSet web successful",
    ] {
        assert!(notes.iter().any(|n| n == want), "{want} missing: {notes:?}");
    }
}

#[tokio::test]
async fn parallel_sets_start_at_their_ordinal_and_delete_claims_on_scale_down() {
    let c = Cluster::start().await;
    c.namespace("par").await;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "par");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "par");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "par");
    let extra = json!({
        "podManagementPolicy": "Parallel",
        "ordinals": {"start": 5},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"}
    });
    let set = sets
        .create(&PostParams::default(), &sts("db", 3, extra))
        .await
        .expect("create");
    // Parallel: all three without any of them being ready.
    for i in 5..8 {
        let name = format!("db-{i}");
        eventually(&name, || live_pod(&pods, &name)).await;
    }
    assert!(live_pod(&pods, "db-0").await.is_none());
    let claim = claims.get("www-db-7").await.expect("claim");
    let owners = claim.owner_references();
    assert!(
        owners
            .iter()
            .any(|o| Some(&o.uid) == set.metadata.uid.as_ref()),
        "{owners:?}"
    );

    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .expect("scale");
    for gone in ["www-db-6", "www-db-7"] {
        eventually(&format!("{gone} deleted with its pod"), || async {
            match claims.get(gone).await {
                Err(e) if is_not_found(&e) => Some(()),
                Ok(c) if c.metadata.deletion_timestamp.is_some() => Some(()),
                _ => None,
            }
        })
        .await;
    }
    claims.get("www-db-5").await.expect("www-db-5 kept");
    assert!(live_pod(&pods, "db-5").await.is_some());
}

#[tokio::test]
async fn a_partition_keeps_lower_ordinals_at_the_current_revision() {
    let c = Cluster::start().await;
    c.namespace("part").await;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "part");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "part");
    let extra = json!({
        "podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    });
    sets.create(&PostParams::default(), &sts("p", 3, extra))
        .await
        .expect("create");
    for i in 0..3 {
        let name = format!("p-{i}");
        eventually(&name, || live_pod(&pods, &name)).await;
        mark_ready(&pods, &name).await;
    }
    let old = eventually("current revision", || async {
        let st = status(&sets, "p").await;
        (st["readyReplicas"] == json!(3)).then(|| st["currentRevision"].clone())
    })
    .await;
    set_image(&sets, "p", "nginx:2").await;
    let new = eventually("p-2 updated", || async {
        let p = live_pod(&pods, "p-2").await?;
        (json!(revision(&p)) != old).then(|| revision(&p))
    })
    .await;
    mark_ready(&pods, "p-2").await;
    let st = eventually("status after the partitioned update", || async {
        let st = status(&sets, "p").await;
        (st["updatedReplicas"] == json!(1) && st["readyReplicas"] == json!(3)).then_some(st)
    })
    .await;
    assert_eq!(st["currentRevision"], old, "{st}");
    assert_eq!(st["updateRevision"], json!(new), "{st}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..2 {
        let p = live_pod(&pods, &format!("p-{i}")).await.expect("pod");
        assert_eq!(json!(revision(&p)), old, "p-{i} moved past the partition");
    }
}

fn node(name: &str, labels: Value, taints: Value) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints}
    }))
    .expect("node")
}

async fn daemon_pods(pods: &Api<Pod>) -> BTreeMap<String, Vec<Pod>> {
    let mut out: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
    for p in pods.list(&ListParams::default()).await.expect("list").items {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .and_then(|r| r.node_selector_terms.first())
            .and_then(|t| t.match_fields.as_ref())
            .and_then(|f| f.first())
            .and_then(|f| f.values.as_ref())
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default();
        out.entry(node).or_default().push(p);
    }
    out
}

#[tokio::test]
async fn daemonsets_run_one_pod_per_eligible_node_and_roll_updates() {
    let c = Cluster::start().await;
    c.namespace("ds").await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    let pp = PostParams::default();
    for n in [
        node("n1", json!({"role": "worker"}), json!([])),
        node("n2", json!({"role": "worker"}), json!([])),
        node(
            "n3",
            json!({"role": "worker"}),
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
        ),
        // Cordoned: daemon pods tolerate that.
        node(
            "n4",
            json!({"role": "worker"}),
            json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
        ),
        node("n5", json!({"role": "edge"}), json!([])),
    ] {
        nodes.create(&pp, &n).await.expect("node");
    }
    let sets: Api<DaemonSet> = Api::namespaced(c.client.clone(), "ds");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "ds");
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {
                    "nodeSelector": {"role": "worker"},
                    "containers": [{"name": "c", "image": "agent:1"}]
                }
            }
        }
    }))
    .expect("ds");
    sets.create(&pp, &ds).await.expect("create ds");
    let by_node = eventually("a pod on n1, n2 and n4", || async {
        let m = daemon_pods(&pods).await;
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        (keys == ["n1", "n2", "n4"]).then_some(m)
    })
    .await;
    for (node, ps) in &by_node {
        assert_eq!(ps.len(), 1, "{node}");
        let p = &ps[0];
        let tolerations = p
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        assert!(
            tolerations
                .iter()
                .any(|t| t.key.as_deref() == Some("node.kubernetes.io/unschedulable")),
            "{tolerations:?}"
        );
        mark_ready(&pods, &p.name_any()).await;
    }
    eventually("status: 3 desired, 3 ready", || async {
        let s = sets.get("agent").await.ok()?.status?;
        (s.desired_number_scheduled == 3
            && s.current_number_scheduled == 3
            && s.number_ready == 3
            && s.number_available == Some(3)
            && s.updated_number_scheduled == Some(3))
        .then_some(())
    })
    .await;
    let old_hash = revision(&by_node["n1"][0]);

    // Tolerating the taint adds n3 and rolls the other pods onto the new revision, one
    // unavailable node at a time.
    let patch = json!({"spec": {"template": {"spec": {
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    }}}});
    sets.patch("agent", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("update ds");
    eventually("every node on the new revision", || async {
        let m = daemon_pods(&pods).await;
        for ps in m.values() {
            for p in ps {
                if !common_ready(p) {
                    mark_ready(&pods, &p.name_any()).await;
                }
            }
        }
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        let done = keys == ["n1", "n2", "n3", "n4"]
            && m.values()
                .all(|ps| ps.len() == 1 && revision(&ps[0]) != old_hash);
        done.then_some(())
    })
    .await;
    eventually("status: 4 updated and ready", || async {
        let s = sets.get("agent").await.ok()?.status?;
        (s.desired_number_scheduled == 4
            && s.number_ready == 4
            && s.updated_number_scheduled == Some(4)
            && s.number_misscheduled == 0)
            .then_some(())
    })
    .await;
    let revs: Api<ControllerRevision> = Api::namespaced(c.client.clone(), "ds");
    let names: Vec<String> = revs
        .list(&ListParams::default())
        .await
        .expect("revisions")
        .items
        .iter()
        .map(|r| r.name_any())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("agent-")), "{names:?}");
}

fn common_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test]
async fn a_set_recreated_after_an_orphaning_delete_adopts_its_pods_and_history() {
    let c = Cluster::start().await;
    c.namespace("orphan").await;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "orphan");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "orphan");
    let revs: Api<ControllerRevision> = Api::namespaced(c.client.clone(), "orphan");
    let spec = sts("o", 2, json!({"podManagementPolicy": "Parallel"}));
    sets.create(&PostParams::default(), &spec)
        .await
        .expect("create");
    let mut uids = Vec::new();
    for i in 0..2 {
        let name = format!("o-{i}");
        let p = eventually(&name, || live_pod(&pods, &name)).await;
        uids.push(p.metadata.uid.clone());
        mark_ready(&pods, &name).await;
    }
    let revision = eventually("update revision", || async {
        let st = status(&sets, "o").await;
        st["updateRevision"].as_str().map(str::to_string)
    })
    .await;
    sets.delete("o", &kube::api::DeleteParams::orphan())
        .await
        .expect("orphaning delete");
    eventually("set gone, pods orphaned", || async {
        if !matches!(sets.get("o").await, Err(e) if is_not_found(&e)) {
            return None;
        }
        for name in ["o-0", "o-1"] {
            let p = pods.get(name).await.ok()?;
            if !p.owner_references().is_empty() {
                return None;
            }
        }
        Some(())
    })
    .await;
    // An orphan that lost its identity label gets it back once adopted.
    let strip = json!({"metadata": {"labels": {"apps.kubernetes.io/pod-index": null}}});
    pods.patch("o-1", &PatchParams::default(), &Patch::Merge(strip))
        .await
        .expect("strip label");
    let again = sets
        .create(&PostParams::default(), &spec)
        .await
        .expect("recreate");
    let uid = again.metadata.uid.clone().expect("uid");
    for (i, old_uid) in uids.iter().enumerate() {
        let name = format!("o-{i}");
        let p = eventually(&format!("{name} adopted"), || async {
            let p = pods.get(&name).await.ok()?;
            p.owner_references()
                .iter()
                .any(|r| r.uid == uid && r.controller == Some(true))
                .then_some(p)
        })
        .await;
        assert_eq!(&p.metadata.uid, old_uid, "{name} was replaced, not adopted");
    }
    let r = eventually("revision adopted", || async {
        let r = revs.get(&revision).await.ok()?;
        r.owner_references()
            .iter()
            .any(|o| o.uid == uid)
            .then_some(r)
    })
    .await;
    assert_eq!(r.revision, 1);
    eventually("identity label repaired", || async {
        let p = pods.get("o-1").await.ok()?;
        (p.labels()
            .get("apps.kubernetes.io/pod-index")
            .map(String::as_str)
            == Some("1"))
        .then_some(())
    })
    .await;
    let st = eventually("status after adoption", || async {
        let st = status(&sets, "o").await;
        (st["readyReplicas"] == json!(2)).then_some(st)
    })
    .await;
    assert_eq!(st["updateRevision"], json!(revision), "{st}");
    assert_eq!(st["currentRevision"], json!(revision), "{st}");
}

async fn mark_failed(pods: &Api<Pod>, name: &str) {
    let patch = json!({"status": {"phase": "Failed"}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap_or_else(|e| panic!("mark {name} failed: {e}"));
}

async fn messages(c: &Cluster, ns: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(c.client.clone(), ns);
    events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter_map(|e| Some(format!("{}: {}", e.reason?, e.message?)))
        .collect()
}

#[tokio::test]
async fn failed_pods_are_recreated() {
    let c = Cluster::start().await;
    c.namespace("failing").await;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "failing");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "failing");
    sets.create(&PostParams::default(), &sts("f", 1, json!({})))
        .await
        .expect("create");
    let first = eventually("f-0", || live_pod(&pods, "f-0")).await;
    mark_failed(&pods, "f-0").await;
    eventually("f-0 recreated", || async {
        live_pod(&pods, "f-0")
            .await
            .filter(|p| p.metadata.uid != first.metadata.uid)
    })
    .await;
    let want = "RecreatingFailedPod: StatefulSet failing/f is recreating failed Pod f-0";
    eventually("RecreatingFailedPod event", || async {
        messages(&c, "failing")
            .await
            .iter()
            .any(|m| m == want)
            .then_some(())
    })
    .await;

    let nodes: Api<Node> = Api::all(c.client.clone());
    nodes
        .create(&PostParams::default(), &node("solo", json!({}), json!([])))
        .await
        .expect("node");
    let dsets: Api<DaemonSet> = Api::namespaced(c.client.clone(), "failing");
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}
            }
        }
    }))
    .expect("ds");
    dsets.create(&PostParams::default(), &ds).await.expect("ds");
    let lp = ListParams::default().labels("app=d");
    let first = eventually("daemon pod", || async {
        pods.list(&lp).await.ok()?.items.into_iter().next()
    })
    .await;
    mark_failed(&pods, &first.name_any()).await;
    eventually("daemon pod replaced", || async {
        let items = pods.list(&lp).await.ok()?.items;
        (items.len() == 1 && items[0].metadata.uid != first.metadata.uid).then_some(())
    })
    .await;
    let want = format!(
        "FailedDaemonPod: Found failed daemon pod failing/{} on node solo, will try to kill it",
        first.name_any()
    );
    assert!(messages(&c, "failing").await.contains(&want));
}

#[tokio::test]
async fn daemonsets_surge_a_new_pod_before_the_old_one_goes() {
    let c = Cluster::start().await;
    c.namespace("surge").await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    for n in ["s1", "s2"] {
        nodes
            .create(&PostParams::default(), &node(n, json!({}), json!([])))
            .await
            .expect("node");
    }
    let sets: Api<DaemonSet> = Api::namespaced(c.client.clone(), "surge");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "surge");
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "s"},
        "spec": {
            "selector": {"matchLabels": {"app": "s"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "s"}},
                "spec": {"containers": [{"name": "c", "image": "s:1"}]}
            }
        }
    }))
    .expect("ds");
    sets.create(&PostParams::default(), &ds).await.expect("ds");
    let first = eventually("two daemon pods", || async {
        let m = daemon_pods(&pods).await;
        (m.len() == 2).then_some(m)
    })
    .await;
    for ps in first.values() {
        mark_ready(&pods, &ps[0].name_any()).await;
    }
    let old_hash = revision(&first["s1"][0]);
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "s:2"}]}}}});
    sets.patch("s", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("update");
    // One node at a time gets a second, new pod while its old one keeps running.
    let surged = eventually("a surge pod", || async {
        let m = daemon_pods(&pods).await;
        let doubled: Vec<_> = m.iter().filter(|(_, ps)| ps.len() == 2).collect();
        (doubled.len() == 1).then(|| doubled[0].1.clone())
    })
    .await;
    assert_eq!(
        surged.iter().filter(|p| revision(p) == old_hash).count(),
        1,
        "the old pod stays until the new one is available"
    );
    eventually("every node on the new revision, one pod each", || async {
        let m = daemon_pods(&pods).await;
        for ps in m.values() {
            for p in ps {
                if !common_ready(p) {
                    mark_ready(&pods, &p.name_any()).await;
                }
            }
        }
        let done = m.len() == 2
            && m.values()
                .all(|ps| ps.len() == 1 && revision(&ps[0]) != old_hash);
        done.then_some(())
    })
    .await;
}

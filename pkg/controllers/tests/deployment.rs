//! The Deployment controller against a real API server. The test plays the ReplicaSet
//! controller and the kubelet: a fake writes each ReplicaSet's status from its spec, and
//! makes replicas available only when the test says so, so every rollout step can be
//! observed.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Cluster, eventually, is_not_found};
use k1s_controllers::deployment::util;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// Plays the ReplicaSet controller for one namespace: status.replicas follows
/// spec.replicas at once (pods appear and go), availability follows only on `grant`
/// (or always, in auto mode), and observedGeneration follows generation.
struct FakeReplicaSets {
    grants: Arc<AtomicUsize>,
    auto: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl FakeReplicaSets {
    fn start(client: kube::Client, ns: &str, auto: bool) -> Self {
        let grants = Arc::new(AtomicUsize::new(0));
        let auto = Arc::new(AtomicBool::new(auto));
        let stop = Arc::new(AtomicBool::new(false));
        let api: Api<ReplicaSet> = Api::namespaced(client, ns);
        let (g, a, s) = (grants.clone(), auto.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                let granting = g.swap(0, Ordering::AcqRel) > 0 || a.load(Ordering::Relaxed);
                if let Ok(list) = api.list(&ListParams::default()).await {
                    for rs in list.items {
                        let spec = util::rs_replicas(&rs);
                        let available = if granting {
                            spec
                        } else {
                            util::rs_available(&rs).min(spec)
                        };
                        let status = rs.status.clone().unwrap_or_default();
                        let want = (spec, Some(available), rs.metadata.generation);
                        let have = (
                            status.replicas,
                            status.available_replicas,
                            status.observed_generation,
                        );
                        if want == have {
                            continue;
                        }
                        let patch = json!({"status": {
                            "replicas": spec,
                            "fullyLabeledReplicas": spec,
                            "readyReplicas": available,
                            "availableReplicas": available,
                            "terminatingReplicas": 0,
                            "observedGeneration": rs.metadata.generation,
                        }});
                        let _ = api
                            .patch_status(
                                &rs.name_any(),
                                &PatchParams::default(),
                                &Patch::Merge(patch),
                            )
                            .await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        });
        Self { grants, auto, stop }
    }

    /// Makes every replica that exists now available (at the fake's next pass).
    fn grant(&self) {
        self.grants.fetch_add(1, Ordering::AcqRel);
    }

    fn set_auto(&self, auto: bool) {
        self.auto.store(auto, Ordering::Relaxed);
    }
}

impl Drop for FakeReplicaSets {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn deployment(name: &str, replicas: i32, image: &str, extra_spec: Value) -> Deployment {
    let mut spec = json!({
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": image}]}
        }
    });
    if let (Some(s), Value::Object(extra)) = (spec.as_object_mut(), extra_spec) {
        s.extend(extra);
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("deployment")
}

struct Fixture {
    /// Only the Deployment controller runs: the test plays the ReplicaSet controller.
    c: Cluster,
    deploys: Api<Deployment>,
    sets: Api<ReplicaSet>,
    ns: String,
}

impl Fixture {
    async fn new(ns: &str) -> Self {
        let c = Cluster::start_only(&["deployment-controller"]).await;
        c.namespace(ns).await;
        Self {
            deploys: Api::namespaced(c.client.clone(), ns),
            sets: Api::namespaced(c.client.clone(), ns),
            ns: ns.to_string(),
            c,
        }
    }

    fn fake(&self, auto: bool) -> FakeReplicaSets {
        FakeReplicaSets::start(self.c.client.clone(), &self.ns, auto)
    }

    async fn create(&self, d: &Deployment) -> Deployment {
        self.deploys
            .create(&PostParams::default(), d)
            .await
            .expect("create deployment")
    }

    async fn patch(&self, name: &str, patch: Value) {
        self.deploys
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("patch deployment");
    }

    async fn set_image(&self, name: &str, image: &str) {
        self.patch(
            name,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}),
        )
        .await;
    }

    /// The Deployment's ReplicaSets, oldest first.
    async fn rss(&self) -> Vec<ReplicaSet> {
        let mut items = self
            .sets
            .list(&ListParams::default())
            .await
            .expect("list")
            .items;
        items.sort_by(util::by_creation);
        items
    }

    /// `(image, spec.replicas)` of every ReplicaSet, oldest first.
    async fn sizes(&self) -> Vec<(String, i32)> {
        self.rss()
            .await
            .iter()
            .map(|rs| (image_of(rs), util::rs_replicas(rs)))
            .collect()
    }

    async fn wait_sizes(&self, what: &str, want: &[(&str, i32)]) {
        let want: Vec<(String, i32)> = want.iter().map(|(i, n)| (i.to_string(), *n)).collect();
        eventually(what, || async {
            let got = self.sizes().await;
            (got == want).then_some(())
        })
        .await;
    }

    async fn get(&self, name: &str) -> Deployment {
        self.deploys.get(name).await.expect("get deployment")
    }

    async fn wait_condition(&self, name: &str, type_: &str, reason: &str) -> Deployment {
        eventually(&format!("{type_} condition {reason}"), || async {
            let d = self.get(name).await;
            let status = d.status.clone().unwrap_or_default();
            let matches = util::get_condition(&status, type_)
                .is_some_and(|c| c.reason.as_deref() == Some(reason));
            matches.then_some(d)
        })
        .await
    }

    async fn wait_complete(&self, name: &str) -> Deployment {
        eventually("rollout to complete", || async {
            let d = self.get(name).await;
            let status = d.status.clone().unwrap_or_default();
            let done = util::deployment_complete(&d, &status)
                && util::get_condition(&status, util::PROGRESSING)
                    .is_some_and(|c| c.reason.as_deref() == Some(util::NEW_RS_AVAILABLE_REASON));
            done.then_some(d)
        })
        .await
    }

    async fn event_messages(&self) -> Vec<String> {
        let events: Api<Event> = Api::namespaced(self.c.client.clone(), &self.ns);
        events
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter_map(|e| e.message)
            .collect()
    }
}

fn image_of(rs: &ReplicaSet) -> String {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn annotation(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<String> {
    meta.annotations.as_ref().and_then(|a| a.get(key)).cloned()
}

#[tokio::test]
async fn a_deployment_gets_a_hashed_replica_set_and_reports_availability() {
    let f = Fixture::new("basic").await;
    let _fake = f.fake(true);
    let created = f.create(&deployment("web", 3, "nginx:1", json!({}))).await;
    let d = f.wait_complete("web").await;

    let rss = f.rss().await;
    assert_eq!(rss.len(), 1, "{rss:?}");
    let rs = &rss[0];
    let hash = rs
        .labels()
        .get("pod-template-hash")
        .cloned()
        .expect("hash label");
    assert_eq!(rs.name_any(), format!("web-{hash}"));
    assert!(
        hash.bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)),
        "{hash}"
    );
    let spec = rs.spec.clone().expect("spec");
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(
        spec.selector.match_labels,
        Some(BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            ("pod-template-hash".to_string(), hash.clone()),
        ]))
    );
    let template_labels = spec
        .template
        .and_then(|t| t.metadata)
        .and_then(|m| m.labels);
    assert_eq!(
        template_labels.and_then(|l| l.get("pod-template-hash").cloned()),
        Some(hash.clone())
    );
    let owner = rs.owner_references().first().cloned().expect("owner");
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Deployment", "web")
    );
    assert_eq!(owner.uid, created.uid().expect("uid"));
    assert_eq!(owner.controller, Some(true));
    assert_eq!(
        annotation(&rs.metadata, util::REVISION_ANNOTATION).as_deref(),
        Some("1")
    );
    assert_eq!(
        annotation(&rs.metadata, util::DESIRED_REPLICAS_ANNOTATION).as_deref(),
        Some("3")
    );
    // maxSurge defaults to 25% of 3, rounded up.
    assert_eq!(
        annotation(&rs.metadata, util::MAX_REPLICAS_ANNOTATION).as_deref(),
        Some("4")
    );

    assert_eq!(
        annotation(&d.metadata, util::REVISION_ANNOTATION).as_deref(),
        Some("1")
    );
    let status = d.status.clone().expect("status");
    assert_eq!(status.observed_generation, d.metadata.generation);
    assert_eq!(
        (
            status.replicas,
            status.updated_replicas,
            status.ready_replicas,
            status.available_replicas
        ),
        (Some(3), Some(3), Some(3), Some(3))
    );
    assert!(status.unavailable_replicas.unwrap_or(0) == 0);
    let available = util::get_condition(&status, util::AVAILABLE).expect("Available");
    assert_eq!(available.status, "True");
    assert_eq!(
        available.reason.as_deref(),
        Some("MinimumReplicasAvailable")
    );
    assert_eq!(
        available.message.as_deref(),
        Some("Deployment has minimum availability.")
    );
    let progressing = util::get_condition(&status, util::PROGRESSING).expect("Progressing");
    assert_eq!(progressing.status, "True");
    assert_eq!(
        progressing.message.as_deref(),
        Some(format!("ReplicaSet \"web-{hash}\" has successfully progressed.").as_str())
    );

    // Settled means quiet: no status or ReplicaSet rewritten over and over.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = (
        f.get("web").await.resource_version(),
        f.rss().await[0].resource_version(),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = (
        f.get("web").await.resource_version(),
        f.rss().await[0].resource_version(),
    );
    assert_eq!(before, after, "writes after the rollout settled");

    let want = format!("Scaled up replica set web-{hash} from 0 to 3");
    eventually("the ScalingReplicaSet event", || async {
        f.event_messages().await.contains(&want).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_rolling_update_stays_within_max_surge_and_max_unavailable() {
    let f = Fixture::new("rolling").await;
    let fake = f.fake(true);
    let strategy = json!({"strategy": {"type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}});
    f.create(&deployment("web", 4, "nginx:1", strategy)).await;
    f.wait_complete("web").await;

    // From here on the test decides when new pods become available.
    fake.set_auto(false);
    tokio::time::sleep(Duration::from_millis(100)).await;
    f.set_image("web", "nginx:2").await;
    let steps: [&[(&str, i32)]; 5] = [
        &[("nginx:1", 4), ("nginx:2", 1)],
        &[("nginx:1", 3), ("nginx:2", 2)],
        &[("nginx:1", 2), ("nginx:2", 3)],
        &[("nginx:1", 1), ("nginx:2", 4)],
        &[("nginx:1", 0), ("nginx:2", 4)],
    ];
    for (i, want) in steps.iter().enumerate() {
        f.wait_sizes(&format!("rollout step {i}"), want).await;
        // No more than replicas + maxSurge at any step, and nothing scaled down before
        // its replacement was available.
        let total: i32 = want.iter().map(|(_, n)| n).sum();
        assert!(total <= 5);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            f.sizes().await,
            want.iter()
                .map(|(i, n)| (i.to_string(), *n))
                .collect::<Vec<_>>(),
            "step {i} holds until new pods are available"
        );
        fake.grant();
    }
    let d = f.wait_complete("web").await;
    assert_eq!(
        annotation(&d.metadata, util::REVISION_ANNOTATION).as_deref(),
        Some("2")
    );
    let rss = f.rss().await;
    let revisions: Vec<Option<String>> = rss
        .iter()
        .map(|rs| annotation(&rs.metadata, util::REVISION_ANNOTATION))
        .collect();
    assert_eq!(revisions, [Some("1".to_string()), Some("2".to_string())]);
    let old = rss[0].name_any();
    let new = rss[1].name_any();
    let want = [
        format!("Scaled up replica set {new} from 0 to 1"),
        format!("Scaled down replica set {old} from 4 to 3"),
        format!("Scaled up replica set {new} from 1 to 2"),
        format!("Scaled down replica set {old} from 1 to 0"),
    ];
    eventually("the ScalingReplicaSet events of each step", || async {
        let messages = f.event_messages().await;
        want.iter().all(|w| messages.contains(w)).then_some(())
    })
    .await;

    // Rolling back to the first template reuses its ReplicaSet as revision 3.
    f.set_image("web", "nginx:1").await;
    fake.set_auto(true);
    f.wait_sizes("rollback", &[("nginx:1", 4), ("nginx:2", 0)])
        .await;
    let d = f.wait_complete("web").await;
    assert_eq!(
        annotation(&d.metadata, util::REVISION_ANNOTATION).as_deref(),
        Some("3")
    );
    let first = f.sets.get(&old).await.expect("first rs");
    assert_eq!(
        annotation(&first.metadata, util::REVISION_ANNOTATION).as_deref(),
        Some("3")
    );
    assert_eq!(
        annotation(&first.metadata, util::REVISION_HISTORY_ANNOTATION).as_deref(),
        Some("1")
    );
}

#[tokio::test]
async fn scaling_mid_rollout_is_proportional() {
    let f = Fixture::new("proportional").await;
    let fake = f.fake(true);
    let strategy = json!({"strategy": {"type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}});
    f.create(&deployment("web", 10, "nginx:1", strategy)).await;
    f.wait_complete("web").await;
    // The new image never becomes available: the rollout stops half way.
    fake.set_auto(false);
    tokio::time::sleep(Duration::from_millis(100)).await;
    f.set_image("web", "nginx:bad").await;
    f.wait_sizes("a stuck rollout", &[("nginx:1", 8), ("nginx:bad", 5)])
        .await;
    f.patch("web", json!({"spec": {"replicas": 20}})).await;
    // 13 replicas (10 + surge 3) become 23 (20 + 3), each ReplicaSet in proportion.
    f.wait_sizes(
        "proportional scale-up",
        &[("nginx:1", 14), ("nginx:bad", 9)],
    )
    .await;
    for rs in f.rss().await {
        assert_eq!(
            annotation(&rs.metadata, util::DESIRED_REPLICAS_ANNOTATION).as_deref(),
            Some("20")
        );
        assert_eq!(
            annotation(&rs.metadata, util::MAX_REPLICAS_ANNOTATION).as_deref(),
            Some("23")
        );
    }
    f.patch("web", json!({"spec": {"replicas": 0}})).await;
    f.wait_sizes("scaled to zero", &[("nginx:1", 0), ("nginx:bad", 0)])
        .await;
}

#[tokio::test]
async fn a_paused_deployment_scales_but_does_not_roll_out() {
    let f = Fixture::new("paused").await;
    let _fake = f.fake(true);
    f.create(&deployment("web", 2, "nginx:1", json!({}))).await;
    f.wait_complete("web").await;
    f.patch("web", json!({"spec": {"paused": true}})).await;
    let d = f
        .wait_condition("web", util::PROGRESSING, "DeploymentPaused")
        .await;
    let cond = util::get_condition(d.status.as_ref().expect("status"), util::PROGRESSING)
        .cloned()
        .expect("cond");
    assert_eq!(cond.status, "Unknown");
    assert_eq!(cond.message.as_deref(), Some("Deployment is paused"));

    f.set_image("web", "nginx:2").await;
    f.patch("web", json!({"spec": {"replicas": 5}})).await;
    f.wait_sizes("scaled while paused", &[("nginx:1", 5)]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(f.rss().await.len(), 1, "no rollout while paused");

    f.patch("web", json!({"spec": {"paused": false}})).await;
    f.wait_sizes("rolled out after resume", &[("nginx:1", 0), ("nginx:2", 5)])
        .await;
    f.wait_complete("web").await;
}

#[tokio::test]
async fn revision_history_limit_deletes_the_oldest_empty_replica_sets() {
    let f = Fixture::new("history").await;
    let _fake = f.fake(true);
    f.create(&deployment(
        "web",
        1,
        "v1",
        json!({"revisionHistoryLimit": 1}),
    ))
    .await;
    f.wait_complete("web").await;
    for image in ["v2", "v3", "v4"] {
        f.set_image("web", image).await;
        eventually("the new image to be rolled out", || async {
            let d = f.get("web").await;
            let s = d.status.clone().unwrap_or_default();
            let on_new = f.sizes().await.iter().any(|(i, n)| i == image && *n == 1);
            (on_new && util::deployment_complete(&d, &s)).then_some(())
        })
        .await;
    }
    f.wait_sizes("one old ReplicaSet kept", &[("v3", 0), ("v4", 1)])
        .await;
}

#[tokio::test]
async fn recreate_waits_for_old_pods_to_go() {
    let f = Fixture::new("recreate").await;
    let _fake = f.fake(true);
    f.create(&deployment(
        "web",
        2,
        "v1",
        json!({"strategy": {"type": "Recreate"}}),
    ))
    .await;
    f.wait_complete("web").await;
    // A pod of the old ReplicaSet that is slow to go away.
    let old = f.rss().await.remove(0);
    let pods: Api<Pod> = Api::namespaced(f.c.client.clone(), &f.ns);
    let mut labels = old
        .spec
        .clone()
        .and_then(|s| s.template)
        .and_then(|t| t.metadata)
        .and_then(|m| m.labels)
        .unwrap_or_default();
    labels.insert("extra".into(), "x".into());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "lingering", "labels": labels,
            "ownerReferences": [k1s_controllers::workload::controller_ref(&old)]},
        "spec": {"containers": [{"name": "c", "image": "v1"}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("pod");

    f.set_image("web", "v2").await;
    f.wait_sizes("old scaled to zero", &[("v1", 0)]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        f.rss().await.len(),
        1,
        "no new ReplicaSet while an old pod runs"
    );
    pods.delete("lingering", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete pod");
    eventually("the pod to be gone", || async {
        matches!(pods.get("lingering").await, Err(ref e) if is_not_found(e)).then_some(())
    })
    .await;
    f.wait_sizes("new created at full size", &[("v1", 0), ("v2", 2)])
        .await;
    f.wait_complete("web").await;
}

#[tokio::test]
async fn a_stuck_rollout_exceeds_its_progress_deadline() {
    let f = Fixture::new("deadline").await;
    let fake = f.fake(true);
    f.create(&deployment(
        "web",
        1,
        "v1",
        json!({"progressDeadlineSeconds": 2}),
    ))
    .await;
    f.wait_complete("web").await;
    fake.set_auto(false);
    tokio::time::sleep(Duration::from_millis(100)).await;
    f.set_image("web", "v2").await;
    let d = f
        .wait_condition("web", util::PROGRESSING, "ProgressDeadlineExceeded")
        .await;
    let status = d.status.clone().expect("status");
    let cond = util::get_condition(&status, util::PROGRESSING).expect("cond");
    assert_eq!(cond.status, "False");
    let new = f
        .rss()
        .await
        .into_iter()
        .find(|rs| image_of(rs) == "v2")
        .expect("new rs");
    assert_eq!(
        cond.message.as_deref(),
        Some(
            format!(
                "ReplicaSet \"{}\" has timed out progressing.",
                new.name_any()
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn orphans_are_adopted_and_hash_collisions_escaped() {
    let f = Fixture::new("adopt").await;
    let _fake = f.fake(true);
    // Paused, the Deployment creates nothing: read its defaulted template to find the
    // name its ReplicaSet would take, and take that name with another template.
    f.create(&deployment("web", 1, "v1", json!({"paused": true})))
        .await;
    let d = f.get("web").await;
    let template = util::template(&d);
    let hash = util::compute_hash(&template, None);
    let squatter: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": format!("web-{hash}"), "labels": {"app": "other"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "other"}},
            "template": {"metadata": {"labels": {"app": "other"}},
                "spec": {"containers": [{"name": "c", "image": "other"}]}}
        }
    }))
    .expect("rs");
    f.sets
        .create(&PostParams::default(), &squatter)
        .await
        .expect("squatter");
    f.patch("web", json!({"spec": {"paused": false}})).await;
    let d = f.wait_complete("web").await;
    assert_eq!(d.status.and_then(|s| s.collision_count), Some(1));
    let other = util::compute_hash(&template, Some(1));
    let rs = f
        .sets
        .get(&format!("web-{other}"))
        .await
        .expect("renamed rs");
    assert_eq!(util::rs_replicas(&rs), 1);

    // An orphan whose template matches a second Deployment's is adopted as its new
    // ReplicaSet instead of creating another.
    let orphan: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "api-manual", "labels": {"app": "api"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "c", "image": "v1"}]}}
        }
    }))
    .expect("rs");
    f.sets
        .create(&PostParams::default(), &orphan)
        .await
        .expect("orphan");
    let api = f.create(&deployment("api", 2, "v1", json!({}))).await;
    eventually("the orphan to be adopted", || async {
        let rs = f.sets.get("api-manual").await.ok()?;
        let owner = rs.owner_references().first()?.clone();
        (owner.uid == api.uid()?).then_some(())
    })
    .await;
    f.wait_complete("api").await;
    let api_rss: Vec<String> = f
        .rss()
        .await
        .iter()
        .filter(|rs| rs.labels().get("app").map(String::as_str) == Some("api"))
        .map(|rs| rs.name_any())
        .collect();
    assert_eq!(api_rss, ["api-manual"]);
}

#[tokio::test]
async fn min_ready_seconds_is_passed_to_the_replica_set_without_a_rollout() {
    let f = Fixture::new("minready").await;
    let _fake = f.fake(true);
    f.create(&deployment("web", 1, "v1", json!({"minReadySeconds": 5})))
        .await;
    f.wait_complete("web").await;
    let min_ready = |rs: &ReplicaSet| rs.spec.as_ref().and_then(|s| s.min_ready_seconds);
    assert_eq!(
        f.rss().await.iter().map(min_ready).collect::<Vec<_>>(),
        [Some(5)]
    );
    f.patch("web", json!({"spec": {"minReadySeconds": 7}}))
        .await;
    eventually("minReadySeconds to follow", || async {
        let rss = f.rss().await;
        (rss.iter().map(min_ready).collect::<Vec<_>>() == [Some(7)]).then_some(())
    })
    .await;
    let d = f.wait_complete("web").await;
    assert_eq!(
        annotation(&d.metadata, util::REVISION_ANNOTATION).as_deref(),
        Some("1")
    );
}

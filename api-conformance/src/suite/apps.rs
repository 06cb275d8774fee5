//! Workloads on the real controllers, as far as the API decides (no pod has to run):
//! garbage collection of their dependents, collections and status subresources.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use serde_json::{Value, json};

use super::{Test, t};
use crate::ctx::{Ctx, Fail, R, eventually, obj};
use crate::ensure;

fn template(label: &str) -> Value {
    json!({"metadata": {"labels": {"name": label}}, "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}})
}

async fn rc(c: &Ctx, name: &str, replicas: i32) -> Result<Api<ReplicationController>, Fail> {
    let api: Api<ReplicationController> = c.api();
    api.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"name": name}, "template": template(name)}}))?,
    )
    .await?;
    Ok(api)
}

async fn deployment(c: &Ctx, name: &str, replicas: i32) -> Result<Api<Deployment>, Fail> {
    let api: Api<Deployment> = c.api();
    api.create(&PostParams::default(), &obj(json!({"metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"name": name}}, "template": template(name)}}))?).await?;
    Ok(api)
}

/// Waits until `n` pods labelled `name=<label>` exist (not being deleted).
async fn pods(c: &Ctx, label: &str, n: usize) -> R {
    let api: Api<Pod> = c.api();
    let lp = ListParams::default().labels(&format!("name={label}"));
    eventually(60, &format!("{n} pods labelled name={label}"), || async {
        let l = api.list(&lp).await.ok()?;
        (l.items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .count()
            == n)
            .then_some(())
    })
    .await
}

async fn pods_have_no_owner(c: &Ctx, label: &str, n: usize) -> R {
    let api: Api<Pod> = c.api();
    let lp = ListParams::default().labels(&format!("name={label}"));
    eventually(60, "the pods to lose their owner reference", || async {
        let l = api.list(&lp).await.ok()?;
        (l.items.len() == n
            && l.items.iter().all(|p| {
                p.metadata
                    .owner_references
                    .as_ref()
                    .is_none_or(Vec::is_empty)
                    && p.metadata.deletion_timestamp.is_none()
            }))
        .then_some(())
    })
    .await?;
    // Orphans stay: nothing deletes them a moment later either.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let l = api.list(&lp).await?;
    ensure!(
        l.items.len() == n
            && l.items
                .iter()
                .all(|p| p.metadata.deletion_timestamp.is_none()),
        "orphaned pods were deleted"
    );
    Ok(())
}

fn policy(p: PropagationPolicy) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(p),
        ..Default::default()
    }
}

async fn gc_rc_background(c: Ctx) -> R {
    let api = rc(&c, "simpletest.rc", 2).await?;
    pods(&c, "simpletest.rc", 2).await?;
    api.delete("simpletest.rc", &policy(PropagationPolicy::Background))
        .await?;
    pods(&c, "simpletest.rc", 0).await
}

async fn gc_rc_orphan(c: Ctx) -> R {
    let api = rc(&c, "simpletest.rc", 10).await?;
    pods(&c, "simpletest.rc", 10).await?;
    api.delete("simpletest.rc", &policy(PropagationPolicy::Orphan))
        .await?;
    pods_have_no_owner(&c, "simpletest.rc", 10).await
}

async fn gc_rc_foreground(c: Ctx) -> R {
    let api = rc(&c, "simpletest.rc", 10).await?;
    pods(&c, "simpletest.rc", 10).await?;
    // Pods of a pending kubelet-less cluster go at once; the RC must outlive them.
    api.delete("simpletest.rc", &policy(PropagationPolicy::Foreground))
        .await?;
    let pod_api: Api<Pod> = c.api();
    eventually(60, "the RC to go after its pods", || async {
        let rc_gone = matches!(api.get_opt("simpletest.rc").await, Ok(None));
        if !rc_gone {
            return None;
        }
        Some(())
    })
    .await?;
    let left = pod_api
        .list(&ListParams::default().labels("name=simpletest.rc"))
        .await?;
    ensure!(
        left.items
            .iter()
            .all(|p| p.metadata.deletion_timestamp.is_some()),
        "the RC went while {} pods stayed",
        left.items.len()
    );
    Ok(())
}

async fn gc_multiple_owners(c: Ctx) -> R {
    let api = rc(&c, "simpletest-rc-to-be-deleted", 10).await?;
    pods(&c, "simpletest-rc-to-be-deleted", 10).await?;
    let stays = api.create(&PostParams::default(), &obj(json!({"metadata": {"name": "simpletest-rc-to-stay"},
        "spec": {"replicas": 0, "selector": {"name": "simpletest-rc-to-stay"}, "template": template("simpletest-rc-to-stay")}}))?).await?;
    let pod_api: Api<Pod> = c.api();
    let l = pod_api
        .list(&ListParams::default().labels("name=simpletest-rc-to-be-deleted"))
        .await?;
    let half: Vec<String> = l
        .items
        .iter()
        .take(5)
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    for name in &half {
        let p = pod_api.get(name).await?;
        let mut refs = serde_json::to_value(p.metadata.owner_references.unwrap_or_default())?;
        if let Some(a) = refs.as_array_mut() {
            a.push(json!({"apiVersion": "v1", "kind": "ReplicationController", "name": "simpletest-rc-to-stay", "uid": stays.metadata.uid}));
        }
        pod_api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"ownerReferences": refs}})),
            )
            .await?;
    }
    api.delete(
        "simpletest-rc-to-be-deleted",
        &policy(PropagationPolicy::Foreground),
    )
    .await?;
    eventually(60, "the foreground-deleted RC to go", || async {
        matches!(api.get_opt("simpletest-rc-to-be-deleted").await, Ok(None)).then_some(())
    })
    .await?;
    for name in &half {
        let p = pod_api.get_opt(name).await?;
        ensure!(
            p.as_ref()
                .is_some_and(|p| p.metadata.deletion_timestamp.is_none()),
            "pod {name}, also owned by the RC that stays, was deleted"
        );
    }
    Ok(())
}

async fn gc_deployment(c: Ctx, orphan: bool) -> R {
    let api = deployment(&c, "simpletest-deployment", 2).await?;
    let rs_api: Api<ReplicaSet> = c.api();
    eventually(60, "the deployment's ReplicaSet", || async {
        (!rs_api
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty())
        .then_some(())
    })
    .await?;
    pods(&c, "simpletest-deployment", 2).await?;
    if orphan {
        api.delete("simpletest-deployment", &policy(PropagationPolicy::Orphan))
            .await?;
        eventually(60, "the ReplicaSet to lose its owner", || async {
            let l = rs_api.list(&ListParams::default()).await.ok()?;
            (l.items.len() == 1
                && l.items[0]
                    .metadata
                    .owner_references
                    .as_ref()
                    .is_none_or(Vec::is_empty))
            .then_some(())
        })
        .await?;
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let l = rs_api.list(&ListParams::default()).await?;
        ensure!(
            l.items.len() == 1 && l.items[0].metadata.deletion_timestamp.is_none(),
            "the orphaned ReplicaSet was deleted"
        );
        pods(&c, "simpletest-deployment", 2).await
    } else {
        api.delete(
            "simpletest-deployment",
            &policy(PropagationPolicy::Background),
        )
        .await?;
        eventually(60, "the ReplicaSet to go", || async {
            rs_api
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .is_empty()
                .then_some(())
        })
        .await?;
        pods(&c, "simpletest-deployment", 0).await
    }
}

async fn gc_deployment_background(c: Ctx) -> R {
    gc_deployment(c, false).await
}

async fn gc_deployment_orphan(c: Ctx) -> R {
    gc_deployment(c, true).await
}

async fn rs_collection(c: Ctx) -> R {
    let api: Api<ReplicaSet> = c.api();
    api.create(&PostParams::default(), &obj(json!({"metadata": {"name": "test-rs", "labels": {"e2e": "collection"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"name": "test-rs"}}, "template": template("test-rs")}}))?).await?;
    pods(&c, "test-rs", 1).await?;
    let across: Api<ReplicaSet> = c.all();
    let l = across
        .list(&ListParams::default().labels("e2e=collection"))
        .await?;
    ensure!(
        l.items
            .iter()
            .any(|r| r.metadata.namespace.as_deref() == Some(c.ns.as_str())),
        "listing ReplicaSets across namespaces misses it"
    );
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("e2e=collection"),
    )
    .await?;
    eventually(60, "delete-collection to remove the ReplicaSet", || async {
        api.list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await
}

async fn status_subresource<K>(c: &Ctx, api: &Api<K>, name: &str) -> R
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let got = api.get_status(name).await?;
    ensure!(
        got.meta().name.as_deref() == Some(name),
        "get status gave another object"
    );
    let cond = json!({"type": "StatusUpdate", "status": "True", "reason": "E2E", "message": "Set from e2e test", "lastTransitionTime": "2024-01-01T00:00:00Z"});
    // The controller writes the status too: a conflict means read again and retry.
    let mut attempt = 0;
    let updated = loop {
        let mut v = serde_json::to_value(api.get_status(name).await?)?;
        v["status"]["conditions"] = json!([cond]);
        let v: K = serde_json::from_value(v)?;
        match api.replace_status(name, &PostParams::default(), &v).await {
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < 5 => attempt += 1,
            other => break other?,
        }
    };
    let uv = serde_json::to_value(&updated)?;
    ensure!(
        uv["status"]["conditions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["type"] == "StatusUpdate")),
        "the updated status lacks its condition: {}",
        uv["status"]
    );
    let patched = api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": {"conditions": [{"type": "StatusPatched", "status": "True", "reason": "E2E", "message": "patched", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}))).await?;
    let pv = serde_json::to_value(&patched)?;
    ensure!(
        pv["status"]["conditions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["type"] == "StatusPatched")),
        "the patched status lacks its condition: {}",
        pv["status"]
    );
    let _ = c;
    Ok(())
}

async fn rs_status(c: Ctx) -> R {
    let api: Api<ReplicaSet> = c.api();
    api.create(&PostParams::default(), &obj(json!({"metadata": {"name": "test-rs"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"name": "test-rs"}}, "template": template("test-rs")}}))?).await?;
    status_subresource(&c, &api, "test-rs").await
}

async fn deployment_status(c: Ctx) -> R {
    let api = deployment(&c, "test-deployment", 1).await?;
    status_subresource(&c, &api, "test-deployment").await
}

fn labelled(kind: &str, name: &str, label: &str, spec: Value) -> Value {
    let api_version = if kind == "Job" { "batch/v1" } else { "apps/v1" };
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "labels": {"e2e": label}}, "spec": spec})
}

fn apps_spec(name: &str) -> Value {
    json!({"selector": {"matchLabels": {"name": name}}, "template": template(name)})
}

/// Creates `manifest`, lists it across namespaces by its label, patches it, and deletes the
/// collection by that label.
async fn list_patch_delete_collection(c: &Ctx, plural: &str, manifest: Value) -> R {
    let label = manifest["metadata"]["labels"]["e2e"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = manifest["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    c.k_stdin(&["create", "-f", "-"], Some(&manifest.to_string()))
        .await?;
    let listed = c
        .k(&[
            "get",
            plural,
            "-A",
            "-l",
            &format!("e2e={label}"),
            "-o",
            "name",
        ])
        .await?;
    ensure!(
        listed.lines().count() == 1,
        "listing {plural} by label across namespaces: {listed:?}"
    );
    c.k(&[
        "patch",
        plural,
        &name,
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"patched":"true"}}}"#,
    ])
    .await?;
    let got = c.k_json(&["get", plural, &name, "-o", "json"]).await?;
    ensure!(
        got["metadata"]["labels"]["patched"] == "true",
        "the patch did not stick"
    );
    let path = match plural {
        "jobs" => format!(
            "/apis/batch/v1/namespaces/{}/{plural}?labelSelector=e2e%3D{label}",
            c.ns
        ),
        _ => format!(
            "/apis/apps/v1/namespaces/{}/{plural}?labelSelector=e2e%3D{label}",
            c.ns
        ),
    };
    let (code, v) = c.raw("DELETE", &path, None).await;
    ensure!(code == 200, "delete-collection of {plural}: {code} {v}");
    eventually(60, &format!("the {plural} to go"), || async {
        c.k(&["get", plural, "-l", &format!("e2e={label}"), "-o", "name"])
            .await
            .ok()
            .filter(|o| o.trim().is_empty())
            .map(|_| ())
    })
    .await
}

async fn daemonset_collection(c: Ctx) -> R {
    list_patch_delete_collection(
        &c,
        "daemonsets",
        labelled(
            "DaemonSet",
            "daemon-set",
            "ds-collection",
            apps_spec("daemon-set"),
        ),
    )
    .await
}

async fn statefulset_collection(c: Ctx) -> R {
    let mut spec = apps_spec("ss");
    spec["replicas"] = json!(1);
    spec["serviceName"] = json!("test-ss");
    list_patch_delete_collection(
        &c,
        "statefulsets",
        labelled("StatefulSet", "test-ss", "ss-collection", spec),
    )
    .await
}

async fn job_lifecycle(c: Ctx) -> R {
    let spec = json!({"suspend": true, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}});
    let job = labelled("Job", "e2e-job", "job-lifecycle", spec);
    c.k_stdin(&["create", "-f", "-"], Some(&job.to_string()))
        .await?;
    // Replace: add an annotation to what was read; the Job controller writes the status
    // meanwhile, so a conflict means read again (upstream's updateJobWithRetries).
    let mut attempt = 0;
    loop {
        let mut got = c.k_json(&["get", "job", "e2e-job", "-o", "json"]).await?;
        got["metadata"]["annotations"]["updated"] = json!("true");
        let o = c
            .kubectl_with(&["replace", "-f", "-"], Some(&got.to_string()))
            .await;
        if o.code == 0 {
            break;
        }
        attempt += 1;
        if !o.stderr.contains("Conflict") || attempt == 5 {
            return Err(Fail(format!(
                "kubectl replace of the job: {}",
                o.stderr.trim()
            )));
        }
    }
    let after = c.k_json(&["get", "job", "e2e-job", "-o", "json"]).await?;
    ensure!(
        after["metadata"]["annotations"]["updated"] == "true",
        "the replaced job lacks its annotation"
    );
    c.k(&["delete", "job", "e2e-job", "--wait=false"]).await?;
    eventually(60, "the job to go", || async {
        c.k(&["get", "jobs", "-o", "name"])
            .await
            .ok()
            .filter(|o| o.trim().is_empty())
            .map(|_| ())
    })
    .await?;
    let spec = json!({"suspend": true, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}});
    list_patch_delete_collection(
        &c,
        "jobs",
        labelled("Job", "e2e-job2", "job-lifecycle", spec),
    )
    .await
}

async fn job_status(c: Ctx) -> R {
    let spec = json!({"parallelism": 1, "completions": 1, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}});
    c.k_stdin(
        &["create", "-f", "-"],
        Some(&labelled("Job", "e2e-job-status", "job-status", spec).to_string()),
    )
    .await?;
    let path = format!(
        "/apis/batch/v1/namespaces/{}/jobs/e2e-job-status/status",
        c.ns
    );
    let now = "2024-01-01T00:00:00Z";
    let patch = json!({"metadata": {"annotations": {"patchedstatus": "true"}}, "status": {"startTime": now}});
    let (code, v) = c
        .raw_typed(
            "PATCH",
            &path,
            "application/merge-patch+json",
            &patch.to_string(),
        )
        .await;
    ensure!(code == 200, "patching the job's status: {code} {v}");
    ensure!(
        v["metadata"]["annotations"]["patchedstatus"] == "true",
        "the status patch's annotation is missing: {}",
        v["metadata"]
    );
    // The Job controller writes the status too: upstream's test retries a conflicting update.
    let mut attempt = 0;
    loop {
        let (code, mut cur) = c.raw("GET", &path, None).await;
        ensure!(code == 200, "GET the job's status: {code}");
        cur["status"]["startTime"] = json!("2024-01-02T00:00:00Z");
        let (code, v) = c.raw("PUT", &path, Some(&cur)).await;
        attempt += 1;
        if code == 409 && attempt < 5 {
            continue;
        }
        ensure!(
            code == 200 && v["status"]["startTime"] == "2024-01-02T00:00:00Z",
            "updating the job's status: {code} {}",
            v["status"]
        );
        return Ok(());
    }
}

async fn daemonset_status(c: Ctx) -> R {
    c.k_stdin(
        &["create", "-f", "-"],
        Some(
            &labelled(
                "DaemonSet",
                "daemon-set",
                "ds-status",
                apps_spec("daemon-set"),
            )
            .to_string(),
        ),
    )
    .await?;
    let api: Api<k8s_openapi::api::apps::v1::DaemonSet> = c.api();
    status_subresource(&c, &api, "daemon-set").await
}

async fn statefulset_status(c: Ctx) -> R {
    let mut spec = apps_spec("ss");
    spec["replicas"] = json!(1);
    spec["serviceName"] = json!("test-ss");
    c.k_stdin(
        &["create", "-f", "-"],
        Some(&labelled("StatefulSet", "test-ss", "ss-status", spec).to_string()),
    )
    .await?;
    let api: Api<k8s_openapi::api::apps::v1::StatefulSet> = c.api();
    status_subresource(&c, &api, "test-ss").await
}

async fn pdb_status(c: Ctx) -> R {
    c.k_stdin(&["create", "-f", "-"], Some(&json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "foo"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"foo": "bar"}}}}).to_string())).await?;
    let api: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> = c.api();
    // The disruption controller writes its status first; a test write must not race it.
    eventually(30, "the disruption controller's first status", || async {
        let p = api.get("foo").await.ok()?;
        (p.status?.observed_generation? >= 1).then_some(())
    })
    .await?;
    status_subresource(&c, &api, "foo").await
}

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    vec![
        t!(
            "Garbage Collector, delete replication controller, propagation policy background",
            "[sig-api-machinery] Garbage collector should delete pods created by rc when not orphaning [Conformance]",
            gc_rc_background
        ),
        t!(
            "Garbage Collector, delete replication controller, propagation policy orphan",
            "[sig-api-machinery] Garbage collector should orphan pods created by rc if delete options say so [Conformance] [Serial]",
            gc_rc_orphan
        ),
        t!(
            "Garbage Collector, delete replication controller, after owned pods",
            "[sig-api-machinery] Garbage collector should keep the rc around until all its pods are deleted if the deleteOptions says so [Conformance] [Serial]",
            gc_rc_foreground
        ),
        t!(
            "Garbage Collector, multiple owners",
            "[sig-api-machinery] Garbage collector should not delete dependents that have both valid owner and owner that's waiting for dependents to be deleted [Conformance] [Serial]",
            gc_multiple_owners
        ),
        t!(
            "Garbage Collector, delete deployment,  propagation policy background",
            "[sig-api-machinery] Garbage collector should delete RS created by deployment when not orphaning [Conformance]",
            gc_deployment_background
        ),
        t!(
            "Garbage Collector, delete deployment, propagation policy orphan",
            "[sig-api-machinery] Garbage collector should orphan RS created by deployment when deleteOptions.PropagationPolicy is Orphan [Conformance]",
            gc_deployment_orphan
        ),
        t!(
            "ReplicaSet, list and delete a collection of ReplicaSets",
            "[sig-apps] ReplicaSet should list and delete a collection of ReplicaSets [Conformance]",
            rs_collection
        ),
        t!(
            "ReplicaSet, status sub-resource",
            "[sig-apps] ReplicaSet should validate Replicaset Status endpoints [Conformance]",
            rs_status
        ),
        t!(
            "Deployment, status sub-resource",
            "[sig-apps] Deployment should validate Deployment Status endpoints [Conformance]",
            deployment_status
        ),
        t!(
            "DaemonSet, list and delete a collection of DaemonSets",
            "[sig-apps] Daemon set should list and delete a collection of DaemonSets [Conformance] [Serial]",
            daemonset_collection
        ),
        t!(
            "DaemonSet, status sub-resource",
            "[sig-apps] Daemon set should verify changes to a daemon set status [Conformance] [Serial]",
            daemonset_status
        ),
        t!(
            "StatefulSet, list, patch and delete a collection of StatefulSets",
            "[sig-apps] StatefulSet Basic StatefulSet functionality [StatefulSetBasic] should list, patch and delete a collection of StatefulSets [Conformance]",
            statefulset_collection
        ),
        t!(
            "StatefulSet, status sub-resource",
            "[sig-apps] StatefulSet Basic StatefulSet functionality [StatefulSetBasic] should validate Statefulset Status endpoints [Conformance]",
            statefulset_status
        ),
        t!(
            "Jobs, manage lifecycle",
            "[sig-apps] Job should manage the lifecycle of a job [Conformance]",
            job_lifecycle
        ),
        t!(
            "Jobs, apply changes to status",
            "[sig-apps] Job should apply changes to a job status [Conformance]",
            job_status
        ),
        t!(
            "PodDisruptionBudget: update and patch status",
            "[sig-apps] DisruptionController should update/patch PodDisruptionBudget status [Conformance]",
            pdb_status
        ),
    ]
}

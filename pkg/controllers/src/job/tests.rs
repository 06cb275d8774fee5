//! The Job, CronJob and TTL-after-finished controllers against a real in-memory API
//! server, the test playing the kubelet by patching pod status.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k1s_apiserver::test_util::TestApiServer;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::{Clock, TRACKING_FINALIZER, finished_condition};
use crate::Shutdown;

const WAIT: Duration = Duration::from_secs(30);

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
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A clock `offset` ahead of the wall clock.
fn shifted(offset: SignedDuration) -> Clock {
    Arc::new(move || {
        Timestamp::now()
            .checked_add(offset)
            .unwrap_or_else(|_| Timestamp::now())
    })
}

struct Env {
    _server: TestApiServer,
    client: kube::Client,
    _stop: tokio::sync::watch::Sender<bool>,
}

async fn env(clock: Clock, with_cronjobs: bool) -> Env {
    let server = TestApiServer::new().await;
    let client = server.client();
    let (stop, signal) = Shutdown::new();
    tokio::spawn(super::run(client.clone(), clock.clone(), signal.clone()));
    if with_cronjobs {
        tokio::spawn(crate::cronjob::run(
            client.clone(),
            clock.clone(),
            signal.clone(),
        ));
        tokio::spawn(crate::ttlafterfinished::run(client.clone(), clock, signal));
    }
    Env {
        _server: server,
        client,
        _stop: stop,
    }
}

fn job(name: &str, spec: Value) -> Job {
    let mut spec = spec;
    spec["template"] = json!({
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}
    });
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("job")
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Plays the kubelet once: finishes every live pod of the Job in `to` phase; returns
/// the pods it finished.
async fn finish_pods(pods: &Api<Pod>, job: &str, to: &str, exit: i32) -> Vec<Pod> {
    let lp = ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}"));
    let mut done = Vec::new();
    for p in pods.list(&lp).await.expect("list pods").items {
        if matches!(phase(&p), "Succeeded" | "Failed") || p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let status = json!({"status": {
            "phase": to,
            "containerStatuses": [{
                "name": "main", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": exit, "finishedAt": Timestamp::now().to_string()}}
            }]
        }});
        pods.patch_status(
            &p.name_any(),
            &PatchParams::default(),
            &Patch::Merge(status),
        )
        .await
        .expect("patch pod status");
        done.push(p);
    }
    done
}

fn condition_types(j: &Job) -> Vec<String> {
    j.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .filter(|c| c.status == "True")
        .map(|c| c.type_.clone())
        .collect()
}

#[tokio::test]
async fn a_job_of_three_completions_two_at_a_time_completes() {
    let e = env(super::system_clock(), false).await;
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job("pi", json!({"completions": 3, "parallelism": 2})),
    )
    .await
    .expect("create job");
    let finished = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = eventually("the job to complete", || {
        let (jobs, pods, finished) = (jobs.clone(), pods.clone(), finished.clone());
        async move {
            let live = pods
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .filter(|p| !matches!(phase(p), "Succeeded" | "Failed"))
                .count();
            assert!(live <= 2, "parallelism 2, {live} pods running");
            finished.fetch_add(
                finish_pods(&pods, "pi", "Succeeded", 0).await.len(),
                std::sync::atomic::Ordering::SeqCst,
            );
            let j = jobs.get("pi").await.ok()?;
            finished_condition(&j).is_some().then_some(j)
        }
    })
    .await;
    let status = done.status.clone().expect("status");
    assert_eq!(condition_types(&done), ["SuccessCriteriaMet", "Complete"]);
    let complete = finished_condition(&done).expect("complete");
    assert_eq!(complete.reason.as_deref(), Some("CompletionsReached"));
    assert_eq!(status.succeeded, Some(3));
    assert!(status.completion_time.is_some() && status.start_time.is_some());
    assert_eq!(
        finished.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "exactly three pods were made"
    );
    let all = pods.list(&ListParams::default()).await.expect("pods").items;
    assert_eq!(all.len(), 3);
    for p in &all {
        assert!(
            !p.finalizers().iter().any(|f| f == TRACKING_FINALIZER),
            "finalizer kept on {}",
            p.name_any()
        );
        let labels = p.labels();
        assert_eq!(
            labels
                .get("batch.kubernetes.io/job-name")
                .map(String::as_str),
            Some("pi")
        );
        assert_eq!(labels.get("job-name").map(String::as_str), Some("pi"));
        assert!(labels.contains_key("batch.kubernetes.io/controller-uid"));
        assert!(p.name_any().starts_with("pi-"));
    }
}

#[tokio::test]
async fn a_failing_job_reaches_its_backoff_limit() {
    // An hour ahead, so the pods' failures are long past and back-off never delays.
    let e = env(shifted(SignedDuration::from_hours(1)), false).await;
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job("fail", json!({"backoffLimit": 1})),
    )
    .await
    .expect("create job");
    let failed = eventually("the job to fail", || {
        let (jobs, pods) = (jobs.clone(), pods.clone());
        async move {
            finish_pods(&pods, "fail", "Failed", 1).await;
            let j = jobs.get("fail").await.ok()?;
            finished_condition(&j).is_some().then_some(j)
        }
    })
    .await;
    assert_eq!(condition_types(&failed), ["FailureTarget", "Failed"]);
    let cond = finished_condition(&failed).expect("failed");
    assert_eq!(cond.type_, "Failed");
    assert_eq!(cond.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(
        cond.message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    assert_eq!(failed.status.as_ref().and_then(|s| s.failed), Some(2));
    assert_eq!(
        pods.list(&ListParams::default())
            .await
            .expect("pods")
            .items
            .len(),
        2
    );
}

#[tokio::test]
async fn failed_pods_back_off_before_being_replaced() {
    let e = env(super::system_clock(), false).await;
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job("slow", json!({"backoffLimit": 3})),
    )
    .await
    .expect("create job");
    eventually("a pod that fails", || {
        let pods = pods.clone();
        async move { (!finish_pods(&pods, "slow", "Failed", 1).await.is_empty()).then_some(()) }
    })
    .await;
    eventually("the failure counted", || {
        let jobs = jobs.clone();
        async move { (jobs.get("slow").await.ok()?.status?.failed == Some(1)).then_some(()) }
    })
    .await;
    // The first back-off is 10 s: no replacement meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        pods.list(&ListParams::default())
            .await
            .expect("pods")
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn an_indexed_job_completes_every_index() {
    let e = env(super::system_clock(), false).await;
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    let spec = json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"});
    jobs.create(&PostParams::default(), &job("idx", spec))
        .await
        .expect("create job");
    let all = eventually("three indexed pods", || {
        let pods = pods.clone();
        async move {
            let items = pods.list(&ListParams::default()).await.ok()?.items;
            (items.len() == 3).then_some(items)
        }
    })
    .await;
    let mut seen: Vec<String> = all
        .iter()
        .map(|p| {
            let ix = p.annotations()[super::indexes::COMPLETION_INDEX].clone();
            assert_eq!(p.labels()[super::indexes::COMPLETION_INDEX], ix);
            let hostname = p.spec.as_ref().and_then(|s| s.hostname.clone());
            assert_eq!(hostname, Some(format!("idx-{ix}")));
            assert!(p.name_any().starts_with(&format!("idx-{ix}-")));
            ix
        })
        .collect();
    seen.sort();
    assert_eq!(seen, ["0", "1", "2"]);
    let done = eventually("the indexed job to complete", || {
        let (jobs, pods) = (jobs.clone(), pods.clone());
        async move {
            finish_pods(&pods, "idx", "Succeeded", 0).await;
            let j = jobs.get("idx").await.ok()?;
            finished_condition(&j).is_some().then_some(j)
        }
    })
    .await;
    let status = done.status.expect("status");
    assert_eq!(status.completed_indexes.as_deref(), Some("0-2"));
    assert_eq!(status.succeeded, Some(3));
}

#[tokio::test]
async fn a_pod_failure_policy_fails_the_job_at_once() {
    let e = env(super::system_clock(), false).await;
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    let spec = json!({"backoffLimit": 6, "podFailurePolicy": {"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}
    ]}});
    jobs.create(&PostParams::default(), &job("pfp", spec))
        .await
        .expect("create job");
    let failed = eventually("the job to fail by policy", || {
        let (jobs, pods) = (jobs.clone(), pods.clone());
        async move {
            finish_pods(&pods, "pfp", "Failed", 42).await;
            let j = jobs.get("pfp").await.ok()?;
            finished_condition(&j).is_some().then_some(j)
        }
    })
    .await;
    let cond = finished_condition(&failed).expect("failed");
    assert_eq!(
        (cond.type_.as_str(), cond.reason.as_deref()),
        ("Failed", Some("PodFailurePolicy"))
    );
    assert!(
        cond.message.as_deref().is_some_and(
            |m| m.contains("failed with exit code 42 matching FailJob rule at index 0")
        )
    );
}

#[tokio::test]
async fn suspended_jobs_make_no_pods_until_resumed() {
    let e = env(super::system_clock(), false).await;
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job("sus", json!({"suspend": true})),
    )
    .await
    .expect("create job");
    let j = eventually("the Suspended condition", || {
        let jobs = jobs.clone();
        async move {
            let j = jobs.get("sus").await.ok()?;
            condition_types(&j)
                .contains(&"Suspended".to_string())
                .then_some(j)
        }
    })
    .await;
    assert!(
        j.status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .is_none()
    );
    assert!(
        pods.list(&ListParams::default())
            .await
            .expect("pods")
            .items
            .is_empty()
    );
    jobs.patch(
        "sus",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await
    .expect("resume");
    eventually("a pod once resumed", || {
        let pods = pods.clone();
        async move {
            (!pods
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .is_empty())
            .then_some(())
        }
    })
    .await;
    let j = jobs.get("sus").await.expect("job");
    let c = j
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .find(|c| c.type_ == "Suspended");
    assert_eq!(
        c.map(|c| (c.status.as_str(), c.reason.as_deref())),
        Some(("False", Some("JobResumed")))
    );
}

#[tokio::test]
async fn a_cronjob_every_minute_creates_a_job_and_finished_jobs_expire() {
    // Three seconds before the next whole minute, so the schedule fires soon.
    let now = Timestamp::now().as_second();
    let next_minute = (now / 60 + 1) * 60;
    let offset = SignedDuration::from_secs(next_minute - now - 3);
    let e = env(shifted(offset), true).await;
    let cjs: Api<CronJob> = Api::namespaced(e.client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    let cj: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "hello"},
        "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {
            "ttlSecondsAfterFinished": 0,
            "template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "main", "image": "busybox"}]}}
        }}}
    }))
    .expect("cronjob");
    cjs.create(&PostParams::default(), &cj)
        .await
        .expect("create cronjob");
    let j = eventually("a scheduled job", || {
        let jobs = jobs.clone();
        async move {
            jobs.list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .next()
        }
    })
    .await;
    let minutes = j
        .name_any()
        .trim_start_matches("hello-")
        .parse::<i64>()
        .expect("minutes");
    assert_eq!(minutes, next_minute / 60);
    let ts = j.annotations()[crate::cronjob::SCHEDULED_TIMESTAMP].clone();
    assert_eq!(
        ts.parse::<Timestamp>().expect("rfc3339").as_second(),
        next_minute
    );
    eventually("status.active and lastScheduleTime", || {
        let cjs = cjs.clone();
        async move {
            let s = cjs.get("hello").await.ok()?.status?;
            (s.active.map_or(0, |a| a.len()) == 1 && s.last_schedule_time.is_some()).then_some(())
        }
    })
    .await;
    // Run it to completion; the CronJob notices, and the TTL of 0 deletes the Job.
    let name = j.name_any();
    eventually("the job finished, seen and expired", || {
        let (jobs, cjs, pods, name) = (jobs.clone(), cjs.clone(), pods.clone(), name.clone());
        async move {
            finish_pods(&pods, &name, "Succeeded", 0).await;
            let s = cjs.get("hello").await.ok()?.status?;
            let gone = match jobs.get_opt(&name).await.ok()? {
                None => true,
                Some(j) => j.metadata.deletion_timestamp.is_some(),
            };
            (s.active.is_none_or(|a| a.is_empty()) && gone).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn cronjob_history_beyond_the_limit_is_pruned() {
    let e = env(super::system_clock(), true).await;
    let cjs: Api<CronJob> = Api::namespaced(e.client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let cj: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "hist"},
        "spec": {"schedule": "0 0 1 1 *", "suspend": true, "successfulJobsHistoryLimit": 1,
                 "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox"}]}}}}}
    }))
    .expect("cronjob");
    let cj = cjs
        .create(&PostParams::default(), &cj)
        .await
        .expect("create cronjob");
    for (i, start) in [
        "2026-01-01T00:00:00Z",
        "2026-01-02T00:00:00Z",
        "2026-01-03T00:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        // Suspended Jobs, so the Job controller (running too) leaves them alone.
        let mut j = job(&format!("hist-{i}"), json!({"suspend": true}));
        j.metadata.owner_references = Some(vec![crate::workload::controller_ref(&cj)]);
        jobs.create(&PostParams::default(), &j)
            .await
            .expect("create job");
        let status = json!({"status": {
            "startTime": start, "completionTime": start, "succeeded": 1,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": start},
                {"type": "Complete", "status": "True", "lastTransitionTime": start}
            ]
        }});
        jobs.patch_status(
            &format!("hist-{i}"),
            &PatchParams::default(),
            &Patch::Merge(status),
        )
        .await
        .expect("finish job");
    }
    eventually("the two oldest jobs pruned", || {
        let jobs = jobs.clone();
        async move {
            let names: Vec<String> = jobs
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .filter(|j| j.metadata.deletion_timestamp.is_none())
                .map(|j| j.name_any())
                .collect();
            (names == ["hist-2"]).then_some(())
        }
    })
    .await;
    let s = eventually("lastSuccessfulTime", || {
        let cjs = cjs.clone();
        async move { cjs.get("hist").await.ok()?.status?.last_successful_time }
    })
    .await;
    assert_eq!(s.0.to_string(), "2026-01-03T00:00:00Z");
}

#[tokio::test]
async fn backoff_limit_per_index_fails_only_the_index() {
    let e = env(shifted(SignedDuration::from_hours(1)), false).await;
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    let spec = json!({"completions": 2, "parallelism": 2, "completionMode": "Indexed", "backoffLimitPerIndex": 1});
    jobs.create(&PostParams::default(), &job("per", spec))
        .await
        .expect("create job");
    let done = eventually("the job to fail its index", || {
        let (jobs, pods) = (jobs.clone(), pods.clone());
        async move {
            for p in pods.list(&ListParams::default()).await.ok()?.items {
                if matches!(phase(&p), "Succeeded" | "Failed") {
                    continue;
                }
                let to = if p.annotations()[super::indexes::COMPLETION_INDEX] == "0" {
                    "Failed"
                } else {
                    "Succeeded"
                };
                let status = json!({"status": {"phase": to}});
                pods.patch_status(
                    &p.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(status),
                )
                .await
                .ok()?;
            }
            let j = jobs.get("per").await.ok()?;
            finished_condition(&j).is_some().then_some(j)
        }
    })
    .await;
    let cond = finished_condition(&done).expect("finished");
    assert_eq!(
        (cond.type_.as_str(), cond.reason.as_deref()),
        ("Failed", Some("FailedIndexes"))
    );
    let status = done.status.clone().expect("status");
    assert_eq!(status.failed_indexes.as_deref(), Some("0"));
    assert_eq!(status.completed_indexes.as_deref(), Some("1"));
    assert_eq!(status.failed, Some(2));
    let mut counts: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .expect("pods")
        .items
        .iter()
        .filter(|p| p.annotations()[super::indexes::COMPLETION_INDEX] == "0")
        .map(|p| p.annotations()[super::reconcile::INDEX_FAILURE_COUNT].clone())
        .collect();
    counts.sort();
    assert_eq!(counts, ["0", "1"]);
}

#[tokio::test]
async fn pods_of_a_deleted_job_lose_their_tracking_finalizer() {
    let e = env(super::system_clock(), false).await;
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("gone", json!({})))
        .await
        .expect("create job");
    let pod = eventually("the job's pod", || {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .next()
        }
    })
    .await;
    assert!(pod.finalizers().iter().any(|f| f == TRACKING_FINALIZER));
    jobs.delete("gone", &Default::default())
        .await
        .expect("delete job");
    eventually("the finalizer released", || {
        let pods = pods.clone();
        let name = pod.name_any();
        async move {
            let p = pods.get(&name).await.ok()?;
            (!p.finalizers().iter().any(|f| f == TRACKING_FINALIZER)).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn a_restarted_controller_counts_each_pod_once() {
    let server = TestApiServer::new().await;
    let client = server.client();
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let (stop, signal) = Shutdown::new();
    let first = tokio::spawn(super::run(client.clone(), super::system_clock(), signal));
    jobs.create(
        &PostParams::default(),
        &job("restart", json!({"completions": 4, "parallelism": 2})),
    )
    .await
    .expect("create job");
    eventually("two pods", || {
        let pods = pods.clone();
        async move { (pods.list(&ListParams::default()).await.ok()?.items.len() == 2).then_some(()) }
    })
    .await;
    // The controller goes away; the pods finish meanwhile; a new one takes over.
    let _ = stop.send(true);
    let _ = first.await;
    finish_pods(&pods, "restart", "Succeeded", 0).await;
    let (_stop2, signal2) = Shutdown::new();
    tokio::spawn(super::run(client.clone(), super::system_clock(), signal2));
    let done = eventually("the job to complete", || {
        let (jobs, pods) = (jobs.clone(), pods.clone());
        async move {
            finish_pods(&pods, "restart", "Succeeded", 0).await;
            let j = jobs.get("restart").await.ok()?;
            finished_condition(&j).is_some().then_some(j)
        }
    })
    .await;
    assert_eq!(done.status.as_ref().and_then(|s| s.succeeded), Some(4));
    assert_eq!(
        pods.list(&ListParams::default())
            .await
            .expect("pods")
            .items
            .len(),
        4
    );
}

/// A clock the test moves: first two seconds before a whole minute, then on as told.
fn movable_clock() -> (Clock, Arc<std::sync::atomic::AtomicI64>) {
    use std::sync::atomic::{AtomicI64, Ordering};
    let now = Timestamp::now().as_second();
    let offset = Arc::new(AtomicI64::new((now / 60 + 1) * 60 - now - 2));
    let o = offset.clone();
    let clock: Clock = Arc::new(move || {
        let secs = o.load(Ordering::SeqCst);
        Timestamp::now()
            .checked_add(SignedDuration::from_secs(secs))
            .unwrap_or_else(|_| Timestamp::now())
    });
    (clock, offset)
}

#[tokio::test]
async fn concurrency_policy_replace_replaces_the_running_job() {
    use std::sync::atomic::Ordering;
    let (clock, offset) = movable_clock();
    let e = env(clock, true).await;
    let cjs: Api<CronJob> = Api::namespaced(e.client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let cj: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "swap"},
        "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": "Replace",
                 "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox"}]}}}}}
    }))
    .expect("cronjob");
    cjs.create(&PostParams::default(), &cj)
        .await
        .expect("create cronjob");
    let first = eventually("the first job", || {
        let jobs = jobs.clone();
        async move {
            jobs.list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .next()
        }
    })
    .await;
    offset.fetch_add(60, Ordering::SeqCst);
    let poke = json!({"metadata": {"annotations": {"poke": "1"}}});
    cjs.patch("swap", &PatchParams::default(), &Patch::Merge(poke))
        .await
        .expect("poke");
    let second = eventually("the first job replaced", || {
        let (jobs, cjs, first) = (jobs.clone(), cjs.clone(), first.name_any());
        async move {
            let live: Vec<String> = jobs
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .filter(|j| j.metadata.deletion_timestamp.is_none())
                .map(|j| j.name_any())
                .collect();
            let active = cjs.get("swap").await.ok()?.status?.active?;
            let names: Vec<String> = active.into_iter().filter_map(|r| r.name).collect();
            (live.len() == 1 && live[0] != first && names == live).then(|| live[0].clone())
        }
    })
    .await;
    let minutes = |n: &str| {
        n.trim_start_matches("swap-")
            .parse::<i64>()
            .expect("minutes")
    };
    assert_eq!(minutes(&second), minutes(&first.name_any()) + 1);
}

#[tokio::test]
async fn concurrency_policy_forbid_skips_runs_while_one_is_active() {
    use k8s_openapi::api::events::v1::Event as EventV1;
    use std::sync::atomic::Ordering;
    let (clock, offset) = movable_clock();
    let e = env(clock, true).await;
    let cjs: Api<CronJob> = Api::namespaced(e.client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let events: Api<EventV1> = Api::namespaced(e.client.clone(), "default");
    let cj: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "solo"},
        "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": "Forbid",
                 "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox"}]}}}}}
    }))
    .expect("cronjob");
    cjs.create(&PostParams::default(), &cj)
        .await
        .expect("create cronjob");
    eventually("the first job", || {
        let jobs = jobs.clone();
        async move {
            (!jobs
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .is_empty())
            .then_some(())
        }
    })
    .await;
    // A minute later the first Job still runs (nothing finishes it): no second one.
    offset.fetch_add(60, Ordering::SeqCst);
    let poke = json!({"metadata": {"annotations": {"poke": "1"}}});
    cjs.patch("solo", &PatchParams::default(), &Patch::Merge(poke))
        .await
        .expect("poke");
    eventually("a JobAlreadyActive event", || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?.items;
            list.iter()
                .any(|ev| ev.reason.as_deref() == Some("JobAlreadyActive"))
                .then_some(())
        }
    })
    .await;
    let all = jobs.list(&ListParams::default()).await.expect("jobs").items;
    assert_eq!(
        all.len(),
        1,
        "{:?}",
        all.iter().map(|j| j.name_any()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_job_adopts_orphans_its_manual_selector_matches() {
    let e = env(super::system_clock(), false).await;
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "stray", "labels": {"app": "adopt"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &orphan)
        .await
        .expect("create pod");
    let j: Job = serde_json::from_value(json!({
        "metadata": {"name": "adopter"},
        "spec": {
            "manualSelector": true,
            "selector": {"matchLabels": {"app": "adopt"}},
            "template": {
                "metadata": {"labels": {"app": "adopt"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}
            }
        }
    }))
    .expect("job");
    let j = jobs
        .create(&PostParams::default(), &j)
        .await
        .expect("create job");
    let uid = j.metadata.uid.clone().expect("uid");
    eventually("the orphan adopted and tracked", || {
        let (pods, uid) = (pods.clone(), uid.clone());
        async move {
            let p = pods.get("stray").await.ok()?;
            let owned = crate::workload::is_controlled_by(&p.metadata, &uid);
            (owned && p.finalizers().iter().any(|f| f == TRACKING_FINALIZER)).then_some(())
        }
    })
    .await;
    let status = json!({"status": {"phase": "Succeeded"}});
    pods.patch_status("stray", &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("finish pod");
    let done = eventually("the job to complete", || {
        let jobs = jobs.clone();
        async move {
            let j = jobs.get("adopter").await.ok()?;
            finished_condition(&j).is_some().then_some(j)
        }
    })
    .await;
    assert_eq!(done.status.and_then(|s| s.succeeded), Some(1));
    assert_eq!(
        pods.list(&ListParams::default())
            .await
            .expect("pods")
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn a_job_past_its_active_deadline_fails_and_stops_its_pods() {
    let e = env(super::system_clock(), false).await;
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job(
            "late",
            json!({"activeDeadlineSeconds": 1, "parallelism": 2, "completions": 4}),
        ),
    )
    .await
    .expect("create job");
    let failed = eventually("the job to pass its deadline", || {
        let jobs = jobs.clone();
        async move {
            let j = jobs.get("late").await.ok()?;
            finished_condition(&j).is_some().then_some(j)
        }
    })
    .await;
    let cond = finished_condition(&failed).expect("failed");
    assert_eq!(
        (cond.type_.as_str(), cond.reason.as_deref()),
        ("Failed", Some("DeadlineExceeded"))
    );
    assert_eq!(
        cond.message.as_deref(),
        Some("Job was active longer than specified deadline")
    );
    let left: Vec<Pod> = pods.list(&ListParams::default()).await.expect("pods").items;
    assert!(
        left.iter()
            .all(|p| p.metadata.deletion_timestamp.is_some() || matches!(phase(p), "Failed")),
        "pods still running: {:?}",
        left.iter().map(|p| p.name_any()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_success_policy_completes_the_job_early() {
    let e = env(super::system_clock(), false).await;
    let jobs: Api<Job> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    let spec = json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed",
                      "successPolicy": {"rules": [{"succeededIndexes": "0"}]}});
    jobs.create(&PostParams::default(), &job("leader", spec))
        .await
        .expect("create job");
    let done = eventually("the job to complete by policy", || {
        let (jobs, pods) = (jobs.clone(), pods.clone());
        async move {
            for p in pods.list(&ListParams::default()).await.ok()?.items {
                if p.annotations()[super::indexes::COMPLETION_INDEX] == "0"
                    && !matches!(phase(&p), "Succeeded" | "Failed")
                    && p.metadata.deletion_timestamp.is_none()
                {
                    let status = json!({"status": {"phase": "Succeeded"}});
                    pods.patch_status(
                        &p.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(status),
                    )
                    .await
                    .ok()?;
                }
            }
            let j = jobs.get("leader").await.ok()?;
            finished_condition(&j).is_some().then_some(j)
        }
    })
    .await;
    assert_eq!(condition_types(&done), ["SuccessCriteriaMet", "Complete"]);
    let cond = finished_condition(&done).expect("complete");
    assert_eq!(cond.reason.as_deref(), Some("SuccessPolicy"));
    assert_eq!(cond.message.as_deref(), Some("Matched rules at index 0"));
    assert_eq!(
        done.status.and_then(|s| s.completed_indexes).as_deref(),
        Some("0")
    );
}

//! One sync of one Job (upstream `syncJob`): count its pods, decide whether it failed
//! or succeeded, create or delete pods, and account finished pods through
//! `status.uncountedTerminatedPods` before releasing their tracking finalizers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k1s_apimachinery::labels::Selector;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};

use crate::workload::Recorder;

use kube::{Api, Resource, ResourceExt};
use parking_lot::Mutex;
use serde_json::json;

use super::indexes::{self, COMPLETION_INDEX, Intervals};
use super::policy::{
    backoff_remaining, finished_at, is_pod_failed, match_pod_failure_policy, match_success_policy,
    only_replace_failed_pods,
};
use super::{Clock, TRACKING_FINALIZER};
use crate::workload::{
    Expectations, active_pods_deletion_order, claim, controller_ref, is_controlled_by,
    is_pod_active, is_pod_ready, pod_from_template, slow_start_batch,
};

/// The `spec.managedBy` value that names this controller.
pub const MANAGED_BY: &str = "kubernetes.io/job-controller";
/// The most pods one sync creates or deletes (upstream `MaxPodCreateDeletePerSync`).
const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;
/// The most pods one sync adds to `uncountedTerminatedPods` (upstream `MaxUncountedPods`).
const MAX_UNCOUNTED_PODS: usize = 500;

/// Why a sync failed; the Job is synced again after a back-off.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// An API call failed.
    #[error("{0}")]
    Api(#[from] kube::Error),
    /// The Job's selector does not parse.
    #[error("invalid selector: {0}")]
    Selector(String),
}

/// What every sync shares.
pub struct Context {
    pub(crate) client: kube::Client,
    pub(crate) pods: k1s_informer::Informer<Pod>,
    pub(crate) recorder: Recorder,
    pub(crate) expectations: Expectations,
    /// Pod uids whose finalizer this controller removed and that the cache may still
    /// show with it, per Job (upstream's `finalizerExpectations`): counting them again
    /// would count them twice.
    pub(crate) removed_finalizers: Mutex<HashMap<String, HashSet<String>>>,
    pub(crate) clock: Clock,
}

pub(crate) fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.finalizers().iter().any(|f| f == TRACKING_FINALIZER)
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

/// Whether the Job has a true Complete or Failed condition.
pub fn is_finished(job: &Job) -> bool {
    finished_condition(job).is_some()
}

/// The Job's true Complete or Failed condition.
pub fn finished_condition(job: &Job) -> Option<&JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

fn find_condition<'a>(status: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

fn condition(type_: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()).filter(|r: &String| !r.is_empty()),
        message: Some(message.into()).filter(|m: &String| !m.is_empty()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Sets the condition of `type_` to `status` (upstream `ensureJobConditionStatus`);
/// whether anything changed.
fn ensure_condition(
    conds: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status == status
            && c.reason.as_deref().unwrap_or("") == reason
            && c.message.as_deref().unwrap_or("") == message
        {
            return false;
        }
        *c = JobCondition {
            status: status.into(),
            ..condition(type_, reason, message, now)
        };
        return true;
    }
    // A False condition that was never True is not worth adding.
    if status == "False" {
        return false;
    }
    conds.push(condition(type_, reason, message, now));
    true
}

fn failure_target(reason: &str, message: &str, now: Timestamp) -> JobCondition {
    condition("FailureTarget", reason, message, now)
}

async fn event(
    ctx: &Context,
    job: &Job,
    type_: EventType,
    reason: &str,
    note: String,
    action: &str,
) {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &job.object_ref(&())).await {
        tracing::debug!(error = %e, "recording job event");
    }
}

/// Everything one sync works out before it writes.
struct SyncCtx {
    job: Job,
    /// The status as read, to tell whether anything needs writing.
    read_status: Option<JobStatus>,
    pods: Vec<Pod>,
    active: Vec<Pod>,
    ready: i32,
    terminating: i32,
    uncounted_succeeded: HashSet<String>,
    uncounted_failed: HashSet<String>,
    expected_rm: HashSet<String>,
    finished: Option<JobCondition>,
    succeeded_indexes: Intervals,
    prev_succeeded_indexes: Intervals,
    /// With `backoffLimitPerIndex`: the indexes that failed for good.
    failed_indexes: Option<Intervals>,
    /// With `backoffLimitPerIndex`: per index, the failed pod whose finalizer stays until
    /// its replacement carries its failure count.
    delayed: HashMap<i32, Pod>,
    completions: Option<i32>,
    indexed: bool,
}

/// Syncs one Job.
pub async fn reconcile(obj: Arc<Job>, ctx: Arc<Context>) -> Result<Action, JobError> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let key = format!("{ns}/{name}");
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    // A quorum read: the counters in status must not be older than what this controller
    // last wrote, or finished pods would be counted twice or pods created twice.
    let Some(job) = jobs.get_opt(&name).await? else {
        ctx.expectations.forget(&key);
        ctx.removed_finalizers.lock().remove(&key);
        return Ok(Action::await_change());
    };
    if job.uid() != obj.uid() || is_finished(&job) {
        return Ok(Action::await_change());
    }
    // A Job another controller manages (`spec.managedBy`) is left to it.
    if job
        .spec
        .as_ref()
        .and_then(|s| s.managed_by.as_deref())
        .is_some_and(|m| m != MANAGED_BY)
    {
        return Ok(Action::await_change());
    }
    let spec = job.spec.clone().unwrap_or_default();
    let mode = spec.completion_mode.as_deref().unwrap_or("NonIndexed");
    if mode != "NonIndexed" && mode != "Indexed" {
        event(
            &ctx,
            &job,
            EventType::Warning,
            "UnknownCompletionMode",
            "Skipped Job sync because completion mode is unknown".into(),
            "Sync",
        )
        .await;
        return Ok(Action::await_change());
    }
    sync(job, key, &ctx).await
}

async fn sync(mut job: Job, key: String, ctx: &Context) -> Result<Action, JobError> {
    let now = (ctx.clock)();
    let ns = job.namespace().unwrap_or_default();
    let spec = job.spec.clone().unwrap_or_default();
    let job_uid = job.uid().unwrap_or_default();
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);

    let read_status = job.status.clone();
    let status = job.status.get_or_insert_with(JobStatus::default);
    let uncounted = status
        .uncounted_terminated_pods
        .get_or_insert_with(UncountedTerminatedPods::default)
        .clone();
    let satisfied = ctx.expectations.satisfied(&key, |n| {
        ctx.pods
            .get(&ns, n)
            .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
    });

    // The pods this Job controls, adopting orphans its selector matches.
    let selector_value = serde_json::to_value(&spec.selector).unwrap_or_default();
    let selector = if spec.selector.is_some() {
        Selector::from_label_selector(&selector_value)
            .map_err(|e| JobError::Selector(e.to_string()))?
    } else {
        Selector::nothing()
    };
    let candidates: Vec<Pod> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|p| is_controlled_by(&p.metadata, &job_uid) || selector.matches(p.labels()))
        .map(|p| (*p).clone())
        .collect();
    let owned_before: HashSet<String> = candidates
        .iter()
        .filter(|p| is_controlled_by(&p.metadata, &job_uid))
        .map(uid)
        .collect();
    let claimed = claim(&pods_api, &job, &selector, candidates).await?;
    let mut pods = claimed.owned;
    for p in pods.iter_mut() {
        // Adopted pods are tracked like created ones (and only they: an owned pod without
        // the finalizer has been counted already).
        if !has_tracking_finalizer(p)
            && p.metadata.deletion_timestamp.is_none()
            && !owned_before.contains(&uid(p))
        {
            let patch = json!({"metadata": {"finalizers": [TRACKING_FINALIZER]}});
            match pods_api
                .patch(
                    &p.name_any(),
                    &PatchParams::default(),
                    &Patch::Strategic(patch),
                )
                .await
            {
                Ok(updated) => *p = updated,
                Err(e) => tracing::debug!(error = %e, "adding tracking finalizer"),
            }
        }
    }

    // Forget finalizer removals the cache now shows.
    let expected_rm: HashSet<String> = {
        let mut all = ctx.removed_finalizers.lock();
        let set = all.entry(key.clone()).or_default();
        let by_uid: HashMap<String, &Pod> = pods.iter().map(|p| (uid(p), p)).collect();
        set.retain(|u| by_uid.get(u).is_some_and(|p| has_tracking_finalizer(p)));
        set.clone()
    };

    let active: Vec<Pod> = pods.iter().filter(|p| is_pod_active(p)).cloned().collect();
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let completions = spec.completions;
    let mut sc = SyncCtx {
        ready: active.iter().filter(|p| is_pod_ready(p)).count() as i32,
        terminating: pods
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_some()
                    && !matches!(phase(p), "Succeeded" | "Failed")
            })
            .count() as i32,
        active,
        uncounted_succeeded: uncounted.succeeded.iter().flatten().cloned().collect(),
        uncounted_failed: uncounted.failed.iter().flatten().cloned().collect(),
        expected_rm,
        finished: None,
        succeeded_indexes: Intervals::default(),
        prev_succeeded_indexes: Intervals::default(),
        failed_indexes: None,
        delayed: HashMap::new(),
        completions,
        indexed,
        pods: Vec::new(),
        job: Job::default(),
        read_status: read_status.clone(),
    };
    sc.pods = std::mem::take(&mut pods);

    // Newly finished pods: still carrying the finalizer and not yet in uncounted.
    let fresh = |p: &&Pod| has_tracking_finalizer(p) && !sc.expected_rm.contains(&uid(p));
    let new_succeeded = sc
        .pods
        .iter()
        .filter(fresh)
        .filter(|p| phase(p) == "Succeeded" && !sc.uncounted_succeeded.contains(&uid(p)))
        .count() as i32;
    let new_failed: Vec<&Pod> = sc
        .pods
        .iter()
        .filter(fresh)
        .filter(|p| is_pod_failed(p, &job) && !sc.uncounted_failed.contains(&uid(p)))
        .collect();
    let new_failed_counted = new_failed
        .iter()
        .filter(|p| {
            spec.pod_failure_policy
                .as_ref()
                .is_none_or(|pol| match_pod_failure_policy(pol, p).count)
        })
        .count() as i32;
    let status = job.status.get_or_insert_with(JobStatus::default);
    let mut succeeded =
        status.succeeded.unwrap_or(0) + new_succeeded + sc.uncounted_succeeded.len() as i32;
    let failed = status.failed.unwrap_or(0) + new_failed_counted + sc.uncounted_failed.len() as i32;

    let suspended = spec.suspend == Some(true);
    if status.start_time.is_none() && !suspended {
        status.start_time = Some(Time(now));
    }
    let mut requeue: Option<Duration> = None;

    // Back-off from the pods themselves, so that it survives restarts: failures since
    // the last success, timed from the last failure.
    let last_success = sc
        .pods
        .iter()
        .filter(|p| phase(p) == "Succeeded")
        .filter_map(finished_at)
        .max();
    let failures: Vec<Timestamp> = sc
        .pods
        .iter()
        .filter(|p| is_pod_failed(p, &job))
        .filter_map(finished_at)
        .filter(|t| last_success.is_none_or(|s| *t > s))
        .collect();
    let backoff = backoff_remaining(failures.len() as u32, failures.iter().max().copied(), now);

    let backoff_limit = spec.backoff_limit.unwrap_or(6);
    let job_view = job.clone();
    let status = job.status.get_or_insert_with(JobStatus::default);
    sc.finished = find_condition(status, "SuccessCriteriaMet").cloned();
    if sc.finished.is_none() {
        if let Some(ft) = find_condition(status, "FailureTarget") {
            sc.finished = Some(ft.clone());
        } else if let Some(pol) = &spec.pod_failure_policy {
            sc.finished = sc
                .pods
                .iter()
                .filter(|p| is_pod_failed(p, &job_view))
                .find_map(|p| match_pod_failure_policy(pol, p).fail_job)
                .map(|m| failure_target("PodFailurePolicy", &m, now));
        }
    }
    if sc.finished.is_none() {
        let start = status.start_time.as_ref().map(|t| t.0);
        if failed > backoff_limit
            || past_backoff_limit_on_failure(&job_view, &sc.pods, backoff_limit)
        {
            sc.finished = Some(failure_target(
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                now,
            ));
        } else if let (Some(ads), Some(start), false) =
            (spec.active_deadline_seconds, start, suspended)
        {
            let elapsed = Duration::try_from(now.duration_since(start)).unwrap_or(Duration::ZERO);
            let allowed = Duration::from_secs(ads.max(0) as u64);
            if elapsed >= allowed {
                sc.finished = Some(failure_target(
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                    now,
                ));
            } else {
                requeue = Some(allowed - elapsed);
            }
        }
    }

    if indexed {
        let c = completions.unwrap_or(0);
        sc.prev_succeeded_indexes =
            Intervals::parse(status.completed_indexes.as_deref().unwrap_or(""), c);
        let done: Vec<i32> = sc
            .pods
            .iter()
            .filter(|p| phase(p) == "Succeeded" && has_tracking_finalizer(p))
            .filter_map(indexes::completion_index)
            .filter(|ix| *ix < c)
            .collect();
        sc.succeeded_indexes = sc.prev_succeeded_indexes.with(done);
        succeeded = sc.succeeded_indexes.total() as i32;
        if let Some(per_index) = spec.backoff_limit_per_index {
            let prev = Intervals::parse(status.failed_indexes.as_deref().unwrap_or(""), c);
            let newly: Vec<i32> = sc
                .pods
                .iter()
                .filter(|p| has_tracking_finalizer(p))
                .filter(|p| is_index_failed(&job_view, p, per_index))
                .filter_map(indexes::completion_index)
                .filter(|ix| *ix < c)
                .collect();
            let failed_ix = prev.with(newly);
            if sc.finished.is_none() {
                let total = failed_ix.total();
                if spec
                    .max_failed_indexes
                    .is_some_and(|m| total > m.max(0) as usize)
                {
                    sc.finished = Some(failure_target(
                        "MaxFailedIndexesExceeded",
                        "Job has exceeded the specified maximal number of failed indexes",
                        now,
                    ));
                } else if total > 0 && total + sc.succeeded_indexes.total() >= c.max(0) as usize {
                    sc.finished = Some(failure_target(
                        "FailedIndexes",
                        "Job has failed indexes",
                        now,
                    ));
                }
            }
            sc.delayed = delayed_per_index(&job_view, &sc, &failed_ix, c);
            sc.failed_indexes = Some(failed_ix);
        }
        if sc.finished.is_none()
            && let Some(msg) =
                match_success_policy(spec.success_policy.as_ref(), c, &sc.succeeded_indexes)
        {
            sc.finished = Some(condition("SuccessCriteriaMet", "SuccessPolicy", &msg, now));
        }
    }

    let mut active = sc.active.len() as i32;
    let mut suspend_changed = false;
    let mut manage_err = None;
    if sc.finished.is_some() {
        // The Job is done: stop what still runs.
        let (deleted_ready, deleted, err) =
            delete_pods(ctx, &job, &pods_api, &sc.active, false).await;
        if deleted != active || !satisfied {
            sc.finished = None;
        }
        active -= deleted;
        sc.terminating += deleted;
        sc.ready -= deleted_ready;
        manage_err = err;
    } else {
        let mut managed = false;
        if satisfied && job.metadata.deletion_timestamp.is_none() {
            let backoff = if sc.failed_indexes.is_some() {
                Duration::ZERO
            } else {
                backoff
            };
            match manage_job(ctx, &job, &key, &mut sc, succeeded, backoff).await {
                Ok((a, wait)) => {
                    active = a;
                    if let Some(w) = wait {
                        requeue = Some(requeue.map_or(w, |r| r.min(w)));
                    }
                }
                Err((a, e)) => {
                    active = a;
                    manage_err = Some(e);
                }
            }
            managed = true;
        }
        let complete = match completions {
            None => succeeded > 0 && active == 0,
            Some(c) => succeeded >= c && active == 0,
        };
        if complete {
            sc.finished = Some(condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ));
        } else if managed {
            let status = job.status.get_or_insert_with(JobStatus::default);
            let conds = status.conditions.get_or_insert_with(Vec::new);
            if suspended {
                if ensure_condition(
                    conds,
                    "Suspended",
                    "True",
                    "JobSuspended",
                    "Job suspended",
                    now,
                ) {
                    suspend_changed = true;
                    event(
                        ctx,
                        &job,
                        EventType::Normal,
                        "Suspended",
                        "Job suspended".into(),
                        "Suspend",
                    )
                    .await;
                }
            } else if ensure_condition(
                conds,
                "Suspended",
                "False",
                "JobResumed",
                "Job resumed",
                now,
            ) {
                suspend_changed = true;
                // The deadline counts time running, not time suspended.
                status.start_time = Some(Time(now));
                event(
                    ctx,
                    &job,
                    EventType::Normal,
                    "Resumed",
                    "Job resumed".into(),
                    "Resume",
                )
                .await;
            }
        }
    }
    let _ = suspend_changed;

    let status = job.status.get_or_insert_with(JobStatus::default);
    status.active = Some(active).filter(|a| *a != 0);
    status.ready = Some(sc.ready);
    status.terminating = Some(sc.terminating);
    sc.job = job;
    track_and_remove_finalizers(ctx, &key, &mut sc).await?;
    if let Some(e) = manage_err {
        return Err(e.into());
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// Upstream's `pastBackoffLimitOnFailure`: with `restartPolicy: OnFailure` the kubelet
/// restarts containers in place, so their restarts count as failures.
fn past_backoff_limit_on_failure(job: &Job, pods: &[Pod], limit: i32) -> bool {
    let policy = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.restart_policy.as_deref());
    if policy != Some("OnFailure") {
        return false;
    }
    let restarts: i32 = pods
        .iter()
        .filter(|p| matches!(phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .sum();
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// Deletes pods (optionally removing their tracking finalizer first, as upstream does
/// for pods it removes while the Job goes on); returns how many ready and how many in
/// all were deleted, and the first error.
async fn delete_pods(
    ctx: &Context,
    job: &Job,
    api: &Api<Pod>,
    pods: &[Pod],
    remove_finalizer: bool,
) -> (i32, i32, Option<kube::Error>) {
    let results = futures::future::join_all(pods.iter().map(|p| async move {
        let name = p.name_any();
        if remove_finalizer && has_tracking_finalizer(p) {
            remove_finalizer_patch(api, p).await?;
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }))
    .await;
    let mut ready = 0;
    let mut deleted = 0;
    let mut first = None;
    for (p, r) in pods.iter().zip(results) {
        match r {
            Ok(()) => {
                deleted += 1;
                let note = format!("Deleted pod: {}", p.name_any());
                event(
                    ctx,
                    job,
                    EventType::Normal,
                    "SuccessfulDelete",
                    note,
                    "Delete",
                )
                .await;
                if is_pod_ready(p) {
                    ready += 1;
                }
            }
            Err(e) => {
                let note = format!("Error deleting: {e}");
                event(ctx, job, EventType::Warning, "FailedDelete", note, "Delete").await;
                first.get_or_insert(e);
            }
        }
    }
    (ready, deleted, first)
}

/// Removes the tracking finalizer (upstream's strategic merge patch, which leaves other
/// finalizers alone); a pod already gone counts as done.
pub(crate) async fn remove_finalizer_patch(api: &Api<Pod>, pod: &Pod) -> Result<(), kube::Error> {
    if !has_tracking_finalizer(pod) {
        return Ok(());
    }
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}});
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The active pods to remove first: for Indexed Jobs those with an index out of range
/// or held twice, then the least useful (upstream `activePodsForRemoval`).
fn pods_for_removal(sc: &SyncCtx, count: usize, now: Timestamp) -> Vec<Pod> {
    let mut rm = Vec::new();
    let mut left = Vec::new();
    if sc.indexed {
        let c = sc.completions.unwrap_or(0);
        let mut seen = HashSet::new();
        let mut sorted = sc.active.clone();
        sorted.sort_by_key(|p| std::cmp::Reverse(is_pod_ready(p)));
        for p in sorted {
            match indexes::completion_index(&p) {
                Some(ix) if ix < c && seen.insert(ix) => left.push(p),
                _ => rm.push(p),
            }
        }
    } else {
        left = sc.active.clone();
    }
    if rm.len() < count {
        active_pods_deletion_order(&mut left, &sc.active, now);
        let more = count - rm.len();
        rm.extend(left.into_iter().take(more));
    }
    rm
}

/// Upstream `manageJob`: create or delete pods toward the wanted number of active pods.
/// Returns the new active count and how long to wait before creating more (back-off),
/// or, on error, the active count so far and the error.
async fn manage_job(
    ctx: &Context,
    job: &Job,
    key: &str,
    sc: &mut SyncCtx,
    succeeded: i32,
    backoff: Duration,
) -> Result<(i32, Option<Duration>), (i32, kube::Error)> {
    let now = (ctx.clock)();
    let spec = job.spec.clone().unwrap_or_default();
    let ns = job.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let mut active = sc.active.len() as i32;
    let parallelism = spec.parallelism.unwrap_or(1);

    if spec.suspend == Some(true) {
        let rm = pods_for_removal(sc, sc.active.len(), now);
        ctx.expectations
            .expect(key, vec![], rm.iter().map(|p| p.name_any()).collect());
        let (ready, removed, err) = delete_pods(ctx, job, &api, &rm, true).await;
        active -= removed;
        sc.terminating += removed;
        sc.ready -= ready;
        return match err {
            Some(e) => Err((active, e)),
            None => Ok((active, None)),
        };
    }

    let want = match spec.completions {
        None if succeeded > 0 => active,
        None => parallelism,
        Some(c) => (c - succeeded).clamp(0, parallelism.max(0)),
    };
    let rm_at_least = (active - want).max(0) as usize;
    let mut rm = pods_for_removal(sc, rm_at_least, now);
    rm.truncate(MAX_POD_CREATE_DELETE_PER_SYNC);
    if !rm.is_empty() {
        ctx.expectations
            .expect(key, vec![], rm.iter().map(|p| p.name_any()).collect());
        let (ready, removed, err) = delete_pods(ctx, job, &api, &rm, true).await;
        active -= removed;
        sc.terminating += removed;
        sc.ready -= ready;
        return match err {
            Some(e) => Err((active, e)),
            None => Ok((active, None)),
        };
    }

    let terminating = if only_replace_failed_pods(job) {
        sc.terminating
    } else {
        0
    };
    let mut diff = (want - terminating - active).max(0) as usize;
    if diff == 0 {
        return Ok((active, None));
    }
    if backoff > Duration::ZERO {
        return Ok((active, Some(backoff)));
    }
    diff = diff.min(MAX_POD_CREATE_DELETE_PER_SYNC);
    let mut to_add: Vec<Option<i32>> = vec![None; diff];
    if sc.indexed {
        let active_refs: Vec<&Pod> = sc.active.iter().collect();
        let mut skip = sc.succeeded_indexes.clone();
        if let Some(f) = &sc.failed_indexes {
            skip = skip.with(f.iter());
        }
        if only_replace_failed_pods(job) {
            let terminating = sc
                .pods
                .iter()
                .filter(|p| {
                    p.metadata.deletion_timestamp.is_some()
                        && !matches!(phase(p), "Succeeded" | "Failed")
                })
                .filter_map(indexes::completion_index);
            skip = skip.with(terminating);
        }
        let pending =
            indexes::first_pending(&active_refs, &skip, diff, spec.completions.unwrap_or(0));
        let mut wait: Option<Duration> = None;
        to_add = Vec::new();
        for ix in pending {
            // Each index backs off on its own failures.
            let left = sc.delayed.get(&ix).map_or(Duration::ZERO, |p| {
                let failures = (failure_count(p, INDEX_FAILURE_COUNT)
                    + failure_count(p, INDEX_IGNORED_FAILURE_COUNT))
                .saturating_add(1);
                backoff_remaining(failures, finished_at(p), now)
            });
            if left.is_zero() || sc.failed_indexes.is_none() {
                to_add.push(Some(ix));
            } else {
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
        }
        if to_add.is_empty() {
            return Ok((active, wait));
        }
    }
    if to_add.is_empty() {
        return Ok((active, None));
    }

    let mut template = spec.template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    let fins = meta.finalizers.get_or_insert_with(Vec::new);
    if !fins.iter().any(|f| f == TRACKING_FINALIZER) {
        fins.push(TRACKING_FINALIZER.to_string());
    }
    if sc.indexed
        && let Some(ps) = template.spec.as_mut()
    {
        // The index reaches containers through the downward API.
        for c in ps
            .containers
            .iter_mut()
            .chain(ps.init_containers.iter_mut().flatten())
        {
            let env = c.env.get_or_insert_with(Vec::new);
            if !env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX") {
                env.push(EnvVar {
                    name: "JOB_COMPLETION_INDEX".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: None,
                            field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                        }),
                        ..Default::default()
                    }),
                });
            }
        }
    }
    let owner = controller_ref(job);
    let job_name = job.name_any();
    let created: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let (ok, err) = slow_start_batch(to_add.len(), |i| {
        let ix = to_add[i];
        let sc = &*sc;
        let mut pod = pod_from_template(&template, &ns, &job_name, owner.clone());
        if let Some(ix) = ix {
            let v = ix.to_string();
            pod.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(COMPLETION_INDEX.into(), v.clone());
            pod.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(COMPLETION_INDEX.into(), v);
            pod.metadata.generate_name = Some(indexes::generate_name_with_index(&job_name, ix));
            if let Some(s) = pod.spec.as_mut() {
                s.hostname = Some(format!("{job_name}-{ix}"));
            }
            if sc.failed_indexes.is_some() {
                let (count, ignored) = new_failure_counts(job, sc.delayed.get(&ix));
                let a = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
                a.insert(INDEX_FAILURE_COUNT.into(), count.to_string());
                if ignored > 0 {
                    a.insert(INDEX_IGNORED_FAILURE_COUNT.into(), ignored.to_string());
                }
            }
        }
        let api = api.clone();
        let created = &created;
        async move {
            match api.create(&PostParams::default(), &pod).await {
                Ok(p) => {
                    created.lock().push(p.name_any());
                    Ok(p.name_any())
                }
                Err(e) => Err(e),
            }
            .map(|_| ())
        }
    })
    .await;
    let names = created.into_inner();
    ctx.expectations.expect(key, names.clone(), vec![]);
    for n in &names {
        event(
            ctx,
            job,
            EventType::Normal,
            "SuccessfulCreate",
            format!("Created pod: {n}"),
            "Create",
        )
        .await;
    }
    active += ok as i32;
    match err {
        Some(e) => {
            // A namespace being deleted refuses creates; nothing to retry then.
            if let kube::Error::Api(s) = &e
                && s.code == 403
                && s.message.contains("being terminated")
            {
                return Ok((active, None));
            }
            event(
                ctx,
                job,
                EventType::Warning,
                "FailedCreate",
                format!("Error creating: {e}"),
                "Create",
            )
            .await;
            Err((active, e))
        }
        None => Ok((active, None)),
    }
}

/// Upstream `trackJobStatusAndRemoveFinalizers`: records newly finished pods in
/// `uncountedTerminatedPods` (and interim conditions), removes their finalizers, moves
/// them into the counters, and adds the final condition once nothing is left running.
async fn track_and_remove_finalizers(
    ctx: &Context,
    key: &str,
    sc: &mut SyncCtx,
) -> Result<(), JobError> {
    let now = (ctx.clock)();
    let ns = sc.job.namespace().unwrap_or_default();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let spec = sc.job.spec.clone().unwrap_or_default();
    let original_status = sc.read_status.clone();
    let completions = sc.completions.unwrap_or(0);

    if sc.indexed {
        sc.pods
            .sort_by_key(|p| indexes::completion_index(p).unwrap_or(i32::MAX));
    }
    let mut with_finalizer: HashSet<String> = sc
        .pods
        .iter()
        .filter(|p| has_tracking_finalizer(p) && !sc.expected_rm.contains(&uid(p)))
        .map(uid)
        .collect();
    let mut status = sc.job.status.take().unwrap_or_default();
    let mut uncounted = status.uncounted_terminated_pods.take().unwrap_or_default();
    clean_uncounted(&mut status, &mut uncounted, &with_finalizer);

    let job_failing = sc
        .finished
        .as_ref()
        .is_some_and(|c| c.type_ != "SuccessCriteriaMet");
    let mut to_release: Vec<Pod> = Vec::new();
    let mut new_indexes = Vec::new();
    let mut reached_max = false;
    for p in &sc.pods {
        let u = uid(p);
        if !has_tracking_finalizer(p) || sc.expected_rm.contains(&u) {
            continue;
        }
        let failed = is_pod_failed(p, &sc.job);
        let delayed = indexes::completion_index(p)
            .and_then(|ix| sc.delayed.get(&ix))
            .is_some_and(|d| d.metadata.uid == p.metadata.uid);
        let can_release = sc.job.metadata.deletion_timestamp.is_some()
            || sc.finished.is_some()
            || phase(p) == "Succeeded"
            || (failed && !delayed);
        if !can_release {
            continue;
        }
        to_release.push(p.clone());
        let in_failed = uncounted.failed.iter().flatten().any(|x| *x == u);
        if phase(p) == "Succeeded" && !in_failed {
            if sc.indexed {
                if let Some(ix) = indexes::completion_index(p)
                    && ix < completions
                    && !sc.prev_succeeded_indexes.has(ix)
                {
                    new_indexes.push(ix);
                }
            } else if !uncounted.succeeded.iter().flatten().any(|x| *x == u) {
                uncounted
                    .succeeded
                    .get_or_insert_with(Vec::new)
                    .push(u.clone());
            }
        } else if failed || job_failing {
            let ix_ok =
                !sc.indexed || indexes::completion_index(p).is_some_and(|ix| ix < completions);
            if !in_failed && ix_ok {
                let counts = spec
                    .pod_failure_policy
                    .as_ref()
                    .is_none_or(|pol| match_pod_failure_policy(pol, p).count);
                if counts {
                    uncounted
                        .failed
                        .get_or_insert_with(Vec::new)
                        .push(u.clone());
                }
            }
        }
        let n = new_indexes.len()
            + uncounted.succeeded.as_ref().map_or(0, Vec::len)
            + uncounted.failed.as_ref().map_or(0, Vec::len);
        if n >= MAX_UNCOUNTED_PODS {
            reached_max = true;
            break;
        }
    }
    if sc.indexed {
        sc.succeeded_indexes = sc.succeeded_indexes.with(new_indexes);
        status.succeeded = Some(sc.succeeded_indexes.total() as i32);
        status.completed_indexes = Some(sc.succeeded_indexes.to_string());
        status.failed_indexes = sc.failed_indexes.as_ref().map(Intervals::to_string);
    }
    let conds = status.conditions.get_or_insert_with(Vec::new);
    if let Some(fin) = sc.finished.clone() {
        match fin.type_.as_str() {
            "FailureTarget" => {
                if !conds
                    .iter()
                    .any(|c| c.type_ == "FailureTarget" && c.status == "True")
                {
                    conds.push(fin.clone());
                }
                sc.finished = Some(condition(
                    "Failed",
                    fin.reason.as_deref().unwrap_or(""),
                    fin.message.as_deref().unwrap_or(""),
                    now,
                ));
            }
            "SuccessCriteriaMet" => {
                if !conds
                    .iter()
                    .any(|c| c.type_ == "SuccessCriteriaMet" && c.status == "True")
                {
                    conds.push(fin.clone());
                }
                sc.finished = Some(condition(
                    "Complete",
                    fin.reason.as_deref().unwrap_or(""),
                    fin.message.as_deref().unwrap_or(""),
                    now,
                ));
            }
            _ => {}
        }
    }
    status.uncounted_terminated_pods = Some(uncounted);

    // 1. Flush what is about to be released, so a crash after the finalizer removal
    // cannot lose a count.
    let mut current = sc.job.clone();
    current.status = Some(normalize(status.clone()));
    if current.status != original_status.map(normalize) {
        current = jobs
            .replace_status(&current.name_any(), &PostParams::default(), &current)
            .await?;
    }

    // 2. Release the finalizers.
    let mut rm_err = None;
    if !to_release.is_empty() {
        ctx.removed_finalizers
            .lock()
            .entry(key.to_string())
            .or_default()
            .extend(to_release.iter().map(uid));
        let results = futures::future::join_all(
            to_release
                .iter()
                .map(|p| remove_finalizer_patch(&pods_api, p)),
        )
        .await;
        for (p, r) in to_release.iter().zip(results) {
            match r {
                Ok(()) => {
                    with_finalizer.remove(&uid(p));
                }
                Err(e) => {
                    if let Some(set) = ctx.removed_finalizers.lock().get_mut(key) {
                        set.remove(&uid(p));
                    }
                    rm_err.get_or_insert(e);
                }
            }
        }
    }

    // 3. Count the released ones; 4. finish the Job once nothing is left.
    let mut status = current.status.clone().unwrap_or_default();
    let mut uncounted = status.uncounted_terminated_pods.take().unwrap_or_default();
    clean_uncounted(&mut status, &mut uncounted, &with_finalizer);
    let uncounted_left = uncounted.succeeded.as_ref().map_or(0, Vec::len)
        + uncounted.failed.as_ref().map_or(0, Vec::len);
    status.uncounted_terminated_pods = Some(uncounted);
    let mut finished_now = None;
    if rm_err.is_none()
        && !reached_max
        && uncounted_left == 0
        && sc.terminating == 0
        && let Some(fin) = sc.finished.clone()
    {
        let conds = status.conditions.get_or_insert_with(Vec::new);
        ensure_condition(
            conds,
            &fin.type_,
            "True",
            fin.reason.as_deref().unwrap_or(""),
            fin.message.as_deref().unwrap_or(""),
            now,
        );
        if fin.type_ == "Complete" {
            status.completion_time = fin.last_transition_time.clone();
        }
        finished_now = Some(fin);
    }
    let status = normalize(status);
    if Some(&status) != current.status.as_ref() {
        current.status = Some(status);
        current = jobs
            .replace_status(&current.name_any(), &PostParams::default(), &current)
            .await?;
    }
    if let Some(fin) = finished_now {
        if fin.type_ == "Complete" {
            let s = current.status.as_ref();
            if let (Some(c), Some(n)) = (spec.completions, s.and_then(|s| s.succeeded))
                && n > c
            {
                event(
                    ctx,
                    &current,
                    EventType::Warning,
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached".into(),
                    "Complete",
                )
                .await;
            }
            event(
                ctx,
                &current,
                EventType::Normal,
                "Completed",
                "Job completed".into(),
                "Complete",
            )
            .await;
        } else {
            event(
                ctx,
                &current,
                EventType::Warning,
                fin.reason.as_deref().unwrap_or("Failed"),
                fin.message.clone().unwrap_or_default(),
                "Fail",
            )
            .await;
        }
    }
    match rm_err {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Moves uids whose pods no longer carry the finalizer from `uncounted` into the
/// counters (upstream `cleanUncountedPodsWithoutFinalizers`).
fn clean_uncounted(
    status: &mut JobStatus,
    uncounted: &mut UncountedTerminatedPods,
    with_finalizer: &HashSet<String>,
) {
    if let Some(s) = uncounted.succeeded.as_mut() {
        let before = s.len();
        s.retain(|u| with_finalizer.contains(u));
        let moved = (before - s.len()) as i32;
        if moved > 0 {
            status.succeeded = Some(status.succeeded.unwrap_or(0) + moved);
        }
    }
    if let Some(f) = uncounted.failed.as_mut() {
        let before = f.len();
        f.retain(|u| with_finalizer.contains(u));
        let moved = (before - f.len()) as i32;
        if moved > 0 {
            status.failed = Some(status.failed.unwrap_or(0) + moved);
        }
    }
}

/// Empty lists and zero counters as the API server stores them (omitted), so that an
/// unchanged status compares equal and is not written again.
fn normalize(mut s: JobStatus) -> JobStatus {
    if let Some(u) = s.uncounted_terminated_pods.as_mut() {
        if u.succeeded.as_ref().is_some_and(Vec::is_empty) {
            u.succeeded = None;
        }
        if u.failed.as_ref().is_some_and(Vec::is_empty) {
            u.failed = None;
        }
    }
    if s.conditions.as_ref().is_some_and(Vec::is_empty) {
        s.conditions = None;
    }
    for c in [&mut s.succeeded, &mut s.failed, &mut s.active] {
        if *c == Some(0) {
            *c = None;
        }
    }
    s
}

/// The annotation counting an index's failures so far, carried from pod to pod.
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// The annotation counting an index's failures a pod failure policy ignored.
pub const INDEX_IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";

fn failure_count(pod: &Pod, annotation: &str) -> u32 {
    pod.annotations()
        .get(annotation)
        .and_then(|v| v.parse::<i32>().ok())
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0)
}

/// Upstream `isIndexFailed`: the pod's failure fails its index, by a `FailIndex` rule or
/// because the index used up `backoffLimitPerIndex`.
fn is_index_failed(job: &Job, pod: &Pod, per_index: i32) -> bool {
    if !is_pod_failed(pod, job) {
        return false;
    }
    let counted = match job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref())
    {
        Some(pol) => {
            let m = match_pod_failure_policy(pol, pod);
            if m.action.as_deref() == Some("FailIndex") {
                return true;
            }
            m.count
        }
        None => true,
    };
    counted && i64::from(failure_count(pod, INDEX_FAILURE_COUNT)) >= i64::from(per_index)
}

/// Upstream `getPodsWithDelayedDeletionPerIndex`: per index still to run, its latest
/// failed pod (kept until a replacement inherits its failure count).
fn delayed_per_index(
    job: &Job,
    sc: &SyncCtx,
    failed: &Intervals,
    completions: i32,
) -> HashMap<i32, Pod> {
    let active: HashSet<i32> = sc
        .active
        .iter()
        .filter_map(indexes::completion_index)
        .collect();
    let mut out: HashMap<i32, Pod> = HashMap::new();
    for p in &sc.pods {
        if !has_tracking_finalizer(p) || sc.expected_rm.contains(&uid(p)) || !is_pod_failed(p, job)
        {
            continue;
        }
        let Some(ix) = indexes::completion_index(p).filter(|ix| *ix < completions) else {
            continue;
        };
        if sc.succeeded_indexes.has(ix) || failed.has(ix) || active.contains(&ix) {
            continue;
        }
        let abs = |p: &Pod| {
            failure_count(p, INDEX_FAILURE_COUNT) + failure_count(p, INDEX_IGNORED_FAILURE_COUNT)
        };
        let newer = out
            .get(&ix)
            .is_none_or(|last| abs(last) <= abs(p) && finished_at(p) >= finished_at(last));
        if newer {
            out.insert(ix, p.clone());
        }
    }
    out
}

/// The failure counts a replacement of `replaced` carries (upstream
/// `getNewIndexFailureCounts`).
fn new_failure_counts(job: &Job, replaced: Option<&Pod>) -> (u32, u32) {
    let Some(p) = replaced else { return (0, 0) };
    let (mut count, mut ignored) = (
        failure_count(p, INDEX_FAILURE_COUNT),
        failure_count(p, INDEX_IGNORED_FAILURE_COUNT),
    );
    let counts = job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref())
        .is_none_or(|pol| match_pod_failure_policy(pol, p).count);
    if counts {
        count += 1;
    } else {
        ignored += 1;
    }
    (count, ignored)
}

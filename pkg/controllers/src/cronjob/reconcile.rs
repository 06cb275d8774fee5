//! One sync of one CronJob (upstream `syncCronJob` and `cleanupFinishedJobs`).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::tz::TimeZone;
use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};

use crate::workload::Recorder;
use kube::runtime::reflector::Store;
use kube::{Api, Resource, ResourceExt};

use super::SCHEDULED_TIMESTAMP;
use super::schedule::{Fires, Schedule, load_time_zone, split_zone};
use crate::job::{Clock, finished_condition};
use crate::workload::{controller_ref, is_controlled_by};

/// A little past the scheduled time, so the requeued sync sees it as due (upstream
/// `nextScheduleDelta`).
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);
/// Missed start times beyond which upstream warns.
const TOO_MANY_MISSED: usize = 100;

/// Why a sync failed; the CronJob is synced again after a back-off.
#[derive(Debug, thiserror::Error)]
pub enum CronJobError {
    /// An API call failed.
    #[error("{0}")]
    Api(#[from] kube::Error),
}

/// What every sync shares.
pub struct Context {
    pub(crate) client: kube::Client,
    pub(crate) jobs: Store<Job>,
    pub(crate) recorder: Recorder,
    pub(crate) clock: Clock,
}

/// The name of the Job for a scheduled time: `<cronjob>-<minutes since the epoch>`.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// The scheduled time as the annotation writes it: RFC 3339 in the schedule's zone.
pub fn scheduled_timestamp(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

async fn event(
    ctx: &Context,
    cj: &CronJob,
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
    if let Err(e) = ctx.recorder.publish(&ev, &cj.object_ref(&())).await {
        tracing::debug!(error = %e, "recording cronjob event");
    }
}

fn is_succeeded(job: &Job) -> bool {
    finished_condition(job).is_some_and(|c| c.type_ == "Complete")
}

fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// Upstream's `mostRecentScheduleTime`: the latest scheduled time in (earliest, now] and
/// how many there were (counted up to a cap).
fn most_recent(
    sched: &Schedule,
    tz: &TimeZone,
    earliest: Timestamp,
    now: Timestamp,
) -> (Option<Timestamp>, usize) {
    let mut latest = None;
    let mut count = 0;
    let mut t = earliest;
    while let Some(n) = sched.next(t, tz) {
        if n > now {
            break;
        }
        latest = Some(n);
        count += 1;
        t = n;
        if count > 100_000 {
            break;
        }
    }
    (latest, count)
}

fn duration_until(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

/// Syncs one CronJob.
pub async fn reconcile(cj: Arc<CronJob>, ctx: Arc<Context>) -> Result<Action, CronJobError> {
    let now = (ctx.clock)();
    let ns = cj.namespace().unwrap_or_default();
    let cj_uid = cj.uid().unwrap_or_default();
    // A quorum read: a stale status would start the same scheduled Job twice.
    let cj_api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(mut cj) = cj_api.get_opt(&cj.name_any()).await? else {
        return Ok(Action::await_change());
    };
    if cj.uid().unwrap_or_default() != cj_uid {
        return Ok(Action::await_change());
    }
    let original_status = cj.status.clone();
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let children: Vec<Arc<Job>> = ctx
        .jobs
        .state()
        .into_iter()
        .filter(|j| j.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|j| is_controlled_by(&j.metadata, &cj_uid))
        .collect();

    // Reconcile status.active with the Jobs there are.
    cj.status.get_or_insert_with(CronJobStatus::default);
    let in_active = |status: &Option<CronJobStatus>, uid: &str| {
        status
            .iter()
            .flat_map(|s| s.active.iter().flatten())
            .any(|r| r.uid.as_deref() == Some(uid))
    };
    for j in &children {
        let uid = j.uid().unwrap_or_default();
        let found = in_active(&cj.status, &uid);
        let finished = finished_condition(j);
        if !found && finished.is_none() {
            event(
                &ctx,
                &cj,
                EventType::Warning,
                "UnexpectedJob",
                format!(
                    "Saw a job that the controller did not create or forgot: {}",
                    j.name_any()
                ),
                "Sync",
            )
            .await;
        } else if let (true, Some(c)) = (found, finished) {
            let status = cj.status.get_or_insert_with(CronJobStatus::default);
            if let Some(a) = status.active.as_mut() {
                a.retain(|r| r.uid.as_deref() != Some(uid.as_str()));
            }
            let note = format!(
                "Saw completed job: {}, condition: {}",
                j.name_any(),
                c.type_
            );
            event(
                &ctx,
                &cj,
                EventType::Normal,
                "SawCompletedJob",
                note,
                "Sync",
            )
            .await;
        } else if is_succeeded(j) {
            let status = cj.status.get_or_insert_with(CronJobStatus::default);
            let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
            if let Some(done) = done
                && status
                    .last_successful_time
                    .as_ref()
                    .is_none_or(|t| t.0 < done.0)
            {
                status.last_successful_time = Some(done);
            }
        }
    }
    // Active Jobs the cache does not show may be gone.
    let status = cj.status.get_or_insert_with(CronJobStatus::default);
    let missing: Vec<ObjectReference> = status
        .active
        .iter()
        .flatten()
        .filter(|r| !children.iter().any(|j| j.uid() == r.uid))
        .cloned()
        .collect();
    for r in missing {
        let name = r.name.clone().unwrap_or_default();
        let gone = match jobs_api.get_opt(&name).await? {
            None => true,
            Some(j) => j.uid() != r.uid,
        };
        if gone {
            event(
                &ctx,
                &cj,
                EventType::Normal,
                "MissingJob",
                format!("Active job went missing: {name}"),
                "Sync",
            )
            .await;
            let status = cj.status.get_or_insert_with(CronJobStatus::default);
            if let Some(a) = status.active.as_mut() {
                a.retain(|x| x.uid != r.uid);
            }
        }
    }

    let requeue = schedule_next(&ctx, &mut cj, &jobs_api, now).await;
    cleanup_finished(&ctx, &mut cj, &jobs_api, &children).await;

    let mut status = cj.status.clone().unwrap_or_default();
    if status.active.as_ref().is_some_and(Vec::is_empty) {
        status.active = None;
    }
    let before = original_status.map(|mut s| {
        if s.active.as_ref().is_some_and(Vec::is_empty) {
            s.active = None;
        }
        s
    });
    if Some(&status) != before.as_ref() {
        cj.status = Some(status);
        let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);
        api.replace_status(&cj.name_any(), &PostParams::default(), &cj)
            .await?;
    }
    let requeue = requeue?;
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// Starts the Job that is due, if any; returns when to look again.
async fn schedule_next(
    ctx: &Context,
    cj: &mut CronJob,
    jobs_api: &Api<Job>,
    now: Timestamp,
) -> Result<Option<Duration>, CronJobError> {
    if cj.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let spec = cj.spec.clone().unwrap_or_default();
    // A zone in the schedule itself (only older CronJobs can carry one) wins, with a
    // warning, as upstream's formatSchedule does.
    let split = split_zone(spec.schedule.trim());
    let schedule_zone = split.as_ref().ok().and_then(|(zone, _)| *zone);
    if spec.schedule.contains("TZ") {
        let note = format!(
            "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
            spec.schedule
        );
        event(
            ctx,
            cj,
            EventType::Warning,
            "UnsupportedSchedule",
            note,
            "Sync",
        )
        .await;
    }
    let tz = match load_time_zone(schedule_zone.or(spec.time_zone.as_deref())) {
        Ok(tz) => tz,
        Err(e) => {
            let tz = spec.time_zone.clone().unwrap_or_default();
            event(
                ctx,
                cj,
                EventType::Warning,
                "UnknownTimeZone",
                format!("invalid timeZone: {tz:?}: {e}"),
                "Sync",
            )
            .await;
            return Ok(None);
        }
    };
    if spec.suspend == Some(true) {
        return Ok(None);
    }
    let sched = match split.and_then(|(_, schedule)| Schedule::parse(schedule)) {
        Ok(s) => s,
        Err(e) => {
            let note = format!("unparseable schedule: {:?} : {e}", spec.schedule);
            event(
                ctx,
                cj,
                EventType::Warning,
                "UnparseableSchedule",
                note,
                "Sync",
            )
            .await;
            return Ok(None);
        }
    };
    let status = cj.status.get_or_insert_with(CronJobStatus::default);
    let created = cj.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0);
    let mut earliest = status.last_schedule_time.as_ref().map_or(created, |t| t.0);
    if let Some(d) = spec.starting_deadline_seconds {
        let deadline = Timestamp::from_second(now.as_second() - d).unwrap_or(now);
        if deadline > earliest {
            earliest = deadline;
        }
    }
    let wait_for_next = |from: Timestamp| {
        sched
            .next(from.max(now), &tz)
            .map(|n| duration_until(now, n) + NEXT_SCHEDULE_DELTA)
    };
    let (scheduled, missed) = most_recent(&sched, &tz, earliest, now);
    if missed > TOO_MANY_MISSED {
        let note = "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew";
        event(
            ctx,
            cj,
            EventType::Warning,
            "TooManyMissedTimes",
            note.into(),
            "Sync",
        )
        .await;
    }
    let Some(scheduled) = scheduled else {
        return Ok(wait_for_next(now));
    };
    if let Some(d) = spec.starting_deadline_seconds
        && scheduled.as_second() + d < now.as_second()
    {
        // Upstream writes it in UTC, RFC 1123 with a numeric zone.
        let when = scheduled
            .to_zoned(TimeZone::UTC)
            .strftime("%a, %d %b %Y %H:%M:%S %z")
            .to_string();
        let note = format!("Missed scheduled time to start a job: {when}");
        event(ctx, cj, EventType::Warning, "MissSchedule", note, "Sync").await;
        return Ok(wait_for_next(scheduled));
    }
    let name = job_name(&cj.name_any(), scheduled);
    let status = cj.status.get_or_insert_with(CronJobStatus::default);
    let already = status
        .active
        .iter()
        .flatten()
        .any(|r| r.name.as_deref() == Some(name.as_str()))
        || status
            .last_schedule_time
            .as_ref()
            .is_some_and(|t| t.0 == scheduled);
    if already {
        return Ok(wait_for_next(scheduled));
    }
    let active = status.active.as_ref().map_or(0, Vec::len);
    match spec.concurrency_policy.as_deref() {
        Some("Forbid") if active > 0 => {
            let note = "Not starting job because prior execution is running and concurrency policy is Forbid";
            event(
                ctx,
                cj,
                EventType::Normal,
                "JobAlreadyActive",
                note.into(),
                "Sync",
            )
            .await;
            return Ok(wait_for_next(scheduled));
        }
        Some("Replace") => {
            let refs = status.active.clone().unwrap_or_default();
            for r in refs {
                let jname = r.name.clone().unwrap_or_default();
                if delete_job(ctx, cj, jobs_api, &jname).await? {
                    let status = cj.status.get_or_insert_with(CronJobStatus::default);
                    if let Some(a) = status.active.as_mut() {
                        a.retain(|x| x.uid != r.uid);
                    }
                }
            }
        }
        _ => {}
    }

    let template = spec.job_template;
    let tmeta = template.metadata.unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        scheduled_timestamp(scheduled, &tz),
    );
    let job = Job {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: cj.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(&*cj)]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    };
    let created = match jobs_api.create(&PostParams::default(), &job).await {
        Ok(j) => {
            event(
                ctx,
                cj,
                EventType::Normal,
                "SuccessfulCreate",
                format!("Created job {name}"),
                "Create",
            )
            .await;
            j
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            // Created before a restart lost the status write: take it back if it is ours.
            match jobs_api.get_opt(&name).await? {
                Some(j) if is_controlled_by(&j.metadata, &cj.uid().unwrap_or_default()) => j,
                _ => return Ok(wait_for_next(scheduled)),
            }
        }
        Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("being terminated") => {
            return Ok(None);
        }
        Err(e) => {
            event(
                ctx,
                cj,
                EventType::Warning,
                "FailedCreate",
                format!("Error creating job: {e}"),
                "Create",
            )
            .await;
            return Err(e.into());
        }
    };
    let status = cj.status.get_or_insert_with(CronJobStatus::default);
    let list = status.active.get_or_insert_with(Vec::new);
    if !list.iter().any(|r| r.uid == created.metadata.uid) {
        list.push(job_ref(&created));
    }
    status.last_schedule_time = Some(Time(scheduled));
    Ok(wait_for_next(scheduled))
}

/// Deletes a Job of this CronJob in the background, as upstream; whether it is gone.
async fn delete_job(
    ctx: &Context,
    cj: &CronJob,
    api: &Api<Job>,
    name: &str,
) -> Result<bool, CronJobError> {
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => {
            event(
                ctx,
                cj,
                EventType::Normal,
                "SuccessfulDelete",
                format!("Deleted job {name}"),
                "Delete",
            )
            .await;
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(true),
        Err(e) => {
            event(
                ctx,
                cj,
                EventType::Warning,
                "FailedDelete",
                format!("Deleted job: {e}"),
                "Delete",
            )
            .await;
            Err(e.into())
        }
    }
}

/// Deletes the oldest finished Jobs beyond `successfulJobsHistoryLimit` and
/// `failedJobsHistoryLimit` (upstream `cleanupFinishedJobs`).
async fn cleanup_finished(ctx: &Context, cj: &mut CronJob, api: &Api<Job>, children: &[Arc<Job>]) {
    let spec = cj.spec.clone().unwrap_or_default();
    let mut ok: Vec<&Job> = Vec::new();
    let mut failed: Vec<&Job> = Vec::new();
    for j in children {
        if j.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match finished_condition(j).map(|c| c.type_.as_str()) {
            Some("Complete") => ok.push(j),
            Some(_) => failed.push(j),
            None => {}
        }
    }
    for (jobs, limit) in [
        (ok, spec.successful_jobs_history_limit),
        (failed, spec.failed_jobs_history_limit),
    ] {
        let Some(limit) = limit else { continue };
        for name in jobs_to_prune(jobs, limit) {
            match delete_job(ctx, cj, api, &name).await {
                Ok(true) => {
                    let status = cj.status.get_or_insert_with(CronJobStatus::default);
                    if let Some(a) = status.active.as_mut() {
                        a.retain(|r| r.name.as_deref() != Some(name.as_str()));
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, job = %name, "pruning job history"),
            }
        }
    }
}

/// The names of the oldest Jobs (by start time; Jobs that never started last, as
/// upstream sorts them) beyond `limit`.
pub fn jobs_to_prune(mut jobs: Vec<&Job>, limit: i32) -> Vec<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    if jobs.len() <= limit {
        return Vec::new();
    }
    let start = |j: &Job| {
        j.status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0)
    };
    jobs.sort_by(|a, b| match (start(a), start(b)) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.name_any().cmp(&b.name_any())),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.name_any().cmp(&b.name_any()),
    });
    let n = jobs.len() - limit;
    jobs.into_iter().take(n).map(|j| j.name_any()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobStatus;

    fn job(name: &str, start: Option<i64>) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: None,
            status: Some(JobStatus {
                start_time: start.map(|s| Time(Timestamp::from_second(s).expect("ts"))),
                ..JobStatus::default()
            }),
        }
    }

    #[test]
    fn the_oldest_finished_jobs_are_pruned_first() {
        let jobs = [
            job("c", Some(300)),
            job("a", Some(100)),
            job("never", None),
            job("b", Some(200)),
        ];
        let refs: Vec<&Job> = jobs.iter().collect();
        assert_eq!(jobs_to_prune(refs.clone(), 1), ["a", "b", "c"]);
        assert_eq!(jobs_to_prune(refs.clone(), 3), ["a"]);
        assert!(jobs_to_prune(refs.clone(), 4).is_empty());
        assert_eq!(jobs_to_prune(refs, 0).len(), 4);
    }

    #[test]
    fn job_names_and_annotations_follow_upstream() {
        let t: Timestamp = "2026-12-06T06:10:00Z".parse().expect("ts");
        assert_eq!(
            job_name("hello", t),
            format!("hello-{}", t.as_second() / 60)
        );
        assert_eq!(
            scheduled_timestamp(t, &TimeZone::UTC),
            "2026-12-06T06:10:00Z"
        );
        let fixed = TimeZone::fixed(k8s_openapi::jiff::tz::offset(-5));
        assert_eq!(scheduled_timestamp(t, &fixed), "2026-12-06T01:10:00-05:00");
    }

    #[test]
    fn missed_schedules_are_counted_up_to_now() {
        let sched = Schedule::parse("*/1 * * * *").expect("parse");
        let t0: Timestamp = "2026-01-01T00:00:30Z".parse().expect("ts");
        let now: Timestamp = "2026-01-01T03:00:10Z".parse().expect("ts");
        let (latest, n) = most_recent(&sched, &TimeZone::UTC, t0, now);
        assert_eq!(
            latest.map(|t| t.to_string()).as_deref(),
            Some("2026-01-01T03:00:00Z")
        );
        assert_eq!(n, 180);
        let (latest, n) = most_recent(&sched, &TimeZone::UTC, now, now);
        assert_eq!((latest, n), (None, 0));
    }
}

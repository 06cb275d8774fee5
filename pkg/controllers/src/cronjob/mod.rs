//! CronJob controller (upstream `pkg/controller/cronjob`, the v2 controller): creates a
//! Job `<cronjob>-<minutes since epoch>` at each scheduled time (in `spec.timeZone`),
//! honouring `concurrencyPolicy`, `startingDeadlineSeconds` and `suspend`; keeps
//! `status.active`, `lastScheduleTime` and `lastSuccessfulTime`; prunes finished Jobs
//! beyond the history limits. It sleeps until the next scheduled time rather than
//! polling.

mod reconcile;
pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::Api;
use kube::runtime::controller::{Action, Config, applier, trigger_owners, trigger_self};
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};

use crate::Shutdown;
use crate::job::{Clock, system_clock};
use crate::workload::recorder;

pub use reconcile::{Context, CronJobError, job_name, scheduled_timestamp};

/// Upstream's controller name, also the events' reporting controller.
pub const NAME: &str = "cronjob-controller";
/// The annotation with the time a Job was scheduled for (RFC 3339, in the time zone).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, system_clock(), shutdown))
}

fn error_policy(_cj: Arc<CronJob>, err: &CronJobError, _ctx: Arc<Context>) -> Action {
    tracing::debug!(error = %err, "cronjob sync failed");
    Action::requeue(Duration::from_secs(5))
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, clock: Clock, shutdown: Shutdown) {
    let cfg = watcher::Config::default();
    let (cronjobs, cj_writer) = reflector::store::<CronJob>();
    let (jobs, job_writer) = reflector::store::<Job>();
    let cj_events = reflector::reflector(
        cj_writer,
        watcher(Api::<CronJob>::all(client.clone()), cfg.clone()),
    )
    .default_backoff()
    .touched_objects();
    let job_events =
        reflector::reflector(job_writer, watcher(Api::<Job>::all(client.clone()), cfg))
            .default_backoff()
            .touched_objects();
    let queue = futures::stream::select(
        trigger_self(cj_events, ()),
        trigger_owners::<CronJob, _>(job_events, (), ()),
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        jobs,
        recorder: recorder(client, NAME),
        clock,
    });
    applier(
        |cj, ctx| Box::pin(reconcile::reconcile(cj, ctx)),
        error_policy,
        ctx,
        cronjobs,
        queue,
        Config::default(),
    )
    .take_until(shutdown.wait())
    .for_each(|res| async move {
        match res {
            Ok((obj, _)) => tracing::trace!(cronjob = %obj, "cronjob synced"),
            Err(e) => tracing::trace!(error = %e, "cronjob sync skipped"),
        }
    })
    .await;
}

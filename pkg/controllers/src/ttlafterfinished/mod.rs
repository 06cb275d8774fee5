//! TTL-after-finished controller (upstream `pkg/controller/ttlafterfinished`): deletes a
//! finished Job (Complete or Failed) `spec.ttlSecondsAfterFinished` seconds after it
//! finished, with foreground propagation so its pods go first.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};

use crate::Shutdown;
use crate::job::{Clock, finished_condition, system_clock};

/// Upstream's controller name.
pub const NAME: &str = "ttl-after-finished-controller";

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, system_clock(), shutdown))
}

struct Context {
    client: kube::Client,
    clock: Clock,
}

/// When the Job expires: its finish time plus its TTL; `None` when it has no TTL or has
/// not finished.
pub fn expires_at(job: &Job) -> Option<Timestamp> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let cond = finished_condition(job)?;
    let finished = cond.last_transition_time.as_ref()?.0;
    finished
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(i64::from(ttl)))
        .ok()
}

fn remaining(job: &Job, now: Timestamp) -> Option<Duration> {
    let at = expires_at(job)?;
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action, kube::Error> {
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let now = (ctx.clock)();
    match remaining(&job, now) {
        None => return Ok(Action::await_change()),
        Some(left) if left > Duration::ZERO => return Ok(Action::requeue(left)),
        Some(_) => {}
    }
    // The cache may be stale (the TTL changed, the Job was recreated): check afresh.
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let Some(fresh) = api.get_opt(&job.name_any()).await? else {
        return Ok(Action::await_change());
    };
    if fresh.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    match remaining(&fresh, now) {
        None => return Ok(Action::await_change()),
        Some(left) if left > Duration::ZERO => return Ok(Action::requeue(left)),
        Some(_) => {}
    }
    tracing::info!(job = %fresh.name_any(), namespace = ?fresh.namespace(), "deleting finished job after its TTL");
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: fresh.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&fresh.name_any(), &dp).await {
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(Action::await_change()),
        Err(e) => Err(e),
    }
}

fn error_policy(_job: Arc<Job>, err: &kube::Error, _ctx: Arc<Context>) -> Action {
    tracing::debug!(error = %err, "ttl-after-finished sync failed");
    Action::requeue(Duration::from_secs(5))
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, clock: Clock, shutdown: Shutdown) {
    let api: Api<Job> = Api::all(client.clone());
    let ctx = Arc::new(Context { client, clock });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The controller wants a Sync trigger; a oneshot receiver is one.
    tokio::spawn(async move {
        shutdown.wait().await;
        let _ = stop_tx.send(());
    });
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(async move {
            let _ = stop_rx.await;
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::trace!(error = %e, "ttl-after-finished sync skipped");
            }
        })
        .await;
}

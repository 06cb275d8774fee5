//! Job controller (upstream `pkg/controller/job`): runs a Job's pods to completion.
//! Pods carry the `batch.kubernetes.io/job-tracking` finalizer until the Job has counted
//! them (through `status.uncountedTerminatedPods`), so a pod deleted early is never lost
//! from the counts; failures back off exponentially (10 s doubling to 6 min) up to
//! `backoffLimit`; Indexed Jobs give each pod a completion index; `podFailurePolicy`,
//! `successPolicy`, `activeDeadlineSeconds` and `suspend` behave as upstream's, with the
//! interim `FailureTarget`/`SuccessCriteriaMet` conditions before `Failed`/`Complete`.

pub mod indexes;
pub mod policy;
mod reconcile;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::{Action, Config, applier, trigger_owners, trigger_self};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use parking_lot::Mutex;

use crate::Shutdown;
use crate::workload::{Expectations, controller_of, is_controlled_by, recorder};

pub use reconcile::{Context, JobError, finished_condition, is_finished};

/// Upstream's controller name, also the events' reporting controller.
pub const NAME: &str = "job-controller";
/// The finalizer that keeps a pod until its Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";

/// The time source: the wall clock in the server, a shifted one in tests.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(Timestamp::now)
}

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, system_clock(), shutdown))
}

fn error_policy(_job: Arc<Job>, err: &JobError, _ctx: Arc<Context>) -> Action {
    tracing::debug!(error = %err, "job sync failed");
    Action::requeue(Duration::from_secs(5))
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, clock: Clock, shutdown: Shutdown) {
    let cfg = watcher::Config::default();
    let (jobs, job_writer) = reflector::store::<Job>();
    // Pods are read from the shared informer's objects, not from a slim copy of each:
    // a copy costs a whole `Pod` struct (2.4 KB) per pod of the cluster.
    let pods = crate::pod_informer(&client);
    let (orphan_tx, orphan_rx) = tokio::sync::mpsc::unbounded_channel::<Pod>();
    let (jobs_seen, pods_seen, deleted_tx) = (jobs.clone(), pods.clone(), orphan_tx.clone());
    let job_events = reflector::reflector(
        job_writer,
        watcher(Api::<Job>::all(client.clone()), cfg.clone()),
    )
    .default_backoff()
    .touched_objects()
    .inspect_ok(move |job: &Job| {
        // A deleted Job syncs no more: its pods' finalizers are released as orphans'.
        if jobs_seen.get(&ObjectRef::from_obj(job)).is_some() {
            return;
        }
        let uid = job.uid().unwrap_or_default();
        for p in pods_seen.state() {
            if is_controlled_by(&p.metadata, &uid) && reconcile::has_tracking_finalizer(&p) {
                let _ = deleted_tx.send((*p).clone());
            }
        }
    });
    let pod_events = pods
        .watch()
        .modify(slim)
        .default_backoff()
        .touched_objects()
        .inspect_ok(move |p: &Pod| {
            if reconcile::has_tracking_finalizer(p) {
                let _ = orphan_tx.send(p.clone());
            }
        });
    let queue = futures::stream::select(
        trigger_self(job_events, ()),
        trigger_owners::<Job, _>(pod_events, (), ()),
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        pods: pods.clone(),
        recorder: recorder(client.clone(), NAME),
        expectations: Expectations::new(),
        removed_finalizers: Mutex::new(HashMap::new()),
        clock,
    });
    let orphans = tokio::spawn(release_orphans(client, jobs.clone(), orphan_rx));
    let stop = shutdown.clone();
    applier(
        |job, ctx| Box::pin(reconcile::reconcile(job, ctx)),
        error_policy,
        ctx,
        jobs,
        queue,
        Config::default(),
    )
    .take_until(stop.wait())
    .for_each(|res| async move {
        match res {
            Ok((obj, _)) => tracing::trace!(job = %obj, "job synced"),
            Err(e) => tracing::trace!(error = %e, "job sync skipped"),
        }
    })
    .await;
    orphans.abort();
}

/// Drops what this controller never reads from cached pods: every pod of the cluster is
/// cached, and at 30k pods managed fields, the last-applied annotation and containers
/// would be most of the memory. Pods no Job controls are kept only as far as adoption
/// looks at them (labels, owners, deletion).
fn slim(pod: &mut Pod) {
    let job_pod = controller_of(&pod.metadata)
        .is_some_and(|r| r.kind == "Job" && r.api_version == "batch/v1");
    if !job_pod {
        let m = std::mem::take(&mut pod.metadata);
        pod.metadata = ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            labels: m.labels,
            owner_references: m.owner_references,
            deletion_timestamp: m.deletion_timestamp,
            finalizers: m.finalizers,
            ..ObjectMeta::default()
        };
        pod.spec = None;
        pod.status = None;
        return;
    }
    pod.metadata.managed_fields = None;
    if let Some(a) = pod.metadata.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    if let Some(spec) = pod.spec.take() {
        pod.spec = Some(PodSpec {
            node_name: spec.node_name,
            restart_policy: spec.restart_policy,
            hostname: spec.hostname,
            ..PodSpec::default()
        });
    }
}

/// Removes the tracking finalizer from pods whose Job is gone or finished (upstream
/// `syncOrphanPod`): nobody else would, and they could never be deleted.
async fn release_orphans(
    client: kube::Client,
    jobs: Store<Job>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Pod>,
) {
    if jobs.wait_until_ready().await.is_err() {
        return;
    }
    while let Some(pod) = rx.recv().await {
        let ns = pod.namespace().unwrap_or_default();
        if let Some(r) = controller_of(&pod.metadata) {
            if r.kind != "Job" || r.api_version != "batch/v1" {
                continue;
            }
            let job = jobs.get(&ObjectRef::new(&r.name).within(&ns));
            if let Some(job) = job
                && job.uid().as_deref() == Some(r.uid.as_str())
                && !is_finished(&job)
            {
                continue;
            }
        }
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        if let Err(e) = reconcile::remove_finalizer_patch(&api, &pod).await {
            tracing::debug!(pod = %pod.name_any(), error = %e, "releasing orphan pod");
        }
    }
}

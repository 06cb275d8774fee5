//! One sync of one set (upstream's `syncReplicaSet` and `manageReplicas`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, ResourceExt};
use parking_lot::Mutex;

use super::status::{self, ManageFailure, SetSpec};
use super::{Context, ReplicatedSet};
use crate::workload::{
    active_pods_deletion_order, claim, controller_of, controller_ref, is_controlled_by,
    is_pod_active, pod_from_template, slow_start_batch,
};

/// The most pods one sync creates or deletes (upstream's `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// Back-off of a failing set: doubling from this ...
const RETRY_BASE: Duration = Duration::from_millis(500);
/// ... up to this.
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Why a sync failed (it is retried with back-off).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Reading or writing the API failed.
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// Creating or deleting pods failed (the set's `ReplicaFailure` condition says why).
    #[error("{0}")]
    Manage(String),
}

/// What a sync does to the pod count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Create this many pods.
    Create(usize),
    /// Delete this many pods.
    Delete(usize),
    /// Nothing.
    Keep,
}

/// The pods to create or delete so `active` pods become `replicas`, at most
/// [`BURST_REPLICAS`] in one sync.
pub fn scale(active: usize, replicas: i32) -> Scale {
    let want = usize::try_from(replicas).unwrap_or(0);
    if active < want {
        Scale::Create((want - active).min(BURST_REPLICAS))
    } else if active > want {
        Scale::Delete((active - want).min(BURST_REPLICAS))
    } else {
        Scale::Keep
    }
}

/// Whether the pod is being deleted but has not finished (upstream's
/// `FilterTerminatingPods`).
fn is_terminating(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_some() && !matches!(phase, Some("Succeeded" | "Failed"))
}

fn error_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// Whether the API refused because the namespace is being deleted (upstream records no
/// event for that).
fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.details.as_ref().is_some_and(|d| {
        d.causes.iter().any(|c| c.reason == "NamespaceTerminating")
    }))
}

fn is_gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Records an event about `set` without holding up the sync.
fn publish<K: ReplicatedSet>(
    ctx: &Context<K>,
    set: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let reference = set.object_ref(&());
    let rec = ctx.recorder.clone();
    let action = if reason.contains("Delete") {
        "Delete"
    } else {
        "Create"
    };
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: action.to_string(),
        secondary: None,
    };
    tokio::spawn(async move {
        if let Err(e) = rec.publish(&event, &reference).await {
            tracing::debug!(error = %e, "recording an event failed");
        }
    });
}

/// Syncs one set: claim, create or delete, write status.
pub(crate) async fn reconcile<K: ReplicatedSet>(
    set: Arc<K>,
    ctx: Arc<Context<K>>,
) -> Result<Action, SyncError> {
    let result = sync(set.as_ref(), ctx.as_ref()).await;
    let uid = set.uid().unwrap_or_default();
    if result.is_ok() {
        ctx.failures.lock().remove(&uid);
    }
    result
}

async fn sync<K: ReplicatedSet>(set: &K, ctx: &Context<K>) -> Result<Action, SyncError> {
    let ns = set.namespace().unwrap_or_default();
    let uid = set.uid().unwrap_or_default();
    let selector = match set.selector() {
        Ok(s) => s,
        Err(e) => {
            // Validation makes this unreachable; retrying would not help.
            tracing::warn!(set = %set.name_any(), namespace = %ns, error = %e, "invalid selector");
            return Ok(Action::await_change());
        }
    };
    let pods = &ctx.pods;
    pods.wait_ready().await;
    let needs_sync = ctx.expectations.satisfied(&uid, |name| {
        pods.get(&ns, name)
            .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
    });

    let owned = pods.controlled_by(&uid);
    let no_labels = BTreeMap::new();
    let terminating = owned
        .iter()
        .filter(|p| {
            is_terminating(p) && selector.matches(p.metadata.labels.as_ref().unwrap_or(&no_labels))
        })
        .count();
    // Only pods that need adopting or releasing go through `claim` (and are copied):
    // the owned, matching ones, the common case, are kept as they are.
    let matches = |p: &Pod| selector.matches(p.metadata.labels.as_ref().unwrap_or(&no_labels));
    let (mut active, mut to_claim): (Vec<Arc<Pod>>, Vec<Pod>) = (Vec::new(), Vec::new());
    for p in owned.into_iter().filter(|p| is_pod_active(p)) {
        if matches(&p) {
            active.push(p);
        } else {
            to_claim.push(Pod::clone(&p));
        }
    }
    to_claim.extend(
        pods.orphans(&ns)
            .iter()
            .filter(|p| is_pod_active(p) && matches(p))
            .map(|p| Pod::clone(p)),
    );
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    if !to_claim.is_empty() {
        let claimed = claim(&pod_api, set, &selector, to_claim).await?;
        active.extend(claimed.owned.into_iter().map(Arc::new));
    }

    let mut failure = None;
    if needs_sync && set.meta().deletion_timestamp.is_none() {
        failure = manage(ctx, set, &pod_api, &active).await.err();
    }

    let now = Timestamp::now();
    let labels = set
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let spec = SetSpec {
        generation: set.meta().generation.unwrap_or(0),
        template_labels: &labels,
        min_ready_seconds: set.min_ready_seconds(),
        terminating_replicas: K::TERMINATING_REPLICAS,
    };
    let current = set.set_status();
    let new = status::calculate(&current, spec, &active, terminating, failure.as_ref(), now);
    // A count change close after the last write waits (see `StatusPacer`); the sync
    // comes back for it.
    let held = (new != current)
        .then(|| {
            ctx.status_pacer
                .admit(&uid, &current, &new, set.replicas(), Instant::now())
        })
        .flatten();
    if new != current && held.is_none() {
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
        match api
            .patch_status(
                &set.name_any(),
                &PatchParams::default(),
                &Patch::Merge(new.to_patch()),
            )
            .await
        {
            Ok(_) => {}
            // Deleted meanwhile: nothing left to report on.
            Err(e) if is_gone(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(f) = failure {
        return Err(SyncError::Manage(f.message));
    }
    let availability = status::next_availability_check(&active, set.min_ready_seconds(), now);
    Ok(match held.into_iter().chain(availability).min() {
        Some(wait) => Action::requeue(wait),
        None => Action::await_change(),
    })
}

/// What a pod create's answer is read for: the name the server generated and the uid.
#[derive(serde::Deserialize)]
struct CreatedPod {
    metadata: CreatedMeta,
}

#[derive(serde::Deserialize)]
struct CreatedMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    uid: String,
}

/// Creates `pod`, reading of the answer only its name and uid: the whole pod comes
/// through the watch, and decoding every answer into a `Pod` is work for nothing.
async fn create_pod(api: &Api<Pod>, pod: &Pod) -> kube::Result<CreatedPod> {
    let body = serde_json::to_vec(pod).map_err(kube::Error::SerdeError)?;
    let request = kube::core::Request::new(api.resource_url())
        .create(&PostParams::default(), body)
        .map_err(kube::Error::BuildRequest)?;
    api.clone().into_client().request(request).await
}

/// Creates or deletes pods so the set has `spec.replicas` active ones.
async fn manage<K: ReplicatedSet>(
    ctx: &Context<K>,
    set: &K,
    api: &Api<Pod>,
    active: &[Arc<Pod>],
) -> Result<(), ManageFailure> {
    let ns = set.namespace().unwrap_or_default();
    let name = set.name_any();
    let uid = set.uid().unwrap_or_default();
    match scale(active.len(), set.replicas()) {
        Scale::Keep => Ok(()),
        Scale::Create(n) => {
            let Some(template) = set.template() else {
                return Ok(());
            };
            let owner = controller_ref(set);
            let created = Mutex::new(Vec::new());
            let (_, err) = slow_start_batch(n, |_| {
                let pod = pod_from_template(template, &ns, &name, owner.clone());
                let created = &created;
                async move {
                    // Creating faster than the scheduler binds only queues pods behind
                    // one another (see `Backlog`).
                    let admission = ctx.backlog.admit().await;
                    let result = create_pod(api, &pod).await;
                    match result {
                        Ok(p) => {
                            // Its place is held until the scheduler has the pod.
                            admission.created(&p.metadata.uid);
                            let pod_name = p.metadata.name;
                            publish(
                                ctx,
                                set,
                                EventType::Normal,
                                "SuccessfulCreate",
                                format!("Created pod: {pod_name}"),
                            );
                            created.lock().push(pod_name);
                            Ok(())
                        }
                        Err(e) => {
                            if !namespace_terminating(&e) {
                                publish(
                                    ctx,
                                    set,
                                    EventType::Warning,
                                    "FailedCreate",
                                    format!("Error creating: {}", error_message(&e)),
                                );
                            }
                            Err(e)
                        }
                    }
                }
            })
            .await;
            ctx.expectations
                .expect(&uid, created.into_inner(), Vec::new());
            match err {
                None => Ok(()),
                Some(e) => Err(ManageFailure {
                    reason: "FailedCreate",
                    message: error_message(&e),
                }),
            }
        }
        Scale::Delete(n) => {
            let mut victims: Vec<Pod> = active.iter().map(|p| Pod::clone(p)).collect();
            let related = related_pods(ctx, set, &ns);
            active_pods_deletion_order(&mut victims, &related, Timestamp::now());
            victims.truncate(n);
            let deletes = victims.iter().map(|p| async move {
                let pod_name = p.name_any();
                match api.delete(&pod_name, &DeleteParams::default()).await {
                    Ok(_) => {
                        publish(
                            ctx,
                            set,
                            EventType::Normal,
                            "SuccessfulDelete",
                            format!("Deleted pod: {pod_name}"),
                        );
                        Ok(pod_name)
                    }
                    Err(e) if is_gone(&e) => Ok(pod_name),
                    Err(e) => {
                        publish(
                            ctx,
                            set,
                            EventType::Warning,
                            "FailedDelete",
                            format!("Error deleting: {}", error_message(&e)),
                        );
                        Err(e)
                    }
                }
            });
            let mut deleted = Vec::new();
            let mut first_err = None;
            for r in futures::future::join_all(deletes).await {
                match r {
                    Ok(n) => deleted.push(n),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            ctx.expectations.expect(&uid, Vec::new(), deleted);
            match first_err {
                None => Ok(()),
                Some(e) => Err(ManageFailure {
                    reason: "FailedDelete",
                    message: error_message(&e),
                }),
            }
        }
    }
}

/// The pods that rank a scale-down (upstream's `getIndirectlyRelatedPods`): those of every
/// set sharing this set's controller (a Deployment's ReplicaSets), or the set's own.
fn related_pods<K: ReplicatedSet>(ctx: &Context<K>, set: &K, ns: &str) -> Vec<Pod> {
    let uid = set.uid().unwrap_or_default();
    let mut uids: HashSet<String> = [uid].into();
    if let Some(owner) = controller_of(set.meta()) {
        for s in ctx.sets.state() {
            if s.namespace().as_deref() == Some(ns) && is_controlled_by(s.meta(), &owner.uid) {
                uids.extend(s.uid());
            }
        }
    }
    uids.iter()
        .flat_map(|u| ctx.pods.controlled_by(u))
        .map(|p| Pod::clone(&p))
        .collect()
}

/// Retries a failed sync with a per-set doubling back-off.
pub(crate) fn error_policy<K: ReplicatedSet>(
    set: Arc<K>,
    err: &SyncError,
    ctx: Arc<Context<K>>,
) -> Action {
    let uid = set.uid().unwrap_or_default();
    let n = {
        let mut failures = ctx.failures.lock();
        let n = failures.entry(uid).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let wait = RETRY_BASE
        .saturating_mul(1u32 << (n - 1).min(20))
        .min(RETRY_MAX);
    tracing::debug!(set = %set.name_any(), error = %err, retry_in = ?wait, "sync failed");
    Action::requeue(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_creates_the_missing_and_deletes_the_surplus_in_bursts() {
        assert_eq!(scale(1, 3), Scale::Create(2));
        assert_eq!(scale(5, 3), Scale::Delete(2));
        assert_eq!(scale(3, 3), Scale::Keep);
        assert_eq!(scale(0, 0), Scale::Keep);
        assert_eq!(scale(2, -1), Scale::Delete(2));
        assert_eq!(scale(0, 2_000), Scale::Create(BURST_REPLICAS));
        assert_eq!(scale(2_000, 0), Scale::Delete(BURST_REPLICAS));
    }

    #[test]
    fn only_unfinished_deleted_pods_are_terminating() {
        let mut p = Pod::default();
        assert!(!is_terminating(&p));
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::now(),
        ));
        assert!(is_terminating(&p));
        p.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        assert!(!is_terminating(&p));
    }
}

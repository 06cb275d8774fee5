//! Deployment controller (upstream `pkg/controller/deployment`): rolls a Deployment's pod
//! template out through ReplicaSets named `<deployment>-<pod-template-hash>`, with the
//! RollingUpdate (maxSurge, maxUnavailable) and Recreate strategies, proportional scaling
//! during a rollout, pause, revision annotations and history cleanup, and the
//! Progressing and Available conditions. It manages ReplicaSets only; the ReplicaSet
//! controller turns them into pods.
//!
//! Deployments and ReplicaSets are read from watch caches indexed by namespace; a change
//! to a ReplicaSet wakes the Deployment that controls it (or, for an orphan, every
//! Deployment whose selector matches it).

pub mod cache;
mod sync;
pub mod util;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k1s_apimachinery::labels::Selector;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::{Api, ResourceExt};
use parking_lot::Mutex;

use crate::Shutdown;
use crate::garbagecollector::queue::WorkQueue;
use crate::workload::{Recorder, controller_of, recorder};
use cache::Cache;

/// Upstream's component name (events' source, `--controllers` entry).
pub const NAME: &str = "deployment-controller";

/// Deployments synced at once (upstream's `--concurrent-deployment-syncs` default).
const WORKERS: usize = 5;

/// Why one sync failed (it is retried with back-off).
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// An API call failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// The selector could not be read.
    #[error("invalid selector: {0}")]
    Selector(String),
    /// Serializing failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The new ReplicaSet's name is taken by another template; collisionCount was bumped.
    #[error("hash collision: replica set {0} exists with a different template")]
    HashCollision(String),
}

/// A Deployment's namespace and name.
type Key = (String, String);

/// What the workers share.
pub(crate) struct Ctx {
    client: kube::Client,
    deployments: Arc<Cache<Deployment>>,
    replicasets: Arc<Cache<ReplicaSet>>,
    queue: Arc<WorkQueue<Key>>,
    /// When each Deployment is already due to be looked at again (one timer each).
    wakeups: Arc<Mutex<HashMap<Key, Instant>>>,
    events: Recorder,
}

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown))
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown) {
    let ctx = Arc::new(Ctx {
        events: recorder(client.clone(), NAME),
        deployments: Arc::new(Cache::default()),
        replicasets: Arc::new(Cache::default()),
        queue: Arc::new(WorkQueue::new()),
        wakeups: Arc::new(Mutex::new(HashMap::new())),
        client,
    });
    let deploy_watch = {
        let ctx = ctx.clone();
        let queue = ctx.queue.clone();
        cache::run(
            Api::<Deployment>::all(ctx.client.clone()),
            ctx.deployments.clone(),
            move |old, new| {
                if let Some(d) = new.or(old) {
                    queue.add((d.namespace().unwrap_or_default(), d.name_any()));
                }
            },
        )
    };
    let rs_watch = {
        let ctx = ctx.clone();
        let handler_ctx = ctx.clone();
        cache::run(
            Api::<ReplicaSet>::all(ctx.client.clone()),
            ctx.replicasets.clone(),
            move |old, new| on_replica_set(&handler_ctx, old, new),
        )
    };
    let workers = futures::future::join_all((0..WORKERS).map(|_| worker(ctx.clone())));
    tokio::select! {
        () = shutdown.wait() => {}
        () = deploy_watch => {}
        () = rs_watch => {}
        _ = workers => {}
    }
}

/// Wakes the Deployments a ReplicaSet change concerns: its controller before and after,
/// and for an orphan every Deployment whose selector matches it (it may be adopted).
fn on_replica_set(ctx: &Ctx, old: Option<&ReplicaSet>, new: Option<&ReplicaSet>) {
    for rs in [old, new].into_iter().flatten() {
        let ns = rs.namespace().unwrap_or_default();
        match controller_of(&rs.metadata) {
            Some(r) if r.kind == "Deployment" => ctx.queue.add((ns, r.name.clone())),
            Some(_) => {}
            None => {
                if rs.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                for d in ctx.deployments.list(&ns) {
                    if selects(&d, rs) {
                        ctx.queue.add((ns.clone(), d.name_any()));
                    }
                }
            }
        }
    }
}

/// Whether the Deployment's (non-empty) selector matches the ReplicaSet's labels.
fn selects(d: &Deployment, rs: &ReplicaSet) -> bool {
    let label_selector = util::selector(d);
    if label_selector
        .match_labels
        .as_ref()
        .is_none_or(|m| m.is_empty())
        && label_selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
    {
        return false;
    }
    serde_json::to_value(&label_selector)
        .ok()
        .and_then(|v| Selector::from_label_selector(&v).ok())
        .is_some_and(|s| s.matches(rs.labels()))
}

async fn worker(ctx: Arc<Ctx>) {
    while !(ctx.deployments.synced() && ctx.replicasets.synced()) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        let key = ctx.queue.next().await;
        let result = sync::sync_deployment(&ctx, &key.0, &key.1).await;
        ctx.queue.done(&key);
        match result {
            Ok(requeue) => {
                ctx.queue.forget(&key);
                if let Some(after) = requeue {
                    add_after(&ctx, key, after);
                }
            }
            Err(e) => {
                let level_conflict =
                    matches!(&e, DeploymentError::Kube(kube::Error::Api(s)) if s.code == 409);
                if level_conflict {
                    tracing::debug!(deployment = %format!("{}/{}", key.0, key.1), error = %e, "sync conflicted; retrying");
                } else {
                    tracing::warn!(deployment = %format!("{}/{}", key.0, key.1), error = %e, "sync failed; retrying");
                }
                ctx.queue.add_rate_limited(key);
            }
        }
    }
}

/// Queues `key` again after `after`, unless a timer already fires by then: a rollout
/// waiting on its deadline syncs many times meanwhile, and must not pile up timers.
fn add_after(ctx: &Ctx, key: Key, after: Duration) {
    let due = Instant::now() + after;
    {
        let mut wakeups = ctx.wakeups.lock();
        if wakeups.get(&key).is_some_and(|at| *at <= due) {
            return;
        }
        wakeups.insert(key.clone(), due);
    }
    let queue = Arc::downgrade(&ctx.queue);
    let wakeups = Arc::downgrade(&ctx.wakeups);
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        if let Some(w) = wakeups.upgrade() {
            let mut w = w.lock();
            if w.get(&key).is_some_and(|at| *at <= Instant::now()) {
                w.remove(&key);
            }
        }
        if let Some(q) = queue.upgrade() {
            q.add(key);
        }
    });
}

//! ReplicaSet and ReplicationController controllers (upstream `pkg/controller/replicaset`,
//! and `pkg/controller/replication`, which runs the same code through an adapter): one
//! generic controller over [`ReplicatedSet`], instantiated once per kind.
//!
//! Each sync of a set claims its pods (adopting matching orphans, releasing owned pods its
//! selector no longer matches), creates the missing pods in slow-start batches or deletes
//! the least useful surplus ones, and writes the status counts through the status
//! subresource. Pods are read from one indexed watch cache per controller; expectations
//! keep a set from acting again before that cache shows its last writes.

mod podindex;
mod status;
mod sync;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt, stream};
use k1s_apimachinery::labels::Selector;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::CancelableJoinHandle;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, applier};
use kube::{Api, Resource, ResourceExt};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Shutdown;
use crate::workload::Expectations;

pub use podindex::PodIndex;
pub use status::{STATUS_WRITE_SPACING, SetCondition, SetStatus, StatusPacer};
pub use sync::{BURST_REPLICAS, SyncError};

/// What the generic controller needs of a kind: ReplicaSet and ReplicationController
/// (upstream's adapter lets the replication manager reuse the ReplicaSet code the same way).
pub trait ReplicatedSet:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The component named as the source of its events.
    const EVENT_SOURCE: &'static str;
    /// Whether its status carries `terminatingReplicas` (upstream 1.35: ReplicaSets only,
    /// feature `DeploymentReplicaSetTerminatingReplicas`, beta and on by default).
    const TERMINATING_REPLICAS: bool;

    /// `spec.replicas` (defaulted to 1).
    fn replicas(&self) -> i32;
    /// `spec.minReadySeconds`.
    fn min_ready_seconds(&self) -> i32;
    /// The pod selector; an error for a selector that cannot be converted.
    fn selector(&self) -> Result<Selector, String>;
    /// The pod template.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// The current status, in the shape both kinds share.
    fn set_status(&self) -> SetStatus;
}

impl ReplicatedSet for ReplicaSet {
    const EVENT_SOURCE: &'static str = "replicaset-controller";
    const TERMINATING_REPLICAS: bool = true;

    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn selector(&self) -> Result<Selector, String> {
        let selector = self.spec.as_ref().map(|s| &s.selector);
        let value = serde_json::to_value(selector).map_err(|e| e.to_string())?;
        Selector::from_label_selector(&value).map_err(|e| e.to_string())
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }

    fn set_status(&self) -> SetStatus {
        let Some(s) = &self.status else {
            return SetStatus::default();
        };
        SetStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            terminating_replicas: s.terminating_replicas,
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| SetCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect(),
        }
    }
}

impl ReplicatedSet for ReplicationController {
    const EVENT_SOURCE: &'static str = "replication-controller";
    const TERMINATING_REPLICAS: bool = false;

    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn selector(&self) -> Result<Selector, String> {
        // A map selector; the API server defaults it from the template's labels.
        let set = self
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        Ok(Selector::from_set(&set))
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }

    fn set_status(&self) -> SetStatus {
        let Some(s) = &self.status else {
            return SetStatus::default();
        };
        SetStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            terminating_replicas: None,
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| SetCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect(),
        }
    }
}

/// What every sync of one controller shares.
pub(crate) struct Context<K: ReplicatedSet> {
    pub(crate) client: kube::Client,
    pub(crate) pods: PodIndex,
    pub(crate) sets: Store<K>,
    pub(crate) expectations: Expectations,
    /// Consecutive failed syncs per set uid, for the retry back-off.
    pub(crate) failures: Mutex<HashMap<String, u32>>,
    /// The set's events; a create failing again and again becomes one event series.
    pub(crate) recorder: crate::workload::Recorder,
    /// The scheduler's queue of untried pods: creates wait while it is long.
    pub(crate) backlog: k1s_informer::Backlog,
    /// Spaces each set's status writes while its pods start one after another.
    pub(crate) status_pacer: StatusPacer,
}

/// Starts the ReplicaSet controller (`replicaset-controller`).
pub fn start_replicasets(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run::<ReplicaSet>(client, shutdown))
}

/// Starts the ReplicationController controller (`replicationcontroller-controller`).
pub fn start_replication_controllers(
    client: kube::Client,
    shutdown: Shutdown,
) -> BoxFuture<'static, ()> {
    Box::pin(run::<ReplicationController>(client, shutdown))
}

/// Whether a pod's controller reference names a set of kind `K`.
fn names_kind<K: ReplicatedSet>(c: &podindex::ControllerKey) -> bool {
    c.kind == K::kind(&()) && c.group == K::group(&())
}

/// The sets a pod change concerns: its controller before and after, and for an orphan
/// every set of its namespace whose selector matches it (it may be adopted).
fn sets_for_change<K: ReplicatedSet>(
    change: &podindex::Change,
    sets: &Store<K>,
) -> Vec<ObjectRef<K>> {
    let ns = change.pod.metadata.namespace.clone().unwrap_or_default();
    let mut out = Vec::new();
    for c in [&change.old_controller, &change.new_controller]
        .into_iter()
        .flatten()
    {
        if names_kind::<K>(c) {
            let r = ObjectRef::new(&c.name).within(&ns);
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    if change.new_controller.is_none() && change.pod.metadata.deletion_timestamp.is_none() {
        let empty = BTreeMap::new();
        let labels = change.pod.metadata.labels.as_ref().unwrap_or(&empty);
        for set in sets.state() {
            if set.namespace().as_deref() == Some(ns.as_str())
                && set.selector().is_ok_and(|s| s.matches(labels))
            {
                let r = ObjectRef::from_obj(set.as_ref());
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// Runs the controller for kind `K` until `shutdown` fires.
pub async fn run<K: ReplicatedSet>(client: kube::Client, shutdown: Shutdown) {
    let (sets, set_writer) = reflector::store::<K>();
    let pods = PodIndex::new();
    let ctx = Arc::new(Context {
        client: client.clone(),
        pods: pods.clone(),
        sets: sets.clone(),
        expectations: Expectations::new(),
        failures: Mutex::new(HashMap::new()),
        recorder: crate::workload::recorder(client.clone(), K::EVENT_SOURCE),
        backlog: crate::config().scheduling_backlog.clone(),
        status_pacer: StatusPacer::new(STATUS_WRITE_SPACING),
    });

    // managedFields are never read here: dropping them keeps the caches small.
    let set_api: Api<K> = Api::all(client.clone());
    let forget = ctx.clone();
    let set_triggers = watcher::watcher(set_api, watcher::Config::default())
        .default_backoff()
        .modify(|s: &mut K| s.managed_fields_mut().clear())
        .reflect(set_writer)
        .inspect_ok(move |ev| {
            if let Event::Delete(set) = ev {
                let uid = set.uid().unwrap_or_default();
                forget.expectations.forget(&uid);
                forget.failures.lock().remove(&uid);
                forget.status_pacer.forget(&uid);
            }
        })
        .touched_objects()
        .map_ok(|set: K| ObjectRef::from_obj(&set));

    // The pod watch starts once a set of this kind exists: a cluster without
    // ReplicationControllers keeps no second copy of every pod for them.
    let informer = crate::pod_informer(&client);
    let pod_sets = sets.clone();
    let gate = sets.clone();
    let first_set = async move {
        while gate.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let pod_triggers = stream::once(first_set)
        .map(move |()| {
            let pods = pods.clone();
            let pod_sets = pod_sets.clone();
            informer
                .subscribe()
                .map(Ok::<_, watcher::Error>)
                .map(move |res| {
                    let refs: Vec<Result<ObjectRef<K>, watcher::Error>> = match res {
                        Err(e) => vec![Err(e)],
                        Ok(ev) => match pods.apply(ev) {
                            podindex::Applied::Nothing => Vec::new(),
                            // The watch was down: every set may have missed something.
                            podindex::Applied::Resynced => pod_sets
                                .state()
                                .iter()
                                .map(|s| Ok(ObjectRef::from_obj(s.as_ref())))
                                .collect(),
                            podindex::Applied::Changes(changes) => changes
                                .iter()
                                .flat_map(|c| sets_for_change::<K>(c, &pod_sets))
                                .map(Ok)
                                .collect(),
                        },
                    };
                    stream::iter(refs)
                })
                .flatten()
        })
        .flatten();

    let queue = stream::select(set_triggers, pod_triggers).take_until(shutdown.wait());
    let kind = K::kind(&()).into_owned();
    applier(
        |set: Arc<K>, ctx: Arc<Context<K>>| {
            // Each sync is its own task, so syncs of different sets use every core.
            CancelableJoinHandle::spawn(
                sync::reconcile(set, ctx),
                &tokio::runtime::Handle::current(),
            )
        },
        sync::error_policy,
        ctx,
        sets,
        queue,
        kube::runtime::controller::Config::default(),
    )
    .for_each(|res| {
        let kind = kind.clone();
        async move {
            match res {
                Ok((obj, _)) => tracing::trace!(kind, set = %obj, "synced"),
                Err(e) => tracing::debug!(kind, error = %e, "sync failed"),
            }
        }
    })
    .await;
}

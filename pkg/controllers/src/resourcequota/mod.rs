//! ResourceQuota controller (upstream `pkg/controller/resourcequota`): keeps
//! `status.hard` equal to `spec.hard` and `status.used` equal to what the namespace's
//! objects charge (counts, compute resources of non-terminal pods, storage of claims),
//! honouring the quota's scopes. The API server's quota admission reads that status
//! to refuse creates over the limit; usage is shared with it through
//! [`k1s_apimachinery::quota`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k1s_apimachinery::quota::{self, ResourceList};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Secret, Service,
};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DynamicObject, ListParams};
use kube::core::PartialObjectMeta;
use kube::discovery::ApiResource;
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::Shutdown;

/// Upstream's controller name.
pub const NAME: &str = "resourcequota-controller";

/// How often usage is recomputed without a change seen: object counts of any resource
/// (`count/<resource>.<group>`) are not watched.
const RESYNC: Duration = Duration::from_secs(30);

/// Why a sync did not finish.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// An API call failed.
    #[error("{context}: {source}")]
    Api {
        /// What was attempted.
        context: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

struct Context {
    client: kube::Client,
}

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown))
}

/// The quotas of the object's namespace.
fn quotas_of<K: Resource>(store: &Store<ResourceQuota>, obj: &K) -> Vec<ObjectRef<ResourceQuota>> {
    let ns = obj.meta().namespace.clone().unwrap_or_default();
    store
        .state()
        .iter()
        .filter(|q| q.metadata.namespace.as_deref() == Some(ns.as_str()))
        .map(|q| ObjectRef::from_obj(q.as_ref()))
        .collect()
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown) {
    let quotas: Api<ResourceQuota> = Api::all(client.clone());
    let controller = Controller::new(quotas, watcher::Config::default())
        // Bursts of pod changes are counted once.
        .with_config(Config::default().debounce(Duration::from_millis(300)));
    let store = controller.store();
    let (s1, s2, s3, s4, s5) = (
        store.clone(),
        store.clone(),
        store.clone(),
        store.clone(),
        store,
    );
    let wc = watcher::Config::default;
    let ctx = Arc::new(Context {
        client: client.clone(),
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        shutdown.wait().await;
        let _ = stop_tx.send(());
    });
    controller
        .watches_shared_stream(
            crate::pod_informer(&client).touched(),
            move |o: Arc<Pod>| quotas_of(&s1, &*o),
        )
        // The other counted kinds only trigger a recount of their namespace's quotas (the
        // recount lists them): their metadata is all the watches need, and the server then
        // encodes each change as PartialObjectMetadata (an `Api` of `PartialObjectMeta` asks for
        // that), shared with the garbage collector's watch, instead of whole objects once more (a fifth of the server's CPU during the
        // ConfigMap creates of `k1s-bench` went to serving these in-process watches).
        .watches(
            Api::<PartialObjectMeta<Service>>::all(client.clone()),
            wc(),
            move |o: PartialObjectMeta<Service>| quotas_of(&s2, &o),
        )
        .watches(
            Api::<PartialObjectMeta<PersistentVolumeClaim>>::all(client.clone()),
            wc(),
            move |o: PartialObjectMeta<PersistentVolumeClaim>| quotas_of(&s3, &o),
        )
        .watches(
            Api::<PartialObjectMeta<ConfigMap>>::all(client.clone()),
            wc(),
            move |o: PartialObjectMeta<ConfigMap>| quotas_of(&s4, &o),
        )
        .watches(
            Api::<PartialObjectMeta<Secret>>::all(client.clone()),
            wc(),
            move |o: PartialObjectMeta<Secret>| quotas_of(&s5, &o),
        )
        .graceful_shutdown_on(async move {
            let _ = stop_rx.await;
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::trace!(quota = %obj.name, "quota synced"),
                Err(e) => tracing::debug!(error = %e, "quota sync failed"),
            }
        })
        .await;
}

/// The core resources quota names refer to without `count/`.
fn core_resource(name: &str) -> Option<(&'static str, &'static str)> {
    let r = match name {
        "pods" | "cpu" | "memory" | "ephemeral-storage" => "pods",
        n if n.starts_with("requests.") && n != "requests.storage" => "pods",
        n if n.starts_with("limits.") || n.starts_with("hugepages-") => "pods",
        "services" | "services.loadbalancers" | "services.nodeports" => "services",
        "configmaps" => "configmaps",
        "secrets" => "secrets",
        "replicationcontrollers" => "replicationcontrollers",
        "resourcequotas" => "resourcequotas",
        "persistentvolumeclaims" | "requests.storage" => "persistentvolumeclaims",
        n if n.contains(".storageclass.storage.k8s.io/") => "persistentvolumeclaims",
        _ => return None,
    };
    Some(("", r))
}

fn core_api(resource: &str) -> Option<ApiResource> {
    Some(match resource {
        "pods" => ApiResource::erase::<Pod>(&()),
        "services" => ApiResource::erase::<Service>(&()),
        "configmaps" => ApiResource::erase::<ConfigMap>(&()),
        "secrets" => ApiResource::erase::<Secret>(&()),
        "replicationcontrollers" => ApiResource::erase::<ReplicationController>(&()),
        "resourcequotas" => ApiResource::erase::<ResourceQuota>(&()),
        "persistentvolumeclaims" => ApiResource::erase::<PersistentVolumeClaim>(&()),
        _ => return None,
    })
}

/// Whether a pod's deletion grace period has run out (it is then no longer charged).
fn deletion_overdue(obj: &Value, now: Timestamp) -> bool {
    let Some(at) = obj
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<Timestamp>().ok())
    else {
        return false;
    };
    let Some(grace) = obj
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
    else {
        return false;
    };
    at.checked_add(SignedDuration::from_secs(grace))
        .is_ok_and(|end| now > end)
}

/// Usage of `hard`'s resources by `objects` of one resource, within the quota's scopes.
pub fn usage_of(
    quota_obj: &Value,
    group: &str,
    resource: &str,
    objects: &[Value],
    hard: &ResourceList,
    now: Timestamp,
) -> ResourceList {
    let mut used = ResourceList::new();
    for o in objects {
        if !quota::matches_scopes(quota_obj, group, resource, o) {
            continue;
        }
        let u: ResourceList = quota::usage(group, resource, o, deletion_overdue(o, now))
            .into_iter()
            .filter(|(k, _)| hard.contains_key(k))
            .collect();
        used = quota::add(&used, &u);
    }
    used
}

async fn reconcile(rq: Arc<ResourceQuota>, ctx: Arc<Context>) -> Result<Action, QuotaError> {
    let ns = rq.namespace().unwrap_or_default();
    let quota_obj = serde_json::to_value(rq.as_ref()).unwrap_or(Value::Null);
    let hard = quota::parse_list(quota_obj.pointer("/spec/hard"));
    // The resources to look at: (group, resource) → how to list them.
    let mut wanted: BTreeMap<(String, String), Option<ApiResource>> = BTreeMap::new();
    let mut unresolved: BTreeSet<(String, String)> = BTreeSet::new();
    for name in hard.keys() {
        if let Some((g, r)) = core_resource(name) {
            wanted.insert((g.into(), r.into()), core_api(r));
        } else if let Some(gr) = name.strip_prefix("count/") {
            let (r, g) = gr.split_once('.').unwrap_or((gr, ""));
            match core_api(r).filter(|_| g.is_empty()) {
                Some(api) => {
                    wanted.insert((String::new(), r.into()), Some(api));
                }
                None => {
                    unresolved.insert((g.into(), r.into()));
                }
            }
        }
    }
    if !unresolved.is_empty() {
        match crate::discovery::preferred_resources(&ctx.client).await {
            Ok(found) => {
                for (g, r) in unresolved {
                    let api = found
                        .resources
                        .iter()
                        .find(|d| d.api.group == g && d.api.plural == r && d.namespaced)
                        .map(|d| d.api.clone());
                    wanted.insert((g, r), api);
                }
            }
            Err(e) => tracing::debug!(error = %e, "discovery for quota counts failed"),
        }
    }
    let now = Timestamp::now();
    let mut used: ResourceList = hard
        .keys()
        .map(|k| {
            (
                k.clone(),
                k1s_apimachinery::Quantity::from_i64(
                    0,
                    k1s_apimachinery::quantity::Format::DecimalSI,
                ),
            )
        })
        .collect();
    for ((group, resource), api) in wanted {
        let Some(api) = api else { continue };
        let list: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &api);
        let objects =
            list.list(&ListParams::default())
                .await
                .map_err(|source| QuotaError::Api {
                    context: format!("list {resource} in {ns}"),
                    source,
                })?;
        let objects: Vec<Value> = objects
            .items
            .iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect();
        let u = usage_of(&quota_obj, &group, &resource, &objects, &hard, now);
        used = quota::add(&used, &u);
    }
    let status = json!({"hard": quota::to_json(&hard), "used": quota::to_json(&used)});
    let current = json!({
        "hard": quota::to_json(&quota::parse_list(quota_obj.pointer("/status/hard"))),
        "used": quota::to_json(&quota::parse_list(quota_obj.pointer("/status/used"))),
    });
    if status != current {
        let mut next = quota_obj.clone();
        next["status"] = status;
        let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &ns);
        let next: ResourceQuota = serde_json::from_value(next).map_err(|e| QuotaError::Api {
            context: "encode status".into(),
            source: kube::Error::SerdeError(e),
        })?;
        // The version read is the precondition: admission charges this status too.
        api.replace_status(&rq.name_any(), &Default::default(), &next)
            .await
            .map_err(|source| QuotaError::Api {
                context: format!("update status of quota {}", rq.name_any()),
                source,
            })?;
    }
    Ok(Action::requeue(RESYNC))
}

fn error_policy(_rq: Arc<ResourceQuota>, err: &QuotaError, _ctx: Arc<Context>) -> Action {
    tracing::debug!(error = %err, "quota sync failed");
    Action::requeue(Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_and_overdue_pods_are_not_charged_compute() {
        let hard = quota::parse_list(Some(&json!({"pods": "10", "count/pods": "10"})));
        let q = json!({"spec": {"hard": {"pods": "10"}}});
        let now = Timestamp::now();
        let running = json!({"metadata": {"name": "a"}, "spec": {"containers": []}});
        let done = json!({"metadata": {"name": "b"}, "status": {"phase": "Failed"}});
        let overdue = json!({"metadata": {"name": "c", "deletionTimestamp": "2020-01-01T00:00:00Z",
                             "deletionGracePeriodSeconds": 30}});
        let u = usage_of(&q, "", "pods", &[running, done, overdue], &hard, now);
        assert_eq!(quota::pretty(&u), "count/pods=3,pods=1");
    }
}

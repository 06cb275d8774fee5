//! What a worker does with one piece of work: upstream's `attemptToDeleteItem`,
//! `processDeletingDependentsItem` and `orphanDependents`, each checking the live object
//! before it writes, and writing with a resourceVersion or uid precondition.

use kube::api::{
    DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::core::PartialObjectMeta;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::Collector;
use super::graph::{FINALIZER_FOREGROUND, FINALIZER_ORPHAN, Kind, Node, Owner, Work};
use crate::discovery::parse_group_version;

/// Why a piece of work must be retried.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// Reading an object or an owner failed.
    #[error("cannot read {what}")]
    Get {
        /// `kind namespace/name`.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing (patching or deleting) an object failed.
    #[error("cannot {action} {what}")]
    Write {
        /// What was attempted.
        action: &'static str,
        /// `kind namespace/name`.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Live pods name the owner that the graph does not know yet: the shared pod
    /// informer lags behind, and deciding from the graph now would miss them.
    #[error("the graph has not seen every pod of {what} yet")]
    GraphBehind {
        /// `kind namespace/name` of the owner.
        what: String,
    },
}

fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

fn describe(kind: &Kind, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{} {ns}/{name}", kind.api.kind),
        None => format!("{} {name}", kind.api.kind),
    }
}

fn api_for(gc: &Collector, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) if kind.namespaced => Api::namespaced_with(gc.client.clone(), ns, &kind.api),
        _ => Api::all_with(gc.client.clone(), &kind.api),
    }
}

/// The live metadata of `name`, `None` when it is gone or is another object now.
async fn live(
    api: &Api<DynamicObject>,
    name: &str,
    uid: &str,
    what: impl FnOnce() -> String,
) -> Result<Option<PartialObjectMeta<DynamicObject>>, GcError> {
    match api.get_metadata_opt(name).await {
        Ok(Some(m)) if m.metadata.uid.as_deref() == Some(uid) => Ok(Some(m)),
        Ok(_) => Ok(None),
        Err(source) => Err(GcError::Get {
            what: what(),
            source,
        }),
    }
}

fn has_finalizer(m: &PartialObjectMeta<DynamicObject>, f: &str) -> bool {
    m.metadata
        .finalizers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|x| x == f)
}

/// Handles one piece of work.
pub(super) async fn process(gc: &Collector, work: &Work) -> Result<(), GcError> {
    match work {
        Work::AttemptToDelete(uid) => attempt_to_delete(gc, uid).await,
        Work::Orphan(uid) => orphan_dependents(gc, uid).await,
    }
}

/// How an owner reference stands.
#[derive(Debug, PartialEq, Eq)]
enum OwnerState {
    /// The owner exists and is not waiting for its dependents.
    Solid,
    /// The owner is gone (or never was where the reference points).
    Dangling,
    /// The owner is being deleted in the foreground.
    Waiting,
}

async fn classify(gc: &Collector, dependent: &Node, owner: &Owner) -> Result<OwnerState, GcError> {
    let Ok((group, _)) = parse_group_version(&owner.api_version) else {
        // Validation keeps such references out; never delete on one.
        return Ok(OwnerState::Solid);
    };
    let Some(kind) = gc.kind(&group, &owner.kind) else {
        tracing::debug!(api_version = %owner.api_version, kind = %owner.kind, "garbage collector: owner kind not served; keeping the reference");
        return Ok(OwnerState::Solid);
    };
    let namespace = if kind.namespaced {
        match dependent.namespace.as_deref() {
            Some(ns) => Some(ns),
            // A cluster-scoped object cannot be owned by a namespaced one: upstream treats
            // the reference as pointing at an absent owner.
            None => return Ok(OwnerState::Dangling),
        }
    } else {
        None
    };
    let api = api_for(gc, &kind, namespace);
    let found = live(&api, &owner.name, &owner.uid, || {
        describe(&kind, namespace, &owner.name)
    })
    .await?;
    Ok(match found {
        None => OwnerState::Dangling,
        Some(m)
            if m.metadata.deletion_timestamp.is_some()
                && has_finalizer(&m, FINALIZER_FOREGROUND) =>
        {
            OwnerState::Waiting
        }
        Some(_) => OwnerState::Solid,
    })
}

/// Merge-patches `ownerReferences` (and only them) with a resourceVersion precondition.
async fn write_owner_refs(
    api: &Api<DynamicObject>,
    live: &PartialObjectMeta<DynamicObject>,
    refs: Vec<Value>,
    what: &str,
) -> Result<(), GcError> {
    let refs = if refs.is_empty() {
        Value::Null
    } else {
        Value::Array(refs)
    };
    let patch = json!({"metadata": {
        "resourceVersion": live.metadata.resource_version,
        "ownerReferences": refs,
    }});
    match api
        .patch_metadata(
            &live.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, 404) => Ok(()),
        Err(source) => Err(GcError::Write {
            action: "update owner references of",
            what: what.to_string(),
            source,
        }),
    }
}

fn owner_refs_json(live: &PartialObjectMeta<DynamicObject>) -> Vec<Value> {
    live.metadata
        .owner_references
        .iter()
        .flatten()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect()
}

fn ref_uid(v: &Value) -> &str {
    v.get("uid").and_then(Value::as_str).unwrap_or_default()
}

async fn delete(
    api: &Api<DynamicObject>,
    name: &str,
    uid: &str,
    policy: PropagationPolicy,
    what: &str,
) -> Result<(), GcError> {
    tracing::debug!(object = what, ?policy, "garbage collector: deleting");
    let dp = DeleteParams {
        propagation_policy: Some(policy),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(()),
        // Gone already, or replaced by an object of the same name.
        Err(e) if is_code(&e, 404) || is_code(&e, 409) => Ok(()),
        Err(source) => Err(GcError::Write {
            action: "delete",
            what: what.to_string(),
            source,
        }),
    }
}

async fn attempt_to_delete(gc: &Collector, uid: &str) -> Result<(), GcError> {
    let Some(node) = gc.graph.lock().get(uid).cloned() else {
        return Ok(());
    };
    // Being deleted by someone else and not waiting for its dependents: nothing to do.
    if node.deleting && !node.deleting_dependents() {
        return Ok(());
    }
    // Owners all observed and solid: a change to any of them will bring us back.
    if !node.deleting_dependents() && gc.graph.lock().owners_all_solid(uid) {
        return Ok(());
    }
    let ns = node.namespace.as_deref();
    let what = describe(&node.kind, ns, &node.name);
    let api = api_for(gc, &node.kind, ns);
    let Some(latest) = live(&api, &node.name, uid, || what.clone()).await? else {
        // Gone: the watch will say so too; act on it now.
        let work = gc.graph.lock().remove(uid);
        gc.enqueue(work);
        return Ok(());
    };
    if latest.metadata.deletion_timestamp.is_some() {
        if has_finalizer(&latest, FINALIZER_FOREGROUND) {
            return process_deleting_dependents(gc, uid, &latest, &api, &what).await;
        }
        return Ok(());
    }
    let owners: Vec<Owner> = match Node::from_meta(&node.kind, &latest.metadata) {
        Some((_, n)) => n.owners,
        None => return Ok(()),
    };
    if owners.is_empty() {
        return Ok(());
    }
    let mut solid = Vec::new();
    let mut gone = Vec::new();
    let mut waiting = Vec::new();
    for o in &owners {
        match classify(gc, &node, o).await? {
            OwnerState::Solid => solid.push(o.uid.clone()),
            OwnerState::Dangling => gone.push(o.uid.clone()),
            OwnerState::Waiting => waiting.push(o.uid.clone()),
        }
    }
    tracing::trace!(object = %what, ?solid, ?gone, ?waiting, "garbage collector: classified owners");
    if !solid.is_empty() {
        if gone.is_empty() && waiting.is_empty() {
            return Ok(());
        }
        // Still owned: only let go of the owners that are gone or going.
        let keep: Vec<Value> = owner_refs_json(&latest)
            .into_iter()
            .filter(|r| !gone.iter().chain(&waiting).any(|u| u == ref_uid(r)))
            .collect();
        return write_owner_refs(&api, &latest, keep, &what).await;
    }
    let own_dependents = gc.graph.lock().dependents(uid);
    if !waiting.is_empty() && !own_dependents.is_empty() {
        // A dependent of ours already waits on its dependents: a cycle. Unblock our own
        // references so the owner does not wait on us forever (upstream does the same).
        if own_dependents.iter().any(|(_, d)| d.deleting_dependents()) {
            let unblocked: Vec<Value> = owner_refs_json(&latest)
                .into_iter()
                .map(|mut r| {
                    if r.get("blockOwnerDeletion") == Some(&Value::Bool(true)) {
                        r["blockOwnerDeletion"] = Value::Bool(false);
                    }
                    r
                })
                .collect();
            write_owner_refs(&api, &latest, unblocked, &what).await?;
        }
        // Our owner waits for us, so we wait for our own dependents.
        return delete(&api, &node.name, uid, PropagationPolicy::Foreground, &what).await;
    }
    // No owner left: collect, honouring how the object itself asked to be deleted.
    let policy = if has_finalizer(&latest, FINALIZER_ORPHAN) {
        PropagationPolicy::Orphan
    } else if has_finalizer(&latest, FINALIZER_FOREGROUND) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    };
    delete(&api, &node.name, uid, policy, &what).await
}

/// An owner deleting in the foreground: done when no blocking dependent remains.
async fn process_deleting_dependents(
    gc: &Collector,
    uid: &str,
    latest: &PartialObjectMeta<DynamicObject>,
    api: &Api<DynamicObject>,
    what: &str,
) -> Result<(), GcError> {
    let blocking: Vec<(String, Node)> = gc
        .graph
        .lock()
        .dependents(uid)
        .into_iter()
        .filter(|(_, d)| d.owners.iter().any(|o| o.uid == uid && o.block))
        .collect();
    if blocking.is_empty() {
        ensure_graph_has_pods(gc, uid, latest.metadata.namespace.as_deref(), what).await?;
        return remove_finalizer(api, latest, FINALIZER_FOREGROUND, what).await;
    }
    for (dep, node) in blocking {
        if !node.deleting_dependents() {
            gc.queue.add(Work::AttemptToDelete(dep));
        }
    }
    Ok(())
}

/// Removes one finalizer with a resourceVersion precondition.
async fn remove_finalizer(
    api: &Api<DynamicObject>,
    latest: &PartialObjectMeta<DynamicObject>,
    finalizer: &str,
    what: &str,
) -> Result<(), GcError> {
    let rest: Vec<&String> = latest
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != finalizer)
        .collect();
    if rest.len() == latest.metadata.finalizers.as_ref().map_or(0, Vec::len) {
        return Ok(());
    }
    let rest = if rest.is_empty() {
        Value::Null
    } else {
        json!(rest)
    };
    let patch = json!({"metadata": {
        "resourceVersion": latest.metadata.resource_version,
        "finalizers": rest,
    }});
    tracing::debug!(
        object = what,
        finalizer,
        "garbage collector: removing finalizer"
    );
    match api
        .patch_metadata(
            &latest.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, 404) => Ok(()),
        Err(source) => Err(GcError::Write {
            action: "remove a finalizer from",
            what: what.to_string(),
            source,
        }),
    }
}

/// Removes `uid` from the owner references of its dependents, then the owner's `orphan`
/// finalizer.
async fn orphan_dependents(gc: &Collector, uid: &str) -> Result<(), GcError> {
    let Some(owner) = gc.graph.lock().get(uid).cloned() else {
        return Ok(());
    };
    let owner_what = describe(&owner.kind, owner.namespace.as_deref(), &owner.name);
    let owner_api = api_for(gc, &owner.kind, owner.namespace.as_deref());
    let Some(owner_live) = live(&owner_api, &owner.name, uid, || owner_what.clone()).await? else {
        return Ok(());
    };
    if owner_live.metadata.deletion_timestamp.is_none()
        || !has_finalizer(&owner_live, FINALIZER_ORPHAN)
    {
        return Ok(());
    }
    let dependents = gc.graph.lock().dependents(uid);
    for (dep_uid, dep) in dependents {
        let what = describe(&dep.kind, dep.namespace.as_deref(), &dep.name);
        let api = api_for(gc, &dep.kind, dep.namespace.as_deref());
        let Some(latest) = live(&api, &dep.name, &dep_uid, || what.clone()).await? else {
            continue;
        };
        let refs = owner_refs_json(&latest);
        if !refs.iter().any(|r| ref_uid(r) == uid) {
            continue;
        }
        let keep: Vec<Value> = refs.into_iter().filter(|r| ref_uid(r) != uid).collect();
        write_owner_refs(&api, &latest, keep, &what).await?;
    }
    ensure_graph_has_pods(gc, uid, owner.namespace.as_deref(), &owner_what).await?;
    remove_finalizer(&owner_api, &owner_live, FINALIZER_ORPHAN, &owner_what).await
}

/// Before an owner's foreground or orphan finalizer goes on the graph's word that no
/// dependent is left: pods reach the graph through the shared pod informer, which can lag
/// behind under load, so the owner's namespace's pods are listed once; a live pod naming
/// the owner that the graph lacks means "not yet" (the work is retried).
async fn ensure_graph_has_pods(
    gc: &Collector,
    uid: &str,
    namespace: Option<&str>,
    what: &str,
) -> Result<(), GcError> {
    let Some(ns) = namespace else {
        return Ok(());
    };
    let pods = Api::<DynamicObject>::namespaced_with(
        gc.client.clone(),
        ns,
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
    );
    let listed = pods
        .list_metadata(&kube::api::ListParams::default())
        .await
        .map_err(|source| GcError::Get {
            what: format!("the pods of namespace {ns}"),
            source,
        })?;
    let known: std::collections::HashSet<String> = gc
        .graph
        .lock()
        .dependents(uid)
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    let missed = listed.items.iter().any(|p| {
        p.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.uid == uid)
            && p.metadata.uid.as_ref().is_some_and(|u| !known.contains(u))
    });
    if missed {
        return Err(GcError::GraphBehind {
            what: what.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use k1s_apiserver::test_util::TestApiServer;
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use kube::api::PostParams;
    use kube::discovery::ApiResource;
    use parking_lot::{Mutex, RwLock};
    use tokio::sync::Notify;

    use super::*;
    use crate::garbagecollector::GcConfig;
    use crate::garbagecollector::graph::Graph;
    use crate::garbagecollector::queue::WorkQueue;

    /// A collector whose pod informer is never started: its graph sees no pod at all, as
    /// when the shared informer lags far behind the API.
    fn stalled_collector(client: kube::Client) -> Collector {
        Collector {
            client: client.clone(),
            config: GcConfig::default(),
            graph: Mutex::new(Graph::default()),
            queue: Arc::new(WorkQueue::new()),
            kinds: RwLock::new(HashMap::new()),
            watches: Mutex::new(HashMap::new()),
            synced_changed: Notify::new(),
            sync_deadline: Mutex::new(tokio::time::Instant::now()),
            pods: k1s_informer::Informer::all(client),
        }
    }

    #[tokio::test]
    async fn an_owner_waits_while_a_live_pod_naming_it_is_missing_from_the_graph() {
        let server = TestApiServer::new().await;
        let client = server.client();
        let pp = PostParams::default();
        let owners: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let owner = owners
            .create(
                &pp,
                &serde_json::from_value(json!({"metadata": {"name": "owner"}})).expect("cm"),
            )
            .await
            .expect("create owner");
        let owner_uid = owner.uid().expect("owner uid");
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "dependent", "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid,
            }]},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .expect("pod");
        let pod = pods.create(&pp, &pod).await.expect("create pod");

        let gc = stalled_collector(client);
        let verdict =
            ensure_graph_has_pods(&gc, &owner_uid, Some("default"), "ConfigMap default/owner")
                .await;
        assert!(
            matches!(verdict, Err(GcError::GraphBehind { .. })),
            "a pod the graph lacks must hold the owner back: {verdict:?}"
        );

        // Once the graph has seen the pod, the owner may go.
        let pod_kind = Arc::new(Kind {
            api: ApiResource::erase::<Pod>(&()),
            namespaced: true,
        });
        let (uid, node) = Node::from_meta(&pod_kind, &pod.metadata).expect("node");
        gc.graph.lock().upsert(uid, node);
        ensure_graph_has_pods(&gc, &owner_uid, Some("default"), "ConfigMap default/owner")
            .await
            .expect("every pod naming the owner is in the graph");

        // Cluster-scoped owners have no pods to check.
        ensure_graph_has_pods(&gc, "no-such-uid", None, "a cluster-scoped owner")
            .await
            .expect("cluster-scoped owner");
    }
}

//! The garbage collector: follows `ownerReferences` across every resource.
//!
//! - an owner deleted with `propagationPolicy=Orphan` (finalizer `orphan`): its references
//!   are removed from every dependent, then the finalizer;
//! - an owner deleted with `Foreground` (finalizer `foregroundDeletion`): its dependents
//!   are deleted, and the finalizer goes once no dependent with `blockOwnerDeletion` is left;
//! - a dependent whose owners are all gone is deleted; one with some owners left loses
//!   the references to the missing ones. "Gone" is confirmed by a live read of the owner
//!   (absent, or present with another uid), never inferred from a cache alone.
//!
//! Each pass rebuilds the graph from metadata-only lists; passes run when the cluster's
//! resource version moved.

use std::collections::HashMap;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions};
use kube::core::PartialObjectMeta;
use kube::discovery::ApiResource;
use serde_json::json;

use crate::resources::{Served, listable};
use crate::{Error, trigger};

const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

/// Runs the controller until aborted.
pub async fn run(client: kube::Client) {
    let mut seen = String::new();
    loop {
        if let Err(e) = pass(&client).await {
            tracing::warn!(error = %e, "garbage collector pass failed; retrying");
        }
        trigger::next(&client, &mut seen, Duration::from_secs(5)).await;
    }
}

/// One object of the graph.
struct Node {
    resource: Served,
    meta: PartialObjectMeta<DynamicObject>,
}

impl Node {
    fn uid(&self) -> &str {
        self.meta.metadata.uid.as_deref().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.meta.metadata.name.as_deref().unwrap_or("")
    }
    fn namespace(&self) -> Option<&str> {
        self.meta.metadata.namespace.as_deref()
    }
    fn finalizers(&self) -> &[String] {
        self.meta.metadata.finalizers.as_deref().unwrap_or(&[])
    }
    fn deleting(&self) -> bool {
        self.meta.metadata.deletion_timestamp.is_some()
    }
    fn owners(&self) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference] {
        self.meta
            .metadata
            .owner_references
            .as_deref()
            .unwrap_or(&[])
    }
    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        api_for(client, &self.resource.resource, self.namespace())
    }
}

fn api_for(client: &kube::Client, ar: &ApiResource, ns: Option<&str>) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

fn ignore_gone(r: Result<(), kube::Error>) -> Result<(), Error> {
    match r {
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        other => other.map_err(Error::from),
    }
}

/// One pass over the whole graph.
pub async fn pass(client: &kube::Client) -> Result<(), Error> {
    let resources = listable(client).await?;
    let mut nodes: Vec<Node> = Vec::new();
    for r in &resources {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &r.resource);
        let list = match api.list_metadata(&ListParams::default()).await {
            Ok(l) => l,
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => return Err(e.into()),
        };
        nodes.extend(list.items.into_iter().map(|meta| Node {
            resource: r.clone(),
            meta,
        }));
    }
    let by_uid: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.uid(), i))
        .collect();
    let mut dependents: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in n.owners() {
            dependents.entry(o.uid.as_str()).or_default().push(i);
        }
    }

    for owner in nodes.iter().filter(|n| n.deleting()) {
        let deps: Vec<&Node> = dependents
            .get(owner.uid())
            .map(|d| d.iter().map(|i| &nodes[*i]).collect())
            .unwrap_or_default();
        if owner.finalizers().iter().any(|f| f == ORPHAN) {
            for d in &deps {
                remove_owner_refs(client, d, &[owner.uid()]).await?;
            }
            remove_finalizer(client, owner, ORPHAN).await?;
        } else if owner.finalizers().iter().any(|f| f == FOREGROUND) {
            let mut blocking = 0;
            for d in &deps {
                let blocks = d
                    .owners()
                    .iter()
                    .any(|o| o.uid == owner.uid() && o.block_owner_deletion == Some(true));
                if blocks {
                    blocking += 1;
                }
                if !d.deleting() {
                    let policy = if blocks {
                        DeleteParams::foreground()
                    } else {
                        DeleteParams::background()
                    };
                    delete_node(client, d, policy).await?;
                }
            }
            if blocking == 0 {
                remove_finalizer(client, owner, FOREGROUND).await?;
            }
        }
    }

    for n in nodes
        .iter()
        .filter(|n| !n.owners().is_empty() && !n.deleting())
    {
        let mut absent: Vec<&str> = Vec::new();
        for o in n.owners() {
            let present = match by_uid.get(o.uid.as_str()) {
                // Cross-namespace owners are invalid and count as absent, like upstream.
                Some(i) => {
                    let owner = &nodes[*i];
                    owner.namespace().is_none() || owner.namespace() == n.namespace()
                }
                None => owner_exists(client, &resources, n, o).await?,
            };
            if !present {
                absent.push(o.uid.as_str());
            }
        }
        if absent.is_empty() {
            continue;
        }
        if absent.len() == n.owners().len() {
            tracing::info!(name = n.name(), kind = %n.resource.resource.kind, "deleting object whose owners are gone");
            delete_node(client, n, DeleteParams::background()).await?;
        } else {
            remove_owner_refs(client, n, &absent).await?;
        }
    }
    Ok(())
}

/// Reads the owner live: true when an object with that name and uid exists.
async fn owner_exists(
    client: &kube::Client,
    resources: &[Served],
    dependent: &Node,
    owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Result<bool, Error> {
    let (group, version) = match owner.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", owner.api_version.as_str()),
    };
    let Some(r) = resources
        .iter()
        .find(|r| r.resource.group == group && r.resource.kind == owner.kind)
    else {
        // An owner kind the server does not serve: keep the reference (upstream retries).
        tracing::debug!(kind = %owner.kind, %version, "owner kind not served; keeping reference");
        return Ok(true);
    };
    let ns = if r.namespaced {
        dependent.namespace()
    } else {
        None
    };
    if r.namespaced && ns.is_none() {
        // A cluster-scoped dependent cannot have a namespaced owner.
        return Ok(false);
    }
    match api_for(client, &r.resource, ns)
        .get_metadata_opt(&owner.name)
        .await?
    {
        Some(found) => Ok(found.metadata.uid.as_deref() == Some(owner.uid.as_str())),
        None => Ok(false),
    }
}

async fn delete_node(
    client: &kube::Client,
    n: &Node,
    mut params: DeleteParams,
) -> Result<(), Error> {
    params.preconditions = Some(Preconditions {
        uid: n.meta.metadata.uid.clone(),
        resource_version: None,
    });
    ignore_gone(n.api(client).delete(n.name(), &params).await.map(|_| ()))
}

/// Rewrites `ownerReferences` without the given owners (guarded by resourceVersion).
async fn remove_owner_refs(client: &kube::Client, n: &Node, uids: &[&str]) -> Result<(), Error> {
    let kept: Vec<_> = n
        .owners()
        .iter()
        .filter(|o| !uids.contains(&o.uid.as_str()))
        .collect();
    if kept.len() == n.owners().len() {
        return Ok(());
    }
    let patch = json!({"metadata": {
        "resourceVersion": n.meta.metadata.resource_version,
        "ownerReferences": kept,
    }});
    ignore_gone(
        n.api(client)
            .patch_metadata(n.name(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ()),
    )
}

async fn remove_finalizer(client: &kube::Client, n: &Node, finalizer: &str) -> Result<(), Error> {
    let kept: Vec<&String> = n.finalizers().iter().filter(|f| *f != finalizer).collect();
    let patch = json!({"metadata": {
        "resourceVersion": n.meta.metadata.resource_version,
        "finalizers": kept,
    }});
    ignore_gone(
        n.api(client)
            .patch_metadata(n.name(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ()),
    )
}

//! The namespace controller: empties a terminating namespace of every namespaced object,
//! then removes the `kubernetes` finalizer through `/finalize` so the namespace goes.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};

use crate::resources::{Served, listable};
use crate::{Error, trigger};

/// The finalizer this controller owns.
const FINALIZER: &str = "kubernetes";

/// Runs the controller until aborted.
pub async fn run(client: kube::Client) {
    let mut seen = String::new();
    loop {
        if let Err(e) = pass(&client).await {
            tracing::warn!(error = %e, "namespace controller pass failed; retrying");
        }
        trigger::next(&client, &mut seen, Duration::from_secs(5)).await;
    }
}

/// One pass over every terminating namespace.
pub async fn pass(client: &kube::Client) -> Result<(), Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let terminating: Vec<Namespace> = namespaces
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|ns| {
            ns.metadata.deletion_timestamp.is_some()
                && ns
                    .spec
                    .as_ref()
                    .and_then(|s| s.finalizers.as_ref())
                    .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
        })
        .collect();
    if terminating.is_empty() {
        return Ok(());
    }
    let resources: Vec<Served> = listable(client)
        .await?
        .into_iter()
        .filter(|r| r.namespaced)
        .collect();
    for ns in terminating {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let mut remaining = 0usize;
        for r in &resources {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &name, &r.resource);
            let items = match api.list_metadata(&ListParams::default()).await {
                Ok(list) => list.items,
                // A resource that went away (a CRD deleted meanwhile) has nothing left.
                Err(kube::Error::Api(s)) if s.code == 404 => continue,
                Err(e) => return Err(e.into()),
            };
            let live: Vec<_> = items
                .iter()
                .filter(|o| o.metadata.deletion_timestamp.is_none())
                .collect();
            remaining += items.len();
            if live.is_empty() {
                continue;
            }
            if r.delete_collection {
                api.delete_collection(&DeleteParams::background(), &ListParams::default())
                    .await?;
            } else {
                for o in live {
                    let n = o.metadata.name.as_deref().unwrap_or("");
                    match api.delete(n, &DeleteParams::background()).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        if remaining > 0 {
            // Deleted objects may still wait for finalizers; the next pass counts again.
            let recount = count(client, &name, &resources).await?;
            if recount > 0 {
                tracing::debug!(namespace = %name, remaining = recount, "namespace not empty yet");
                continue;
            }
        }
        finalize(&namespaces, &name).await?;
    }
    Ok(())
}

async fn count(client: &kube::Client, ns: &str, resources: &[Served]) -> Result<usize, Error> {
    let mut n = 0;
    for r in resources {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &r.resource);
        match api.list_metadata(&ListParams::default().limit(1)).await {
            Ok(list) => n += list.items.len(),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// Drops the `kubernetes` finalizer through the finalize subresource.
async fn finalize(namespaces: &Api<Namespace>, name: &str) -> Result<(), Error> {
    let mut ns = match namespaces.get(name).await {
        Ok(ns) => ns,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if let Some(spec) = ns.spec.as_mut() {
        spec.finalizers = Some(
            spec.finalizers
                .take()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f != FINALIZER)
                .collect(),
        );
    }
    match namespaces
        .replace_subresource("finalize", name, &PostParams::default(), &ns)
        .await
    {
        Ok(_) => {
            tracing::info!(namespace = %name, "namespace emptied and finalized");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

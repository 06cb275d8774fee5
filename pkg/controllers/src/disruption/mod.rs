//! Disruption controller (upstream `pkg/controller/disruption`): keeps the status of every
//! PodDisruptionBudget current — how many pods it expects, how many are healthy, how
//! many must be, how many may be disrupted now — which the eviction subresource reads
//! to allow or refuse an eviction. Evictions the API server approved are remembered in
//! `status.disruptedPods` until the pod is gone or two minutes pass.

mod reconcile;

use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};

use crate::Shutdown;

pub use reconcile::{Budget, DELETION_TIMEOUT, compute_status};

/// Upstream's controller name, also the events' reporting component.
pub const NAME: &str = "disruption-controller";

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown))
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown) {
    let pdbs: Api<PodDisruptionBudget> = Api::all(client.clone());

    // Pods are read from the shared informer's objects: a slim copy of each would
    // still cost a whole `Pod` struct per pod; the controller's own subscription only
    // maps changes to the budgets that select them.
    let informer = crate::pod_informer(&client);

    let controller = Controller::new(pdbs, watcher::Config::default());
    let pdb_store = controller.store();
    let ctx = Arc::new(reconcile::Context {
        client: client.clone(),
        pods: informer.clone(),
        recorder: crate::workload::recorder(client.clone(), NAME),
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        shutdown.wait().await;
        let _ = stop_tx.send(());
    });
    controller
        .watches_shared_stream(informer.touched(), move |pod: Arc<Pod>| {
            budgets_of(&pdb_store, &pod)
        })
        .graceful_shutdown_on(async move {
            let _ = stop_rx.await;
        })
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::trace!(pdb = %obj.name, "pdb synced"),
                Err(e) => tracing::debug!(error = %e, "pdb sync failed"),
            }
        })
        .await;
}

/// The budgets in the pod's namespace whose selector matches it.
fn budgets_of(
    store: &reflector::Store<PodDisruptionBudget>,
    pod: &Pod,
) -> Vec<ObjectRef<PodDisruptionBudget>> {
    let ns = pod.namespace().unwrap_or_default();
    let labels = pod.labels();
    store
        .state()
        .iter()
        .filter(|pdb| pdb.namespace().as_deref() == Some(ns.as_str()))
        .filter(|pdb| reconcile::selector_of(pdb).is_some_and(|s| s.matches(labels)))
        .map(|pdb| ObjectRef::from_obj(pdb.as_ref()))
        .collect()
}

//! Namespace controller (upstream `pkg/controller/namespace`): when a namespace is
//! deleted and still carries the `kubernetes` finalizer in `spec.finalizers`, it marks the
//! namespace Terminating, deletes every namespaced object in it (every resource discovery
//! lists, CRDs included), waits while objects with finalizers remain, and then releases
//! the finalizer through `/finalize` so the API server can remove the namespace.

pub mod conditions;
mod reconcile;

use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::runtime::{Controller, watcher};

use crate::Shutdown;

pub use reconcile::NamespaceError;

/// The finalizer this controller owns in `spec.finalizers`.
pub const FINALIZER: &str = "kubernetes";

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown))
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ctx = Arc::new(reconcile::Context { client });
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
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::trace!(namespace = %obj.name, "namespace synced"),
                Err(e) => tracing::debug!(error = %e, "namespace sync failed"),
            }
        })
        .await;
}

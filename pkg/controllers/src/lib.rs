//! Controllers that run inside `k1s server`. Each is an ordinary `kube` client: it is
//! handed a [`kube::Client`] and knows nothing about the apiserver's internals.

pub mod garbagecollector;
pub mod namespace;
mod resources;
mod trigger;

use std::future::Future;
use std::pin::Pin;

/// A controller's entry point: runs until its task is aborted.
type Run = fn(kube::Client) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Every controller, by the name upstream's kube-controller-manager gives it.
pub const CONTROLLERS: &[(&str, Run)] = &[
    ("namespace-controller", |c| Box::pin(namespace::run(c))),
    ("garbage-collector-controller", |c| {
        Box::pin(garbagecollector::run(c))
    }),
];

/// Starts every controller on the current runtime; abort the handles to stop them.
pub fn start_all(client: kube::Client) -> Vec<tokio::task::JoinHandle<()>> {
    CONTROLLERS
        .iter()
        .map(|(name, run)| {
            tracing::info!(controller = name, "starting");
            tokio::spawn(run(client.clone()))
        })
        .collect()
}

/// Errors of one controller pass; the pass is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
}

//! DaemonSet controller (placeholder while it is written).
use futures::future::BoxFuture;

use crate::Shutdown;

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(_client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(shutdown.wait())
}

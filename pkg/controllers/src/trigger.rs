//! When to run a level-triggered pass: whenever the cluster's resource version moved,
//! at most once per interval.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};

/// Pace of the passes.
const INTERVAL: Duration = Duration::from_millis(250);

/// Waits for the next pass; `last` is the resource version the previous pass saw.
/// Passes also run every `resync` even when nothing changed (retries of failed work).
pub async fn next(client: &kube::Client, last: &mut String, resync: Duration) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let started = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(INTERVAL).await;
        // A one-item list answers with the store's current revision: cheap change detection.
        if let Ok(list) = namespaces
            .list_metadata(&ListParams::default().limit(1))
            .await
        {
            let rv = list.metadata.resource_version.unwrap_or_default();
            if rv != *last {
                *last = rv;
                return;
            }
        }
        if started.elapsed() >= resync {
            return;
        }
    }
}

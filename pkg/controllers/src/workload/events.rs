//! Events the controllers write (`events.k8s.io/v1`, readable as core Events), with the
//! reporting component named as upstream names it (`replicaset-controller`, …).

use kube::runtime::events::{Recorder, Reporter};

/// A recorder whose events name `controller` (upstream's component name) as their
/// reporting controller and source.
pub fn recorder(client: kube::Client, controller: &str) -> Recorder {
    Recorder::new(
        client,
        Reporter {
            controller: controller.to_string(),
            instance: None,
        },
    )
}

//! VolumeBinding's PreBind (upstream `pkg/scheduler/framework/plugins/volumebinding`):
//! before a pod is bound, each of its claims that is still unbound and whose
//! StorageClass waits for the first consumer (`volumeBindingMode: WaitForFirstConsumer`)
//! gets the chosen node in `volume.kubernetes.io/selected-node`, which tells the class's
//! provisioner where to make the volume; the pod is bound only once every such claim is
//! bound (upstream waits up to its `bindTimeoutSeconds`, 600 s).

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The annotation that names the node a delayed-binding claim's volume must reach.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// Upstream's default `bindTimeoutSeconds`.
const BIND_TIMEOUT: Duration = Duration::from_secs(600);
/// How often a waiting bind looks at its claims again.
const POLL: Duration = Duration::from_millis(200);

/// Why the volumes of a pod could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum VolumeBindingError {
    /// An API call failed.
    #[error("binding volumes: {0}")]
    Api(#[from] kube::Error),
    /// The claims were not bound in time.
    #[error("binding volumes: context deadline exceeded")]
    Timeout,
}

fn claim_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.clone())
        .collect()
}

fn is_bound(claim: &PersistentVolumeClaim) -> bool {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .is_some_and(|v| !v.is_empty())
        && claim
            .annotations()
            .contains_key("pv.kubernetes.io/bind-completed")
}

fn class_of(claim: &PersistentVolumeClaim) -> String {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .or_else(|| {
            claim
                .annotations()
                .get("volume.beta.kubernetes.io/storage-class")
                .cloned()
        })
        .unwrap_or_default()
}

/// Selects `node` for the pod's unbound delayed-binding claims, then waits until they
/// are bound. Pods without claims return at once.
pub async fn pre_bind(
    client: &kube::Client,
    pod: &Pod,
    node: &str,
) -> Result<(), VolumeBindingError> {
    let names = claim_names(pod);
    if names.is_empty() {
        return Ok(());
    }
    let ns = pod.namespace().unwrap_or_default();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let classes: Api<StorageClass> = Api::all(client.clone());
    let mut waiting = Vec::new();
    for name in names {
        let Some(claim) = claims.get_opt(&name).await? else {
            continue;
        };
        if is_bound(&claim) {
            continue;
        }
        let class = class_of(&claim);
        if class.is_empty() {
            continue;
        }
        let Some(sc) = classes.get_opt(&class).await? else {
            continue;
        };
        if sc.volume_binding_mode.as_deref() != Some("WaitForFirstConsumer") {
            continue;
        }
        if claim
            .annotations()
            .get(ANN_SELECTED_NODE)
            .map(String::as_str)
            != Some(node)
        {
            let patch = json!({"metadata": {"annotations": {ANN_SELECTED_NODE: node}}});
            claims
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        waiting.push(name);
    }
    let deadline = tokio::time::Instant::now() + BIND_TIMEOUT;
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for name in waiting {
            match claims.get_opt(&name).await? {
                Some(c) if !is_bound(&c) => still.push(name),
                _ => {}
            }
        }
        waiting = still;
        if waiting.is_empty() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(VolumeBindingError::Timeout);
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

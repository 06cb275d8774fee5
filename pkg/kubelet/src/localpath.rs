//! The local-path provisioner k3s bundles (`rancher.io/local-path`), run by the node
//! whose disk holds the volumes: a claim of a class with that provisioner, once the
//! scheduler has chosen this node for it (`volume.kubernetes.io/selected-node`, the
//! class waiting for its first consumer), gets a folder
//! `<storage>/pvc-<uid>_<namespace>_<name>` and a PersistentVolume `pvc-<uid>` (a
//! `hostPath` pinned to this node, pre-bound to the claim, which the PV binder then
//! binds). When the volume is released and its reclaim policy is `Delete`, the folder
//! and the volume are removed; `Retain` keeps both.
//!
//! [`ensure_default_class`] makes k3s's default StorageClass `local-path`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;

/// The provisioner's name, as k3s's local-path-provisioner registers it.
pub const PROVISIONER: &str = "rancher.io/local-path";
/// The default StorageClass's name.
pub const CLASS_NAME: &str = "local-path";
/// The annotation upstream's provisioners set on the volumes they make.
const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The node the scheduler chose for a claim that waits for its first consumer.
const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The local-path provisioner's record of the node a volume lives on.
const ANN_LOCAL_PATH_NODE: &str = "local.path.provisioner/selected-node";
/// How often every claim and volume is looked at again.
const RESYNC: Duration = Duration::from_secs(30);

/// Why a claim or volume could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum LocalPathError {
    /// An API call failed.
    #[error("{0}: {1}")]
    Api(String, #[source] kube::Error),
    /// The node's folder could not be made or removed.
    #[error("{0}")]
    Io(String),
}

/// How the provisioner runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node: only claims the scheduler placed here are provisioned.
    pub node_name: String,
    /// Where the volumes' folders are made (k3s's `--default-local-storage-path`).
    pub storage_dir: PathBuf,
}

/// k3s's default StorageClass: `local-path`, provisioned by [`PROVISIONER`], bound when
/// the first pod uses a claim, deleted with its claim.
pub fn default_class() -> StorageClass {
    serde_json::from_value(json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": CLASS_NAME,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }))
    .unwrap_or_default()
}

/// Creates the default StorageClass unless a class of that name exists (a user's edits
/// to it, or their own class of that name, are kept).
pub async fn ensure_default_class(client: kube::Client) -> Result<(), LocalPathError> {
    let api: Api<StorageClass> = Api::all(client);
    match api.create(&PostParams::default(), &default_class()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(LocalPathError::Api(
            format!("create storage class {CLASS_NAME}"),
            e,
        )),
    }
}

/// The folder of a claim's volume, in the local-path provisioner's layout.
pub fn volume_dir(storage_dir: &Path, uid: &str, namespace: &str, name: &str) -> PathBuf {
    storage_dir.join(format!("pvc-{uid}_{namespace}_{name}"))
}

struct Ctx {
    client: kube::Client,
    config: Config,
    recorder: Recorder,
}

/// Runs the provisioner until `shutdown` resolves.
pub async fn run<F>(client: kube::Client, config: Config, shutdown: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: PROVISIONER.to_string(),
            instance: Some(format!("local-path-provisioner-{}", config.node_name)),
        },
    );
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        config,
        recorder,
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let claims = Controller::new(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .graceful_shutdown_on(stop(stop_rx.clone()))
    .run(sync_claim, error_policy, ctx.clone())
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "local-path claim sync failed");
        }
    });
    let volumes = Controller::new(
        Api::<PersistentVolume>::all(client),
        watcher::Config::default(),
    )
    .graceful_shutdown_on(stop(stop_rx))
    .run(sync_volume, error_policy, ctx)
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "local-path volume sync failed");
        }
    });
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    futures::join!(claims, volumes);
}

fn error_policy<K>(_obj: Arc<K>, err: &LocalPathError, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %err, "local-path provisioner");
    Action::requeue(Duration::from_secs(2))
}

async fn event<K: Resource<DynamicType = ()>>(
    ctx: &Ctx,
    obj: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::debug!(error = %e, reason, "cannot record event");
    }
}

fn claim_class(claim: &PersistentVolumeClaim) -> String {
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

/// What to make for a claim: the volume, given the claim, its class and this node.
pub fn volume_for(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    node: &str,
    path: &Path,
) -> PersistentVolume {
    let spec = claim.spec.clone().unwrap_or_default();
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone());
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": format!("pvc-{}", claim.metadata.uid.clone().unwrap_or_default()),
            "annotations": {ANN_PROVISIONED_BY: PROVISIONER, ANN_LOCAL_PATH_NODE: node},
        },
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": spec.access_modes,
            "persistentVolumeReclaimPolicy": class.reclaim_policy.clone().unwrap_or_else(|| "Delete".into()),
            "storageClassName": class.metadata.name,
            "mountOptions": class.mount_options,
            "volumeMode": "Filesystem",
            "hostPath": {"path": path.to_string_lossy(), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
            "claimRef": {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "name": claim.metadata.name, "namespace": claim.metadata.namespace,
                "uid": claim.metadata.uid, "resourceVersion": claim.metadata.resource_version,
            },
        },
    }))
    .unwrap_or_default()
}

/// Provisions a volume for the claim when it is this node's to make.
async fn sync_claim(
    claim: Arc<PersistentVolumeClaim>,
    ctx: Arc<Ctx>,
) -> Result<Action, LocalPathError> {
    let requeue = Ok(Action::requeue(RESYNC));
    if claim.metadata.deletion_timestamp.is_some()
        || claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .is_some_and(|v| !v.is_empty())
    {
        return requeue;
    }
    let class_name = claim_class(&claim);
    if class_name.is_empty() {
        return requeue;
    }
    let classes: Api<StorageClass> = Api::all(ctx.client.clone());
    let class = classes
        .get_opt(&class_name)
        .await
        .map_err(|e| LocalPathError::Api(format!("get storage class {class_name}"), e))?;
    let Some(class) = class.filter(|c| c.provisioner == PROVISIONER) else {
        return requeue;
    };
    let node = &ctx.config.node_name;
    let selected = claim.annotations().get(ANN_SELECTED_NODE);
    let delayed = class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer");
    // A delayed claim waits for the scheduler's choice; an immediate one is made here,
    // the only node that runs the provisioner.
    match selected {
        Some(n) if n != node => return requeue,
        None if delayed => return requeue,
        _ => {}
    }
    let uid = claim.metadata.uid.clone().unwrap_or_default();
    let pv_name = format!("pvc-{uid}");
    let volumes: Api<PersistentVolume> = Api::all(ctx.client.clone());
    if volumes
        .get_opt(&pv_name)
        .await
        .map_err(|e| LocalPathError::Api(format!("get volume {pv_name}"), e))?
        .is_some()
    {
        return requeue;
    }
    let ns = claim.namespace().unwrap_or_default();
    let name = claim.name_any();
    let spec = claim.spec.clone().unwrap_or_default();
    let refuse = if spec.selector.is_some() {
        Some("claim.Spec.Selector is not supported")
    } else if spec.volume_mode.as_deref() == Some("Block") {
        Some("block volume mode is not supported by the local-path provisioner")
    } else {
        None
    };
    if let Some(why) = refuse {
        event(
            &ctx,
            claim.as_ref(),
            EventType::Warning,
            "ProvisioningFailed",
            format!("failed to provision volume with StorageClass \"{class_name}\": {why}"),
        )
        .await;
        return requeue;
    }
    event(
        &ctx,
        claim.as_ref(),
        EventType::Normal,
        "Provisioning",
        format!("External provisioner is provisioning volume for claim \"{ns}/{name}\""),
    )
    .await;
    let dir = volume_dir(&ctx.config.storage_dir, &uid, &ns, &name);
    if let Err(e) = make_dir(&dir) {
        event(
            &ctx,
            claim.as_ref(),
            EventType::Warning,
            "ProvisioningFailed",
            format!("failed to provision volume with StorageClass \"{class_name}\": {e}"),
        )
        .await;
        return Err(LocalPathError::Io(e));
    }
    let pv = volume_for(&claim, &class, node, &dir);
    match volumes.create(&PostParams::default(), &pv).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => {
            event(
                &ctx,
                claim.as_ref(),
                EventType::Warning,
                "ProvisioningFailed",
                format!("failed to provision volume with StorageClass \"{class_name}\": {e}"),
            )
            .await;
            return Err(LocalPathError::Api(format!("create volume {pv_name}"), e));
        }
    }
    tracing::info!(claim = %format!("{ns}/{name}"), volume = %pv_name, path = %dir.display(), "provisioned a local-path volume");
    event(
        &ctx,
        claim.as_ref(),
        EventType::Normal,
        "ProvisioningSucceeded",
        format!("Successfully provisioned volume {pv_name}"),
    )
    .await;
    requeue
}

fn make_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // The local-path provisioner makes its folders writable by every user.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
        .map_err(|e| format!("cannot set the mode of {}: {e}", dir.display()))
}

/// Deletes a released volume of this node whose reclaim policy is `Delete`, and its
/// folder.
async fn sync_volume(pv: Arc<PersistentVolume>, ctx: Arc<Ctx>) -> Result<Action, LocalPathError> {
    let requeue = Ok(Action::requeue(RESYNC));
    let ours = pv.annotations().get(ANN_PROVISIONED_BY).map(String::as_str) == Some(PROVISIONER)
        && pv.annotations().get(ANN_LOCAL_PATH_NODE) == Some(&ctx.config.node_name);
    let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
    let spec = pv.spec.clone().unwrap_or_default();
    let policy = spec
        .persistent_volume_reclaim_policy
        .as_deref()
        .unwrap_or("Delete");
    if !ours
        || pv.metadata.deletion_timestamp.is_some()
        || phase != Some("Released")
        || policy != "Delete"
    {
        return requeue;
    }
    let pv_name = pv.name_any();
    if let Some(h) = &spec.host_path {
        let dir = PathBuf::from(&h.path);
        // Only a folder this provisioner made is removed, never what a user pointed at.
        let made_here = dir.is_absolute()
            && dir
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{pv_name}_")));
        if made_here {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    let msg = format!("cannot remove {}: {e}", dir.display());
                    event(
                        &ctx,
                        pv.as_ref(),
                        EventType::Warning,
                        "VolumeFailedDelete",
                        msg.clone(),
                    )
                    .await;
                    return Err(LocalPathError::Io(msg));
                }
            }
        }
    }
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    match api.delete(&pv_name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(LocalPathError::Api(format!("delete volume {pv_name}"), e)),
    }
    tracing::info!(volume = %pv_name, "deleted a released local-path volume");
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_is_pinned_to_the_node_and_pre_bound_to_the_claim() {
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "ns", "uid": "u1", "resourceVersion": "7"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                     "resources": {"requests": {"storage": "1Gi"}}},
        }))
        .expect("claim");
        let dir = volume_dir(Path::new("/data/storage"), "u1", "ns", "data");
        assert_eq!(dir, Path::new("/data/storage/pvc-u1_ns_data"));
        let pv = volume_for(&claim, &default_class(), "node1", &dir);
        let v = serde_json::to_value(&pv).expect("json");
        assert_eq!(v["metadata"]["name"], "pvc-u1");
        assert_eq!(v["spec"]["capacity"]["storage"], "1Gi");
        assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Delete");
        assert_eq!(v["spec"]["storageClassName"], "local-path");
        assert_eq!(
            v["spec"]["hostPath"]["path"],
            "/data/storage/pvc-u1_ns_data"
        );
        assert_eq!(v["spec"]["claimRef"]["uid"], "u1");
        assert_eq!(
            v["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"]
                [0],
            "node1"
        );
        let class = serde_json::to_value(default_class()).expect("json");
        assert_eq!(class["volumeBindingMode"], "WaitForFirstConsumer");
        assert_eq!(
            class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
            "true"
        );
    }
}

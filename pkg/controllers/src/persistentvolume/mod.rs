//! PersistentVolume binder (upstream `pkg/controller/volume/persistentvolume`, static
//! binding): binds Pending claims to the best matching Available volume, keeps volume
//! phases (Available, Bound, Released) and claim phases (Pending, Bound, Lost), and
//! reclaims released volumes (Retain keeps them, Delete deletes them). Claims of a
//! class that waits for a consumer, or whose class names a provisioner, stay Pending
//! with upstream's events until an external provisioner (k1s's agent runs
//! `rancher.io/local-path`) makes a volume pre-bound to them; such volumes are
//! deleted by their provisioner, not here.

pub mod binder;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};

use crate::workload::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Resource, ResourceExt};

use crate::Shutdown;

/// Upstream's controller name.
pub const NAME: &str = "persistentvolume-binder-controller";
/// The component upstream's events name.
const EVENT_SOURCE: &str = "persistentvolume-controller";
/// Set on a claim once bound, and on both sides when the controller chose the pair.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Set when the controller (not the user) bound the object.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// The provisioner a claim waits for.
const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// The provisioner that made a volume.
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The node the scheduler chose for a claim that waits for its first consumer.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// Upstream's periodic resync of claims and volumes.
const RESYNC: Duration = Duration::from_secs(15);

/// Why a sync did not finish.
#[derive(Debug, thiserror::Error)]
pub enum BinderError {
    /// An API call failed.
    #[error("{context}: {source}")]
    Api {
        /// What was attempted.
        context: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

fn api_err(context: String) -> impl FnOnce(kube::Error) -> BinderError {
    move |source| BinderError::Api { context, source }
}

struct Context {
    client: kube::Client,
    volumes: Store<PersistentVolume>,
    claims: Store<PersistentVolumeClaim>,
    recorder: Recorder,
}

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown))
}

/// Runs the controller until `shutdown` fires: one loop over claims, one over volumes,
/// each woken by changes of the other.
pub async fn run(client: kube::Client, shutdown: Shutdown) {
    let pvcs: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let claim_ctl = Controller::new(pvcs.clone(), watcher::Config::default());
    let volume_ctl = Controller::new(pvs.clone(), watcher::Config::default());
    let ctx = Arc::new(Context {
        client: client.clone(),
        volumes: volume_ctl.store(),
        claims: claim_ctl.store(),
        recorder: crate::workload::recorder(client, EVENT_SOURCE),
    });
    let stop = |s: Shutdown| async move { s.wait().await };
    let claim_store = claim_ctl.store();
    let claims = claim_ctl
        .watches(
            pvs,
            watcher::Config::default(),
            move |pv: PersistentVolume| claims_of_volume(&claim_store, &pv),
        )
        .graceful_shutdown_on(stop(shutdown.clone()))
        .run(sync_claim, error_policy, ctx.clone())
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "claim sync failed");
            }
        });
    let volumes = volume_ctl
        .watches(
            pvcs,
            watcher::Config::default(),
            |pvc: PersistentVolumeClaim| volume_of_claim(&pvc),
        )
        .graceful_shutdown_on(stop(shutdown))
        .run(sync_volume, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "volume sync failed");
            }
        });
    futures::join!(claims, volumes);
}

/// The claim a volume names, or, for a volume bound to none, every claim still
/// waiting for one (it may fit them).
fn claims_of_volume(
    claims: &Store<PersistentVolumeClaim>,
    pv: &PersistentVolume,
) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    match pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
        Some(r) => match (r.name.as_deref(), r.namespace.as_deref()) {
            (Some(n), Some(ns)) => vec![ObjectRef::new(n).within(ns)],
            _ => Vec::new(),
        },
        None => claims
            .state()
            .iter()
            .filter(|c| {
                c.spec
                    .as_ref()
                    .and_then(|s| s.volume_name.as_deref())
                    .is_none_or(str::is_empty)
            })
            .map(|c| ObjectRef::from_obj(c.as_ref()))
            .collect(),
    }
}

fn volume_of_claim(pvc: &PersistentVolumeClaim) -> Option<ObjectRef<PersistentVolume>> {
    let name = pvc.spec.as_ref()?.volume_name.as_deref()?;
    (!name.is_empty()).then(|| ObjectRef::new(name))
}

fn error_policy<K>(_obj: Arc<K>, err: &BinderError, _ctx: Arc<Context>) -> Action {
    tracing::debug!(error = %err, "binder sync failed");
    Action::requeue(Duration::from_secs(2))
}

async fn event<K: Resource<DynamicType = ()>>(
    ctx: &Context,
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

fn claim_phase(pvc: &PersistentVolumeClaim) -> &str {
    pvc.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn volume_phase(pv: &PersistentVolume) -> &str {
    pv.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

async fn set_claim_phase(
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
    phase: &str,
    volume: Option<&PersistentVolume>,
) -> Result<(), BinderError> {
    let mut next = pvc.clone();
    let status = next.status.get_or_insert_with(Default::default);
    let before = status.clone();
    status.phase = Some(phase.into());
    if let Some(pv) = volume {
        let vspec = pv.spec.clone().unwrap_or_default();
        status.access_modes = vspec.access_modes;
        status.capacity = vspec.capacity;
    } else if phase == "Pending" {
        status.access_modes = None;
        status.capacity = None;
    }
    if *status == before {
        return Ok(());
    }
    let api: Api<PersistentVolumeClaim> =
        Api::namespaced(ctx.client.clone(), &pvc.namespace().unwrap_or_default());
    api.replace_status(&pvc.name_any(), &PostParams::default(), &next)
        .await
        .map(|_| ())
        .map_err(api_err(format!(
            "update status of claim {}",
            pvc.name_any()
        )))
}

async fn set_volume_phase(
    ctx: &Context,
    pv: &PersistentVolume,
    phase: &str,
) -> Result<PersistentVolume, BinderError> {
    if volume_phase(pv) == phase {
        return Ok(pv.clone());
    }
    let mut next = pv.clone();
    next.status.get_or_insert_with(Default::default).phase = Some(phase.into());
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    api.replace_status(&pv.name_any(), &PostParams::default(), &next)
        .await
        .map_err(api_err(format!(
            "update status of volume {}",
            pv.name_any()
        )))
}

/// Binds the pair: the volume's claimRef first (so no other claim takes it), then the
/// claim's volumeName, then both phases.
async fn bind(
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
    pv: &PersistentVolume,
) -> Result<(), BinderError> {
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let ns = pvc.namespace().unwrap_or_default();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let mut volume = pv.clone();
    let claim_ref = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        name: pvc.metadata.name.clone(),
        namespace: pvc.metadata.namespace.clone(),
        uid: pvc.metadata.uid.clone(),
        resource_version: pvc.metadata.resource_version.clone(),
        field_path: None,
    };
    let spec = volume.spec.get_or_insert_with(Default::default);
    let current = spec.claim_ref.as_ref();
    let same = current.is_some_and(|r| {
        r.name == claim_ref.name && r.namespace == claim_ref.namespace && r.uid == claim_ref.uid
    });
    if !same {
        if current.is_none() {
            volume
                .annotations_mut()
                .insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
        }
        if let Some(spec) = volume.spec.as_mut() {
            spec.claim_ref = Some(claim_ref);
        }
        // The resourceVersion read is the precondition: two claims cannot both take it.
        volume = pvs
            .replace(&pv.name_any(), &PostParams::default(), &volume)
            .await
            .map_err(api_err(format!("bind volume {}", pv.name_any())))?;
    }
    let volume = set_volume_phase(ctx, &volume, "Bound").await?;

    let mut claim = pvc.clone();
    let volume_name = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    let mut changed = false;
    if volume_name != pv.name_any() {
        claim.spec.get_or_insert_with(Default::default).volume_name = Some(pv.name_any());
        claim
            .annotations_mut()
            .insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
        changed = true;
    }
    if claim
        .annotations()
        .get(ANN_BIND_COMPLETED)
        .map(String::as_str)
        != Some("yes")
    {
        claim
            .annotations_mut()
            .insert(ANN_BIND_COMPLETED.into(), "yes".into());
        changed = true;
    }
    if changed {
        claim = pvcs
            .replace(&pvc.name_any(), &PostParams::default(), &claim)
            .await
            .map_err(api_err(format!("bind claim {}", pvc.name_any())))?;
    }
    set_claim_phase(ctx, &claim, "Bound", Some(&volume)).await
}

/// One pass over one claim (upstream's `syncClaim`).
async fn sync_claim(
    pvc: Arc<PersistentVolumeClaim>,
    ctx: Arc<Context>,
) -> Result<Action, BinderError> {
    let requeue = Ok(Action::requeue(RESYNC));
    if pvc.metadata.deletion_timestamp.is_some() {
        return requeue;
    }
    let volume_name = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    // Deciding that no volume fits needs the whole list of volumes.
    if ctx.volumes.wait_until_ready().await.is_err() {
        return requeue;
    }
    let volumes = ctx.volumes.state();
    if volume_name.is_empty() {
        return sync_unbound_claim(&pvc, &ctx, &volumes).await.and(requeue);
    }
    let volume = volumes.iter().find(|v| v.name_any() == volume_name);
    let bind_completed = pvc.annotations().get(ANN_BIND_COMPLETED).is_some();
    match volume {
        None if bind_completed => {
            if claim_phase(&pvc) != "Lost" {
                event(&ctx, pvc.as_ref(), EventType::Warning, "ClaimLost",
                    "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!".into()).await;
                set_claim_phase(&ctx, &pvc, "Lost", None).await?;
            }
        }
        None => {
            // Pre-bound by the user to a volume that does not exist (yet).
            event(
                &ctx,
                pvc.as_ref(),
                EventType::Normal,
                "FailedBinding",
                format!("volume \"{volume_name}\" not found"),
            )
            .await;
            set_claim_phase(&ctx, &pvc, "Pending", None).await?;
        }
        Some(pv) => {
            let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
            if claim_ref.is_none() || binder::is_bound_to(pv, &pvc) {
                bind(&ctx, &pvc, pv).await?;
            } else if bind_completed {
                if claim_phase(&pvc) != "Lost" {
                    event(
                        &ctx,
                        pvc.as_ref(),
                        EventType::Warning,
                        "ClaimMisbound",
                        "Two claims are bound to the same volume, this one is bound incorrectly"
                            .into(),
                    )
                    .await;
                    set_claim_phase(&ctx, &pvc, "Lost", None).await?;
                }
            } else {
                event(
                    &ctx,
                    pvc.as_ref(),
                    EventType::Warning,
                    "FailedBinding",
                    "volume already bound to a different claim.".into(),
                )
                .await;
                set_claim_phase(&ctx, &pvc, "Pending", None).await?;
            }
        }
    }
    requeue
}

async fn sync_unbound_claim(
    pvc: &PersistentVolumeClaim,
    ctx: &Context,
    volumes: &[Arc<PersistentVolume>],
) -> Result<(), BinderError> {
    let class_name = binder::claim_class(pvc);
    let class = if class_name.is_empty() {
        Ok(None)
    } else {
        let classes: Api<StorageClass> = Api::all(ctx.client.clone());
        classes
            .get_opt(&class_name)
            .await
            .map_err(api_err(format!("get storage class {class_name}")))
    }?;
    let delay = class
        .as_ref()
        .and_then(|c| c.volume_binding_mode.as_deref())
        == Some("WaitForFirstConsumer");
    let selected_node = pvc.annotations().contains_key(ANN_SELECTED_NODE);
    if let Some(pv) = binder::best_match(
        pvc,
        volumes.iter().map(Arc::as_ref),
        delay && !selected_node,
    ) {
        return bind(ctx, pvc, pv).await;
    }
    if delay && !selected_node {
        event(
            ctx,
            pvc,
            EventType::Normal,
            "WaitForFirstConsumer",
            "waiting for first consumer to be created before binding".into(),
        )
        .await;
    } else if !class_name.is_empty() {
        match &class {
            None => {
                event(
                    ctx,
                    pvc,
                    EventType::Warning,
                    "ProvisioningFailed",
                    format!("storageclass.storage.k8s.io \"{class_name}\" not found"),
                )
                .await;
            }
            Some(c) if c.provisioner.starts_with("kubernetes.io/") => {
                event(
                    ctx,
                    pvc,
                    EventType::Warning,
                    "ProvisioningFailed",
                    format!("no volume plugin matched name: {}", c.provisioner),
                )
                .await;
            }
            Some(c) => {
                let p = c.provisioner.clone();
                if pvc.annotations().get(ANN_STORAGE_PROVISIONER) != Some(&p) {
                    let mut next = pvc.clone();
                    next.annotations_mut()
                        .insert(ANN_STORAGE_PROVISIONER.into(), p.clone());
                    next.annotations_mut()
                        .insert(ANN_BETA_STORAGE_PROVISIONER.into(), p.clone());
                    let api: Api<PersistentVolumeClaim> =
                        Api::namespaced(ctx.client.clone(), &pvc.namespace().unwrap_or_default());
                    api.replace(&pvc.name_any(), &PostParams::default(), &next)
                        .await
                        .map_err(api_err(format!(
                            "set provisioner of claim {}",
                            pvc.name_any()
                        )))?;
                }
                event(ctx, pvc, EventType::Normal, "ExternalProvisioning", format!(
                    "Waiting for a volume to be created either by the external provisioner '{p}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
                )).await;
            }
        }
    } else {
        if assign_default_class(ctx, pvc).await? {
            // The claim's next sync provisions (or waits) as its class says.
            return Ok(());
        }
        event(
            ctx,
            pvc,
            EventType::Normal,
            "FailedBinding",
            "no persistent volumes available for this claim and no storage class is set".into(),
        )
        .await;
    }
    set_claim_phase(ctx, pvc, "Pending", None).await
}

/// Upstream's retroactive default class: an unbound claim that names no class at all
/// (not even "") gets the default StorageClass once one exists, e.g. a claim made
/// before the agent created `local-path`. Answers whether the claim was updated.
async fn assign_default_class(
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
) -> Result<bool, BinderError> {
    let unset = pvc
        .spec
        .as_ref()
        .is_none_or(|s| s.storage_class_name.is_none())
        && !pvc
            .annotations()
            .contains_key("volume.beta.kubernetes.io/storage-class");
    if !unset {
        return Ok(false);
    }
    let classes: Api<StorageClass> = Api::all(ctx.client.clone());
    let list = classes
        .list(&Default::default())
        .await
        .map_err(api_err("list storage classes".into()))?;
    let is_default = |c: &StorageClass| {
        [
            "storageclass.kubernetes.io/is-default-class",
            "storageclass.beta.kubernetes.io/is-default-class",
        ]
        .iter()
        .any(|a| c.annotations().get(*a).map(String::as_str) == Some("true"))
    };
    let Some(default) = list.items.iter().filter(|c| is_default(c)).max_by(|a, b| {
        a.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .then_with(|| b.name_any().cmp(&a.name_any()))
    }) else {
        return Ok(false);
    };
    let mut next = pvc.clone();
    next.spec
        .get_or_insert_with(Default::default)
        .storage_class_name = Some(default.name_any());
    let api: Api<PersistentVolumeClaim> =
        Api::namespaced(ctx.client.clone(), &pvc.namespace().unwrap_or_default());
    api.replace(&pvc.name_any(), &PostParams::default(), &next)
        .await
        .map_err(api_err(format!(
            "set the default class of claim {}",
            pvc.name_any()
        )))?;
    Ok(true)
}

/// One pass over one volume (upstream's `syncVolume`).
async fn sync_volume(pv: Arc<PersistentVolume>, ctx: Arc<Context>) -> Result<Action, BinderError> {
    let requeue = Ok(Action::requeue(RESYNC));
    if pv.metadata.deletion_timestamp.is_some() {
        return requeue;
    }
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.clone());
    let Some(claim_ref) = claim_ref else {
        set_volume_phase(&ctx, &pv, "Available").await?;
        return requeue;
    };
    if claim_ref.uid.as_deref().is_none_or(str::is_empty) {
        // Pre-bound to a claim that has not bound yet: still available to it.
        set_volume_phase(&ctx, &pv, "Available").await?;
        return requeue;
    }
    let key = ObjectRef::<PersistentVolumeClaim>::new(claim_ref.name.as_deref().unwrap_or(""))
        .within(claim_ref.namespace.as_deref().unwrap_or(""));
    let mut claim = ctx.claims.get(&key);
    if claim.is_none() {
        // The cache may lag behind a claim just created: ask the API before releasing.
        let api: Api<PersistentVolumeClaim> = Api::namespaced(
            ctx.client.clone(),
            claim_ref.namespace.as_deref().unwrap_or(""),
        );
        claim = api
            .get_opt(claim_ref.name.as_deref().unwrap_or(""))
            .await
            .map_err(api_err("get claim".into()))?
            .map(Arc::new);
    }
    let claim = claim.filter(|c| c.metadata.uid == claim_ref.uid);
    match claim {
        None => {
            // The claim is gone: release, then reclaim.
            if volume_phase(&pv) != "Released" && volume_phase(&pv) != "Failed" {
                set_volume_phase(&ctx, &pv, "Released").await?;
            }
            let policy = pv
                .spec
                .as_ref()
                .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
                .unwrap_or("Retain");
            // A volume an external provisioner made is deleted by that provisioner (it
            // also removes the storage behind it), as upstream leaves it to it.
            let external = pv
                .annotations()
                .get(ANN_PROVISIONED_BY)
                .is_some_and(|p| !p.starts_with("kubernetes.io/"));
            if policy == "Delete" && !external {
                let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
                match api.delete(&pv.name_any(), &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => {
                        event(
                            &ctx,
                            pv.as_ref(),
                            EventType::Warning,
                            "VolumeFailedDelete",
                            e.to_string(),
                        )
                        .await;
                        return Err(BinderError::Api {
                            context: "delete released volume".into(),
                            source: e,
                        });
                    }
                }
            }
        }
        Some(c) => {
            let volume_name = c
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.clone())
                .unwrap_or_default();
            if volume_name == pv.name_any() {
                set_volume_phase(&ctx, &pv, "Bound").await?;
            } else if volume_name.is_empty() {
                // Binding in progress; the claim's sync finishes it.
            } else if pv.annotations().contains_key(ANN_BOUND_BY_CONTROLLER) {
                // This controller bound the volume to a claim that went to another
                // volume: give it back.
                let mut next = pv.as_ref().clone();
                next.annotations_mut().remove(ANN_BOUND_BY_CONTROLLER);
                if let Some(spec) = next.spec.as_mut() {
                    spec.claim_ref = None;
                }
                let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
                let next = api
                    .replace(&pv.name_any(), &PostParams::default(), &next)
                    .await
                    .map_err(api_err(format!("unbind volume {}", pv.name_any())))?;
                set_volume_phase(&ctx, &next, "Available").await?;
            }
        }
    }
    requeue
}

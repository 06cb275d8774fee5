//! StatefulSet controller (upstream `pkg/controller/statefulset`): pods named
//! `<set>-<ordinal>` with stable identity (hostname, subdomain, ordinal labels), a
//! PersistentVolumeClaim per claim template and ordinal created before the pod, ordered or
//! parallel pod management, RollingUpdate (partition, maxUnavailable) and OnDelete,
//! ControllerRevisions for the templates, `persistentVolumeClaimRetentionPolicy`, and
//! upstream's status fields and events.

pub mod plan;
pub mod queue;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k1s_apimachinery::labels::Selector;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod,
    PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};

use crate::workload::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use self::plan::{Action, PodView, Revision, SetView};
use self::queue::{PodIndex, Queue, cache, cache_shared, key_of};
use crate::Shutdown;
use crate::history::{self, CONTROLLER_REVISION_HASH};
use crate::workload::{
    Expectations, claim, controller_of, controller_ref, is_controlled_by, is_pod_available,
    is_pod_ready, pod_from_template, recorder,
};

/// Upstream's component name.
pub const NAME: &str = "statefulset-controller";
/// The pod label holding the pod's name.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The pod label holding the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

struct Ctx {
    client: kube::Client,
    sets: Store<StatefulSet>,
    pods: Store<Pod>,
    index: PodIndex,
    revisions: Store<ControllerRevision>,
    claims: Store<PersistentVolumeClaim>,
    recorder: Recorder,
    expectations: Expectations,
}

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown))
}

/// Whether `set` is the controller of, or could adopt, a pod with these labels in its
/// namespace (used to route orphan pod events).
fn selects(set: &StatefulSet, pod: &Pod) -> bool {
    if set.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let Some(sel) = set.spec.as_ref().map(|s| &s.selector) else {
        return false;
    };
    let Ok(sel) = serde_json::to_value(sel).map(|v| Selector::from_label_selector(&v)) else {
        return false;
    };
    sel.is_ok_and(|s| !s.matches_nothing() && s.matches(pod.labels()))
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown) {
    let (queue, rx) = Queue::new();
    let q = queue.clone();
    let (sets, t_sets) = cache(
        Api::<StatefulSet>::all(client.clone()),
        move |s: &StatefulSet, _| q.add(key_of(&s.metadata)),
        || {},
    );
    let (q, sets_for_pods) = (queue.clone(), sets.clone());
    let index = PodIndex::default();
    let ix = index.clone();
    let (pods, t_pods) = cache_shared(
        crate::pod_informer(&client).subscribe(),
        |p: &Pod| controller_of(&p.metadata).is_none_or(|r| r.kind == "StatefulSet"),
        move |p: &Pod, deleted| {
            ix.update(&p.metadata, deleted);
            match controller_of(&p.metadata) {
                Some(r) if r.kind == "StatefulSet" => q.add(format!(
                    "{}/{}",
                    p.metadata.namespace.as_deref().unwrap_or(""),
                    r.name
                )),
                Some(_) => {}
                None => {
                    for s in sets_for_pods.state() {
                        if selects(&s, p) {
                            q.add(key_of(&s.metadata));
                        }
                    }
                }
            }
        },
        || {},
    );
    let q = queue.clone();
    let (revisions, t_revs) = cache(
        Api::<ControllerRevision>::all(client.clone()),
        move |r: &ControllerRevision, _| {
            if let Some(o) = controller_of(&r.metadata).filter(|o| o.kind == "StatefulSet") {
                q.add(format!(
                    "{}/{}",
                    r.metadata.namespace.as_deref().unwrap_or(""),
                    o.name
                ));
            }
        },
        || {},
    );
    let (claims, t_claims) = cache(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        |_: &PersistentVolumeClaim, _| {},
        || {},
    );
    let tasks = [t_sets, t_pods, t_revs, t_claims];
    let ready = async {
        let _ = sets.wait_until_ready().await;
        let _ = pods.wait_until_ready().await;
        let _ = revisions.wait_until_ready().await;
        let _ = claims.wait_until_ready().await;
    };
    let stopped = tokio::select! {
        () = ready => false,
        () = shutdown.clone().wait() => true,
    };
    if !stopped {
        let ctx = Arc::new(Ctx {
            recorder: recorder(client.clone(), NAME),
            client,
            sets: sets.clone(),
            pods,
            index,
            revisions,
            claims,
            expectations: Expectations::new(),
        });
        let all = move || sets.state().iter().map(|s| key_of(&s.metadata)).collect();
        queue::work(queue, rx, shutdown, all, |key| {
            let ctx = ctx.clone();
            async move { sync(&ctx, &key).await }
        })
        .await;
    }
    for t in tasks {
        t.abort();
    }
}

fn get<K>(store: &Store<K>, ns: &str, name: &str) -> Option<Arc<K>>
where
    K: kube::runtime::reflector::Lookup<DynamicType = ()> + Clone + 'static,
{
    store.get(&ObjectRef::new(name).within(ns))
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn revision_label(pod: &Pod) -> String {
    pod.labels()
        .get(CONTROLLER_REVISION_HASH)
        .cloned()
        .unwrap_or_default()
}

/// Resolves an int-or-percent against `total`, as upstream's
/// `GetScaledValueFromIntOrPercent` (percentages rounded up or down).
pub fn scaled_value(v: Option<&IntOrString>, total: i32, default: i32, round_up: bool) -> i32 {
    match v {
        None => default,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let n = (pct * i64::from(total) + if round_up { 99 } else { 0 }) / 100;
            i32::try_from(n).unwrap_or(i32::MAX)
        }
    }
}

/// The name of the claim of `template` for the pod of `ordinal`.
pub fn claim_name(template: &PersistentVolumeClaim, set: &str, ordinal: i32) -> String {
    format!("{}-{set}-{ordinal}", template.name_any())
}

/// The pod of `ordinal`, made from `template` at `revision`: stable name, identity
/// labels, hostname and subdomain, and a volume per claim template.
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, revision: &str) -> Pod {
    let set_name = set.name_any();
    let ns = set.namespace().unwrap_or_default();
    let spec = set.spec.clone().unwrap_or_default();
    let name = format!("{set_name}-{ordinal}");
    let mut pod = pod_from_template(template, &ns, &set_name, controller_ref(set));
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(CONTROLLER_REVISION_HASH.into(), revision.to_string());
    let pod_spec = pod.spec.get_or_insert_with(Default::default);
    pod_spec.hostname = Some(name);
    if !spec.service_name.as_deref().unwrap_or("").is_empty() {
        pod_spec.subdomain = spec.service_name.clone();
    }
    let templates = spec.volume_claim_templates.unwrap_or_default();
    if !templates.is_empty() {
        let mut volumes: Vec<Volume> = templates
            .iter()
            .map(|t| Volume {
                name: t.name_any(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim_name(t, &set_name, ordinal),
                    read_only: None,
                }),
                ..Volume::default()
            })
            .collect();
        for v in pod_spec.volumes.take().unwrap_or_default() {
            if !templates.iter().any(|t| t.name_any() == v.name) {
                volumes.push(v);
            }
        }
        pod_spec.volumes = Some(volumes);
    }
    pod
}

fn plain_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        controller: None,
        block_owner_deletion: None,
        ..controller_ref(owner)
    }
}

/// The owner references a claim should carry under the retention policy (upstream's
/// `updateClaimOwnerRefForSetAndPod`): the set owns it when `whenDeleted: Delete`, the pod
/// owns it once scaled away when `whenScaled: Delete`. `None` when nothing changes.
pub fn claim_owner_refs(
    current: &[OwnerReference],
    policy: Option<&StatefulSetPersistentVolumeClaimRetentionPolicy>,
    set_ref: &OwnerReference,
    pod_ref: Option<&OwnerReference>,
    scaled_down: bool,
) -> Option<Vec<OwnerReference>> {
    let is_delete = |v: Option<&String>| v.map(String::as_str) == Some("Delete");
    let when_deleted = is_delete(policy.and_then(|p| p.when_deleted.as_ref()));
    let when_scaled = is_delete(policy.and_then(|p| p.when_scaled.as_ref()));
    let (want_set, want_pod) = match (when_scaled, when_deleted) {
        (false, false) => (false, false),
        (false, true) => (true, false),
        (true, false) => (false, scaled_down),
        (true, true) => (!scaled_down, scaled_down),
    };
    let mut refs = current.to_vec();
    let mut changed = false;
    let mut apply = |r: &OwnerReference, want: bool| {
        let has = refs.iter().any(|x| x.uid == r.uid);
        if want && !has {
            refs.push(r.clone());
            changed = true;
        } else if !want && has {
            refs.retain(|x| x.uid != r.uid);
            changed = true;
        }
    };
    apply(set_ref, want_set);
    if let Some(p) = pod_ref {
        apply(p, want_pod);
    }
    changed.then_some(refs)
}

/// The reference to an object of the set's namespace that an event relates to: events
/// about different pods or claims then stay distinct (the recorder folds events with
/// the same reason, object and related object into one series, whatever their notes).
pub fn related(namespace: Option<String>, kind: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some(kind.into()),
        name: Some(name.into()),
        namespace,
        ..ObjectReference::default()
    }
}

async fn event(
    ctx: &Ctx,
    set: &StatefulSet,
    ok: bool,
    reason: &str,
    note: String,
    related: (&str, &str),
) {
    let ev = Event {
        type_: if ok {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: Some(self::related(set.namespace(), related.0, related.1)),
    };
    if let Err(e) = ctx.recorder.publish(&ev, &set.object_ref(&())).await {
        tracing::debug!(error = %e, "recording event failed");
    }
}

/// The pod view the plan needs.
fn view(set_name: &str, pod: &Pod, min_ready: i32, now: Timestamp) -> Option<PodView> {
    let name = pod.name_any();
    Some(PodView {
        ordinal: plan::ordinal_of(set_name, &name)?,
        name,
        revision: revision_label(pod),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        finished: matches!(phase(pod), "Succeeded" | "Failed"),
        available: phase(pod) == "Running" && is_pod_available(pod, min_ready, now),
    })
}

/// Creates the pod's missing claims.
async fn create_claims(
    ctx: &Ctx,
    set: &StatefulSet,
    spec: &StatefulSetSpec,
    ordinal: i32,
) -> Result<(), kube::Error> {
    let ns = set.namespace().unwrap_or_default();
    let set_name = set.name_any();
    let pod_name = format!("{set_name}-{ordinal}");
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let match_labels = spec.selector.match_labels.clone().unwrap_or_default();
    for t in spec.volume_claim_templates.iter().flatten() {
        let name = claim_name(t, &set_name, ordinal);
        if get(&ctx.claims, &ns, &name).is_some() {
            continue;
        }
        let mut claim = PersistentVolumeClaim {
            metadata: t.metadata.clone(),
            spec: t.spec.clone(),
            status: None,
        };
        claim.metadata.name = Some(name.clone());
        claim.metadata.namespace = Some(ns.clone());
        claim.metadata.uid = None;
        claim.metadata.resource_version = None;
        claim.metadata.creation_timestamp = None;
        let labels = claim.metadata.labels.get_or_insert_with(BTreeMap::new);
        labels.extend(match_labels.clone());
        let policy = spec.persistent_volume_claim_retention_policy.as_ref();
        claim.metadata.owner_references =
            claim_owner_refs(&[], policy, &plain_ref(set), None, false).filter(|r| !r.is_empty());
        match api.create(&PostParams::default(), &claim).await {
            Ok(_) => {
                let note =
                    format!("create Claim {name} Pod {pod_name} in StatefulSet {set_name} success");
                event(
                    ctx,
                    set,
                    true,
                    "SuccessfulCreate",
                    note,
                    ("PersistentVolumeClaim", &name),
                )
                .await;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                let note = format!(
                    "create Claim {name} for Pod {pod_name} in StatefulSet {set_name} failed error: {e}"
                );
                event(
                    ctx,
                    set,
                    false,
                    "FailedCreate",
                    note,
                    ("PersistentVolumeClaim", &name),
                )
                .await;
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Brings the owner references of the pod's claims in line with the retention policy.
async fn update_claim_refs(
    ctx: &Ctx,
    set: &StatefulSet,
    spec: &StatefulSetSpec,
    pod: &Pod,
    ordinal: i32,
    scaled_down: bool,
) -> Result<(), kube::Error> {
    let ns = set.namespace().unwrap_or_default();
    let set_name = set.name_any();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let set_ref = plain_ref(set);
    let pod_ref = plain_ref(pod);
    for t in spec.volume_claim_templates.iter().flatten() {
        let name = claim_name(t, &set_name, ordinal);
        let Some(claim) = get(&ctx.claims, &ns, &name) else {
            continue;
        };
        let current = claim.metadata.owner_references.clone().unwrap_or_default();
        let policy = spec.persistent_volume_claim_retention_policy.as_ref();
        if let Some(refs) =
            claim_owner_refs(&current, policy, &set_ref, Some(&pod_ref), scaled_down)
        {
            let patch = json!({"metadata": {
                "ownerReferences": refs,
                "resourceVersion": claim.metadata.resource_version,
            }});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// The revisions of the set: (sorted history, current, update, collision count).
async fn revisions(
    ctx: &Ctx,
    set: &StatefulSet,
    template: &PodTemplateSpec,
    selector: &Selector,
) -> Result<
    (
        Vec<ControllerRevision>,
        ControllerRevision,
        ControllerRevision,
        i32,
    ),
    kube::Error,
> {
    let ns = set.namespace().unwrap_or_default();
    let uid = set.uid().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
    // Orphaned revisions the selector matches are adopted, as upstream does (a set deleted
    // with --cascade=orphan and created again finds its history).
    let candidates: Vec<ControllerRevision> = ctx
        .revisions
        .state()
        .iter()
        .filter(|r| r.namespace().as_deref() == Some(ns.as_str()))
        .filter(|r| is_controlled_by(&r.metadata, &uid) || controller_of(&r.metadata).is_none())
        .map(|r| (**r).clone())
        .collect();
    let mut revs = claim(&api, set, selector, candidates).await?.owned;
    history::sort_revisions(&mut revs);
    let mut collision = set
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let data = history::template_patch(template);
    let next = history::next_revision(&revs);
    let update = match revs.iter().rposition(|r| history::same_data(r, &data)) {
        Some(i) if i + 1 == revs.len() => revs[i].clone(),
        Some(i) => {
            let r = history::update_revision_number(&api, &revs[i], next).await?;
            revs[i] = r.clone();
            r
        }
        None => {
            let labels = template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            let r = history::new_revision(
                &set.name_any(),
                &ns,
                controller_ref(set),
                labels,
                data,
                next,
                collision,
            );
            let r =
                history::create_revision(&api, r, &set.name_any(), &uid, &mut collision).await?;
            if !revs.iter().any(|x| x.name_any() == r.name_any()) {
                revs.push(r.clone());
            }
            r
        }
    };
    history::sort_revisions(&mut revs);
    let current_name = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .unwrap_or_default();
    let current = revs
        .iter()
        .find(|r| r.name_any() == current_name)
        .cloned()
        .unwrap_or_else(|| update.clone());
    Ok((revs, current, update, collision))
}

async fn sync(ctx: &Ctx, key: &str) -> Result<Option<Duration>, kube::Error> {
    let Some((ns, name)) = key.split_once('/') else {
        return Ok(None);
    };
    let Some(set) = get(&ctx.sets, ns, name) else {
        ctx.expectations.forget(key);
        return Ok(None);
    };
    let present =
        |n: &str| get(&ctx.pods, ns, n).is_some_and(|p| p.metadata.deletion_timestamp.is_none());
    if !ctx.expectations.satisfied(key, present) {
        return Ok(Some(Duration::from_secs(5)));
    }
    let set: &StatefulSet = &set;
    let spec = set.spec.clone().unwrap_or_default();
    let uid = set.uid().unwrap_or_default();
    let selector = match serde_json::to_value(&spec.selector)
        .ok()
        .and_then(|v| Selector::from_label_selector(&v).ok())
    {
        Some(s) if !s.matches_nothing() => s,
        _ => {
            tracing::debug!(%key, "statefulset has an invalid selector; skipped");
            return Ok(None);
        }
    };

    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let candidates: Vec<Pod> = ctx
        .index
        .candidates(&uid, ns)
        .into_iter()
        .filter_map(|(pns, pname)| get(&ctx.pods, &pns, &pname))
        .filter(|p| p.namespace().as_deref() == Some(ns))
        .filter(|p| {
            is_controlled_by(&p.metadata, &uid)
                || (controller_of(&p.metadata).is_none()
                    && plan::ordinal_of(name, &p.name_any()).is_some())
        })
        .map(|p| (*p).clone())
        .collect();
    let claimed = claim(&pods_api, set, &selector, candidates).await?;
    let owned: Vec<Pod> = claimed
        .owned
        .into_iter()
        .filter(|p| plan::ordinal_of(name, &p.name_any()).is_some())
        .collect();
    if set.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }

    let (revs, current, update, collision) = revisions(ctx, set, &spec.template, &selector).await?;
    let current_template = history::template_of(&current).unwrap_or_else(|| spec.template.clone());

    let now = Timestamp::now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let replicas = spec.replicas.unwrap_or(1);
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        != Some("OnDelete");
    let ru = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let set_view = SetView {
        start: spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0),
        replicas,
        parallel: spec.pod_management_policy.as_deref() == Some("Parallel"),
        rolling,
        partition: ru.and_then(|r| r.partition).unwrap_or(0),
        // Rounded down, at least 1 (upstream's getStatefulSetMaxUnavailable).
        max_unavailable: scaled_value(
            ru.and_then(|r| r.max_unavailable.as_ref()),
            replicas,
            1,
            false,
        )
        .max(1),
        update_revision: update.name_any(),
    };
    let views: Vec<PodView> = owned
        .iter()
        .filter_map(|p| view(name, p, min_ready, now))
        .collect();

    // Claims follow the retention policy before anything is deleted, so that the garbage
    // collector removes the claims of scaled-down pods with them.
    for (pod, v) in owned.iter().zip(&views) {
        let end = set_view.start.saturating_add(replicas);
        let scaled_down = v.ordinal < set_view.start || v.ordinal >= end;
        update_claim_refs(ctx, set, &spec, pod, v.ordinal, scaled_down).await?;
        if !scaled_down && !v.terminating {
            // Upstream's identity and storage repair: an adopted or edited pod gets its
            // identity labels back and its missing claims created.
            repair_identity(&pods_api, pod, v.ordinal).await?;
            create_claims(ctx, set, &spec, v.ordinal).await?;
        }
    }

    let mut created = Vec::new();
    let mut deleted = Vec::new();
    let mut result = Ok(());
    for action in plan::plan(&set_view, &views) {
        let step = match action {
            Action::Create(ordinal, rev) => {
                let (template, revision) = match rev {
                    Revision::Current => (&current_template, current.name_any()),
                    Revision::Update => (&spec.template, update.name_any()),
                };
                create_pod(ctx, set, &spec, ordinal, template, &revision, &mut created).await
            }
            Action::Replace(pod) => {
                let failed = owned
                    .iter()
                    .any(|p| p.name_any() == pod && phase(p) == "Failed");
                let (ok, reason, what) = if failed {
                    (false, "RecreatingFailedPod", "failed")
                } else {
                    (true, "RecreatingTerminatedPod", "terminated")
                };
                let note = format!("StatefulSet {ns}/{name} is recreating {what} Pod {pod}");
                event(ctx, set, ok, reason, note, ("Pod", &pod)).await;
                delete_pod(ctx, set, &pods_api, &pod, &mut deleted).await
            }
            Action::ScaleDown(pod) | Action::Update(pod) => {
                delete_pod(ctx, set, &pods_api, &pod, &mut deleted).await
            }
        };
        if let Err(e) = step {
            result = Err(e);
            break;
        }
    }
    ctx.expectations.expect(key, created, deleted);
    result?;

    // Status from the pods as this sync found them; the events its writes cause bring
    // the next sync, which counts again.
    let mut st = json!({
        "observedGeneration": set.metadata.generation,
        "replicas": 0, "readyReplicas": 0, "currentReplicas": 0, "updatedReplicas": 0,
        "availableReplicas": 0,
        "currentRevision": current.name_any(),
        "updateRevision": update.name_any(),
        "collisionCount": collision,
    });
    let (mut total, mut ready, mut available, mut cur, mut upd) = (0, 0, 0, 0, 0);
    let mut waiting_for_min_ready = false;
    for p in &owned {
        total += 1;
        if phase(p) == "Running" && is_pod_ready(p) {
            ready += 1;
            if is_pod_available(p, min_ready, now) {
                available += 1;
            } else {
                waiting_for_min_ready = true;
            }
        }
        if p.metadata.deletion_timestamp.is_none() {
            let rev = revision_label(p);
            if rev == current.name_any() {
                cur += 1;
            }
            if rev == update.name_any() {
                upd += 1;
            }
        }
    }
    if rolling && upd == total && ready == total {
        cur = upd;
        st["currentRevision"] = json!(update.name_any());
    }
    st["replicas"] = json!(total);
    st["readyReplicas"] = json!(ready);
    st["availableReplicas"] = json!(available);
    st["currentReplicas"] = json!(cur);
    st["updatedReplicas"] = json!(upd);
    let old = set.status.clone().unwrap_or_default();
    let unchanged = old.observed_generation == set.metadata.generation
        && old.replicas == total
        && old.ready_replicas.unwrap_or(0) == ready
        && old.available_replicas.unwrap_or(0) == available
        && old.current_replicas.unwrap_or(0) == cur
        && old.updated_replicas.unwrap_or(0) == upd
        && old.current_revision.as_ref().map(|s| json!(s)) == Some(st["currentRevision"].clone())
        && old.update_revision.as_deref() == Some(update.name_any().as_str())
        && old.collision_count.unwrap_or(0) == collision;
    let sets_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
    if !unchanged {
        match sets_api
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": st})),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
            Err(e) => return Err(e),
        }
    }

    // History beyond the limit goes, except what pods or the status still use.
    let mut live: Vec<String> = owned.iter().map(revision_label).collect();
    live.push(current.name_any());
    live.push(update.name_any());
    let limit = spec.revision_history_limit.unwrap_or(10);
    let prune = history::revisions_to_prune(&revs, |r| live.contains(&r.name_any()), limit);
    history::prune(&Api::namespaced(ctx.client.clone(), ns), prune).await?;

    Ok(waiting_for_min_ready.then(|| Duration::from_secs(u64::try_from(min_ready).unwrap_or(1))))
}

/// Puts back the identity labels of a pod that lacks them.
async fn repair_identity(api: &Api<Pod>, pod: &Pod, ordinal: i32) -> Result<(), kube::Error> {
    let name = pod.name_any();
    let labels = pod.labels();
    let index = ordinal.to_string();
    if labels.get(POD_NAME_LABEL) == Some(&name) && labels.get(POD_INDEX_LABEL) == Some(&index) {
        return Ok(());
    }
    let patch = json!({"metadata": {
        "labels": {POD_NAME_LABEL: name, POD_INDEX_LABEL: index},
        "uid": pod.metadata.uid,
    }});
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409 | 422) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn create_pod(
    ctx: &Ctx,
    set: &StatefulSet,
    spec: &StatefulSetSpec,
    ordinal: i32,
    template: &PodTemplateSpec,
    revision: &str,
    created: &mut Vec<String>,
) -> Result<(), kube::Error> {
    create_claims(ctx, set, spec, ordinal).await?;
    let pod = new_pod(set, template, ordinal, revision);
    let pod_name = pod.name_any();
    let set_name = set.name_any();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &set.namespace().unwrap_or_default());
    match api.create(&PostParams::default(), &pod).await {
        Ok(_) => {
            created.push(pod_name.clone());
            let note = format!("create Pod {pod_name} in StatefulSet {set_name} successful");
            event(ctx, set, true, "SuccessfulCreate", note, ("Pod", &pod_name)).await;
            Ok(())
        }
        // The cache has not shown it yet: the next sync sees it.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => {
            let note = format!("create Pod {pod_name} in StatefulSet {set_name} failed error: {e}");
            event(ctx, set, false, "FailedCreate", note, ("Pod", &pod_name)).await;
            Err(e)
        }
    }
}

async fn delete_pod(
    ctx: &Ctx,
    set: &StatefulSet,
    api: &Api<Pod>,
    pod: &str,
    deleted: &mut Vec<String>,
) -> Result<(), kube::Error> {
    let set_name = set.name_any();
    match api.delete(pod, &DeleteParams::default()).await {
        Ok(_) => {
            deleted.push(pod.to_string());
            let note = format!("delete Pod {pod} in StatefulSet {set_name} successful");
            event(ctx, set, true, "SuccessfulDelete", note, ("Pod", pod)).await;
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => {
            let note = format!("delete Pod {pod} in StatefulSet {set_name} failed error: {e}");
            event(ctx, set, false, "FailedDelete", note, ("Pod", pod)).await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid"},
            "spec": {
                "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{"name": "c", "image": "nginx"}],
                        "volumes": [{"name": "www", "emptyDir": {}}, {"name": "cfg", "emptyDir": {}}]
                    }
                },
                "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {}}]
            }
        }))
        .expect("set")
    }

    #[test]
    fn pods_get_a_stable_identity_and_their_claims() {
        let s = set();
        let spec = s.spec.clone().expect("spec");
        let pod = new_pod(&s, &spec.template, 2, "web-abc");
        assert_eq!(pod.metadata.name.as_deref(), Some("web-2"));
        assert_eq!(pod.metadata.generate_name, None);
        let labels = pod.metadata.labels.clone().expect("labels");
        assert_eq!(labels[POD_NAME_LABEL], "web-2");
        assert_eq!(labels[POD_INDEX_LABEL], "2");
        assert_eq!(labels[CONTROLLER_REVISION_HASH], "web-abc");
        assert_eq!(labels["app"], "web");
        let ps = pod.spec.expect("spec");
        assert_eq!(ps.hostname.as_deref(), Some("web-2"));
        assert_eq!(ps.subdomain.as_deref(), Some("nginx"));
        let vols = ps.volumes.expect("volumes");
        let names: Vec<&str> = vols.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["www", "cfg"]);
        let pvc = vols[0].persistent_volume_claim.as_ref().expect("pvc");
        assert_eq!(pvc.claim_name, "www-web-2");
    }

    #[test]
    fn retention_policy_decides_who_owns_claims() {
        let s = set();
        let set_ref = plain_ref(&s);
        let pod_ref = OwnerReference {
            uid: "pod-uid".into(),
            kind: "Pod".into(),
            ..set_ref.clone()
        };
        let policy = |d: &str, sc: &str| StatefulSetPersistentVolumeClaimRetentionPolicy {
            when_deleted: Some(d.into()),
            when_scaled: Some(sc.into()),
        };
        let retain = policy("Retain", "Retain");
        assert_eq!(
            claim_owner_refs(&[], Some(&retain), &set_ref, Some(&pod_ref), false),
            None
        );
        let del = policy("Delete", "Retain");
        assert_eq!(
            claim_owner_refs(&[], Some(&del), &set_ref, Some(&pod_ref), false),
            Some(vec![set_ref.clone()])
        );
        let both = policy("Delete", "Delete");
        let on_scale = claim_owner_refs(
            std::slice::from_ref(&set_ref),
            Some(&both),
            &set_ref,
            Some(&pod_ref),
            true,
        );
        assert_eq!(on_scale, Some(vec![pod_ref.clone()]));
        assert_eq!(
            claim_owner_refs(std::slice::from_ref(&set_ref), None, &set_ref, None, false),
            Some(vec![])
        );
    }

    #[test]
    fn percentages_round_as_asked() {
        let pct = IntOrString::String("50%".into());
        assert_eq!(scaled_value(Some(&pct), 3, 1, true), 2);
        assert_eq!(scaled_value(Some(&pct), 3, 1, false), 1);
        assert_eq!(scaled_value(Some(&IntOrString::Int(2)), 3, 1, false), 2);
        assert_eq!(scaled_value(None, 3, 1, true), 1);
    }
}

//! DaemonSet controller (upstream `pkg/controller/daemon`): one pod per eligible node
//! (nodeSelector, required node affinity, taints against the template's tolerations plus
//! the ones every daemon pod gets), each pinned to its node through node affinity
//! (`metadata.name In [node]`) for the scheduler to bind, RollingUpdate (maxUnavailable,
//! maxSurge) and OnDelete, ControllerRevisions, and upstream's status fields and events.
//!
//! Pods are bound by the scheduler, as upstream: without one they stay Pending, yet are
//! counted on the node they are pinned to.

pub mod nodes;
pub mod update;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k1s_apimachinery::labels::Selector;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetSpec};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::runtime::watcher::Event as WatchEvent;

use crate::workload::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use parking_lot::Mutex;
use serde_json::json;

use self::update::{NodePods, PodInfo};
use crate::Shutdown;
use crate::history::{self, CONTROLLER_REVISION_HASH};
use crate::statefulset::queue::{self, PodIndex, Queue, cache, cache_shared, key_of};
use crate::statefulset::{related, scaled_value};
use crate::workload::{
    Expectations, claim, controller_of, controller_ref, is_controlled_by, is_pod_available,
    is_pod_ready, pod_from_template, recorder, slow_start_batch,
};

/// Upstream's component name.
pub const NAME: &str = "daemonset-controller";

/// The first wait before a node's failed daemon pod is deleted again; it doubles up to
/// [`FAILED_POD_MAX_BACKOFF`] (upstream's `failedPodsBackoff`).
const FAILED_POD_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between deletions of failed daemon pods on one node.
const FAILED_POD_MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

struct Ctx {
    failed: Mutex<HashMap<String, (std::time::Instant, Duration)>>,
    client: kube::Client,
    sets: Store<DaemonSet>,
    pods: Store<Pod>,
    index: PodIndex,
    nodes: k1s_informer::Informer<Node>,
    revisions: Store<ControllerRevision>,
    recorder: Recorder,
    expectations: Expectations,
}

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown))
}

fn selector_of(ds: &DaemonSet) -> Option<Selector> {
    let sel = &ds.spec.as_ref()?.selector;
    let sel = Selector::from_label_selector(&serde_json::to_value(sel).ok()?).ok()?;
    (!sel.matches_nothing()).then_some(sel)
}

fn owner_key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<String> {
    let r = controller_of(meta).filter(|r| r.kind == "DaemonSet")?;
    Some(format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        r.name
    ))
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown) {
    let (queue, rx) = Queue::new();
    let q = queue.clone();
    let (sets, t_sets) = cache(
        Api::<DaemonSet>::all(client.clone()),
        move |s: &DaemonSet, _| q.add(key_of(&s.metadata)),
        || {},
    );
    let (q, sets_for_pods) = (queue.clone(), sets.clone());
    let index = PodIndex::default();
    let ix = index.clone();
    let (pods, t_pods) = cache_shared(
        crate::pod_informer(&client).subscribe(),
        |p: &Pod| controller_of(&p.metadata).is_none_or(|r| r.kind == "DaemonSet"),
        move |p: &Pod, deleted| {
            ix.update(&p.metadata, deleted);
            match owner_key(&p.metadata) {
                Some(k) => q.add(k),
                None if controller_of(&p.metadata).is_none() => {
                    for s in sets_for_pods.state() {
                        if s.metadata.namespace == p.metadata.namespace
                            && selector_of(&s).is_some_and(|sel| sel.matches(p.labels()))
                        {
                            q.add(key_of(&s.metadata));
                        }
                    }
                }
                None => {}
            }
        },
        || {},
    );
    // A node change that may change where DaemonSets run (labels, taints, its name, its
    // deletion) queues every set; status heartbeats do not.
    let (q, sets_for_nodes) = (queue.clone(), sets.clone());
    let seen: Mutex<HashMap<String, u64>> = Mutex::default();
    let nodes = crate::node_informer(&client);
    let on_node = move |n: &Node, deleted: bool| {
        let name = n.name_any();
        let print = fingerprint(n);
        let changed = if deleted {
            seen.lock().remove(&name);
            true
        } else {
            seen.lock().insert(name, print) != Some(print)
        };
        if changed {
            for s in sets_for_nodes.state() {
                q.add(key_of(&s.metadata));
            }
        }
    };
    let t_nodes = tokio::spawn(nodes.subscribe().for_each(move |ev| {
        match ev {
            WatchEvent::Apply(n) | WatchEvent::InitApply(n) => on_node(&n, false),
            WatchEvent::Delete(n) => on_node(&n, true),
            WatchEvent::Init | WatchEvent::InitDone => {}
        }
        std::future::ready(())
    }));
    let q = queue.clone();
    let (revisions, t_revs) = cache(
        Api::<ControllerRevision>::all(client.clone()),
        move |r: &ControllerRevision, _| {
            if let Some(k) = owner_key(&r.metadata) {
                q.add(k);
            }
        },
        || {},
    );
    let tasks = [t_sets, t_pods, t_nodes, t_revs];
    let ready = async {
        let _ = sets.wait_until_ready().await;
        let _ = pods.wait_until_ready().await;
        nodes.wait_until_ready().await;
        let _ = revisions.wait_until_ready().await;
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
            nodes,
            revisions,
            expectations: Expectations::new(),
            failed: Mutex::default(),
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

impl Ctx {
    /// `None` when a failed pod of the set on the node may be deleted now (the back-off
    /// then grows), else how long to wait.
    fn failed_backoff(&self, uid: &str, node: &str) -> Option<Duration> {
        let now = std::time::Instant::now();
        let mut failed = self.failed.lock();
        failed.retain(|_, (since, delay)| {
            now.duration_since(*since) < 2 * FAILED_POD_MAX_BACKOFF.max(*delay)
        });
        let key = format!("{uid}/{node}");
        match failed.get_mut(&key) {
            Some((since, delay)) if now.duration_since(*since) < *delay => {
                Some(*delay - now.duration_since(*since))
            }
            Some((since, delay)) => {
                *since = now;
                *delay = (*delay * 2).min(FAILED_POD_MAX_BACKOFF);
                None
            }
            None => {
                failed.insert(key, (now, FAILED_POD_BACKOFF));
                None
            }
        }
    }
}

/// What of a node decides which DaemonSets run there: labels, taints, its name.
fn fingerprint(n: &Node) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    n.metadata.labels.hash(&mut h);
    let taints = n.spec.as_ref().and_then(|s| s.taints.as_ref());
    serde_json::to_string(&taints)
        .unwrap_or_default()
        .hash(&mut h);
    h.finish()
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn hash_label(pod: &Pod) -> Option<&String> {
    pod.labels().get(CONTROLLER_REVISION_HASH)
}

async fn event(ctx: &Ctx, ds: &DaemonSet, ok: bool, reason: &str, note: String, pod: &str) {
    let ev = Event {
        type_: if ok {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: (!pod.is_empty()).then(|| related(ds.namespace(), "Pod", pod)),
    };
    if let Err(e) = ctx.recorder.publish(&ev, &ds.object_ref(&())).await {
        tracing::debug!(error = %e, "recording event failed");
    }
}

/// The revision of the set's template (created or renumbered as needed), its hash, the
/// sorted history and the collision count (upstream's `constructHistory`).
async fn revisions(
    ctx: &Ctx,
    ds: &DaemonSet,
    spec: &DaemonSetSpec,
    selector: &Selector,
) -> Result<(ControllerRevision, String, Vec<ControllerRevision>, i32), kube::Error> {
    let ns = ds.namespace().unwrap_or_default();
    let uid = ds.uid().unwrap_or_default();
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
    let mut revs = claim(&api, ds, selector, candidates).await?.owned;
    history::sort_revisions(&mut revs);
    let mut collision = ds
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let data = history::template_patch(&spec.template);
    let next = history::next_revision(&revs);
    let cur = match revs.iter().rposition(|r| history::same_data(r, &data)) {
        Some(i) if i + 1 == revs.len() => revs[i].clone(),
        Some(i) => {
            let r = history::update_revision_number(&api, &revs[i], next).await?;
            revs[i] = r.clone();
            r
        }
        None => {
            let mut labels = spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            let hash = history::hash_revision(&data, Some(collision));
            labels.insert(CONTROLLER_REVISION_HASH.into(), hash);
            let r = history::new_revision(
                &ds.name_any(),
                &ns,
                controller_ref(ds),
                labels,
                data,
                next,
                collision,
            );
            let r = history::create_revision(&api, r, &ds.name_any(), &uid, &mut collision).await?;
            if !revs.iter().any(|x| x.name_any() == r.name_any()) {
                revs.push(r.clone());
            }
            r
        }
    };
    history::sort_revisions(&mut revs);
    let hash = cur
        .labels()
        .get(CONTROLLER_REVISION_HASH)
        .cloned()
        .unwrap_or_else(|| {
            let name = cur.name_any();
            name.rsplit('-').next().unwrap_or_default().to_string()
        });
    Ok((cur, hash, revs, collision))
}

/// Where the API server keeps a DaemonSet's template generation.
const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";
/// The pod label carrying it.
const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// The pod for `node`: the template, the revision hash label, the daemon tolerations and
/// node affinity pinning it to the node.
pub fn new_pod(ds: &DaemonSet, spec: &DaemonSetSpec, hash: &str, node: &str) -> Pod {
    let mut template = spec.template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(CONTROLLER_REVISION_HASH.into(), hash.to_string());
    // The deprecated generation label upstream still sets, from the generation the API
    // server keeps in an annotation.
    if let Some(generation) = ds.annotations().get(TEMPLATE_GENERATION_ANNOTATION) {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), generation.clone());
    }
    let ns = ds.namespace().unwrap_or_default();
    let mut pod = pod_from_template(&template, &ns, &ds.name_any(), controller_ref(ds));
    let ps = pod.spec.get_or_insert_with(Default::default);
    nodes::add_daemon_tolerations(ps);
    nodes::pin_to_node(ps, node);
    pod
}

async fn sync(ctx: &Ctx, key: &str) -> Result<Option<Duration>, kube::Error> {
    let Some((ns, name)) = key.split_once('/') else {
        return Ok(None);
    };
    let Some(ds) = ctx.sets.get(&ObjectRef::new(name).within(ns)) else {
        ctx.expectations.forget(key);
        return Ok(None);
    };
    let present = |n: &str| {
        ctx.pods
            .get(&ObjectRef::new(n).within(ns))
            .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
    };
    if !ctx.expectations.satisfied(key, present) {
        return Ok(Some(Duration::from_secs(5)));
    }
    let ds: &DaemonSet = &ds;
    let spec = ds.spec.clone().unwrap_or_default();
    let uid = ds.uid().unwrap_or_default();
    let Some(selector) = selector_of(ds) else {
        tracing::debug!(%key, "daemonset has an invalid selector; skipped");
        return Ok(None);
    };
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let candidates: Vec<Pod> = ctx
        .index
        .candidates(&uid, ns)
        .into_iter()
        .filter_map(|(pns, pname)| ctx.pods.get(&ObjectRef::new(&pname).within(&pns)))
        .filter(|p| p.namespace().as_deref() == Some(ns))
        .filter(|p| {
            is_controlled_by(&p.metadata, &uid)
                || (controller_of(&p.metadata).is_none() && selector.matches(p.labels()))
        })
        .map(|p| (*p).clone())
        .collect();
    let owned = claim(&pods_api, ds, &selector, candidates).await?.owned;
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let (cur, hash, revs, collision) = revisions(ctx, ds, &spec, &selector).await?;

    let now = Timestamp::now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let mut by_node: HashMap<String, Vec<&Pod>> = HashMap::new();
    for p in &owned {
        if let Some(n) = nodes::target_node(p) {
            by_node.entry(n).or_default().push(p);
        }
    }
    for pods in by_node.values_mut() {
        pods.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
                .then_with(|| a.name_any().cmp(&b.name_any()))
        });
    }
    let template_spec = spec.template.spec.clone().unwrap_or_default();
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        != Some("OnDelete");
    let ru = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let all_nodes = ctx.nodes.state();
    let mut prepared = template_spec.clone();
    nodes::add_daemon_tolerations(&mut prepared);
    let node_names: std::collections::HashSet<String> =
        all_nodes.iter().map(|n| n.name_any()).collect();
    let eligible: Vec<(&Node, bool, bool)> = all_nodes
        .iter()
        .map(|n| {
            let (run, keep) = nodes::should_run_prepared(&prepared, n);
            (&**n, run, keep)
        })
        .collect();
    let desired = eligible.iter().filter(|(_, run, _)| *run).count();
    let desired_i32 = i32::try_from(desired).unwrap_or(i32::MAX);
    let mut max_surge = if rolling {
        scaled_value(ru.and_then(|r| r.max_surge.as_ref()), desired_i32, 0, true).max(0)
    } else {
        0
    };
    let mut max_unavailable = scaled_value(
        ru.and_then(|r| r.max_unavailable.as_ref()),
        desired_i32,
        1,
        true,
    )
    .max(0);
    if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    if !rolling {
        max_surge = 0;
    }

    // Manage: a pod on every node that should run one, none where none may run.
    let mut create_on: Vec<String> = Vec::new();
    let mut delete: Vec<String> = Vec::new();
    let mut failed_notes = Vec::new();
    let mut retry_after: Option<Duration> = None;
    let mut update_view = Vec::new();
    let empty = Vec::new();
    for (node, run, keep) in &eligible {
        let node_name = node.name_any();
        let pods = by_node.get(&node_name).unwrap_or(&empty);
        if *run && pods.is_empty() {
            create_on.push(node_name.clone());
            continue;
        }
        if *keep {
            let mut running = Vec::new();
            for p in pods {
                if p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                if phase(p) == "Failed" {
                    // Upstream's back-off: a node whose daemon pods keep failing (a
                    // kubelet rejecting them) is not fought over in a hot loop.
                    if let Some(wait) = ctx.failed_backoff(&uid, &node_name) {
                        retry_after = Some(retry_after.map_or(wait, |r: Duration| r.min(wait)));
                        continue;
                    }
                    failed_notes.push((
                        format!(
                            "Found failed daemon pod {ns}/{} on node {node_name}, will try to kill it",
                            p.name_any()
                        ),
                        p.name_any(),
                    ));
                    delete.push(p.name_any());
                    continue;
                }
                running.push(*p);
            }
            if max_surge == 0 {
                delete.extend(running.iter().skip(1).map(|p| p.name_any()));
            } else {
                let (mut new_seen, mut old_seen) = (false, false);
                for p in &running {
                    let is_new = hash_label(p) == Some(&hash);
                    let seen = if is_new { &mut new_seen } else { &mut old_seen };
                    if *seen {
                        delete.push(p.name_any());
                    } else {
                        *seen = true;
                    }
                }
            }
            if *run {
                let mut np = NodePods {
                    node: node_name.clone(),
                    old: None,
                    new: None,
                    duplicates: false,
                };
                for p in &running {
                    let info = PodInfo {
                        name: p.name_any(),
                        available: is_pod_available(p, min_ready, now),
                    };
                    let slot = if hash_label(p) == Some(&hash) {
                        &mut np.new
                    } else {
                        &mut np.old
                    };
                    if slot.is_some() {
                        np.duplicates = true;
                    }
                    *slot = Some(info);
                }
                update_view.push(np);
            }
        } else {
            delete.extend(
                pods.iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .map(|p| p.name_any()),
            );
        }
    }
    // Pods pinned to nodes that no longer exist go too.
    for (node, pods) in &by_node {
        if !node_names.contains(node) {
            delete.extend(
                pods.iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .map(|p| p.name_any()),
            );
        }
    }
    if rolling {
        let to_usize = |v: i32| usize::try_from(v).unwrap_or(0);
        let step =
            update::rolling_update(&update_view, to_usize(max_surge), to_usize(max_unavailable));
        create_on.extend(step.create_on);
        delete.extend(step.delete);
    }
    delete.sort();
    delete.dedup();

    for (note, pod) in failed_notes {
        event(ctx, ds, false, "FailedDaemonPod", note, &pod).await;
    }
    let created = Mutex::new(Vec::new());
    let (_, create_err) = slow_start_batch(create_on.len(), |i| {
        let pod = new_pod(ds, &spec, &hash, &create_on[i]);
        let api = pods_api.clone();
        let created = &created;
        async move {
            match api.create(&PostParams::default(), &pod).await {
                Ok(p) => {
                    let pod_name = p.name_any();
                    created.lock().push(pod_name.clone());
                    event(
                        ctx,
                        ds,
                        true,
                        "SuccessfulCreate",
                        format!("Created pod: {pod_name}"),
                        &pod_name,
                    )
                    .await;
                    Ok(())
                }
                Err(e) => {
                    event(
                        ctx,
                        ds,
                        false,
                        "FailedCreate",
                        format!("Error creating: {e}"),
                        "",
                    )
                    .await;
                    Err(e)
                }
            }
        }
    })
    .await;
    let mut deleted = Vec::new();
    let mut delete_err = None;
    for pod in &delete {
        match pods_api.delete(pod, &DeleteParams::default()).await {
            Ok(_) => {
                deleted.push(pod.clone());
                event(
                    ctx,
                    ds,
                    true,
                    "SuccessfulDelete",
                    format!("Deleted pod: {pod}"),
                    pod,
                )
                .await;
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                event(
                    ctx,
                    ds,
                    false,
                    "FailedDelete",
                    format!("Error deleting: {e}"),
                    pod,
                )
                .await;
                delete_err.get_or_insert(e);
            }
        }
    }
    ctx.expectations.expect(key, created.into_inner(), deleted);
    if let Some(e) = create_err.or(delete_err) {
        return Err(e);
    }

    // Status from the pods as this sync found them.
    let (mut scheduled, mut misscheduled, mut ready, mut available, mut updated) = (0, 0, 0, 0, 0);
    let mut waiting_for_min_ready = false;
    for (node, run, _) in &eligible {
        let pods = by_node.get(&node.name_any()).unwrap_or(&empty);
        if *run {
            let Some(p) = pods.first() else { continue };
            scheduled += 1;
            if is_pod_ready(p) {
                ready += 1;
                if is_pod_available(p, min_ready, now) {
                    available += 1;
                } else {
                    waiting_for_min_ready = true;
                }
            }
            if hash_label(p) == Some(&hash) {
                updated += 1;
            }
        } else if !pods.is_empty() {
            misscheduled += 1;
        }
    }
    let desired = desired_i32;
    let old = ds.status.clone().unwrap_or_default();
    let unchanged = old.observed_generation == ds.metadata.generation
        && old.desired_number_scheduled == desired
        && old.current_number_scheduled == scheduled
        && old.number_misscheduled == misscheduled
        && old.number_ready == ready
        && old.number_available.unwrap_or(0) == available
        && old.number_unavailable.unwrap_or(0) == desired - available
        && old.updated_number_scheduled.unwrap_or(0) == updated
        && old.collision_count.unwrap_or(0) == collision;
    if !unchanged {
        let st = json!({"status": {
            "observedGeneration": ds.metadata.generation,
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": scheduled,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "numberAvailable": available,
            "numberUnavailable": desired - available,
            "updatedNumberScheduled": updated,
            "collisionCount": collision,
        }});
        let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), ns);
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(st))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
            Err(e) => return Err(e),
        }
    }

    // History beyond the limit goes, except revisions pods still use.
    let live: Vec<String> = owned.iter().filter_map(hash_label).cloned().collect();
    let is_live = |r: &ControllerRevision| {
        r.name_any() == cur.name_any()
            || r.labels()
                .get(CONTROLLER_REVISION_HASH)
                .is_some_and(|h| live.contains(h))
    };
    let limit = spec.revision_history_limit.unwrap_or(10);
    let prune = history::revisions_to_prune(&revs, is_live, limit);
    history::prune(&Api::namespaced(ctx.client.clone(), ns), prune).await?;

    let min_ready_wait =
        waiting_for_min_ready.then(|| Duration::from_secs(u64::try_from(min_ready).unwrap_or(1)));
    Ok(match (min_ready_wait, retry_after) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_pods_carry_the_hash_tolerations_and_their_node() {
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "kube-system", "uid": "u",
                         "annotations": {"deprecated.daemonset.template.generation": "2"}},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]}
                }
            }
        }))
        .expect("ds");
        let spec = ds.spec.clone().expect("spec");
        let pod = new_pod(&ds, &spec, "abc", "n1");
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
        let labels = pod.metadata.labels.clone().expect("labels");
        assert_eq!(labels[CONTROLLER_REVISION_HASH], "abc");
        assert_eq!(labels[TEMPLATE_GENERATION_LABEL], "2");
        assert_eq!(nodes::target_node(&pod).as_deref(), Some("n1"));
        let tolerations = pod.spec.and_then(|s| s.tolerations).expect("tolerations");
        assert!(
            tolerations
                .iter()
                .any(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready"))
        );
    }
}

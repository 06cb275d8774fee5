//! The eviction manager's loop (see [`crate::eviction`]): every monitoring interval it
//! observes the node, and when a threshold is due it frees what the node holds unused
//! (dead containers and unused images, under disk pressure) and otherwise hands one pod
//! to its worker for eviction.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;

use super::{Ctx, wake};
use crate::events::EventType;
use crate::eviction::{
    self, Candidate, ContainerUse, Filesystems, Manager, Observations, Reclaim, Signal,
};
use crate::runtime::{ContainerState, labels};
use crate::stats;

/// An eviction the pod's worker carries out.
#[derive(Debug, Clone)]
pub(crate) struct Eviction {
    /// Upstream's message (status, event and DisruptionTarget condition).
    pub message: String,
    /// The grace period its containers are stopped with.
    pub grace: i64,
}

/// The node's signals now.
fn observe(ctx: &Ctx) -> Observations {
    let fs = Filesystems {
        nodefs: ctx.config.root_dir.clone(),
        imagefs: ctx.config.image_fs_dir.clone(),
    };
    let (nodefs, imagefs) = fs.stats();
    eviction::observe(
        stats::node_stats().as_ref(),
        nodefs.as_ref(),
        imagefs.as_ref(),
        stats::pid_stats().as_ref(),
    )
}

/// Runs the eviction manager until aborted.
pub(super) async fn run(ctx: Arc<Ctx>, manager: Arc<Manager>) {
    let mut tick = tokio::time::interval(manager.config().monitoring_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut node_uid: Option<String> = None;
    loop {
        tick.tick().await;
        if manager.config().thresholds.is_empty() {
            continue;
        }
        let observations = observe(&ctx);
        let Some(reclaim) = manager.synchronize(&observations, Instant::now()) else {
            continue;
        };
        tracing::info!(
            resource = reclaim.resource,
            "eviction manager: attempting to reclaim"
        );
        if node_uid.is_none() {
            let api: Api<Node> = Api::all(ctx.client.clone());
            node_uid = api
                .get_opt(&ctx.config.node_name)
                .await
                .ok()
                .flatten()
                .and_then(|n| n.metadata.uid);
        }
        ctx.recorder.node(
            &ctx.config.node_name,
            node_uid.clone(),
            EventType::Warning,
            "EvictionThresholdMet",
            format!("Attempting to reclaim {}", reclaim.resource),
        );
        if reclaim.threshold.signal.pressure() == eviction::Pressure::Disk {
            reclaim_node_resources(&ctx).await;
            if !manager.still_met(&observe(&ctx)) {
                tracing::info!(
                    "eviction manager: able to reduce resource pressure without evicting pods"
                );
                continue;
            }
        }
        evict_one(&ctx, &manager, &reclaim).await;
    }
}

/// Upstream's node-level reclaim: dead containers of pods that no longer need them, then
/// images no container uses.
async fn reclaim_node_resources(ctx: &Ctx) {
    let containers = match ctx.runtime.list_containers().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "eviction manager: cannot list containers");
            return;
        }
    };
    let live: HashSet<String> = ctx
        .store
        .state()
        .iter()
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    let mut used: HashSet<String> = HashSet::new();
    for c in &containers {
        let uid = c.labels.get(labels::POD_UID).cloned().unwrap_or_default();
        let dead = c.state == ContainerState::Exited;
        if dead && !live.contains(&uid) && ctx.runtime.remove_container(&c.id).await.is_ok() {
            continue;
        }
        used.insert(c.image.clone());
    }
    let images = ctx.runtime.list_images().await.unwrap_or_default();
    for image in images.iter().filter(|i| !used.contains(&i.id)) {
        match ctx.runtime.remove_image(&image.id).await {
            Ok(()) => {
                ctx.images.lock().remove(&image.id);
                tracing::info!(image = %image.id, "eviction manager: removed an unused image");
            }
            Err(e) => tracing::debug!(image = %image.id, error = %e, "cannot remove an image"),
        }
    }
}

/// Bytes under `dir` (files not followed through links).
fn du(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

/// The pods that may be evicted, with their use of what `reclaim` starves.
async fn candidates(ctx: &Ctx, reclaim: &Reclaim, pending: &HashSet<String>) -> Vec<Candidate> {
    let signal = reclaim.threshold.signal;
    let pods: Vec<Arc<Pod>> = ctx
        .store
        .state()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .filter(|p| {
            p.metadata
                .uid
                .as_ref()
                .is_some_and(|u| !pending.contains(u) && ctx.workers.lock().contains_key(u))
        })
        .filter(|p| !eviction::is_critical(p))
        .collect();
    let memory: HashMap<(String, String, String), u64> = if signal == Signal::MemoryAvailable {
        stats::collect(ctx.runtime.as_ref())
            .await
            .containers
            .into_iter()
            .map(|c| {
                (
                    (c.namespace, c.pod, c.container),
                    c.stats.memory_working_set_bytes,
                )
            })
            .collect()
    } else {
        HashMap::new()
    };
    let mut out = Vec::new();
    for pod in pods {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let (request, per) = eviction::pod_request(&pod, reclaim.resource);
        let mut containers: Vec<ContainerUse> = Vec::new();
        for (c, req) in per {
            let usage = match signal {
                Signal::MemoryAvailable => memory
                    .get(&(ns.clone(), name.clone(), c.clone()))
                    .map(|b| i64::try_from(*b).unwrap_or(i64::MAX)),
                Signal::NodeFsAvailable | Signal::ImageFsAvailable => {
                    let logs = ctx
                        .config
                        .log_dir
                        .join(format!("{ns}_{name}_{uid}"))
                        .join(&c);
                    Some(i64::try_from(du(&logs)).unwrap_or(i64::MAX))
                }
                _ => None,
            };
            containers.push(ContainerUse {
                name: c,
                usage,
                request: req,
            });
        }
        let mut usage: Option<i64> = if containers.iter().any(|c| c.usage.is_some()) {
            Some(containers.iter().filter_map(|c| c.usage).sum())
        } else {
            None
        };
        if matches!(signal, Signal::NodeFsAvailable | Signal::ImageFsAvailable) {
            // The pod's emptyDirs on disk count as its ephemeral storage.
            let dirs = ctx
                .config
                .root_dir
                .join("pods")
                .join(&uid)
                .join("volumes")
                .join("kubernetes.io~empty-dir");
            let bytes = i64::try_from(du(&dirs)).unwrap_or(i64::MAX);
            usage = Some(usage.unwrap_or(0).saturating_add(bytes));
        }
        out.push(Candidate {
            key: (ns, name, uid),
            priority: pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
            critical: false,
            request,
            usage,
            containers,
        });
    }
    out
}

/// Ranks the pods and hands the first to its worker for eviction.
async fn evict_one(ctx: &Arc<Ctx>, manager: &Manager, reclaim: &Reclaim) {
    let pending: HashSet<String> = ctx.evictions.lock().keys().cloned().collect();
    let mut pods = candidates(ctx, reclaim, &pending).await;
    if pods.is_empty() {
        tracing::warn!("eviction manager: thresholds met, but no pod can be evicted");
        return;
    }
    eviction::rank(reclaim.threshold.signal, &mut pods);
    let Some(victim) = pods.first() else {
        return;
    };
    let (ns, name, uid) = victim.key.clone();
    let Some(pod) = ctx.pod(&ns, &name, &uid) else {
        return;
    };
    let message = eviction::message(reclaim, victim);
    let grace = eviction::grace_period(manager.config(), &reclaim.threshold, &pod);
    tracing::info!(pod = %format!("{ns}/{name}"), %message, "eviction manager: evicting a pod");
    ctx.evictions
        .lock()
        .insert(uid.clone(), Eviction { message, grace });
    wake(ctx, &uid, &ns, &name);
}

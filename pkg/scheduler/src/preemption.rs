//! DefaultPreemption: when no node fits a pod, find the node where evicting the fewest,
//! least important lower-priority pods makes it fit.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::cache::{Cache, NodeInfo, PodInfo};
use crate::plugins::Cycle;

/// Upstream's `PodEligibleToPreemptOthers`: a pod nominated to a node where lower-priority
/// pods are already terminating waits for them rather than preempting again. The error
/// is the preemption part of the failure message.
pub fn eligible(pod: &Pod, cycle: &Cycle<'_>, cache: &Cache) -> Result<(), String> {
    let nominated = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .unwrap_or("");
    if nominated.is_empty() {
        return Ok(());
    }
    let Some(node) = cache.nodes.get(nominated) else {
        return Ok(());
    };
    if node
        .pods
        .values()
        .any(|p| p.terminating && p.priority < cycle.info.priority)
    {
        return Err(
            "preemption: not eligible due to a terminating pod on the nominated node.".into(),
        );
    }
    Ok(())
}

/// A copy of a node without some of its pods.
fn without(node: &NodeInfo, gone: &[Arc<PodInfo>]) -> NodeInfo {
    let mut copy = NodeInfo {
        node: node.node.clone(),
        labels: node.labels.clone(),
        taints: node.taints.clone(),
        unschedulable: node.unschedulable,
        allocatable: node.allocatable.clone(),
        allowed_pods: node.allowed_pods,
        ..NodeInfo::default()
    };
    for p in node.pods.values() {
        if !gone.iter().any(|g| g.uid == p.uid) {
            copy.add_pod(p.clone());
        }
    }
    copy
}

/// Victims on one node: every lower-priority pod removed must make the pod fit; then
/// as many as possible are reprieved, most important first.
fn victims_on(cycle: &Cycle<'_>, name: &str, node: &NodeInfo) -> Option<Vec<Arc<PodInfo>>> {
    let mut lower: Vec<Arc<PodInfo>> = node
        .pods
        .values()
        .filter(|p| p.priority < cycle.info.priority)
        .cloned()
        .collect();
    if lower.is_empty() {
        return None;
    }
    if cycle.filter(name, &without(node, &lower)).is_some() {
        return None;
    }
    lower.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
    let mut victims = lower.clone();
    for p in &lower {
        let trial: Vec<Arc<PodInfo>> = victims.iter().filter(|v| v.uid != p.uid).cloned().collect();
        if cycle.filter(name, &without(node, &trial)).is_none() {
            victims = trial;
        }
    }
    Some(victims)
}

/// A candidate: its ranking key, node and victims.
type Choice = ((i64, i64, usize), String, Vec<Arc<PodInfo>>);

/// The node to preempt on and its victims, chosen as upstream's
/// `pickOneNodeForPreemption` does (PodDisruptionBudgets apart): the lowest highest
/// victim priority, then the lowest sum of priorities, then the fewest victims.
pub fn find<'n>(
    cycle: &Cycle<'_>,
    cache: &Cache,
    candidates: impl Iterator<Item = &'n str>,
) -> Option<(String, Vec<Arc<PodInfo>>)> {
    let mut best: Option<Choice> = None;
    for name in candidates {
        let Some(node) = cache.nodes.get(name) else {
            continue;
        };
        let Some(victims) = victims_on(cycle, name, node) else {
            continue;
        };
        let key = (
            victims
                .iter()
                .map(|v| i64::from(v.priority))
                .max()
                .unwrap_or(i64::MIN),
            victims.iter().map(|v| i64::from(v.priority)).sum::<i64>(),
            victims.len(),
        );
        if best.as_ref().is_none_or(|(k, ..)| key < *k) {
            best = Some((key, name.to_string(), victims));
        }
    }
    best.map(|(_, n, v)| (n, v))
}

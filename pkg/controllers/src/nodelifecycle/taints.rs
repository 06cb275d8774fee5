//! The taints the node lifecycle controller owns, and toleration matching (upstream's
//! `Toleration.ToleratesTaint`), shared with the taint eviction controller.

use k8s_openapi::api::core::v1::{Node, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Taint key: the node's Ready condition is False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Taint key: the node's Ready condition is Unknown (it stopped heartbeating).
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Taint key: `spec.unschedulable` is set (`kubectl cordon`).
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// Taint key: MemoryPressure is True.
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
/// Taint key: DiskPressure is True.
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
/// Taint key: PIDPressure is True.
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
/// Taint key: NetworkUnavailable is True.
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// `(key, effect)` of every taint this controller adds and removes.
pub const MANAGED: [(&str, &str); 9] = [
    (NOT_READY, "NoSchedule"),
    (UNREACHABLE, "NoSchedule"),
    (NOT_READY, "NoExecute"),
    (UNREACHABLE, "NoExecute"),
    (UNSCHEDULABLE, "NoSchedule"),
    (MEMORY_PRESSURE, "NoSchedule"),
    (DISK_PRESSURE, "NoSchedule"),
    (PID_PRESSURE, "NoSchedule"),
    (NETWORK_UNAVAILABLE, "NoSchedule"),
];

/// Whether `toleration` tolerates `taint`.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// The status of a node condition, if the node has it.
pub fn condition_status<'a>(node: &'a Node, ty: &str) -> Option<&'a str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)
        .map(|c| c.status.as_str())
}

/// The managed taints the node should carry, `(key, effect)`: NoSchedule for every
/// unhealthy condition and for `spec.unschedulable`, NoExecute for a Ready condition
/// that is False or Unknown unless `no_execute` is off (every node is down: upstream's
/// "master disruption mode", where evicting would only make things worse).
pub fn desired(node: &Node, no_execute: bool) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    match condition_status(node, "Ready") {
        Some("False") => {
            out.push((NOT_READY, "NoSchedule"));
            if no_execute {
                out.push((NOT_READY, "NoExecute"));
            }
        }
        Some("Unknown") => {
            out.push((UNREACHABLE, "NoSchedule"));
            if no_execute {
                out.push((UNREACHABLE, "NoExecute"));
            }
        }
        _ => {}
    }
    for (ty, key) in [
        ("MemoryPressure", MEMORY_PRESSURE),
        ("DiskPressure", DISK_PRESSURE),
        ("PIDPressure", PID_PRESSURE),
        ("NetworkUnavailable", NETWORK_UNAVAILABLE),
    ] {
        if condition_status(node, ty) == Some("True") {
            out.push((key, "NoSchedule"));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        out.push((UNSCHEDULABLE, "NoSchedule"));
    }
    out
}

/// The node's taints with the managed ones made to match `desired`: others' taints and
/// managed taints already present are kept as they are (with their `timeAdded`); new
/// ones get `timeAdded` now. `None` when nothing changes.
pub fn reconcile(node: &Node, desired: &[(&str, &str)], now: Timestamp) -> Option<Vec<Taint>> {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let is_managed = |t: &Taint| MANAGED.iter().any(|(k, e)| *k == t.key && *e == t.effect);
    let wanted = |t: &Taint| desired.iter().any(|(k, e)| *k == t.key && *e == t.effect);
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !is_managed(t) || wanted(t))
        .cloned()
        .collect();
    for (key, effect) in desired {
        if !out.iter().any(|t| t.key == *key && t.effect == *effect) {
            out.push(Taint {
                key: (*key).to_string(),
                effect: (*effect).to_string(),
                time_added: Some(Time(now)),
                value: None,
            });
        }
    }
    (out != current).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).expect("node")
    }

    #[test]
    fn unreachable_nodes_and_cordons_get_their_taints_and_keep_others() {
        let n = node(json!({
            "metadata": {"name": "n"},
            "spec": {"unschedulable": true, "taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}
        }));
        let want = desired(&n, true);
        assert_eq!(
            want,
            [
                (UNREACHABLE, "NoSchedule"),
                (UNREACHABLE, "NoExecute"),
                (UNSCHEDULABLE, "NoSchedule")
            ]
        );
        let taints = reconcile(&n, &want, Timestamp::now()).expect("changed");
        let keys: Vec<_> = taints
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(keys[0], ("dedicated", "NoSchedule"));
        assert_eq!(keys.len(), 4);
        let mut healed = n.clone();
        healed.spec.as_mut().expect("spec").taints = Some(taints);
        healed.spec.as_mut().expect("spec").unschedulable = None;
        let taints = reconcile(
            &healed,
            &desired(&node(json!({"metadata": {}})), true),
            Timestamp::now(),
        )
        .expect("removed");
        assert_eq!(taints.len(), 1);
        assert_eq!(
            reconcile(&n, &desired(&n, true), Timestamp::now()).map(|t| t.len()),
            Some(4)
        );
    }

    #[test]
    fn the_taint_new_nodes_are_created_with_goes_once_they_are_ready() {
        // The apiserver's TaintNodesByCondition admission adds it without `timeAdded`:
        // a node registered NotReady (the kubelet before its network is up) keeps it,
        // one that is Ready (the kubelet later, a simulated node at once) loses it.
        let registered = |ready: &str| {
            node(json!({
                "metadata": {"name": "n"},
                "spec": {"taints": [{"key": NOT_READY, "effect": "NoSchedule"}]},
                "status": {"conditions": [{"type": "Ready", "status": ready}]}
            }))
        };
        let not_ready = registered("False");
        let kept = reconcile(&not_ready, &desired(&not_ready, true), Timestamp::now())
            .expect("NoExecute added");
        let keys: Vec<_> = kept
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str(), t.time_added.is_some()))
            .collect();
        assert_eq!(
            keys,
            [
                (NOT_READY, "NoSchedule", false),
                (NOT_READY, "NoExecute", true)
            ]
        );
        let ready = registered("True");
        assert_eq!(
            reconcile(&ready, &desired(&ready, true), Timestamp::now()),
            Some(vec![])
        );
    }

    #[test]
    fn tolerations_match_like_upstream() {
        let taint = Taint {
            key: UNREACHABLE.into(),
            effect: "NoExecute".into(),
            ..Taint::default()
        };
        let t =
            |v: serde_json::Value| -> Toleration { serde_json::from_value(v).expect("toleration") };
        assert!(tolerates(&t(json!({"operator": "Exists"})), &taint));
        assert!(tolerates(
            &t(json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"})),
            &taint
        ));
        assert!(!tolerates(
            &t(json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"})),
            &taint
        ));
        assert!(tolerates(&t(json!({"key": UNREACHABLE})), &taint));
        assert!(!tolerates(
            &t(json!({"key": UNREACHABLE, "value": "x"})),
            &taint
        ));
        assert!(!tolerates(
            &t(json!({"key": NOT_READY, "operator": "Exists"})),
            &taint
        ));
    }
}

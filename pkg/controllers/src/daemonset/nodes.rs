//! Which nodes a DaemonSet runs on (upstream `NodeShouldRunDaemonPod`): the template's
//! nodeName, nodeSelector and required node affinity must match the node, and its
//! tolerations (plus the ones every daemon pod gets) must tolerate the node's NoSchedule
//! and NoExecute taints; a pod already there keeps running while it tolerates the
//! NoExecute ones.

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Taint, Toleration,
};

/// The field a daemon pod's node affinity names its node with.
pub const NODE_NAME_FIELD: &str = "metadata.name";

/// The tolerations upstream adds to every daemon pod (`AddOrUpdateDaemonPodTolerations`):
/// (key, effect); network-unavailable only for host-network pods.
const DAEMON_TOLERATIONS: &[(&str, &str)] = &[
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];
const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// Adds the daemon tolerations the spec lacks (one with the same key, operator and effect
/// is replaced, as upstream's `AddOrUpdateTolerationInPodSpec`).
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let host_network = spec.host_network.unwrap_or(false);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    let wanted = DAEMON_TOLERATIONS
        .iter()
        .copied()
        .chain(host_network.then_some((NETWORK_UNAVAILABLE, "NoSchedule")));
    for (key, effect) in wanted {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Toleration::default()
        };
        match tolerations.iter_mut().find(|x| {
            x.key == t.key && x.effect == t.effect && x.operator.as_deref() == Some("Exists")
        }) {
            Some(existing) => *existing = t,
            None => tolerations.push(t),
        }
    }
}

/// Whether `t` tolerates `taint` (upstream `ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    if t.key
        .as_deref()
        .is_some_and(|k| !k.is_empty() && k != taint.key)
    {
        return false;
    }
    match t.operator.as_deref() {
        Some("Exists") => true,
        None | Some("") | Some("Equal") => {
            t.key.as_deref().unwrap_or("") == taint.key
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        Some(_) => false,
    }
}

fn untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    effects: &[&str],
) -> Option<&'a Taint> {
    taints.iter().find(|taint| {
        effects.contains(&taint.effect.as_str()) && !tolerations.iter().any(|t| tolerates(t, taint))
    })
}

fn requirement_matches(req: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = req.values.as_deref().unwrap_or(&[]);
    let num = |s: &str| s.parse::<i64>().ok();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (value.and_then(num), values.first().and_then(|b| num(b)))
            else {
                return false;
            };
            if req.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.as_ref();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.and_then(|l| l.get(&r.key)).map(String::as_str)))
        && fields.iter().all(|r| {
            r.key == NODE_NAME_FIELD && requirement_matches(r, node.metadata.name.as_deref())
        })
}

/// Whether the pod spec's nodeSelector and required node affinity match the node.
pub fn affinity_matches(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    selector_ok
        && required.is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, node)))
}

/// (should run, should continue running) for a daemon pod of `template` on `node`.
pub fn should_run(template: &PodSpec, node: &Node) -> (bool, bool) {
    let mut spec = template.clone();
    add_daemon_tolerations(&mut spec);
    should_run_prepared(&spec, node)
}

/// [`should_run`] for a template that already carries the daemon tolerations (prepared
/// once per sync rather than once per node).
pub fn should_run_prepared(spec: &PodSpec, node: &Node) -> (bool, bool) {
    let template = spec;
    let node_name = node.metadata.name.as_deref().unwrap_or("");
    if template
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node_name)
    {
        return (false, false);
    }
    if !affinity_matches(spec, node) {
        return (false, false);
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    let tolerations = spec.tolerations.as_deref().unwrap_or(&[]);
    if untolerated(taints, tolerations, &["NoSchedule", "NoExecute"]).is_none() {
        return (true, true);
    }
    (
        false,
        untolerated(taints, tolerations, &["NoExecute"]).is_none(),
    )
}

/// Pins a daemon pod to its node the way upstream does, through the scheduler: its
/// required node affinity becomes `metadata.name In [node]` (other preferences kept).
pub fn pin_to_node(spec: &mut PodSpec, node: &str) {
    let term = NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: NODE_NAME_FIELD.into(),
            operator: "In".into(),
            values: Some(vec![node.to_string()]),
        }]),
        match_expressions: None,
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let na = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
}

/// The node a daemon pod is for: its nodeName, else the node its affinity pins it to.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.iter().flatten().find_map(|r| {
            let values = r.values.as_deref().unwrap_or(&[]);
            (r.key == NODE_NAME_FIELD && r.operator == "In" && values.len() == 1)
                .then(|| values[0].clone())
        })
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node(name: &str, labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints}
        }))
        .expect("node")
    }

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).expect("spec")
    }

    #[test]
    fn node_selector_and_affinity_pick_nodes() {
        let n = node("n1", json!({"disk": "ssd", "gen": "5"}), json!([]));
        let base = json!({"containers": [{"name": "c", "image": "i"}]});
        assert_eq!(should_run(&spec(base.clone()), &n), (true, true));
        let mut s = spec(base.clone());
        s.node_selector = Some([("disk".to_string(), "hdd".to_string())].into());
        assert_eq!(should_run(&s, &n), (false, false));
        let s = spec(json!({
            "containers": [{"name": "c", "image": "i"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["6"]}]},
                    {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}
                ]
            }}}
        }));
        assert!(should_run(&s, &n).0);
        let other = node("n2", json!({"gen": "5"}), json!([]));
        assert!(!should_run(&s, &other).0);
    }

    #[test]
    fn taints_need_tolerations_but_daemon_pods_get_some_for_free() {
        let base = spec(json!({"containers": [{"name": "c", "image": "i"}]}));
        let cordoned = node(
            "n",
            json!({}),
            json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
        );
        assert_eq!(should_run(&base, &cordoned), (true, true));
        let tainted = node(
            "n",
            json!({}),
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
        );
        // Not started there, but one already there may stay (NoSchedule only).
        assert_eq!(should_run(&base, &tainted), (false, true));
        let evicting = node(
            "n",
            json!({}),
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoExecute"}]),
        );
        assert_eq!(should_run(&base, &evicting), (false, false));
        let mut tolerant = base.clone();
        tolerant.tolerations = Some(vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some("gpu".into()),
            ..Toleration::default()
        }]);
        assert_eq!(should_run(&tolerant, &evicting), (true, true));
        let mut s = base.clone();
        add_daemon_tolerations(&mut s);
        assert_eq!(s.tolerations.as_ref().map(Vec::len), Some(6));
        s.host_network = Some(true);
        add_daemon_tolerations(&mut s);
        assert_eq!(s.tolerations.as_ref().map(Vec::len), Some(7));
    }

    #[test]
    fn pods_are_pinned_through_node_affinity() {
        let mut s = spec(json!({"containers": [{"name": "c", "image": "i"}]}));
        pin_to_node(&mut s, "n3");
        let pod = Pod {
            spec: Some(s),
            ..Pod::default()
        };
        assert_eq!(target_node(&pod).as_deref(), Some("n3"));
        let n3 = node("n3", json!({}), json!([]));
        let n4 = node("n4", json!({}), json!([]));
        let s = pod.spec.clone().expect("spec");
        assert!(affinity_matches(&s, &n3));
        assert!(!affinity_matches(&s, &n4));
    }
}

//! The rolling update of a DaemonSet (upstream `pkg/controller/daemon/update.go`), decided
//! from each node's old and new pod: without surge, old pods are deleted while at most
//! maxUnavailable nodes are down; with surge, a new pod starts beside the old one on at
//! most maxSurge nodes at once and the old one goes when the new one is available.

/// One daemon pod as the update sees it.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// The pod's name.
    pub name: String,
    /// Ready for minReadySeconds.
    pub available: bool,
}

/// A node's live daemon pods, split by revision.
#[derive(Debug, Clone)]
pub struct NodePods {
    /// The node's name.
    pub node: String,
    /// The pod of an old revision, if any.
    pub old: Option<PodInfo>,
    /// The pod of the current revision, if any.
    pub new: Option<PodInfo>,
    /// More than one old or new pod: the manage step sorts this node out first.
    pub duplicates: bool,
}

/// What one step of the update does.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Step {
    /// Old pods to delete.
    pub delete: Vec<String>,
    /// Nodes that get a new pod beside their old one (surge).
    pub create_on: Vec<String>,
}

/// One step of the rolling update, given the resolved maxSurge and maxUnavailable.
pub fn rolling_update(nodes: &[NodePods], max_surge: usize, max_unavailable: usize) -> Step {
    let mut step = Step::default();
    if max_surge == 0 {
        let mut unavailable = 0;
        let mut replaceable = Vec::new();
        let mut candidates = Vec::new();
        for n in nodes {
            if n.duplicates {
                unavailable += 1;
                continue;
            }
            match (&n.old, &n.new) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (None, Some(new)) => {
                    if !new.available {
                        unavailable += 1;
                    }
                }
                (Some(old), None) => {
                    if !old.available {
                        replaceable.push(old.name.clone());
                    } else if unavailable < max_unavailable {
                        candidates.push(old.name.clone());
                    }
                }
            }
        }
        let room = max_unavailable.saturating_sub(unavailable);
        step.delete = replaceable;
        step.delete.extend(candidates.into_iter().take(room));
        return step;
    }
    let mut surging = 0;
    let mut allowed = Vec::new();
    let mut candidates = Vec::new();
    for n in nodes {
        if n.duplicates {
            continue;
        }
        match (&n.old, &n.new) {
            (None, _) => {}
            (Some(old), None) => {
                if !old.available {
                    allowed.push(n.node.clone());
                } else {
                    candidates.push(n.node.clone());
                }
            }
            (Some(old), Some(new)) => {
                if new.available {
                    step.delete.push(old.name.clone());
                } else {
                    surging += 1;
                }
            }
        }
    }
    let room = max_surge.saturating_sub(surging);
    step.create_on = allowed;
    step.create_on.extend(candidates.into_iter().take(room));
    step
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, available: bool) -> Option<PodInfo> {
        Some(PodInfo {
            name: name.into(),
            available,
        })
    }

    fn node(n: &str, old: Option<PodInfo>, new: Option<PodInfo>) -> NodePods {
        NodePods {
            node: n.into(),
            old,
            new,
            duplicates: false,
        }
    }

    #[test]
    fn without_surge_old_pods_go_within_max_unavailable() {
        let nodes = [
            node("a", pod("a-old", true), None),
            node("b", pod("b-old", true), None),
            node("c", pod("c-old", true), None),
        ];
        assert_eq!(rolling_update(&nodes, 0, 1).delete, ["a-old"]);
        assert_eq!(rolling_update(&nodes, 0, 2).delete, ["a-old", "b-old"]);
        // A node whose new pod is not available yet uses up the budget.
        let nodes = [
            node("a", None, pod("a-new", false)),
            node("b", pod("b-old", true), None),
            node("c", pod("c-old", false), None),
        ];
        // An unavailable old pod may always be replaced.
        assert_eq!(rolling_update(&nodes, 0, 1).delete, ["c-old"]);
    }

    #[test]
    fn with_surge_new_pods_start_beside_old_ones() {
        let nodes = [
            node("a", pod("a-old", true), None),
            node("b", pod("b-old", true), None),
        ];
        let s = rolling_update(&nodes, 1, 0);
        assert_eq!(s.create_on, ["a"]);
        assert!(s.delete.is_empty());
        let nodes = [
            node("a", pod("a-old", true), pod("a-new", false)),
            node("b", pod("b-old", true), None),
        ];
        assert_eq!(rolling_update(&nodes, 1, 0), Step::default());
        let nodes = [
            node("a", pod("a-old", true), pod("a-new", true)),
            node("b", pod("b-old", true), None),
        ];
        let s = rolling_update(&nodes, 1, 0);
        assert_eq!(s.delete, ["a-old"]);
        assert_eq!(s.create_on, ["b"]);
    }
}

//! The dependency graph: one node per observed object (uid → node, metadata only), and
//! an index from owner uid to the uids of objects that name it in `ownerReferences`.
//!
//! Every change returns the work it makes necessary; the graph itself never talks to
//! the API server, so it is tested without one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::discovery::ApiResource;

/// The finalizer that asks the collector to orphan dependents before the owner goes.
pub const FINALIZER_ORPHAN: &str = "orphan";
/// The finalizer that asks the collector to delete dependents before the owner goes.
pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";

/// A resource type, shared by all of its nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    /// Group, version, kind and plural.
    pub api: ApiResource,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

impl Kind {
    /// `(group, plural)`: the resource, whatever its version.
    pub fn key(&self) -> (String, String) {
        (self.api.group.clone(), self.api.plural.clone())
    }
}

/// One entry of an object's `ownerReferences`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The owner's uid.
    pub uid: String,
    /// The owner's apiVersion.
    pub api_version: String,
    /// The owner's kind.
    pub kind: String,
    /// The owner's name (in the dependent's namespace when the owner is namespaced).
    pub name: String,
    /// `blockOwnerDeletion`: a foreground deletion of the owner waits for this dependent.
    pub block: bool,
}

/// What the collector remembers of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its resource type.
    pub kind: Arc<Kind>,
    /// Its namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Its owners.
    pub owners: Vec<Owner>,
    /// Whether `deletionTimestamp` is set.
    pub deleting: bool,
    /// Whether it carries the `orphan` finalizer.
    pub orphan: bool,
    /// Whether it carries the `foregroundDeletion` finalizer.
    pub foreground: bool,
}

impl Node {
    /// Reads a node from object metadata; `None` without a uid or a name.
    pub fn from_meta(kind: &Arc<Kind>, meta: &ObjectMeta) -> Option<(String, Node)> {
        let uid = meta.uid.clone().filter(|u| !u.is_empty())?;
        let name = meta.name.clone().filter(|n| !n.is_empty())?;
        let finalizers = meta.finalizers.as_deref().unwrap_or_default();
        let owners = meta
            .owner_references
            .iter()
            .flatten()
            .map(|o| Owner {
                uid: o.uid.clone(),
                api_version: o.api_version.clone(),
                kind: o.kind.clone(),
                name: o.name.clone(),
                block: o.block_owner_deletion == Some(true),
            })
            .collect();
        let node = Node {
            kind: kind.clone(),
            namespace: meta.namespace.clone().filter(|n| !n.is_empty()),
            name,
            owners,
            deleting: meta.deletion_timestamp.is_some(),
            orphan: finalizers.iter().any(|f| f == FINALIZER_ORPHAN),
            foreground: finalizers.iter().any(|f| f == FINALIZER_FOREGROUND),
        };
        Some((uid, node))
    }

    /// Being deleted in the foreground: waiting for its blocking dependents to go.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.foreground
    }
}

/// A unit of work for the collector's workers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Work {
    /// Check the object's owners: delete it when all are gone, drop references to the
    /// gone ones otherwise; for an owner deleting in the foreground, check its dependents.
    AttemptToDelete(String),
    /// Remove the object's uid from its dependents' owner references, then its `orphan`
    /// finalizer.
    Orphan(String),
}

/// The graph.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    /// The node of `uid`.
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// How many objects the graph holds.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph holds no object.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The observed objects that name `uid` as an owner.
    pub fn dependents(&self, uid: &str) -> Vec<(String, Node)> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d).map(|n| (d.clone(), n.clone())))
            .collect()
    }

    /// Whether `owner` names an observed object the dependent may have as its owner:
    /// same uid and kind, and cluster-scoped or in the dependent's namespace (a
    /// reference across namespaces is treated as pointing at an absent owner).
    fn resolves(&self, dependent: &Node, owner: &Owner) -> Option<&Node> {
        let node = self.nodes.get(&owner.uid)?;
        let group = owner.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        if node.kind.api.group != group
            || node.kind.api.kind != owner.kind
            || node.name != owner.name
        {
            return None;
        }
        if node.kind.namespaced && node.namespace != dependent.namespace {
            return None;
        }
        Some(node)
    }

    /// Whether every owner of `uid` is observed and not waiting for its dependents:
    /// nothing for the collector to do about `uid` now.
    pub fn owners_all_solid(&self, uid: &str) -> bool {
        let Some(node) = self.nodes.get(uid) else {
            return false;
        };
        node.owners.iter().all(|o| {
            self.resolves(node, o)
                .is_some_and(|n| !n.deleting_dependents())
        })
    }

    fn needs_owner_check(&self, node: &Node) -> bool {
        !node.owners.is_empty()
            && !node.owners.iter().all(|o| {
                self.resolves(node, o)
                    .is_some_and(|n| !n.deleting_dependents())
            })
    }

    fn own_work(&self, uid: &str, node: &Node, work: &mut Vec<Work>) {
        if node.deleting && node.orphan {
            work.push(Work::Orphan(uid.to_string()));
        }
        if node.deleting_dependents() {
            work.push(Work::AttemptToDelete(uid.to_string()));
            for d in self.dependents.get(uid).into_iter().flatten() {
                work.push(Work::AttemptToDelete(d.clone()));
            }
        }
        if self.needs_owner_check(node) {
            work.push(Work::AttemptToDelete(uid.to_string()));
        }
    }

    fn owner_waiting(&self, owner_uid: &str) -> bool {
        self.nodes
            .get(owner_uid)
            .is_some_and(Node::deleting_dependents)
    }

    /// Records an added or changed object.
    pub fn upsert(&mut self, uid: String, node: Node) -> Vec<Work> {
        let mut work = Vec::new();
        let old = self.nodes.insert(uid.clone(), node.clone());
        let old_owners = old.map(|o| o.owners).unwrap_or_default();
        for o in &old_owners {
            let kept = node.owners.iter().find(|n| n.uid == o.uid);
            if kept.is_none()
                && let Some(set) = self.dependents.get_mut(&o.uid)
            {
                set.remove(&uid);
                if set.is_empty() {
                    self.dependents.remove(&o.uid);
                }
            }
            // An owner waiting on this dependent may be free to go now.
            if kept.is_none_or(|k| k.block != o.block) && self.owner_waiting(&o.uid) {
                work.push(Work::AttemptToDelete(o.uid.clone()));
            }
        }
        for o in &node.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(uid.clone());
        }
        self.own_work(&uid, &node, &mut work);
        work
    }

    /// Records a deleted object.
    pub fn remove(&mut self, uid: &str) -> Vec<Work> {
        let mut work = Vec::new();
        let Some(node) = self.nodes.remove(uid) else {
            return work;
        };
        for o in &node.owners {
            if let Some(set) = self.dependents.get_mut(&o.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&o.uid);
                }
            }
            if self.owner_waiting(&o.uid) {
                work.push(Work::AttemptToDelete(o.uid.clone()));
            }
        }
        // Dependents keep naming the uid, so the index entry stays until they let go.
        for d in self.dependents.get(uid).into_iter().flatten() {
            work.push(Work::AttemptToDelete(d.clone()));
        }
        work
    }

    /// After a relist of `kind`: objects of that kind not in `seen` were deleted unseen.
    pub fn retain_kind(&mut self, kind: &Kind, seen: &HashSet<String>) -> Vec<Work> {
        let key = kind.key();
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|(uid, n)| n.kind.key() == key && !seen.contains(*uid))
            .map(|(uid, _)| uid.clone())
            .collect();
        gone.iter().flat_map(|uid| self.remove(uid)).collect()
    }

    /// Every piece of work the current graph calls for: a periodic sweep, so that work
    /// lost to a failed write or a missed event is found again.
    pub fn sweep(&self) -> Vec<Work> {
        let mut work = Vec::new();
        for (uid, node) in &self.nodes {
            self.own_work(uid, node, &mut work);
        }
        work
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};

    use super::*;

    fn kind(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Arc<Kind> {
        let api_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Arc::new(Kind {
            api: ApiResource {
                group: group.into(),
                version: version.into(),
                api_version,
                kind: kind.into(),
                plural: plural.into(),
            },
            namespaced,
        })
    }

    fn rs() -> Arc<Kind> {
        kind("apps", "v1", "ReplicaSet", "replicasets", true)
    }

    fn pod() -> Arc<Kind> {
        kind("", "v1", "Pod", "pods", true)
    }

    fn meta(uid: &str, ns: &str, owners: &[(&str, &str, &str, bool)]) -> ObjectMeta {
        ObjectMeta {
            uid: Some(uid.into()),
            name: Some(format!("name-{uid}")),
            namespace: (!ns.is_empty()).then(|| ns.to_string()),
            owner_references: Some(
                owners
                    .iter()
                    .map(|(uid, api_version, kind, block)| OwnerReference {
                        uid: (*uid).into(),
                        api_version: (*api_version).into(),
                        kind: (*kind).into(),
                        name: format!("name-{uid}"),
                        block_owner_deletion: Some(*block),
                        controller: None,
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn add(g: &mut Graph, k: &Arc<Kind>, m: &ObjectMeta) -> Vec<Work> {
        let (uid, node) = Node::from_meta(k, m).expect("uid and name");
        g.upsert(uid, node)
    }

    fn deleting(mut m: ObjectMeta, finalizer: &str) -> ObjectMeta {
        m.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        m.finalizers = Some(vec![finalizer.into()]);
        m
    }

    fn atd(uid: &str) -> Work {
        Work::AttemptToDelete(uid.into())
    }

    #[test]
    fn a_dependent_whose_owner_is_unseen_is_checked() {
        // The owner may already be gone: only a live check can tell.
        let mut g = Graph::default();
        let w = add(
            &mut g,
            &pod(),
            &meta("p1", "ns", &[("rs1", "apps/v1", "ReplicaSet", true)]),
        );
        assert_eq!(w, vec![atd("p1")]);
        // Once the owner is observed, a change of the pod needs nothing.
        assert!(add(&mut g, &rs(), &meta("rs1", "ns", &[])).is_empty());
        let w = add(
            &mut g,
            &pod(),
            &meta("p1", "ns", &[("rs1", "apps/v1", "ReplicaSet", true)]),
        );
        assert!(w.is_empty());
        assert!(g.owners_all_solid("p1"));
    }

    #[test]
    fn deleting_an_owner_queues_its_dependents() {
        // Background deletion: the owner is gone from the store, dependents must follow.
        let mut g = Graph::default();
        add(&mut g, &rs(), &meta("rs1", "ns", &[]));
        add(
            &mut g,
            &pod(),
            &meta("p1", "ns", &[("rs1", "apps/v1", "ReplicaSet", true)]),
        );
        add(
            &mut g,
            &pod(),
            &meta("p2", "ns", &[("rs1", "apps/v1", "ReplicaSet", false)]),
        );
        let mut w = g.remove("rs1");
        w.sort_by_key(|w| format!("{w:?}"));
        assert_eq!(w, vec![atd("p1"), atd("p2")]);
        assert!(!g.owners_all_solid("p1"));
    }

    #[test]
    fn an_owner_in_another_namespace_counts_as_absent() {
        // Upstream: namespaced owners are looked up in the dependent's namespace only.
        let mut g = Graph::default();
        add(&mut g, &rs(), &meta("rs1", "other", &[]));
        let w = add(
            &mut g,
            &pod(),
            &meta("p1", "ns", &[("rs1", "apps/v1", "ReplicaSet", true)]),
        );
        assert_eq!(w, vec![atd("p1")]);
        // A cluster-scoped owner is fine from any namespace.
        let node = kind("", "v1", "Node", "nodes", false);
        add(&mut g, &node, &meta("n1", "", &[]));
        let w = add(
            &mut g,
            &pod(),
            &meta("p2", "ns", &[("n1", "v1", "Node", false)]),
        );
        assert!(w.is_empty());
        // A reference whose kind does not match the uid's object is not resolved either.
        let w = add(
            &mut g,
            &pod(),
            &meta("p3", "ns", &[("n1", "v1", "Pod", false)]),
        );
        assert_eq!(w, vec![atd("p3")]);
        // Nor one whose name does not (upstream reads the owner by name, then checks uid).
        let mut m = meta("p4", "ns", &[("n1", "v1", "Node", false)]);
        if let Some(o) = m.owner_references.as_mut().and_then(|o| o.first_mut()) {
            o.name = "someone-else".into();
        }
        assert_eq!(add(&mut g, &pod(), &m), vec![atd("p4")]);
    }

    #[test]
    fn orphan_finalizer_on_a_deleting_owner_queues_orphaning() {
        let mut g = Graph::default();
        add(&mut g, &rs(), &meta("rs1", "ns", &[]));
        let w = add(
            &mut g,
            &rs(),
            &deleting(meta("rs1", "ns", &[]), FINALIZER_ORPHAN),
        );
        assert_eq!(w, vec![Work::Orphan("rs1".into())]);
        // Without a deletionTimestamp the finalizer is only a marker.
        let mut m = meta("rs2", "ns", &[]);
        m.finalizers = Some(vec![FINALIZER_ORPHAN.into()]);
        assert!(add(&mut g, &rs(), &m).is_empty());
    }

    #[test]
    fn foreground_owner_queues_itself_and_dependents_and_is_requeued_as_they_go() {
        // The owner may drop its finalizer only once its blocking dependents are gone.
        let mut g = Graph::default();
        add(&mut g, &rs(), &meta("rs1", "ns", &[]));
        add(
            &mut g,
            &pod(),
            &meta("p1", "ns", &[("rs1", "apps/v1", "ReplicaSet", true)]),
        );
        let mut w = add(
            &mut g,
            &rs(),
            &deleting(meta("rs1", "ns", &[]), FINALIZER_FOREGROUND),
        );
        w.sort_by_key(|w| format!("{w:?}"));
        w.dedup();
        assert_eq!(w, vec![atd("p1"), atd("rs1")]);
        // While the owner waits, each change of a dependent re-checks that dependent.
        let w = add(
            &mut g,
            &pod(),
            &meta("p1", "ns", &[("rs1", "apps/v1", "ReplicaSet", true)]),
        );
        assert_eq!(w, vec![atd("p1")]);
        // The dependent's disappearance wakes the owner.
        assert_eq!(g.remove("p1"), vec![atd("rs1")]);
        assert!(g.dependents("rs1").is_empty());
    }

    #[test]
    fn dropping_a_reference_wakes_a_waiting_owner() {
        // Orphaning or unblocking a dependent must let a foreground owner finish.
        let mut g = Graph::default();
        add(
            &mut g,
            &rs(),
            &deleting(meta("rs1", "ns", &[]), FINALIZER_FOREGROUND),
        );
        add(
            &mut g,
            &pod(),
            &meta("p1", "ns", &[("rs1", "apps/v1", "ReplicaSet", true)]),
        );
        let w = add(&mut g, &pod(), &meta("p1", "ns", &[]));
        assert_eq!(w, vec![atd("rs1")]);
        assert!(g.dependents("rs1").is_empty());
    }

    #[test]
    fn relist_removes_objects_deleted_while_unwatched() {
        // A watch that expired (410) misses deletions; the relist must find them.
        let mut g = Graph::default();
        add(&mut g, &rs(), &meta("rs1", "ns", &[]));
        add(&mut g, &rs(), &meta("rs2", "ns", &[]));
        add(
            &mut g,
            &pod(),
            &meta("p1", "ns", &[("rs2", "apps/v1", "ReplicaSet", true)]),
        );
        let seen: HashSet<String> = ["rs1".to_string()].into();
        let w = g.retain_kind(&rs(), &seen);
        assert_eq!(w, vec![atd("p1")]);
        assert!(g.get("rs2").is_none());
        assert!(g.get("rs1").is_some());
        assert!(g.get("p1").is_some(), "other kinds are untouched");
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn sweep_finds_pending_work_again() {
        // Work lost to a failed write is found by the periodic sweep.
        let mut g = Graph::default();
        add(
            &mut g,
            &pod(),
            &meta("p1", "ns", &[("gone", "apps/v1", "ReplicaSet", true)]),
        );
        add(
            &mut g,
            &rs(),
            &deleting(meta("rs1", "ns", &[]), FINALIZER_ORPHAN),
        );
        add(&mut g, &rs(), &meta("rs2", "ns", &[]));
        let mut w = g.sweep();
        w.sort_by_key(|w| format!("{w:?}"));
        assert_eq!(w, vec![atd("p1"), Work::Orphan("rs1".into())]);
    }

    #[test]
    fn objects_without_uid_or_name_are_not_nodes() {
        let mut m = meta("", "ns", &[]);
        assert!(Node::from_meta(&pod(), &m).is_none());
        m.uid = Some("u".into());
        m.name = None;
        assert!(Node::from_meta(&pod(), &m).is_none());
    }
}

//! The controller's pod cache, fed by one pod watch: pods indexed by the uid of their
//! controller and, for orphans, by namespace (upstream's `controllerUIDIndex`), so a sync
//! reads its own pods and its namespace's orphans instead of every pod in the cluster.
//!
//! Applying a watch event also says whose pods changed: the controller before and after
//! the change (a pod whose owner reference was removed still wakes its former owner) and,
//! for orphans, which sets may want to adopt it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::Event;
use parking_lot::RwLock;

use crate::workload::controller_of;

type Key = (String, String);

fn key_of(pod: &Pod) -> Key {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

/// The controller reference of a pod, as (kind's api group, kind, name, uid).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ControllerKey {
    /// The owner's API group (`""` for the core group).
    pub group: String,
    /// The owner's kind.
    pub kind: String,
    /// The owner's name (in the pod's namespace).
    pub name: String,
    /// The owner's uid.
    pub uid: String,
}

fn controller_key(pod: &Pod) -> Option<ControllerKey> {
    controller_of(&pod.metadata).map(|r| ControllerKey {
        group: r
            .api_version
            .split_once('/')
            .map_or("", |(g, _)| g)
            .to_string(),
        kind: r.kind.clone(),
        name: r.name.clone(),
        uid: r.uid.clone(),
    })
}

/// What changed for one pod: its namespace, its labels now, and its controller before
/// and after (either may be missing).
#[derive(Debug, Clone)]
pub struct Change {
    /// The pod (as it is now, or as it was when deleted).
    pub pod: Arc<Pod>,
    /// Its controller before the event.
    pub old_controller: Option<ControllerKey>,
    /// Its controller after the event (`None` once deleted, or an orphan).
    pub new_controller: Option<ControllerKey>,
}

#[derive(Debug, Default)]
struct Inner {
    pods: HashMap<Key, Arc<Pod>>,
    by_controller: HashMap<String, HashSet<Key>>,
    orphans: HashMap<String, HashSet<String>>,
    /// The pods of a relist under way, swapped in when it completes.
    relist: Option<HashMap<Key, Arc<Pod>>>,
}

impl Inner {
    fn unindex(&mut self, key: &Key, pod: &Pod) {
        match controller_of(&pod.metadata) {
            Some(r) => {
                if let Some(set) = self.by_controller.get_mut(&r.uid) {
                    set.remove(key);
                    if set.is_empty() {
                        self.by_controller.remove(&r.uid);
                    }
                }
            }
            None => {
                if let Some(set) = self.orphans.get_mut(&key.0) {
                    set.remove(&key.1);
                    if set.is_empty() {
                        self.orphans.remove(&key.0);
                    }
                }
            }
        }
    }

    fn index(&mut self, key: &Key, pod: &Pod) {
        match controller_of(&pod.metadata) {
            Some(r) => {
                self.by_controller
                    .entry(r.uid.clone())
                    .or_default()
                    .insert(key.clone());
            }
            None => {
                self.orphans
                    .entry(key.0.clone())
                    .or_default()
                    .insert(key.1.clone());
            }
        }
    }

    fn upsert(&mut self, pod: Arc<Pod>) -> Change {
        let key = key_of(&pod);
        let old = self.pods.insert(key.clone(), pod.clone());
        if let Some(old) = &old {
            self.unindex(&key, old);
        }
        self.index(&key, &pod);
        Change {
            old_controller: old.as_deref().and_then(controller_key),
            new_controller: controller_key(&pod),
            pod,
        }
    }

    fn remove(&mut self, pod: Arc<Pod>) -> Change {
        let key = key_of(&pod);
        let old = self.pods.remove(&key);
        if let Some(old) = &old {
            self.unindex(&key, old);
        }
        Change {
            old_controller: old.as_deref().and_then(controller_key),
            new_controller: None,
            pod,
        }
    }
}

/// The indexed pod cache; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct PodIndex {
    inner: Arc<RwLock<Inner>>,
    /// Whether the first list has completed: until then the cache says nothing.
    ready: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for PodIndex {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            ready: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }
}

/// What applying one watch event did.
#[derive(Debug)]
pub enum Applied {
    /// Individual pods changed.
    Changes(Vec<Change>),
    /// A relist completed: anything may have changed while the watch was down.
    Resynced,
    /// Nothing to act on yet (a relist is under way).
    Nothing,
}

impl PodIndex {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one event of the shared pod informer. The index holds the informer's own
    /// objects, not trimmed copies: a copy of even a few fields costs a whole `Pod`
    /// struct (2.4 KB before its fields' heap), and at 30k pods the copies were the
    /// controller's memory.
    pub fn apply(&self, event: Event<Arc<Pod>>) -> Applied {
        let mut inner = self.inner.write();
        match event {
            Event::Apply(pod) => Applied::Changes(vec![inner.upsert(pod)]),
            Event::Delete(pod) => Applied::Changes(vec![inner.remove(pod)]),
            Event::Init => {
                inner.relist = Some(HashMap::new());
                Applied::Nothing
            }
            Event::InitApply(pod) => {
                inner
                    .relist
                    .get_or_insert_with(HashMap::new)
                    .insert(key_of(&pod), pod);
                Applied::Nothing
            }
            Event::InitDone => {
                let pods = inner.relist.take().unwrap_or_default();
                inner.pods.clear();
                inner.by_controller.clear();
                inner.orphans.clear();
                for pod in pods.into_values() {
                    inner.upsert(pod);
                }
                self.ready.send_replace(true);
                Applied::Resynced
            }
        }
    }

    /// Completes once the first list is in: a set synced against an empty cache after a
    /// restart would create every pod again.
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        // The sender lives as long as `self`.
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// Whether the first list is in.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// The pod of that name, if cached.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.inner
            .read()
            .pods
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// The pods whose controller has this uid.
    pub fn controlled_by(&self, uid: &str) -> Vec<Arc<Pod>> {
        let inner = self.inner.read();
        inner
            .by_controller
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|k| inner.pods.get(k).cloned())
            .collect()
    }

    /// The pods of the namespace that have no controller.
    pub fn orphans(&self, namespace: &str) -> Vec<Arc<Pod>> {
        let inner = self.inner.read();
        inner
            .orphans
            .get(namespace)
            .into_iter()
            .flatten()
            .filter_map(|n| inner.pods.get(&(namespace.to_string(), n.clone())).cloned())
            .collect()
    }

    /// How many pods are cached.
    pub fn len(&self) -> usize {
        self.inner.read().pods.len()
    }

    /// Whether no pod is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use super::*;

    fn pod(name: &str, owner: Option<&str>) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                owner_references: owner.map(|uid| {
                    vec![OwnerReference {
                        api_version: "apps/v1".into(),
                        kind: "ReplicaSet".into(),
                        name: format!("rs-{uid}"),
                        uid: uid.into(),
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                    }]
                }),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        })
    }

    fn names(pods: Vec<Arc<Pod>>) -> Vec<String> {
        let mut n: Vec<_> = pods
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn pods_are_found_by_controller_and_orphans_by_namespace() {
        let idx = PodIndex::new();
        idx.apply(Event::Init);
        idx.apply(Event::InitApply(pod("a", Some("u1"))));
        idx.apply(Event::InitApply(pod("b", None)));
        assert!(idx.is_empty(), "a relist is served only once complete");
        assert!(!idx.is_ready());
        assert!(matches!(idx.apply(Event::InitDone), Applied::Resynced));
        assert!(idx.is_ready());
        assert_eq!(names(idx.controlled_by("u1")), ["a"]);
        assert_eq!(names(idx.orphans("ns")), ["b"]);

        // Adoption moves the pod from the orphans to its owner, and says so.
        let Applied::Changes(ch) = idx.apply(Event::Apply(pod("b", Some("u1")))) else {
            panic!("changes expected");
        };
        assert_eq!(ch[0].old_controller, None);
        assert_eq!(
            ch[0].new_controller.as_ref().map(|c| c.uid.as_str()),
            Some("u1")
        );
        assert_eq!(names(idx.controlled_by("u1")), ["a", "b"]);
        assert!(idx.orphans("ns").is_empty());

        // Release: the former owner is named so it still syncs.
        let Applied::Changes(ch) = idx.apply(Event::Apply(pod("a", None))) else {
            panic!("changes expected");
        };
        assert_eq!(
            ch[0].old_controller.as_ref().map(|c| c.group.as_str()),
            Some("apps")
        );
        assert_eq!(ch[0].new_controller, None);
        idx.apply(Event::Delete(pod("b", Some("u1"))));
        assert!(idx.controlled_by("u1").is_empty());
        assert_eq!(names(idx.orphans("ns")), ["a"]);
        assert_eq!(idx.len(), 1);
    }
}

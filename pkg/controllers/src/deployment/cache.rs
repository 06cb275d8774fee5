//! A watch cache indexed by namespace: what the controller reads instead of listing, and
//! the previous version of each object, so that a change can wake both its old and its
//! new owner.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt};
use parking_lot::RwLock;
use serde::de::DeserializeOwned;

/// Objects of one kind by namespace and name.
#[derive(Debug)]
pub struct Cache<K> {
    objects: RwLock<HashMap<String, HashMap<String, Arc<K>>>>,
    synced: AtomicBool,
}

impl<K> Default for Cache<K> {
    fn default() -> Self {
        Self {
            objects: RwLock::new(HashMap::new()),
            synced: AtomicBool::new(false),
        }
    }
}

impl<K: Resource + ResourceExt> Cache<K> {
    /// The object, if cached.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.objects.read().get(namespace)?.get(name).cloned()
    }

    /// Every object of the namespace.
    pub fn list(&self, namespace: &str) -> Vec<Arc<K>> {
        self.objects
            .read()
            .get(namespace)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the first list has been loaded.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Stores the object; returns the version it replaced.
    pub fn apply(&self, obj: Arc<K>) -> Option<Arc<K>> {
        let ns = obj.namespace().unwrap_or_default();
        self.objects
            .write()
            .entry(ns)
            .or_default()
            .insert(obj.name_any(), obj)
    }

    /// Removes the object; returns what was cached.
    pub fn delete(&self, obj: &K) -> Option<Arc<K>> {
        let ns = obj.namespace().unwrap_or_default();
        let mut objects = self.objects.write();
        let by_name = objects.get_mut(&ns)?;
        let old = by_name.remove(&obj.name_any());
        if by_name.is_empty() {
            objects.remove(&ns);
        }
        old
    }

    /// Replaces everything with a fresh list; returns the objects that disappeared.
    fn replace(&self, objs: Vec<Arc<K>>) -> Vec<Arc<K>> {
        let mut fresh: HashMap<String, HashMap<String, Arc<K>>> = HashMap::new();
        for obj in objs {
            fresh
                .entry(obj.namespace().unwrap_or_default())
                .or_default()
                .insert(obj.name_any(), obj);
        }
        let mut objects = self.objects.write();
        let old = std::mem::replace(&mut *objects, fresh);
        let mut gone = Vec::new();
        for (ns, by_name) in old {
            for (name, obj) in by_name {
                if objects.get(&ns).is_none_or(|m| !m.contains_key(&name)) {
                    gone.push(obj);
                }
            }
        }
        self.synced.store(true, Ordering::Release);
        gone
    }
}

/// Keeps `cache` in step with the watch of `api` (re-listing on errors with back-off),
/// calling `on_change(old, new)` for each change: `new` is `None` for a deletion.
pub async fn run<K, F>(api: Api<K>, cache: Arc<Cache<K>>, on_change: F)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    F: Fn(Option<&K>, Option<&K>),
{
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut initial: Option<Vec<Arc<K>>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(obj)) => {
                let obj = Arc::new(obj);
                let old = cache.apply(obj.clone());
                on_change(old.as_deref(), Some(&obj));
            }
            Ok(Event::Delete(obj)) => {
                cache.delete(&obj);
                on_change(Some(&obj), None);
            }
            Ok(Event::Init) => initial = Some(Vec::new()),
            Ok(Event::InitApply(obj)) => initial.get_or_insert_with(Vec::new).push(Arc::new(obj)),
            Ok(Event::InitDone) => {
                let objs = initial.take().unwrap_or_default();
                let gone = cache.replace(objs.clone());
                for obj in &objs {
                    on_change(None, Some(obj));
                }
                for obj in &gone {
                    on_change(Some(obj), None);
                }
            }
            Err(e) => tracing::debug!(error = %e, kind = %K::kind(&()), "watch failed; retrying"),
        }
    }
}

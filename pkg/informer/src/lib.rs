//! Shared informers: one watch of a resource whose objects are decoded once and handed,
//! as `Arc`s, to every component inside the server that watches that resource
//! (upstream's `SharedInformerFactory`).
//!
//! With 30k pods and a dozen in-process pod watchers (scheduler, simulated nodes,
//! ReplicaSet, Job, endpoints, disruption … controllers), each pod write was encoded once
//! by the server but decoded from JSON a dozen times; the informer decodes it once and
//! keeps one copy of each object that its subscribers may read instead of their own.
//!
//! A subscriber sees the same event sequence a `kube::runtime::watcher` gives: `Init`,
//! `InitApply` for each object, `InitDone`, then `Apply`/`Delete`; after the shared watch
//! re-lists (a 410 Gone, a dropped connection), again `Init` … `InitDone`. One that
//! subscribes after the first list gets the cache's objects as its own initial list.

mod backlog;

pub use backlog::Backlog;

use std::collections::HashMap;
use std::fmt::Debug;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// An object's key: namespace ("" for cluster-scoped kinds) and name.
pub type Key = (String, String);

/// The key of `obj`.
pub fn key_of<K: Resource>(obj: &K) -> Key {
    let m = obj.meta();
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

type Sender<K> = mpsc::UnboundedSender<Event<Arc<K>>>;

struct State<K> {
    /// The objects as of the last complete list and the events after it.
    store: HashMap<Key, Arc<K>>,
    /// A re-list in progress: the objects listed so far.
    relist: Option<HashMap<Key, Arc<K>>>,
    /// Whether a list has completed once.
    synced: bool,
    /// Subscribers that get every event as it comes.
    live: Vec<Sender<K>>,
    /// Subscribers that joined during a list: they get the whole store at `InitDone`.
    waiting: Vec<Sender<K>>,
}

impl<K> State<K> {
    fn new() -> Self {
        Self {
            store: HashMap::new(),
            relist: None,
            synced: false,
            live: Vec::new(),
            waiting: Vec::new(),
        }
    }

    /// Sends the store as an initial list; false when the subscriber is gone.
    fn replay(&self, tx: &Sender<K>) -> bool {
        if tx.send(Event::Init).is_err() {
            return false;
        }
        for obj in self.store.values() {
            if tx.send(Event::InitApply(obj.clone())).is_err() {
                return false;
            }
        }
        tx.send(Event::InitDone).is_ok()
    }

    fn broadcast(&mut self, ev: &Event<Arc<K>>) {
        self.live.retain(|tx| tx.send(ev.clone()).is_ok());
    }
}

struct Inner<K> {
    state: Arc<Mutex<State<K>>>,
    /// The watch, started by the first subscriber.
    task: Mutex<Option<JoinHandle<()>>>,
    api: Api<K>,
    slim: fn(&mut K),
}

impl<K> Drop for Inner<K> {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().take() {
            task.abort();
        }
    }
}

/// One watch of every object of kind `K`, shared by its subscribers; cheap to clone.
/// The watch starts with the first subscriber and stops once every handle and every
/// subscription is dropped.
pub struct Informer<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K> Debug for Informer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Informer").finish_non_exhaustive()
    }
}

/// Drops what no in-process reader uses from any object: its managedFields (the field
/// sets of server-side apply, often the largest part of an object as decoded).
pub fn drop_managed_fields<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    /// An informer over every object of `api` (which should be cluster-wide); `slim`
    /// strips what no subscriber reads from each object before it is shared.
    pub fn new(api: Api<K>, slim: fn(&mut K)) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Arc::new(Mutex::new(State::new())),
                task: Mutex::new(None),
                api,
                slim,
            }),
        }
    }

    /// An informer over every object of kind `K` the client may read, without
    /// managedFields.
    pub fn all(client: kube::Client) -> Self {
        Self::new(Api::all(client), drop_managed_fields::<K>)
    }

    fn ensure_started(&self) {
        let mut task = self.inner.task.lock();
        if task.is_some() {
            return;
        }
        let state = self.inner.state.clone();
        let slim = self.inner.slim;
        let stream = watcher::watcher(self.inner.api.clone(), watcher::Config::default())
            .default_backoff()
            .modify(slim);
        *task = Some(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(ev) => apply(&state, ev),
                    Err(e) => tracing::debug!(error = %e, "shared watch failed; retrying"),
                }
            }
        }));
    }

    /// The events of every object from now on, preceded by an initial list.
    pub fn subscribe(&self) -> Subscription<K> {
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut state = self.inner.state.lock();
            if state.synced && state.relist.is_none() {
                if state.replay(&tx) {
                    state.live.push(tx);
                }
            } else {
                state.waiting.push(tx);
            }
        }
        self.ensure_started();
        Subscription {
            rx,
            _informer: self.clone(),
        }
    }

    /// [`subscribe`](Self::subscribe) as a `kube::runtime::watcher` stream of owned
    /// objects (each a copy of the shared one), for code written against a watcher.
    pub fn watch(&self) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + use<K> {
        self.subscribe().map(|ev| Ok(owned(ev)))
    }

    /// The objects of every event (applied, deleted, listed), shared: a trigger stream
    /// for `Controller::watches_shared_stream`.
    pub fn touched(&self) -> impl Stream<Item = Arc<K>> + Send + use<K> {
        self.subscribe().filter_map(|ev| {
            futures::future::ready(match ev {
                Event::Apply(o) | Event::Delete(o) | Event::InitApply(o) => Some(o),
                Event::Init | Event::InitDone => None,
            })
        })
    }

    /// The object with this key, as last seen.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let key = (namespace.to_string(), name.to_string());
        self.inner.state.lock().store.get(&key).cloned()
    }

    /// Every object, as last seen.
    pub fn state(&self) -> Vec<Arc<K>> {
        self.inner.state.lock().store.values().cloned().collect()
    }

    /// Whether a complete list has been seen.
    pub fn is_synced(&self) -> bool {
        self.inner.state.lock().synced
    }
}

/// An event of shared objects as one of owned copies.
pub fn owned<K: Clone>(ev: Event<Arc<K>>) -> Event<K> {
    match ev {
        Event::Apply(o) => Event::Apply(Arc::unwrap_or_clone(o)),
        Event::Delete(o) => Event::Delete(Arc::unwrap_or_clone(o)),
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(Arc::unwrap_or_clone(o)),
        Event::InitDone => Event::InitDone,
    }
}

fn apply<K: Resource>(state: &Mutex<State<K>>, ev: Event<K>) {
    let mut s = state.lock();
    match ev {
        Event::Init => {
            s.relist = Some(HashMap::new());
            s.broadcast(&Event::Init);
        }
        Event::InitApply(o) => {
            let o = Arc::new(o);
            if let Some(relist) = s.relist.as_mut() {
                relist.insert(key_of(&*o), o.clone());
            }
            s.broadcast(&Event::InitApply(o));
        }
        Event::InitDone => {
            if let Some(relist) = s.relist.take() {
                s.store = relist;
            }
            s.synced = true;
            s.broadcast(&Event::InitDone);
            let waiting = std::mem::take(&mut s.waiting);
            for tx in waiting {
                if s.replay(&tx) {
                    s.live.push(tx);
                }
            }
        }
        Event::Apply(o) => {
            let o = Arc::new(o);
            s.store.insert(key_of(&*o), o.clone());
            s.broadcast(&Event::Apply(o));
        }
        Event::Delete(o) => {
            let o = Arc::new(o);
            s.store.remove(&key_of(&*o));
            s.broadcast(&Event::Delete(o));
        }
    }
}

/// The events of one subscriber; keeps the informer running while held.
pub struct Subscription<K> {
    rx: mpsc::UnboundedReceiver<Event<Arc<K>>>,
    _informer: Informer<K>,
}

impl<K> Stream for Subscription<K> {
    type Item = Event<Arc<K>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{DeleteParams, PostParams};

    use super::*;

    fn cm(name: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm
    }

    async fn next(sub: &mut Subscription<ConfigMap>) -> Event<Arc<ConfigMap>> {
        tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
    }

    fn name(ev: &Event<Arc<ConfigMap>>) -> Option<(&'static str, String)> {
        let (what, o) = match ev {
            Event::Apply(o) => ("apply", o),
            Event::Delete(o) => ("delete", o),
            Event::InitApply(o) => ("init-apply", o),
            Event::Init | Event::InitDone => return None,
        };
        Some((what, o.metadata.name.clone().unwrap_or_default()))
    }

    /// Reads events until `InitDone`; returns the names listed.
    async fn initial(sub: &mut Subscription<ConfigMap>, ns_prefix: &str) -> Vec<String> {
        assert!(matches!(next(sub).await, Event::Init));
        let mut names = Vec::new();
        loop {
            let ev = next(sub).await;
            match &ev {
                Event::InitDone => break,
                Event::InitApply(o) => {
                    if o.metadata.namespace.as_deref() == Some(ns_prefix) {
                        names.push(o.metadata.name.clone().unwrap_or_default());
                    }
                }
                other => panic!("unexpected {:?}", name(other)),
            }
        }
        names.sort();
        names
    }

    #[tokio::test]
    async fn subscribers_share_one_watch_and_late_ones_get_the_cache_as_a_list() {
        let server = k1s_apiserver::test_util::TestApiServer::new().await.server;
        let client =
            k1s_apiserver::client::client(server, k1s_apiserver::auth::UserInfo::loopback());
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        api.create(&PostParams::default(), &cm("a")).await.unwrap();

        let informer = Informer::<ConfigMap>::all(client);
        let mut first = informer.subscribe();
        assert_eq!(initial(&mut first, "default").await, ["a"]);
        assert!(informer.is_synced());
        assert!(informer.get("default", "a").is_some());

        api.create(&PostParams::default(), &cm("b")).await.unwrap();
        loop {
            if let Some(("apply", n)) = name(&next(&mut first).await)
                && n == "b"
            {
                break;
            }
        }
        // A late subscriber lists from the cache, then sees what happens next.
        let mut late = informer.subscribe();
        assert_eq!(initial(&mut late, "default").await, ["a", "b"]);
        api.delete("a", &DeleteParams::default()).await.unwrap();
        for sub in [&mut first, &mut late] {
            loop {
                if let Some(("delete", n)) = name(&next(sub).await)
                    && n == "a"
                {
                    break;
                }
            }
        }
        assert!(informer.get("default", "a").is_none());
        // Owned copies read the same.
        let mut owned_events = std::pin::pin!(informer.watch());
        let ev = owned_events.next().await.unwrap().unwrap();
        assert!(matches!(ev, Event::Init));
    }
}

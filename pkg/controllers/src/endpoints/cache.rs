//! What the endpoints controllers share: a watch cache of Services, an index of which
//! pods each Service selects (the pods themselves are the shared informer's, not
//! copies: each endpoints controller kept a stripped copy of every pod, 2.8 KB a pod
//! between the two), a queue of Service keys fed by their changes, and upstream's rules
//! for which pod addresses and ports a Service gets (`ShouldPodBeInEndpoints`,
//! `FindPort`, hostnames, IP families).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ContainerPort, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use crate::Shutdown;

/// How long pod changes gather before their Services sync.
const POD_BATCH: Duration = Duration::from_millis(200);

/// A Service's key: namespace and name.
pub type Key = (String, String);

/// The Services and Pods of the cluster, as last seen by the watches, and which pods
/// each Service selects (kept up to date on every change, so a sync costs the Service's
/// pods, not the namespace's).
#[derive(Default)]
pub struct Cache {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    services: HashMap<Key, Arc<Service>>,
    pods: HashMap<String, HashMap<String, SeenPod>>,
    members: HashMap<Key, BTreeSet<String>>,
}

/// A pod as the cache last applied it: the shared object (no copy) and a fingerprint of
/// the parts endpoints are made from, so a change to anything else concerns no Service.
struct SeenPod {
    pod: Arc<Pod>,
    fingerprint: u64,
}

impl SeenPod {
    fn new(pod: Arc<Pod>) -> Self {
        let mut h = DefaultHasher::new();
        PodInfo::from(&*pod).hash(&mut h);
        Self {
            fingerprint: h.finish(),
            pod,
        }
    }

    fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.pod.metadata.labels.as_ref()
    }
}

impl Inner {
    /// Services of the namespace whose selector picks a pod with these labels.
    fn services_selecting(
        &self,
        namespace: &str,
        labels: Option<&BTreeMap<String, String>>,
    ) -> Vec<Key> {
        self.services
            .iter()
            .filter(|((ns, _), svc)| {
                ns == namespace && service_selector(svc).is_some_and(|sel| selects(sel, labels))
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn recompute_members(&mut self, key: &Key) {
        let members: Option<BTreeSet<String>> = self.services.get(key).and_then(|svc| {
            let sel = service_selector(svc)?;
            Some(
                self.pods
                    .get(&key.0)
                    .into_iter()
                    .flatten()
                    .filter(|(_, p)| selects(sel, p.labels()))
                    .map(|(n, _)| n.clone())
                    .collect(),
            )
        });
        match members {
            Some(m) => self.members.insert(key.clone(), m),
            None => self.members.remove(key),
        };
    }
}

impl Cache {
    /// The Service, if it exists.
    pub fn service(&self, key: &Key) -> Option<Arc<Service>> {
        self.inner.read().services.get(key).cloned()
    }

    /// The keys of every Service.
    pub fn service_keys(&self) -> Vec<Key> {
        self.inner.read().services.keys().cloned().collect()
    }

    /// The pods the Service selects, by name.
    pub fn selected_pods(&self, key: &Key) -> Vec<Arc<PodInfo>> {
        let shared: Vec<Arc<Pod>> = {
            let inner = self.inner.read();
            let (Some(members), Some(pods)) = (inner.members.get(key), inner.pods.get(&key.0))
            else {
                return Vec::new();
            };
            members
                .iter()
                .filter_map(|n| pods.get(n).map(|p| p.pod.clone()))
                .collect()
        };
        // Made outside the lock: the watches apply pods meanwhile.
        shared
            .iter()
            .map(|p| Arc::new(PodInfo::from(&**p)))
            .collect()
    }

    /// Records a Service (or its deletion).
    pub fn apply_service(&self, key: &Key, svc: Option<Service>) {
        let mut inner = self.inner.write();
        match svc {
            Some(s) => inner.services.insert(key.clone(), Arc::new(s)),
            None => inner.services.remove(key),
        };
        inner.recompute_members(key);
    }

    /// Replaces every Service (a watch restart); returns every key, old and new.
    pub fn replace_services(&self, all: Vec<Service>) -> Vec<Key> {
        let mut inner = self.inner.write();
        let mut keys: Vec<Key> = inner.services.keys().cloned().collect();
        inner.services = all
            .into_iter()
            .map(|s| {
                (
                    (s.namespace().unwrap_or_default(), s.name_any()),
                    Arc::new(s),
                )
            })
            .collect();
        keys.extend(inner.services.keys().cloned());
        inner.members.clear();
        let current: Vec<Key> = inner.services.keys().cloned().collect();
        for k in &current {
            inner.recompute_members(k);
        }
        keys
    }

    /// Records a pod (or its deletion); returns the Services it left or joined or whose
    /// endpoints it changes. A pod whose endpoint-relevant parts did not change concerns
    /// none.
    pub fn apply_pod(&self, namespace: &str, name: &str, pod: Option<Arc<Pod>>) -> Vec<Key> {
        let pod = pod.map(SeenPod::new);
        let mut inner = self.inner.write();
        let old = inner.pods.get(namespace).and_then(|m| m.get(name));
        let unchanged = match (&pod, old) {
            (Some(new), Some(old)) => new.fingerprint == old.fingerprint,
            _ => false,
        };
        if unchanged {
            // Kept as the latest object all the same: an older one would stay alive.
            if let (Some(seen), Some(new)) = (
                inner.pods.get_mut(namespace).and_then(|m| m.get_mut(name)),
                pod,
            ) {
                *seen = new;
            }
            return Vec::new();
        }
        let before = inner.services_selecting(namespace, old.and_then(SeenPod::labels));
        let after = match &pod {
            Some(p) => inner.services_selecting(namespace, p.labels()),
            None => Vec::new(),
        };
        for k in &before {
            if let Some(m) = inner.members.get_mut(k) {
                m.remove(name);
            }
        }
        for k in &after {
            if let Some(m) = inner.members.get_mut(k) {
                m.insert(name.to_string());
            }
        }
        match pod {
            Some(p) => {
                inner
                    .pods
                    .entry(namespace.to_string())
                    .or_default()
                    .insert(name.to_string(), p);
            }
            None => {
                if let Some(m) = inner.pods.get_mut(namespace) {
                    m.remove(name);
                    if m.is_empty() {
                        inner.pods.remove(namespace);
                    }
                }
            }
        }
        let mut keys = before;
        keys.extend(after);
        keys.sort();
        keys.dedup();
        keys
    }

    /// Replaces every pod (a watch restart); returns every Service key.
    pub fn replace_pods(&self, all: Vec<Arc<Pod>>) -> Vec<Key> {
        let mut map: HashMap<String, HashMap<String, SeenPod>> = HashMap::new();
        for p in all {
            let (ns, name) = (p.namespace().unwrap_or_default(), p.name_any());
            map.entry(ns).or_default().insert(name, SeenPod::new(p));
        }
        let mut inner = self.inner.write();
        inner.pods = map;
        let keys: Vec<Key> = inner.services.keys().cloned().collect();
        for k in &keys {
            inner.recompute_members(k);
        }
        keys
    }
}

/// Whether a map selector picks these labels (every pair present).
pub fn selects(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The selector of a Service the controllers manage: none for Services without one (their
/// Endpoints are the user's) and for ExternalName Services.
pub fn service_selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

/// Whether the Service has a cluster IP (not headless).
pub fn is_service_ip_set(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty() && ip != "None")
}

/// A container port a named target port can resolve to: name, protocol, number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedPort {
    /// The port's name.
    pub name: String,
    /// Its protocol (`TCP` when unset).
    pub protocol: String,
    /// The container port.
    pub port: i32,
}

/// The parts of a pod endpoints are made from, read from the shared pod when a Service
/// syncs.
#[derive(Debug, Clone, PartialEq, Hash, Default)]
pub struct PodInfo {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// UID.
    pub uid: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Whether it is being deleted.
    pub terminating: bool,
    /// Whether it has finished (Succeeded or Failed).
    pub terminal: bool,
    /// `spec.nodeName`.
    pub node_name: Option<String>,
    /// `spec.hostname`.
    pub hostname: Option<String>,
    /// `spec.subdomain`.
    pub subdomain: Option<String>,
    /// Its IPs, primary first.
    pub ips: Vec<String>,
    /// Whether its Ready condition is True.
    pub ready: bool,
    /// When its Ready condition last changed (upstream's trigger time).
    pub ready_since: Option<k8s_openapi::jiff::Timestamp>,
    /// Named ports of its containers and restartable init containers.
    pub ports: Vec<NamedPort>,
}

impl From<&Pod> for PodInfo {
    fn from(pod: &Pod) -> Self {
        let no_spec = Default::default();
        let spec = pod.spec.as_ref().unwrap_or(&no_spec);
        let no_status = Default::default();
        let status = pod.status.as_ref().unwrap_or(&no_status);
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready");
        let mut ips: Vec<String> = status
            .pod_ips
            .iter()
            .flatten()
            .map(|p| p.ip.clone())
            .filter(|ip| !ip.is_empty())
            .collect();
        if ips.is_empty()
            && let Some(ip) = status.pod_ip.as_ref().filter(|ip| !ip.is_empty())
        {
            ips.push(ip.clone());
        }
        let restartable = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        let ports = spec
            .containers
            .iter()
            .chain(restartable)
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p: &ContainerPort| {
                Some(NamedPort {
                    name: p.name.clone().filter(|n| !n.is_empty())?,
                    protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    port: p.container_port,
                })
            })
            .collect();
        let meta = &pod.metadata;
        let non_empty = |s: &Option<String>| s.as_ref().filter(|s| !s.is_empty()).cloned();
        PodInfo {
            name: meta.name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            terminating: meta.deletion_timestamp.is_some(),
            terminal: matches!(status.phase.as_deref(), Some("Failed" | "Succeeded")),
            node_name: non_empty(&spec.node_name),
            hostname: non_empty(&spec.hostname),
            subdomain: spec.subdomain.clone(),
            ips,
            ready: ready.is_some_and(|c| c.status == "True"),
            ready_since: ready.and_then(|c| c.last_transition_time.as_ref().map(|t| t.0)),
            ports,
        }
    }
}

/// Upstream's `ShouldPodBeInEndpoints`: not terminal, has an IP, and not terminating
/// unless terminating pods are asked for.
pub fn should_pod_be_in_endpoints(pod: &PodInfo, include_terminating: bool) -> bool {
    !pod.terminal && !pod.ips.is_empty() && (include_terminating || !pod.terminating)
}

/// `IPv4` or `IPv6`, as Services and EndpointSlices name IP families.
pub fn ip_family(ip: &str) -> &'static str {
    if ip.contains(':') { "IPv6" } else { "IPv4" }
}

/// The pod's IP of a family.
pub fn pod_ip_of_family(pod: &PodInfo, family: &str) -> Option<String> {
    pod.ips.iter().find(|ip| ip_family(ip) == family).cloned()
}

/// The IP families a Service's endpoints are of: its `ipFamilies`, else its cluster IPs',
/// else (headless without families) both.
pub fn service_families(svc: &Service) -> Vec<String> {
    let Some(spec) = svc.spec.as_ref() else {
        return vec!["IPv4".into()];
    };
    if let Some(f) = spec.ip_families.as_ref().filter(|f| !f.is_empty()) {
        return f.clone();
    }
    let ips: Vec<String> = spec
        .cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .filter(|ip| !ip.is_empty() && *ip != "None")
        .map(|ip| ip_family(ip).to_string())
        .collect();
    match ips.first() {
        Some(f) => vec![f.clone()],
        None => vec!["IPv4".into(), "IPv6".into()],
    }
}

/// Upstream's `FindPort`: a numeric target port as is, a named one looked up in the
/// pod's containers (and restartable init containers) by name and protocol.
pub fn find_port(pod: &PodInfo, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            pod.ports
                .iter()
                .find(|p| p.name == *name && p.protocol == protocol)
                .map(|p| p.port)
        }
    }
}

/// The hostname an endpoint of this pod gets: the pod's `hostname` when its `subdomain`
/// names the Service.
pub fn endpoint_hostname(pod: &PodInfo, svc: &Service) -> Option<String> {
    let hostname = pod.hostname.as_ref()?;
    (pod.subdomain.as_deref() == svc.metadata.name.as_deref()
        && Some(&pod.namespace) == svc.metadata.namespace.as_ref())
    .then(|| hostname.clone())
}

/// A set of Service keys waiting to be synced; each key is queued once however often it
/// is added before a worker takes it.
#[derive(Default)]
pub struct Queue {
    inner: Mutex<(VecDeque<Key>, HashSet<Key>)>,
    notify: Notify,
}

impl Queue {
    /// Queues a key.
    pub fn add(&self, key: Key) {
        let mut inner = self.inner.lock();
        if inner.1.insert(key.clone()) {
            inner.0.push_back(key);
            drop(inner);
            self.notify.notify_one();
        }
    }

    /// Queues a key within `delay`: a key already waiting stays as it is, so every add
    /// within the delay is served by one sync.
    pub fn add_batched(self: &Arc<Self>, key: Key, delay: Duration) {
        {
            let mut inner = self.inner.lock();
            if !inner.1.insert(key.clone()) {
                return;
            }
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.inner.lock().0.push_back(key);
            queue.notify.notify_one();
        });
    }

    /// Queues a key after a delay.
    pub fn add_after(self: &Arc<Self>, key: Key, delay: Duration) {
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }

    /// The next key, waiting for one.
    pub async fn next(&self) -> Key {
        loop {
            let notified = self.notify.notified();
            {
                let mut inner = self.inner.lock();
                if let Some(key) = inner.0.pop_front() {
                    inner.1.remove(&key);
                    return key;
                }
            }
            notified.await;
        }
    }
}

/// Watches that fill a [`Cache`] and queue the Services their changes concern.
pub struct Watches {
    /// The cache.
    pub cache: Arc<Cache>,
    /// Service keys to sync.
    pub queue: Arc<Queue>,
    synced: Arc<tokio::sync::Semaphore>,
}

/// Applies one watch's events: a restart's objects replace the old ones at `InitDone`.
pub(crate) async fn follow<K, S>(
    stream: S,
    apply: impl FnMut(Option<K>, Option<K>, &str, &str),
    replace: impl FnMut(Vec<K>),
    synced: Arc<tokio::sync::Semaphore>,
) where
    K: kube::Resource,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let key_of = |o: &K| (o.namespace().unwrap_or_default(), o.name_any());
    follow_keyed(stream, key_of, apply, replace, synced).await;
}

/// [`follow`] for objects that are not themselves a `Resource` (the shared informer's
/// `Arc`s), keyed by `key_of`.
async fn follow_keyed<K, S>(
    stream: S,
    key_of: impl Fn(&K) -> Key,
    mut apply: impl FnMut(Option<K>, Option<K>, &str, &str),
    mut replace: impl FnMut(Vec<K>),
    synced: Arc<tokio::sync::Semaphore>,
) where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    let mut buffer: Vec<K> = Vec::new();
    let mut first = true;
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init) => buffer.clear(),
            Ok(watcher::Event::InitApply(o)) => buffer.push(o),
            Ok(watcher::Event::InitDone) => {
                replace(std::mem::take(&mut buffer));
                if first {
                    first = false;
                    synced.add_permits(1);
                }
            }
            Ok(watcher::Event::Apply(o)) => {
                let (ns, name) = key_of(&o);
                apply(Some(o), None, &ns, &name);
            }
            Ok(watcher::Event::Delete(o)) => {
                let (ns, name) = key_of(&o);
                apply(None, Some(o), &ns, &name);
            }
            Err(e) => tracing::debug!(error = %e, "watch failed; retrying"),
        }
    }
}

impl Watches {
    /// Starts the watches of Services and Pods; they run until `shutdown`.
    pub fn start(client: &kube::Client, shutdown: &Shutdown) -> Self {
        let cache = Arc::new(Cache::default());
        let queue = Arc::new(Queue::default());
        let synced = Arc::new(tokio::sync::Semaphore::new(0));

        let (c, q) = (cache.clone(), queue.clone());
        let (c2, q2) = (cache.clone(), queue.clone());
        let services = follow(
            watcher(
                Api::<Service>::all(client.clone()),
                watcher::Config::default(),
            )
            .default_backoff(),
            move |new, _old, ns, name| {
                let key = (ns.to_string(), name.to_string());
                c.apply_service(&key, new);
                q.add(key);
            },
            move |all| {
                for k in c2.replace_services(all) {
                    q2.add(k);
                }
            },
            synced.clone(),
        );

        let (c, q) = (cache.clone(), queue.clone());
        let (c2, q2) = (cache.clone(), queue.clone());
        let pods = follow_keyed(
            crate::pod_informer(client).subscribe().map(Ok),
            |p: &Arc<Pod>| (p.namespace().unwrap_or_default(), p.name_any()),
            move |new, _gone, ns, name| {
                // Pod changes come in bursts (a rollout, a node): each Service syncs
                // once per batch rather than once per pod.
                for k in c.apply_pod(ns, name, new) {
                    q.add_batched(k, POD_BATCH);
                }
            },
            move |all| {
                for k in c2.replace_pods(all) {
                    q2.add(k);
                }
            },
            synced.clone(),
        );
        spawn_until(services, shutdown.clone());
        spawn_until(pods, shutdown.clone());
        Self {
            cache,
            queue,
            synced,
        }
    }

    /// Waits until both watches have listed everything once.
    pub async fn wait_synced(&self) {
        if let Ok(p) = self.synced.acquire_many(2).await {
            p.forget();
            // Later callers must not wait again.
            self.synced.add_permits(2);
        }
    }
}

/// Runs a task until shutdown.
pub fn spawn_until(task: impl Future<Output = ()> + Send + 'static, shutdown: Shutdown) {
    tokio::spawn(async move {
        tokio::select! {
            _ = task => {}
            _ = shutdown.wait() => {}
        }
    });
}

/// Runs `sync` for every queued key until shutdown; a failed sync is retried with
/// exponential back-off (5 ms doubling to 1000 s, upstream's workqueue default, capped
/// lower here at 5 minutes).
pub async fn run_workers<F, Fut, E>(queue: Arc<Queue>, shutdown: Shutdown, sync: F)
where
    F: Fn(Key) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut failures: HashMap<Key, u32> = HashMap::new();
    loop {
        let key = tokio::select! {
            k = queue.next() => k,
            _ = shutdown.clone().wait() => return,
        };
        match sync(key.clone()).await {
            Ok(()) => {
                failures.remove(&key);
            }
            Err(e) => {
                let n = failures.entry(key.clone()).or_default();
                *n = (*n + 1).min(20);
                let delay = Duration::from_millis(5u64 << *n).min(Duration::from_secs(300));
                tracing::debug!(service = %format!("{}/{}", key.0, key.1), error = %e, ?delay, "sync failed; retrying");
                queue.add_after(key, delay);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodIP;
    use serde_json::json;

    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn info(p: &Pod) -> PodInfo {
        PodInfo::from(p)
    }

    #[test]
    fn named_ports_resolve_per_pod_and_protocol() {
        let p = info(&pod(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080},
                                                   {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}],
            "initContainers": [{"name": "sidecar", "restartPolicy": "Always",
                                "ports": [{"name": "metrics", "containerPort": 9090}]},
                               {"name": "init", "ports": [{"name": "setup", "containerPort": 1}]}]}})));
        let sp = |t: IntOrString, proto: &str| ServicePort {
            port: 80,
            target_port: Some(t),
            protocol: Some(proto.into()),
            ..Default::default()
        };
        assert_eq!(
            find_port(&p, &sp(IntOrString::String("http".into()), "TCP")),
            Some(8080)
        );
        assert_eq!(
            find_port(&p, &sp(IntOrString::String("dns".into()), "TCP")),
            None
        );
        assert_eq!(
            find_port(&p, &sp(IntOrString::String("dns".into()), "UDP")),
            Some(53)
        );
        assert_eq!(
            find_port(&p, &sp(IntOrString::Int(9000), "TCP")),
            Some(9000)
        );
        // Restartable init containers (sidecars) count; others do not.
        assert_eq!(
            find_port(&p, &sp(IntOrString::String("metrics".into()), "TCP")),
            Some(9090)
        );
        assert_eq!(
            find_port(&p, &sp(IntOrString::String("setup".into()), "TCP")),
            None
        );
    }

    #[test]
    fn terminal_ipless_and_terminating_pods_are_left_out() {
        let mut p = pod(json!({"metadata": {"name": "p"}, "status": {"phase": "Running"}}));
        assert!(!should_pod_be_in_endpoints(&info(&p), true));
        p.status.as_mut().unwrap().pod_ips = Some(vec![PodIP {
            ip: "10.0.0.1".into(),
        }]);
        assert!(should_pod_be_in_endpoints(&info(&p), false));
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        assert!(!should_pod_be_in_endpoints(&info(&p), false));
        assert!(should_pod_be_in_endpoints(&info(&p), true));
        p.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(!should_pod_be_in_endpoints(&info(&p), true));
    }

    #[test]
    fn families_come_from_the_service_or_its_cluster_ip() {
        let svc = |spec: serde_json::Value| -> Service {
            serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": spec})).unwrap()
        };
        assert_eq!(
            service_families(&svc(json!({"ipFamilies": ["IPv6", "IPv4"]}))),
            vec!["IPv6", "IPv4"]
        );
        assert_eq!(
            service_families(&svc(json!({"clusterIP": "fd00::1"}))),
            vec!["IPv6"]
        );
        assert_eq!(
            service_families(&svc(json!({"clusterIP": "None"}))),
            vec!["IPv4", "IPv6"]
        );
    }
}

#[cfg(test)]
mod index_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn membership_follows_labels_selectors_and_deletions() {
        let c = Cache::default();
        let key = ("ns".to_string(), "web".to_string());
        let svc: Service =
            serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}}}))
            .unwrap();
        let pod = |app: &str| -> Arc<Pod> {
            Arc::new(
                serde_json::from_value::<Pod>(
                    json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": app}}}),
                )
                .unwrap(),
            )
        };
        assert!(c.apply_pod("ns", "p", Some(pod("web"))).is_empty());
        c.apply_service(&key, Some(svc.clone()));
        assert_eq!(c.selected_pods(&key).len(), 1);
        // Relabelled away: the Service is told, and loses the pod.
        assert_eq!(
            c.apply_pod("ns", "p", Some(pod("other"))),
            vec![key.clone()]
        );
        assert!(c.selected_pods(&key).is_empty());
        assert_eq!(c.apply_pod("ns", "p", Some(pod("web"))), vec![key.clone()]);
        // The same pod again changes nothing, nor does a field endpoints do not read;
        // readiness does.
        assert!(c.apply_pod("ns", "p", Some(pod("web"))).is_empty());
        let mut annotated = Pod::clone(&pod("web"));
        annotated.metadata.annotations = Some(BTreeMap::from([("a".into(), "b".into())]));
        assert!(c.apply_pod("ns", "p", Some(Arc::new(annotated))).is_empty());
        let mut ready = Pod::clone(&pod("web"));
        ready.status = serde_json::from_value(json!({"podIP": "10.0.0.1",
            "conditions": [{"type": "Ready", "status": "True"}]}))
        .unwrap();
        assert_eq!(
            c.apply_pod("ns", "p", Some(Arc::new(ready))),
            vec![key.clone()]
        );
        assert!(c.selected_pods(&key)[0].ready);
        assert_eq!(c.apply_pod("ns", "p", Some(pod("web"))), vec![key.clone()]);
        assert_eq!(c.apply_pod("ns", "p", None), vec![key.clone()]);
        assert!(c.selected_pods(&key).is_empty());
        // A selector change recomputes membership.
        c.apply_pod("ns", "p", Some(pod("api")));
        let mut svc2 = svc;
        svc2.spec.as_mut().unwrap().selector =
            Some(BTreeMap::from([("app".to_string(), "api".to_string())]));
        c.apply_service(&key, Some(svc2));
        assert_eq!(c.selected_pods(&key).len(), 1);
        assert_eq!(c.replace_pods(Vec::new()), vec![key.clone()]);
        assert!(c.selected_pods(&key).is_empty());
    }
}

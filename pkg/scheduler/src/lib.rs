//! The scheduler embedded in `k1s server` (kube-scheduler's `default-scheduler`): an
//! ordinary kube client that watches pods and nodes, keeps per-node aggregates in memory,
//! runs upstream's default filter and score plugins over them for each pod waiting in a
//! priority queue, and binds through `pods/binding`.
//!
//! One task owns the cache and the queue, so a scheduling cycle reads memory only; binds
//! and status writes run concurrently beside it, the pod assumed on its node meanwhile
//! (as upstream's scheduler cache assumes it) so the next cycles count it.

pub mod cache;
pub mod plugins;
pub mod preemption;
pub mod queue;
pub mod volumebinding;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::watcher::{self, Event as WatchEvent};
use rand::Rng;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

use crate::cache::{Cache, PodInfo};
use crate::plugins::{Cycle, Failure, fit_error_message, preemption_message};
use crate::queue::{Queue, backoff};

/// The scheduler's name: pods naming another are left alone.
pub const SCHEDULER_NAME: &str = "default-scheduler";
/// Upstream's message when no node exists at all.
pub const NO_NODES_MSG: &str = "no nodes available to schedule pods";
/// How long an unschedulable pod waits for a cluster change before it is tried anyway
/// (upstream's `podMaxInUnschedulablePodsDuration`).
const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);
/// Binds in flight at once.
const BIND_CONCURRENCY: usize = 64;
/// Pods scheduled between looks at the watch events.
const BATCH: usize = 256;

/// Upstream's `numFeasibleNodesToFind` with the adaptive percentage: all nodes below
/// 100, then `50 - nodes/125` percent (at least 5 %, at least 100 nodes).
pub fn num_feasible_nodes_to_find(all: usize) -> usize {
    if all < 100 {
        return all;
    }
    let pct = (50 - (all / 125) as i64).max(5) as usize;
    (all * pct / 100).max(100)
}

/// What reaches the scheduling task.
enum Msg {
    Pod(Box<WatchEvent<Arc<Pod>>>),
    Node(Box<WatchEvent<Node>>),
    Claim(Box<WatchEvent<PersistentVolumeClaim>>),
    Volume(Box<WatchEvent<PersistentVolume>>),
    Bound {
        uid: String,
        node: String,
        error: Option<BindFailure>,
    },
}

/// Why a pod assumed on a node was not bound.
enum BindFailure {
    /// VolumeBinding's PreBind failed (its message).
    PreBind(String),
    /// The `pods/binding` call failed.
    Api(kube::Error),
}

/// Where a pod waiting for a node is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// In the active queue, with this entry.
    Active(u64),
    /// Backing off until its entry is due.
    Backoff(u64),
    /// Failed; waits for a cluster change (or [`MAX_UNSCHEDULABLE`]).
    Unschedulable { until: Instant, since: Instant },
    /// Assumed on a node, its bind in flight.
    Binding,
}

struct Pending {
    pod: Arc<Pod>,
    attempts: u32,
    state: State,
    /// The PodScheduled message last written, not to write it again.
    written: Option<String>,
}

/// The outcome of one scheduling cycle.
pub enum Outcome {
    /// The chosen node.
    Node(String),
    /// The message of the failure.
    Unschedulable(String),
    /// No node fits, but evicting these lower-priority pods from this node would make
    /// it fit (DefaultPreemption's choice); the message of the failure.
    Preempt {
        /// The failure message (without a preemption part, as upstream).
        message: String,
        /// The node nominated.
        node: String,
        /// The pods to evict.
        victims: Vec<Arc<PodInfo>>,
    },
}

/// The scheduling algorithm over the cache: filters from a rotating start until enough
/// feasible nodes are found, then scores them. `next_start` carries the rotation.
pub fn schedule(pod: &Pod, cache: &Cache, next_start: &mut usize) -> Outcome {
    let n = cache.order.len();
    if n == 0 {
        return Outcome::Unschedulable(NO_NODES_MSG.to_string());
    }
    let cycle = Cycle::new(pod, cache);
    if let Some(why) = &cycle.prefilter {
        // Rejected before any node is looked at: every node fails alike, and evicting
        // pods cannot help.
        return Outcome::Unschedulable(format!(
            "0/{n} nodes are available: {why}. preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling."
        ));
    }
    let to_find = num_feasible_nodes_to_find(n);
    // Each feasible node with its info, looked up once (the cache is keyed by name).
    let mut feasible: Vec<(usize, &cache::NodeInfo)> = Vec::with_capacity(to_find.min(n));
    let mut failures: Vec<Failure> = Vec::new();
    let mut failed_nodes: Vec<usize> = Vec::new();
    let mut processed = 0;
    for i in 0..n {
        let idx = (*next_start + i) % n;
        processed += 1;
        let name = &cache.order[idx];
        let Some(node) = cache.nodes.get(name) else {
            continue;
        };
        match cycle.filter(name, node) {
            None => {
                feasible.push((idx, node));
                if feasible.len() >= to_find {
                    break;
                }
            }
            Some(f) => {
                failures.push(f);
                failed_nodes.push(idx);
            }
        }
    }
    *next_start = (*next_start + processed) % n;
    if feasible.is_empty() {
        let never = pod
            .spec
            .as_ref()
            .and_then(|s| s.preemption_policy.as_deref())
            == Some("Never");
        if !never {
            match preemption::eligible(pod, &cycle, cache) {
                Err(why) => {
                    return Outcome::Unschedulable(fit_error_message(n, &failures, &why));
                }
                Ok(()) => {
                    let candidates = failed_nodes
                        .iter()
                        .zip(&failures)
                        .filter(|(_, f)| !f.unresolvable)
                        .map(|(idx, _)| cache.order[*idx].as_str());
                    if let Some((node, victims)) = preemption::find(&cycle, cache, candidates) {
                        return Outcome::Preempt {
                            message: fit_error_message(n, &failures, ""),
                            node,
                            victims,
                        };
                    }
                }
            }
        }
        let preemption = preemption_message(n, &failures, never);
        return Outcome::Unschedulable(fit_error_message(n, &failures, &preemption));
    }
    if feasible.len() == 1 {
        return Outcome::Node(cache.order[feasible[0].0].clone());
    }
    let names: Vec<&str> = feasible
        .iter()
        .map(|(i, _)| cache.order[*i].as_str())
        .collect();
    let nodes: Vec<&cache::NodeInfo> = feasible.iter().map(|(_, node)| *node).collect();
    let scores = cycle.score(&nodes, &names);
    // The best score; ties broken at random, as upstream's selectHost does.
    let mut rng = rand::rng();
    let (mut best, mut best_score, mut ties) = (0, i64::MIN, 0u32);
    for (i, s) in scores.iter().enumerate() {
        if *s > best_score {
            (best, best_score, ties) = (i, *s, 1);
        } else if *s == best_score {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    Outcome::Node(names[best].to_string())
}

/// Runs the scheduler until `shutdown` completes.
pub async fn run<F>(client: kube::Client, shutdown: F)
where
    F: Future<Output = ()> + Send,
{
    let pods = k1s_informer::Informer::pods(client.clone());
    run_with_pods(client, pods, k1s_informer::Backlog::new(), shutdown).await;
}

/// [`run`], reading pods from a shared informer (the one of the controllers beside it)
/// and publishing its queue of untried pods to `backlog`.
pub async fn run_with_pods<F>(
    client: kube::Client,
    pods: k1s_informer::Informer<Pod>,
    backlog: k1s_informer::Backlog,
    shutdown: F,
) where
    F: Future<Output = ()> + Send,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let pod_events = pods.subscribe();
    let pod_tx = tx.clone();
    let pods = tokio::spawn(async move {
        let mut events = std::pin::pin!(pod_events);
        while let Some(ev) = events.next().await {
            if pod_tx.send(Msg::Pod(Box::new(ev))).is_err() {
                return;
            }
        }
    });
    let nodes = spawn_watch::<Node>(client.clone(), tx.clone(), |e| Msg::Node(Box::new(e)));
    let claims = spawn_watch::<PersistentVolumeClaim>(client.clone(), tx.clone(), |e| {
        Msg::Claim(Box::new(e))
    });
    let volumes =
        spawn_watch::<PersistentVolume>(client.clone(), tx.clone(), |e| Msg::Volume(Box::new(e)));
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: SCHEDULER_NAME.to_string(),
            instance: None,
        },
    );
    let mut s = Scheduler {
        client,
        recorder,
        tx,
        cache: Cache::default(),
        queue: Queue::default(),
        pending: HashMap::new(),
        unschedulable: HashSet::new(),
        assumed: HashMap::new(),
        next_start: 0,
        changed: false,
        binds: Arc::new(Semaphore::new(BIND_CONCURRENCY)),
        pods_init: None,
        nodes_init: None,
        pods_synced: false,
        nodes_synced: false,
        volumes_synced: [false; 2],
        last_flush: Instant::now(),
        backlog,
    };
    s.run(rx, shutdown).await;
    pods.abort();
    nodes.abort();
    claims.abort();
    volumes.abort();
}

fn spawn_watch<K>(
    client: kube::Client,
    tx: mpsc::UnboundedSender<Msg>,
    wrap: fn(WatchEvent<K>) -> Msg,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    tokio::spawn(async move {
        let api: Api<K> = Api::all(client);
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => {
                    if tx.send(wrap(ev)).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "scheduler watch failed; retrying"),
            }
        }
    })
}

struct Scheduler {
    client: kube::Client,
    recorder: Recorder,
    tx: mpsc::UnboundedSender<Msg>,
    cache: Cache,
    queue: Queue,
    pending: HashMap<String, Pending>,
    unschedulable: HashSet<String>,
    /// Pods assumed on a node while their bind is in flight.
    assumed: HashMap<String, String>,
    next_start: usize,
    /// Something changed that may make unschedulable pods fit.
    changed: bool,
    binds: Arc<Semaphore>,
    pods_init: Option<HashSet<String>>,
    nodes_init: Option<HashSet<String>>,
    /// Whether the pod and node watches have listed everything once.
    pods_synced: bool,
    nodes_synced: bool,
    /// Whether the claim and volume watches have listed everything once.
    volumes_synced: [bool; 2],
    last_flush: Instant,
    /// Where the length of the active queue is published.
    backlog: k1s_informer::Backlog,
}

fn uid_of(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn created_ms(pod: &Pod) -> i64 {
    pod.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_millisecond())
        .unwrap_or(0)
}

fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

impl Scheduler {
    async fn run<F: Future<Output = ()> + Send>(
        &mut self,
        mut rx: mpsc::UnboundedReceiver<Msg>,
        shutdown: F,
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            loop {
                match rx.try_recv() {
                    Ok(m) => self.handle(m),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            self.maintain_queues();
            // Pods still in the channel have not reached the queue yet.
            self.backlog.set(self.queue.active_len() + rx.len());
            let mut done = 0;
            // Nothing is scheduled before both caches hold a complete list, as upstream
            // waits for its informers to sync: a node's pods must all be counted first.
            while done < BATCH
                && self.pods_synced
                && self.nodes_synced
                && self.volumes_synced == [true; 2]
            {
                let Ok(permit) = self.binds.clone().try_acquire_owned() else {
                    break;
                };
                let pending = &self.pending;
                let Some(uid) = self.queue.pop(|uid, seq| {
                    pending
                        .get(uid)
                        .is_some_and(|p| p.state == State::Active(seq))
                }) else {
                    break;
                };
                self.schedule_one(&uid, permit);
                done += 1;
            }
            if done > 0 {
                tokio::select! {
                    biased;
                    () = &mut shutdown => return,
                    () = tokio::task::yield_now() => {}
                }
                continue;
            }
            let wake = self
                .queue
                .next_due()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1))
                .min(Instant::now() + Duration::from_secs(1));
            tokio::select! {
                () = &mut shutdown => return,
                m = rx.recv() => match m {
                    Some(m) => self.handle(m),
                    None => return,
                },
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    /// Moves due back-offs to the active queue, and unschedulable pods to back-off (or
    /// active) after a cluster change or after waiting too long.
    fn maintain_queues(&mut self) {
        let now = Instant::now();
        let flush_old = now.duration_since(self.last_flush) > Duration::from_secs(30);
        if self.changed || flush_old {
            if flush_old {
                self.last_flush = now;
            }
            let changed = std::mem::take(&mut self.changed);
            let moving: Vec<String> = self
                .unschedulable
                .iter()
                .filter(|uid| {
                    changed
                        || self.pending.get(*uid).is_some_and(|p| {
                            matches!(p.state, State::Unschedulable { since, .. } if now.duration_since(since) > MAX_UNSCHEDULABLE)
                        })
                })
                .cloned()
                .collect();
            for uid in moving {
                self.unschedulable.remove(&uid);
                let Some(p) = self.pending.get_mut(&uid) else {
                    continue;
                };
                if let State::Unschedulable { until, .. } = p.state {
                    p.state = if until > now {
                        State::Backoff(self.queue.push_backoff(&uid, until))
                    } else {
                        State::Active(self.queue.push_active(
                            &uid,
                            priority(&p.pod),
                            created_ms(&p.pod),
                        ))
                    };
                }
            }
        }
        for (uid, seq) in self.queue.due(now) {
            if let Some(p) = self.pending.get_mut(&uid)
                && p.state == State::Backoff(seq)
            {
                p.state = State::Active(self.queue.push_active(
                    &uid,
                    priority(&p.pod),
                    created_ms(&p.pod),
                ));
            }
        }
    }

    fn handle(&mut self, m: Msg) {
        match m {
            Msg::Pod(ev) => match *ev {
                WatchEvent::Apply(p) => self.on_pod(p),
                WatchEvent::Delete(p) => {
                    let uid = uid_of(&p);
                    self.backlog.seen(&uid, false);
                    self.forget_pod(&uid);
                }
                WatchEvent::Init => self.pods_init = Some(HashSet::new()),
                WatchEvent::InitApply(p) => {
                    if let Some(seen) = &mut self.pods_init {
                        seen.insert(uid_of(&p));
                    }
                    self.on_pod(p);
                }
                WatchEvent::InitDone => {
                    self.pods_synced = true;
                    if let Some(seen) = self.pods_init.take() {
                        let gone: Vec<String> = self
                            .cache
                            .pod_node
                            .keys()
                            .chain(self.pending.keys())
                            .filter(|u| !seen.contains(*u) && !self.assumed.contains_key(*u))
                            .cloned()
                            .collect();
                        for uid in gone {
                            self.forget_pod(&uid);
                        }
                    }
                }
            },
            Msg::Node(ev) => match *ev {
                WatchEvent::Apply(n) => self.on_node(n),
                WatchEvent::Delete(n) => {
                    self.cache
                        .remove_node(n.metadata.name.as_deref().unwrap_or(""));
                }
                WatchEvent::Init => self.nodes_init = Some(HashSet::new()),
                WatchEvent::InitApply(n) => {
                    if let Some(seen) = &mut self.nodes_init {
                        seen.insert(n.metadata.name.clone().unwrap_or_default());
                    }
                    self.on_node(n);
                }
                WatchEvent::InitDone => {
                    self.nodes_synced = true;
                    self.changed = true;
                    if let Some(seen) = self.nodes_init.take() {
                        let gone: Vec<String> = self
                            .cache
                            .order
                            .iter()
                            .filter(|n| !seen.contains(*n))
                            .cloned()
                            .collect();
                        for n in gone {
                            self.cache.remove_node(&n);
                        }
                    }
                }
            },
            Msg::Claim(ev) => {
                let key = |c: &PersistentVolumeClaim| {
                    format!(
                        "{}/{}",
                        c.metadata.namespace.as_deref().unwrap_or(""),
                        c.metadata.name.as_deref().unwrap_or("")
                    )
                };
                let volume = |c: &PersistentVolumeClaim| {
                    c.spec
                        .as_ref()
                        .and_then(|s| s.volume_name.clone())
                        .unwrap_or_default()
                };
                match *ev {
                    WatchEvent::Apply(c) | WatchEvent::InitApply(c) => {
                        let (k, v) = (key(&c), volume(&c));
                        if self.cache.claims.get(&k) != Some(&v) {
                            self.cache.claims.insert(k, v);
                            self.changed = true;
                        }
                    }
                    WatchEvent::Delete(c) => {
                        self.cache.claims.remove(&key(&c));
                    }
                    // A relist replaces the whole set.
                    WatchEvent::Init => self.cache.claims.clear(),
                    WatchEvent::InitDone => {
                        self.volumes_synced[0] = true;
                        self.changed = true;
                    }
                }
            }
            Msg::Volume(ev) => {
                let affinity = |v: &PersistentVolume| {
                    v.spec
                        .as_ref()
                        .and_then(|s| s.node_affinity.as_ref())
                        .and_then(|a| a.required.clone())
                };
                match *ev {
                    WatchEvent::Apply(v) | WatchEvent::InitApply(v) => {
                        let name = v.metadata.name.clone().unwrap_or_default();
                        self.cache.volumes.insert(name, affinity(&v));
                        self.changed = true;
                    }
                    WatchEvent::Delete(v) => {
                        self.cache
                            .volumes
                            .remove(v.metadata.name.as_deref().unwrap_or(""));
                    }
                    WatchEvent::Init => self.cache.volumes.clear(),
                    WatchEvent::InitDone => {
                        self.volumes_synced[1] = true;
                        self.changed = true;
                    }
                }
            }
            Msg::Bound { uid, node, error } => self.on_bound(uid, node, error),
        }
    }

    fn on_node(&mut self, node: Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let relevant = match self.cache.nodes.get(&name).and_then(|n| n.node.as_ref()) {
            None => true,
            Some(old) => {
                old.metadata.labels != node.metadata.labels
                    || old.spec != node.spec
                    || old.status.as_ref().map(|s| &s.allocatable)
                        != node.status.as_ref().map(|s| &s.allocatable)
            }
        };
        if relevant {
            self.cache.set_node(node);
            self.changed = true;
        }
    }

    fn on_pod(&mut self, pod: Arc<Pod>) {
        // Pending pods are the informer's shared objects (managedFields already dropped),
        // not copies: with pods created faster than they are scheduled, 30k wait at once.
        let uid = uid_of(&pod);
        let spec = pod.spec.as_ref();
        let node = spec.and_then(|s| s.node_name.clone()).unwrap_or_default();
        // The pod is no longer on its way here (the creation gate's count).
        self.backlog.seen(&uid, node.is_empty());
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            self.forget_pod(&uid);
            return;
        }
        if !node.is_empty() {
            self.drop_pending(&uid);
            let known =
                self.assumed.remove(&uid).is_some() || self.cache.pod_node.get(&uid) == Some(&node);
            if !known || pod.metadata.deletion_timestamp.is_some() {
                self.changed = true;
            }
            self.cache.add_pod(Arc::new(PodInfo::new(&pod)), &node);
            return;
        }
        let ours = spec
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(SCHEDULER_NAME)
            == SCHEDULER_NAME;
        let gated = spec
            .and_then(|s| s.scheduling_gates.as_ref())
            .is_some_and(|g| !g.is_empty());
        if !ours || gated || pod.metadata.deletion_timestamp.is_some() {
            self.drop_pending(&uid);
            return;
        }
        match self.pending.get_mut(&uid) {
            Some(p) => {
                // Only a change of what scheduling reads requeues the pod: its own
                // status updates (our PodScheduled condition) do not.
                let relevant =
                    p.pod.spec != pod.spec || p.pod.metadata.labels != pod.metadata.labels;
                p.pod = pod;
                if relevant && matches!(p.state, State::Unschedulable { .. } | State::Backoff(_)) {
                    self.unschedulable.remove(&uid);
                    p.state = State::Active(self.queue.push_active(
                        &uid,
                        priority(&p.pod),
                        created_ms(&p.pod),
                    ));
                }
            }
            None => {
                let seq = self
                    .queue
                    .push_active(&uid, priority(&pod), created_ms(&pod));
                let written = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|c| {
                        c.iter()
                            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                    })
                    .and_then(|c| c.message.clone());
                self.pending.insert(
                    uid,
                    Pending {
                        pod,
                        attempts: 0,
                        state: State::Active(seq),
                        written,
                    },
                );
            }
        }
    }

    fn drop_pending(&mut self, uid: &str) {
        self.pending.remove(uid);
        self.unschedulable.remove(uid);
    }

    fn forget_pod(&mut self, uid: &str) {
        self.drop_pending(uid);
        self.assumed.remove(uid);
        if self.cache.pod_node.contains_key(uid) {
            self.cache.remove_pod(uid);
            self.changed = true;
        }
    }

    fn schedule_one(&mut self, uid: &str, permit: tokio::sync::OwnedSemaphorePermit) {
        let Some(p) = self.pending.get(uid) else {
            return;
        };
        let pod = p.pod.clone();
        match schedule(&pod, &self.cache, &mut self.next_start) {
            Outcome::Node(node) => {
                // Assume the pod on the node so the next cycles count it.
                self.cache.add_pod(Arc::new(PodInfo::new(&pod)), &node);
                self.assumed.insert(uid.to_string(), node.clone());
                if let Some(p) = self.pending.get_mut(uid) {
                    p.state = State::Binding;
                }
                self.spawn_bind(pod, node, permit);
            }
            Outcome::Unschedulable(msg) => {
                drop(permit);
                self.failed(uid, msg);
            }
            Outcome::Preempt {
                message,
                node,
                victims,
            } => {
                drop(permit);
                tracing::info!(pod = ?pod.metadata.name, %node, victims = victims.len(), "preempting");
                self.spawn_preemption(pod, node, victims);
                self.failed(uid, message);
            }
        }
    }

    /// Nominates the node for the pod and evicts the victims: each gets the
    /// `DisruptionTarget` condition and a `Preempted` event, then is deleted.
    fn spawn_preemption(&self, pod: Arc<Pod>, node: String, victims: Vec<Arc<PodInfo>>) {
        let client = self.client.clone();
        let recorder = self.recorder.clone();
        tokio::spawn(async move {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let uid = uid_of(&pod);
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let nominate = json!({"status": {"nominatedNodeName": node}});
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&nominate))
                .await
            {
                tracing::info!(error = %e, pod = %name, "cannot nominate a node");
                return;
            }
            for v in victims {
                let api: Api<Pod> = Api::namespaced(client.clone(), &v.namespace);
                let condition = json!({"status": {"conditions": [{
                    "type": "DisruptionTarget", "status": "True",
                    "reason": "PreemptionByScheduler",
                    "message": format!("{SCHEDULER_NAME}: preempting to accommodate a higher priority pod"),
                    "lastTransitionTime": now_json(),
                }]}});
                let _ = api
                    .patch_status(
                        &v.name,
                        &PatchParams::default(),
                        &Patch::Strategic(&condition),
                    )
                    .await;
                let reference = k8s_openapi::api::core::v1::ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(v.name.clone()),
                    namespace: Some(v.namespace.clone()),
                    uid: Some(v.uid.clone()),
                    ..Default::default()
                };
                let ev = KubeEvent {
                    type_: EventType::Normal,
                    reason: "Preempted".into(),
                    note: Some(format!("Preempted by pod {uid} on node {node}")),
                    action: "Preempting".into(),
                    secondary: None,
                };
                let _ = recorder.publish(&ev, &reference).await;
                let dp = kube::api::DeleteParams {
                    preconditions: Some(kube::api::Preconditions {
                        uid: Some(v.uid.clone()),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                if let Err(e) = api.delete(&v.name, &dp).await {
                    tracing::info!(error = %e, victim = %v.name, "cannot preempt");
                }
            }
        });
    }

    fn spawn_bind(&self, pod: Arc<Pod>, node: String, permit: tokio::sync::OwnedSemaphorePermit) {
        let client = self.client.clone();
        let events_client = self.client.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let uid = uid_of(&pod);
            if let Err(e) = volumebinding::pre_bind(&client, &pod, &node).await {
                drop(permit);
                let _ = tx.send(Msg::Bound {
                    uid,
                    node,
                    error: Some(BindFailure::PreBind(format!(
                        "running PreBind plugin \"VolumeBinding\": {e}"
                    ))),
                });
                return;
            }
            let api: Api<Pod> = Api::namespaced(client, &ns);
            let binding = json!({
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": ns, "uid": uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            // The answer (a Status) is skipped, not decoded: nothing reads it.
            let result = api
                .create_subresource::<_, serde::de::IgnoredAny>(
                    "binding",
                    &name,
                    &PostParams::default(),
                    &binding,
                )
                .await;
            drop(permit);
            let error = result.err().map(BindFailure::Api);
            let ok = error.is_none();
            let _ = tx.send(Msg::Bound {
                uid,
                node: node.clone(),
                error,
            });
            if ok {
                // Written directly, not through the recorder: a Scheduled event is one per
                // pod and never a series, and the recorder's cache would grow by one entry
                // per pod scheduled and be scanned on every publish.
                // The event the server answers with is skipped, not decoded (one write
                // per pod scheduled; nothing reads the answer).
                let ev = scheduled_event(&pod, &node);
                let request = serde_json::to_vec(&ev)
                    .map_err(kube::Error::SerdeError)
                    .and_then(|body| {
                        kube::core::Request::new(k8s_openapi::api::events::v1::Event::url_path(
                            &(),
                            Some(&ns),
                        ))
                        .create(&PostParams::default(), body)
                        .map_err(kube::Error::BuildRequest)
                    });
                let written = match request {
                    Ok(r) => events_client
                        .request::<serde::de::IgnoredAny>(r)
                        .await
                        .map(drop),
                    Err(e) => Err(e),
                };
                if let Err(e) = written {
                    tracing::debug!(error = %e, "cannot record the Scheduled event");
                }
            }
        });
    }

    fn on_bound(&mut self, uid: String, node: String, error: Option<BindFailure>) {
        let Some(e) = error else { return };
        let note = match &e {
            BindFailure::PreBind(msg) => msg.clone(),
            BindFailure::Api(e) => format!("Binding rejected: {e}"),
        };
        tracing::info!(%uid, %node, error = %note, "binding failed");
        if self.assumed.remove(&uid).is_some() {
            self.cache.remove_pod(&uid);
        }
        let Some(p) = self.pending.get_mut(&uid) else {
            return;
        };
        if p.state != State::Binding {
            return;
        }
        let conflict =
            matches!(&e, BindFailure::Api(kube::Error::Api(s)) if s.code == 409 || s.code == 404);
        if conflict {
            // Bound elsewhere or gone: the watch says which; meanwhile try again later.
            p.state = State::Backoff(self.queue.push_backoff(&uid, Instant::now() + backoff(1)));
            return;
        }
        p.attempts += 1;
        let until = Instant::now() + backoff(p.attempts);
        p.state = State::Backoff(self.queue.push_backoff(&uid, until));
        let pod = p.pod.clone();
        let recorder = self.recorder.clone();
        tokio::spawn(async move {
            let ev = KubeEvent {
                type_: EventType::Warning,
                reason: "FailedScheduling".into(),
                note: Some(note),
                action: "Scheduling".into(),
                secondary: None,
            };
            let _ = recorder.publish(&ev, &pod.object_ref(&())).await;
        });
    }

    /// A failed attempt: back off, mark the pod `PodScheduled=False` (when the message
    /// changed) and record `FailedScheduling`.
    fn failed(&mut self, uid: &str, msg: String) {
        let now = Instant::now();
        let Some(p) = self.pending.get_mut(uid) else {
            return;
        };
        p.attempts += 1;
        p.state = State::Unschedulable {
            until: now + backoff(p.attempts),
            since: now,
        };
        self.unschedulable.insert(uid.to_string());
        let write_condition = p.written.as_deref() != Some(msg.as_str());
        p.written = Some(msg.clone());
        let pod = p.pod.clone();
        let client = self.client.clone();
        let recorder = self.recorder.clone();
        // Upstream's reason: Unschedulable when plugins rejected the pod, SchedulerError
        // when scheduling could not run (no node at all).
        let reason = if msg == NO_NODES_MSG {
            "SchedulerError"
        } else {
            "Unschedulable"
        };
        tracing::debug!(pod = ?pod.metadata.name, %msg, "unschedulable");
        tokio::spawn(async move {
            if write_condition {
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let old = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
                let transition = match old {
                    Some(c) if c.status == "False" => c
                        .last_transition_time
                        .as_ref()
                        .map(|t| json!(t))
                        .unwrap_or_else(now_json),
                    _ => now_json(),
                };
                let patch = json!({"status": {"conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": reason,
                    "message": msg, "lastProbeTime": null, "lastTransitionTime": transition,
                }]}});
                let api: Api<Pod> = Api::namespaced(client, &ns);
                if let Err(e) = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
                {
                    tracing::debug!(error = %e, pod = %name, "cannot set PodScheduled");
                }
            }
            let ev = KubeEvent {
                type_: EventType::Warning,
                reason: "FailedScheduling".into(),
                note: Some(msg),
                action: "Scheduling".into(),
                secondary: None,
            };
            if let Err(e) = recorder.publish(&ev, &pod.object_ref(&())).await {
                tracing::debug!(error = %e, "cannot record the FailedScheduling event");
            }
        });
    }
}

/// The `Scheduled` event of a pod bound to `node`, as the recorder would write it.
fn scheduled_event(pod: &Pod, node: &str) -> k8s_openapi::api::events::v1::Event {
    let now = jiff_now();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    k8s_openapi::api::events::v1::Event {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        action: Some("Binding".into()),
        reason: Some("Scheduled".into()),
        note: Some(format!("Successfully assigned {ns}/{name} to {node}")),
        event_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            now,
        )),
        regarding: Some(pod.object_ref(&())),
        reporting_controller: Some(SCHEDULER_NAME.into()),
        reporting_instance: Some(SCHEDULER_NAME.into()),
        type_: Some("Normal".into()),
        ..Default::default()
    }
}

fn now_json() -> serde_json::Value {
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff_now());
    json!(now)
}

fn jiff_now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

//! The scheduler's view of the cluster: nodes with per-node aggregates of the pods bound
//! (or assumed) to them, fed by watches, so a scheduling cycle reads memory only.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k1s_apimachinery::{Quantity, Selector};
use k8s_openapi::api::core::v1::{Container, Node, NodeSelector, Pod, PodAffinityTerm, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

/// Upstream's `DefaultMilliCPURequest`: what scoring counts for a container without one.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Upstream's `DefaultMemoryRequest` (200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of resources: cpu in millicores, everything else in units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in millicores.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: i64,
    /// Other (extended, hugepages) resources by name.
    pub scalar: BTreeMap<String, i64>,
}

fn quantity_of(q: &ApiQuantity, milli: bool) -> i64 {
    match Quantity::parse(&q.0) {
        Ok(q) if milli => q.milli_value(),
        Ok(q) => q.value(),
        Err(_) => 0,
    }
}

impl Resources {
    /// The amounts of a resource list (`requests`, `allocatable`, `overhead`).
    pub fn from_list(list: Option<&BTreeMap<String, ApiQuantity>>) -> Self {
        let mut r = Resources::default();
        for (name, q) in list.into_iter().flatten() {
            match name.as_str() {
                "cpu" => r.milli_cpu = quantity_of(q, true),
                "memory" => r.memory = quantity_of(q, false),
                "ephemeral-storage" => r.ephemeral_storage = quantity_of(q, false),
                "pods" => {}
                other => {
                    r.scalar.insert(other.to_string(), quantity_of(q, false));
                }
            }
        }
        r
    }

    /// Adds `o`.
    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    /// Subtracts `o`.
    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Raises each amount to at least `o`'s.
    pub fn max_with(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }
}

/// A host port a pod asks for: protocol, IP (`0.0.0.0` for any) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// TCP, UDP or SCTP.
    pub protocol: String,
    /// The host IP, `0.0.0.0` when none is given.
    pub ip: String,
    /// The port.
    pub port: i32,
}

impl HostPort {
    /// Upstream's `HostPortInfo` conflict: same protocol and port, and the same IP or
    /// either one the wildcard.
    pub fn conflicts(&self, o: &HostPort) -> bool {
        self.port == o.port
            && self.protocol == o.protocol
            && (self.ip == o.ip || self.ip == "0.0.0.0" || o.ip == "0.0.0.0")
    }
}

/// Namespaces an affinity term applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum TermNamespaces {
    /// These namespaces.
    Listed(Vec<String>),
    /// Every namespace (an empty `namespaceSelector`).
    All,
}

/// A pod (anti-)affinity term, parsed once.
#[derive(Debug, Clone)]
pub struct AffinityTerm {
    /// Which pods it selects.
    pub selector: Selector,
    /// In which namespaces.
    pub namespaces: TermNamespaces,
    /// The node label whose values are the topology domains.
    pub topology_key: String,
}

impl AffinityTerm {
    /// Parses a term of a pod in `namespace`. A term without a label selector selects
    /// no pods; without namespaces and namespace selector it applies to the pod's own
    /// namespace; an empty namespace selector means every namespace. A namespace selector
    /// with labels is not evaluated (namespaces are not watched): the listed namespaces,
    /// or the pod's own, apply.
    pub fn parse(term: &PodAffinityTerm, namespace: &str) -> Self {
        let selector = term
            .label_selector
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| Selector::from_label_selector(&v).ok())
            .unwrap_or_else(Selector::nothing);
        let listed = term.namespaces.clone().unwrap_or_default();
        let all = term.namespace_selector.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
                && s.match_expressions.as_ref().is_none_or(Vec::is_empty)
        });
        let namespaces = if all {
            TermNamespaces::All
        } else if listed.is_empty() {
            TermNamespaces::Listed(vec![namespace.to_string()])
        } else {
            TermNamespaces::Listed(listed)
        };
        AffinityTerm {
            selector,
            namespaces,
            topology_key: term.topology_key.clone(),
        }
    }

    /// Whether the term selects a pod with these namespace and labels.
    pub fn matches(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        let ns_ok = match &self.namespaces {
            TermNamespaces::All => true,
            TermNamespaces::Listed(l) => l.iter().any(|n| n == namespace),
        };
        ns_ok && self.selector.matches(labels)
    }
}

/// What the scheduler keeps of a pod bound (or assumed) to a node.
#[derive(Debug, Clone, Default)]
pub struct PodInfo {
    /// uid.
    pub uid: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Effective requests (upstream's `PodRequests`, overhead included).
    pub requests: Resources,
    /// CPU counted for scoring (containers without a request count the default).
    pub nonzero_milli_cpu: i64,
    /// Memory counted for scoring.
    pub nonzero_memory: i64,
    /// Host ports.
    pub host_ports: Vec<HostPort>,
    /// `spec.priority`.
    pub priority: i32,
    /// Required anti-affinity terms (checked against incoming pods).
    pub required_anti_affinity: Vec<AffinityTerm>,
    /// Whether it is being deleted.
    pub terminating: bool,
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn container_requests(c: &Container) -> Resources {
    Resources::from_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

/// Per-container CPU and memory with upstream's scoring defaults for missing requests.
fn nonzero(c: &Container) -> (i64, i64) {
    let req = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let cpu = req
        .and_then(|r| r.get("cpu"))
        .map(|q| quantity_of(q, true))
        .unwrap_or(DEFAULT_MILLI_CPU_REQUEST);
    let mem = req
        .and_then(|r| r.get("memory"))
        .map(|q| quantity_of(q, false))
        .unwrap_or(DEFAULT_MEMORY_REQUEST);
    (cpu, mem)
}

impl PodInfo {
    /// The scheduler's summary of a pod.
    pub fn new(pod: &Pod) -> Self {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let mut info = PodInfo {
            uid: meta.uid.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            terminating: meta.deletion_timestamp.is_some(),
            ..PodInfo::default()
        };
        let Some(spec) = &pod.spec else {
            info.namespace = namespace;
            return info;
        };
        info.priority = spec.priority.unwrap_or(0);
        // Upstream's PodRequests: the containers and sidecars together, or the largest
        // init container with the sidecars started before it, whichever is larger.
        let mut sum = Resources::default();
        let (mut nz_cpu, mut nz_mem) = (0, 0);
        for c in &spec.containers {
            sum.add(&container_requests(c));
            let (a, b) = nonzero(c);
            nz_cpu += a;
            nz_mem += b;
        }
        let mut sidecars = Resources::default();
        let mut init_max = Resources::default();
        let (mut nz_sidecar_cpu, mut nz_sidecar_mem) = (0, 0);
        let (mut nz_init_cpu, mut nz_init_mem) = (0, 0);
        for c in spec.init_containers.iter().flatten() {
            let r = container_requests(c);
            let (a, b) = nonzero(c);
            if is_sidecar(c) {
                sidecars.add(&r);
                nz_sidecar_cpu += a;
                nz_sidecar_mem += b;
                init_max.max_with(&sidecars);
            } else {
                let mut with = sidecars.clone();
                with.add(&r);
                init_max.max_with(&with);
                nz_init_cpu = nz_init_cpu.max(nz_sidecar_cpu + a);
                nz_init_mem = nz_init_mem.max(nz_sidecar_mem + b);
            }
        }
        sum.add(&sidecars);
        sum.max_with(&init_max);
        nz_cpu = (nz_cpu + nz_sidecar_cpu).max(nz_init_cpu);
        nz_mem = (nz_mem + nz_sidecar_mem).max(nz_init_mem);
        let overhead = Resources::from_list(spec.overhead.as_ref());
        sum.add(&overhead);
        info.requests = sum;
        info.nonzero_milli_cpu = nz_cpu + overhead.milli_cpu;
        info.nonzero_memory = nz_mem + overhead.memory;
        let sidecar_containers = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| is_sidecar(c));
        for c in spec.containers.iter().chain(sidecar_containers) {
            for p in c.ports.iter().flatten() {
                if let Some(port) = p.host_port.filter(|p| *p > 0) {
                    info.host_ports.push(HostPort {
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        ip: p
                            .host_ip
                            .clone()
                            .filter(|ip| !ip.is_empty())
                            .unwrap_or_else(|| "0.0.0.0".into()),
                        port,
                    });
                }
            }
        }
        if let Some(anti) = spec
            .affinity
            .as_ref()
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
        {
            info.required_anti_affinity = anti
                .iter()
                .map(|t| AffinityTerm::parse(t, &namespace))
                .collect();
        }
        info.namespace = namespace;
        info
    }
}

/// A node and the aggregates of the pods on it.
#[derive(Debug, Default)]
pub struct NodeInfo {
    /// The node object; `None` while pods name a node not (yet) seen.
    pub node: Option<Arc<Node>>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its taints.
    pub taints: Vec<Taint>,
    /// `spec.unschedulable`.
    pub unschedulable: bool,
    /// `status.allocatable` (pods apart).
    pub allocatable: Resources,
    /// `status.allocatable.pods`.
    pub allowed_pods: i64,
    /// Sum of the requests of the pods on it.
    pub requested: Resources,
    /// Sum of the pods' scoring CPU.
    pub nonzero_milli_cpu: i64,
    /// Sum of the pods' scoring memory.
    pub nonzero_memory: i64,
    /// The pods, by uid.
    pub pods: HashMap<String, Arc<PodInfo>>,
}

impl NodeInfo {
    /// Sets the node object.
    pub fn set_node(&mut self, node: Arc<Node>) {
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        let alloc = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
        self.allocatable = Resources::from_list(alloc);
        self.allowed_pods = alloc
            .and_then(|a| a.get("pods"))
            .map(|q| quantity_of(q, false))
            .unwrap_or(0);
        self.node = Some(node);
    }

    /// Adds a pod's requests.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.nonzero_milli_cpu += pod.nonzero_milli_cpu;
        self.nonzero_memory += pod.nonzero_memory;
        if let Some(old) = self.pods.insert(pod.uid.clone(), pod) {
            self.unaccount(&old);
        }
    }

    fn unaccount(&mut self, pod: &PodInfo) {
        self.requested.sub(&pod.requests);
        self.nonzero_milli_cpu -= pod.nonzero_milli_cpu;
        self.nonzero_memory -= pod.nonzero_memory;
    }

    /// Removes a pod.
    pub fn remove_pod(&mut self, uid: &str) {
        if let Some(old) = self.pods.remove(uid) {
            self.unaccount(&old);
        }
    }

    /// Whether a host port is taken by a pod on the node.
    pub fn port_taken(&self, want: &HostPort) -> bool {
        self.pods
            .values()
            .any(|p| p.host_ports.iter().any(|h| h.conflicts(want)))
    }
}

/// Every node and where each known pod is.
#[derive(Debug, Default)]
pub struct Cache {
    /// Nodes by name (including placeholders for pods on unknown nodes).
    pub nodes: HashMap<String, NodeInfo>,
    /// Names of the nodes that exist, sorted; the order scheduling cycles walk.
    pub order: Vec<String>,
    /// Node of each bound or assumed pod, by uid.
    pub pod_node: HashMap<String, String>,
    /// Pods with required anti-affinity, by uid (checked against every incoming pod).
    pub anti_affinity_pods: HashMap<String, Arc<PodInfo>>,
    /// PersistentVolumeClaims by `namespace/name`: the volume each is bound to (empty
    /// while unbound).
    pub claims: HashMap<String, String>,
    /// PersistentVolumes by name: their required node affinity, if any.
    pub volumes: HashMap<String, Option<NodeSelector>>,
}

impl Cache {
    /// Adds or replaces a node.
    pub fn set_node(&mut self, node: Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let entry = self.nodes.entry(name.clone()).or_default();
        let new = entry.node.is_none();
        entry.set_node(Arc::new(node));
        if new {
            let at = self.order.binary_search(&name).unwrap_or_else(|i| i);
            self.order.insert(at, name);
        }
    }

    /// Removes a node (its pods stay accounted, for when it comes back).
    pub fn remove_node(&mut self, name: &str) {
        if let Ok(at) = self.order.binary_search_by(|n| n.as_str().cmp(name)) {
            self.order.remove(at);
        }
        if let Some(n) = self.nodes.get_mut(name) {
            n.node = None;
            if n.pods.is_empty() {
                self.nodes.remove(name);
            }
        }
    }

    /// Places (or moves) a pod on a node.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>, node: &str) {
        if self.pod_node.get(&pod.uid).is_some_and(|old| old != node) {
            self.remove_pod(&pod.uid);
        }
        if pod.required_anti_affinity.is_empty() {
            self.anti_affinity_pods.remove(&pod.uid);
        } else {
            self.anti_affinity_pods.insert(pod.uid.clone(), pod.clone());
        }
        self.pod_node.insert(pod.uid.clone(), node.to_string());
        self.nodes.entry(node.to_string()).or_default().add_pod(pod);
    }

    /// Forgets a pod.
    pub fn remove_pod(&mut self, uid: &str) {
        self.anti_affinity_pods.remove(uid);
        if let Some(node) = self.pod_node.remove(uid)
            && let Some(n) = self.nodes.get_mut(&node)
        {
            n.remove_pod(uid);
            if n.node.is_none() && n.pods.is_empty() {
                self.nodes.remove(&node);
            }
        }
    }

    /// The node a pod is on, if known.
    pub fn node_of(&self, uid: &str) -> Option<&NodeInfo> {
        self.pod_node.get(uid).and_then(|n| self.nodes.get(n))
    }
}

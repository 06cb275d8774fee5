//! kube-scheduler's default filter and score plugins, under upstream's names and with
//! its reason texts, evaluated against the [`Cache`](crate::cache::Cache).

use std::collections::{BTreeMap, HashMap, HashSet};

use k1s_apimachinery::Selector;
use k8s_openapi::api::core::v1::{
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PreferredSchedulingTerm, Taint,
    Toleration, TopologySpreadConstraint, WeightedPodAffinityTerm,
};

use crate::cache::{AffinityTerm, Cache, NodeInfo, PodInfo, ZONE_LABEL};

/// The highest score a plugin gives a node.
pub const MAX_NODE_SCORE: i64 = 100;

/// NodeName's reason.
pub const ERR_NODE_NAME: &str = "node(s) didn't match the requested node name";
/// NodeUnschedulable's reason.
pub const ERR_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// NodeAffinity's reason.
pub const ERR_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// NodePorts' reason.
pub const ERR_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
/// PodTopologySpread's reason.
pub const ERR_SPREAD: &str = "node(s) didn't match pod topology spread constraints";
/// PodTopologySpread's reason for a node without a constraint's topology key.
pub const ERR_SPREAD_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
/// InterPodAffinity's reason for unmet affinity.
pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// InterPodAffinity's reason for the pod's own anti-affinity.
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// InterPodAffinity's reason for existing pods' anti-affinity.
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
/// VolumeBinding's reason for a bound volume the node cannot reach.
pub const ERR_VOLUME_NODE_AFFINITY: &str = "node(s) had volume node affinity conflict";
/// The taint NodeUnschedulable lets pods tolerate.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Why a node cannot take the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The filter plugin's reasons (NodeResourcesFit may give several).
    pub reasons: Vec<String>,
    /// Upstream's `UnschedulableAndUnresolvable`: evicting pods would not help.
    pub unresolvable: bool,
}

impl Failure {
    fn unresolvable(reason: impl Into<String>) -> Self {
        Failure {
            reasons: vec![reason.into()],
            unresolvable: true,
        }
    }

    fn unschedulable(reason: impl Into<String>) -> Self {
        Failure {
            reasons: vec![reason.into()],
            unresolvable: false,
        }
    }
}

/// Upstream's `ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect = t.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    let op = t.operator.as_deref().unwrap_or("Equal");
    if key.is_empty() {
        return op == "Exists";
    }
    if key != taint.key {
        return false;
    }
    match op {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// One node selector requirement against a node's labels (or, for `matchFields`, its
/// name).
fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// Whether a node selector term matches: every expression and field; an empty term
/// matches nothing.
pub fn term_matches(
    term: &NodeSelectorTerm,
    node_name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(node_name)))
}

fn selector_matches(
    sel: &NodeSelector,
    node_name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    sel.node_selector_terms
        .iter()
        .any(|t| term_matches(t, node_name, labels))
}

/// A topology spread constraint, parsed once per cycle.
#[derive(Debug)]
pub struct Spread {
    /// `maxSkew`.
    pub max_skew: i64,
    /// `minDomains` (1 when unset).
    pub min_domains: i64,
    /// The node label of the domains.
    pub topology_key: String,
    /// Pods counted (in the pod's namespace).
    pub selector: Selector,
    /// Whether the incoming pod matches its own selector.
    pub self_match: i64,
    /// Matching pods per domain, over the eligible nodes.
    pub counts: HashMap<String, i64>,
    /// The smallest count over the domains (0 with fewer domains than `minDomains`).
    pub min_count: i64,
    /// Upstream's weight of the constraint in scoring: `ln(domains + 2)`.
    pub weight: f64,
}

/// The state of upstream's default spreading constraints for one pod.
struct DefaultSpread {
    owner: String,
    zone_counts: HashMap<String, i64>,
    host_weight: f64,
    zone_weight: f64,
}

/// The hostname label.
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// What a scheduling cycle computes once for the pod (upstream's PreFilter state).
pub struct Cycle<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// Its summary.
    pub info: PodInfo,
    /// Its tolerations.
    pub tolerations: &'a [Toleration],
    node_selector: Option<&'a BTreeMap<String, String>>,
    required_node_affinity: Option<&'a NodeSelector>,
    preferred_node_affinity: &'a [PreferredSchedulingTerm],
    /// DoNotSchedule constraints.
    pub hard_spread: Vec<Spread>,
    /// ScheduleAnyway constraints.
    pub soft_spread: Vec<Spread>,
    affinity_terms: Vec<AffinityTerm>,
    /// Matching pods per (term index, domain) for the required affinity terms.
    affinity_counts: Vec<HashMap<String, i64>>,
    /// Whether no pod anywhere matches the affinity terms and the pod matches them all
    /// itself (then the first pod of a group may go anywhere).
    affinity_bootstrap: bool,
    /// Domains (key, value) that hold pods the incoming pod's anti-affinity selects.
    anti_domains: HashSet<(String, String)>,
    /// Domains (key, value) where an existing pod's anti-affinity selects the pod.
    existing_anti_domains: HashSet<(String, String)>,
    /// Preferred (anti-)affinity: weight (negative for anti) and term.
    preferred_pod_terms: Vec<(i64, AffinityTerm)>,
    /// The number of nodes scored by preferred pod affinity (skip when none).
    preferred_domain_scores: HashMap<(String, String), i64>,
    /// Upstream's system default spreading (hostname, maxSkew 3; zone, maxSkew 5;
    /// ScheduleAnyway) for a pod of a ReplicaSet, ReplicationController or StatefulSet
    /// without constraints of its own: its owner's pods per zone, and the weights.
    default_spread: Option<DefaultSpread>,
    /// Required node affinity of the bound PersistentVolumes the pod uses.
    volume_selectors: Vec<NodeSelector>,
    /// Why the pod fits no node whatever the node (upstream's PreFilter rejection: a
    /// PersistentVolumeClaim that does not exist).
    pub prefilter: Option<String>,
}

fn spread_constraints(pod: &Pod) -> &[TopologySpreadConstraint] {
    pod.spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or(&[])
}

impl<'a> Cycle<'a> {
    /// Upstream's PreFilter of every plugin: the pod's own terms parsed, and the
    /// counts its spread and pod-affinity filters need, from one pass over the pods.
    pub fn new(pod: &'a Pod, cache: &Cache) -> Self {
        let info = PodInfo::new(pod);
        let spec = pod.spec.as_ref();
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let node_affinity = affinity.and_then(|a| a.node_affinity.as_ref());
        let mut cycle = Cycle {
            pod,
            tolerations: spec.and_then(|s| s.tolerations.as_deref()).unwrap_or(&[]),
            node_selector: spec
                .and_then(|s| s.node_selector.as_ref())
                .filter(|s| !s.is_empty()),
            required_node_affinity: node_affinity.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
            preferred_node_affinity: node_affinity
                .and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_deref()
                })
                .unwrap_or(&[]),
            hard_spread: Vec::new(),
            soft_spread: Vec::new(),
            affinity_terms: Vec::new(),
            affinity_counts: Vec::new(),
            affinity_bootstrap: false,
            anti_domains: HashSet::new(),
            existing_anti_domains: HashSet::new(),
            preferred_pod_terms: Vec::new(),
            preferred_domain_scores: HashMap::new(),
            volume_selectors: Vec::new(),
            prefilter: None,
            default_spread: None,
            info,
        };
        cycle.prepare_default_spread(cache);
        cycle.prepare_volumes(cache);
        cycle.prepare_spread(cache);
        cycle.prepare_pod_affinity(cache);
        cycle
    }

    /// Whether a node passes the pod's nodeSelector and required node affinity.
    pub fn node_affinity_matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        if let Some(sel) = self.node_selector
            && !sel.iter().all(|(k, v)| labels.get(k) == Some(v))
        {
            return false;
        }
        self.required_node_affinity
            .is_none_or(|a| selector_matches(a, name, labels))
    }

    /// VolumeRestrictions' and VolumeBinding's PreFilter for claims: each claim must
    /// exist; a bound one's volume may restrict the nodes. Unbound claims are not
    /// checked (no provisioner or binder decides here).
    fn prepare_volumes(&mut self, cache: &Cache) {
        let volumes = self.pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
        for v in volumes.into_iter().flatten() {
            let Some(claim) = v.persistent_volume_claim.as_ref() else {
                continue;
            };
            let key = format!("{}/{}", self.info.namespace, claim.claim_name);
            match cache.claims.get(&key) {
                None => {
                    self.prefilter = Some(format!(
                        "persistentvolumeclaim \"{}\" not found",
                        claim.claim_name
                    ));
                    return;
                }
                Some(volume) if !volume.is_empty() => {
                    if let Some(Some(sel)) = cache.volumes.get(volume) {
                        self.volume_selectors.push(sel.clone());
                    }
                }
                Some(_) => {}
            }
        }
    }

    fn prepare_default_spread(&mut self, cache: &Cache) {
        if !spread_constraints(self.pod).is_empty() {
            return;
        }
        let Some(owner) = self.info.owner.clone() else {
            return;
        };
        // Every node is a hostname domain; zones come from the cache's aggregate.
        let hosts = cache.order.len();
        let zone_counts = cache.owner_zones.get(&owner).cloned().unwrap_or_default();
        let zones = cache.zones.len();
        self.default_spread = Some(DefaultSpread {
            owner,
            host_weight: ((hosts + 2) as f64).ln(),
            zone_weight: ((zone_counts.len().max(zones) + 2) as f64).ln(),
            zone_counts,
        });
    }

    fn prepare_spread(&mut self, cache: &Cache) {
        let constraints = spread_constraints(self.pod);
        if constraints.is_empty() {
            return;
        }
        let keys: Vec<&str> = constraints
            .iter()
            .map(|c| c.topology_key.as_str())
            .collect();
        let mut parsed: Vec<(bool, Spread)> = Vec::new();
        for c in constraints {
            let mut sel_value = c
                .label_selector
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok())
                .unwrap_or(serde_json::Value::Null);
            // matchLabelKeys: the pod's values for those keys join the selector.
            for key in c.match_label_keys.iter().flatten() {
                if let Some(v) = self.info.labels.get(key) {
                    let expr = serde_json::json!({"key": key, "operator": "In", "values": [v]});
                    if !sel_value.is_object() {
                        sel_value = serde_json::json!({});
                    }
                    match sel_value
                        .get_mut("matchExpressions")
                        .and_then(|e| e.as_array_mut())
                    {
                        Some(list) => list.push(expr),
                        None => sel_value["matchExpressions"] = serde_json::json!([expr]),
                    }
                }
            }
            let selector = if sel_value.is_null() {
                Selector::nothing()
            } else {
                Selector::from_label_selector(&sel_value).unwrap_or_else(|_| Selector::nothing())
            };
            let self_match = i64::from(selector.matches(&self.info.labels));
            parsed.push((
                c.when_unsatisfiable == "DoNotSchedule",
                Spread {
                    max_skew: i64::from(c.max_skew),
                    min_domains: i64::from(c.min_domains.unwrap_or(1)),
                    topology_key: c.topology_key.clone(),
                    selector,
                    self_match,
                    counts: HashMap::new(),
                    min_count: 0,
                    weight: 0.0,
                },
            ));
        }
        let honor_affinity = |c: &TopologySpreadConstraint| {
            c.node_affinity_policy.as_deref().unwrap_or("Honor") == "Honor"
        };
        let honor_taints = |c: &TopologySpreadConstraint| {
            c.node_taints_policy.as_deref().unwrap_or("Ignore") == "Honor"
        };
        for name in &cache.order {
            let Some(node) = cache.nodes.get(name) else {
                continue;
            };
            if !keys.iter().all(|k| node.labels.contains_key(*k)) {
                continue;
            }
            for (c, (_, s)) in constraints.iter().zip(parsed.iter_mut()) {
                if honor_affinity(c) && !self.node_affinity_matches(name, &node.labels) {
                    continue;
                }
                if honor_taints(c)
                    && node.taints.iter().any(|t| {
                        (t.effect == "NoSchedule" || t.effect == "NoExecute")
                            && !tolerated(self.tolerations, t)
                    })
                {
                    continue;
                }
                let Some(value) = node.labels.get(&s.topology_key) else {
                    continue;
                };
                let n = node
                    .pods
                    .values()
                    .filter(|p| {
                        !p.terminating
                            && p.namespace == self.info.namespace
                            && s.selector.matches(&p.labels)
                    })
                    .count() as i64;
                *s.counts.entry(value.clone()).or_default() += n;
            }
        }
        for (hard, mut s) in parsed {
            s.min_count = s.counts.values().copied().min().unwrap_or(0);
            if (s.counts.len() as i64) < s.min_domains {
                s.min_count = 0;
            }
            s.weight = ((s.counts.len() + 2) as f64).ln();
            if hard {
                self.hard_spread.push(s);
            } else {
                self.soft_spread.push(s);
            }
        }
    }

    fn prepare_pod_affinity(&mut self, cache: &Cache) {
        let ns = self.info.namespace.clone();
        let affinity = self.pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        self.affinity_terms = pa
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|t| t.iter().map(|t| AffinityTerm::parse(t, &ns)).collect())
            .unwrap_or_default();
        let anti_terms: Vec<AffinityTerm> = paa
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|t| t.iter().map(|t| AffinityTerm::parse(t, &ns)).collect())
            .unwrap_or_default();
        let weighted = |w: &WeightedPodAffinityTerm, sign: i64| {
            (
                sign * i64::from(w.weight),
                AffinityTerm::parse(&w.pod_affinity_term, &ns),
            )
        };
        self.preferred_pod_terms = pa
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .map(|w| weighted(w, 1))
            .chain(
                paa.and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .into_iter()
                .flatten()
                .map(|w| weighted(w, -1)),
            )
            .collect();
        // Existing pods' anti-affinity against this pod: only the pods that have some.
        for other in cache.anti_affinity_pods.values() {
            let Some(node) = cache.node_of(&other.uid) else {
                continue;
            };
            for t in &other.required_anti_affinity {
                if t.matches(&ns, &self.info.labels)
                    && let Some(v) = node.labels.get(&t.topology_key)
                {
                    self.existing_anti_domains
                        .insert((t.topology_key.clone(), v.clone()));
                }
            }
        }
        if self.affinity_terms.is_empty()
            && anti_terms.is_empty()
            && self.preferred_pod_terms.is_empty()
        {
            return;
        }
        self.affinity_counts = vec![HashMap::new(); self.affinity_terms.len()];
        let mut any_match = false;
        for name in &cache.order {
            let Some(node) = cache.nodes.get(name) else {
                continue;
            };
            for p in node.pods.values() {
                for (i, t) in self.affinity_terms.iter().enumerate() {
                    if t.matches(&p.namespace, &p.labels) {
                        any_match = true;
                        if let Some(v) = node.labels.get(&t.topology_key) {
                            *self.affinity_counts[i].entry(v.clone()).or_default() += 1;
                        }
                    }
                }
                for t in &anti_terms {
                    if t.matches(&p.namespace, &p.labels)
                        && let Some(v) = node.labels.get(&t.topology_key)
                    {
                        self.anti_domains
                            .insert((t.topology_key.clone(), v.clone()));
                    }
                }
                for (w, t) in &self.preferred_pod_terms {
                    if t.matches(&p.namespace, &p.labels)
                        && let Some(v) = node.labels.get(&t.topology_key)
                    {
                        *self
                            .preferred_domain_scores
                            .entry((t.topology_key.clone(), v.clone()))
                            .or_default() += w;
                    }
                }
            }
        }
        self.affinity_bootstrap = !any_match
            && self
                .affinity_terms
                .iter()
                .all(|t| t.matches(&ns, &self.info.labels));
    }

    /// Runs the filters in upstream's order; the first failing plugin's reasons.
    pub fn filter(&self, name: &str, node: &NodeInfo) -> Option<Failure> {
        self.node_unschedulable(node)
            .or_else(|| self.node_name(name))
            .or_else(|| self.taint_toleration(node))
            .or_else(|| self.node_affinity(name, node))
            .or_else(|| self.node_ports(node))
            .or_else(|| self.node_resources_fit(node))
            .or_else(|| self.volume_binding(name, node))
            .or_else(|| self.pod_topology_spread(node))
            .or_else(|| self.inter_pod_affinity(node))
    }

    /// NodeUnschedulable.
    pub fn node_unschedulable(&self, node: &NodeInfo) -> Option<Failure> {
        // Most nodes are schedulable: no taint is built for them (this runs per node
        // and pod).
        if !node.unschedulable {
            return None;
        }
        let taint = Taint {
            key: TAINT_UNSCHEDULABLE.into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        (!tolerated(self.tolerations, &taint)).then(|| Failure::unresolvable(ERR_UNSCHEDULABLE))
    }

    /// NodeName.
    pub fn node_name(&self, name: &str) -> Option<Failure> {
        let want = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        (!want.is_empty() && want != name).then(|| Failure::unresolvable(ERR_NODE_NAME))
    }

    /// TaintToleration: the first NoSchedule or NoExecute taint not tolerated.
    pub fn taint_toleration(&self, node: &NodeInfo) -> Option<Failure> {
        node.taints
            .iter()
            .find(|t| {
                (t.effect == "NoSchedule" || t.effect == "NoExecute")
                    && !tolerated(self.tolerations, t)
            })
            .map(|t| {
                Failure::unresolvable(format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    t.key,
                    t.value.as_deref().unwrap_or("")
                ))
            })
    }

    /// NodeAffinity (nodeSelector and required node affinity).
    pub fn node_affinity(&self, name: &str, node: &NodeInfo) -> Option<Failure> {
        (!self.node_affinity_matches(name, &node.labels))
            .then(|| Failure::unresolvable(ERR_NODE_AFFINITY))
    }

    /// NodePorts.
    pub fn node_ports(&self, node: &NodeInfo) -> Option<Failure> {
        self.info
            .host_ports
            .iter()
            .any(|p| node.port_taken(p))
            .then(|| Failure::unschedulable(ERR_NODE_PORTS))
    }

    /// NodeResourcesFit: requests against allocatable minus what the node's pods
    /// (bound and assumed) request.
    pub fn node_resources_fit(&self, node: &NodeInfo) -> Option<Failure> {
        let mut reasons = Vec::new();
        if node.pods.len() as i64 + 1 > node.allowed_pods {
            reasons.push("Too many pods".to_string());
        }
        let req = &self.info.requests;
        let (alloc, used) = (&node.allocatable, &node.requested);
        if req.milli_cpu > 0 && req.milli_cpu > alloc.milli_cpu - used.milli_cpu {
            reasons.push("Insufficient cpu".into());
        }
        if req.memory > 0 && req.memory > alloc.memory - used.memory {
            reasons.push("Insufficient memory".into());
        }
        if req.ephemeral_storage > 0
            && req.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage
        {
            reasons.push("Insufficient ephemeral-storage".into());
        }
        for (name, want) in &req.scalar {
            if *want <= 0 {
                continue;
            }
            let free = alloc.scalar.get(name).copied().unwrap_or(0)
                - used.scalar.get(name).copied().unwrap_or(0);
            if *want > free {
                reasons.push(format!("Insufficient {name}"));
            }
        }
        (!reasons.is_empty()).then_some(Failure {
            reasons,
            unresolvable: false,
        })
    }

    /// VolumeBinding for bound claims: the node must match each volume's node affinity.
    pub fn volume_binding(&self, name: &str, node: &NodeInfo) -> Option<Failure> {
        self.volume_selectors
            .iter()
            .any(|sel| !selector_matches(sel, name, &node.labels))
            .then(|| Failure::unresolvable(ERR_VOLUME_NODE_AFFINITY))
    }

    /// PodTopologySpread, hard constraints.
    pub fn pod_topology_spread(&self, node: &NodeInfo) -> Option<Failure> {
        for s in &self.hard_spread {
            let Some(value) = node.labels.get(&s.topology_key) else {
                return Some(Failure::unresolvable(ERR_SPREAD_LABEL));
            };
            let count = s.counts.get(value).copied().unwrap_or(0);
            if count + s.self_match - s.min_count > s.max_skew {
                return Some(Failure::unschedulable(ERR_SPREAD));
            }
        }
        None
    }

    /// InterPodAffinity, required terms.
    pub fn inter_pod_affinity(&self, node: &NodeInfo) -> Option<Failure> {
        if !self.affinity_bootstrap {
            for (t, counts) in self.affinity_terms.iter().zip(&self.affinity_counts) {
                let ok = node
                    .labels
                    .get(&t.topology_key)
                    .is_some_and(|v| counts.get(v).copied().unwrap_or(0) > 0);
                if !ok {
                    return Some(Failure::unresolvable(ERR_AFFINITY));
                }
            }
        } else if self
            .affinity_terms
            .iter()
            .any(|t| !node.labels.contains_key(&t.topology_key))
        {
            return Some(Failure::unresolvable(ERR_AFFINITY));
        }
        let in_domain = |set: &HashSet<(String, String)>| {
            !set.is_empty()
                && node
                    .labels
                    .iter()
                    .any(|(k, v)| set.contains(&(k.clone(), v.clone())))
        };
        if in_domain(&self.anti_domains) {
            return Some(Failure::unschedulable(ERR_ANTI_AFFINITY));
        }
        if in_domain(&self.existing_anti_domains) {
            return Some(Failure::unschedulable(ERR_EXISTING_ANTI_AFFINITY));
        }
        None
    }

    /// The weighted, normalized sum of the score plugins for each feasible node
    /// (upstream's default weights: TaintToleration 3, NodeAffinity 2,
    /// PodTopologySpread 2, InterPodAffinity 2, NodeResourcesFit 1,
    /// NodeResourcesBalancedAllocation 1).
    pub fn score(&self, nodes: &[&NodeInfo], names: &[&str]) -> Vec<i64> {
        let n = nodes.len();
        let mut total = vec![0i64; n];
        // NodeResourcesFit (LeastAllocated) and BalancedAllocation need no normalizing.
        for (i, node) in nodes.iter().enumerate() {
            total[i] += self.least_allocated(node) + self.balanced_allocation(node);
        }
        // TaintToleration: fewer untolerated PreferNoSchedule taints is better.
        let taints: Vec<i64> = nodes
            .iter()
            .map(|n| self.prefer_no_schedule_count(n))
            .collect();
        add_normalized(&mut total, &taints, true, 3);
        if !self.preferred_node_affinity.is_empty() {
            let scores: Vec<i64> = nodes
                .iter()
                .zip(names)
                .map(|(node, name)| {
                    self.preferred_node_affinity
                        .iter()
                        .filter(|p| term_matches(&p.preference, name, &node.labels))
                        .map(|p| i64::from(p.weight))
                        .sum()
                })
                .collect();
            add_normalized(&mut total, &scores, false, 2);
        }
        if !self.preferred_pod_terms.is_empty() {
            let scores: Vec<i64> = nodes
                .iter()
                .map(|node| {
                    node.labels
                        .iter()
                        .filter_map(|(k, v)| {
                            self.preferred_domain_scores.get(&(k.clone(), v.clone()))
                        })
                        .sum()
                })
                .collect();
            let (min, max) = (
                scores.iter().copied().min().unwrap_or(0),
                scores.iter().copied().max().unwrap_or(0),
            );
            for (t, s) in total.iter_mut().zip(&scores) {
                if max > min {
                    *t += 2 * MAX_NODE_SCORE * (s - min) / (max - min);
                }
            }
        }
        if !self.soft_spread.is_empty() {
            let scores: Vec<Option<f64>> = nodes
                .iter()
                .map(|node| {
                    let mut score = 0.0;
                    for s in &self.soft_spread {
                        let value = node.labels.get(&s.topology_key)?;
                        let count = s.counts.get(value).copied().unwrap_or(0) as f64;
                        score += count * s.weight + (s.max_skew - 1) as f64;
                    }
                    Some(score.round())
                })
                .collect();
            let present = scores.iter().flatten();
            let max = present.clone().fold(0.0f64, |a, b| a.max(*b));
            let min = present.fold(f64::MAX, |a, b| a.min(*b));
            for (t, s) in total.iter_mut().zip(&scores) {
                let v = match s {
                    None => 0,
                    Some(_) if max == 0.0 => MAX_NODE_SCORE,
                    Some(s) => (MAX_NODE_SCORE as f64 * (max + min - s) / max) as i64,
                };
                *t += 2 * v;
            }
        }
        if let Some(d) = &self.default_spread {
            let scores: Vec<f64> = nodes
                .iter()
                .map(|node| {
                    let mut score = 0.0;
                    if node.labels.contains_key(HOSTNAME_LABEL) {
                        let count = node.owners.get(&d.owner).copied().unwrap_or(0);
                        score += f64::from(count) * d.host_weight + 2.0;
                    }
                    if let Some(zone) = node.labels.get(ZONE_LABEL) {
                        let count = d.zone_counts.get(zone).copied().unwrap_or(0);
                        score += count as f64 * d.zone_weight + 4.0;
                    }
                    score.round()
                })
                .collect();
            let max = scores.iter().fold(0.0f64, |a, b| a.max(*b));
            let min = scores.iter().fold(f64::MAX, |a, b| a.min(*b));
            for (t, s) in total.iter_mut().zip(&scores) {
                *t += 2 * if max == 0.0 {
                    MAX_NODE_SCORE
                } else {
                    (MAX_NODE_SCORE as f64 * (max + min - s) / max) as i64
                };
            }
        }
        total
    }

    /// NodeResourcesFit's LeastAllocated score (cpu and memory, weight 1 each).
    pub fn least_allocated(&self, node: &NodeInfo) -> i64 {
        let part = |requested: i64, alloc: i64| {
            if alloc <= 0 || requested > alloc {
                0
            } else {
                (alloc - requested) * MAX_NODE_SCORE / alloc
            }
        };
        let cpu = part(
            node.nonzero_milli_cpu + self.info.nonzero_milli_cpu,
            node.allocatable.milli_cpu,
        );
        let mem = part(
            node.nonzero_memory + self.info.nonzero_memory,
            node.allocatable.memory,
        );
        (cpu + mem) / 2
    }

    /// NodeResourcesBalancedAllocation: how evenly cpu and memory would be used.
    pub fn balanced_allocation(&self, node: &NodeInfo) -> i64 {
        let frac = |requested: i64, alloc: i64| {
            if alloc <= 0 {
                1.0
            } else {
                (requested as f64 / alloc as f64).min(1.0)
            }
        };
        let cpu = frac(
            node.requested.milli_cpu + self.info.requests.milli_cpu,
            node.allocatable.milli_cpu,
        );
        let mem = frac(
            node.requested.memory + self.info.requests.memory,
            node.allocatable.memory,
        );
        let std = (cpu - mem).abs() / 2.0;
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }

    fn prefer_no_schedule_count(&self, node: &NodeInfo) -> i64 {
        if node.taints.is_empty() {
            return 0;
        }
        let prefer: Vec<Toleration> = self
            .tolerations
            .iter()
            .filter(|t| {
                t.effect
                    .as_deref()
                    .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
            })
            .cloned()
            .collect();
        node.taints
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule" && !tolerated(&prefer, t))
            .count() as i64
    }
}

/// Upstream's `DefaultNormalizeScore` (scaled to 0..100 by the maximum, reversed when
/// lower is better), weighted and added.
fn add_normalized(total: &mut [i64], scores: &[i64], reverse: bool, weight: i64) {
    let max = scores.iter().copied().max().unwrap_or(0);
    for (t, s) in total.iter_mut().zip(scores) {
        let v = if max == 0 {
            if reverse { MAX_NODE_SCORE } else { 0 }
        } else {
            let v = MAX_NODE_SCORE * s / max;
            if reverse { MAX_NODE_SCORE - v } else { v }
        };
        *t += weight * v;
    }
}

/// Upstream's `FitError` message: `0/N nodes are available: <sorted reason counts>.`,
/// then the preemption outcome.
pub fn fit_error_message(num_nodes: usize, failures: &[Failure], preemption: &str) -> String {
    let mut msg = format!("0/{num_nodes} nodes are available:");
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in failures {
        for r in &f.reasons {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    if !parts.is_empty() {
        msg.push_str(&format!(" {}.", parts.join(", ")));
    }
    if !preemption.is_empty() {
        msg.push(' ');
        msg.push_str(preemption);
    }
    msg
}

/// DefaultPreemption's message when it finds nothing to evict: per node, whether
/// evicting could help at all.
pub fn preemption_message(num_nodes: usize, failures: &[Failure], never: bool) -> String {
    if never {
        return "preemption: not eligible due to preemptionPolicy=Never.".to_string();
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in failures {
        let why = if f.unresolvable {
            "Preemption is not helpful for scheduling"
        } else {
            "No preemption victims found for incoming pod"
        };
        *counts.entry(why).or_default() += 1;
    }
    let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    format!(
        "preemption: 0/{num_nodes} nodes are available: {}.",
        parts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::{Value, json};

    use super::*;
    use crate::cache::{Cache, PodInfo};
    use crate::{Outcome, schedule};

    fn node(name: &str, extra: Value) -> Node {
        let mut n = json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}},
        });
        merge(&mut n, extra);
        serde_json::from_value(n).expect("a node")
    }

    fn pod(name: &str, extra: Value) -> Pod {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        });
        merge(&mut p, extra);
        serde_json::from_value(p).expect("a pod")
    }

    fn merge(base: &mut Value, extra: Value) {
        match (base, extra) {
            (Value::Object(b), Value::Object(e)) => {
                for (k, v) in e {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
            (b, e) => *b = e,
        }
    }

    fn cpu(q: &str) -> Value {
        json!({"spec": {"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": q}}}]}})
    }

    fn cache_of(nodes: Vec<Node>) -> Cache {
        let mut c = Cache::default();
        for n in nodes {
            c.set_node(n);
        }
        c
    }

    fn place(c: &mut Cache, p: &Pod, node: &str) {
        c.add_pod(std::sync::Arc::new(PodInfo::new(p)), node);
    }

    fn fail(c: &Cache, p: &Pod, node: &str) -> Option<Failure> {
        let cycle = Cycle::new(p, c);
        cycle.filter(node, &c.nodes[node])
    }

    fn reason(c: &Cache, p: &Pod, node: &str) -> String {
        fail(c, p, node)
            .map(|f| f.reasons.join("; "))
            .unwrap_or_default()
    }

    #[test]
    fn node_unschedulable_unless_tolerated() {
        let c = cache_of(vec![node("n", json!({"spec": {"unschedulable": true}}))]);
        assert_eq!(reason(&c, &pod("p", json!({})), "n"), ERR_UNSCHEDULABLE);
        let tolerant = pod(
            "p",
            json!({"spec": {"tolerations": [
            {"key": TAINT_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"}]}}),
        );
        assert_eq!(reason(&c, &tolerant, "n"), "");
    }

    #[test]
    fn node_name_must_match() {
        let c = cache_of(vec![node("n", json!({}))]);
        assert_eq!(
            reason(&c, &pod("p", json!({"spec": {"nodeName": "m"}})), "n"),
            ERR_NODE_NAME
        );
        assert_eq!(
            reason(&c, &pod("p", json!({"spec": {"nodeName": "n"}})), "n"),
            ""
        );
    }

    #[test]
    fn taints_need_tolerations() {
        let c = cache_of(vec![node(
            "n",
            json!({"spec": {"taints": [
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
            {"key": "soft", "effect": "PreferNoSchedule"}]}}),
        )]);
        let f = fail(&c, &pod("p", json!({})), "n").expect("refused");
        assert_eq!(
            f.reasons,
            vec!["node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"]
        );
        assert!(f.unresolvable);
        let t = pod(
            "p",
            json!({"spec": {"tolerations": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}}),
        );
        assert_eq!(reason(&c, &t, "n"), "");
        let c = cache_of(vec![node(
            "n",
            json!({"spec": {"taints": [
            {"key": "dedicated", "value": "gpu", "effect": "NoExecute"}]}}),
        )]);
        assert_eq!(
            reason(&c, &pod("p", json!({})), "n"),
            "node(s) had untolerated taint {dedicated: gpu}"
        );
        let wrong = pod(
            "p",
            json!({"spec": {"tolerations": [
            {"key": "dedicated", "value": "cpu", "effect": "NoExecute"}]}}),
        );
        assert!(!reason(&c, &wrong, "n").is_empty());
        let right = pod(
            "p",
            json!({"spec": {"tolerations": [{"operator": "Exists"}]}}),
        );
        assert_eq!(reason(&c, &right, "n"), "");
    }

    #[test]
    fn node_selector_and_affinity() {
        let c = cache_of(vec![node(
            "n",
            json!({"metadata": {"labels": {"disk": "ssd", "gen": "5"}}}),
        )]);
        let sel = |v: &str| pod("p", json!({"spec": {"nodeSelector": {"disk": v}}}));
        assert_eq!(reason(&c, &sel("ssd"), "n"), "");
        assert_eq!(reason(&c, &sel("hdd"), "n"), ERR_NODE_AFFINITY);
        let aff = |expr: Value| {
            pod(
                "p",
                json!({"spec": {"affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [expr]}]}}}}}),
            )
        };
        assert_eq!(
            reason(
                &c,
                &aff(json!({"key": "gen", "operator": "Gt", "values": ["4"]})),
                "n"
            ),
            ""
        );
        assert_eq!(
            reason(
                &c,
                &aff(json!({"key": "gen", "operator": "Lt", "values": ["4"]})),
                "n"
            ),
            ERR_NODE_AFFINITY
        );
        assert_eq!(
            reason(
                &c,
                &aff(json!({"key": "zone", "operator": "DoesNotExist"})),
                "n"
            ),
            ""
        );
        assert_eq!(
            reason(
                &c,
                &aff(json!({"key": "disk", "operator": "NotIn", "values": ["ssd"]})),
                "n"
            ),
            ERR_NODE_AFFINITY
        );
        let by_name = pod(
            "p",
            json!({"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}]}}}}}),
        );
        assert_eq!(reason(&c, &by_name, "n"), "");
    }

    #[test]
    fn host_ports_conflict() {
        let mut c = cache_of(vec![node("n", json!({}))]);
        let ports = |port: i32, ip: &str| {
            json!({"spec": {"containers": [{"name": "c", "image": "i",
                "ports": [{"containerPort": 80, "hostPort": port, "hostIP": ip}]}]}})
        };
        place(&mut c, &pod("a", ports(8080, "")), "n");
        assert_eq!(
            reason(&c, &pod("b", ports(8080, "10.0.0.1")), "n"),
            ERR_NODE_PORTS
        );
        assert_eq!(reason(&c, &pod("b", ports(8081, "")), "n"), "");
    }

    #[test]
    fn resources_fit_counts_pods_init_containers_and_overhead() {
        let mut c = cache_of(vec![node(
            "n",
            json!({"status": {"allocatable": {"pods": "2"}}}),
        )]);
        place(&mut c, &pod("a", cpu("1500m")), "n");
        assert_eq!(reason(&c, &pod("b", cpu("500m")), "n"), "");
        assert_eq!(reason(&c, &pod("b", cpu("600m")), "n"), "Insufficient cpu");
        let init = pod(
            "b",
            json!({"spec": {"initContainers": [{"name": "i", "image": "i",
            "resources": {"requests": {"cpu": "1", "memory": "5Gi"}}}]}}),
        );
        assert_eq!(
            reason(&c, &init, "n"),
            "Insufficient cpu; Insufficient memory"
        );
        let overhead = pod("b", json!({"spec": {"overhead": {"cpu": "600m"}}}));
        assert_eq!(reason(&c, &overhead, "n"), "Insufficient cpu");
        place(&mut c, &pod("z", json!({})), "n");
        assert_eq!(reason(&c, &pod("b", json!({})), "n"), "Too many pods");
        let gpu = pod(
            "g",
            json!({"spec": {"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"example.com/gpu": "1"}}}]}}),
        );
        let c = cache_of(vec![node("n", json!({}))]);
        assert_eq!(reason(&c, &gpu, "n"), "Insufficient example.com/gpu");
    }

    #[test]
    fn topology_spread_hard() {
        let zone = |n: &str, z: &str| node(n, json!({"metadata": {"labels": {"zone": z}}}));
        let mut c = cache_of(vec![zone("a", "z1"), zone("b", "z2"), node("x", json!({}))]);
        let web = json!({"metadata": {"labels": {"app": "web"}}});
        place(&mut c, &pod("w1", web.clone()), "a");
        let spread = pod(
            "p",
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "web"}}}]}}),
        );
        assert_eq!(reason(&c, &spread, "a"), ERR_SPREAD);
        assert_eq!(reason(&c, &spread, "b"), "");
        assert_eq!(reason(&c, &spread, "x"), ERR_SPREAD_LABEL);
    }

    #[test]
    fn inter_pod_affinity_and_anti_affinity() {
        let mut c = cache_of(vec![node("a", json!({})), node("b", json!({}))]);
        place(
            &mut c,
            &pod("db", json!({"metadata": {"labels": {"app": "db"}}})),
            "a",
        );
        let term = json!({"labelSelector": {"matchLabels": {"app": "db"}},
                          "topologyKey": "kubernetes.io/hostname"});
        let with = pod(
            "p",
            json!({"spec": {"affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term.clone()]}}}}),
        );
        assert_eq!(reason(&c, &with, "a"), "");
        assert_eq!(reason(&c, &with, "b"), ERR_AFFINITY);
        let away = pod(
            "p",
            json!({"spec": {"affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term.clone()]}}}}),
        );
        assert_eq!(reason(&c, &away, "a"), ERR_ANTI_AFFINITY);
        assert_eq!(reason(&c, &away, "b"), "");
        // An existing pod's anti-affinity keeps matching pods off its node.
        let loner = pod(
            "loner",
            json!({"spec": {"affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}},
                 "topologyKey": "kubernetes.io/hostname"}]}}}}),
        );
        place(&mut c, &loner, "b");
        let web = pod("w", json!({"metadata": {"labels": {"app": "web"}}}));
        assert_eq!(reason(&c, &web, "b"), ERR_EXISTING_ANTI_AFFINITY);
        assert_eq!(reason(&c, &web, "a"), "");
        // The first pod of a group that selects itself may go anywhere.
        let c = cache_of(vec![node("a", json!({}))]);
        let first = pod(
            "p",
            json!({"metadata": {"labels": {"app": "db"}}, "spec": {"affinity": {
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}}}),
        );
        assert_eq!(reason(&c, &first, "a"), "");
    }

    #[test]
    fn scores_prefer_free_balanced_untainted_and_preferred_nodes() {
        let mut c = cache_of(vec![node("busy", json!({})), node("idle", json!({}))]);
        place(&mut c, &pod("a", cpu("1")), "busy");
        let p = pod("p", cpu("100m"));
        let cycle = Cycle::new(&p, &c);
        assert!(cycle.least_allocated(&c.nodes["idle"]) > cycle.least_allocated(&c.nodes["busy"]));
        let mut next = 0;
        for _ in 0..5 {
            assert!(matches!(schedule(&p, &c, &mut next), Outcome::Node(n) if n == "idle"));
        }
        let c = cache_of(vec![
            node(
                "soft",
                json!({"spec": {"taints": [{"key": "k", "effect": "PreferNoSchedule"}]}}),
            ),
            node("plain", json!({})),
        ]);
        for _ in 0..5 {
            assert!(matches!(schedule(&p, &c, &mut next), Outcome::Node(n) if n == "plain"));
        }
        let c = cache_of(vec![
            node("ssd", json!({"metadata": {"labels": {"disk": "ssd"}}})),
            node("hdd", json!({})),
        ]);
        let prefers = pod(
            "p",
            json!({"spec": {"affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "preference": {
                "matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}}}),
        );
        for _ in 0..5 {
            assert!(matches!(schedule(&prefers, &c, &mut next), Outcome::Node(n) if n == "ssd"));
        }
    }

    #[test]
    fn the_failure_message_is_upstreams() {
        let c = cache_of(vec![
            node(
                "cp",
                json!({"spec": {"taints": [
                {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
            ),
            node("w1", json!({"status": {"allocatable": {"cpu": "1"}}})),
            node("w2", json!({"status": {"allocatable": {"cpu": "1"}}})),
        ]);
        let mut next = 0;
        let Outcome::Unschedulable(msg) = schedule(&pod("big", cpu("2")), &c, &mut next) else {
            panic!("scheduled");
        };
        assert_eq!(
            msg,
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        );
        let never = pod(
            "big",
            json!({"spec": {"preemptionPolicy": "Never",
            "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "2"}}}]}}),
        );
        let Outcome::Unschedulable(msg) = schedule(&never, &c, &mut next) else {
            panic!("scheduled");
        };
        assert!(
            msg.ends_with(
                "2 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
            ),
            "{msg}"
        );
        let Outcome::Unschedulable(msg) =
            schedule(&pod("p", json!({})), &Cache::default(), &mut next)
        else {
            panic!("scheduled");
        };
        assert_eq!(msg, crate::NO_NODES_MSG);
    }

    #[test]
    fn preemption_picks_the_least_important_victims() {
        let mut c = cache_of(vec![
            node("a", json!({"status": {"allocatable": {"cpu": "1"}}})),
            node("b", json!({"status": {"allocatable": {"cpu": "1"}}})),
            node(
                "t",
                json!({"spec": {"taints": [{"key": "x", "effect": "NoSchedule"}]}}),
            ),
        ]);
        let prio = |name: &str, p: i32, q: &str| {
            pod(
                name,
                json!({"spec": {"priority": p, "containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": q}}}]}}),
            )
        };
        place(&mut c, &prio("a-mid", 50, "600m"), "a");
        place(&mut c, &prio("b-low", 10, "400m"), "b");
        place(&mut c, &prio("b-lower", 5, "400m"), "b");
        let mut next = 0;
        let Outcome::Preempt {
            message,
            node,
            victims,
        } = schedule(&prio("p", 100, "500m"), &c, &mut next)
        else {
            panic!("no preemption");
        };
        assert_eq!(node, "b");
        // Evicting one of b's pods is enough; the less important one goes.
        let names: Vec<&str> = victims.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, vec!["b-lower"]);
        assert_eq!(
            message,
            "0/3 nodes are available: 1 node(s) had untolerated taint {x: }, 2 Insufficient cpu."
        );
        // Nothing of lower priority: the full message.
        let Outcome::Unschedulable(msg) = schedule(&prio("q", 1, "500m"), &c, &mut next) else {
            panic!("scheduled or preempted");
        };
        assert!(msg.ends_with("preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."), "{msg}");
    }

    #[test]
    fn claims_must_exist_and_bound_volumes_pin_nodes() {
        let mut c = cache_of(vec![node("a", json!({})), node("b", json!({}))]);
        let with_claim = pod(
            "p",
            json!({"spec": {"volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}),
        );
        let mut next = 0;
        let Outcome::Unschedulable(msg) = schedule(&with_claim, &c, &mut next) else {
            panic!("scheduled");
        };
        assert_eq!(
            msg,
            "0/2 nodes are available: persistentvolumeclaim \"data\" not found. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
        // Unbound: any node.
        c.claims.insert("default/data".into(), String::new());
        assert_eq!(reason(&c, &with_claim, "a"), "");
        // Bound to a volume only node b reaches.
        c.claims.insert("default/data".into(), "pv1".into());
        let sel: NodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["b"]}]}]}))
        .expect("selector");
        c.volumes.insert("pv1".into(), Some(sel));
        assert_eq!(reason(&c, &with_claim, "a"), ERR_VOLUME_NODE_AFFINITY);
        assert_eq!(reason(&c, &with_claim, "b"), "");
    }

    #[test]
    fn replicas_spread_over_nodes_by_default() {
        let mut c = cache_of(vec![
            node("a", json!({})),
            node("b", json!({})),
            node("c", json!({})),
        ]);
        let replica = |name: &str| {
            pod(
                name,
                json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1",
                "kind": "ReplicaSet", "name": "rs", "uid": "rs-uid", "controller": true}]},
                "spec": {"containers": [{"name": "c", "image": "i",
                    "resources": {"requests": {"cpu": "10m"}}}]}}),
            )
        };
        let mut next = 0;
        for i in 0..9 {
            let p = replica(&format!("r{i}"));
            let Outcome::Node(n) = schedule(&p, &c, &mut next) else {
                panic!("unschedulable");
            };
            place(&mut c, &p, &n);
        }
        for n in ["a", "b", "c"] {
            assert_eq!(c.nodes[n].owners.get("rs-uid"), Some(&3), "{n}");
        }
    }

    #[test]
    fn reason_counts_sort_as_strings() {
        let f = |r: &str, n: usize| vec![Failure::unschedulable(r); n];
        let mut all = f("b", 10);
        all.extend(f("a", 2));
        assert_eq!(
            fit_error_message(12, &all, ""),
            "0/12 nodes are available: 10 b, 2 a."
        );
    }

    #[test]
    fn feasible_nodes_to_find_is_adaptive() {
        assert_eq!(crate::num_feasible_nodes_to_find(50), 50);
        assert_eq!(crate::num_feasible_nodes_to_find(1000), 420);
        assert_eq!(crate::num_feasible_nodes_to_find(5000), 500);
        assert_eq!(crate::num_feasible_nodes_to_find(150), 100);
    }
}

#[cfg(test)]
mod throughput {
    use std::sync::Arc;
    use std::time::Instant;

    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;

    use crate::cache::{Cache, PodInfo};
    use crate::{Outcome, schedule};

    /// The scheduling core alone (filters, scores, assume) at the benchmark's scale:
    /// 1000 nodes, 30 pods each. Prints pods per second; run with
    /// `cargo test -p k1s-scheduler --release core_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn core_throughput() {
        let mut cache = Cache::default();
        for i in 0..1000 {
            let n: Node = serde_json::from_value(json!({
                "metadata": {"name": format!("node-{i:04}"),
                             "labels": {"kubernetes.io/hostname": format!("node-{i:04}"),
                                        "topology.kubernetes.io/zone": format!("z{}", i % 3)}},
                "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"}},
            }))
            .expect("node");
            cache.set_node(n);
        }
        let pods: Vec<Pod> = (0..30_000)
            .map(|i| {
                serde_json::from_value(json!({
                    "metadata": {"name": format!("p{i}"), "namespace": "default",
                                 "uid": format!("u{i}"), "labels": {"app": format!("d{}", i % 300)},
                                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                     "name": format!("d{}", i % 300), "uid": format!("rs{}", i % 300),
                                     "controller": true}]},
                    "spec": {"containers": [{"name": "c", "image": "i",
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
                }))
                .expect("pod")
            })
            .collect();
        let start = Instant::now();
        let mut next = 0;
        for p in &pods {
            match schedule(p, &cache, &mut next) {
                Outcome::Node(n) => cache.add_pod(Arc::new(PodInfo::new(p)), &n),
                _ => panic!("unschedulable"),
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "scheduled {} pods on 1000 nodes in {secs:.2}s: {:.0} pods/s",
            pods.len(),
            pods.len() as f64 / secs
        );
    }
}

//! Node-pressure eviction, as upstream's eviction manager does it: every 10 s the node's
//! signals (`memory.available`, `nodefs.available`, `nodefs.inodesFree`,
//! `imagefs.available`, `imagefs.inodesFree`, `pid.available`) are observed from
//! [`crate::stats`] and compared with the hard and soft thresholds; met thresholds turn the
//! node's MemoryPressure / DiskPressure / PIDPressure conditions on (kept on for the
//! pressure transition period), and once a threshold's grace period has passed one pod is
//! evicted per round: the pods ranked as upstream ranks them (usage above requests first,
//! then lower priority, then larger usage), its containers killed, its status `Failed`
//! with reason `Evicted` and upstream's message. Under disk pressure unused images and
//! dead containers are removed first.
//!
//! Configured as k3s passes kubelet flags: `--kubelet-arg=eviction-hard=…` and friends
//! ([`Config::apply_kubelet_args`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k1s_apimachinery::quantity::{Format, Quantity};
use k8s_openapi::api::core::v1::Pod;
use parking_lot::Mutex;

use crate::stats::{FsStats, NodeStats, PidStats};

/// The pod status reason and event reason of an eviction.
pub const REASON: &str = "Evicted";

/// Upstream's grace period of a pod evicted for a hard threshold (its containers still
/// get the runtime's minimum of 2 s).
const IMMEDIATE_GRACE_SECONDS: i64 = 1;

/// Pods at or above this priority are never evicted (`system-cluster-critical`).
const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// The taint the node lifecycle controller sets under memory pressure.
const MEMORY_PRESSURE_TAINT: &str = "node.kubernetes.io/memory-pressure";

/// The kubelet flags this kubelet accepts through `--kubelet-arg`.
pub const KUBELET_ARGS: [&str; 6] = [
    "eviction-hard",
    "eviction-soft",
    "eviction-soft-grace-period",
    "eviction-minimum-reclaim",
    "eviction-pressure-transition-period",
    "eviction-max-pod-grace-period",
];

/// An eviction signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// `memory.available`: capacity less the node's working set.
    MemoryAvailable,
    /// `nodefs.available`: free bytes of the kubelet's filesystem.
    NodeFsAvailable,
    /// `nodefs.inodesFree`.
    NodeFsInodesFree,
    /// `imagefs.available`: free bytes of the container runtime's filesystem.
    ImageFsAvailable,
    /// `imagefs.inodesFree`.
    ImageFsInodesFree,
    /// `pid.available`: the pid limit less the processes running.
    PidAvailable,
}

impl Signal {
    /// Every signal.
    pub const ALL: [Signal; 6] = [
        Signal::MemoryAvailable,
        Signal::NodeFsAvailable,
        Signal::NodeFsInodesFree,
        Signal::ImageFsAvailable,
        Signal::ImageFsInodesFree,
        Signal::PidAvailable,
    ];

    /// Its name in flags.
    pub fn name(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::ImageFsInodesFree => "imagefs.inodesFree",
            Signal::PidAvailable => "pid.available",
        }
    }

    /// The signal named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The resource it starves (what eviction messages name).
    pub fn resource(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory",
            Signal::NodeFsAvailable | Signal::ImageFsAvailable => "ephemeral-storage",
            Signal::NodeFsInodesFree | Signal::ImageFsInodesFree => "inodes",
            Signal::PidAvailable => "pids",
        }
    }

    /// The node condition it drives.
    pub fn pressure(self) -> Pressure {
        match self {
            Signal::MemoryAvailable => Pressure::Memory,
            Signal::PidAvailable => Pressure::Pid,
            _ => Pressure::Disk,
        }
    }

    fn format(self) -> Format {
        match self {
            Signal::MemoryAvailable | Signal::NodeFsAvailable | Signal::ImageFsAvailable => {
                Format::BinarySI
            }
            _ => Format::DecimalSI,
        }
    }
}

/// A node pressure condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pressure {
    /// `MemoryPressure`.
    Memory,
    /// `DiskPressure`.
    Disk,
    /// `PIDPressure`.
    Pid,
}

impl Pressure {
    /// Every condition, in the order the node lists them.
    pub const ALL: [Pressure; 3] = [Pressure::Memory, Pressure::Disk, Pressure::Pid];

    /// The node condition type.
    pub fn condition_type(self) -> &'static str {
        match self {
            Pressure::Memory => "MemoryPressure",
            Pressure::Disk => "DiskPressure",
            Pressure::Pid => "PIDPressure",
        }
    }

    /// Upstream's reason and message of the condition when `on` (or off), and the
    /// reason of the event posted when it turns so.
    pub fn texts(self, on: bool) -> (&'static str, &'static str, &'static str) {
        match (self, on) {
            (Pressure::Memory, true) => (
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
                "NodeHasInsufficientMemory",
            ),
            (Pressure::Memory, false) => (
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                "NodeHasSufficientMemory",
            ),
            (Pressure::Disk, true) => (
                "KubeletHasDiskPressure",
                "kubelet has disk pressure",
                "NodeHasDiskPressure",
            ),
            (Pressure::Disk, false) => (
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                "NodeHasNoDiskPressure",
            ),
            (Pressure::Pid, true) => (
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available",
                "NodeHasInsufficientPID",
            ),
            (Pressure::Pid, false) => (
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                "NodeHasSufficientPID",
            ),
        }
    }
}

/// A threshold's value: an amount, or a share of the signal's capacity.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An amount (bytes, inodes, pids).
    Quantity(Quantity),
    /// A fraction of the capacity (`10%` is 0.1).
    Percentage(f64),
}

impl Value {
    /// The amount against `capacity`.
    pub fn amount(&self, capacity: i64) -> i64 {
        match self {
            Value::Quantity(q) => q.value(),
            Value::Percentage(p) => (capacity as f64 * p) as i64,
        }
    }

    /// The amount as a quantity, as upstream prints it in messages.
    fn quantity(&self, capacity: i64, format: Format) -> Quantity {
        match self {
            Value::Quantity(q) => q.clone(),
            Value::Percentage(_) => Quantity::from_i64(self.amount(capacity), format),
        }
    }

    fn parse(signal: Signal, text: &str) -> Result<Option<Self>, ConfigError> {
        let text = text.trim();
        if let Some(pct) = text.strip_suffix('%') {
            let p: f64 = pct
                .parse()
                .map_err(|_| ConfigError(format!("invalid percentage {text:?}")))?;
            if p < 0.0 {
                return Err(ConfigError(format!(
                    "eviction percentage threshold {} must be positive: {text}",
                    signal.name()
                )));
            }
            if p > 100.0 {
                return Err(ConfigError(format!(
                    "eviction percentage threshold {} must be less than 100%: {text}",
                    signal.name()
                )));
            }
            // Zero turns the threshold off, as upstream reads it.
            return Ok((p > 0.0).then_some(Value::Percentage(p / 100.0)));
        }
        let q = Quantity::parse(text)
            .map_err(|e| ConfigError(format!("invalid quantity {text:?}: {e}")))?;
        if q.signum() < 0 {
            return Err(ConfigError(format!(
                "eviction threshold {} must be positive: {text}",
                signal.name()
            )));
        }
        Ok((!q.is_zero()).then_some(Value::Quantity(q)))
    }
}

/// One eviction threshold (`signal < value`).
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// What is compared.
    pub signal: Signal,
    /// Met when the signal's available amount is below this.
    pub value: Value,
    /// How long it must be met before pods are evicted; zero for a hard threshold.
    pub grace_period: Duration,
    /// A soft threshold (`eviction-soft`); the others are hard.
    pub soft: bool,
    /// Once met, how much more than `value` must be available before it is resolved.
    pub min_reclaim: Option<Value>,
}

/// A configuration that cannot be used; the text says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// How the eviction manager works.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Hard and soft thresholds.
    pub thresholds: Vec<Threshold>,
    /// How long a pressure condition stays on after its threshold was last met
    /// (`eviction-pressure-transition-period`, 5 min).
    pub pressure_transition_period: Duration,
    /// The grace period of pods evicted for a soft threshold
    /// (`eviction-max-pod-grace-period`; negative: the pod's own).
    pub max_pod_grace_period_seconds: i64,
    /// How often the signals are observed (10 s).
    pub monitoring_interval: Duration,
}

/// The flags k3s gives its kubelet: vanilla's `memory.available` threshold dropped, 5% of
/// the node's and the runtime's filesystem kept free, and 10% more freed once reached.
pub const K3S_DEFAULT_ARGS: [&str; 2] = [
    "eviction-hard=imagefs.available<5%,nodefs.available<5%",
    "eviction-minimum-reclaim=imagefs.available=10%,nodefs.available=10%",
];

impl Config {
    /// The vanilla kubelet's Linux defaults: `memory.available<100Mi`,
    /// `nodefs.available<10%`, `nodefs.inodesFree<5%`, `imagefs.available<15%`.
    pub fn upstream() -> Self {
        let hard = |signal: Signal, v: &str| {
            Value::parse(signal, v)
                .ok()
                .flatten()
                .map(|value| Threshold {
                    signal,
                    value,
                    grace_period: Duration::ZERO,
                    soft: false,
                    min_reclaim: None,
                })
        };
        Self {
            thresholds: [
                hard(Signal::MemoryAvailable, "100Mi"),
                hard(Signal::NodeFsAvailable, "10%"),
                hard(Signal::NodeFsInodesFree, "5%"),
                hard(Signal::ImageFsAvailable, "15%"),
            ]
            .into_iter()
            .flatten()
            .collect(),
            pressure_transition_period: Duration::from_secs(300),
            max_pod_grace_period_seconds: 0,
            monitoring_interval: Duration::from_secs(10),
        }
    }

    /// k3s's kubelet: vanilla's configuration with [`K3S_DEFAULT_ARGS`] applied, then
    /// `args` (`--kubelet-arg` values; a flag given replaces k3s's default of it).
    pub fn k3s(args: &[String]) -> Result<Self, ConfigError> {
        let mut c = Self::upstream();
        let all: Vec<String> = K3S_DEFAULT_ARGS
            .iter()
            .map(|s| s.to_string())
            .chain(args.iter().cloned())
            .collect();
        c.apply_kubelet_args(&all)?;
        Ok(c)
    }
}

impl Default for Config {
    /// k3s's defaults ([`Config::k3s`] without arguments).
    fn default() -> Self {
        Self::k3s(&[]).unwrap_or_else(|_| Self::upstream())
    }
}

/// `a<b,c<d` (or `a=b,c=d` with `sep` `=`) as pairs.
fn parse_map(flag: &str, text: &str, sep: char) -> Result<Vec<(Signal, String)>, ConfigError> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((k, v)) = item.split_once(sep) else {
            return Err(ConfigError(format!(
                "--{flag}: malformed pair {item:?}, expected \"key{sep}value\""
            )));
        };
        let signal = Signal::parse(k.trim())
            .ok_or_else(|| ConfigError(format!("unsupported eviction signal {}", k.trim())))?;
        out.push((signal, v.trim().to_string()));
    }
    Ok(out)
}

/// A Go duration (`5m0s`, `30s`, `1h30m`, `500ms`).
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += Duration::try_from_secs_f64(number * secs).ok()?;
        rest = &rest[unit_end..];
    }
    Some(total)
}

impl Config {
    /// Applies k3s-style `--kubelet-arg` values (`key=value`, an optional leading `--`);
    /// an `eviction-hard` given replaces the default hard thresholds, as upstream's flag
    /// does. Keys other than [`KUBELET_ARGS`] are refused.
    pub fn apply_kubelet_args(&mut self, args: &[String]) -> Result<(), ConfigError> {
        let mut flags: BTreeMap<String, String> = BTreeMap::new();
        for arg in args {
            let arg = arg.trim_start_matches("--");
            let Some((key, value)) = arg.split_once('=') else {
                return Err(ConfigError(format!(
                    "--kubelet-arg {arg:?}: expected \"flag=value\""
                )));
            };
            if !KUBELET_ARGS.contains(&key) {
                return Err(ConfigError(format!(
                    "--kubelet-arg {key:?} is not supported by k1s's kubelet (supported: {})",
                    KUBELET_ARGS.join(", ")
                )));
            }
            // A later value wins, as a repeated kubelet flag does.
            flags.insert(key.to_string(), value.to_string());
        }
        let thresholds = |flag: &str, soft: bool| -> Result<Option<Vec<Threshold>>, ConfigError> {
            let Some(text) = flags.get(flag) else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for (signal, v) in parse_map(flag, text, '<')? {
                if let Some(value) = Value::parse(signal, &v)? {
                    out.retain(|t: &Threshold| t.signal != signal);
                    out.push(Threshold {
                        signal,
                        value,
                        grace_period: Duration::ZERO,
                        soft,
                        min_reclaim: None,
                    });
                }
            }
            Ok(Some(out))
        };
        let mut all: Vec<Threshold> = match thresholds("eviction-hard", false)? {
            Some(hard) => hard,
            None => self
                .thresholds
                .iter()
                .filter(|t| !t.soft)
                .cloned()
                .collect(),
        };
        let soft = thresholds("eviction-soft", true)?;
        let graces = match flags.get("eviction-soft-grace-period") {
            Some(text) => parse_map("eviction-soft-grace-period", text, '=')?,
            None => Vec::new(),
        };
        let mut soft = match soft {
            Some(s) => s,
            None => self.thresholds.iter().filter(|t| t.soft).cloned().collect(),
        };
        for (signal, text) in &graces {
            let d = parse_go_duration(text).ok_or_else(|| {
                ConfigError(format!(
                    "invalid grace period {text:?} for {}",
                    signal.name()
                ))
            })?;
            let Some(t) = soft.iter_mut().find(|t| t.signal == *signal) else {
                return Err(ConfigError(format!(
                    "grace period specified for {} but it has no soft eviction threshold",
                    signal.name()
                )));
            };
            t.grace_period = d;
        }
        for t in &soft {
            if !graces.iter().any(|(s, _)| *s == t.signal) && t.grace_period.is_zero() {
                return Err(ConfigError(format!(
                    "grace period must be specified for the soft eviction threshold {}",
                    t.signal.name()
                )));
            }
        }
        all.extend(soft);
        if let Some(text) = flags.get("eviction-minimum-reclaim") {
            for (signal, v) in parse_map("eviction-minimum-reclaim", text, '=')? {
                let value = Value::parse(signal, &v)?;
                for t in all.iter_mut().filter(|t| t.signal == signal) {
                    t.min_reclaim = value.clone();
                }
            }
        }
        if let Some(text) = flags.get("eviction-pressure-transition-period") {
            self.pressure_transition_period = parse_go_duration(text).ok_or_else(|| {
                ConfigError(format!(
                    "--eviction-pressure-transition-period: invalid duration {text:?}"
                ))
            })?;
        }
        if let Some(text) = flags.get("eviction-max-pod-grace-period") {
            self.max_pod_grace_period_seconds = text.trim().parse().map_err(|_| {
                ConfigError(format!(
                    "--eviction-max-pod-grace-period: invalid integer {text:?}"
                ))
            })?;
        }
        self.thresholds = all;
        Ok(())
    }

    /// The hard threshold of `signal`, if any.
    pub fn hard(&self, signal: Signal) -> Option<&Threshold> {
        self.thresholds
            .iter()
            .find(|t| t.signal == signal && !t.soft)
    }
}

/// What a signal reads now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// What is available.
    pub available: i64,
    /// The whole (for percentage thresholds).
    pub capacity: i64,
}

/// Every signal observed, by signal.
pub type Observations = BTreeMap<Signal, Observation>;

/// The signals of the node's stats: memory from the node's working set (capacity less
/// it, as cadvisor reports `availableBytes`), the filesystems from statfs, pids from the
/// kernel's limit less the processes running.
pub fn observe(
    node: Option<&NodeStats>,
    nodefs: Option<&FsStats>,
    imagefs: Option<&FsStats>,
    pids: Option<&PidStats>,
) -> Observations {
    let mut o = Observations::new();
    let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    if let Some(n) = node {
        o.insert(
            Signal::MemoryAvailable,
            Observation {
                available: i(n
                    .memory_total_bytes
                    .saturating_sub(n.memory_working_set_bytes)),
                capacity: i(n.memory_total_bytes),
            },
        );
    }
    for (fs, bytes, inodes) in [
        (nodefs, Signal::NodeFsAvailable, Signal::NodeFsInodesFree),
        (imagefs, Signal::ImageFsAvailable, Signal::ImageFsInodesFree),
    ] {
        if let Some(f) = fs {
            o.insert(
                bytes,
                Observation {
                    available: i(f.available_bytes),
                    capacity: i(f.capacity_bytes),
                },
            );
            if f.inodes > 0 {
                o.insert(
                    inodes,
                    Observation {
                        available: i(f.inodes_free),
                        capacity: i(f.inodes),
                    },
                );
            }
        }
    }
    if let Some(p) = pids {
        o.insert(
            Signal::PidAvailable,
            Observation {
                available: i(p.max_pids.saturating_sub(p.running)),
                capacity: i(p.max_pids),
            },
        );
    }
    o
}

/// Whether `t` is met by `o` (with its minimum reclaim added when `enforce_min_reclaim`).
fn met(t: &Threshold, o: &Observations, enforce_min_reclaim: bool) -> bool {
    let Some(obs) = o.get(&t.signal) else {
        return false;
    };
    let mut want = t.value.amount(obs.capacity);
    if enforce_min_reclaim && let Some(m) = &t.min_reclaim {
        want = want.saturating_add(m.amount(obs.capacity));
    }
    obs.available < want
}

/// What a round decided to reclaim.
#[derive(Debug, Clone, PartialEq)]
pub struct Reclaim {
    /// The threshold to relieve.
    pub threshold: Threshold,
    /// The resource it starves (`memory`, `ephemeral-storage`, …).
    pub resource: &'static str,
    /// `Threshold quantity: …, available: …. ` of the eviction message.
    pub threshold_met: String,
}

#[derive(Default)]
struct State {
    first_observed: HashMap<usize, Instant>,
    conditions_last_observed: HashMap<Pressure, Instant>,
    met: BTreeSet<usize>,
    conditions: BTreeSet<Pressure>,
}

/// The eviction manager's decisions; shared by the node status (conditions) and the
/// eviction loop.
pub struct Manager {
    config: Config,
    state: Mutex<State>,
}

impl Manager {
    /// A manager with no pressure observed yet.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the node is under `p` (including the transition period).
    pub fn under(&self, p: Pressure) -> bool {
        self.state.lock().conditions.contains(&p)
    }

    /// One round of upstream's `synchronize` on `o` at `now`: updates the conditions and
    /// answers the threshold to reclaim, if one is met past its grace period.
    pub fn synchronize(&self, o: &Observations, now: Instant) -> Option<Reclaim> {
        let mut st = self.state.lock();
        let thresholds = &self.config.thresholds;
        let mut current: BTreeSet<usize> = (0..thresholds.len())
            .filter(|i| met(&thresholds[*i], o, false))
            .collect();
        // Thresholds met last round stay met until their minimum reclaim is satisfied.
        let unresolved: Vec<usize> = st
            .met
            .iter()
            .copied()
            .filter(|i| met(&thresholds[*i], o, true))
            .collect();
        current.extend(unresolved);
        let first_observed: HashMap<usize, Instant> = current
            .iter()
            .map(|i| (*i, st.first_observed.get(i).copied().unwrap_or(now)))
            .collect();
        for i in &current {
            st.conditions_last_observed
                .insert(thresholds[*i].signal.pressure(), now);
        }
        let period = self.config.pressure_transition_period;
        st.conditions = st
            .conditions_last_observed
            .iter()
            .filter(|(_, at)| now.duration_since(**at) < period)
            .map(|(p, _)| *p)
            .collect();
        st.conditions_last_observed
            .retain(|_, at| now.duration_since(*at) < period);
        let due: BTreeSet<usize> = first_observed
            .iter()
            .filter(|(i, at)| now.duration_since(**at) >= thresholds[**i].grace_period)
            .map(|(i, _)| *i)
            .collect();
        st.first_observed = first_observed;
        st.met = due.clone();
        drop(st);
        // Memory first, then the others in configuration order (upstream's
        // byEvictionPriority).
        let mut due: Vec<usize> = due.into_iter().collect();
        due.sort_by_key(|i| thresholds[*i].signal != Signal::MemoryAvailable);
        let i = *due.first()?;
        let threshold = thresholds[i].clone();
        let resource = threshold.signal.resource();
        // The message names the first met threshold of that resource.
        let threshold_met = due
            .iter()
            .map(|j| &thresholds[*j])
            .find(|t| t.signal.resource() == resource)
            .and_then(|t| {
                let obs = o.get(&t.signal)?;
                let format = t.signal.format();
                Some(format!(
                    "Threshold quantity: {}, available: {}. ",
                    t.value.quantity(obs.capacity, format),
                    Quantity::from_i64(obs.available, format)
                ))
            })
            .unwrap_or_default();
        Some(Reclaim {
            threshold,
            resource,
            threshold_met,
        })
    }

    /// Upstream's eviction admission of a new pod: under memory pressure alone, pods
    /// that are not BestEffort, or tolerate the memory-pressure taint, are admitted; under
    /// any other pressure none is; critical pods always are. The error is the rejection
    /// message (`The node had condition: [MemoryPressure]. `).
    pub fn admit(&self, pod: &Pod) -> Result<(), String> {
        let conditions: Vec<Pressure> = Pressure::ALL
            .into_iter()
            .filter(|p| self.under(*p))
            .collect();
        if conditions.is_empty() || is_critical(pod) {
            return Ok(());
        }
        if conditions == [Pressure::Memory] {
            let best_effort = crate::pods::status::qos_class(pod) == "BestEffort";
            let tolerates = pod
                .spec
                .iter()
                .flat_map(|s| s.tolerations.iter().flatten())
                .any(|t| {
                    let effect_ok = t
                        .effect
                        .as_deref()
                        .is_none_or(|e| e.is_empty() || e == "NoSchedule");
                    let key = t.key.as_deref().unwrap_or("");
                    let key_ok = match t.operator.as_deref() {
                        Some("Exists") => key.is_empty() || key == MEMORY_PRESSURE_TAINT,
                        _ => {
                            key == MEMORY_PRESSURE_TAINT
                                && t.value.as_deref().unwrap_or("").is_empty()
                        }
                    };
                    effect_ok && key_ok
                });
            if !best_effort || tolerates {
                return Ok(());
            }
        }
        let names: Vec<&str> = conditions.iter().map(|p| p.condition_type()).collect();
        Err(format!("The node had condition: [{}]. ", names.join(" ")))
    }

    /// Whether thresholds are still met on `o` once their minimum reclaim is counted
    /// (after images and containers were cleaned up).
    pub fn still_met(&self, o: &Observations) -> bool {
        self.config.thresholds.iter().any(|t| met(t, o, true))
    }
}

/// One container's usage and request of the starved resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerUse {
    /// Its name.
    pub name: String,
    /// What it uses (bytes), if known.
    pub usage: Option<i64>,
    /// What it requests, as written (`0` when nothing).
    pub request: Quantity,
}

/// A pod the eviction manager may evict.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// `namespace`, `name`, `uid`.
    pub key: (String, String, String),
    /// `spec.priority` (0 when unset).
    pub priority: i32,
    /// Never evicted: system-critical priority, static or mirror pod.
    pub critical: bool,
    /// The pod's request of the starved resource (bytes).
    pub request: i64,
    /// The pod's usage of it, when its stats were read.
    pub usage: Option<i64>,
    /// Its containers' usage, for the message.
    pub containers: Vec<ContainerUse>,
}

/// Ranks `pods` as upstream ranks them for `signal`: pods without stats first, then
/// those using more than they request, then lower priority, then larger usage above the
/// request. PIDs are ranked by priority alone.
pub fn rank(signal: Signal, pods: &mut [Candidate]) {
    use std::cmp::Ordering;
    pods.sort_by(|a, b| {
        if signal == Signal::PidAvailable {
            return a.priority.cmp(&b.priority);
        }
        let exceeds = |c: &Candidate| c.usage.map(|u| u > c.request);
        let by_stats = match (a.usage, b.usage) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            _ => Ordering::Equal,
        };
        by_stats
            .then_with(|| exceeds(b).cmp(&exceeds(a)))
            .then_with(|| a.priority.cmp(&b.priority))
            .then_with(|| {
                let over = |c: &Candidate| c.usage.unwrap_or(0).saturating_sub(c.request);
                over(b).cmp(&over(a))
            })
    });
}

/// Upstream's eviction message: `The node was low on resource: memory. Threshold
/// quantity: 100Mi, available: 80Mi. Container c was using 90Mi, request is 0, has larger
/// consumption of memory. `
pub fn message(reclaim: &Reclaim, pod: &Candidate) -> String {
    let mut m = format!("The node was low on resource: {}. ", reclaim.resource);
    m.push_str(&reclaim.threshold_met);
    for c in &pod.containers {
        if let Some(usage) = c.usage
            && usage > c.request.value()
        {
            m.push_str(&format!(
                "Container {} was using {}, request is {}, has larger consumption of {}. ",
                c.name,
                Quantity::from_i64(usage, reclaim.threshold.signal.format()),
                c.request,
                reclaim.resource
            ));
        }
    }
    m
}

/// A pod never evicted: system-critical priority, or a static or mirror pod.
pub fn is_critical(pod: &Pod) -> bool {
    let priority = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
    let annotations = pod.metadata.annotations.as_ref();
    let static_pod = annotations
        .and_then(|a| a.get("kubernetes.io/config.source"))
        .is_some_and(|s| s != "api");
    let mirror = annotations.is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    priority >= SYSTEM_CRITICAL_PRIORITY || static_pod || mirror
}

/// The grace period of a pod evicted for `threshold`.
pub fn grace_period(config: &Config, threshold: &Threshold, pod: &Pod) -> i64 {
    if !threshold.soft {
        return IMMEDIATE_GRACE_SECONDS;
    }
    let own = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    if config.max_pod_grace_period_seconds < 0 {
        own
    } else {
        config.max_pod_grace_period_seconds.min(own)
    }
}

/// A pod's request of `resource` (sum of its containers'), in bytes.
pub fn pod_request(pod: &Pod, resource: &str) -> (i64, Vec<(String, Quantity)>) {
    let mut total = 0i64;
    let mut per = Vec::new();
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        let q = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource))
            .and_then(|q| Quantity::parse(&q.0).ok())
            .unwrap_or_else(|| Quantity::from_i64(0, Format::DecimalSI));
        total = total.saturating_add(q.value());
        per.push((c.name.clone(), q));
    }
    (total, per)
}

/// Where the node's filesystems are: the kubelet's folder (nodefs) and the container
/// runtime's (imagefs; the same filesystem unless on another device).
#[derive(Debug, Clone)]
pub struct Filesystems {
    /// The kubelet's root folder.
    pub nodefs: PathBuf,
    /// The container runtime's root folder, when known.
    pub imagefs: Option<PathBuf>,
}

impl Filesystems {
    /// The statfs of both; imagefs is nodefs's when not given.
    pub fn stats(&self) -> (Option<FsStats>, Option<FsStats>) {
        let node = crate::stats::fs_stats(&self.nodefs);
        let image = self
            .imagefs
            .as_deref()
            .and_then(crate::stats::fs_stats)
            .or(node);
        (node, image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_are_k3s_ones() {
        let c = Config::default();
        assert_eq!(c.thresholds.len(), 2);
        let t = c.hard(Signal::ImageFsAvailable).expect("imagefs");
        assert_eq!(t.value.amount(1000), 50);
        assert_eq!(t.min_reclaim.as_ref().map(|v| v.amount(1000)), Some(100));
        assert!(c.hard(Signal::MemoryAvailable).is_none());
        // A flag given replaces k3s's default of it, as k3s merges its kubelet args.
        let c = Config::k3s(&args(&["eviction-hard=memory.available<1000Ti"])).expect("valid");
        assert_eq!(c.thresholds.len(), 1);
        assert!(c.hard(Signal::MemoryAvailable).is_some());
    }

    #[test]
    fn upstream_defaults_are_upstreams() {
        let c = Config::upstream();
        let names: Vec<_> = c.thresholds.iter().map(|t| t.signal.name()).collect();
        assert_eq!(
            names,
            [
                "memory.available",
                "nodefs.available",
                "nodefs.inodesFree",
                "imagefs.available"
            ]
        );
        assert_eq!(
            c.hard(Signal::MemoryAvailable).map(|t| t.value.amount(0)),
            Some(100 * 1024 * 1024)
        );
        assert_eq!(
            c.hard(Signal::NodeFsAvailable)
                .map(|t| t.value.amount(1000)),
            Some(100)
        );
        assert_eq!(c.pressure_transition_period, Duration::from_secs(300));
    }

    #[test]
    fn kubelet_args_replace_hard_add_soft_and_refuse_unknown_keys() {
        let mut c = Config::upstream();
        c.apply_kubelet_args(&args(&[
            "eviction-hard=memory.available<1Gi,nodefs.available<5%",
            "--eviction-soft=memory.available<2Gi",
            "eviction-soft-grace-period=memory.available=1m30s",
            "eviction-minimum-reclaim=memory.available=500Mi",
            "eviction-pressure-transition-period=30s",
        ]))
        .expect("valid");
        assert_eq!(c.thresholds.len(), 3);
        let soft = c.thresholds.iter().find(|t| t.soft).expect("soft");
        assert_eq!(soft.grace_period, Duration::from_secs(90));
        assert_eq!(
            soft.min_reclaim.as_ref().map(|v| v.amount(0)),
            Some(500 * 1024 * 1024)
        );
        assert_eq!(c.pressure_transition_period, Duration::from_secs(30));
        assert!(c.hard(Signal::ImageFsAvailable).is_none());

        let err = |a: &[&str]| {
            Config::upstream()
                .apply_kubelet_args(&args(a))
                .expect_err("invalid")
                .0
        };
        assert!(err(&["max-pods=10"]).starts_with("--kubelet-arg \"max-pods\" is not supported"));
        assert_eq!(
            err(&["eviction-hard=memory.free<1Gi"]),
            "unsupported eviction signal memory.free"
        );
        assert_eq!(
            err(&["eviction-soft=memory.available<1Gi"]),
            "grace period must be specified for the soft eviction threshold memory.available"
        );
        assert!(err(&["eviction-hard=nodefs.available<120%"]).contains("less than 100%"));
        // Zero turns a threshold off.
        let mut c = Config::upstream();
        c.apply_kubelet_args(&args(&["eviction-hard=memory.available<0"]))
            .expect("valid");
        assert!(c.thresholds.is_empty());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5m0s"), Some(Duration::from_secs(300)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("5"), None);
    }

    fn obs(available: i64, capacity: i64) -> Observations {
        [(
            Signal::MemoryAvailable,
            Observation {
                available,
                capacity,
            },
        )]
        .into()
    }

    #[test]
    fn hard_thresholds_reclaim_at_once_and_conditions_outlive_them() {
        let mut config = Config::upstream();
        config
            .apply_kubelet_args(&args(&[
                "eviction-hard=memory.available<100Mi",
                "eviction-pressure-transition-period=1m",
            ]))
            .expect("valid");
        let m = Manager::new(config);
        let t0 = Instant::now();
        let mib = 1024 * 1024;
        assert!(m.synchronize(&obs(200 * mib, 1024 * mib), t0).is_none());
        assert!(!m.under(Pressure::Memory));
        let r = m
            .synchronize(&obs(80 * mib, 1024 * mib), t0 + Duration::from_secs(10))
            .expect("reclaim");
        assert_eq!(r.resource, "memory");
        assert_eq!(
            r.threshold_met,
            "Threshold quantity: 100Mi, available: 80Mi. "
        );
        assert!(m.under(Pressure::Memory));
        assert!(!m.under(Pressure::Disk));
        // Relieved: the condition stays for the transition period, nothing to reclaim.
        assert!(
            m.synchronize(&obs(500 * mib, 1024 * mib), t0 + Duration::from_secs(20))
                .is_none()
        );
        assert!(m.under(Pressure::Memory));
        assert!(
            m.synchronize(&obs(500 * mib, 1024 * mib), t0 + Duration::from_secs(80))
                .is_none()
        );
        assert!(!m.under(Pressure::Memory));
    }

    #[test]
    fn soft_thresholds_wait_for_their_grace_period() {
        let mut config = Config::upstream();
        config
            .apply_kubelet_args(&args(&[
                "eviction-hard=memory.available<0",
                "eviction-soft=memory.available<1Gi",
                "eviction-soft-grace-period=memory.available=30s",
            ]))
            .expect("valid");
        let m = Manager::new(config);
        let t0 = Instant::now();
        let low = obs(512 * 1024 * 1024, 4 << 30);
        assert!(m.synchronize(&low, t0).is_none());
        assert!(m.under(Pressure::Memory), "the condition does not wait");
        assert!(m.synchronize(&low, t0 + Duration::from_secs(20)).is_none());
        let r = m
            .synchronize(&low, t0 + Duration::from_secs(31))
            .expect("due");
        assert!(r.threshold.soft);
    }

    #[test]
    fn observations_come_from_the_stats() {
        let node = NodeStats {
            timestamp: SystemTime::now(),
            cpu_usage_ns: 0,
            memory_working_set_bytes: 300,
            memory_available_bytes: 0,
            memory_total_bytes: 1 << 30,
        };
        let fs = FsStats {
            capacity_bytes: 100,
            available_bytes: 5,
            used_bytes: 95,
            inodes: 10,
            inodes_free: 1,
        };
        let pids = PidStats {
            max_pids: 100,
            running: 90,
        };
        let o = observe(Some(&node), Some(&fs), Some(&fs), Some(&pids));
        assert_eq!(o[&Signal::MemoryAvailable].available, (1 << 30) - 300);
        assert_eq!(o[&Signal::NodeFsAvailable].available, 5);
        assert_eq!(o[&Signal::ImageFsInodesFree].available, 1);
        assert_eq!(o[&Signal::PidAvailable].available, 10);
        let m = Manager::new(Config::upstream());
        let r = m.synchronize(&o, Instant::now()).expect("disk pressure");
        assert_eq!(r.resource, "ephemeral-storage");
        assert!(m.under(Pressure::Disk));
        assert_eq!(r.threshold_met, "Threshold quantity: 10, available: 5. ");
    }

    fn candidate(name: &str, priority: i32, request: i64, usage: Option<i64>) -> Candidate {
        Candidate {
            key: ("default".into(), name.into(), format!("uid-{name}")),
            priority,
            critical: false,
            request,
            usage,
            containers: vec![ContainerUse {
                name: "c".into(),
                usage,
                request: Quantity::from_i64(request, Format::BinarySI),
            }],
        }
    }

    #[test]
    fn pods_are_ranked_by_usage_over_request_then_priority_then_usage() {
        let mut pods = vec![
            candidate("within-request", 0, 1000, Some(500)),
            candidate("high-priority-over", 100, 0, Some(9000)),
            candidate("low-over-small", 0, 0, Some(10)),
            candidate("low-over-big", 0, 0, Some(5000)),
            candidate("no-stats", 1000, 0, None),
        ];
        rank(Signal::MemoryAvailable, &mut pods);
        let order: Vec<&str> = pods.iter().map(|p| p.key.1.as_str()).collect();
        assert_eq!(
            order,
            [
                "no-stats",
                "low-over-big",
                "low-over-small",
                "high-priority-over",
                "within-request"
            ]
        );
    }

    #[test]
    fn admission_under_pressure_is_upstreams() {
        let m = Manager::new(Config::upstream());
        let pod = |json: serde_json::Value| -> Pod { serde_json::from_value(json).expect("pod") };
        let best_effort = pod(serde_json::json!({"spec": {"containers": [{"name": "c"}]}}));
        assert_eq!(m.admit(&best_effort), Ok(()));
        m.synchronize(&obs(1, 1 << 30), Instant::now());
        assert_eq!(
            m.admit(&best_effort),
            Err("The node had condition: [MemoryPressure]. ".into())
        );
        let tolerating = pod(serde_json::json!({"spec": {
            "containers": [{"name": "c"}],
            "tolerations": [{"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"}]}}));
        assert_eq!(m.admit(&tolerating), Ok(()));
        let burstable = pod(serde_json::json!({"spec": {"containers": [{"name": "c",
            "resources": {"requests": {"memory": "10Mi"}}}]}}));
        assert_eq!(m.admit(&burstable), Ok(()));
        let critical = pod(
            serde_json::json!({"spec": {"priority": 2000001000, "containers": [{"name": "c"}]}}),
        );
        assert_eq!(m.admit(&critical), Ok(()));
    }

    #[test]
    fn the_message_is_upstreams() {
        let m = Manager::new(Config::upstream());
        let r = m
            .synchronize(&obs(50 * 1024 * 1024, 1 << 30), Instant::now())
            .expect("reclaim");
        let pod = candidate("p", 0, 0, Some(2 * 1024 * 1024));
        assert_eq!(
            message(&r, &pod),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. Container c was using 2Mi, request is 0, has larger consumption of memory. "
        );
    }
}

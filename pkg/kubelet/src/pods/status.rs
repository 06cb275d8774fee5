//! The pod status the kubelet reports, computed from what the runtime holds, as
//! upstream's `generateAPIPodStatus`, `getPhase` and the condition generators do: a pure
//! function, so the worker writes it only when it differs from what the API holds.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{
    Container as SpecContainer, ContainerState as ApiState, ContainerStateRunning,
    ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition,
    PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::runtime::{Container, ContainerState, Image, labels};

/// A waiting reason and message set by the worker (image pulls, back-offs, config errors).
pub(crate) type Waiting = (String, String);

/// Probe results of one running container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ProbeState {
    /// The readiness probe's last result; `None` before its first.
    pub ready: Option<bool>,
    /// Whether the startup probe succeeded; `None` before.
    pub started: Option<bool>,
}

/// Everything the status is computed from.
pub(crate) struct Inputs<'a> {
    pub pod: &'a Pod,
    /// The pod's containers in the runtime.
    pub containers: &'a [Container],
    /// A ready sandbox with its network wired.
    pub sandbox_ready: bool,
    pub pod_ips: &'a [IpAddr],
    pub host_ip: IpAddr,
    /// By container name.
    pub waiting: &'a HashMap<String, Waiting>,
    /// By container id.
    pub probes: &'a HashMap<String, ProbeState>,
    /// `containerd`: the prefix of container ids.
    pub runtime_name: &'a str,
    /// By image id.
    pub images: &'a HashMap<String, Image>,
    /// Termination messages by container id.
    pub messages: &'a HashMap<String, String>,
    /// When the kubelet first saw the pod.
    pub start_time: Timestamp,
}

/// Seconds precision, as the API stores times.
pub(crate) fn time(t: SystemTime) -> Time {
    let ts = Timestamp::try_from(t).unwrap_or(Timestamp::UNIX_EPOCH);
    Time(Timestamp::from_second(ts.as_second()).unwrap_or(ts))
}

pub(crate) fn name_of(c: &Container) -> &str {
    c.labels
        .get(labels::CONTAINER_NAME)
        .map(String::as_str)
        .unwrap_or_default()
}

pub(crate) fn attempt_of(c: &Container) -> u32 {
    c.labels
        .get(labels::CONTAINER_ATTEMPT)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0)
}

/// The runtime's containers named `name`, newest first.
pub(crate) fn instances<'a>(containers: &'a [Container], name: &str) -> Vec<&'a Container> {
    let mut v: Vec<&Container> = containers.iter().filter(|c| name_of(c) == name).collect();
    v.sort_by(|a, b| {
        attempt_of(b)
            .cmp(&attempt_of(a))
            .then(b.created_at.cmp(&a.created_at))
    });
    v
}

/// Whether an init container is a sidecar (`restartPolicy: Always`).
pub(crate) fn is_sidecar(c: &SpecContainer) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn terminated(c: &Container, inputs: &Inputs<'_>) -> ContainerStateTerminated {
    let code = c.exit_code.unwrap_or(0);
    ContainerStateTerminated {
        exit_code: code,
        reason: Some(
            c.reason
                .clone()
                .unwrap_or_else(|| if code == 0 { "Completed" } else { "Error" }.to_string()),
        ),
        message: inputs
            .messages
            .get(&c.id)
            .cloned()
            .filter(|m| !m.is_empty()),
        started_at: c.started_at.map(time),
        finished_at: c.finished_at.map(time),
        container_id: Some(format!("{}://{}", inputs.runtime_name, c.id)),
        signal: None,
    }
}

fn waiting(reason: &str, message: Option<String>) -> ApiState {
    ApiState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message,
        }),
        ..ApiState::default()
    }
}

fn container_status(
    spec: &SpecContainer,
    inputs: &Inputs<'_>,
    default_reason: &str,
    init: bool,
) -> ContainerStatus {
    let all = instances(inputs.containers, &spec.name);
    let latest = all.first().copied();
    let previous = all.get(1).copied();
    let override_ = inputs.waiting.get(&spec.name);
    let mut status = ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: String::new(),
        ready: false,
        restart_count: 0,
        started: Some(false),
        state: Some(waiting(default_reason, None)),
        last_state: Some(ApiState::default()),
        ..ContainerStatus::default()
    };
    let Some(c) = latest else {
        if let Some((reason, message)) = override_ {
            status.state = Some(waiting(
                reason,
                Some(message.clone()).filter(|m| !m.is_empty()),
            ));
        }
        return status;
    };
    status.restart_count = i32::try_from(attempt_of(c)).unwrap_or(i32::MAX);
    status.container_id = Some(format!("{}://{}", inputs.runtime_name, c.id));
    if let Some(img) = inputs.images.get(&c.image) {
        status.image = img
            .repo_tags
            .first()
            .cloned()
            .unwrap_or_else(|| c.image_ref.clone());
        status.image_id = img.repo_digests.first().cloned().unwrap_or(img.id.clone());
    } else {
        status.image_id = c.image.clone();
    }
    if let Some(p) = previous.filter(|p| p.state == ContainerState::Exited) {
        status.last_state = Some(ApiState {
            terminated: Some(terminated(p, inputs)),
            ..ApiState::default()
        });
    }
    match c.state {
        ContainerState::Created => status.state = Some(waiting("ContainerCreating", None)),
        ContainerState::Running => {
            status.state = Some(ApiState {
                running: Some(ContainerStateRunning {
                    started_at: c.started_at.map(time),
                }),
                ..ApiState::default()
            });
            let probes = inputs.probes.get(&c.id).copied().unwrap_or_default();
            let has_startup = spec.startup_probe.is_some();
            let has_readiness = spec.readiness_probe.is_some();
            let started = !has_startup || probes.started == Some(true);
            status.started = Some(started);
            status.ready = if init && !is_sidecar(spec) {
                false
            } else {
                started && (!has_readiness || probes.ready == Some(true))
            };
        }
        ContainerState::Exited | ContainerState::Unknown => {
            let term = if c.state == ContainerState::Unknown {
                ContainerStateTerminated {
                    exit_code: 137,
                    reason: Some("ContainerStatusUnknown".into()),
                    message: Some(
                        "The container could not be located when the pod was terminated".into(),
                    ),
                    container_id: Some(format!("{}://{}", inputs.runtime_name, c.id)),
                    ..ContainerStateTerminated::default()
                }
            } else {
                terminated(c, inputs)
            };
            if let Some((reason, message)) = override_ {
                // Waiting to run again (back-off, pull): the exit is the last state.
                status.state = Some(waiting(
                    reason,
                    Some(message.clone()).filter(|m| !m.is_empty()),
                ));
                status.last_state = Some(ApiState {
                    terminated: Some(term),
                    ..ApiState::default()
                });
            } else {
                if init && !is_sidecar(spec) && term.exit_code == 0 {
                    status.ready = true;
                }
                status.state = Some(ApiState {
                    terminated: Some(term),
                    ..ApiState::default()
                });
            }
        }
    }
    status
}

fn exit_code(s: &ContainerStatus) -> Option<i32> {
    s.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code)
}

fn last_exit_code(s: &ContainerStatus) -> Option<i32> {
    s.last_state
        .as_ref()?
        .terminated
        .as_ref()
        .map(|t| t.exit_code)
}

fn is_running(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.running.is_some())
}

fn is_waiting(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.waiting.is_some())
}

/// Upstream's `getPhase`.
pub(crate) fn phase(
    pod: &Pod,
    init: &[ContainerStatus],
    regular: &[ContainerStatus],
) -> &'static str {
    let spec = pod.spec.as_ref();
    let policy = spec
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let init_specs = spec.and_then(|s| s.init_containers.as_ref());
    let mut pending_init = 0;
    let mut failed_init = 0;
    let mut sidecars_running = true;
    for (i, st) in init.iter().enumerate() {
        let sidecar = init_specs.and_then(|l| l.get(i)).is_some_and(is_sidecar);
        if sidecar {
            if !is_running(st) || st.started != Some(true) {
                sidecars_running = false;
                if last_exit_code(st).is_none() && exit_code(st).is_none() {
                    pending_init += 1;
                }
            }
            continue;
        }
        match exit_code(st) {
            Some(0) => {}
            Some(_) => failed_init += 1,
            None if is_running(st) => pending_init += 1,
            None => {
                if last_exit_code(st).is_some_and(|c| c != 0) {
                    failed_init += 1;
                } else {
                    pending_init += 1;
                }
            }
        }
    }
    let _ = sidecars_running;
    let (mut unknown, mut running, mut waiting_n, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for st in regular {
        if is_running(st) {
            running += 1;
        } else if let Some(code) = exit_code(st) {
            stopped += 1;
            if code == 0 {
                succeeded += 1;
            }
        } else if is_waiting(st) {
            match last_exit_code(st) {
                Some(code) => {
                    stopped += 1;
                    if code == 0 {
                        succeeded += 1;
                    }
                }
                None => waiting_n += 1,
            }
        } else {
            unknown += 1;
        }
    }
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    if pending_init > 0 || failed_init > 0 {
        // Init containers still run (or restart): the pod is not started yet.
        return "Pending";
    }
    if waiting_n > 0 {
        return "Pending";
    }
    if running > 0 && unknown == 0 {
        return "Running";
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        if policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

/// Upstream's `getPodQOS`.
pub(crate) fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else {
        return "BestEffort";
    };
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let mut any = false;
    let mut guaranteed = true;
    for c in all {
        let res = c.resources.as_ref();
        let req = res.and_then(|r| r.requests.as_ref());
        let lim = res.and_then(|r| r.limits.as_ref());
        for name in ["cpu", "memory"] {
            let r = req.and_then(|m| m.get(name)).map(|q| q.0.clone());
            let l = lim.and_then(|m| m.get(name)).map(|q| q.0.clone());
            let nonzero = |q: &Option<String>| {
                q.as_deref()
                    .and_then(|s| k1s_apimachinery::Quantity::parse(s).ok())
                    .is_some_and(|q| !q.is_zero())
            };
            if nonzero(&r) || nonzero(&l) {
                any = true;
            }
            let (rq, lq) = (
                r.as_deref()
                    .and_then(|s| k1s_apimachinery::Quantity::parse(s).ok()),
                l.as_deref()
                    .and_then(|s| k1s_apimachinery::Quantity::parse(s).ok()),
            );
            match (rq, lq) {
                (_, None) => guaranteed = false,
                (Some(r), Some(l)) if r != l => guaranteed = false,
                _ => {}
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn condition(
    old: Option<&Vec<PodCondition>>,
    generation: Option<i64>,
    type_: &str,
    status: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &Time,
) -> PodCondition {
    let status = if status { "True" } else { "False" };
    let since = old
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_ && c.status == status))
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(since),
        last_probe_time: None,
        observed_generation: generation,
    }
}

fn list_message(kind: &str, names: &[String]) -> String {
    format!("containers with {kind} status: [{}]", names.join(" "))
}

/// The status to report, built on the one the API holds (fields the kubelet does not own
/// are kept).
pub(crate) fn pod_status(inputs: &Inputs<'_>) -> PodStatus {
    let pod = inputs.pod;
    let old = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let default_reason = if init_specs.is_empty() {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let init: Vec<ContainerStatus> = init_specs
        .iter()
        .map(|c| container_status(c, inputs, default_reason, true))
        .collect();
    let regular: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, inputs, default_reason, false))
        .collect();
    let phase = phase(pod, &init, &regular);
    let now = time(SystemTime::now());
    let generation = pod.metadata.generation;
    let old_conds = old.conditions.as_ref();

    let incomplete: Vec<String> = init
        .iter()
        .zip(&init_specs)
        .filter(|(st, sp)| {
            if is_sidecar(sp) {
                !(is_running(st) && st.started == Some(true))
            } else {
                exit_code(st) != Some(0)
            }
        })
        .map(|(st, _)| st.name.clone())
        .collect();
    let initialized = if phase == "Succeeded" {
        condition(
            old_conds,
            generation,
            "Initialized",
            true,
            Some("PodCompleted"),
            None,
            &now,
        )
    } else if incomplete.is_empty() {
        condition(old_conds, generation, "Initialized", true, None, None, &now)
    } else {
        condition(
            old_conds,
            generation,
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(list_message("incomplete", &incomplete)),
            &now,
        )
    };
    let unready: Vec<String> = init
        .iter()
        .zip(&init_specs)
        .filter(|(st, sp)| is_sidecar(sp) && !st.ready)
        .map(|(st, _)| st.name.clone())
        .chain(
            regular
                .iter()
                .filter(|st| !st.ready)
                .map(|st| st.name.clone()),
        )
        .collect();
    let (ready, reason, message) = match phase {
        "Succeeded" => (false, Some("PodCompleted"), None),
        "Failed" => (false, Some("PodFailed"), None),
        _ if unready.is_empty() => (true, None, None),
        _ => (
            false,
            Some("ContainersNotReady"),
            Some(list_message("unready", &unready)),
        ),
    };
    let containers_ready = condition(
        old_conds,
        generation,
        "ContainersReady",
        ready,
        reason,
        message.clone(),
        &now,
    );
    // Readiness gates: every named condition must be True.
    let mut gate_problem = None;
    for gate in spec.readiness_gates.iter().flatten() {
        let found = old_conds.and_then(|cs| cs.iter().find(|c| c.type_ == gate.condition_type));
        match found {
            None => {
                gate_problem = Some(format!(
                    "corresponding condition of pod readiness gate \"{}\" does not exist.",
                    gate.condition_type
                ));
                break;
            }
            Some(c) if c.status != "True" => {
                gate_problem = Some(format!(
                    "the status of pod readiness gate \"{}\" is not \"True\", but {}",
                    gate.condition_type, c.status
                ));
                break;
            }
            Some(_) => {}
        }
    }
    let pod_ready = match (ready, gate_problem) {
        (true, Some(msg)) => condition(
            old_conds,
            generation,
            "Ready",
            false,
            Some("ReadinessGatesNotReady"),
            Some(msg),
            &now,
        ),
        (r, _) => condition(old_conds, generation, "Ready", r, reason, message, &now),
    };
    let sandbox = condition(
        old_conds,
        generation,
        "PodReadyToStartContainers",
        inputs.sandbox_ready,
        None,
        None,
        &now,
    );
    let ours = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
    ];
    // Upstream's order: ours first, then the others the API holds (PodScheduled, gates).
    let mut conditions = vec![sandbox, initialized, pod_ready, containers_ready];
    let mut others: Vec<PodCondition> = old_conds
        .into_iter()
        .flatten()
        .filter(|c| !ours.contains(&c.type_.as_str()))
        .cloned()
        .collect();
    // PodScheduled goes last, as upstream lists it.
    others.sort_by_key(|c| c.type_ == "PodScheduled");
    conditions.extend(others);

    let mut status = old;
    status.phase = Some(phase.to_string());
    status.conditions = Some(conditions);
    status.host_ip = Some(inputs.host_ip.to_string());
    status.host_ips = Some(vec![HostIP {
        ip: inputs.host_ip.to_string(),
    }]);
    if !inputs.pod_ips.is_empty() {
        status.pod_ip = Some(inputs.pod_ips[0].to_string());
        status.pod_ips = Some(
            inputs
                .pod_ips
                .iter()
                .map(|ip| PodIP { ip: ip.to_string() })
                .collect(),
        );
    }
    if status.start_time.is_none() {
        status.start_time = Some(Time(
            Timestamp::from_second(inputs.start_time.as_second()).unwrap_or(inputs.start_time),
        ));
    }
    if status.qos_class.is_none() {
        status.qos_class = Some(qos_class(pod).to_string());
    }
    status.init_container_statuses = if init.is_empty() { None } else { Some(init) };
    status.container_statuses = Some(regular);
    status.observed_generation = generation;
    status
}

/// Marks `status` as upstream's kubelet writes an evicted pod: phase `Failed`, reason
/// `Evicted`, the eviction's message, and a `DisruptionTarget` condition
/// (`TerminationByKubelet`).
pub(crate) fn mark_evicted(status: &mut PodStatus, message: &str) {
    status.phase = Some("Failed".into());
    status.reason = Some(crate::eviction::REASON.into());
    status.message = Some(message.to_string());
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != "DisruptionTarget");
    conditions.push(PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("TerminationByKubelet".into()),
        message: Some(message.to_string()),
        last_transition_time: Some(time(SystemTime::now())),
        ..Default::default()
    });
}

/// Labels every sandbox and container of `pod` carries.
pub(crate) fn pod_labels(pod: &Pod) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(
        labels::POD_NAME.to_string(),
        pod.metadata.name.clone().unwrap_or_default(),
    );
    l.insert(
        labels::POD_NAMESPACE.to_string(),
        pod.metadata.namespace.clone().unwrap_or_default(),
    );
    l.insert(
        labels::POD_UID.to_string(),
        pod.metadata.uid.clone().unwrap_or_default(),
    );
    l
}

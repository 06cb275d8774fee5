//! One pod's worker: drives the runtime toward the pod's spec (upstream's `SyncPod` and
//! `computePodActions`), then reports the status when it changed.
//!
//! Each sync reads the pod from the cache and the pod's sandboxes and containers from the
//! runtime, so the worker keeps nothing the runtime does not: after a restart it finds its
//! running containers by their labels and leaves them be. What it keeps in memory only
//! (back-offs, the waiting reasons of pulls and errors, probe results) starts over.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::{Container as SpecContainer, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::json;
use tokio::sync::Notify;

use k1s_net::{HostPort, PodRef};

use super::probes::Probes;
use super::spec::{self, ConfigError, Sources};
use super::status::{self, Inputs, Waiting, attempt_of, instances, is_sidecar, name_of};
use super::{Ctx, volumes};
use crate::Error;
use crate::events::EventType;
use crate::runtime::{
    Container, ContainerConfig, ContainerState, Image, Mount, PullPolicy, RegistryCredential,
    RuntimeError, Sandbox, SandboxConfig, labels,
};

/// Upstream's floor on a grace period when a pod is killed.
const MIN_GRACE_SECONDS: i64 = 2;

/// What a sync leaves to do.
enum Outcome {
    /// The pod is gone and cleaned up: the worker ends.
    Finished,
    /// Sync again on a change, or after this long.
    Wait(Option<Duration>),
}

/// Upstream's back-off: the first restart is at once, then 10 s doubling to 5 min; an
/// entry unused for twice the maximum starts over.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    entries: HashMap<String, (Duration, SystemTime)>,
    initial: Duration,
    max: Duration,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            initial,
            max,
        }
    }

    /// The time left in `key`'s back-off counted from `since`, if any.
    fn remaining(&self, key: &str, since: SystemTime) -> Option<Duration> {
        let (backoff, updated) = self.entries.get(key)?;
        let now = SystemTime::now();
        if now.duration_since(*updated).unwrap_or_default() > self.max * 2 {
            return None;
        }
        let elapsed = now.duration_since(since).unwrap_or_default();
        backoff.checked_sub(elapsed).filter(|d| !d.is_zero())
    }

    /// The current delay of `key`.
    fn current(&self, key: &str) -> Duration {
        self.entries.get(key).map(|e| e.0).unwrap_or(self.initial)
    }

    /// Records a restart of `key` at `at`: the delay doubles.
    fn next(&mut self, key: &str, at: SystemTime) {
        let now = SystemTime::now();
        let entry = self.entries.get(key).copied();
        let backoff = match entry {
            Some((b, updated))
                if now.duration_since(updated).unwrap_or_default() <= self.max * 2 =>
            {
                (b * 2).min(self.max)
            }
            _ => self.initial,
        };
        self.entries.insert(key.to_string(), (backoff, at));
    }
}

/// Go's `time.Duration` text of whole seconds (`10s`, `1m20s`, `5m0s`).
pub(crate) fn go_seconds(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{}h{}m{}s", s / 3600, (s % 3600) / 60, s % 60)
    }
}

/// Go's `time.Duration` text truncated to milliseconds (`532ms`, `1.2s`).
fn go_millis(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = format!("{}.{:03}", ms / 1000, ms % 1000);
    let secs = secs.trim_end_matches('0').trim_end_matches('.');
    if ms < 60_000 {
        format!("{secs}s")
    } else {
        go_seconds(d)
    }
}

/// `name_namespace(uid)`, as upstream's `format.Pod` names a pod.
fn pod_text(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.clone().unwrap_or_default(),
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.uid.clone().unwrap_or_default()
    )
}

fn field_path(init: bool, name: &str) -> Option<String> {
    Some(if init {
        format!("spec.initContainers{{{name}}}")
    } else {
        format!("spec.containers{{{name}}}")
    })
}

/// The kill of a container: with which grace, and what the Killing event says.
struct Kill {
    id: String,
    name: String,
    init: bool,
    grace: i64,
    note: String,
}

struct Worker {
    ctx: Arc<Ctx>,
    uid: String,
    ns: String,
    name: String,
    pod_ips: Option<Vec<IpAddr>>,
    backoff: Backoff,
    image_backoff: Backoff,
    waiting: HashMap<String, Waiting>,
    /// The error of the last failed pull, by back-off key, for the ImagePullBackOff message.
    pull_errors: HashMap<String, String>,
    messages: HashMap<String, String>,
    probes: Probes,
    first_seen: Timestamp,
    /// The pod was stopped for good (terminal, or being deleted).
    stopped: bool,
    /// The pod was evicted: nothing restarts, whatever the cache still says.
    evicted: bool,
    /// The pod passed admission (or was running here already).
    admitted: bool,
}

/// Runs pod `uid`'s worker until the pod is gone and cleaned up.
pub(super) async fn run(ctx: Arc<Ctx>, uid: String, ns: String, name: String, notify: Arc<Notify>) {
    let backoff = Backoff::new(ctx.config.backoff_initial, ctx.config.backoff_max);
    let image_backoff = Backoff::new(ctx.config.backoff_initial, ctx.config.backoff_max);
    let mut w = Worker {
        probes: Probes::new(ctx.clone(), notify.clone()),
        ctx,
        uid,
        ns,
        name,
        pod_ips: None,
        backoff,
        image_backoff,
        waiting: HashMap::new(),
        pull_errors: HashMap::new(),
        messages: HashMap::new(),
        first_seen: Timestamp::now(),
        stopped: false,
        evicted: false,
        admitted: false,
    };
    loop {
        let next = match w.sync().await {
            Ok(Outcome::Finished) => {
                w.probes.stop_all();
                w.ctx.workers.lock().remove(&w.uid);
                w.ctx.written.lock().remove(&w.uid);
                return;
            }
            Ok(Outcome::Wait(next)) => next,
            Err(e) => {
                tracing::warn!(pod = %format!("{}/{}", w.ns, w.name), error = %e, "pod sync failed; retrying");
                Some(Duration::from_secs(1))
            }
        };
        let sleep = next.unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            () = notify.notified() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

fn min_wait(a: Option<Duration>, b: Duration) -> Option<Duration> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl Worker {
    fn pod_dir(&self) -> PathBuf {
        self.ctx.config.root_dir.join("pods").join(&self.uid)
    }

    fn log_dir(&self) -> PathBuf {
        self.ctx
            .config
            .log_dir
            .join(format!("{}_{}_{}", self.ns, self.name, self.uid))
    }

    fn pod_ref(&self) -> PodRef {
        PodRef {
            uid: self.uid.clone(),
            namespace: self.ns.clone(),
            name: self.name.clone(),
        }
    }

    async fn runtime_state(&self) -> Result<(Vec<Sandbox>, Vec<Container>), Error> {
        let (mut sandboxes, mut containers) = self.ctx.runtime.list_pod(&self.uid).await?;
        // A container caught between its exit being recorded and its task going away
        // reads as ended without an exit time; a second look tells its real exit, and a
        // terminal status must not be written from the first.
        let unsettled = |cs: &[Container]| {
            cs.iter().any(|c| {
                c.state == ContainerState::Exited
                    && c.finished_at.is_none()
                    && c.labels.get(labels::POD_UID).map(String::as_str) == Some(self.uid.as_str())
            })
        };
        if unsettled(&containers) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            (sandboxes, containers) = self.ctx.runtime.list_pod(&self.uid).await?;
        }
        let ours = |l: &std::collections::BTreeMap<String, String>| {
            l.get(labels::POD_UID).map(String::as_str) == Some(self.uid.as_str())
        };
        Ok((
            sandboxes.into_iter().filter(|s| ours(&s.labels)).collect(),
            containers.into_iter().filter(|c| ours(&c.labels)).collect(),
        ))
    }

    async fn sync(&mut self) -> Result<Outcome, Error> {
        let pod = self.ctx.pod(&self.ns, &self.name, &self.uid);
        let (sandboxes, containers) = self.runtime_state().await?;
        let Some(pod) = pod else {
            // Gone from the API: stop and forget everything it had here.
            self.stop_everything(None, &sandboxes, &containers, MIN_GRACE_SECONDS)
                .await;
            for c in &containers {
                let _ = self.ctx.runtime.remove_container(&c.id).await;
            }
            for s in &sandboxes {
                let _ = self.ctx.runtime.remove_sandbox(&s.id).await;
            }
            volumes::teardown(&self.pod_dir()).await;
            let _ = tokio::fs::remove_dir_all(self.pod_dir()).await;
            let _ = tokio::fs::remove_dir_all(self.log_dir()).await;
            return Ok(Outcome::Finished);
        };
        if pod.metadata.deletion_timestamp.is_some() {
            return self.terminate(&pod, &sandboxes, &containers).await;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let terminal = matches!(phase, Some("Succeeded" | "Failed"));
        let eviction = self.ctx.evictions.lock().remove(&self.uid);
        if let Some(e) = eviction
            && !terminal
        {
            return self.evict(&pod, e, &sandboxes, &containers).await;
        }
        if self.evicted {
            return Ok(Outcome::Wait(None));
        }
        if !terminal && !self.admitted {
            let started_before = !sandboxes.is_empty()
                || !containers.is_empty()
                || pod
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .is_some_and(|c| !c.is_empty());
            if !started_before && let Err(message) = self.ctx.pressure.admit(&pod) {
                return self.reject(&pod, &message).await;
            }
            self.admitted = true;
        }
        if terminal {
            if !self.stopped {
                let grace = self.grace(&pod);
                self.stop_everything(Some(&pod), &sandboxes, &containers, grace)
                    .await;
                self.stopped = true;
            }
            return Ok(Outcome::Wait(None));
        }
        self.sync_running(&pod, sandboxes, containers).await
    }

    /// Evicted by the eviction manager: the Evicted event, containers stopped with the
    /// eviction's grace period, and the pod `Failed` with reason `Evicted`, upstream's
    /// message and a DisruptionTarget condition. The pod stays in the API, as upstream's.
    async fn evict(
        &mut self,
        pod: &Pod,
        e: super::evict::Eviction,
        sandboxes: &[Sandbox],
        containers: &[Container],
    ) -> Result<Outcome, Error> {
        self.ctx.recorder.pod(
            pod,
            None,
            EventType::Warning,
            crate::eviction::REASON,
            e.message.clone(),
        );
        self.stop_everything(Some(pod), sandboxes, containers, e.grace)
            .await;
        self.stopped = true;
        self.evicted = true;
        let (_, containers) = self.runtime_state().await?;
        self.read_termination_messages(pod, &containers).await;
        let mut st = self.status(pod, &containers, false);
        status::mark_evicted(&mut st, &e.message);
        self.write_status(pod, st).await?;
        Ok(Outcome::Wait(None))
    }

    /// Refused at admission (upstream's `rejectPod`): a Warning event, and the pod
    /// `Failed` with the reason and `Pod was rejected: <message>`.
    async fn reject(&mut self, pod: &Pod, message: &str) -> Result<Outcome, Error> {
        let reason = crate::eviction::REASON;
        self.ctx
            .recorder
            .pod(pod, None, EventType::Warning, reason, message.to_string());
        let mut st = pod.status.clone().unwrap_or_default();
        st.phase = Some("Failed".into());
        st.reason = Some(reason.into());
        st.message = Some(format!("Pod was rejected: {message}"));
        self.stopped = true;
        self.evicted = true;
        self.write_status(pod, st).await?;
        Ok(Outcome::Wait(None))
    }

    fn grace(&self, pod: &Pod) -> i64 {
        pod.metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30)
            .max(MIN_GRACE_SECONDS)
    }

    /// A deleted pod: containers stopped within its grace period, sandbox and network
    /// freed, then the pod removed from the API for good (grace 0), as upstream does.
    async fn terminate(
        &mut self,
        pod: &Pod,
        sandboxes: &[Sandbox],
        containers: &[Container],
    ) -> Result<Outcome, Error> {
        if !self.stopped {
            let grace = self.grace(pod);
            self.stop_everything(Some(pod), sandboxes, containers, grace)
                .await;
            self.stopped = true;
            // Stopped for good: the final status says how its containers ended, and a
            // pod that did not succeed is Failed, as upstream's kubelet reports it.
            let (_, containers) = self.runtime_state().await?;
            self.read_termination_messages(pod, &containers).await;
            let mut st = self.status(pod, &containers, false);
            if !matches!(st.phase.as_deref(), Some("Succeeded" | "Failed")) {
                st.phase = Some("Failed".into());
            }
            self.write_status(pod, st).await?;
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&self.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Outcome::Wait(Some(Duration::from_secs(5))))
    }

    /// Stops every running container (regular ones first, then sidecars in reverse
    /// order, as upstream does), the sandboxes and the network. Idempotent.
    async fn stop_everything(
        &mut self,
        pod: Option<&Pod>,
        sandboxes: &[Sandbox],
        containers: &[Container],
        grace: i64,
    ) {
        self.probes.stop_all();
        let spec = pod.and_then(|p| p.spec.clone()).unwrap_or_default();
        let init_names: Vec<String> = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect();
        let running: Vec<&Container> = containers
            .iter()
            .filter(|c| matches!(c.state, ContainerState::Running | ContainerState::Created))
            .collect();
        let kill = |c: &Container| Kill {
            id: c.id.clone(),
            name: name_of(c).to_string(),
            init: init_names.iter().any(|n| n == name_of(c)),
            grace,
            note: format!("Stopping container {}", name_of(c)),
        };
        let (sidecars, regular): (Vec<&Container>, Vec<&Container>) = running
            .into_iter()
            .partition(|c| init_names.iter().any(|n| n == name_of(c)));
        let regular: Vec<Kill> = regular.into_iter().map(kill).collect();
        futures::future::join_all(regular.iter().map(|k| self.kill(pod, k))).await;
        let mut sidecars: Vec<&Container> = sidecars;
        sidecars
            .sort_by_key(|c| std::cmp::Reverse(init_names.iter().position(|n| n == name_of(c))));
        for c in sidecars {
            self.kill(pod, &kill(c)).await;
        }
        for s in sandboxes {
            if let Err(e) = self.ctx.runtime.stop_sandbox(&s.id).await {
                tracing::warn!(pod = %self.name, error = %e, "cannot stop the pod sandbox");
            }
        }
        if let Err(e) = self.ctx.network.detach(&self.pod_ref()).await {
            tracing::warn!(pod = %self.name, error = %e, "cannot free the pod's network");
        }
    }

    /// Stops one container: preStop hook, then SIGTERM and SIGKILL after the grace.
    async fn kill(&self, pod: Option<&Pod>, k: &Kill) {
        let started = Instant::now();
        if let Some(pod) = pod {
            self.ctx.recorder.pod(
                pod,
                field_path(k.init, &k.name),
                EventType::Normal,
                "Killing",
                k.note.clone(),
            );
            let spec = pod.spec.as_ref().and_then(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
                    .find(|c| c.name == k.name)
            });
            if let Some(pre_stop) = spec
                .and_then(|c| c.lifecycle.as_ref())
                .and_then(|l| l.pre_stop.as_ref())
            {
                let limit = Duration::from_secs(u64::try_from(k.grace).unwrap_or(0));
                let run = super::probes::run_handler(
                    &self.ctx,
                    pod,
                    &k.id,
                    pre_stop,
                    self.pod_ips.as_deref(),
                );
                match tokio::time::timeout(limit, run).await {
                    Ok(Err(msg)) => self.ctx.recorder.pod(
                        pod,
                        field_path(k.init, &k.name),
                        EventType::Warning,
                        "FailedPreStopHook",
                        format!("PreStopHook failed: {msg}"),
                    ),
                    Ok(Ok(())) => {}
                    Err(_) => {}
                }
            }
        }
        let left = k.grace - i64::try_from(started.elapsed().as_secs()).unwrap_or(0);
        if let Err(e) = self
            .ctx
            .runtime
            .stop_container(&k.id, left.max(MIN_GRACE_SECONDS))
            .await
        {
            tracing::warn!(container = %k.name, error = %e, "cannot stop a container");
        }
    }

    /// Makes the pod's sandbox and wires its network.
    async fn make_sandbox(&mut self, pod: &Pod) -> Result<Sandbox, String> {
        let spec = pod.spec.clone().unwrap_or_default();
        let (host, _) = spec::hostname(pod, &self.ctx.config.cluster_domain);
        let qos = pod
            .status
            .as_ref()
            .and_then(|s| s.qos_class.clone())
            .unwrap_or_else(|| status::qos_class(pod).to_string());
        let cgroup_parent = match qos.as_str() {
            "Guaranteed" => format!("/kubepods/pod{}", self.uid),
            other => format!("/kubepods/{}/pod{}", other.to_lowercase(), self.uid),
        };
        let config = SandboxConfig {
            pod_name: self.name.clone(),
            pod_namespace: self.ns.clone(),
            pod_uid: self.uid.clone(),
            hostname: host,
            host_network: spec.host_network.unwrap_or(false),
            host_ipc: spec.host_ipc.unwrap_or(false),
            host_pid: spec.host_pid.unwrap_or(false),
            cgroup_parent,
            labels: status::pod_labels(pod),
        };
        let began = Instant::now();
        let sandbox = self
            .ctx
            .runtime
            .run_sandbox(&config)
            .await
            .map_err(|e| e.to_string())?;
        tracing::debug!(pod = %self.name, ms = began.elapsed().as_millis(), "sandbox made");
        if let Err(e) = self.wire(pod, &sandbox).await {
            let _ = self.ctx.runtime.stop_sandbox(&sandbox.id).await;
            let _ = self.ctx.runtime.remove_sandbox(&sandbox.id).await;
            return Err(e);
        }
        Ok(sandbox)
    }

    /// Attaches the sandbox to the pod network (idempotent: after a restart it answers
    /// the addresses the pod has) and writes the pod's hosts and resolv.conf.
    async fn wire(&mut self, pod: &Pod, sandbox: &Sandbox) -> Result<(), String> {
        let spec = pod.spec.clone().unwrap_or_default();
        let host_network = spec.host_network.unwrap_or(false);
        let ips = if host_network {
            vec![self.ctx.config.node_ip]
        } else {
            let Some(netns) = sandbox.netns.as_ref() else {
                return Err("the pod sandbox has no network namespace".into());
            };
            let ports: Vec<HostPort> = spec
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .filter_map(|p| {
                    let host_port = u16::try_from(p.host_port?).ok().filter(|p| *p > 0)?;
                    Some(HostPort {
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        host_port,
                        container_port: u16::try_from(p.container_port).ok()?,
                        host_ip: p.host_ip.as_deref().and_then(|s| s.parse().ok()),
                    })
                })
                .collect();
            self.ctx
                .network
                .attach(&self.pod_ref(), netns, &ports)
                .await
                .map_err(|e| format!("failed to setup network for sandbox {:?}: {e}", sandbox.id))?
                .ips
        };
        self.write_pod_files(pod, &ips, host_network)
            .await
            .map_err(|e| format!("cannot write the pod's files: {e}"))?;
        self.pod_ips = Some(ips);
        Ok(())
    }

    async fn write_pod_files(
        &self,
        pod: &Pod,
        ips: &[IpAddr],
        host_network: bool,
    ) -> std::io::Result<()> {
        let dir = self.pod_dir();
        tokio::fs::create_dir_all(&dir).await?;
        let c = &self.ctx.config;
        let (host, fqdn) = spec::hostname(pod, &c.cluster_domain);
        let hosts = if host_network {
            let node = tokio::fs::read_to_string("/etc/hosts")
                .await
                .unwrap_or_default();
            spec::host_network_hosts_file(pod, &node)
        } else {
            spec::hosts_file(pod, ips, &host, fqdn.as_deref())
        };
        let host_resolv = tokio::fs::read_to_string(&c.host_resolv_conf)
            .await
            .unwrap_or_default();
        let resolv = spec::resolv_conf(pod, &host_resolv, &c.cluster_dns, &c.cluster_domain);
        let hostname = if host_network {
            tokio::fs::read_to_string("/proc/sys/kernel/hostname")
                .await
                .unwrap_or_default()
        } else {
            format!("{host}\n")
        };
        for (name, content) in [
            ("etc-hosts", hosts),
            ("resolv.conf", resolv),
            ("hostname", hostname),
        ] {
            write_if_changed(&dir.join(name), content.as_bytes()).await?;
        }
        Ok(())
    }

    async fn sync_running(
        &mut self,
        pod: &Pod,
        sandboxes: Vec<Sandbox>,
        containers: Vec<Container>,
    ) -> Result<Outcome, Error> {
        self.stopped = false;
        let began = Instant::now();
        let spec = pod.spec.clone().unwrap_or_default();
        let mut wake: Option<Duration> = None;
        let ready_sandbox = sandboxes
            .iter()
            .filter(|s| s.ready)
            .max_by_key(|s| s.created_at)
            .cloned();
        let sandbox = match ready_sandbox {
            Some(s) => {
                if self.pod_ips.is_none()
                    && let Err(msg) = self.wire(pod, &s).await
                {
                    self.ctx.recorder.pod(
                        pod,
                        None,
                        EventType::Warning,
                        "FailedCreatePodSandBox",
                        format!("Failed to create pod sandbox: {msg}"),
                    );
                    return Ok(Outcome::Wait(Some(Duration::from_secs(2))));
                }
                s
            }
            None => {
                // A pod whose containers all ended for good gets no new sandbox.
                if !containers.is_empty() {
                    let st = self.status(pod, &containers, false);
                    if matches!(st.phase.as_deref(), Some("Succeeded" | "Failed")) {
                        self.write_status(pod, st).await?;
                        return Ok(Outcome::Wait(None));
                    }
                }
                // Leftovers of an old sandbox go first.
                if !sandboxes.is_empty() {
                    let grace = self.grace(pod);
                    self.stop_everything(Some(pod), &sandboxes, &containers, grace)
                        .await;
                }
                self.pod_ips = None;
                match self.make_sandbox(pod).await {
                    Ok(s) => s,
                    Err(msg) => {
                        self.ctx.recorder.pod(
                            pod,
                            None,
                            EventType::Warning,
                            "FailedCreatePodSandBox",
                            format!("Failed to create pod sandbox: {msg}"),
                        );
                        let st = self.status(pod, &containers, false);
                        self.write_status(pod, st).await?;
                        return Ok(Outcome::Wait(Some(Duration::from_secs(2))));
                    }
                }
            }
        };
        tracing::debug!(pod = %self.name, ms = began.elapsed().as_millis(), "sync: sandbox ready");
        let volume_paths = match volumes::setup(&self.ctx, pod, &self.pod_dir()).await {
            Ok(v) => v,
            Err(msg) => {
                self.ctx
                    .recorder
                    .pod(pod, None, EventType::Warning, "FailedMount", msg.clone());
                let st = self.status(pod, &containers, true);
                self.write_status(pod, st).await?;
                return Ok(Outcome::Wait(Some(Duration::from_secs(2))));
            }
        };
        let in_sandbox: Vec<Container> = containers
            .iter()
            .filter(|c| c.sandbox_id == sandbox.id)
            .cloned()
            .collect();
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let probe_states = self.probes.states();

        // Init containers, in order; sidecars keep running once started.
        let init_specs = spec.init_containers.clone().unwrap_or_default();
        let already_initialized = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Initialized" && c.status == "True")
            });
        let mut initialized = true;
        for ic in &init_specs {
            let latest = instances(&in_sandbox, &ic.name).first().copied().cloned();
            if is_sidecar(ic) {
                let done = match &latest {
                    None => {
                        self.start(pod, &sandbox, ic, true, &containers, &volume_paths)
                            .await;
                        false
                    }
                    Some(c) if c.state == ContainerState::Created => {
                        self.start_existing(pod, ic, true, c).await;
                        false
                    }
                    Some(c) if c.state == ContainerState::Running => {
                        self.waiting.remove(&ic.name);
                        ic.startup_probe.is_none()
                            || probe_states.get(&c.id).and_then(|p| p.started) == Some(true)
                    }
                    Some(c) => {
                        if let Some(w) = self
                            .restart(pod, &sandbox, ic, true, c, &containers, &volume_paths)
                            .await
                        {
                            wake = min_wait(wake, w);
                        }
                        false
                    }
                };
                if !done && !already_initialized {
                    initialized = false;
                    break;
                }
                continue;
            }
            if already_initialized {
                continue;
            }
            match &latest {
                None => {
                    self.start(pod, &sandbox, ic, true, &containers, &volume_paths)
                        .await;
                }
                Some(c) if c.state == ContainerState::Created => {
                    self.start_existing(pod, ic, true, c).await;
                }
                Some(c) if c.state == ContainerState::Running => {}
                Some(c) if c.exit_code == Some(0) => continue,
                Some(c) => {
                    if policy != "Never"
                        && let Some(w) = self
                            .restart(pod, &sandbox, ic, true, c, &containers, &volume_paths)
                            .await
                    {
                        wake = min_wait(wake, w);
                    }
                }
            }
            initialized = false;
            break;
        }

        if initialized {
            for c in &spec.containers {
                let latest = instances(&in_sandbox, &c.name).first().copied().cloned();
                match &latest {
                    None => {
                        self.start(pod, &sandbox, c, false, &containers, &volume_paths)
                            .await;
                    }
                    Some(rc) if rc.state == ContainerState::Created => {
                        self.start_existing(pod, c, false, rc).await;
                    }
                    Some(rc) if rc.state == ContainerState::Running => {
                        self.waiting.remove(&c.name);
                        if let Some(note) = self.probes.liveness_failure(&rc.id) {
                            let grace = c
                                .liveness_probe
                                .as_ref()
                                .and_then(|p| p.termination_grace_period_seconds)
                                .unwrap_or_else(|| self.grace(pod));
                            self.probes.forget(&rc.id);
                            self.kill(
                                Some(pod),
                                &Kill {
                                    id: rc.id.clone(),
                                    name: c.name.clone(),
                                    init: false,
                                    grace,
                                    note,
                                },
                            )
                            .await;
                            wake = min_wait(wake, Duration::ZERO);
                        }
                    }
                    Some(rc) => {
                        let code = rc.exit_code.unwrap_or(0);
                        let again = policy == "Always" || (policy == "OnFailure" && code != 0);
                        if again {
                            if let Some(w) = self
                                .restart(pod, &sandbox, c, false, rc, &containers, &volume_paths)
                                .await
                            {
                                wake = min_wait(wake, w);
                            }
                        } else {
                            self.waiting.remove(&c.name);
                        }
                    }
                }
            }
        }

        tracing::debug!(pod = %self.name, ms = began.elapsed().as_millis(), "sync: containers done");
        // The state after what was just done.
        let (_, containers) = self.runtime_state().await?;
        tracing::debug!(pod = %self.name, ms = began.elapsed().as_millis(), "sync: runtime state read");
        self.read_termination_messages(pod, &containers).await;
        self.probes
            .sync(pod, &containers, self.pod_ips.clone().unwrap_or_default());
        let st = self.status(pod, &containers, true);
        let terminal = matches!(st.phase.as_deref(), Some("Succeeded" | "Failed"));
        self.write_status(pod, st.clone()).await?;
        tracing::debug!(pod = %self.name, ms = began.elapsed().as_millis(), "sync: status written");
        // Pulls and config errors are tried again once their back-off allows.
        for (name, (reason, _)) in &self.waiting {
            if reason == "CrashLoopBackOff" {
                continue;
            }
            let image = spec
                .containers
                .iter()
                .chain(init_specs.iter())
                .find(|c| c.name == *name)
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            if reason == "ErrImagePull" || reason == "ImagePullBackOff" {
                // As upstream's pod worker requeues a failed sync after its back-off
                // period: a failed pull shows ErrImagePull until then, and a sync that
                // finds the image's back-off running shows ImagePullBackOff.
                wake = min_wait(wake, self.ctx.config.backoff_initial);
                continue;
            }
            let key = format!("image:{image}");
            let left = self
                .image_backoff
                .entries
                .get(&key)
                .and_then(|(_, at)| self.image_backoff.remaining(&key, *at))
                .unwrap_or(self.ctx.config.backoff_initial);
            wake = min_wait(wake, left + Duration::from_millis(10));
        }
        if volumes::has_dynamic_volumes(pod) {
            // ConfigMap, Secret and token files follow their sources.
            wake = min_wait(wake, Duration::from_secs(60));
        }
        if self.evicted {
            return Ok(Outcome::Wait(None));
        }
        if terminal {
            let (sandboxes, containers) = self.runtime_state().await?;
            let grace = self.grace(pod);
            self.stop_everything(Some(pod), &sandboxes, &containers, grace)
                .await;
            self.stopped = true;
            // Its sandbox is gone: PodReadyToStartContainers turns False, as upstream's.
            let mut written = pod.clone();
            written.status = Some(st);
            let (_, containers) = self.runtime_state().await?;
            let last = self.status(&written, &containers, false);
            self.write_status(&written, last).await?;
            return Ok(Outcome::Wait(None));
        }
        Ok(Outcome::Wait(wake))
    }

    fn status(
        &self,
        pod: &Pod,
        containers: &[Container],
        sandbox_ready: bool,
    ) -> k8s_openapi::api::core::v1::PodStatus {
        let images = self.ctx.images.lock().clone();
        let probes = self.probes.states();
        let ips = self.pod_ips.clone().unwrap_or_default();
        status::pod_status(&Inputs {
            pod,
            containers,
            sandbox_ready: sandbox_ready && self.pod_ips.is_some(),
            pod_ips: &ips,
            host_ip: self.ctx.config.node_ip,
            waiting: &self.waiting,
            probes: &probes,
            runtime_name: &self.ctx.runtime_name,
            images: &images,
            messages: &self.messages,
            start_time: self.first_seen,
        })
    }

    /// Writes `status` unless the API holds it already.
    async fn write_status(
        &self,
        pod: &Pod,
        status: k8s_openapi::api::core::v1::PodStatus,
    ) -> Result<(), Error> {
        let new = serde_json::to_value(&status).unwrap_or_default();
        let old = serde_json::to_value(pod.status.clone().unwrap_or_default()).unwrap_or_default();
        self.ctx
            .written
            .lock()
            .insert(self.uid.clone(), new.clone());
        if new == old {
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        match api
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": new})),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Restarts an exited container unless it is in back-off; answers how long is left
    /// of the back-off.
    #[allow(clippy::too_many_arguments)]
    async fn restart(
        &mut self,
        pod: &Pod,
        sandbox: &Sandbox,
        c: &SpecContainer,
        init: bool,
        exited: &Container,
        all: &[Container],
        volume_paths: &HashMap<String, PathBuf>,
    ) -> Option<Duration> {
        let finished = exited.finished_at.unwrap_or_else(SystemTime::now);
        if let Some(left) = self.backoff.remaining(&c.name, finished) {
            let delay = go_seconds(self.backoff.current(&c.name));
            let message = format!(
                "back-off {delay} restarting failed container={} pod={}",
                c.name,
                pod_text(pod)
            );
            let first = self
                .waiting
                .get(&c.name)
                .is_none_or(|(r, m)| r != "CrashLoopBackOff" || *m != message);
            if first {
                self.ctx.recorder.pod(
                    pod,
                    field_path(init, &c.name),
                    EventType::Warning,
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {} in pod {}",
                        c.name,
                        pod_text(pod)
                    ),
                );
            }
            self.waiting
                .insert(c.name.clone(), ("CrashLoopBackOff".into(), message));
            return Some(left);
        }
        self.backoff.next(&c.name, finished);
        self.start(pod, sandbox, c, init, all, volume_paths).await;
        None
    }

    /// Starts a container created before (a restart between create and start).
    async fn start_existing(&mut self, pod: &Pod, c: &SpecContainer, init: bool, rc: &Container) {
        match self.ctx.runtime.start_container(&rc.id).await {
            Ok(()) => {
                self.waiting.remove(&c.name);
                self.ctx.recorder.pod(
                    pod,
                    field_path(init, &c.name),
                    EventType::Normal,
                    "Started",
                    format!("Started container {}", c.name),
                );
            }
            Err(e) => {
                let _ = self.ctx.runtime.remove_container(&rc.id).await;
                self.fail(pod, c, init, "RunContainerError", e.to_string());
            }
        }
    }

    fn fail(&mut self, pod: &Pod, c: &SpecContainer, init: bool, reason: &str, message: String) {
        self.ctx.recorder.pod(
            pod,
            field_path(init, &c.name),
            EventType::Warning,
            "Failed",
            format!("Error: {message}"),
        );
        self.waiting
            .insert(c.name.clone(), (reason.into(), message));
    }

    /// Pulls (per `imagePullPolicy`), creates and starts a new instance of `c`.
    async fn start(
        &mut self,
        pod: &Pod,
        sandbox: &Sandbox,
        c: &SpecContainer,
        init: bool,
        all: &[Container],
        volume_paths: &HashMap<String, PathBuf>,
    ) {
        let Some(image) = self.pull(pod, c, init).await else {
            return;
        };
        let attempt = instances(all, &c.name)
            .first()
            .map(|p| attempt_of(p) + 1)
            .unwrap_or(0);
        let config = match self
            .container_config(pod, c, &image, attempt, volume_paths)
            .await
        {
            Ok(cfg) => cfg,
            Err(ConfigError(msg)) => {
                self.fail(pod, c, init, "CreateContainerConfigError", msg);
                return;
            }
        };
        let began = Instant::now();
        let id = match self.ctx.runtime.create_container(sandbox, &config).await {
            Ok(id) => id,
            Err(e) => {
                self.fail(pod, c, init, "CreateContainerError", e.to_string());
                return;
            }
        };
        self.ctx.recorder.pod(
            pod,
            field_path(init, &c.name),
            EventType::Normal,
            "Created",
            format!("Created container: {}", c.name),
        );
        tracing::debug!(pod = %self.name, ms = began.elapsed().as_millis(), "container created");
        if let Err(e) = self.ctx.runtime.start_container(&id).await {
            let _ = self.ctx.runtime.remove_container(&id).await;
            self.fail(
                pod,
                c,
                init,
                "RunContainerError",
                format!("failed to start container {id:?}: {e}"),
            );
            return;
        }
        tracing::debug!(pod = %self.name, ms = began.elapsed().as_millis(), "container started");
        self.waiting.remove(&c.name);
        self.ctx.recorder.pod(
            pod,
            field_path(init, &c.name),
            EventType::Normal,
            "Started",
            format!("Started container {}", c.name),
        );
        if let Some(post_start) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let result = super::probes::run_handler(
                &self.ctx,
                pod,
                &id,
                post_start,
                self.pod_ips.as_deref(),
            )
            .await;
            if let Err(msg) = result {
                self.ctx.recorder.pod(
                    pod,
                    field_path(init, &c.name),
                    EventType::Warning,
                    "FailedPostStartHook",
                    format!("PostStartHook failed: {msg}"),
                );
                self.kill(
                    Some(pod),
                    &Kill {
                        id: id.clone(),
                        name: c.name.clone(),
                        init,
                        grace: self.grace(pod),
                        note: format!("FailedPostStartHook: {msg}"),
                    },
                )
                .await;
            }
        }
        // Only the newest two instances are kept: the running one and the one before
        // (its logs are `kubectl logs --previous`).
        for old in instances(all, &c.name).iter().skip(1) {
            if old.state == ContainerState::Exited {
                let _ = self.ctx.runtime.remove_container(&old.id).await;
                self.messages.remove(&old.id);
            }
        }
    }

    /// The image of `c` as `imagePullPolicy` wants it, with upstream's events and
    /// waiting reasons; `None` when it is not there (yet).
    async fn pull(&mut self, pod: &Pod, c: &SpecContainer, init: bool) -> Option<Image> {
        let image = c.image.clone().unwrap_or_default();
        let fp = field_path(init, &c.name);
        let policy = match c.image_pull_policy.as_deref() {
            Some("Always") => PullPolicy::Always,
            Some("Never") => PullPolicy::Never,
            Some(_) => PullPolicy::IfNotPresent,
            None => {
                let tagged = image
                    .rsplit('/')
                    .next()
                    .is_some_and(|last| last.contains(':'))
                    || image.contains('@');
                if !tagged || image.ends_with(":latest") {
                    PullPolicy::Always
                } else {
                    PullPolicy::IfNotPresent
                }
            }
        };
        let rt = &self.ctx.runtime;
        if policy != PullPolicy::Always {
            match rt.ensure_image(&image, PullPolicy::Never, &[]).await {
                Ok(img) => {
                    self.ctx.recorder.pod(
                        pod,
                        fp,
                        EventType::Normal,
                        "Pulled",
                        format!(
                            "Container image \"{image}\" already present on machine and can be accessed by the pod"
                        ),
                    );
                    self.remember(&img);
                    return Some(img);
                }
                Err(RuntimeError::InvalidImageName(_)) => {
                    let msg = format!(
                        "Failed to apply default image tag \"{image}\": couldn't parse image name \"{image}\": invalid reference format"
                    );
                    self.ctx.recorder.pod(
                        pod,
                        fp,
                        EventType::Warning,
                        "InspectFailed",
                        msg.clone(),
                    );
                    self.waiting
                        .insert(c.name.clone(), ("InvalidImageName".into(), msg));
                    return None;
                }
                Err(_) if policy == PullPolicy::Never => {
                    let msg = format!(
                        "Container image \"{image}\" is not present with pull policy of Never"
                    );
                    self.ctx.recorder.pod(
                        pod,
                        fp,
                        EventType::Warning,
                        "ErrImageNeverPull",
                        msg.clone(),
                    );
                    self.waiting
                        .insert(c.name.clone(), ("ErrImageNeverPull".into(), msg));
                    return None;
                }
                Err(_) => {}
            }
        }
        let key = format!("image:{image}");
        let last_failure = self.image_backoff.entries.get(&key).map(|e| e.1);
        if let Some(at) = last_failure
            && self.image_backoff.remaining(&key, at).is_some()
            && self
                .waiting
                .get(&c.name)
                .is_some_and(|(r, _)| r == "ErrImagePull" || r == "ImagePullBackOff")
        {
            let event = format!("Back-off pulling image \"{image}\"");
            // The waiting message carries the last pull's error, as upstream's (1.32+) does.
            let msg = match self.pull_errors.get(&key) {
                Some(last) => format!("{event}: ErrImagePull: {last}"),
                None => event.clone(),
            };
            if self
                .waiting
                .get(&c.name)
                .is_none_or(|(r, _)| r != "ImagePullBackOff")
            {
                self.ctx
                    .recorder
                    .pod(pod, fp.clone(), EventType::Normal, "BackOff", event);
                self.ctx.recorder.pod(
                    pod,
                    fp,
                    EventType::Warning,
                    "Failed",
                    "Error: ImagePullBackOff".into(),
                );
            }
            self.waiting
                .insert(c.name.clone(), ("ImagePullBackOff".into(), msg));
            return None;
        }
        self.pull_errors.remove(&key);
        self.ctx.recorder.pod(
            pod,
            fp.clone(),
            EventType::Normal,
            "Pulling",
            format!("Pulling image \"{image}\""),
        );
        let credentials = self.pull_credentials(pod).await;
        let started = Instant::now();
        match rt.ensure_image(&image, policy, &credentials).await {
            Ok(img) => {
                let took = go_millis(started.elapsed());
                self.ctx.recorder.pod(
                    pod,
                    fp,
                    EventType::Normal,
                    "Pulled",
                    format!(
                        "Successfully pulled image \"{image}\" in {took} ({took} including waiting). Image size: {} bytes.",
                        img.size
                    ),
                );
                self.remember(&img);
                Some(img)
            }
            Err(e) => {
                let message = match &e {
                    RuntimeError::Pull { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                self.image_backoff.next(&key, SystemTime::now());
                self.pull_errors.insert(key.clone(), message.clone());
                self.ctx.recorder.pod(
                    pod,
                    fp.clone(),
                    EventType::Warning,
                    "Failed",
                    format!("Failed to pull image \"{image}\": {message}"),
                );
                self.ctx.recorder.pod(
                    pod,
                    fp,
                    EventType::Warning,
                    "Failed",
                    "Error: ErrImagePull".into(),
                );
                self.waiting
                    .insert(c.name.clone(), ("ErrImagePull".into(), message));
                None
            }
        }
    }

    fn remember(&self, img: &Image) {
        self.ctx.images.lock().insert(img.id.clone(), img.clone());
    }

    /// Registry credentials from the pod's `imagePullSecrets` (docker config JSON).
    async fn pull_credentials(&self, pod: &Pod) -> Vec<RegistryCredential> {
        let names: Vec<String> = pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .filter(|n| !n.is_empty())
            .collect();
        let mut out = Vec::new();
        let mut sources = Sources::new(self.ctx.client.clone(), &self.ns);
        for name in names {
            let Ok(Some(secret)) = sources.secret(&name).await else {
                continue;
            };
            let data = spec::secret_data(&secret);
            let parsed: Option<serde_json::Value> = data
                .get(".dockerconfigjson")
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| v.get("auths").cloned())
                .or_else(|| {
                    data.get(".dockercfg")
                        .and_then(|b| serde_json::from_slice(b).ok())
                });
            let Some(serde_json::Value::Object(auths)) = parsed else {
                continue;
            };
            for (server, entry) in auths {
                let mut username = entry["username"].as_str().unwrap_or_default().to_string();
                let mut password = entry["password"].as_str().unwrap_or_default().to_string();
                if let Some(auth) = entry["auth"].as_str() {
                    use base64::Engine;
                    if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(auth)
                        && let Some((u, p)) = String::from_utf8_lossy(&raw).split_once(':')
                    {
                        username = u.to_string();
                        password = p.to_string();
                    }
                }
                let server = server
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .trim_end_matches("/v1")
                    .to_string();
                out.push(RegistryCredential {
                    server,
                    username,
                    password,
                });
            }
        }
        out
    }

    async fn container_config(
        &self,
        pod: &Pod,
        c: &SpecContainer,
        image: &Image,
        attempt: u32,
        volume_paths: &HashMap<String, PathBuf>,
    ) -> Result<ContainerConfig, ConfigError> {
        let cfg = &self.ctx.config;
        let ips = self.pod_ips.clone().unwrap_or_default();
        let (host, _) = spec::hostname(pod, &cfg.cluster_domain);
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let hostname = if host_network {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_string())
                .unwrap_or(host)
        } else {
            host
        };
        let mut sources = Sources::new(self.ctx.client.clone(), &self.ns);
        let env = spec::environment(
            &self.ctx.client,
            &mut sources,
            pod,
            c,
            image,
            &hostname,
            &self.ctx.facts,
            &ips,
        )
        .await?;
        let argv = spec::argv(c, image, &spec::env_map(&env));
        let qos = pod
            .status
            .as_ref()
            .and_then(|s| s.qos_class.clone())
            .unwrap_or_else(|| status::qos_class(pod).to_string());
        let linux = spec::linux_config(pod, c, &qos, self.ctx.facts.memory_bytes);
        spec::verify_non_root(pod, c, image, &linux)?;

        let mut mounts = volumes::mounts(pod, c, volume_paths)?;
        let mounted = |p: &str| {
            mounts
                .iter()
                .any(|m| m.container_path == std::path::Path::new(p))
        };
        let dir = self.pod_dir();
        let mut extra = Vec::new();
        for (file, target) in [
            ("etc-hosts", "/etc/hosts"),
            ("resolv.conf", "/etc/resolv.conf"),
            ("hostname", "/etc/hostname"),
        ] {
            if !mounted(target) {
                extra.push(Mount {
                    container_path: target.into(),
                    host_path: dir.join(file),
                    read_only: false,
                });
            }
        }
        let term_path = c
            .termination_message_path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/dev/termination-log".into());
        let term_file = self.termination_file(&c.name, attempt);
        if let Some(parent) = term_file.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| ConfigError(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&term_file, b"")
            .map_err(|e| ConfigError(format!("cannot create {}: {e}", term_file.display())))?;
        if !mounted(&term_path) {
            extra.push(Mount {
                container_path: term_path.into(),
                host_path: term_file,
                read_only: false,
            });
        }
        mounts.extend(extra);

        let log_path = self.log_dir().join(&c.name).join(format!("{attempt}.log"));
        if let Some(parent) = log_path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| ConfigError(format!("cannot create {}: {e}", parent.display())))?;
        }
        let mut labels = status::pod_labels(pod);
        labels.insert(labels::CONTAINER_NAME.to_string(), c.name.clone());
        labels.insert(labels::CONTAINER_ATTEMPT.to_string(), attempt.to_string());
        let working_dir = c
            .working_dir
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| image.config.working_dir.clone());
        Ok(ContainerConfig {
            name: c.name.clone(),
            attempt,
            image: image.id.clone(),
            image_ref: c.image.clone().unwrap_or_default(),
            argv,
            env,
            working_dir,
            mounts,
            tty: c.tty.unwrap_or(false),
            stdin: c.stdin.unwrap_or(false),
            stdin_once: c.stdin_once.unwrap_or(false),
            log_path,
            linux,
            labels,
        })
    }

    fn termination_file(&self, name: &str, attempt: u32) -> PathBuf {
        self.pod_dir()
            .join("containers")
            .join(name)
            .join(format!("termination-log-{attempt}"))
    }

    /// Termination messages of containers that just exited: the file they wrote, or
    /// with `FallbackToLogsOnError` the end of their log after a failure.
    async fn read_termination_messages(&mut self, pod: &Pod, containers: &[Container]) {
        let spec = pod.spec.clone().unwrap_or_default();
        for rc in containers {
            if rc.state != ContainerState::Exited || self.messages.contains_key(&rc.id) {
                continue;
            }
            let name = name_of(rc);
            let Some(c) = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|c| c.name == name)
            else {
                continue;
            };
            let file = self.termination_file(name, attempt_of(rc));
            let mut msg = tokio::fs::read(&file)
                .await
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(4096)]).into_owned())
                .unwrap_or_default();
            if msg.is_empty()
                && rc.exit_code.unwrap_or(0) != 0
                && c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError")
            {
                msg = log_tail(&rc.log_path, 80, 2048).await;
            }
            self.messages.insert(rc.id.clone(), msg);
        }
    }
}

/// The last `lines` lines (at most `bytes` bytes) of a CRI log file, as plain text.
async fn log_tail(path: &std::path::Path, lines: usize, bytes: usize) -> String {
    let Ok(raw) = tokio::fs::read_to_string(path).await else {
        return String::new();
    };
    let mut text = String::new();
    for line in raw.lines() {
        // `<time> <stream> <P|F> <content>`
        let mut parts = line.splitn(4, ' ');
        let (_, _, tag, content) = (parts.next(), parts.next(), parts.next(), parts.next());
        text.push_str(content.unwrap_or_default());
        if tag != Some("P") {
            text.push('\n');
        }
    }
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    let start = tail.len().saturating_sub(bytes);
    let start = (start..tail.len())
        .find(|i| tail.is_char_boundary(*i))
        .unwrap_or(tail.len());
    tail[start..].to_string()
}

async fn write_if_changed(path: &std::path::Path, content: &[u8]) -> std::io::Result<()> {
    if tokio::fs::read(path).await.ok().as_deref() == Some(content) {
        return Ok(());
    }
    tokio::fs::write(path, content).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_prints_them() {
        assert_eq!(go_seconds(Duration::from_secs(10)), "10s");
        assert_eq!(go_seconds(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_seconds(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_millis(Duration::from_millis(532)), "532ms");
        assert_eq!(go_millis(Duration::from_millis(1200)), "1.2s");
    }

    #[test]
    fn backoff_doubles_to_its_maximum() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(300));
        let now = SystemTime::now();
        assert_eq!(b.remaining("c", now), None);
        b.next("c", now);
        assert!(b.remaining("c", now).is_some());
        assert_eq!(b.current("c"), Duration::from_secs(10));
        for _ in 0..10 {
            b.next("c", now);
        }
        assert_eq!(b.current("c"), Duration::from_secs(300));
    }
}

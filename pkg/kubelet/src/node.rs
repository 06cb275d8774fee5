//! This node as the API sees it: the Node object (labels, capacity and allocatable from
//! the machine, addresses, nodeInfo, conditions, the kubelet's endpoint), its Lease in
//! `kube-node-lease` renewed every 10 s, and its status posted when it changes (or every
//! `node_status_report_period`, as upstream's kubelet does once it has a Lease).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::events::{EventType, Recorder};
use crate::eviction::{Manager as Eviction, Pressure, Signal};
use crate::runtime::RuntimeVersion;
use crate::{Config, Error};

/// Where node Leases live.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The node's machine: what it has and what it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// CPUs.
    pub cpus: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Size of the filesystem holding the kubelet's folder, in bytes.
    pub ephemeral_bytes: u64,
    /// `/etc/machine-id`.
    pub machine_id: String,
    /// The firmware's UUID (the machine id when unreadable).
    pub system_uuid: String,
    /// This boot's id.
    pub boot_id: String,
    /// `uname -r`.
    pub kernel_version: String,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os_image: String,
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

impl Machine {
    /// Reads this machine's facts; the kubelet's folder `root` decides the filesystem.
    pub fn detect(root: &std::path::Path) -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map(|kb| kb * 1024)
            .unwrap_or(0);
        // The statvfs field types differ between platforms; u64 holds them all.
        #[allow(clippy::useless_conversion)]
        let ephemeral_bytes = nix::sys::statvfs::statvfs(root)
            .map(|s| u64::from(s.blocks()).saturating_mul(u64::from(s.fragment_size())))
            .unwrap_or(0);
        let machine_id = read_trim("/etc/machine-id")
            .or_else(|| read_trim("/var/lib/dbus/machine-id"))
            .unwrap_or_default();
        let system_uuid = read_trim("/sys/class/dmi/id/product_uuid")
            .map(|s| s.to_lowercase())
            .unwrap_or_else(|| machine_id.clone());
        let boot_id = read_trim("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        let kernel_version = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| "Linux".into());
        Self {
            cpus,
            memory_bytes,
            ephemeral_bytes,
            machine_id,
            system_uuid,
            boot_id,
            kernel_version,
            os_image,
        }
    }
}

/// Go's architecture names, as `kubernetes.io/arch` uses them.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn now_time() -> Value {
    serde_json::to_value(Time(Timestamp::now())).unwrap_or(Value::Null)
}

/// Registers and heartbeats this node; cheap to clone.
#[derive(Clone)]
pub struct NodeAgent {
    inner: Arc<Inner>,
}

struct Inner {
    client: kube::Client,
    config: Arc<Config>,
    runtime_version: RuntimeVersion,
    kubelet_version: Mutex<String>,
    machine: Machine,
    recorder: Recorder,
    pressure: Arc<Eviction>,
    network_ready: AtomicBool,
    /// The status last posted, heartbeat times left out, and when.
    posted: Mutex<Option<(Value, tokio::time::Instant)>>,
    uid: Mutex<Option<String>>,
}

impl NodeAgent {
    /// An agent for the node `config` names.
    pub fn new(
        client: kube::Client,
        config: Arc<Config>,
        runtime_version: RuntimeVersion,
        recorder: Recorder,
        pressure: Arc<Eviction>,
    ) -> Self {
        let machine = Machine::detect(&config.root_dir);
        Self {
            inner: Arc::new(Inner {
                client,
                config,
                runtime_version,
                kubelet_version: Mutex::new(String::new()),
                machine,
                recorder,
                pressure,
                network_ready: AtomicBool::new(false),
                posted: Mutex::new(None),
                uid: Mutex::new(None),
            }),
        }
    }

    fn api(&self) -> Api<Node> {
        Api::all(self.inner.client.clone())
    }

    /// The labels a kubelet sets on its Node: only those NodeRestriction lets a node set
    /// (role labels are the server's to set, as k3s's server does).
    fn labels(&self) -> Value {
        let c = &self.inner.config;
        json!({
            "beta.kubernetes.io/arch": go_arch(),
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": go_arch(),
            "kubernetes.io/hostname": c.node_name,
            "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": "k1s",
        })
    }

    /// The conditions this node posts, keeping the transition times of those unchanged
    /// since `old`.
    fn conditions(&self, old: Option<&Node>) -> Value {
        let ready = self.inner.network_ready.load(Ordering::SeqCst);
        let (rs, rr, rm) = if ready {
            ("True", "KubeletReady", "kubelet is posting ready status")
        } else {
            (
                "False",
                "KubeletNotReady",
                "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: pod network not initialized",
            )
        };
        let mut list: Vec<(&str, &str, &str, &str)> = Pressure::ALL
            .iter()
            .map(|p| {
                let on = self.inner.pressure.under(*p);
                let (reason, message, _) = p.texts(on);
                let status = if on { "True" } else { "False" };
                (p.condition_type(), status, reason, message)
            })
            .collect();
        list.push(("Ready", rs, rr, rm));
        let now = now_time();
        let old = old
            .and_then(|n| n.status.as_ref())
            .and_then(|s| s.conditions.as_ref());
        Value::Array(
            list.iter()
                .map(|(ty, status, reason, message)| {
                    let since = old
                        .and_then(|cs| cs.iter().find(|c| c.type_ == *ty && c.status == *status))
                        .and_then(|c| c.last_transition_time.clone())
                        .and_then(|t| serde_json::to_value(t).ok())
                        .unwrap_or_else(|| now.clone());
                    json!({"type": ty, "status": status, "lastHeartbeatTime": now,
                           "lastTransitionTime": since, "reason": reason, "message": message})
                })
                .collect(),
        )
    }

    fn status(&self, old: Option<&Node>) -> Value {
        let c = &self.inner.config;
        let m = &self.inner.machine;
        let capacity = json!({
            "cpu": m.cpus.to_string(),
            "ephemeral-storage": format!("{}Ki", m.ephemeral_bytes / 1024),
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
            "memory": format!("{}Ki", m.memory_bytes / 1024),
            "pods": c.max_pods.to_string(),
        });
        // As upstream, the hard eviction thresholds are kept back from pods.
        let eviction = &c.eviction;
        let reserved = |signal: Signal, capacity: u64| {
            eviction.hard(signal).map_or(0, |t| {
                u64::try_from(t.value.amount(i64::try_from(capacity).unwrap_or(i64::MAX)))
                    .unwrap_or(0)
            })
        };
        let memory = m
            .memory_bytes
            .saturating_sub(reserved(Signal::MemoryAvailable, m.memory_bytes));
        let ephemeral = m
            .ephemeral_bytes
            .saturating_sub(reserved(Signal::NodeFsAvailable, m.ephemeral_bytes));
        let allocatable = json!({
            "cpu": m.cpus.to_string(),
            "ephemeral-storage": ephemeral.to_string(),
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
            // A quantity of nothing is written `0`, as upstream's.
            "memory": if memory < 1024 { "0".to_string() } else { format!("{}Ki", memory / 1024) },
            "pods": c.max_pods.to_string(),
        });
        let v = &self.inner.runtime_version;
        json!({
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": self.conditions(old),
            "addresses": [
                {"type": "InternalIP", "address": c.node_ip.to_string()},
                {"type": "Hostname", "address": c.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": c.kubelet_port}},
            "nodeInfo": {
                "machineID": m.machine_id,
                "systemUUID": m.system_uuid,
                "bootID": m.boot_id,
                "kernelVersion": m.kernel_version,
                "osImage": m.os_image,
                "containerRuntimeVersion": format!("{}://{}", v.name, v.version),
                "kubeletVersion": self.inner.kubelet_version.lock().clone(),
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": go_arch(),
            },
        })
    }

    /// Creates the Node (or, registered before, refreshes its labels and status) and its
    /// Lease, and says so in events as upstream's kubelet does.
    pub async fn register(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let c = &inner.config;
        let version = inner
            .client
            .apiserver_version()
            .await
            .map(|v| v.git_version)
            .unwrap_or_else(|_| "v1.35.0".into());
        *inner.kubelet_version.lock() = version;
        let mut spec = json!({});
        if let Some(cidr) = &c.pod_cidr {
            spec = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
        }
        let obj = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": c.node_name,
                "labels": self.labels(),
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": spec,
        });
        let node: Node =
            serde_json::from_value(obj).map_err(|e| Error::Io(format!("node object: {e}")))?;
        let api = self.api();
        let mut created = false;
        let uid = match api.create(&PostParams::default(), &node).await {
            Ok(n) => {
                created = true;
                n.metadata.uid
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // Registered before (a restart): our labels again, and the CIDR if unset.
                let old = api.get(&c.node_name).await?;
                let mut patch = json!({"metadata": {"labels": self.labels()}});
                let has_cidr = old
                    .spec
                    .as_ref()
                    .and_then(|s| s.pod_cidr.as_ref())
                    .is_some_and(|s| !s.is_empty());
                if !has_cidr && c.pod_cidr.is_some() {
                    patch["spec"] = spec;
                }
                api.patch(&c.node_name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
                old.metadata.uid
            }
            Err(e) => return Err(e.into()),
        };
        *inner.uid.lock() = uid.clone();
        // A node registered before keeps its Ready status until the network is up again
        // (a moment after a restart) rather than flapping NotReady.
        if created || inner.network_ready.load(Ordering::SeqCst) {
            self.post_status(true).await?;
        }
        self.renew_lease().await?;
        let status = |s: &str| format!("Node {} status is now: {s}", c.node_name);
        for (reason, note) in [
            ("Starting", "Starting kubelet.".to_string()),
            ("NodeHasSufficientMemory", status("NodeHasSufficientMemory")),
            ("NodeHasNoDiskPressure", status("NodeHasNoDiskPressure")),
            ("NodeHasSufficientPID", status("NodeHasSufficientPID")),
            (
                "NodeAllocatableEnforced",
                "Updated Node Allocatable limit across pods".to_string(),
            ),
        ] {
            inner
                .recorder
                .node(&c.node_name, uid.clone(), EventType::Normal, reason, note);
        }
        Ok(())
    }

    /// Marks the pod network ready: the node turns Ready at once.
    pub async fn set_network_ready(&self) {
        let inner = &self.inner;
        inner.network_ready.store(true, Ordering::SeqCst);
        if let Err(e) = self.post_status(true).await {
            tracing::warn!(error = %e, "cannot post the node status");
        }
        let c = &inner.config;
        inner.recorder.node(
            &c.node_name,
            inner.uid.lock().clone(),
            EventType::Normal,
            "NodeReady",
            format!("Node {} status is now: NodeReady", c.node_name),
        );
    }

    /// Waits until the Node has a `spec.podCIDR` and answers it.
    pub async fn wait_pod_cidr(&self) -> Result<String, Error> {
        let api = self.api();
        let name = &self.inner.config.node_name;
        let mut logged = false;
        loop {
            match api.get_opt(name).await {
                Ok(Some(node)) => {
                    if let Some(cidr) = node.spec.and_then(|s| s.pod_cidr).filter(|s| !s.is_empty())
                    {
                        return Ok(cidr);
                    }
                }
                Ok(None) => {
                    // Deleted under us: register again.
                    self.register().await?;
                }
                Err(e) => tracing::debug!(error = %e, "cannot read this node"),
            }
            if !logged {
                tracing::info!(node = %name, "waiting for the node's podCIDR");
                logged = true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Posts the status when it changed, when the report period passed, or when `force`.
    async fn post_status(&self, force: bool) -> Result<(), Error> {
        let inner = &self.inner;
        let api = self.api();
        let name = &inner.config.node_name;
        let Some(old) = api.get_opt(name).await? else {
            return self.register_again().await;
        };
        let status = self.status(Some(&old));
        let comparable = without_heartbeats(&status);
        let due = {
            let posted = inner.posted.lock();
            match &*posted {
                None => true,
                Some((last, at)) => {
                    *last != comparable || at.elapsed() >= inner.config.node_status_report_period
                }
            }
        };
        // The API's Ready may have been changed by the node lifecycle controller.
        let api_ready = old
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.clone());
        let want_ready = if inner.network_ready.load(Ordering::SeqCst) {
            "True"
        } else {
            "False"
        };
        if !(force || due || api_ready.as_deref() != Some(want_ready)) {
            return Ok(());
        }
        self.pressure_events(&old);
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?;
        *inner.posted.lock() = Some((comparable, tokio::time::Instant::now()));
        Ok(())
    }

    /// The events upstream's kubelet posts when a pressure condition turns on or off
    /// (`Node n status is now: NodeHasInsufficientMemory`).
    fn pressure_events(&self, old: &Node) {
        let inner = &self.inner;
        let conds = old.status.as_ref().and_then(|s| s.conditions.as_ref());
        for p in Pressure::ALL {
            let on = inner.pressure.under(p);
            let was = conds
                .and_then(|cs| cs.iter().find(|c| c.type_ == p.condition_type()))
                .map(|c| c.status == "True");
            if was.is_some_and(|w| w != on) {
                let (_, _, event) = p.texts(on);
                let name = &inner.config.node_name;
                inner.recorder.node(
                    name,
                    inner.uid.lock().clone(),
                    EventType::Normal,
                    event,
                    format!("Node {name} status is now: {event}"),
                );
            }
        }
    }

    fn register_again(&self) -> futures::future::BoxFuture<'_, Result<(), Error>> {
        Box::pin(self.register())
    }

    /// Renews the node's Lease, creating it when missing.
    async fn renew_lease(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let name = &inner.config.node_name;
        let api: Api<Lease> = Api::namespaced(inner.client.clone(), LEASE_NAMESPACE);
        let now = serde_json::to_value(MicroTime(Timestamp::now())).unwrap_or(Value::Null);
        let spec = json!({
            "holderIdentity": name,
            "leaseDurationSeconds": inner.config.lease_duration_seconds,
            "renewTime": now,
        });
        match api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => {
                // Owned by the Node, so it goes with it.
                let owner = inner.uid.lock().clone().map(
                    |uid| json!([{"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid}]),
                );
                let lease: Lease = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": LEASE_NAMESPACE,
                                 "ownerReferences": owner.unwrap_or(json!([]))},
                    "spec": spec,
                }))
                .map_err(|e| Error::Io(format!("lease object: {e}")))?;
                match api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Renews the Lease and checks the status every `node_status_update_period`, until
    /// aborted.
    pub async fn heartbeat(self) {
        let period = self.inner.config.node_status_update_period;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = self.renew_lease().await {
                tracing::warn!(error = %e, "cannot renew the node lease");
            }
            if let Err(e) = self.post_status(false).await {
                tracing::warn!(error = %e, "cannot post the node status");
            }
        }
    }
}

/// The status with its conditions' heartbeat times left out, to tell a change.
fn without_heartbeats(status: &Value) -> Value {
    let mut s = status.clone();
    if let Some(conds) = s.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conds {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastHeartbeatTime");
            }
        }
    }
    s
}

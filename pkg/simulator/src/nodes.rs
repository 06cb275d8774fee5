//! Registration and heartbeats of simulated nodes: the Node objects, their Leases in
//! `kube-node-lease` (renewed every 10 s, spread over the interval so 1000 nodes make a
//! steady 100 writes/s rather than bursts), and their status (posted every 5 min, or at
//! once when the Ready condition the API holds is not the one the node would post, e.g.
//! after the node lifecycle controller marked it Unknown).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::{Config, Error, LEASE_NAMESPACE, SimNode, TYPE_LABEL};

/// The kubelet's conditions, in its order, with their healthy status, reason and message.
const CONDITIONS: [(&str, &str, &str, &str); 4] = [
    (
        "MemoryPressure",
        "False",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
    ),
    (
        "DiskPressure",
        "False",
        "KubeletHasNoDiskPressure",
        "kubelet has no disk pressure",
    ),
    (
        "PIDPressure",
        "False",
        "KubeletHasSufficientPID",
        "kubelet has sufficient PID available",
    ),
    (
        "Ready",
        "True",
        "KubeletReady",
        "kubelet is posting ready status",
    ),
];

fn now_json() -> Value {
    serde_json::to_value(Time(Timestamp::now())).unwrap_or(Value::Null)
}

/// A stable, fake identifier of `len` hex digits derived from `seed`.
pub(crate) fn fake_hex(seed: &str, len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut round = 0u64;
    while out.len() < len {
        for b in seed.bytes().chain(round.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
        round += 1;
    }
    out.truncate(len);
    out
}

/// The conditions a healthy node posts, keeping the transition times of those that did
/// not change.
fn conditions(old: Option<&Node>) -> Value {
    let now = now_json();
    let old = old
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.conditions.as_ref());
    let list: Vec<Value> = CONDITIONS
        .iter()
        .map(|(ty, status, reason, message)| {
            let since = old
                .and_then(|cs| cs.iter().find(|c| c.type_ == *ty && c.status == *status))
                .and_then(|c| c.last_transition_time.clone())
                .and_then(|t| serde_json::to_value(t).ok())
                .unwrap_or_else(|| now.clone());
            json!({"type": ty, "status": status, "lastHeartbeatTime": now,
                   "lastTransitionTime": since, "reason": reason, "message": message})
        })
        .collect();
    Value::Array(list)
}

fn node_status(
    config: &Config,
    name: &str,
    node: &SimNode,
    version: &str,
    old: Option<&Node>,
) -> Value {
    let capacity: serde_json::Map<String, Value> = config
        .capacity
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let arch = std::env::consts::ARCH
        .replace("x86_64", "amd64")
        .replace("aarch64", "arm64");
    json!({
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": conditions(old),
        "addresses": [
            {"type": "InternalIP", "address": node.host_ip},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": fake_hex(&format!("machine/{name}"), 32),
            "systemUUID": fake_hex(&format!("system/{name}"), 32),
            "bootID": fake_hex(&format!("boot/{name}"), 32),
            "kernelVersion": "simulated",
            "osImage": "k1s simulated node",
            "containerRuntimeVersion": format!("simulated://{}", env!("CARGO_PKG_VERSION")),
            "kubeletVersion": version,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": arch,
        },
    })
}

fn node_object(config: &Config, name: &str, node: &SimNode, version: &str) -> Result<Node, Error> {
    let arch = std::env::consts::ARCH
        .replace("x86_64", "amd64")
        .replace("aarch64", "arm64");
    let value = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": arch,
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "simulated",
                TYPE_LABEL.0: TYPE_LABEL.1,
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {
            "podCIDR": node.pod_cidr.to_string(),
            "podCIDRs": [node.pod_cidr.to_string()],
        },
        "status": node_status(config, name, node, version, None),
    });
    serde_json::from_value(value).map_err(|e| Error::Config(format!("node object: {e}")))
}

async fn register(
    client: &kube::Client,
    config: &Config,
    name: &str,
    node: &SimNode,
    version: &str,
) -> Result<(), Error> {
    let api: Api<Node> = Api::all(client.clone());
    let obj = node_object(config, name, node, version)?;
    let uid = match api.create(&PostParams::default(), &obj).await {
        Ok(n) => n.metadata.uid,
        Err(kube::Error::Api(e)) if e.code == 409 => {
            // Registered before (a restart): say it is healthy again.
            post_status(client, config, name, node, version).await?
        }
        Err(e) => return Err(e.into()),
    };
    renew_lease(client, config, name).await?;
    if config.events {
        crate::events::post_node_started(client, name, uid).await;
    }
    Ok(())
}

/// Registers every node (a few at a time) and creates their Leases.
pub(crate) async fn register_all(
    client: &kube::Client,
    config: &Arc<Config>,
    nodes: &Arc<HashMap<String, SimNode>>,
    version: &str,
) -> Result<(), Error> {
    let names: Vec<String> = nodes.keys().cloned().collect();
    let results: Vec<Result<(), Error>> = futures::stream::iter(names)
        .map(|name| {
            let (client, config, nodes, version) = (
                client.clone(),
                config.clone(),
                nodes.clone(),
                version.to_string(),
            );
            async move {
                match nodes.get(&name) {
                    Some(node) => register(&client, &config, &name, node, &version).await,
                    None => Ok(()),
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Posts the node's status: healthy conditions with a fresh heartbeat. Returns the
/// node's uid (`None` when the node is gone).
async fn post_status(
    client: &kube::Client,
    config: &Config,
    name: &str,
    node: &SimNode,
    version: &str,
) -> Result<Option<String>, Error> {
    let api: Api<Node> = Api::all(client.clone());
    let old = api.get_opt(name).await?;
    let Some(old) = old else {
        // Deleted by someone: a kubelet re-registers only when it restarts.
        return Ok(None);
    };
    let status = node_status(config, name, node, version, Some(&old));
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await?;
    Ok(old.metadata.uid)
}

/// Renews the node's Lease, creating it when missing.
async fn renew_lease(client: &kube::Client, config: &Config, name: &str) -> Result<(), Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = serde_json::to_value(MicroTime(Timestamp::now())).unwrap_or(Value::Null);
    let spec = json!({
        "holderIdentity": name,
        "leaseDurationSeconds": config.lease_duration_seconds,
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
            // The kubelet owns its Lease by the Node, so the Lease goes with the Node.
            let nodes: Api<Node> = Api::all(client.clone());
            let owner =
                nodes.get_opt(name).await?.and_then(|n| n.metadata.uid).map(
                    |uid| json!([{"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid}]),
                );
            let lease: Lease = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": LEASE_NAMESPACE,
                             "ownerReferences": owner.unwrap_or(json!([]))},
                "spec": spec,
            }))
            .map_err(|e| Error::Config(format!("lease object: {e}")))?;
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// How often the heartbeat schedule wakes to start the renewals that came due.
const HEARTBEAT_WAKE: Duration = Duration::from_millis(100);

/// Renews Leases and posts statuses until aborted. Node `i` of `n` renews at offset
/// `i/n` of each interval; its status goes out every `status_report_interval`, and at
/// once when the API says it is not Ready.
///
/// The schedule is kept by the clock, not by one timer tick per node: on a busy server
/// each wake-up comes late, and a thousand late ticks a round stretched the 10 s round to
/// a minute or more (Leases 45 s old on average, nodes marked Unknown, their pods made
/// not Ready in the middle of the workloads benchmark). A renewal waits for its
/// write slot in its own task, so slow writes do not hold back the ones after it.
pub(crate) async fn heartbeat(
    client: kube::Client,
    config: Arc<Config>,
    nodes: Arc<HashMap<String, SimNode>>,
    version: String,
) {
    let api: Api<Node> = Api::all(client.clone());
    let (store, writer) = reflector::store();
    let selector = format!("{}={}", TYPE_LABEL.0, TYPE_LABEL.1);
    let watch = watcher(api, watcher::Config::default().labels(&selector))
        .default_backoff()
        .reflect(writer)
        .for_each(|_| futures::future::ready(()));
    tokio::spawn(watch);

    let mut names: Vec<String> = nodes.keys().cloned().collect();
    names.sort();
    let schedule = RenewalSchedule::new(names.len(), config.lease_renew_interval);
    let rounds_per_status = (config.status_report_interval.as_secs_f64()
        / config.lease_renew_interval.as_secs_f64().max(0.001))
    .round()
    .max(1.0) as u64;
    let limit = Arc::new(Semaphore::new(config.concurrency.max(1)));
    // A node whose last renewal still waits for its write gets no second one queued.
    let pending: Arc<Vec<AtomicBool>> =
        Arc::new(names.iter().map(|_| AtomicBool::new(false)).collect());
    let version = Arc::new(version);
    let start = tokio::time::Instant::now();
    let mut next: u64 = 0;
    loop {
        let (from, to) = schedule.due(next, start.elapsed());
        for k in from..to {
            let (round, i) = schedule.node_of(k);
            if pending[i].swap(true, Ordering::AcqRel) {
                continue;
            }
            let name = names[i].clone();
            let stale = store
                .get(&reflector::ObjectRef::new(&name))
                .is_some_and(|n| !is_ready(&n));
            let due = (round + i as u64).is_multiple_of(rounds_per_status);
            let (client, config, nodes, version, limit, pending) = (
                client.clone(),
                config.clone(),
                nodes.clone(),
                version.clone(),
                limit.clone(),
                pending.clone(),
            );
            tokio::spawn(async move {
                let Ok(_permit) = limit.acquire_owned().await else {
                    return;
                };
                if let Err(e) = renew_lease(&client, &config, &name).await {
                    tracing::warn!(node = %name, error = %e, "cannot renew the node lease");
                }
                if (stale || due)
                    && let Some(node) = nodes.get(&name)
                    && let Err(e) = post_status(&client, &config, &name, node, &version).await
                {
                    tracing::warn!(node = %name, error = %e, "cannot post the node status");
                }
                pending[i].store(false, Ordering::Release);
            });
        }
        next = to;
        tokio::time::sleep(HEARTBEAT_WAKE).await;
    }
}

/// When each of `count` nodes renews: renewal `k` (node `k % count`, round
/// `k / count`) is due `k / count` intervals after the start.
struct RenewalSchedule {
    count: u64,
    interval: Duration,
}

impl RenewalSchedule {
    fn new(count: usize, interval: Duration) -> Self {
        Self {
            count: (count as u64).max(1),
            interval: interval.max(Duration::from_millis(1)),
        }
    }

    /// The renewals to start now, `from..to`, given that those before `next` were
    /// started: every one due by `elapsed`, but no node twice (a schedule more than a
    /// round behind renews each node once and goes on from there).
    fn due(&self, next: u64, elapsed: Duration) -> (u64, u64) {
        let to = (elapsed.as_secs_f64() / self.interval.as_secs_f64() * self.count as f64).floor()
            as u64
            + 1;
        let from = next.max(to.saturating_sub(self.count));
        (from, to.max(from))
    }

    /// The round and node index of renewal `k`.
    fn node_of(&self, k: u64) -> (u64, usize) {
        (k / self.count, (k % self.count) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_keep_to_the_clock_and_a_late_schedule_renews_each_node_once() {
        let s = RenewalSchedule::new(1000, Duration::from_secs(10));
        // At the start node 0 is due; 10 ms later node 1 too.
        assert_eq!(s.due(0, Duration::ZERO), (0, 1));
        assert_eq!(s.due(1, Duration::from_millis(15)), (1, 2));
        // A wake-up 2.5 s late starts the 250 renewals that came due meanwhile.
        assert_eq!(s.due(2, Duration::from_millis(2515)), (2, 252));
        // Nothing new is due: nothing starts.
        assert_eq!(s.due(252, Duration::from_millis(2515)), (252, 252));
        // Three rounds behind: each node once, the newest round's, then on from there.
        let (from, to) = s.due(252, Duration::from_secs(35));
        assert_eq!(to - from, 1000);
        assert_eq!(s.node_of(from), (2, 501));
        assert_eq!(s.node_of(to - 1), (3, 500));
    }

    #[test]
    fn a_node_object_looks_like_a_kubelet_registration() {
        let config = Config::new(1);
        let sim = SimNode {
            host_ip: "172.16.0.1".into(),
            pod_cidr: "10.42.0.0/24".parse().expect("cidr"),
        };
        let node = node_object(&config, "sim-node-0", &sim, "v1.35.0").expect("node");
        let labels = node.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels["kubernetes.io/hostname"], "sim-node-0");
        assert_eq!(labels["type"], "simulated");
        assert_eq!(
            node.spec
                .as_ref()
                .and_then(|s| s.pod_cidr.clone())
                .as_deref(),
            Some("10.42.0.0/24")
        );
        let status = node.status.expect("status");
        let ready = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .expect("ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("True", Some("KubeletReady"))
        );
        let info = status.node_info.expect("nodeInfo");
        assert_eq!(info.kubelet_version, "v1.35.0");
        assert!(info.container_runtime_version.starts_with("simulated://"));
        assert_eq!(fake_hex("x", 32).len(), 32);
    }
}

//! NetworkPolicy enforcement (what kube-router's or Calico's policy controller does in
//! k3s): NetworkPolicies, Pods and Namespaces, watched through reflectors, programmed as
//! per-pod filters into an nftables table of its own (`k1s-netpol`), beside the Service
//! proxy's.
//!
//! Pod-to-pod traffic on the node's bridge is switched, not routed: the filters see it
//! because `br_netfilter` hands bridged IPv4 and IPv6 to the `inet` family's hooks
//! (`net.bridge.bridge-nf-call-iptables=1` and `-ip6tables`, as k3s sets for flannel and
//! kube-router), so
//! one `forward` hook covers bridged, routed and Service (DNATed) traffic alike, after the
//! proxy's DNAT. Traffic from the node to its pods (kubelet probes) is never filtered, as
//! upstream; a pod's traffic to the node itself is egress (the `input` hook). Replies of
//! allowed connections pass through conntrack.
//!
//! Each sync (changes batched over [`NetpolConfig::batch`]) computes what the table should
//! hold and applies only the difference (set elements, the chains of the pods that
//! changed) in one `nft` transaction; see [`rules`] for the layout.
//!
//! The table is of the `inet` family: IPv6 `ipBlock`s and the IPv6 addresses of dual-stack
//! pods are enforced in the same chains (k1s's own bridge network gives pods IPv4 only, so
//! on a k1s node that is `ipBlock`s and pods whose status lists IPv6 addresses).
//!
//! Left out for now: named ports on `ipBlock` egress peers (they cannot be resolved, as
//! upstream implementations also skip them).

mod rules;

use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Notify;

use crate::NetError;
use crate::proxy::{AbortOnDrop, nft};

/// How the policy enforcement runs.
#[derive(Debug, Clone)]
pub struct NetpolConfig {
    /// The nftables table (`inet` family) it owns; `k1s-netpol` on a node.
    pub table: String,
    /// This node's name: its pods are the ones filtered.
    pub node_name: String,
    /// How long changes are gathered before one transaction applies them.
    pub batch: Duration,
    /// The address of the built-in cluster DNS, served by the node rather than by pods:
    /// policy peers see it as a pod of `kube-system` labelled `k8s-app: kube-dns` (as
    /// CoreDNS's pods are), so the usual "allow DNS" egress rule works.
    pub dns_address: Option<Ipv4Addr>,
}

impl NetpolConfig {
    /// The node defaults: table `k1s-netpol`, 100 ms batches.
    pub fn new(node_name: impl Into<String>) -> Self {
        Self {
            table: "k1s-netpol".to_owned(),
            node_name: node_name.into(),
            batch: Duration::from_millis(100),
            dns_address: None,
        }
    }
}

/// Removes the table and everything in it (and the `ip` one of that name earlier versions
/// made); nothing if absent.
pub async fn cleanup(table: &str) -> Result<(), NetError> {
    nft(&format!(
        "add table ip {table}\ndelete table ip {table}\nadd table inet {table}\ndelete table inet {table}\n"
    ))
    .await
}

/// Makes bridged IPv4 traffic pass the `ip` family's hooks: loads `br_netfilter` when its
/// sysctls are missing and turns `bridge-nf-call-iptables` on.
pub async fn enable_bridge_netfilter() -> Result<(), NetError> {
    const KEY: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    if !std::path::Path::new(KEY).exists() {
        let out = tokio::process::Command::new("modprobe")
            .arg("br_netfilter")
            .output()
            .await
            .map_err(|e| {
                NetError::Kernel(format!("modprobe br_netfilter (apt-get install kmod): {e}"))
            })?;
        if !out.status.success() {
            return Err(NetError::Kernel(format!(
                "modprobe br_netfilter: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    if !std::fs::read_to_string(KEY).is_ok_and(|v| v.trim() == "1") {
        std::fs::write(KEY, "1").map_err(|e| {
            NetError::Kernel(format!(
                "{KEY}: {e} (network policies cannot see pod-to-pod traffic on the bridge)"
            ))
        })?;
    }
    // IPv6 on the bridge too; a kernel without IPv6 has no such key and no IPv6 to filter.
    const KEY6: &str = "/proc/sys/net/bridge/bridge-nf-call-ip6tables";
    if std::path::Path::new(KEY6).exists()
        && !std::fs::read_to_string(KEY6).is_ok_and(|v| v.trim() == "1")
        && let Err(e) = std::fs::write(KEY6, "1")
    {
        tracing::warn!(error = %e, "{KEY6}: IPv6 pod-to-pod traffic on the bridge is not filtered");
    }
    Ok(())
}

#[derive(Default)]
struct Dirty {
    set: AtomicBool,
    notify: Notify,
}

impl Dirty {
    fn mark(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

fn watch<K>(
    client: kube::Client,
    writer: reflector::store::Writer<K>,
    dirty: Arc<Dirty>,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let kind = K::kind(&()).into_owned();
    let stream = watcher(Api::<K>::all(client), watcher::Config::default())
        .default_backoff()
        // The rules read labels, addresses and ports, never managedFields: with the agent
        // in the server, the cached copy of every pod would otherwise carry them.
        .modify(|o: &mut K| o.meta_mut().managed_fields = None)
        .reflect(writer)
        .for_each(move |ev| {
            match ev {
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_))
                | Ok(watcher::Event::InitDone) => dirty.mark(),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, kind = %kind, "network policy watch"),
            }
            futures::future::ready(())
        });
    tokio::spawn(stream)
}

/// Runs the enforcement until `shutdown` completes; the rules stay in place afterwards (a
/// restart keeps pods isolated).
pub async fn run(
    client: kube::Client,
    config: NetpolConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NetError> {
    enable_bridge_netfilter().await?;
    let dirty = Arc::new(Dirty::default());
    let (policies, pol_writer) = reflector::store::<NetworkPolicy>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (namespaces, ns_writer) = reflector::store::<Namespace>();
    let _abort = AbortOnDrop(vec![
        watch(client.clone(), pol_writer, dirty.clone()),
        watch(client.clone(), pod_writer, dirty.clone()),
        watch(client, ns_writer, dirty.clone()),
    ]);
    let mut enforcer = Enforcer {
        config,
        policies,
        pods,
        namespaces,
        applied: None,
    };
    let work = async {
        let _ = enforcer.policies.wait_until_ready().await;
        let _ = enforcer.pods.wait_until_ready().await;
        let _ = enforcer.namespaces.wait_until_ready().await;
        let mut retry = Duration::from_secs(1);
        loop {
            dirty.set.store(false, Ordering::SeqCst);
            if let Err(e) = enforcer.sync().await {
                tracing::error!(error = %e, table = %enforcer.config.table, retry = ?retry, "network policy sync failed; rewriting the table");
                enforcer.applied = None;
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(30));
                continue;
            }
            retry = Duration::from_secs(1);
            if !dirty.set.load(Ordering::SeqCst) {
                dirty.notify.notified().await;
            }
            tokio::time::sleep(enforcer.config.batch).await;
        }
    };
    tokio::select! {
        _ = shutdown => Ok(()),
        () = work => Ok(()),
    }
}

struct Enforcer {
    config: NetpolConfig,
    policies: Store<NetworkPolicy>,
    pods: Store<Pod>,
    namespaces: Store<Namespace>,
    /// What the table holds; `None` before the first sync and after a failure (the next
    /// one starts from an empty table).
    applied: Option<rules::Ruleset>,
}

impl Enforcer {
    async fn sync(&mut self) -> Result<(), NetError> {
        let started = std::time::Instant::now();
        let policies = self.policies.state();
        let pods = self.pods.state();
        let namespaces = self.namespaces.state();
        let dns = self.config.dns_address.map(dns_pod);
        let cluster = rules::Cluster {
            policies: policies.iter().map(|p| p.as_ref()).collect(),
            pods: pods
                .iter()
                .map(|p| p.as_ref())
                .chain(dns.as_ref())
                .collect(),
            namespaces: namespaces.iter().map(|n| n.as_ref()).collect(),
            node_name: &self.config.node_name,
        };
        let new = cluster.ruleset();
        let table = &self.config.table;
        let mut script = String::new();
        let empty = rules::Ruleset::default();
        let old = match &self.applied {
            Some(old) => old,
            None => {
                script.push_str(&rules::base_script(table));
                &empty
            }
        };
        rules::diff_script(table, old, &new, &mut script);
        if !script.is_empty() {
            nft(&script).await?;
            tracing::debug!(
                isolated_ingress = new.ingress.len(),
                isolated_egress = new.egress.len(),
                elapsed = ?started.elapsed(),
                "network policies synced"
            );
        }
        self.applied = Some(new);
        Ok(())
    }
}

/// The built-in cluster DNS as a policy peer: a pod of `kube-system` labelled as CoreDNS's
/// are, on no node (so it is never filtered itself).
fn dns_pod(ip: Ipv4Addr) -> Pod {
    Pod {
        metadata: kube::api::ObjectMeta {
            namespace: Some("kube-system".to_owned()),
            name: Some("k1s-cluster-dns".to_owned()),
            labels: Some([("k8s-app".to_owned(), "kube-dns".to_owned())].into()),
            ..Default::default()
        },
        spec: Some(Default::default()),
        status: Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Running".to_owned()),
            pod_ip: Some(ip.to_string()),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_dns_is_a_kube_dns_peer() {
        let policy: NetworkPolicy = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "a", "name": "dns"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
                "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"protocol": "UDP", "port": 53}]}]}
        }))
        .expect("policy");
        let client: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "a", "name": "c"},
            "spec": {"nodeName": "n1", "containers": []},
            "status": {"phase": "Running", "podIP": "10.42.0.6"}
        }))
        .expect("pod");
        let dns = dns_pod(Ipv4Addr::new(10, 43, 0, 10));
        let r = rules::Cluster {
            policies: vec![&policy],
            pods: vec![&client, &dns],
            namespaces: vec![],
            node_name: "n1",
        }
        .ruleset();
        let peers: Vec<_> = r.sets.values().map(|s| s.elements.clone()).collect();
        assert_eq!(peers, vec![["10.43.0.10".to_owned()].into()]);
        assert_eq!(r.egress.len(), 1);
    }
}

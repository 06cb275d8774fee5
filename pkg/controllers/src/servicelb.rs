//! The built-in service load balancer (k3s's servicelb, "Klipper LB"), in-process: a
//! `type: LoadBalancer` Service without a `loadBalancerClass` (or with k3s's
//! [`LOAD_BALANCER_CLASS`]) gets the addresses of the cluster's ready nodes in
//! `status.loadBalancer.ingress` (`ipMode: VIP`), and the node's Service proxy makes its
//! ports answer there (as externalIPs).
//!
//! Upstream runs a DaemonSet of `svclb-*` pods holding the ports as hostPorts and lists the
//! nodes whose pod is ready; here the same choice is made from the Nodes directly:
//! - a node counts when it is Ready and not being deleted; when any node carries the label
//!   [`ENABLE_LB_LABEL`], only nodes where it is `true` count;
//! - a node's address is its ExternalIP, or its InternalIP where it has none;
//! - `externalTrafficPolicy: Local` lists only nodes with a ready endpoint of the Service;
//! - two Services cannot hold the same port and protocol (their pods would clash on the
//!   host port): the later one, by creation time, stays pending as upstream's pods would.
//!
//! Level-triggered: any change to a Service, Node or EndpointSlice recomputes every
//! LoadBalancer Service and writes only the statuses that differ. Left out: k3s's
//! `svccontroller.k3s.cattle.io/lbpool` node pools and the per-Service node selector.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{LoadBalancerIngress, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::Notify;

use crate::Shutdown;

/// The controller's name (k3s's `--disable servicelb`).
pub const NAME: &str = "servicelb";

/// The `loadBalancerClass` k3s's servicelb answers to besides none.
pub const LOAD_BALANCER_CLASS: &str = "io.cattle.field/servicelb";

/// With this label on any node, only nodes where it is `true` carry load balancers.
pub const ENABLE_LB_LABEL: &str = "svccontroller.k3s.cattle.io/enablelb";

/// The label naming the Service an EndpointSlice belongs to.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// How long changes are gathered before one pass handles them.
const BATCH: Duration = Duration::from_millis(100);

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown))
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown) {
    let changed = Arc::new(Notify::new());
    let (services, svc_writer) = reflector::store::<Service>();
    let nodes = crate::node_informer(&client);
    let node_changed = changed.clone();
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let watches = [
        tokio::spawn(
            watcher(Api::<Service>::all(client.clone()), Default::default())
                .default_backoff()
                .reflect(svc_writer)
                .for_each(notify::<Service>("Services", changed.clone())),
        ),
        tokio::spawn(nodes.subscribe().for_each(move |_| {
            node_changed.notify_one();
            futures::future::ready(())
        })),
        tokio::spawn(
            watcher(
                Api::<EndpointSlice>::all(client.clone()),
                Default::default(),
            )
            .default_backoff()
            .reflect(slice_writer)
            .for_each(notify::<EndpointSlice>("EndpointSlices", changed.clone())),
        ),
    ];
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let work = async {
        let _ = services.wait_until_ready().await;
        nodes.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
        loop {
            let failed = pass(&client, &services, &nodes, &slices).await;
            // A failed write is retried on the next change or after a while.
            let retry = tokio::time::sleep(if failed {
                Duration::from_secs(2)
            } else {
                Duration::from_secs(3600)
            });
            tokio::select! {
                _ = changed.notified() => {}
                _ = retry => {}
            }
            tokio::time::sleep(BATCH).await;
        }
    };
    tokio::select! {
        _ = &mut stop => {}
        () = work => {}
    }
    for w in watches {
        w.abort();
    }
}

/// A watch event handler that wakes the pass on every change.
fn notify<K>(
    what: &'static str,
    n: Arc<Notify>,
) -> impl FnMut(Result<watcher::Event<K>, watcher::Error>) -> futures::future::Ready<()> {
    move |ev| {
        match ev {
            Ok(_) => n.notify_one(),
            Err(e) => tracing::warn!(error = %e, "servicelb watching {what}"),
        }
        futures::future::ready(())
    }
}

/// One pass over every Service; true when a status write failed.
async fn pass(
    client: &kube::Client,
    services: &Store<Service>,
    nodes: &k1s_informer::Informer<Node>,
    slices: &Store<EndpointSlice>,
) -> bool {
    let nodes: Vec<Arc<Node>> = nodes.state();
    let services: Vec<Arc<Service>> = services.state();
    let slices: Vec<Arc<EndpointSlice>> = slices.state();
    let mut failed = false;
    for (svc, want) in desired(&services, &nodes, &slices) {
        let have = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.clone())
            .unwrap_or_default();
        if have == want {
            continue;
        }
        let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
        let name = svc.metadata.name.as_deref().unwrap_or("");
        let api: Api<Service> = Api::namespaced(client.clone(), ns);
        let ingress = if want.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::to_value(&want).unwrap_or_default()
        };
        let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}});
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => tracing::info!(
                service = %name, namespace = %ns,
                ingress = ?want.iter().filter_map(|i| i.ip.as_deref()).collect::<Vec<_>>(),
                "servicelb set the load balancer's addresses"
            ),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                tracing::warn!(service = %name, namespace = %ns, error = %e, "servicelb cannot write the Service's status");
                failed = true;
            }
        }
    }
    failed
}

/// Whether servicelb implements this Service's load balancer.
pub fn is_ours(svc: &Service) -> bool {
    svc.spec.as_ref().is_some_and(|s| {
        s.type_.as_deref() == Some("LoadBalancer")
            && s.load_balancer_class
                .as_deref()
                .is_none_or(|c| c == LOAD_BALANCER_CLASS)
    })
}

fn ready(node: &Node) -> bool {
    node.metadata.deletion_timestamp.is_none()
        && node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A node's load-balancer addresses: its ExternalIPs, or its InternalIPs without any.
fn node_addresses(node: &Node) -> Vec<String> {
    let addrs = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let of = |kind: &str| -> Vec<String> {
        addrs
            .iter()
            .filter(|a| a.type_ == kind && a.address.parse::<std::net::IpAddr>().is_ok())
            .map(|a| a.address.clone())
            .collect()
    };
    let external = of("ExternalIP");
    if external.is_empty() {
        of("InternalIP")
    } else {
        external
    }
}

fn key(svc: &Service) -> (String, String) {
    (
        svc.metadata.namespace.clone().unwrap_or_default(),
        svc.metadata.name.clone().unwrap_or_default(),
    )
}

/// The ingress each Service should have: every LoadBalancer Service servicelb serves,
/// and every other Service that still shows addresses servicelb gave it (its type
/// changed), which get none.
pub fn desired(
    services: &[Arc<Service>],
    nodes: &[Arc<Node>],
    slices: &[Arc<EndpointSlice>],
) -> Vec<(Arc<Service>, Vec<LoadBalancerIngress>)> {
    let labelled = nodes.iter().any(|n| {
        n.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ENABLE_LB_LABEL))
    });
    let eligible: Vec<&Arc<Node>> = nodes
        .iter()
        .filter(|n| ready(n))
        .filter(|n| {
            !labelled
                || n.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(ENABLE_LB_LABEL))
                    .is_some_and(|v| v == "true")
        })
        .collect();
    let mut ours: Vec<&Arc<Service>> = services.iter().filter(|s| is_ours(s)).collect();
    // The oldest Service keeps a contested port, as its pods would have bound it first.
    ours.sort_by(|a, b| {
        let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
        ta.cmp(&tb).then_with(|| key(a).cmp(&key(b)))
    });
    // Nodes with a ready endpoint, by Service (for externalTrafficPolicy Local).
    // Only those Services are looked up (the slices of thousands of others are not).
    let local: HashSet<(String, String)> = ours
        .iter()
        .filter(|s| {
            s.spec
                .as_ref()
                .is_some_and(|s| s.external_traffic_policy.as_deref() == Some("Local"))
        })
        .map(|s| key(s))
        .collect();
    let mut endpoint_nodes: HashMap<(String, String), HashSet<String>> = HashMap::new();
    for s in slices.iter().filter(|_| !local.is_empty()) {
        let Some(svc) = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let k = (
            s.metadata.namespace.clone().unwrap_or_default(),
            svc.clone(),
        );
        if !local.contains(&k) {
            continue;
        }
        let entry = endpoint_nodes.entry(k).or_default();
        for ep in &s.endpoints {
            let is_ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if let (true, Some(n)) = (is_ready, ep.node_name.as_ref()) {
                entry.insert(n.clone());
            }
        }
    }

    let mut claimed: HashMap<(String, i32), (String, String)> = HashMap::new();
    let mut out = Vec::new();
    for svc in ours {
        let Some(spec) = svc.spec.as_ref() else {
            continue;
        };
        let ports: Vec<(String, i32)> = spec
            .ports
            .iter()
            .flatten()
            .map(|p| (p.protocol.clone().unwrap_or_else(|| "TCP".into()), p.port))
            .collect();
        let clash = ports
            .iter()
            .find_map(|p| claimed.get(p).filter(|owner| **owner != key(svc)));
        if let Some((ns, name)) = clash {
            tracing::debug!(service = ?key(svc), holder = %format!("{ns}/{name}"), "servicelb: port already held; the Service stays pending");
            out.push((svc.clone(), Vec::new()));
            continue;
        }
        for p in ports {
            claimed.insert(p, key(svc));
        }
        let local = spec.external_traffic_policy.as_deref() == Some("Local");
        let with_endpoints = endpoint_nodes.get(&key(svc));
        let families: Vec<&str> = spec
            .ip_families
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let mut ips = BTreeSet::new();
        for node in &eligible {
            let name = node.metadata.name.as_deref().unwrap_or("");
            if local && !with_endpoints.is_some_and(|n| n.contains(name)) {
                continue;
            }
            for ip in node_addresses(node) {
                let family = if ip.contains(':') { "IPv6" } else { "IPv4" };
                if families.is_empty() || families.contains(&family) {
                    ips.insert(ip);
                }
            }
        }
        let ingress = ips
            .into_iter()
            .map(|ip| LoadBalancerIngress {
                ip: Some(ip),
                ip_mode: Some("VIP".into()),
                ..Default::default()
            })
            .collect();
        out.push((svc.clone(), ingress));
    }
    // A Service that is no LoadBalancer any more loses the addresses it was given.
    for svc in services {
        let stale = !is_ours(svc)
            && svc.spec.as_ref().is_some_and(|s| {
                s.type_.as_deref() != Some("LoadBalancer") && s.load_balancer_class.is_none()
            })
            && svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .is_some_and(|i| !i.is_empty());
        if stale {
            out.push((svc.clone(), Vec::new()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(v: serde_json::Value) -> Arc<Service> {
        Arc::new(serde_json::from_value(v).expect("service"))
    }

    fn node(name: &str, ready: bool, addrs: serde_json::Value) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "status": {"addresses": addrs, "conditions": [
                    {"type": "Ready", "status": if ready {"True"} else {"False"}}
                ]}
            }))
            .expect("node"),
        )
    }

    fn lb(name: &str, created: &str, port: i32) -> Arc<Service> {
        svc(json!({
            "metadata": {"namespace": "ns", "name": name, "creationTimestamp": created},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.20", "ipFamilies": ["IPv4"],
                     "ports": [{"port": port, "protocol": "TCP"}]}
        }))
    }

    fn ips(out: &[(Arc<Service>, Vec<LoadBalancerIngress>)], name: &str) -> Vec<String> {
        out.iter()
            .find(|(s, _)| s.metadata.name.as_deref() == Some(name))
            .map(|(_, i)| i.iter().filter_map(|i| i.ip.clone()).collect())
            .unwrap_or_else(|| panic!("{name} not in {out:?}"))
    }

    #[test]
    fn every_ready_node_is_listed_by_its_external_or_internal_address() {
        let nodes = vec![
            node(
                "a",
                true,
                json!([{"type": "InternalIP", "address": "192.0.2.1"}]),
            ),
            node(
                "b",
                true,
                json!([{"type": "InternalIP", "address": "10.0.0.2"},
                       {"type": "ExternalIP", "address": "198.51.100.2"},
                       {"type": "Hostname", "address": "b"}]),
            ),
            node(
                "c",
                false,
                json!([{"type": "InternalIP", "address": "192.0.2.3"}]),
            ),
        ];
        let out = desired(&[lb("web", "2024-01-01T00:00:00Z", 80)], &nodes, &[]);
        assert_eq!(ips(&out, "web"), ["192.0.2.1", "198.51.100.2"]);
        assert_eq!(out[0].1[0].ip_mode.as_deref(), Some("VIP"));
    }

    #[test]
    fn other_classes_and_types_are_left_alone_and_a_type_change_clears_the_addresses() {
        let nodes = vec![node(
            "a",
            true,
            json!([{"type": "InternalIP", "address": "192.0.2.1"}]),
        )];
        let other = svc(json!({"metadata": {"namespace": "ns", "name": "o"},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/lb",
                     "ports": [{"port": 80}]}}));
        let k3s = svc(json!({"metadata": {"namespace": "ns", "name": "k"},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": LOAD_BALANCER_CLASS,
                     "ports": [{"port": 81}]}}));
        let was = svc(json!({"metadata": {"namespace": "ns", "name": "was"},
            "spec": {"type": "ClusterIP", "ports": [{"port": 82}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}}));
        let plain = svc(json!({"metadata": {"namespace": "ns", "name": "p"},
            "spec": {"type": "ClusterIP", "ports": [{"port": 83}]}}));
        let out = desired(&[other, k3s, was, plain], &nodes, &[]);
        let names: Vec<_> = out
            .iter()
            .filter_map(|(s, _)| s.metadata.name.clone())
            .collect();
        assert_eq!(names, ["k", "was"]);
        assert_eq!(ips(&out, "k"), ["192.0.2.1"]);
        assert!(ips(&out, "was").is_empty());
    }

    #[test]
    fn the_later_service_on_a_held_port_stays_pending() {
        let nodes = vec![node(
            "a",
            true,
            json!([{"type": "InternalIP", "address": "192.0.2.1"}]),
        )];
        let out = desired(
            &[
                lb("second", "2024-01-02T00:00:00Z", 80),
                lb("first", "2024-01-01T00:00:00Z", 80),
                lb("other", "2024-01-03T00:00:00Z", 8080),
            ],
            &nodes,
            &[],
        );
        assert_eq!(ips(&out, "first"), ["192.0.2.1"]);
        assert!(ips(&out, "second").is_empty());
        assert_eq!(ips(&out, "other"), ["192.0.2.1"]);
    }

    #[test]
    fn local_traffic_lists_nodes_with_ready_endpoints_and_the_enablelb_label_narrows() {
        let mut a = Node::clone(&node(
            "a",
            true,
            json!([{"type": "InternalIP", "address": "192.0.2.1"}]),
        ));
        let b = node(
            "b",
            true,
            json!([{"type": "InternalIP", "address": "192.0.2.2"}]),
        );
        let mut s = Service::clone(&lb("web", "2024-01-01T00:00:00Z", 80));
        s.spec.as_mut().expect("spec").external_traffic_policy = Some("Local".into());
        let s = Arc::new(s);
        let slice: Arc<EndpointSlice> = Arc::new(
            serde_json::from_value(json!({
                "metadata": {"namespace": "ns", "name": "web-x",
                             "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4",
                "endpoints": [
                    {"addresses": ["10.42.0.5"], "nodeName": "b", "conditions": {"ready": true}},
                    {"addresses": ["10.42.0.6"], "nodeName": "a", "conditions": {"ready": false}}
                ]
            }))
            .expect("slice"),
        );
        let out = desired(&[s], &[Arc::new(a.clone()), b.clone()], &[slice]);
        assert_eq!(ips(&out, "web"), ["192.0.2.2"]);
        // Only labelled nodes, once one is.
        a.metadata.labels = Some([(ENABLE_LB_LABEL.to_string(), "true".to_string())].into());
        let plain = lb("plain", "2024-01-01T00:00:00Z", 81);
        let out = desired(&[plain], &[Arc::new(a), b], &[]);
        assert_eq!(ips(&out, "plain"), ["192.0.2.1"]);
    }
}

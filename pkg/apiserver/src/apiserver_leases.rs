//! The `kubernetes` Service's endpoints when several servers share one datastore:
//! upstream's "lease" endpoint reconciler.
//!
//! Each server keeps a Lease `kube-system/apiserver-<id>` (labelled
//! `apiserver.kubernetes.io/identity: kube-apiserver`, as upstream's apiserver identity
//! leases are) renewed every [`RENEW_INTERVAL`], carrying the address it advertises. Every
//! server then writes the `kubernetes` Endpoints and EndpointSlice from the live leases and
//! deletes the leases that expired, so a server that died drops out within
//! [`LEASE_DURATION_SECONDS`]. Upstream keeps these master leases as bare keys with an
//! etcd TTL of 15 s; a Lease object gives the same lifetime and `kubectl get leases`
//! shows who is serving.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use k1s_apimachinery::Status;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::ApiServer;
use crate::auth::UserInfo;
use crate::meta;
use crate::registry::generic::{DeleteOptions, WriteContext};

/// How often a server renews its lease and rewrites the endpoints.
pub const RENEW_INTERVAL: Duration = Duration::from_secs(5);
/// How long a lease lasts without renewal (upstream's master lease TTL).
pub const LEASE_DURATION_SECONDS: i64 = 15;
/// Label of upstream's apiserver identity leases.
pub const IDENTITY_LABEL: &str = "apiserver.kubernetes.io/identity";
/// Annotation carrying the `ip:port` a server advertises.
pub const ADDRESS_ANNOTATION: &str = "k1s.io/advertise-address";

fn ctx() -> WriteContext {
    WriteContext {
        user: UserInfo::loopback(),
        field_manager: "k1s".into(),
        ..WriteContext::default()
    }
}

/// The lease name of a server advertising `address`: `apiserver-` and a hash, as
/// upstream names its identity leases after a hash of the host name (the address here,
/// so that several servers on one host have a lease each).
pub fn lease_name(address: &str) -> String {
    let digest = Sha256::digest(format!("{address}kube-apiserver").as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("apiserver-{hex}")
}

fn lease_resource(server: &ApiServer) -> Result<Arc<crate::registry::Resource>, Status> {
    server
        .registry
        .snapshot()
        .get("coordination.k8s.io", "v1", "leases")
        .cloned()
        .ok_or_else(|| Status::internal_error("leases are not served"))
}

/// Creates or renews this server's lease.
async fn renew(server: &ApiServer) -> Result<(), Status> {
    let res = lease_resource(server)?;
    let name = lease_name(&server.config.advertise_address);
    let now = meta::now_micro();
    let desired = |current: Option<&Value>| {
        let mut lease = current.cloned().unwrap_or_else(|| {
            json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-system"},
                "spec": {"acquireTime": now},
            })
        });
        lease["metadata"]["labels"] = json!({IDENTITY_LABEL: "kube-apiserver"});
        lease["metadata"]["annotations"] =
            json!({ADDRESS_ANNOTATION: server.config.advertise_address});
        lease["spec"]["holderIdentity"] = json!(server.identity);
        lease["spec"]["leaseDurationSeconds"] = json!(LEASE_DURATION_SECONDS);
        lease["spec"]["renewTime"] = json!(now);
        lease
    };
    match server.generic.get(&res, Some("kube-system"), &name) {
        Ok(_) => server
            .generic
            .update(&res, Some("kube-system"), &name, None, &ctx(), |cur, _| {
                Ok(desired(cur))
            })
            .await
            .map(|_| ()),
        Err(_) => match server
            .generic
            .create(&res, Some("kube-system"), desired(None), &ctx(), Vec::new())
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.reason() == "AlreadyExists" => Ok(()),
            Err(s) => Err(s),
        },
    }
}

/// Whether a lease expired: its last renewal is older than its duration.
fn expired(lease: &Value, now: jiff::Timestamp) -> bool {
    let renewed = lease
        .pointer("/spec/renewTime")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let seconds = lease
        .pointer("/spec/leaseDurationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(LEASE_DURATION_SECONDS);
    match renewed {
        Some(t) => now.as_second() - t.as_second() > seconds,
        None => true,
    }
}

/// The addresses of the live servers, and the names of expired leases.
fn live(server: &ApiServer) -> Result<(Vec<SocketAddr>, Vec<String>), Status> {
    let res = lease_resource(server)?;
    let prefix = res.info.collection_prefix(Some("kube-system"));
    let (items, _, _) = server.generic.store().cache().list(&prefix, None, 0);
    let now = jiff::Timestamp::now();
    let mut addrs = Vec::new();
    let mut gone = Vec::new();
    for kv in items {
        let Ok(lease) = server.generic.decode_stored(&res, &kv) else {
            continue;
        };
        let labels = lease.pointer("/metadata/labels");
        if labels
            .and_then(|l| l.get(IDENTITY_LABEL))
            .and_then(Value::as_str)
            != Some("kube-apiserver")
        {
            continue;
        }
        if expired(&lease, now) {
            gone.push(meta::name(&lease).to_string());
            continue;
        }
        if let Some(addr) = lease
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(ADDRESS_ANNOTATION))
            .and_then(Value::as_str)
            .and_then(|a| a.parse::<SocketAddr>().ok())
        {
            addrs.push(addr);
        }
    }
    addrs.sort();
    addrs.dedup();
    Ok((addrs, gone))
}

/// The Endpoints and EndpointSlice of the `kubernetes` Service listing `addrs`: one
/// subset per port (servers normally share one). The EndpointSlice, whose ports apply
/// to all its endpoints, lists the servers of the lowest port.
pub fn desired_endpoints(addrs: &[SocketAddr]) -> (Value, Value) {
    let mut by_port: BTreeMap<u16, Vec<IpAddr>> = BTreeMap::new();
    for a in addrs {
        by_port.entry(a.port()).or_default().push(a.ip());
    }
    let subsets: Vec<Value> = by_port
        .iter()
        .map(|(port, ips)| {
            json!({
                "addresses": ips.iter().map(|ip| json!({"ip": ip.to_string()})).collect::<Vec<_>>(),
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            })
        })
        .collect();
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": subsets,
    });
    let (port, ips) = by_port
        .iter()
        .next()
        .map(|(p, ips)| (*p, ips.clone()))
        .unwrap_or_default();
    let family = if ips.first().is_none_or(IpAddr::is_ipv4) {
        "IPv4"
    } else {
        "IPv6"
    };
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes",
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": family,
        "endpoints": ips.iter().map(|ip| json!({"addresses": [ip.to_string()], "conditions": {"ready": true, "serving": true, "terminating": false}})).collect::<Vec<_>>(),
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    (endpoints, slice)
}

/// Writes `desired` unless the stored object already says the same.
async fn put(server: &ApiServer, group: &str, plural: &str, desired: Value) -> Result<(), Status> {
    let snap = server.registry.snapshot();
    let Some(res) = snap.get(group, "v1", plural).cloned() else {
        return Err(Status::internal_error(&format!("{plural} are not served")));
    };
    let field = if plural == "endpoints" {
        "subsets"
    } else {
        "endpoints"
    };
    match server.generic.get(&res, Some("default"), "kubernetes") {
        Ok(current) => {
            if current.get(field) == desired.get(field)
                && current.get("ports") == desired.get("ports")
            {
                return Ok(());
            }
            server
                .generic
                .update(
                    &res,
                    Some("default"),
                    "kubernetes",
                    None,
                    &ctx(),
                    |cur, _| {
                        let mut d = desired.clone();
                        if let Some(cur) = cur {
                            d["metadata"]["resourceVersion"] =
                                cur["metadata"]["resourceVersion"].clone();
                        }
                        Ok(d)
                    },
                )
                .await
                .map(|_| ())
        }
        Err(_) => match server
            .generic
            .create(&res, Some("default"), desired, &ctx(), Vec::new())
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.reason() == "AlreadyExists" => Ok(()),
            Err(s) => Err(s),
        },
    }
}

/// One round: renews this server's lease, drops expired ones and writes the endpoints.
pub async fn reconcile(server: &ApiServer) -> Result<(), Status> {
    renew(server).await?;
    let (addrs, gone) = live(server)?;
    let res = lease_resource(server)?;
    for name in gone {
        tracing::info!(lease = %name, "an API server's lease expired; removing it from the kubernetes endpoints");
        match server
            .generic
            .delete(
                &res,
                Some("kube-system"),
                &name,
                &DeleteOptions::default(),
                &ctx(),
            )
            .await
        {
            Ok(_) => {}
            Err(s) if s.reason() == "NotFound" => {}
            Err(s) => return Err(s),
        }
    }
    let (endpoints, slice) = desired_endpoints(&addrs);
    put(server, "", "endpoints", endpoints).await?;
    put(server, "discovery.k8s.io", "endpointslices", slice).await
}

/// Runs [`reconcile`] every [`RENEW_INTERVAL`] until the server shuts down.
pub fn run(server: Arc<ApiServer>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RENEW_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if server.is_shutting_down() {
                return;
            }
            if let Err(s) = reconcile(&server).await {
                tracing::warn!(error = %s.message, "cannot reconcile the kubernetes endpoints");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_list_every_live_server_by_port() {
        // Three servers, two on one port: the Endpoints carry a subset per port, the
        // slice the servers of the lowest port.
        let addrs: Vec<SocketAddr> = ["10.0.0.2:6443", "10.0.0.1:6443", "10.0.0.3:7443"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let mut sorted = addrs.clone();
        sorted.sort();
        let (ep, slice) = desired_endpoints(&sorted);
        assert_eq!(
            ep["subsets"],
            json!([
                {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]},
                {"addresses": [{"ip": "10.0.0.3"}], "ports": [{"name": "https", "port": 7443, "protocol": "TCP"}]},
            ])
        );
        assert_eq!(slice["endpoints"].as_array().map(Vec::len), Some(2));
        assert_eq!(slice["ports"][0]["port"], 6443);
    }

    #[test]
    fn a_lease_expires_after_its_duration() {
        let now = jiff::Timestamp::now();
        let at = |secs: i64| json!({"spec": {"renewTime": (now - jiff::SignedDuration::from_secs(secs)).to_string(), "leaseDurationSeconds": 15}});
        assert!(!expired(&at(5), now));
        assert!(expired(&at(20), now));
        assert!(expired(&json!({"spec": {}}), now));
    }

    #[test]
    fn lease_names_differ_per_address_and_are_stable() {
        let a = lease_name("127.0.0.1:6443");
        assert_eq!(a, lease_name("127.0.0.1:6443"));
        assert_ne!(a, lease_name("127.0.0.1:6444"));
        assert!(a.starts_with("apiserver-") && a.len() == "apiserver-".len() + 16);
    }
}

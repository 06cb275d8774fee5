//! Endpoints controller (upstream `pkg/controller/endpoint`, `endpoints-controller`): the
//! Endpoints of every Service with a selector list the addresses of the pods it selects —
//! ready ones in `addresses`, the others in `notReadyAddresses` (all in `addresses` with
//! `publishNotReadyAddresses`), terminating and terminal pods left out — with each
//! Service port resolved per pod (named target ports), repacked into subsets as
//! upstream's `RepackSubsets` does, truncated at 1000 addresses with the over-capacity
//! annotation, labelled like the Service (plus `service.kubernetes.io/headless` for
//! headless ones). Endpoints of Services without selectors are the user's and left
//! alone; Endpoints whose Service is gone are deleted.
//!
//! [`cache`] holds what this controller and the EndpointSlice controllers share.

pub mod cache;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use parking_lot::Mutex;

use self::cache::{Key, PodInfo, Watches};
use crate::Shutdown;

/// The label headless Services' Endpoints and EndpointSlices carry.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// When the change the Endpoints reflect happened.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// Set when the Endpoints hold only the first 1000 addresses.
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Leader election records live on Endpoints without a Service; they are not leftovers.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
/// The most addresses one Endpoints holds.
pub const MAX_CAPACITY: usize = 1000;

/// A Service's creation time and its pods' trigger times, as last synced.
type SeenTimes = (Option<Timestamp>, HashMap<String, Option<Timestamp>>);

/// Remembers, per Service, the trigger times last seen (upstream's
/// `TriggerTimeTracker`): a sync's trigger time is the earliest change it has not yet
/// reflected.
#[derive(Default)]
pub struct TriggerTimes {
    seen: Mutex<HashMap<Key, SeenTimes>>,
}

impl TriggerTimes {
    /// The earliest unreflected change of the Service and its pods, recording these.
    pub fn compute(&self, key: &Key, svc: &Service, pods: &[Arc<PodInfo>]) -> Option<Timestamp> {
        let mut seen = self.seen.lock();
        let entry = seen.entry(key.clone()).or_default();
        let svc_time = svc.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let mut min = (entry.0 != svc_time).then_some(svc_time).flatten();
        let mut now_seen = HashMap::with_capacity(pods.len());
        for p in pods {
            let t = p.ready_since;
            let name = p.name.clone();
            if entry.1.get(&name) != Some(&t)
                && let Some(t) = t
            {
                min = Some(min.map_or(t, |m: Timestamp| m.min(t)));
            }
            now_seen.insert(name, t);
        }
        *entry = (svc_time, now_seen);
        min
    }

    /// Forgets a deleted Service.
    pub fn forget(&self, key: &Key) {
        self.seen.lock().remove(key);
    }
}

struct Context {
    client: kube::Client,
    watches: Watches,
    triggers: TriggerTimes,
    recorder: crate::workload::Recorder,
}

/// Publishes a Warning event about an object; a failure to publish is only logged.
pub(crate) async fn warn(
    recorder: &crate::workload::Recorder,
    reference: &ObjectReference,
    reason: &str,
    note: String,
) {
    let event = kube::runtime::events::Event {
        type_: kube::runtime::events::EventType::Warning,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, reference).await {
        tracing::debug!(error = %e, reason, "cannot publish event");
    }
}

/// Why a Service's Endpoints could not be synced.
#[derive(Debug, thiserror::Error)]
#[error("cannot sync endpoints {namespace}/{name}")]
pub struct SyncError {
    namespace: String,
    name: String,
    #[source]
    source: kube::Error,
}

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown))
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown) {
    let watches = Watches::start(&client, &shutdown);
    let ctx = Arc::new(Context {
        client: client.clone(),
        watches,
        triggers: TriggerTimes::default(),
        recorder: crate::workload::recorder(client.clone(), "endpoint-controller"),
    });
    tokio::select! {
        _ = ctx.watches.wait_synced() => {}
        _ = shutdown.clone().wait() => return,
    }
    // Endpoints left behind by Services deleted while the controller was away.
    match Api::<Endpoints>::all(client)
        .list_metadata(&ListParams::default())
        .await
    {
        Ok(list) => {
            for ep in list.items {
                if ep.annotations().contains_key(LEADER_ANNOTATION) {
                    continue;
                }
                ctx.watches
                    .queue
                    .add((ep.namespace().unwrap_or_default(), ep.name_any()));
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list endpoints; leftovers stay"),
    }
    let queue = ctx.watches.queue.clone();
    cache::run_workers(queue, shutdown, |key| {
        let ctx = ctx.clone();
        async move { sync(&ctx, key).await }
    })
    .await;
}

/// A port's identity: name, number, protocol, app protocol.
type PortKey = (String, i32, String, String);
/// An address's identity in a group: IP, pod uid, readiness.
type AddrKey = (String, String, bool);

fn port_key(p: &EndpointPort) -> PortKey {
    (
        p.name.clone().unwrap_or_default(),
        p.port,
        p.protocol.clone().unwrap_or_default(),
        p.app_protocol.clone().unwrap_or_default(),
    )
}

fn address_key(a: &EndpointAddress) -> (String, String) {
    (
        a.ip.clone(),
        a.target_ref
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default(),
    )
}

/// Upstream's `RepackSubsets`: every port maps to the addresses offering it (ready
/// winning over not ready); ports with the same addresses share a subset; addresses
/// sorted by IP and uid.
pub fn repack(entries: Vec<(EndpointAddress, bool, Option<EndpointPort>)>) -> Vec<EndpointSubset> {
    type AddrSet = BTreeMap<(String, String), (EndpointAddress, bool)>;
    let mut by_port: BTreeMap<Option<PortKey>, (Option<EndpointPort>, AddrSet)> = BTreeMap::new();
    for (addr, ready, port) in entries {
        let slot = by_port
            .entry(port.as_ref().map(port_key))
            .or_insert_with(|| (port.clone(), AddrSet::new()));
        let e = slot.1.entry(address_key(&addr)).or_insert((addr, ready));
        e.1 |= ready;
    }
    let mut groups: BTreeMap<Vec<AddrKey>, (Vec<EndpointPort>, AddrSet)> = BTreeMap::new();
    for (_, (port, addrs)) in by_port {
        let key: Vec<AddrKey> = addrs
            .iter()
            .map(|((ip, uid), (_, ready))| (ip.clone(), uid.clone(), *ready))
            .collect();
        let g = groups.entry(key).or_insert_with(|| (Vec::new(), addrs));
        g.0.extend(port);
    }
    groups
        .into_values()
        .map(|(ports, addrs)| {
            let (ready, not_ready): (Vec<_>, Vec<_>) = addrs.into_values().partition(|(_, r)| *r);
            let list = |v: Vec<(EndpointAddress, bool)>| {
                let v: Vec<EndpointAddress> = v.into_iter().map(|(a, _)| a).collect();
                (!v.is_empty()).then_some(v)
            };
            EndpointSubset {
                addresses: list(ready),
                not_ready_addresses: list(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

/// Upstream's `truncateEndpoints`: past [`MAX_CAPACITY`] addresses, ready ones are kept
/// first, each subset keeping its share. Whether anything was cut.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let count = |f: fn(&EndpointSubset) -> usize| subsets.iter().map(f).sum::<usize>();
    let ready = count(|s| s.addresses.as_ref().map_or(0, Vec::len));
    let not_ready = count(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len));
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = ready > MAX_CAPACITY;
    let (max, total) = if truncate_ready {
        (MAX_CAPACITY, ready)
    } else {
        (MAX_CAPACITY - ready, not_ready)
    };
    let mut can_add = max;
    for s in subsets.iter_mut() {
        let list = if truncate_ready {
            s.not_ready_addresses = Some(Vec::new());
            &mut s.addresses
        } else {
            &mut s.not_ready_addresses
        };
        let n = list.as_ref().map_or(0, Vec::len);
        let share = (n * max).div_ceil(total.max(1)).min(can_add);
        if let Some(l) = list.as_mut() {
            l.truncate(share);
            can_add -= l.len();
        }
    }
    true
}

/// The subsets a Service's Endpoints should hold.
pub fn desired_subsets(svc: &Service, pods: &[Arc<PodInfo>]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let tolerate_unready = spec.publish_not_ready_addresses.unwrap_or(false);
    let ports = spec.ports.unwrap_or_default();
    let headless = !cache::is_service_ip_set(svc);
    let family = cache::service_families(svc).into_iter().next();
    let mut entries = Vec::new();
    for pod in pods {
        if !cache::should_pod_be_in_endpoints(pod, tolerate_unready) {
            continue;
        }
        // Headless Services without families take the pod's primary IP.
        let ip = match (&spec.ip_families, &family) {
            (Some(f), _) if !f.is_empty() => cache::pod_ip_of_family(pod, &f[0]),
            _ if headless => pod.ips.first().cloned(),
            (_, Some(f)) => cache::pod_ip_of_family(pod, f),
            _ => None,
        };
        let Some(ip) = ip else {
            tracing::debug!(pod = %pod.name, "pod has no IP of the service's family");
            continue;
        };
        let addr = EndpointAddress {
            ip,
            hostname: cache::endpoint_hostname(pod, svc),
            node_name: pod.node_name.clone(),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: Some(pod.namespace.clone()),
                name: Some(pod.name.clone()),
                uid: Some(pod.uid.clone()),
                ..Default::default()
            }),
        };
        let ready = tolerate_unready || pod.ready;
        if ports.is_empty() {
            if headless {
                entries.push((addr, ready, None));
            }
            continue;
        }
        for sp in &ports {
            let Some(port) = cache::find_port(pod, sp) else {
                tracing::debug!(pod = %pod.name, port = ?sp.name, "no suitable port for the service port");
                continue;
            };
            entries.push((
                addr.clone(),
                ready,
                Some(EndpointPort {
                    name: sp.name.clone(),
                    port,
                    protocol: sp.protocol.clone(),
                    app_protocol: sp.app_protocol.clone(),
                }),
            ));
        }
    }
    repack(entries)
}

fn without_headless(labels: Option<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let mut l = labels.cloned().unwrap_or_default();
    l.remove(HEADLESS_LABEL);
    l
}

fn strip_target_rv(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    let mut s = subsets.to_vec();
    for sub in &mut s {
        for a in sub
            .addresses
            .iter_mut()
            .flatten()
            .chain(sub.not_ready_addresses.iter_mut().flatten())
        {
            if let Some(r) = a.target_ref.as_mut() {
                r.resource_version = None;
            }
        }
    }
    s
}

async fn sync(ctx: &Context, key: Key) -> Result<(), SyncError> {
    let (ns, name) = key.clone();
    let err = |source| SyncError {
        namespace: ns.clone(),
        name: name.clone(),
        source,
    };
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(svc) = ctx.watches.cache.service(&key) else {
        ctx.triggers.forget(&key);
        return match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::debug!(endpoints = %format!("{ns}/{name}"), "deleted endpoints of a deleted service");
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(err(e)),
        };
    };
    if cache::service_selector(&svc).is_none() {
        // The user's Endpoints (or the API server's, for `kubernetes`).
        return Ok(());
    }
    let pods = ctx.watches.cache.selected_pods(&key);
    let trigger = ctx.triggers.compute(&key, &svc, &pods);
    let mut subsets = desired_subsets(&svc, &pods);

    let current = api.get_opt(&name).await.map_err(err)?;
    let svc_labels = svc.metadata.labels.clone().unwrap_or_default();
    if let Some(cur) = &current {
        let cur_subsets = strip_target_rv(cur.subsets.as_deref().unwrap_or_default());
        let total: usize = subsets
            .iter()
            .map(|s| {
                s.addresses.as_ref().map_or(0, Vec::len)
                    + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
            })
            .sum();
        let capacity_ok = total <= MAX_CAPACITY && !cur.annotations().contains_key(OVER_CAPACITY);
        if cur_subsets == subsets
            && without_headless(cur.metadata.labels.as_ref()) == svc_labels
            && capacity_ok
        {
            return Ok(());
        }
    }
    let mut new = current.clone().unwrap_or_else(|| Endpoints {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        subsets: None,
    });
    let annotations = new.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match trigger {
        Some(t) => {
            annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), t.to_string());
        }
        None => {
            annotations.remove(LAST_CHANGE_TRIGGER_TIME);
        }
    }
    if truncate(&mut subsets) {
        annotations.insert(OVER_CAPACITY.into(), "truncated".into());
    } else {
        annotations.remove(OVER_CAPACITY);
    }
    let mut labels = svc_labels;
    if cache::is_service_ip_set(&svc) {
        labels.remove(HEADLESS_LABEL);
    } else {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    new.metadata.labels = Some(labels);
    new.subsets = (!subsets.is_empty()).then_some(subsets);
    let result = match &current {
        None => api.create(&PostParams::default(), &new).await,
        Some(_) => api.replace(&name, &PostParams::default(), &new).await,
    };
    match result {
        Ok(_) => Ok(()),
        // The namespace is terminating: creates keep failing, and the Service goes too.
        Err(kube::Error::Api(s))
            if current.is_none() && s.code == 403 && s.message.contains("terminat") =>
        {
            Ok(())
        }
        Err(e) => {
            let reference = ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Endpoints".into()),
                namespace: Some(ns.clone()),
                name: Some(name.clone()),
                uid: current.as_ref().and_then(|c| c.metadata.uid.clone()),
                ..Default::default()
            };
            let (reason, note) = if current.is_none() {
                (
                    "FailedToCreateEndpoint",
                    format!("Failed to create endpoint for service {ns}/{name}: {e}"),
                )
            } else {
                (
                    "FailedToUpdateEndpoint",
                    format!("Failed to update endpoint {ns}/{name}: {e}"),
                )
            };
            warn(&ctx.recorder, &reference, reason, note).await;
            Err(err(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn addr(ip: &str) -> EndpointAddress {
        EndpointAddress {
            ip: ip.into(),
            ..Default::default()
        }
    }

    fn port(name: &str, n: i32) -> Option<EndpointPort> {
        Some(EndpointPort {
            name: Some(name.into()),
            port: n,
            protocol: Some("TCP".into()),
            app_protocol: None,
        })
    }

    #[test]
    fn repack_groups_ports_with_the_same_addresses() {
        let subsets = repack(vec![
            (addr("10.0.0.2"), true, port("http", 80)),
            (addr("10.0.0.2"), true, port("https", 443)),
            (addr("10.0.0.1"), false, port("http", 80)),
            (addr("10.0.0.1"), false, port("https", 443)),
        ]);
        assert_eq!(subsets.len(), 1);
        let s = &subsets[0];
        assert_eq!(s.addresses.as_ref().unwrap()[0].ip, "10.0.0.2");
        assert_eq!(s.not_ready_addresses.as_ref().unwrap()[0].ip, "10.0.0.1");
        assert_eq!(s.ports.as_ref().unwrap().len(), 2);
        // A pod offering only one port gets its own subset.
        let subsets = repack(vec![
            (addr("10.0.0.1"), true, port("http", 80)),
            (addr("10.0.0.2"), true, port("http", 8080)),
        ]);
        assert_eq!(subsets.len(), 2);
    }

    #[test]
    fn over_capacity_keeps_ready_addresses_first() {
        let many = |n: usize, base: u32| -> Vec<EndpointAddress> {
            (0..n)
                .map(|i| addr(&format!("10.{}.{}.{}", base, i / 250, i % 250)))
                .collect()
        };
        let mut subsets = vec![EndpointSubset {
            addresses: Some(many(900, 1)),
            not_ready_addresses: Some(many(300, 2)),
            ports: None,
        }];
        assert!(truncate(&mut subsets));
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 900);
        assert_eq!(subsets[0].not_ready_addresses.as_ref().unwrap().len(), 100);
    }

    #[test]
    fn pods_become_ready_and_not_ready_addresses_with_resolved_ports() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.43.0.10",
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}
        }))
        .unwrap();
        let pod = |name: &str, ip: &str, ready: &str| -> Arc<PodInfo> {
            Arc::new(PodInfo::from(
                &serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(json!({
                    "metadata": {"name": name, "namespace": "ns", "uid": name},
                    "spec": {"nodeName": "n1", "hostname": name, "subdomain": "web",
                             "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
                    "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                               "conditions": [{"type": "Ready", "status": ready}]}
                }))
                .unwrap(),
            ))
        };
        let subsets = desired_subsets(
            &svc,
            &[
                pod("a", "10.42.0.1", "True"),
                pod("b", "10.42.0.2", "False"),
            ],
        );
        assert_eq!(subsets.len(), 1);
        let s = &subsets[0];
        let a = &s.addresses.as_ref().unwrap()[0];
        assert_eq!(a.ip, "10.42.0.1");
        assert_eq!(a.hostname.as_deref(), Some("a"));
        assert_eq!(a.node_name.as_deref(), Some("n1"));
        assert_eq!(a.target_ref.as_ref().unwrap().name.as_deref(), Some("a"));
        assert_eq!(s.not_ready_addresses.as_ref().unwrap()[0].ip, "10.42.0.2");
        assert_eq!(s.ports.as_ref().unwrap()[0].port, 8080);
    }
}

//! EndpointSlice controller (upstream `pkg/controller/endpointslice` and the staging
//! `endpointslice` reconciler, `endpointslice-controller`): every Service with a
//! selector gets EndpointSlices `<service>-<random>` of at most 100 endpoints, one group
//! per address type (the Service's IP families) and per set of resolved ports, each
//! endpoint a selected pod with its `ready`/`serving`/`terminating` conditions
//! (terminating pods stay, not ready), hostname, node name, zone and target reference;
//! labelled `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`,
//! owned by the Service (the garbage collector removes them with it). Existing slices
//! keep the endpoints they hold so updates touch few slices; a Service without
//! endpoints keeps one empty placeholder slice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;

use kube::{Api, Resource, ResourceExt};
use parking_lot::RwLock;

pub mod mirroring;

use crate::Shutdown;
use crate::endpoints::cache::{self, Key, PodInfo, Watches};
use crate::endpoints::{HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME, TriggerTimes};

/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming a slice's manager.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value of [`MANAGED_BY_LABEL`].
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Upstream's `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// The node label giving an endpoint's zone.
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Why a Service's slices could not be synced.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// An API call failed.
    #[error("cannot sync endpoint slices of {namespace}/{name}")]
    Api {
        /// Namespace.
        namespace: String,
        /// Service.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Pods run on nodes not (yet) known; they are left out until they are.
    #[error("skipping pods of {0} whose node is not found: {1}")]
    NodeNotFound(String, String),
}

struct Context {
    client: kube::Client,
    watches: Watches,
    /// Node name → its zone, for every node.
    nodes: RwLock<HashMap<String, Option<String>>>,
    triggers: TriggerTimes,
    recorder: crate::workload::Recorder,
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
        nodes: RwLock::new(HashMap::new()),
        triggers: TriggerTimes::default(),
        recorder: crate::workload::recorder(client.clone(), "endpoint-slice-controller"),
    });
    let nodes_ctx = ctx.clone();
    let nodes_synced = Arc::new(tokio::sync::Notify::new());
    let nodes_listed = nodes_synced.clone();
    cache::spawn_until(
        async move {
            let stream = crate::node_informer(&client)
                .subscribe()
                .map(Ok::<_, watcher::Error>);
            let mut stream = std::pin::pin!(stream);
            let zone = |n: &Node| n.labels().get(ZONE_LABEL).cloned();
            let mut buffer = HashMap::new();
            while let Some(ev) = stream.next().await {
                let changed = match ev {
                    Ok(watcher::Event::Init) => {
                        buffer.clear();
                        false
                    }
                    Ok(watcher::Event::InitApply(n)) => {
                        buffer.insert(n.name_any(), zone(&n));
                        false
                    }
                    Ok(watcher::Event::InitDone) => {
                        let mut nodes = nodes_ctx.nodes.write();
                        let changed = *nodes != buffer;
                        *nodes = std::mem::take(&mut buffer);
                        nodes_listed.notify_one();
                        changed
                    }
                    Ok(watcher::Event::Apply(n)) => {
                        let z = zone(&n);
                        nodes_ctx.nodes.write().insert(n.name_any(), z.clone()) != Some(z)
                    }
                    Ok(watcher::Event::Delete(n)) => {
                        nodes_ctx.nodes.write().remove(&n.name_any()).is_some()
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "node watch failed; retrying");
                        false
                    }
                };
                if changed {
                    // Pods waiting for their node, or zones to update.
                    for k in nodes_ctx.watches.cache.service_keys() {
                        nodes_ctx.watches.queue.add(k);
                    }
                }
            }
        },
        shutdown.clone(),
    );
    // Pods are only placed once their nodes are known.
    tokio::select! {
        _ = async { tokio::join!(ctx.watches.wait_synced(), nodes_synced.notified()) } => {}
        _ = shutdown.clone().wait() => return,
    }
    let queue = ctx.watches.queue.clone();
    cache::run_workers(queue, shutdown, |key| {
        let ctx = ctx.clone();
        async move { sync(&ctx, key).await }
    })
    .await;
}

/// The labels of a Service's slices: the Service's (less the reserved ones), its name,
/// the manager, and the headless label for headless Services.
pub fn slice_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = svc
        .labels()
        .iter()
        .filter(|(k, _)| {
            ![SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL].contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(SERVICE_NAME_LABEL.into(), svc.name_any());
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    labels
}

/// The ports a pod serves for the Service, in the Service's order (unresolvable ones
/// left out).
pub fn endpoint_ports(svc: &Service, pod: &PodInfo) -> Vec<EndpointPort> {
    svc.spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .filter_map(|sp| {
            cache::find_port(pod, sp).map(|port| EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// The endpoint of a pod for an address type, if the pod has an address of it.
pub fn pod_endpoint(
    svc: &Service,
    pod: &PodInfo,
    address_type: &str,
    zone: Option<String>,
) -> Option<Endpoint> {
    let ip = cache::pod_ip_of_family(pod, address_type)?;
    let serving = pod.ready;
    let terminating = pod.terminating;
    let publish = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    Some(Endpoint {
        addresses: vec![ip],
        conditions: Some(EndpointConditions {
            ready: Some(publish || (serving && !terminating)),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: cache::endpoint_hostname(pod, svc),
        node_name: pod.node_name.clone(),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some(pod.namespace.clone()),
            name: Some(pod.name.clone()),
            uid: Some(pod.uid.clone()),
            ..Default::default()
        }),
        zone,
        ..Default::default()
    })
}

/// An endpoint's identity across updates: its address and pod.
fn endpoint_key(e: &Endpoint) -> (String, String) {
    (
        e.addresses.first().cloned().unwrap_or_default(),
        e.target_ref
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default(),
    )
}

/// A set of ports, sorted, as a group key.
pub type PortsKey = Vec<(String, i32, String, String)>;

/// Desired endpoints by (address type, ports): the ports and the endpoints.
pub type Groups = BTreeMap<(String, PortsKey), (Vec<EndpointPort>, Vec<Endpoint>)>;

/// The group key of a set of ports.
pub fn ports_key(ports: &[EndpointPort]) -> PortsKey {
    let mut k: PortsKey = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or_default(),
                p.protocol.clone().unwrap_or_default(),
                p.app_protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    k.sort();
    k
}

/// What to write for one Service.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// New slices (named by the server).
    pub create: Vec<EndpointSlice>,
    /// Changed slices.
    pub update: Vec<EndpointSlice>,
    /// Slices to delete, by name.
    pub delete: Vec<String>,
}

/// The desired endpoints of a Service: per (address type, ports) group, the ports and
/// the endpoints. Pods on nodes not known are left out (and named in the second value)
/// unless the Service publishes not-ready addresses.
pub fn desired(
    svc: &Service,
    pods: &[Arc<PodInfo>],
    node_zone: impl Fn(&str) -> Option<Option<String>>,
) -> (Groups, Vec<String>) {
    let publish = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let mut groups = BTreeMap::new();
    let mut missing_nodes = Vec::new();
    for address_type in cache::service_families(svc) {
        for pod in pods {
            if !cache::should_pod_be_in_endpoints(pod, true) {
                continue;
            }
            let node = pod.node_name.clone().unwrap_or_default();
            let zone = match node_zone(&node) {
                Some(z) => z,
                None if publish => None,
                None => {
                    missing_nodes.push(pod.name.clone());
                    continue;
                }
            };
            let ports = endpoint_ports(svc, pod);
            let Some(ep) = pod_endpoint(svc, pod, &address_type, zone) else {
                continue;
            };
            groups
                .entry((address_type.clone(), ports_key(&ports)))
                .or_insert_with(|| (ports, Vec::new()))
                .1
                .push(ep);
        }
    }
    (groups, missing_nodes)
}

fn owner_ref(svc: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.name_any(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn owned_by(slice: &EndpointSlice, svc: &Service) -> bool {
    slice.owner_references().iter().any(|o| {
        o.controller == Some(true)
            && o.kind == "Service"
            && Some(&o.uid) == svc.metadata.uid.as_ref()
    })
}

fn new_slice(
    svc: &Service,
    generate_name: &str,
    address_type: &str,
    ports: &[EndpointPort],
    endpoints: Vec<Endpoint>,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(generate_name.to_string()),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(labels.clone()),
            annotations: (!annotations.is_empty()).then(|| annotations.clone()),
            owner_references: Some(vec![owner_ref(svc)]),
            ..Default::default()
        },
        address_type: address_type.into(),
        endpoints,
        ports: (!ports.is_empty()).then(|| ports.to_vec()),
    }
}

/// Upstream's reconciler, simplified: slices keep the endpoints still desired (updated
/// in place), new endpoints fill the free room of slices first and then new slices,
/// emptied slices and slices of groups no longer desired go, and a Service without
/// endpoints keeps one placeholder slice.
pub fn plan(
    svc: &Service,
    existing: Vec<EndpointSlice>,
    desired: Groups,
    trigger: Option<String>,
) -> Plan {
    let mut annotations = BTreeMap::new();
    if let Some(t) = &trigger {
        annotations.insert(LAST_CHANGE_TRIGGER_TIME.to_string(), t.clone());
    }
    plan_slices(
        svc,
        existing,
        desired,
        SliceMeta {
            generate_name: format!("{}-", svc.name_any()),
            labels: slice_labels(svc),
            annotations,
            placeholder: true,
        },
    )
}

/// What slices of a plan carry besides endpoints.
pub struct SliceMeta {
    /// `metadata.generateName` of new slices.
    pub generate_name: String,
    /// Their labels (also enforced on existing slices).
    pub labels: BTreeMap<String, String>,
    /// Their annotations (on new and rewritten slices).
    pub annotations: BTreeMap<String, String>,
    /// Whether a Service without endpoints keeps an empty placeholder slice.
    pub placeholder: bool,
}

/// [`plan`] with the slices' metadata given (the mirroring controller's differs).
pub fn plan_slices(
    svc: &Service,
    existing: Vec<EndpointSlice>,
    mut desired: Groups,
    meta: SliceMeta,
) -> Plan {
    let SliceMeta {
        generate_name,
        labels,
        annotations,
        placeholder,
    } = meta;
    let mut plan = Plan::default();
    let mut existing: Vec<EndpointSlice> = existing
        .into_iter()
        .filter(|s| {
            if owned_by(s, svc) && s.metadata.deletion_timestamp.is_none() {
                true
            } else {
                if s.metadata.deletion_timestamp.is_none() {
                    plan.delete.push(s.name_any());
                }
                false
            }
        })
        .collect();
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let total_desired: usize = desired.values().map(|(_, e)| e.len()).sum();

    // Slices whose labels drifted are rewritten even if their endpoints did not change.
    let meta_changed = |s: &EndpointSlice| {
        s.metadata.labels.as_ref() != Some(&labels)
            || annotations
                .iter()
                .filter(|(k, _)| k.as_str() != LAST_CHANGE_TRIGGER_TIME)
                .any(|(k, v)| s.annotations().get(k) != Some(v))
    };
    let with_meta = |mut s: EndpointSlice| {
        s.metadata.labels = Some(labels.clone());
        let a = s.metadata.annotations.get_or_insert_with(BTreeMap::new);
        if !annotations.contains_key(LAST_CHANGE_TRIGGER_TIME) {
            a.remove(LAST_CHANGE_TRIGGER_TIME);
        }
        a.extend(annotations.clone());
        s
    };

    if total_desired == 0 && !placeholder {
        plan.delete.extend(existing.iter().map(|s| s.name_any()));
        return plan;
    }
    if total_desired == 0 {
        // One placeholder: no ports, no endpoints, the first address type.
        let address_type = cache::service_families(svc)
            .into_iter()
            .next()
            .unwrap_or_else(|| "IPv4".into());
        let mut kept = false;
        for s in existing {
            let placeholder = s.endpoints.is_empty()
                && s.ports.as_ref().is_none_or(Vec::is_empty)
                && s.address_type == address_type;
            if placeholder && !kept {
                kept = true;
                if meta_changed(&s) {
                    plan.update.push(with_meta(s));
                }
            } else {
                plan.delete.push(s.name_any());
            }
        }
        if !kept {
            plan.create.push(new_slice(
                svc,
                &generate_name,
                &address_type,
                &[],
                Vec::new(),
                &labels,
                &annotations,
            ));
        }
        return plan;
    }

    // Existing slices by group; endpoints matched to those still desired.
    let mut with_room: Vec<(EndpointSlice, bool)> = Vec::new();
    for mut s in existing {
        let key = (
            s.address_type.clone(),
            ports_key(s.ports.as_deref().unwrap_or_default()),
        );
        let Some((_, wanted)) = desired.get_mut(&key) else {
            plan.delete.push(s.name_any());
            continue;
        };
        let mut wanted_by_key: HashMap<(String, String), usize> = wanted
            .iter()
            .enumerate()
            .map(|(i, e)| (endpoint_key(e), i))
            .collect();
        let mut kept = Vec::with_capacity(s.endpoints.len());
        let mut taken = Vec::new();
        for e in &s.endpoints {
            if let Some(i) = wanted_by_key.remove(&endpoint_key(e)) {
                kept.push(wanted[i].clone());
                taken.push(i);
            }
        }
        taken.sort_unstable();
        for i in taken.into_iter().rev() {
            wanted.swap_remove(i);
        }
        if kept.is_empty() {
            plan.delete.push(s.name_any());
            continue;
        }
        kept.truncate(MAX_ENDPOINTS_PER_SLICE);
        let changed = kept != s.endpoints || meta_changed(&s);
        s.endpoints = kept;
        with_room.push((s, changed));
    }
    // New endpoints: into the room of slices of their group (changed ones first), then
    // into new slices.
    with_room.sort_by_key(|(_, changed)| !*changed);
    for ((address_type, pk), (ports, mut wanted)) in desired {
        wanted.sort_by_key(endpoint_key);
        let mut wanted = wanted.into_iter().peekable();
        for (s, changed) in with_room.iter_mut() {
            if s.address_type != address_type
                || ports_key(s.ports.as_deref().unwrap_or_default()) != pk
            {
                continue;
            }
            while s.endpoints.len() < MAX_ENDPOINTS_PER_SLICE {
                let Some(e) = wanted.next() else { break };
                s.endpoints.push(e);
                *changed = true;
            }
        }
        let rest: Vec<Endpoint> = wanted.collect();
        for chunk in rest.chunks(MAX_ENDPOINTS_PER_SLICE) {
            plan.create.push(new_slice(
                svc,
                &generate_name,
                &address_type,
                &ports,
                chunk.to_vec(),
                &labels,
                &annotations,
            ));
        }
    }
    for (s, changed) in with_room {
        if changed {
            plan.update.push(with_meta(s));
        }
    }
    plan
}

async fn sync(ctx: &Context, key: Key) -> Result<(), SyncError> {
    let result = write_slices(ctx, &key).await;
    if let Err(e) = &result
        && let Some(svc) = ctx.watches.cache.service(&key)
    {
        let mut detail = e.to_string();
        if let Some(source) = std::error::Error::source(e) {
            detail = format!("{detail}: {source}");
        }
        crate::endpoints::warn(
            &ctx.recorder,
            &svc.object_ref(&()),
            "FailedToUpdateEndpointSlices",
            format!(
                "Error updating Endpoint Slices for Service {}/{}: {detail}",
                key.0, key.1
            ),
        )
        .await;
    }
    result
}

async fn write_slices(ctx: &Context, key: &Key) -> Result<(), SyncError> {
    let key = key.clone();
    let (ns, name) = key.clone();
    let err = |source| SyncError::Api {
        namespace: ns.clone(),
        name: name.clone(),
        source,
    };
    let Some(svc) = ctx.watches.cache.service(&key) else {
        // The garbage collector deletes the slices of deleted Services.
        ctx.triggers.forget(&key);
        return Ok(());
    };
    if cache::service_selector(&svc).is_none() {
        return Ok(());
    }
    let pods = ctx.watches.cache.selected_pods(&key);
    let (groups, missing) = {
        let nodes = ctx.nodes.read();
        desired(&svc, &pods, |n| nodes.get(n).cloned())
    };
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ns);
    let existing = api
        .list(&ListParams::default().labels(&format!(
            "{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={CONTROLLER_NAME}"
        )))
        .await
        .map_err(err)?
        .items;
    let trigger = ctx
        .triggers
        .compute(&key, &svc, &pods)
        .map(|t| t.to_string());
    let plan = plan(&svc, existing, groups, trigger);
    for s in plan.create {
        match api.create(&PostParams::default(), &s).await {
            Ok(_) => {}
            // The namespace is terminating: the Service goes too.
            Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("terminat") => {
                return Ok(());
            }
            Err(e) => return Err(err(e)),
        }
    }
    for s in plan.update {
        api.replace(&s.name_any(), &PostParams::default(), &s)
            .await
            .map_err(err)?;
    }
    for n in plan.delete {
        match api.delete(&n, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(err(e)),
        }
    }
    if !missing.is_empty() {
        return Err(SyncError::NodeNotFound(
            format!("{ns}/{name}"),
            missing.join(", "),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn svc() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"team": "a"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.43.0.10", "ipFamilies": ["IPv4"],
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}
        }))
        .unwrap()
    }

    fn pod(i: usize, ready: bool, terminating: bool) -> Arc<PodInfo> {
        let mut p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("p{i:03}"), "namespace": "ns", "uid": format!("u{i}")},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIPs": [{"ip": format!("10.42.{}.{}", i / 200, i % 200)}],
                       "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap();
        if terminating {
            p.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::now(),
                ));
        }
        Arc::new(PodInfo::from(&p))
    }

    fn node(_: &str) -> Option<Option<String>> {
        Some(Some("z1".into()))
    }

    #[test]
    fn a_service_gets_slices_of_at_most_100_endpoints_with_conditions() {
        let s = svc();
        let mut pods: Vec<Arc<PodInfo>> = (0..150).map(|i| pod(i, true, false)).collect();
        pods.push(pod(200, false, false));
        pods.push(pod(201, true, true));
        let (groups, missing) = desired(&s, &pods, node);
        assert!(missing.is_empty());
        let p = plan(&s, Vec::new(), groups, None);
        assert_eq!(p.create.len(), 2);
        assert_eq!(p.create[0].endpoints.len(), 100);
        assert_eq!(p.create[1].endpoints.len(), 52);
        let slice = &p.create[0];
        assert_eq!(slice.address_type, "IPv4");
        assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
        let labels = slice.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[SERVICE_NAME_LABEL], "web");
        assert_eq!(labels[MANAGED_BY_LABEL], CONTROLLER_NAME);
        assert_eq!(labels["team"], "a");
        assert_eq!(slice.ports.as_ref().unwrap()[0].port, Some(8080));
        assert_eq!(
            slice.metadata.owner_references.as_ref().unwrap()[0].uid,
            "svc-uid"
        );
        let all: Vec<&Endpoint> = p.create.iter().flat_map(|s| &s.endpoints).collect();
        let by_name = |n: &str| {
            all.iter()
                .find(|e| e.target_ref.as_ref().unwrap().name.as_deref() == Some(n))
                .unwrap()
                .conditions
                .clone()
                .unwrap()
        };
        assert_eq!(
            by_name("p200"),
            EndpointConditions {
                ready: Some(false),
                serving: Some(false),
                terminating: Some(false)
            }
        );
        assert_eq!(
            by_name("p201"),
            EndpointConditions {
                ready: Some(false),
                serving: Some(true),
                terminating: Some(true)
            }
        );
        assert_eq!(all[0].zone.as_deref(), Some("z1"));
    }

    #[test]
    fn existing_slices_keep_their_endpoints_and_take_new_ones_into_their_room() {
        let s = svc();
        let pods: Vec<Arc<PodInfo>> = (0..3).map(|i| pod(i, true, false)).collect();
        let (groups, _) = desired(&s, &pods, node);
        let mut first = plan(&s, Vec::new(), groups, None).create.remove(0);
        first.metadata.name = Some("web-abcde".into());
        // Nothing changed: nothing written.
        let (groups, _) = desired(&s, &pods, node);
        assert_eq!(plan(&s, vec![first.clone()], groups, None), Plan::default());
        // One pod more, one gone: the slice is updated in place.
        let pods: Vec<Arc<PodInfo>> = (1..5).map(|i| pod(i, true, false)).collect();
        let (groups, _) = desired(&s, &pods, node);
        let p = plan(&s, vec![first.clone()], groups, None);
        assert!(p.create.is_empty() && p.delete.is_empty());
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0].endpoints.len(), 4);
        // No pods: the slice is emptied into a placeholder (deleted, one created).
        let (groups, _) = desired(&s, &[], node);
        let p = plan(&s, vec![first], groups, None);
        assert_eq!(p.delete, vec!["web-abcde".to_string()]);
        assert_eq!(p.create.len(), 1);
        assert!(p.create[0].endpoints.is_empty() && p.create[0].ports.is_none());
    }

    #[test]
    fn pods_on_unknown_nodes_wait_for_them() {
        let s = svc();
        let (groups, missing) = desired(&s, &[pod(1, true, false)], |_| None);
        assert!(groups.is_empty());
        assert_eq!(missing, vec!["p001"]);
    }
}

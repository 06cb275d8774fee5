//! EndpointSlice mirroring (upstream `pkg/controller/endpointslicemirroring`,
//! `endpointslice-mirroring-controller`): the Endpoints a user wrote for a Service
//! without a selector are mirrored into EndpointSlices managed by
//! `endpointslicemirroring-controller.k8s.io` (one group per address type and port set,
//! at most 100 endpoints a slice and 1000 in all), so that consumers of slices see them.
//! Endpoints labelled `endpointslice.kubernetes.io/skip-mirror: "true"` (the API
//! server's `kubernetes` Endpoints) and those of Services with selectors are not
//! mirrored; mirrored slices go when their Endpoints or Service do.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use parking_lot::RwLock;

use super::{Groups, MANAGED_BY_LABEL, SERVICE_NAME_LABEL, SliceMeta, plan_slices, ports_key};
use crate::Shutdown;
use crate::endpoints::cache::{self, Key, Queue};
use crate::endpoints::{HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME};

/// This controller's value of the managed-by label.
pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
/// Endpoints carrying this label set to "true" are not mirrored.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
/// Upstream's `--mirroring-max-endpoints-per-subset`.
pub const MAX_MIRRORED_ENDPOINTS: usize = 1000;

#[derive(Default)]
struct State {
    services: RwLock<HashMap<Key, Arc<Service>>>,
    endpoints: RwLock<HashMap<Key, Arc<Endpoints>>>,
}

/// Why an Endpoints could not be mirrored.
#[derive(Debug, thiserror::Error)]
#[error("cannot mirror endpoints {namespace}/{name}")]
pub struct MirrorError {
    namespace: String,
    name: String,
    #[source]
    source: kube::Error,
}

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown))
}

fn watch_into<K>(
    client: &kube::Client,
    map: impl Fn(&State) -> &RwLock<HashMap<Key, Arc<K>>> + Send + Sync + Clone + 'static,
    state: Arc<State>,
    queue: Arc<Queue>,
    synced: Arc<tokio::sync::Semaphore>,
    shutdown: &Shutdown,
) where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (s1, q1, m1) = (state.clone(), queue.clone(), map.clone());
    let task = cache::follow(
        watcher(Api::<K>::all(client.clone()), watcher::Config::default()).default_backoff(),
        move |new, _old, ns, name| {
            let key = (ns.to_string(), name.to_string());
            match new {
                Some(o) => m1(&s1).write().insert(key.clone(), Arc::new(o)),
                None => m1(&s1).write().remove(&key),
            };
            q1.add(key);
        },
        move |all| {
            let new: HashMap<Key, Arc<K>> = all
                .into_iter()
                .map(|o| {
                    (
                        (o.namespace().unwrap_or_default(), o.name_any()),
                        Arc::new(o),
                    )
                })
                .collect();
            let mut keys: Vec<Key> = new.keys().cloned().collect();
            let mut m = map(&state).write();
            keys.extend(m.keys().cloned());
            *m = new;
            drop(m);
            for k in keys {
                queue.add(k);
            }
        },
        synced,
    );
    cache::spawn_until(task, shutdown.clone());
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown) {
    let state = Arc::new(State::default());
    let queue = Arc::new(Queue::default());
    let synced = Arc::new(tokio::sync::Semaphore::new(0));
    watch_into::<Service>(
        &client,
        |s| &s.services,
        state.clone(),
        queue.clone(),
        synced.clone(),
        &shutdown,
    );
    watch_into::<Endpoints>(
        &client,
        |s| &s.endpoints,
        state.clone(),
        queue.clone(),
        synced.clone(),
        &shutdown,
    );
    tokio::select! {
        p = synced.acquire_many(2) => { if let Ok(p) = p { p.forget(); } }
        _ = shutdown.clone().wait() => return,
    }
    cache::run_workers(queue, shutdown, |key| {
        let (client, state) = (client.clone(), state.clone());
        async move { sync(&client, &state, key).await }
    })
    .await;
}

/// Labels of mirrored slices: the Endpoints' (less reserved ones), the Service name and
/// the manager.
fn mirrored_labels(ep: &Endpoints, svc: &Service) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = ep
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

/// Annotations of mirrored slices: the Endpoints', less the trigger time and kubectl's
/// last applied configuration.
fn mirrored_annotations(ep: &Endpoints) -> BTreeMap<String, String> {
    ep.annotations()
        .iter()
        .filter(|(k, _)| {
            k.as_str() != LAST_CHANGE_TRIGGER_TIME
                && k.as_str() != "kubectl.kubernetes.io/last-applied-configuration"
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The endpoints an Endpoints mirrors to: each subset's addresses, by address type and
/// ports; invalid addresses skipped, at most [`MAX_MIRRORED_ENDPOINTS`].
pub fn mirrored(ep: &Endpoints) -> Groups {
    let mut groups = Groups::new();
    let mut count = 0;
    for subset in ep.subsets.iter().flatten() {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| (a, false));
        for (addr, ready) in ready.chain(not_ready) {
            let Ok(ip) = addr.ip.parse::<std::net::IpAddr>() else {
                continue;
            };
            if count >= MAX_MIRRORED_ENDPOINTS {
                return groups;
            }
            count += 1;
            let address_type = if ip.is_ipv6() { "IPv6" } else { "IPv4" };
            groups
                .entry((address_type.to_string(), ports_key(&ports)))
                .or_insert_with(|| (ports.clone(), Vec::new()))
                .1
                .push(Endpoint {
                    addresses: vec![addr.ip.clone()],
                    conditions: Some(EndpointConditions {
                        ready: Some(ready),
                        ..Default::default()
                    }),
                    hostname: addr.hostname.clone().filter(|h| !h.is_empty()),
                    node_name: addr.node_name.clone().filter(|n| !n.is_empty()),
                    target_ref: addr.target_ref.clone(),
                    ..Default::default()
                });
        }
    }
    groups
}

async fn sync(client: &kube::Client, state: &State, key: Key) -> Result<(), MirrorError> {
    let (ns, name) = key.clone();
    let err = |source| MirrorError {
        namespace: ns.clone(),
        name: name.clone(),
        source,
    };
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
    let existing = api
        .list(&ListParams::default().labels(&format!(
            "{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={CONTROLLER_NAME}"
        )))
        .await
        .map_err(err)?
        .items;
    let svc = state.services.read().get(&key).cloned();
    let ep = state.endpoints.read().get(&key).cloned();
    let mirror = match (&svc, &ep) {
        (Some(svc), Some(ep)) => {
            let has_selector = svc
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|s| !s.is_empty());
            let skip = ep.labels().get(SKIP_MIRROR_LABEL).map(String::as_str) == Some("true");
            (!has_selector && !skip).then_some((svc, ep))
        }
        _ => None,
    };
    let plan = match mirror {
        Some((svc, ep)) => plan_slices(
            svc,
            existing,
            mirrored(ep),
            SliceMeta {
                generate_name: format!("{name}-"),
                labels: mirrored_labels(ep, svc),
                annotations: mirrored_annotations(ep),
                placeholder: false,
            },
        ),
        None => super::Plan {
            delete: existing.iter().map(|s| s.name_any()).collect(),
            ..Default::default()
        },
    };
    for s in plan.create {
        match api.create(&PostParams::default(), &s).await {
            Ok(_) => {}
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn subsets_mirror_by_address_type_with_readiness() {
        let ep: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "ext", "namespace": "ns", "labels": {"a": "b"},
                         "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "x", "note": "y"}},
            "subsets": [{"addresses": [{"ip": "192.0.2.1"}, {"ip": "2001:db8::1"}, {"ip": "bogus"}],
                         "notReadyAddresses": [{"ip": "192.0.2.2"}],
                         "ports": [{"name": "http", "port": 80}]}]
        }))
        .unwrap();
        let groups = mirrored(&ep);
        assert_eq!(groups.len(), 2);
        let v4 = groups.iter().find(|((t, _), _)| t == "IPv4").unwrap().1;
        assert_eq!(v4.1.len(), 2);
        assert_eq!(v4.1[1].conditions.as_ref().unwrap().ready, Some(false));
        assert_eq!(v4.0[0].protocol.as_deref(), Some("TCP"));
        assert_eq!(
            mirrored_annotations(&ep),
            BTreeMap::from([("note".to_string(), "y".to_string())])
        );
    }
}

//! Cluster IPs and node ports held by servers that share one datastore.
//!
//! One server alone keeps its allocators in memory ([`super::service::ServiceAllocators`]);
//! several servers on one etcd would each hand out the same values. As upstream's
//! IPAddress allocator does, a value is held once a key named by it is created in the
//! store, create-if-absent being the lock: a cluster IP is an `networking.k8s.io/v1`
//! IPAddress object named by the address (`kubectl get ipaddresses` lists them, with the
//! Service as `parentRef`), a node port a reservation key under
//! [`NODE_PORT_PREFIX`] of the same shape (upstream keeps node ports in one bitmap it
//! updates by compare-and-swap; a key per port needs no retry loop). The in-memory sets
//! are then hints for picking a free value, refreshed by [`Reservations::repair`], which
//! also recreates missing reservations and drops those whose Service is gone, as
//! upstream's repair controllers do.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use k1s_apimachinery::{FieldError, GroupKind, Path, Status};
use k1s_store::{KeyValue, Store, StoreError};
use serde_json::{Value, json};

use super::service::{
    ServiceAllocators, health_check_port_of, node_ports_of, owned_ip_of, uses_node_ports_of,
};
use crate::meta;
use crate::registry::Registry;

/// Store prefix of node port reservations (outside every resource's prefix).
pub const NODE_PORT_PREFIX: &str = "/registry/k1s-nodeports/";
/// Label upstream's allocator puts on the IPAddress objects it manages.
const MANAGED_BY: &str = "ipaddress.kubernetes.io/managed-by";
/// Its value.
const MANAGER: &str = "ipallocator.k8s.io";
/// A reservation whose Service does not hold its value is left alone this long: the
/// Service may be on its way into the store (it is written after its reservations).
const GRACE: Duration = Duration::from_secs(30);
/// Dynamic picks tried before giving up when other servers keep taking them.
const ATTEMPTS: usize = 64;

/// One value a Service holds in a shared range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Held {
    /// A cluster IP.
    Ip(IpAddr),
    /// A node port (or health check node port).
    Port(u16),
}

/// What a Service holds, without duplicates, in a stable order.
pub fn held(obj: &Value) -> BTreeSet<Held> {
    let mut out = BTreeSet::new();
    if let Some(ip) = owned_ip_of(obj) {
        out.insert(Held::Ip(ip));
    }
    if uses_node_ports_of(obj) {
        out.extend(node_ports_of(obj).into_iter().map(Held::Port));
    }
    if let Some(p) = health_check_port_of(obj) {
        out.insert(Held::Port(p));
    }
    out
}

/// Why a reservation could not be written.
enum Refused {
    /// Another Service holds the value.
    Taken,
    /// The store failed.
    Store(StoreError),
}

/// Reservations of cluster IPs and node ports in a shared store.
pub struct Reservations {
    store: Store,
    registry: Arc<Registry>,
    alloc: ServiceAllocators,
}

fn parent(obj: &Value) -> (String, String) {
    let p = obj.pointer("/spec/parentRef");
    let s = |k: &str| {
        p.and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (s("namespace"), s("name"))
}

fn age(obj: &Value) -> Duration {
    let created = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    match created {
        Some(t) => jiff::Timestamp::now()
            .duration_since(t)
            .try_into()
            .unwrap_or_default(),
        // Unreadable: treat as old, so that repair may reclaim it.
        None => Duration::MAX,
    }
}

impl Reservations {
    /// Reservations over `store`, refreshing the hints of `alloc`.
    pub fn new(store: Store, registry: Arc<Registry>, alloc: ServiceAllocators) -> Self {
        Self {
            store,
            registry,
            alloc,
        }
    }

    fn ip_prefix(&self) -> Option<String> {
        let snap = self.registry.snapshot();
        let r = snap.get("networking.k8s.io", "v1", "ipaddresses")?;
        Some(r.info.collection_prefix(None))
    }

    fn key(&self, h: Held) -> Option<String> {
        match h {
            Held::Ip(ip) => Some(format!("{}{ip}", self.ip_prefix()?)),
            Held::Port(p) => Some(format!("{NODE_PORT_PREFIX}{p}")),
        }
    }

    fn service_key(&self, ns: &str, name: &str) -> Option<String> {
        let snap = self.registry.snapshot();
        let r = snap.get("", "v1", "services")?;
        Some(r.info.key(Some(ns), name))
    }

    fn body(h: Held, ns: &str, name: &str) -> Value {
        let parent = json!({"group": "", "resource": "services", "namespace": ns, "name": name});
        match h {
            Held::Ip(ip) => json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "IPAddress",
                "metadata": {
                    "name": ip.to_string(),
                    "uid": uuid::Uuid::new_v4().to_string(),
                    "creationTimestamp": meta::now_rfc3339(),
                    "labels": {
                        "ipaddress.kubernetes.io/ip-family": if ip.is_ipv4() { "IPv4" } else { "IPv6" },
                        MANAGED_BY: MANAGER,
                    },
                },
                "spec": {"parentRef": parent},
            }),
            Held::Port(p) => json!({
                "metadata": {"name": p.to_string(), "creationTimestamp": meta::now_rfc3339()},
                "spec": {"parentRef": parent},
            }),
        }
    }

    /// Whether the Service a reservation names holds its value now.
    fn owner_holds(&self, claim: &Value, h: Held) -> bool {
        let (ns, name) = parent(claim);
        self.service_key(&ns, &name)
            .and_then(|k| self.store.get(&k))
            .and_then(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
            .is_some_and(|svc| held(&svc).contains(&h))
    }

    /// Whether a reservation is ours to reclaim: written by the allocator, old, and its
    /// Service does not hold the value.
    fn stale(&self, claim: &Value, h: Held) -> bool {
        let ours = match h {
            Held::Ip(_) => {
                claim
                    .pointer(&format!(
                        "/metadata/labels/{}",
                        MANAGED_BY.replace('/', "~1")
                    ))
                    .and_then(Value::as_str)
                    == Some(MANAGER)
            }
            Held::Port(_) => true,
        };
        ours && age(claim) > GRACE && !self.owner_holds(claim, h)
    }

    /// Writes the reservation of `h` for `ns/name`, taking over a stale one.
    async fn claim(&self, h: Held, ns: &str, name: &str) -> Result<(), Refused> {
        let Some(key) = self.key(h) else {
            return Err(Refused::Store(StoreError::Unavailable {
                message: "IPAddress is not served".into(),
            }));
        };
        let body = Bytes::from(Self::body(h, ns, name).to_string());
        match self.store.create(&key, body.clone()).await {
            Ok(_) => return Ok(()),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(Refused::Store(e)),
        }
        // The cache may not have another server's reservation yet: then it is taken.
        let Some(kv) = self.store.get(&key) else {
            return Err(Refused::Taken);
        };
        let claim: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
        if parent(&claim) == (ns.to_string(), name.to_string()) {
            return Ok(());
        }
        if !self.stale(&claim, h) {
            return Err(Refused::Taken);
        }
        tracing::info!(%key, "taking over a reservation its Service no longer holds");
        match self.store.update(&key, body, kv.mod_revision).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => Err(Refused::Taken),
            Err(e) => Err(Refused::Store(e)),
        }
    }

    /// Deletes the reservation of `h` if `ns/name` holds it.
    async fn unclaim(&self, h: Held, ns: &str, name: &str) {
        let Some(key) = self.key(h) else { return };
        let Some(kv) = self.store.get(&key) else {
            return;
        };
        let claim: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
        if parent(&claim) != (ns.to_string(), name.to_string()) {
            return;
        }
        self.delete(&kv).await;
    }

    async fn delete(&self, kv: &KeyValue) {
        match self
            .store
            .delete(&kv.key, kv.value.clone(), kv.mod_revision)
            .await
        {
            Ok(_) | Err(StoreError::NotFound { .. } | StoreError::Conflict { .. }) => {}
            Err(e) => tracing::warn!(key = %kv.key, error = %e, "cannot drop a reservation"),
        }
    }

    /// Replaces a dynamically picked `h` in `obj` with another free value; the local
    /// allocator keeps `h` marked, since another server holds it.
    fn repick(&self, obj: &mut Value, h: Held) -> Result<Held, String> {
        match h {
            Held::Ip(_) => {
                let ip = self.alloc.ips.lock().allocate_next()?.to_string();
                obj["spec"]["clusterIP"] = json!(ip);
                obj["spec"]["clusterIPs"] = json!([ip]);
                Ok(Held::Ip(ip.parse().map_err(|_| "bad address".to_string())?))
            }
            Held::Port(old) => {
                let new = self.alloc.ports.lock().allocate_next()?;
                if let Some(Value::Array(ports)) =
                    obj.get_mut("spec").and_then(|s| s.get_mut("ports"))
                {
                    for p in ports {
                        if p.get("nodePort").and_then(Value::as_u64) == Some(u64::from(old)) {
                            p["nodePort"] = json!(new);
                        }
                    }
                }
                if health_check_port_of(obj) == Some(old) {
                    obj["spec"]["healthCheckNodePort"] = json!(new);
                }
                Ok(Held::Port(new))
            }
        }
    }

    /// Before `obj` (a Service, after its allocation) is written: reserves what it holds
    /// beyond `old`. A value the user asked for (`requested`, the object before
    /// allocation) that another Service holds is refused with upstream's message; a
    /// picked one is picked again. Returns what was reserved, for [`Self::unreserve`].
    pub async fn reserve(
        &self,
        obj: &mut Value,
        requested: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<Held>, Status> {
        let ns = meta::namespace(obj).to_string();
        let name = meta::name(obj).to_string();
        let before = old.map(held).unwrap_or_default();
        let asked = held(requested);
        let mut taken: Vec<Held> = Vec::new();
        let mut attempts = 0;
        loop {
            let Some(h) = held(obj)
                .into_iter()
                .find(|h| !before.contains(h) && !taken.contains(h))
            else {
                return Ok(taken);
            };
            match self.claim(h, &ns, &name).await {
                Ok(()) => taken.push(h),
                Err(Refused::Taken) if !asked.contains(&h) && attempts < ATTEMPTS => {
                    attempts += 1;
                    if let Err(m) = self.repick(obj, h) {
                        self.unreserve(&taken, &ns, &name).await;
                        return Err(Status::internal_error(&format!(
                            "failed to allocate a {}: {m}",
                            match h {
                                Held::Ip(_) => "serviceIP",
                                Held::Port(_) => "nodePort",
                            }
                        )));
                    }
                }
                Err(Refused::Taken) => {
                    self.unreserve(&taken, &ns, &name).await;
                    return Err(taken_error(obj, &name, h));
                }
                Err(Refused::Store(e)) => {
                    self.unreserve(&taken, &ns, &name).await;
                    return Err(Status::internal_error(&format!(
                        "cannot reserve {h:?}: {e}"
                    )));
                }
            }
        }
    }

    /// Gives back reservations a failed write took.
    pub async fn unreserve(&self, taken: &[Held], ns: &str, name: &str) {
        for h in taken {
            self.unclaim(*h, ns, name).await;
        }
    }

    /// After `old` was replaced by `new` (or deleted: `None`): drops the reservations of
    /// what `old` held and `new` does not.
    pub async fn release(&self, old: &Value, new: Option<&Value>) {
        let keep = new.map(held).unwrap_or_default();
        let (ns, name) = (meta::namespace(old), meta::name(old));
        for h in held(old) {
            if !keep.contains(&h) {
                self.unclaim(h, ns, name).await;
            }
        }
    }

    /// Upstream's repair loops: every Service's values are reserved (a Service written
    /// before the datastore was shared, a reservation lost), reservations no Service
    /// holds are dropped after a grace period, and the local allocators' hints become
    /// what the store holds.
    pub async fn repair(&self) {
        let Some(svc_prefix) = self
            .registry
            .snapshot()
            .get("", "v1", "services")
            .map(|r| r.info.collection_prefix(None))
        else {
            return;
        };
        let (services, _, _) = self.store.cache().list(&svc_prefix, None, 0);
        let mut holders: HashMap<Held, (String, String)> = HashMap::new();
        for kv in &services {
            let Ok(svc) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            let owner = (
                meta::namespace(&svc).to_string(),
                meta::name(&svc).to_string(),
            );
            for h in held(&svc) {
                holders.insert(h, owner.clone());
            }
        }
        let mut ips = BTreeSet::new();
        let mut ports = BTreeSet::new();
        let mut claimed = BTreeSet::new();
        let prefixes = [self.ip_prefix(), Some(NODE_PORT_PREFIX.to_string())];
        for prefix in prefixes.into_iter().flatten() {
            let (claims, _, _) = self.store.cache().list(&prefix, None, 0);
            for kv in claims {
                let Some(h) = parse_held(&kv.key[prefix.len()..], &prefix) else {
                    continue;
                };
                let claim: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
                if self.stale(&claim, h) {
                    tracing::info!(key = %kv.key, "dropping a reservation no Service holds");
                    self.delete(&kv).await;
                    continue;
                }
                claimed.insert(h);
                match h {
                    Held::Ip(ip) => ips.insert(ip),
                    Held::Port(p) => ports.insert(p),
                };
            }
        }
        for (h, (ns, name)) in &holders {
            if claimed.contains(h) {
                continue;
            }
            match self.claim(*h, ns, name).await {
                Ok(()) => {}
                Err(Refused::Taken) => {
                    tracing::warn!(service = %format!("{ns}/{name}"), value = ?h, "value held by two Services");
                }
                Err(Refused::Store(e)) => {
                    tracing::warn!(error = %e, "cannot repair a reservation");
                    return;
                }
            }
            match h {
                Held::Ip(ip) => ips.insert(*ip),
                Held::Port(p) => ports.insert(*p),
            };
        }
        self.alloc.ips.lock().replace_used(ips);
        self.alloc.ports.lock().replace_used(ports);
    }
}

fn parse_held(rest: &str, prefix: &str) -> Option<Held> {
    if prefix == NODE_PORT_PREFIX {
        rest.parse().ok().map(Held::Port)
    } else {
        rest.parse().ok().map(Held::Ip)
    }
}

/// Upstream's refusal of a value another Service holds.
fn taken_error(obj: &Value, name: &str, h: Held) -> Status {
    let spec = Path::new("spec");
    let err = match h {
        Held::Ip(ip) => FieldError::invalid(
            &spec.child("clusterIPs"),
            obj.pointer("/spec/clusterIPs")
                .cloned()
                .unwrap_or_else(|| json!([ip.to_string()])),
            format!("failed to allocate IP {ip}: provided IP is already allocated"),
        ),
        Held::Port(p) => {
            let index = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .and_then(|ps| {
                    ps.iter().position(|x| {
                        x.get("nodePort").and_then(Value::as_u64) == Some(u64::from(p))
                    })
                });
            let path = match index {
                Some(i) => spec.child("ports").index(i).child("nodePort"),
                None => spec.child("healthCheckNodePort"),
            };
            FieldError::invalid(&path, json!(p), "provided port is already allocated")
        }
    };
    Status::invalid(&GroupKind::new("", "Service"), name, &[err])
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use async_trait::async_trait;
    use k1s_store::{
        Backend, BackendInfo, CheckReport, EventSink, ListPage, MemoryBackend, Revision, WriteOp,
    };

    use super::*;
    use crate::auth::{TokenTable, UserInfo};
    use crate::registry::generic::WriteContext;
    use crate::{ApiConfig, ApiServer};

    /// The memory backend, declared shared: what several servers on one etcd see.
    struct Shared(MemoryBackend);

    #[async_trait]
    impl Backend for Shared {
        async fn start(&self, sink: Arc<dyn EventSink>) -> Result<ListPage, StoreError> {
            self.0.start(sink).await
        }
        async fn write(&self, op: WriteOp) -> Result<KeyValue, StoreError> {
            self.0.write(op).await
        }
        async fn list(
            &self,
            prefix: &str,
            revision: Revision,
            start_after: Option<&str>,
            limit: usize,
        ) -> Result<ListPage, StoreError> {
            self.0.list(prefix, revision, start_after, limit).await
        }
        async fn get(&self, key: &str, revision: Revision) -> Result<Option<KeyValue>, StoreError> {
            self.0.get(key, revision).await
        }
        async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
            self.0.compact(revision).await
        }
        async fn check(&self) -> Result<CheckReport, StoreError> {
            self.0.check().await
        }
        fn info(&self) -> BackendInfo {
            self.0.info()
        }
        fn shared(&self) -> bool {
            true
        }
    }

    /// Three servers, each with its own allocators, over one store; a service range of
    /// 30 addresses so that their picks meet.
    async fn servers() -> Vec<Arc<ApiServer>> {
        let store = Store::open(Arc::new(Shared(MemoryBackend::new())))
            .await
            .unwrap();
        let mut out = Vec::new();
        for i in 1..=3u8 {
            let config = ApiConfig {
                advertise_address: format!("127.0.0.{i}:6443"),
                advertise_ip: IpAddr::from([127, 0, 0, i]),
                advertise_port: 6443,
                service_cidr: "10.43.0.0/27".parse().unwrap(),
                cluster_domain: "cluster.local".into(),
            };
            let server = ApiServer::new(store.clone(), config, TokenTable::new()).await;
            server.generic.set_service_account_admission(false);
            crate::bootstrap::run(&server).await.unwrap();
            out.push(server);
        }
        out
    }

    fn ctx() -> WriteContext {
        WriteContext {
            user: UserInfo::loopback(),
            field_manager: "test".into(),
            ..WriteContext::default()
        }
    }

    async fn create(server: &ApiServer, name: &str, spec: Value) -> Result<Value, Status> {
        let res = server
            .registry
            .snapshot()
            .get("", "v1", "services")
            .cloned()
            .unwrap();
        let obj = json!({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": name, "namespace": "default"}, "spec": spec});
        server
            .generic
            .create(&res, Some("default"), obj, &ctx(), Vec::new())
            .await
            .map(|w| w.object)
    }

    #[tokio::test]
    async fn concurrent_creates_through_three_servers_never_share_a_cluster_ip() {
        // Each server's in-memory allocator alone hands out the same addresses as the
        // others': only the IPAddress objects in the store keep them apart.
        let servers = servers().await;
        let mut tasks = Vec::new();
        for i in 0..27 {
            let server = servers[i % 3].clone();
            tasks.push(tokio::spawn(async move {
                create(&server, &format!("s{i}"), json!({"ports": [{"port": 80}]})).await
            }));
        }
        let mut ips = HashSet::new();
        for t in tasks {
            let svc = t.await.unwrap().unwrap_or_else(|s| panic!("{}", s.message));
            let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
            assert!(ips.insert(ip.clone()), "{ip} handed out twice");
        }
        // 30 usable addresses, one the kubernetes Service's, 27 taken: each has its
        // IPAddress naming its Service.
        let snap = servers[0].registry.snapshot();
        let res = snap.get("networking.k8s.io", "v1", "ipaddresses").unwrap();
        for ip in &ips {
            let obj = servers[1].generic.get(res, None, ip).unwrap();
            assert_eq!(obj["spec"]["parentRef"]["resource"], "services");
        }
        // Two more fit; the next finds the range full on every server.
        create(&servers[0], "x1", json!({"ports": [{"port": 80}]}))
            .await
            .unwrap();
        create(&servers[1], "x2", json!({"ports": [{"port": 80}]}))
            .await
            .unwrap();
        let err = create(&servers[2], "x3", json!({"ports": [{"port": 80}]}))
            .await
            .unwrap_err();
        assert_eq!(err.code, 500, "{}", err.message);
    }

    #[tokio::test]
    async fn a_node_port_asked_of_two_servers_at_once_goes_to_one() {
        let servers = servers().await;
        let spec = json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]});
        let (a, b) = tokio::join!(
            create(&servers[0], "a", spec.clone()),
            create(&servers[1], "b", spec.clone())
        );
        let refused = match (a, b) {
            (Ok(_), Err(s)) | (Err(s), Ok(_)) => s,
            other => panic!("exactly one should hold 30080: {other:?}"),
        };
        assert_eq!(refused.code, 422);
        assert!(
            refused
                .message
                .contains("provided port is already allocated"),
            "{}",
            refused.message
        );
        // Deleted through a third server, the port is free for the refused one.
        let held_by = if servers[0]
            .generic
            .get(
                servers[0]
                    .registry
                    .snapshot()
                    .get("", "v1", "services")
                    .unwrap(),
                Some("default"),
                "a",
            )
            .is_ok()
        {
            "a"
        } else {
            "b"
        };
        let res = servers[2]
            .registry
            .snapshot()
            .get("", "v1", "services")
            .cloned()
            .unwrap();
        servers[2]
            .generic
            .delete(&res, Some("default"), held_by, &Default::default(), &ctx())
            .await
            .unwrap();
        create(&servers[1], "c", spec).await.unwrap();
    }

    #[tokio::test]
    async fn repair_reserves_what_services_hold_and_refreshes_the_hints() {
        let servers = servers().await;
        let svc = create(
            &servers[0],
            "kept",
            json!({"type": "NodePort", "ports": [{"port": 80}]}),
        )
        .await
        .unwrap();
        let port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        let store = servers[0].generic.store().clone();
        let key = format!("{NODE_PORT_PREFIX}{port}");
        let kv = store.get(&key).unwrap();
        store.delete(&key, kv.value.clone(), 0).await.unwrap();
        servers[2].generic.reservations().unwrap().repair().await;
        let claim: Value = serde_json::from_slice(&store.get(&key).unwrap().value).unwrap();
        assert_eq!(parent(&claim), ("default".to_string(), "kept".to_string()));
        // Server 2 never allocated it, yet now knows it is used.
        assert!(
            servers[2]
                .generic
                .reservations()
                .unwrap()
                .alloc
                .ports
                .lock()
                .allocate(port as u16)
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_kubernetes_endpoints_list_every_server_with_a_live_lease() {
        let servers = servers().await;
        // The first two wrote before the third had its lease: one more round each.
        for s in &servers {
            crate::apiserver_leases::reconcile(s).await.unwrap();
        }
        let snap = servers[0].registry.snapshot();
        let ep = servers[0]
            .generic
            .get(
                snap.get("", "v1", "endpoints").unwrap(),
                Some("default"),
                "kubernetes",
            )
            .unwrap();
        assert_eq!(
            ep["subsets"][0]["addresses"],
            json!([{"ip": "127.0.0.1"}, {"ip": "127.0.0.2"}, {"ip": "127.0.0.3"}])
        );
        let slice = servers[0]
            .generic
            .get(
                snap.get("discovery.k8s.io", "v1", "endpointslices")
                    .unwrap(),
                Some("default"),
                "kubernetes",
            )
            .unwrap();
        assert_eq!(slice["endpoints"].as_array().map(Vec::len), Some(3));
        // A lease that stopped being renewed drops its server.
        let leases = snap
            .get("coordination.k8s.io", "v1", "leases")
            .unwrap()
            .clone();
        let name = crate::apiserver_leases::lease_name("127.0.0.3:6443");
        servers[0]
            .generic
            .update(
                &leases,
                Some("kube-system"),
                &name,
                None,
                &ctx(),
                |cur, _| {
                    let mut l = cur.cloned().unwrap();
                    l["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
                    Ok(l)
                },
            )
            .await
            .unwrap();
        crate::apiserver_leases::reconcile(&servers[0])
            .await
            .unwrap();
        let ep = servers[1]
            .generic
            .get(
                snap.get("", "v1", "endpoints").unwrap(),
                Some("default"),
                "kubernetes",
            )
            .unwrap();
        assert_eq!(
            ep["subsets"][0]["addresses"],
            json!([{"ip": "127.0.0.1"}, {"ip": "127.0.0.2"}])
        );
        assert!(
            servers[1]
                .generic
                .get(&leases, Some("kube-system"), &name)
                .is_err()
        );
    }
}

//! k1s-apiserver: the Kubernetes API over HTTPS, served by one generic registry.
//!
//! Every built-in kind (and every CRD-defined kind) is a [`registry::ResourceInfo`] plus a
//! [`registry::Strategy`]; [`registry::generic::GenericStore`] implements every verb once
//! on top of [`k1s_store::Store`]. [`handlers`] is the HTTP surface, [`discovery`] and
//! [`openapi`] describe what is served, [`server`] terminates TLS and authenticates, and
//! [`client`] gives in-process components a `kube::Client`-compatible tower service.

pub mod admission;
pub mod aggregator;
pub mod apiserver_leases;
pub mod apply;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod client;
pub mod crd;
pub mod discovery;
#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod gaps_tests;
pub mod handlers;
pub mod inflight;
pub mod kinds;
pub mod managed;
pub mod meta;
pub mod metrics;
pub mod openapi;
pub mod patch;
pub mod printers;
pub mod registry;
pub mod schema;
pub mod server;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
#[cfg(test)]
mod write_cost;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ipnet::IpNet;
use k1s_store::Store;

use self::auth::TokenTable;
use self::kinds::core::service::ServiceAllocators;
use self::registry::generic::GenericStore;
use self::registry::{Registry, Resource};

/// What the API server needs to know about the cluster.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `host:port` clients should use (discovery's serverAddressByClientCIDRs, the
    /// `kubernetes` Endpoints).
    pub advertise_address: String,
    /// The advertised IP (for the `kubernetes` Endpoints).
    pub advertise_ip: IpAddr,
    /// The advertised port.
    pub advertise_port: u16,
    /// Range of Service cluster IPs.
    pub service_cidr: IpNet,
    /// Cluster DNS domain.
    pub cluster_domain: String,
}

/// The API server: registry, store and caches, shared by every request.
pub struct ApiServer {
    /// What is served.
    pub registry: Arc<Registry>,
    /// The generic registry over the store.
    pub generic: GenericStore,
    /// Configuration.
    pub config: ApiConfig,
    /// This server's identity among servers sharing the datastore (`apiserver-<uuid>`,
    /// upstream's form), the holder of its lease.
    pub identity: String,
    /// Bearer tokens accepted besides client certificates.
    pub tokens: TokenTable,
    /// Published OpenAPI documents.
    pub openapi: openapi::OpenApiCache,
    /// Issues and verifies service account tokens, once the signing key is set.
    pub service_account_tokens: std::sync::OnceLock<Arc<auth::serviceaccount::TokenIssuer>>,
    /// TLS for connections to kubelets (logs, exec, attach, port-forward), once set.
    pub kubelet_client_tls: std::sync::OnceLock<Arc<rustls::ClientConfig>>,
    /// Resource metrics scraped from the kubelets, once [`metrics::start`] runs (then
    /// `metrics.k8s.io` is served).
    pub resource_metrics: std::sync::OnceLock<Arc<metrics::store::MetricsStore>>,
    /// The authorizer chain (`--authorization-mode`) with its RBAC index.
    pub authorizer: auth::authz::Authorizer,
    /// The aggregation layer: remote APIServices and the proxy's identity.
    pub aggregator: aggregator::Aggregator,
    /// Whether requests without credentials run as `system:anonymous`
    /// (`--anonymous-auth`); else they get 401.
    pub anonymous_auth: AtomicBool,
    /// The audit policy and log, once `--audit-policy-file` and `--audit-log-path` are set.
    pub audit: std::sync::OnceLock<Arc<audit::Auditor>>,
    /// The max-in-flight limits and counters.
    pub inflight: Arc<inflight::InFlight>,
    /// Legacy token Secrets (namespace, name) used since the tracking labels were last
    /// written.
    pub legacy_token_use: parking_lot::Mutex<std::collections::BTreeSet<(String, String)>>,
    /// Built-in resources (CRDs are added to these on every registry change).
    builtins: Vec<Arc<Resource>>,
    /// Definitions of the built-in kinds.
    builtin_definitions: schema::model::Definitions,
    /// Encoded watch events shared by the watchers of one resource.
    pub(crate) watch_memo: Arc<handlers::watch_memo::WatchMemo>,
    ready: AtomicBool,
    shutting_down: AtomicBool,
    /// Health probes of the in-process components `componentstatuses` reports.
    components: parking_lot::RwLock<Vec<(String, ComponentProbe)>>,
}

/// Answers whether an in-process component (scheduler, controller-manager) is healthy:
/// `Err` carries what is wrong.
pub type ComponentProbe = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The components upstream's `componentstatuses` lists besides the datastore, in its
/// order.
pub const COMPONENTS: &[&str] = &["scheduler", "controller-manager"];

impl ApiServer {
    /// Builds the server over an opened store: registers the built-in kinds and repairs
    /// allocator state from what is stored.
    pub async fn new(store: Store, config: ApiConfig, tokens: TokenTable) -> Arc<Self> {
        let allocators = ServiceAllocators::new(config.service_cidr);
        let (resources, definitions) = kinds::builtin(&allocators).build();
        let builtins: Vec<Arc<Resource>> = resources.into_iter().map(Arc::new).collect();
        let registry = Arc::new(Registry::new());
        registry.replace(builtins.clone(), definitions.clone());
        let shared = store.backend().shared();
        let generic = GenericStore::new(store.clone(), registry.clone());
        if shared {
            // Other servers allocate from the same ranges: values are held by their
            // reservations in the store, the in-memory sets are hints.
            allocators.set_shared();
            generic.set_reservations(Arc::new(
                kinds::core::service_reservations::Reservations::new(
                    store,
                    registry.clone(),
                    allocators.clone(),
                ),
            ));
        }
        let server = Arc::new(Self {
            registry,
            generic,
            config,
            identity: format!("apiserver-{}", uuid::Uuid::new_v4()),
            tokens,
            openapi: openapi::OpenApiCache::default(),
            service_account_tokens: std::sync::OnceLock::new(),
            kubelet_client_tls: std::sync::OnceLock::new(),
            resource_metrics: std::sync::OnceLock::new(),
            authorizer: auth::authz::Authorizer::default(),
            aggregator: aggregator::Aggregator::default(),
            anonymous_auth: AtomicBool::new(true),
            audit: std::sync::OnceLock::new(),
            inflight: Arc::default(),
            legacy_token_use: parking_lot::Mutex::default(),
            builtins,
            builtin_definitions: definitions,
            watch_memo: Arc::default(),
            ready: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            components: parking_lot::RwLock::default(),
        });
        server.restore_strategies();
        // Writes of roles and bindings are checked for escalation by the registry, as
        // upstream's RBAC storage does; the check reaches the authorizer through this.
        let weak = Arc::downgrade(&server);
        server
            .generic
            .set_write_check(Arc::new(move |info, ns, obj, ctx| match weak.upgrade() {
                Some(s) => auth::bootstrap_policy::check_write(&s, info, ns, obj, ctx),
                None => Ok(()),
            }));
        // The CEL `authorizer` of admission policies and webhook match conditions asks
        // this server's authorizer chain.
        let weak = Arc::downgrade(&server);
        let _ = server.generic.admission().authorizer.set(Arc::new(
            move |user: &auth::UserInfo, q: &k1s_cel::AuthzQuery| {
                let Some(s) = weak.upgrade() else {
                    return k1s_cel::AuthzDecision {
                        allowed: false,
                        reason: String::new(),
                        error: Some("the API server is shutting down".into()),
                    };
                };
                let a = match &q.path {
                    Some(path) => auth::authz::Attributes {
                        user: user.clone(),
                        verb: q.verb.clone(),
                        resource_request: false,
                        path: path.clone(),
                        ..Default::default()
                    },
                    None => auth::authz::Attributes {
                        user: user.clone(),
                        verb: q.verb.clone(),
                        resource_request: true,
                        namespace: q.namespace.clone(),
                        api_group: q.group.clone(),
                        api_version: "*".into(),
                        resource: q.resource.clone(),
                        subresource: q.subresource.clone(),
                        name: q.name.clone(),
                        path: String::new(),
                    },
                };
                let d = s.authorizer.authorize(&s, &a);
                k1s_cel::AuthzDecision {
                    allowed: d.allowed,
                    reason: d.reason,
                    error: None,
                }
            },
        ));
        server
    }

    /// Whether other servers share the datastore (etcd): Service values are then
    /// reserved in the store and the `kubernetes` endpoints follow the servers' leases.
    pub fn shared_datastore(&self) -> bool {
        self.generic.store().backend().shared()
    }

    /// Whether anonymous requests are allowed.
    pub fn anonymous_enabled(&self) -> bool {
        self.anonymous_auth.load(Ordering::SeqCst)
    }

    /// Lets strategies rebuild in-memory state (allocators) from stored objects.
    fn restore_strategies(&self) {
        for r in &self.builtins {
            if !r.info.storage_version {
                continue;
            }
            let prefix = r.info.collection_prefix(None);
            let (items, _, _) = self.generic.store().cache().list(&prefix, None, 0);
            let mut objects = items
                .iter()
                .filter_map(|kv| self.generic.decode_stored(r, kv).ok());
            r.strategy.restore(&mut objects);
        }
    }

    /// Whether a resource is defined by a CRD.
    pub fn is_custom(&self, r: &Resource) -> bool {
        r.info.custom
    }

    /// Replaces the custom resources served (called when CRDs change).
    pub fn set_custom_resources(
        &self,
        custom: Vec<Arc<Resource>>,
        definitions: schema::model::Definitions,
    ) {
        let mut all = self.builtins.clone();
        all.extend(custom);
        let mut defs = self.builtin_definitions.clone();
        for (name, s) in definitions.iter() {
            defs.insert(name.clone(), (**s).clone());
        }
        self.registry.replace(all, defs);
        self.openapi.rebuild_in_background(&self.registry);
    }

    /// Sets the service account token issuer (the TokenRequest subresource and the
    /// authentication of its tokens need it); only the first call counts.
    pub fn set_service_account_issuer(&self, issuer: auth::serviceaccount::TokenIssuer) {
        let _ = self.service_account_tokens.set(Arc::new(issuer));
    }

    /// Sets the TLS configuration for connections to kubelets (`k1s_pki`'s
    /// `Pki::kubelet_client_tls_config`); without it the streaming subresources answer 503.
    pub fn set_kubelet_client_tls(&self, tls: rustls::ClientConfig) {
        let _ = self.kubelet_client_tls.set(Arc::new(tls));
    }

    /// The issuer URL k3s uses by default: the in-cluster name of the API server.
    pub fn default_service_account_issuer(cluster_domain: &str) -> String {
        format!("https://kubernetes.default.svc.{cluster_domain}")
    }

    /// Marks start-up complete (`/readyz` turns ready).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Whether start-up completed.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Marks shutdown begun (`/readyz` fails).
    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Registers the health probe of an in-process component (one of [`COMPONENTS`]);
    /// a later registration of the same name replaces it.
    pub fn register_component(&self, name: &str, probe: ComponentProbe) {
        let mut list = self.components.write();
        list.retain(|(n, _)| n != name);
        list.push((name.to_string(), probe));
    }

    /// The health of each component as upstream's `componentstatuses` reports it:
    /// name, and `Ok` or what is wrong. A component this server does not run (disabled)
    /// is unhealthy, as upstream's probe of a component that does not answer is; the
    /// datastore is `etcd-0`.
    pub fn component_health(&self) -> Vec<(String, Result<(), String>)> {
        let list = self.components.read();
        let mut out: Vec<(String, Result<(), String>)> = COMPONENTS
            .iter()
            .map(|name| {
                let health = match list.iter().find(|(n, _)| n == name) {
                    Some((_, probe)) => probe(),
                    None => Err(format!("{name} is not running in this server")),
                };
                (name.to_string(), health)
            })
            .collect();
        let store = if self.store_healthy() {
            Ok(())
        } else {
            Err("the datastore does not answer".to_string())
        };
        out.push(("etcd-0".to_string(), store));
        out
    }

    /// Whether the datastore answers.
    pub fn store_healthy(&self) -> bool {
        true
    }
}

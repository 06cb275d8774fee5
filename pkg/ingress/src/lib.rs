//! The built-in ingress controller (k3s ships Traefik; k1s has this): IngressClass `k1s`,
//! marked default, and a reverse proxy on the node's ports 80 and 443 serving the
//! Ingresses of that class.
//!
//! Ingresses, IngressClasses, Services, EndpointSlices and Secrets are watched through
//! reflectors; every change rebuilds the routing table and the TLS certificates and swaps
//! them in behind the listeners, so open connections stay open. Backends are the ready
//! endpoints of a Service port (pod IP and target port), round robin, reached from the
//! host over the pod bridge. Each served Ingress gets the node's addresses in
//! `status.loadBalancer.ingress`.
//!
//! Left out for now: ingress-nginx's annotations (rewrites, redirects to HTTPS, auth),
//! `resource` backends, ExternalName Services as backends, regular-expression paths.

pub mod proxy;
pub mod routes;
pub mod tls;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{
    Ingress, IngressClass, IngressClassSpec, IngressLoadBalancerIngress, IngressServiceBackend,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use proxy::Router;
use routes::{Backend, PathKind, PathRule, Table};
use tls::{CertResolver, Certs};

/// The annotation marking an IngressClass the cluster default.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// The annotation older Ingresses name their class with.
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// The label naming the Service an EndpointSlice belongs to.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Errors of the ingress controller.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// A listener could not be opened.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// A certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// An API request failed.
    #[error("API: {0}")]
    Kube(#[from] kube::Error),
}

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The plain HTTP listener (`0.0.0.0:80` on a node).
    pub http: SocketAddr,
    /// The TLS listener (`0.0.0.0:443` on a node).
    pub https: SocketAddr,
    /// The IngressClass created at start (`k1s`).
    pub class_name: String,
    /// The `spec.controller` of the classes served (`k1s.io/ingress`).
    pub controller: String,
    /// The node's addresses, written to each served Ingress's status.
    pub addresses: Vec<IpAddr>,
    /// How long changes are gathered before the table is rebuilt.
    pub batch: Duration,
    /// Worker threads of each listener (one per CPU by default; 0 runs the connections
    /// on the caller's runtime).
    pub workers: usize,
}

impl Config {
    /// The node defaults: ports 80 and 443 on every address, class `k1s`.
    pub fn new(addresses: Vec<IpAddr>) -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 80)),
            https: SocketAddr::from(([0, 0, 0, 0], 443)),
            class_name: "k1s".into(),
            controller: "k1s.io/ingress".into(),
            addresses,
            batch: Duration::from_millis(50),
            workers: proxy::worker_threads(),
        }
    }
}

/// The controller's listeners, bound (so a port in use is reported at once).
pub struct Listeners {
    http: TcpListener,
    https: TcpListener,
}

impl Listeners {
    /// Binds the HTTP and HTTPS ports of `config`.
    pub async fn bind(config: &Config) -> Result<Self, IngressError> {
        let http = TcpListener::bind(config.http)
            .await
            .map_err(|e| IngressError::Bind(config.http, e))?;
        let https = TcpListener::bind(config.https)
            .await
            .map_err(|e| IngressError::Bind(config.https, e))?;
        Ok(Self { http, https })
    }

    /// The bound addresses (HTTP, HTTPS): the real ports where port 0 was asked for.
    pub fn local_addrs(&self) -> std::io::Result<(SocketAddr, SocketAddr)> {
        Ok((self.http.local_addr()?, self.https.local_addr()?))
    }
}

/// Creates the IngressClass (marked default) unless it exists; a class the user changed
/// (e.g. no longer default) is left as it is.
pub async fn ensure_class(client: kube::Client, config: &Config) -> Result<(), IngressError> {
    let api: Api<IngressClass> = Api::all(client);
    let class = IngressClass {
        metadata: ObjectMeta {
            name: Some(config.class_name.clone()),
            annotations: Some(BTreeMap::from([(
                DEFAULT_CLASS_ANNOTATION.to_owned(),
                "true".to_owned(),
            )])),
            ..Default::default()
        },
        spec: Some(IngressClassSpec {
            controller: Some(config.controller.clone()),
            parameters: None,
        }),
    };
    match api.create(&PostParams::default(), &class).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Runs the controller on bound `listeners` until `shutdown` completes.
pub async fn run(
    client: kube::Client,
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), IngressError> {
    // Without the class, Ingresses naming none are not served; the rest still are.
    if let Err(e) = ensure_class(client.clone(), &config).await {
        tracing::warn!(error = %e, class = %config.class_name, "cannot create the IngressClass");
    }
    let router = Arc::new(Router::default());
    let resolver = Arc::new(CertResolver::new()?);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls::server_config(resolver.clone())?));

    let changed = Arc::new(Notify::new());
    let (ingresses, w1) = reflector::store::<Ingress>();
    let (classes, w2) = reflector::store::<IngressClass>();
    let (services, w3) = reflector::store::<Service>();
    let (slices, w4) = reflector::store::<EndpointSlice>();
    let (secrets, w5) = reflector::store::<Secret>();
    let tasks = vec![
        tokio::spawn(watch(Api::all(client.clone()), w1, changed.clone())),
        tokio::spawn(watch(Api::all(client.clone()), w2, changed.clone())),
        tokio::spawn(watch(Api::all(client.clone()), w3, changed.clone())),
        tokio::spawn(watch(Api::all(client.clone()), w4, changed.clone())),
        tokio::spawn(watch(Api::all(client.clone()), w5, changed.clone())),
    ];
    let _abort = AbortOnDrop(tasks);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let http = tokio::spawn(proxy::serve_with(
        listeners.http,
        None,
        router.clone(),
        config.workers,
        stopped(stop_rx.clone()),
    ));
    let https = tokio::spawn(proxy::serve_with(
        listeners.https,
        Some(acceptor),
        router.clone(),
        config.workers,
        stopped(stop_rx),
    ));

    let stores = Stores {
        ingresses,
        classes,
        services,
        slices,
        secrets,
    };
    let work = async {
        let _ = stores.ingresses.wait_until_ready().await;
        let _ = stores.classes.wait_until_ready().await;
        let _ = stores.services.wait_until_ready().await;
        let _ = stores.slices.wait_until_ready().await;
        let _ = stores.secrets.wait_until_ready().await;
        tracing::info!("ingress controller synced");
        loop {
            let built = stores.build(&config);
            router.set(built.table);
            resolver.set(built.certs);
            update_status(&client, &config, &built.served).await;
            changed.notified().await;
            // Gather what else changes meanwhile into the same rebuild.
            tokio::time::sleep(config.batch).await;
        }
    };
    tokio::select! {
        _ = shutdown => {}
        () = work => {}
    }
    let _ = stop_tx.send(true);
    let _ = http.await;
    let _ = https.await;
    Ok(())
}

async fn watch<K>(api: Api<K>, writer: reflector::store::Writer<K>, changed: Arc<Notify>)
where
    K: Resource + Clone + std::fmt::Debug + Send + Sync + serde::de::DeserializeOwned + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .for_each(|ev| {
            match ev {
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_))
                | Ok(watcher::Event::InitDone) => changed.notify_one(),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, kind = %K::kind(&Default::default()), "ingress watch"),
            }
            futures::future::ready(())
        })
        .await;
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// The watch caches the table is built from.
struct Stores {
    ingresses: Store<Ingress>,
    classes: Store<IngressClass>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    secrets: Store<Secret>,
}

/// One rebuild's result.
struct Built {
    table: Table,
    certs: Certs,
    served: Vec<Arc<Ingress>>,
}

/// Whether an Ingress is this controller's: its class (`spec.ingressClassName`, or the
/// legacy annotation) is one of `ours`, or it names none and one of ours is the default.
pub fn is_served(ing: &Ingress, ours: &[&IngressClass]) -> bool {
    let named = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .or_else(|| {
            ing.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
                .map(String::as_str)
        });
    match named {
        Some(name) => ours
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some(name)),
        None => ours.iter().any(|c| {
            c.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                .is_some_and(|v| v == "true")
        }),
    }
}

impl Stores {
    fn build(&self, config: &Config) -> Built {
        let classes = self.classes.state();
        let ours: Vec<&IngressClass> = classes
            .iter()
            .map(|c| c.as_ref())
            .filter(|c| {
                c.spec.as_ref().and_then(|s| s.controller.as_deref())
                    == Some(config.controller.as_str())
            })
            .collect();
        let mut served: Vec<Arc<Ingress>> = self
            .ingresses
            .state()
            .into_iter()
            .filter(|i| i.metadata.deletion_timestamp.is_none() && is_served(i, &ours))
            .collect();
        // The oldest Ingress wins a conflict (as ingress-nginx orders them).
        served.sort_by(|a, b| {
            let key = |i: &Ingress| {
                (
                    i.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    i.metadata.namespace.clone(),
                    i.metadata.name.clone(),
                )
            };
            key(a).cmp(&key(b))
        });

        let mut by_service: HashMap<(String, String), Vec<Arc<EndpointSlice>>> = HashMap::new();
        for s in self.slices.state() {
            let (Some(ns), Some(svc)) = (
                s.metadata.namespace.clone(),
                s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .cloned(),
            ) else {
                continue;
            };
            by_service.entry((ns, svc)).or_default().push(s);
        }
        let mut backends: HashMap<String, Arc<Backend>> = HashMap::new();
        let mut resolve = |ns: &str, b: &IngressServiceBackend| -> Arc<Backend> {
            let port = b
                .port
                .as_ref()
                .map(|p| match (&p.name, p.number) {
                    (Some(n), _) if !n.is_empty() => n.clone(),
                    (_, Some(n)) => n.to_string(),
                    _ => String::new(),
                })
                .unwrap_or_default();
            let name = format!("{ns}/{}:{port}", b.name);
            backends
                .entry(name.clone())
                .or_insert_with(|| {
                    let endpoints = self.endpoints(ns, b, &by_service);
                    Arc::new(Backend::new(name, endpoints))
                })
                .clone()
        };

        let mut table = Table::default();
        let mut certs = Certs::default();
        for ing in &served {
            let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
            let Some(spec) = &ing.spec else { continue };
            if let Some(svc) = spec
                .default_backend
                .as_ref()
                .and_then(|d| d.service.as_ref())
            {
                table.set_default(resolve(ns, svc));
            }
            for rule in spec.rules.iter().flatten() {
                let host = rule.host.as_deref().unwrap_or("");
                let Some(http) = &rule.http else { continue };
                for p in &http.paths {
                    let Some(svc) = p.backend.service.as_ref() else {
                        continue;
                    };
                    let backend = resolve(ns, svc);
                    table.host(host).push(PathRule::new(
                        p.path.as_deref().unwrap_or("/"),
                        PathKind::from_path_type(&p.path_type),
                        backend,
                    ));
                }
            }
            for t in spec.tls.iter().flatten() {
                let Some(secret_name) = t.secret_name.as_deref() else {
                    continue;
                };
                let Some(key) = self.cert(ns, secret_name) else {
                    continue;
                };
                match t.hosts.as_deref() {
                    Some(hosts) if !hosts.is_empty() => {
                        for h in hosts {
                            certs.insert(h, key.clone());
                        }
                    }
                    _ => certs.set_default(key),
                }
            }
        }
        Built {
            table,
            certs,
            served,
        }
    }

    /// The ready endpoints of a Service port: each slice's port of the same name gives
    /// its pods' target port (so a named targetPort resolves per pod).
    fn endpoints(
        &self,
        ns: &str,
        b: &IngressServiceBackend,
        by_service: &HashMap<(String, String), Vec<Arc<EndpointSlice>>>,
    ) -> Vec<SocketAddr> {
        let Some(svc) = self.services.get(&ObjectRef::new(&b.name).within(ns)) else {
            return vec![];
        };
        let Some(wanted) = b.port.as_ref() else {
            return vec![];
        };
        let Some(sp) = svc.spec.as_ref().and_then(|s| {
            s.ports
                .iter()
                .flatten()
                .find(|sp| match (&wanted.name, wanted.number) {
                    (Some(n), _) if !n.is_empty() => sp.name.as_deref() == Some(n.as_str()),
                    (_, Some(n)) => sp.port == n,
                    _ => false,
                })
        }) else {
            return vec![];
        };
        let port_name = sp.name.as_deref().unwrap_or("");
        let mut out = Vec::new();
        for slice in by_service
            .get(&(ns.to_owned(), b.name.clone()))
            .into_iter()
            .flatten()
        {
            let Some(port) = slice
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref().unwrap_or("") == port_name)
                .and_then(|p| p.port)
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            for ep in &slice.endpoints {
                // An unknown readiness counts as ready, as the API documents.
                if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                    continue;
                }
                if let Some(ip) = ep.addresses.first().and_then(|a| a.parse::<IpAddr>().ok()) {
                    let addr = SocketAddr::new(ip, port);
                    if !out.contains(&addr) {
                        out.push(addr);
                    }
                }
            }
        }
        out
    }

    /// The certificate of a TLS Secret (`tls.crt` and `tls.key`); `None`, logged, when
    /// it is missing or unusable.
    fn cert(&self, ns: &str, name: &str) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let secret = self.secrets.get(&ObjectRef::new(name).within(ns))?;
        let data = secret.data.as_ref()?;
        let (Some(crt), Some(key)) = (data.get("tls.crt"), data.get("tls.key")) else {
            tracing::warn!(secret = %format!("{ns}/{name}"), "TLS Secret lacks tls.crt or tls.key");
            return None;
        };
        match tls::certified_key(&crt.0, &key.0) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                tracing::warn!(secret = %format!("{ns}/{name}"), error = %e, "unusable TLS Secret");
                None
            }
        }
    }
}

/// Writes the node's addresses to `status.loadBalancer.ingress` of each served Ingress
/// that shows other ones.
async fn update_status(client: &kube::Client, config: &Config, served: &[Arc<Ingress>]) {
    let want: Vec<IngressLoadBalancerIngress> = config
        .addresses
        .iter()
        .map(|ip| IngressLoadBalancerIngress {
            ip: Some(ip.to_string()),
            ..Default::default()
        })
        .collect();
    for ing in served {
        let have = ing
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.clone())
            .unwrap_or_default();
        if have == want {
            continue;
        }
        let (Some(ns), Some(name)) = (&ing.metadata.namespace, &ing.metadata.name) else {
            continue;
        };
        let api: Api<Ingress> = Api::namespaced(client.clone(), ns);
        let patch = serde_json::json!({"status": {"loadBalancer": {"ingress": want}}});
        if let Err(e) = api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::warn!(error = %e, ingress = %format!("{ns}/{name}"), "cannot update Ingress status");
        }
    }
}

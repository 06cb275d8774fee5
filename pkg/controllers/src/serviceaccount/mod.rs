//! Service account controllers: `serviceaccount-controller` (upstream
//! `pkg/controller/serviceaccount`: a `default` ServiceAccount in every active namespace,
//! recreated when deleted) and `root-ca-certificate-publisher-controller` (upstream
//! `pkg/controller/certificates/rootcacertpublisher`: the `kube-root-ca.crt` ConfigMap in
//! every namespace, holding the cluster CA as `ca.crt`, put back when edited or deleted).
//!
//! Both watch namespaces and the one object they keep in each, and reconcile a
//! namespace at a time; namespaces being deleted are left alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};

use crate::Shutdown;

/// The ServiceAccount every namespace gets.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// The ConfigMap holding the cluster CA in every namespace.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// Its key.
pub const ROOT_CA_KEY: &str = "ca.crt";
/// The description upstream's publisher puts on the ConfigMap.
pub const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Why a namespace could not be brought in line.
#[derive(Debug, thiserror::Error)]
#[error("cannot ensure {what} in namespace {namespace}")]
pub struct EnsureError {
    what: &'static str,
    namespace: String,
    #[source]
    source: kube::Error,
}

struct Context {
    client: kube::Client,
    /// The CA bundle to publish (root CA publisher only).
    ca_pem: String,
}

/// How often every namespace is looked at again without an event (upstream resyncs).
const RESYNC: Duration = Duration::from_secs(300);

/// The shutdown signal as the `Sync` future kube-runtime's controller wants.
pub(crate) fn stop_signal(
    shutdown: Shutdown,
) -> impl std::future::Future<Output = ()> + Send + Sync {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        shutdown.wait().await;
        let _ = tx.send(());
    });
    async move {
        let _ = rx.await;
    }
}

fn is_active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

fn error_policy(_ns: Arc<Namespace>, err: &EnsureError, _ctx: Arc<Context>) -> Action {
    tracing::debug!(error = %err, "requeueing");
    Action::requeue(Duration::from_secs(5))
}

/// Ignores AlreadyExists (another writer won the race) and NotFound of the namespace
/// (it went away); both leave nothing to do.
fn benign(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 || s.code == 404 || s.code == 403)
}

/// Starts `serviceaccount-controller`.
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let sas: Api<ServiceAccount> = Api::all(client.clone());
        let watch_sas =
            watcher::Config::default().fields(&format!("metadata.name={DEFAULT_SERVICE_ACCOUNT}"));
        let ctx = Arc::new(Context {
            client: client.clone(),
            ca_pem: String::new(),
        });
        Controller::new(Api::<Namespace>::all(client), watcher::Config::default())
            .watches(sas, watch_sas, |sa| {
                sa.namespace().map(|ns| ObjectRef::<Namespace>::new(&ns))
            })
            .graceful_shutdown_on(stop_signal(shutdown))
            .run(ensure_service_account, error_policy, ctx)
            .for_each(|_| async {})
            .await;
    })
}

async fn ensure_service_account(
    ns: Arc<Namespace>,
    ctx: Arc<Context>,
) -> Result<Action, EnsureError> {
    if !is_active(&ns) {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &name);
    let err = |source| EnsureError {
        what: "the default service account",
        namespace: name.clone(),
        source,
    };
    if api
        .get_opt(DEFAULT_SERVICE_ACCOUNT)
        .await
        .map_err(err)?
        .is_none()
    {
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT_SERVICE_ACCOUNT.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => tracing::debug!(namespace = %name, "created the default service account"),
            Err(e) if benign(&e) => {}
            Err(e) => return Err(err(e)),
        }
    }
    Ok(Action::requeue(RESYNC))
}

/// Starts `root-ca-certificate-publisher-controller`; it publishes the CA bundle of the
/// [`crate::ControllerConfig`] and does nothing where there is none.
pub fn start_root_ca_publisher(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    let ca_pem = crate::config().root_ca_pem.clone();
    Box::pin(async move {
        let Some(ca_pem) = ca_pem else {
            tracing::info!(
                "no cluster CA was handed to the controllers: kube-root-ca.crt is not published"
            );
            return;
        };
        let cms: Api<ConfigMap> = Api::all(client.clone());
        let watch_cms =
            watcher::Config::default().fields(&format!("metadata.name={ROOT_CA_CONFIG_MAP}"));
        let ctx = Arc::new(Context {
            client: client.clone(),
            ca_pem,
        });
        Controller::new(Api::<Namespace>::all(client), watcher::Config::default())
            .watches(cms, watch_cms, |cm| {
                cm.namespace().map(|ns| ObjectRef::<Namespace>::new(&ns))
            })
            .graceful_shutdown_on(stop_signal(shutdown))
            .run(ensure_root_ca, error_policy, ctx)
            .for_each(|_| async {})
            .await;
    })
}

async fn ensure_root_ca(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, EnsureError> {
    if !is_active(&ns) {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &name);
    let err = |source| EnsureError {
        what: "the kube-root-ca.crt config map",
        namespace: name.clone(),
        source,
    };
    let data = BTreeMap::from([(ROOT_CA_KEY.to_string(), ctx.ca_pem.clone())]);
    let result = match api.get_opt(ROOT_CA_CONFIG_MAP).await.map_err(err)? {
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(ROOT_CA_CONFIG_MAP.into()),
                    annotations: Some(BTreeMap::from([(
                        "kubernetes.io/description".to_string(),
                        ROOT_CA_DESCRIPTION.to_string(),
                    )])),
                    ..Default::default()
                },
                data: Some(data),
                ..Default::default()
            };
            api.create(&PostParams::default(), &cm).await.map(|_| ())
        }
        // Upstream rewrites the data when it is anything else, and puts its description
        // back.
        Some(mut cm)
            if cm.data.as_ref() != Some(&data)
                || cm.binary_data.is_some()
                || cm
                    .annotations()
                    .get("kubernetes.io/description")
                    .is_none_or(String::is_empty) =>
        {
            cm.data = Some(data);
            cm.binary_data = None;
            cm.annotations_mut().insert(
                "kubernetes.io/description".to_string(),
                ROOT_CA_DESCRIPTION.to_string(),
            );
            api.replace(ROOT_CA_CONFIG_MAP, &PostParams::default(), &cm)
                .await
                .map(|_| ())
        }
        Some(_) => Ok(()),
    };
    match result {
        Ok(()) => {}
        Err(e) if benign(&e) => {}
        Err(e) => return Err(err(e)),
    }
    Ok(Action::requeue(RESYNC))
}

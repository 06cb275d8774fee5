//! Shared test harness: a `TestApiServer` with every controller running against it.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use k1s_apiserver::test_util::TestApiServer;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use tokio::sync::oneshot;

/// Upper bound of every wait: generous for two busy cores, still a bound.
pub const WAIT: Duration = Duration::from_secs(15);

/// An API server with the controllers running; stops them on drop.
pub struct Cluster {
    /// The server (kept alive for the client).
    pub server: TestApiServer,
    /// An admin client.
    pub client: kube::Client,
    stop: Option<oneshot::Sender<()>>,
}

/// What the controllers publish as the cluster CA in tests.
pub const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n";

impl Cluster {
    /// Starts the server and every controller.
    pub async fn start() -> Self {
        Self::start_with(|d| d.enabled_by_default).await
    }

    /// Starts the server and only the controllers named (enabled by default or not):
    /// for tests whose hand-made objects the other controllers would manage.
    pub async fn start_only(names: &[&str]) -> Self {
        Self::start_with(|d| names.contains(&d.name)).await
    }

    async fn start_with(pick: impl Fn(&k1s_controllers::Descriptor) -> bool) -> Self {
        let server = TestApiServer::new().await;
        let client = server.client();
        let (stop, stopped) = oneshot::channel::<()>();
        let config = k1s_controllers::ControllerConfig {
            root_ca_pem: Some(TEST_CA_PEM.into()),
            ..Default::default()
        };
        let chosen: Vec<_> = k1s_controllers::CONTROLLERS
            .iter()
            .filter(|d| pick(d))
            .copied()
            .collect();
        k1s_controllers::run_with(client.clone(), config, chosen, async move {
            let _ = stopped.await;
        });
        Self {
            server,
            client,
            stop: Some(stop),
        }
    }

    /// Creates a namespace.
    pub async fn namespace(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.into());
        api.create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Polls `check` until it returns `Some`, failing the test with `what` after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether `e` is the API's 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

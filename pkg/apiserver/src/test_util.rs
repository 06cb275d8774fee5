//! A real API server over the memory backend, for tests of this crate and of the
//! components (controllers, scheduler) that talk to it through a `kube::Client`.

use std::sync::Arc;

use http::Request;
use k1s_apimachinery::FieldError;
use serde_json::Value;

use crate::auth::{TokenTable, UserInfo};
use crate::{ApiConfig, ApiServer};

/// An API server without a socket.
pub struct TestApiServer {
    /// The server.
    pub server: Arc<ApiServer>,
}

impl TestApiServer {
    /// Starts one with the system namespaces and the `kubernetes` Service.
    pub async fn new() -> Self {
        let backend = Arc::new(k1s_store::MemoryBackend::new());
        let store = match k1s_store::Store::open(backend).await {
            Ok(s) => s,
            Err(e) => panic!("memory store failed to open: {e}"),
        };
        let config = ApiConfig {
            advertise_address: "127.0.0.1:6443".into(),
            advertise_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            advertise_port: 6443,
            service_cidr: "10.43.0.0/16".parse().unwrap_or_else(|_| unreachable!()),
            cluster_domain: "cluster.local".into(),
        };
        let server = ApiServer::new(store, config, TokenTable::new()).await;
        // Like upstream's integration servers: no ServiceAccount admission, since no
        // serviceaccount controller makes the `default` accounts pods would need.
        server.generic.set_service_account_admission(false);
        // Nor storage protection: its finalizers need controllers a test may not run.
        server.generic.set_storage_protection_admission(false);
        // Nor the not-ready taint on new Nodes: no node lifecycle controller takes it off.
        server.generic.set_node_taint_admission(false);
        let issuer = ApiServer::default_service_account_issuer("cluster.local");
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap_or_else(|_| panic!("cannot generate a P-256 key"));
        match crate::auth::serviceaccount::TokenIssuer::from_pkcs8(
            key.as_ref(),
            &issuer,
            vec![issuer.clone()],
        ) {
            Ok(i) => server.set_service_account_issuer(i),
            Err(e) => panic!("service account key refused: {e}"),
        }
        if let Err(s) = crate::bootstrap::run(&server).await {
            panic!("bootstrap failed: {}", s.message);
        }
        // Runs until the test's runtime shuts down.
        let _crd_controller = crate::crd::controller::start(server.clone()).await;
        server.set_ready();
        Self { server }
    }

    /// A client acting as a cluster admin.
    pub fn client(&self) -> kube::Client {
        crate::client::client(self.server.clone(), UserInfo::loopback())
    }

    /// Raw JSON requests as a cluster admin.
    pub fn api(&self) -> TestApi {
        TestApi {
            client: self.client(),
        }
    }

    /// Raw JSON requests as `user`.
    pub fn api_as(&self, user: UserInfo) -> TestApi {
        TestApi {
            client: crate::client::client(self.server.clone(), user),
        }
    }
}

/// Sends raw requests through the whole write path, the way kubectl and charts do, and
/// reads the answers as JSON.
#[derive(Clone)]
pub struct TestApi {
    client: kube::Client,
}

impl TestApi {
    /// `method uri` with `body` as JSON: the status code and the answer (null when it is
    /// not JSON).
    pub async fn call(&self, method: &str, uri: &str, body: &Value) -> (u16, Value) {
        self.call_with(method, uri, "application/json", body).await
    }

    /// [`TestApi::call`] with another content type (the patch types).
    pub async fn call_with(
        &self,
        method: &str,
        uri: &str,
        content_type: &str,
        body: &Value,
    ) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", content_type)
            .body(serde_json::to_vec(body).unwrap_or_default())
            .unwrap_or_else(|e| panic!("request {method} {uri}: {e}"));
        let resp = self
            .client
            .send(req.map(kube::client::Body::from))
            .await
            .unwrap_or_else(|e| panic!("{method} {uri}: {e}"));
        let code = resp.status().as_u16();
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// `method uri` with raw `body` bytes: the status code and the answer's bytes as sent.
    pub async fn call_raw(
        &self,
        method: &str,
        uri: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", content_type)
            .body(body)
            .unwrap_or_else(|e| panic!("request {method} {uri}: {e}"));
        let resp = self
            .client
            .send(req.map(kube::client::Body::from))
            .await
            .unwrap_or_else(|e| panic!("{method} {uri}: {e}"));
        let code = resp.status().as_u16();
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default();
        (code, bytes)
    }

    /// POSTs `obj` to `collection`, which must answer 201; the created object.
    pub async fn create(&self, collection: &str, obj: Value) -> Value {
        let (code, body) = self.call("POST", collection, &obj).await;
        assert_eq!(code, 201, "{collection} {obj}: {body}");
        body
    }
}

/// Validation errors as a client reads them, one line each (by value or by reference).
pub fn texts(errs: impl AsRef<[FieldError]>) -> Vec<String> {
    errs.as_ref().iter().map(ToString::to_string).collect()
}

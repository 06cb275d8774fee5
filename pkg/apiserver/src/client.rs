//! An in-process `kube::Client`: requests go straight to the handlers as a tower
//! service — no socket, no TLS — with a fixed identity. Components inside the server
//! process use this; agents on other nodes use the same client type over HTTPS.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;

use crate::ApiServer;
use crate::auth::UserInfo;

/// A tower service that serves requests with the API server's handlers.
#[derive(Clone)]
pub struct InProcess {
    server: Arc<ApiServer>,
    user: UserInfo,
}

impl InProcess {
    /// A service acting as `user`.
    pub fn new(server: Arc<ApiServer>, user: UserInfo) -> Self {
        Self { server, user }
    }
}

impl tower::Service<http::Request<kube::client::Body>> for InProcess {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
        let server = self.server.clone();
        let user = self.user.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(user);
            Ok(
                crate::handlers::handle(server, http::Request::from_parts(parts, Body::new(body)))
                    .await,
            )
        })
    }
}

/// A `kube::Client` acting as `user` inside this process.
pub fn client(server: Arc<ApiServer>, user: UserInfo) -> kube::Client {
    kube::Client::new(InProcess::new(server, user), "default")
}

#[cfg(test)]
mod tests {

    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use kube::api::{Api, PostParams};

    use super::*;

    #[tokio::test]
    async fn kube_client_creates_and_reads_through_the_handlers() {
        // Components below the API server are ordinary kube clients; this is their path.
        let server = crate::test_util::TestApiServer::new().await.server;
        let c = client(server, UserInfo::loopback());
        let ns: Api<Namespace> = Api::all(c.clone());
        assert!(ns.get("kube-system").await.is_ok());
        let cms: Api<ConfigMap> = Api::namespaced(c, "default");
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("x".into());
        cm.data = Some([("k".to_string(), "v".to_string())].into());
        let created = cms.create(&PostParams::default(), &cm).await.unwrap();
        assert!(created.metadata.uid.is_some());
        let got = cms.get("x").await.unwrap();
        assert_eq!(got.data.unwrap()["k"], "v");
        let err = cms.create(&PostParams::default(), &cm).await.unwrap_err();
        match err {
            kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists")),
            other => panic!("unexpected {other}"),
        }
    }
}

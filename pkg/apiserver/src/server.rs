//! HTTPS serving: rustls with optional client certificates, HTTP/1.1 and HTTP/2, the
//! authenticated user attached to every request.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::ApiServer;
use crate::auth::UserInfo;

/// Turns a peer certificate into a user; supplied by the caller (k1s-pki parses them).
pub type CertAuthenticator = Arc<dyn Fn(&[u8]) -> Option<UserInfo> + Send + Sync>;

/// Serves the API on `listener` until the future is dropped.
pub async fn serve(
    server: Arc<ApiServer>,
    listener: TcpListener,
    tls: rustls::ServerConfig,
    certs: CertAuthenticator,
) {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let server = server.clone();
        let certs = certs.clone();
        tokio::spawn(async move {
            // A client that never finishes its handshake must not hold a task forever.
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
            let tls = match handshake.await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let cert_user = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| certs(c.as_ref()));
            serve_connection(server, TokioIo::new(tls), cert_user, peer).await;
        });
    }
}

async fn serve_connection<I>(
    server: Arc<ApiServer>,
    io: I,
    cert_user: Option<UserInfo>,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let server = server.clone();
        let cert_user = cert_user.clone();
        async move {
            let (mut parts, body) = req.into_parts();
            let user = authenticate(&server, &parts.headers, cert_user);
            if let Some(u) = user {
                parts.extensions.insert(u);
            }
            let req = http::Request::from_parts(parts, Body::new(body));
            Ok::<_, std::convert::Infallible>(crate::handlers::handle(server, req).await)
        }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder.serve_connection_with_upgrades(io, service).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// A bearer token wins over the certificate, as upstream's union authenticator finds the
/// token first only when one is sent.
fn authenticate(
    server: &ApiServer,
    headers: &http::HeaderMap,
    cert_user: Option<UserInfo>,
) -> Option<UserInfo> {
    if let Some(token) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return server.tokens.authenticate(token.trim()).cloned();
    }
    cert_user
}

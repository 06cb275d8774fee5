//! The reverse proxy: HTTP/1.1 and HTTP/2 from clients (plain or TLS), HTTP/1.1 to the
//! backends' pod IPs over pooled connections; upgrades (WebSocket) spliced both ways.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::RwLock;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::routes::{Route, Table, host_of};

type Body = BoxBody<Bytes, hyper::Error>;

/// The routing table the listeners read for each request; [`Router::set`] swaps it
/// without touching open connections.
#[derive(Debug, Default)]
pub struct Router {
    table: RwLock<Arc<Table>>,
}

impl Router {
    /// Replaces the table; requests already routed keep their backend.
    pub fn set(&self, table: Table) {
        *self.table.write() = Arc::new(table);
    }

    fn current(&self) -> Arc<Table> {
        self.table.read().clone()
    }
}

/// State shared by the connections of both listeners.
struct Shared {
    router: Arc<Router>,
    client: Client<HttpConnector, Incoming>,
}

/// One accepted connection's facts, for the forwarded headers.
#[derive(Clone, Copy)]
struct Conn {
    peer: SocketAddr,
    port: u16,
    tls: bool,
}

/// Serves `listener` (TLS when `tls` is given) until `shutdown` completes; connections
/// open then are left to finish on their own tasks.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Arc<Router>,
    shutdown: impl Future<Output = ()>,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector);
    let shared = Arc::new(Shared { router, client });
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, port, "ingress accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            peer,
            port,
            tls: tls.is_some(),
        };
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_conn(TokioIo::new(stream), conn, shared).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(s)) => serve_conn(TokioIo::new(s), conn, shared).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn serve_conn<I>(io: TokioIo<I>, conn: Conn, shared: Arc<Shared>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(req, conn, &shared).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder.serve_connection_with_upgrades(io, service).await {
        tracing::debug!(error = %e, peer = %conn.peer, "ingress connection ended");
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Responses up to this length are read whole before they are sent on.
const SMALL_BODY: u64 = 64 * 1024;

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers the Connection header names are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in HOP_BY_HOP {
        headers.remove(n);
    }
    headers.remove(header::UPGRADE);
}

fn is_upgrade(req: &Request<Incoming>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

async fn handle(mut req: Request<Incoming>, conn: Conn, shared: &Shared) -> Response<Body> {
    // HTTP/2 has the authority in the URI, HTTP/1.1 in the Host header.
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let host = host_of(&authority);
    let backend = match shared.router.current().route(host, req.uri().path()) {
        Route::Backend(b) => b,
        Route::NotFound => return plain(StatusCode::NOT_FOUND, "404 page not found\n"),
    };
    let Some(endpoint) = backend.pick() else {
        tracing::debug!(backend = %backend.name, "no ready endpoints");
        return plain(StatusCode::SERVICE_UNAVAILABLE, "no available server\n");
    };

    let upgrade = is_upgrade(&req);
    let upgrade_proto = req.headers().get(header::UPGRADE).cloned();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
    if let Ok(h) = HeaderValue::from_str(&authority) {
        headers.insert(header::HOST, h);
    }
    let client_ip = conn.peer.ip().to_string();
    let forwarded = [
        ("x-forwarded-for", client_ip.clone()),
        ("x-real-ip", client_ip),
        (
            "x-forwarded-proto",
            if conn.tls { "https" } else { "http" }.to_owned(),
        ),
        ("x-forwarded-host", authority.clone()),
        ("x-forwarded-port", conn.port.to_string()),
    ];
    for (name, value) in forwarded {
        // The client's own values are not trusted (ingress-nginx's default).
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    *req.version_mut() = Version::HTTP_11;

    if upgrade {
        if let Some(p) = upgrade_proto {
            req.headers_mut().insert(header::UPGRADE, p);
            req.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        *req.uri_mut() = match path.parse::<Uri>() {
            Ok(u) => u,
            Err(_) => return plain(StatusCode::BAD_REQUEST, "bad request path\n"),
        };
        return forward_upgrade(req, endpoint, &backend.name).await;
    }

    *req.uri_mut() = match format!("http://{endpoint}{path}").parse::<Uri>() {
        Ok(u) => u,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "bad request path\n"),
    };
    match shared.client.request(req).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            // A small body of known length is read whole, so the head and the body leave
            // in one write (as nginx's proxy buffers do); the rest streams.
            let small = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|n| n <= SMALL_BODY);
            if small {
                return match body.collect().await {
                    Ok(b) => Response::from_parts(
                        parts,
                        Full::new(b.to_bytes())
                            .map_err(|never| match never {})
                            .boxed(),
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, backend = %backend.name, %endpoint, "ingress backend failed");
                        plain(StatusCode::BAD_GATEWAY, "bad gateway\n")
                    }
                };
            }
            Response::from_parts(parts, body.boxed())
        }
        Err(e) => {
            tracing::warn!(error = %e, backend = %backend.name, %endpoint, "ingress backend failed");
            plain(StatusCode::BAD_GATEWAY, "bad gateway\n")
        }
    }
}

/// Sends an upgrade request on a connection of its own and, when the backend switches
/// protocols, splices the two upgraded connections together.
async fn forward_upgrade(
    mut req: Request<Incoming>,
    endpoint: SocketAddr,
    backend: &str,
) -> Response<Body> {
    let client_upgrade = hyper::upgrade::on(&mut req);
    let stream =
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(endpoint)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, %backend, %endpoint, "ingress backend failed");
                return plain(StatusCode::BAD_GATEWAY, "bad gateway\n");
            }
            Err(_) => return plain(StatusCode::GATEWAY_TIMEOUT, "gateway timeout\n"),
        };
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, %backend, %endpoint, "ingress backend failed");
                return plain(StatusCode::BAD_GATEWAY, "bad gateway\n");
            }
        };
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "upgrade connection to backend ended");
        }
    });
    let mut resp = match sender.send_request(req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, %backend, %endpoint, "ingress backend failed");
            return plain(StatusCode::BAD_GATEWAY, "bad gateway\n");
        }
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let backend_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let (client, server) = match tokio::join!(client_upgrade, backend_upgrade) {
                (Ok(c), Ok(s)) => (c, s),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::debug!(error = %e, "upgrade failed");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let mut server = TokioIo::new(server);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
        let (parts, _) = resp.into_parts();
        return Response::from_parts(
            parts,
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed(),
        );
    }
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, body.boxed())
}

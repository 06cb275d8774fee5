//! The reverse proxy: HTTP/1.1 and HTTP/2 from clients (plain or TLS), HTTP/1.1 to the
//! backends' pod IPs over kept-alive connections; upgrades (WebSocket) spliced both ways.
//!
//! Each client connection keeps its own connections to the backends it reached (up to
//! [`OWN_BACKEND_CONNS`]), driven on the client connection's task: a request and its
//! answer pass between the two sockets without waking another task or thread, as nginx
//! proxies on the connection's own event loop (through a shared pool, each request went to
//! the backend connection's task and back, often on the other thread). Beyond those,
//! requests go through a shared pool.
//!
//! Connections run on the listener's worker threads, one per CPU, each a single-threaded
//! runtime (see [`serve`]), as nginx runs one event loop per worker process.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hyper::client::conn::http1;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::RwLock;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::routes::{Route, Table, host_of};

/// A response body: whole (read from a small backend answer, or made here) or streamed
/// from the backend; no box per response.
type Body = Either<Full<Bytes>, Incoming>;

/// A body sent as it is.
fn whole(bytes: Bytes) -> Body {
    Either::Left(Full::new(bytes))
}

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

    /// The route of `host` and `path` in the current table (read in place: no copy of
    /// the table's handle per request).
    fn route(&self, host: &str, path: &str) -> Route {
        self.table.read().route(host, path)
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

/// The most backend connections a client connection keeps of its own (more are in use
/// at once only for concurrent HTTP/2 streams; those go through the shared pool).
pub const OWN_BACKEND_CONNS: usize = 4;

/// A backend connection's future, driven on its client connection's task.
type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a client connection's requests share: its forwarded header values, made once,
/// and its own idle backend connections.
struct ConnState {
    conn: Conn,
    shared: Arc<Shared>,
    client_ip: Option<HeaderValue>,
    port: HeaderValue,
    /// Idle connections of this client connection's, by endpoint.
    idle: parking_lot::Mutex<Vec<(SocketAddr, http1::SendRequest<Incoming>)>>,
    /// Backend connections opened: their futures go to the client connection's task.
    drivers: tokio::sync::mpsc::UnboundedSender<Driver>,
}

/// Why a request could not be sent to its backend.
enum SendError {
    /// Connecting took too long.
    Timeout,
    /// Connecting or the exchange failed.
    Failed(String),
}

impl ConnState {
    /// Opens a connection to `endpoint`, driven on this client connection's task.
    async fn connect(
        &self,
        endpoint: SocketAddr,
    ) -> Result<http1::SendRequest<Incoming>, SendError> {
        let stream = match tokio::time::timeout(
            Duration::from_secs(5),
            TcpStream::connect(endpoint),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(SendError::Failed(e.to_string())),
            Err(_) => return Err(SendError::Timeout),
        };
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SendError::Failed(e.to_string()))?;
        let driver: Driver = Box::pin(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "ingress backend connection ended");
            }
        });
        if self.drivers.send(driver).is_err() {
            return Err(SendError::Failed("client connection closed".into()));
        }
        Ok(sender)
    }

    /// Sends `req` (origin-form URI) to `endpoint` on an idle connection of this client
    /// connection's, or a new one; the shared pool where this one has enough.
    async fn send(
        &self,
        endpoint: SocketAddr,
        mut req: Request<Incoming>,
    ) -> Result<(Response<Incoming>, Option<http1::SendRequest<Incoming>>), SendError> {
        let (idle, owned) = {
            let mut idle = self.idle.lock();
            idle.retain(|(_, s)| !s.is_closed());
            let found = idle
                .iter()
                .position(|(a, _)| *a == endpoint)
                .map(|i| idle.swap_remove(i).1);
            (found, idle.len())
        };
        let reused = idle.is_some();
        let mut sender = match idle {
            Some(s) => s,
            None if owned >= OWN_BACKEND_CONNS => {
                let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
                *req.uri_mut() = format!("http://{endpoint}{path}")
                    .parse::<Uri>()
                    .map_err(|e| SendError::Failed(e.to_string()))?;
                return match self.shared.client.request(req).await {
                    Ok(resp) => Ok((resp, None)),
                    Err(e) => Err(SendError::Failed(e.to_string())),
                };
            }
            None => self.connect(endpoint).await?,
        };
        // Ready at once unless the connection is still finishing the last exchange (a new
        // one takes its first request before it is polled).
        if reused && sender.ready().await.is_err() {
            sender = self.connect(endpoint).await?;
        }
        match sender.try_send_request(req).await {
            Ok(resp) => Ok((resp, Some(sender))),
            Err(mut e) => match e.take_message() {
                // Not sent (the backend closed the idle connection meanwhile): once more
                // on a new one.
                Some(req) => {
                    let mut fresh = self.connect(endpoint).await?;
                    match fresh.send_request(req).await {
                        Ok(resp) => Ok((resp, Some(fresh))),
                        Err(e) => Err(SendError::Failed(e.to_string())),
                    }
                }
                None => Err(SendError::Failed(e.into_error().to_string())),
            },
        }
    }

    /// Keeps a connection whose exchange is complete for this client's next request.
    fn release(&self, endpoint: SocketAddr, sender: http1::SendRequest<Incoming>) {
        let mut idle = self.idle.lock();
        if idle.len() < OWN_BACKEND_CONNS {
            idle.push((endpoint, sender));
        }
    }
}

/// Serves `listener` (TLS when `tls` is given) until `shutdown` completes; connections
/// open then are left to finish.
///
/// Connections are accepted here and handed round robin to worker threads, one per CPU,
/// each an event loop of its own (a single-threaded runtime), as nginx's worker
/// processes are: a request, its backend exchange and its answer run on one thread with
/// no work stealing, no cross-thread wake-ups and no parking of idle workers between
/// them. Where no worker thread can be started, connections run on the caller's runtime.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Arc<Router>,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, tls, router, worker_threads(), shutdown).await;
}

/// Worker threads per listener by default: one per CPU.
pub fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// [`serve`] with `threads` worker threads; 0 serves the connections on the caller's
/// runtime (the shape before worker threads, kept for comparison in the benchmark).
pub async fn serve_with(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Arc<Router>,
    threads: usize,
    shutdown: impl Future<Output = ()>,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let workers: Vec<WorkerInbox> = (0..threads)
        .filter_map(|i| start_worker(port, i, tls.clone(), router.clone()))
        .collect();
    // Connections no worker thread takes run here.
    let mut local: Option<Arc<Shared>> = None;
    let mut next = 0usize;
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
        let stream = match workers.get(next % workers.len().max(1)) {
            Some(worker) => {
                next = next.wrapping_add(1);
                match hand_over(worker, stream, conn) {
                    Ok(()) => continue,
                    Err(s) => s,
                }
            }
            None => stream,
        };
        let shared = local
            .get_or_insert_with(|| Arc::new(Shared::new(router.clone())))
            .clone();
        tokio::spawn(serve_accepted(stream, conn, tls.clone(), shared));
    }
}

/// A worker thread's inbox: accepted connections (non-blocking sockets) to serve.
type WorkerInbox = tokio::sync::mpsc::UnboundedSender<(std::net::TcpStream, Conn)>;

/// Sends an accepted connection to `worker`; the stream comes back where that worker
/// is gone (its runtime could not start), to be served here.
fn hand_over(worker: &WorkerInbox, stream: TcpStream, conn: Conn) -> Result<(), TcpStream> {
    let std_stream = match stream.into_std() {
        Ok(s) => s,
        Err(e) => {
            // The socket left this runtime's poller half way: nothing to serve it with.
            tracing::debug!(error = %e, peer = %conn.peer, "cannot hand the connection over");
            return Ok(());
        }
    };
    let Err(tokio::sync::mpsc::error::SendError((std_stream, _))) = worker.send((std_stream, conn))
    else {
        return Ok(());
    };
    match TcpStream::from_std(std_stream) {
        Ok(s) => Err(s),
        Err(e) => {
            tracing::debug!(error = %e, peer = %conn.peer, "cannot take the connection back");
            Ok(())
        }
    }
}

/// Starts worker thread `index` of the listener on `port`; `None` (logged) when the thread
/// cannot be made. The worker ends once its inbox is dropped and its connections have
/// finished; where its runtime cannot be made it ends at once (its inbox then refuses).
fn start_worker(
    port: u16,
    index: usize,
    tls: Option<TlsAcceptor>,
    router: Arc<Router>,
) -> Option<WorkerInbox> {
    let (inbox, mut accepted) =
        tokio::sync::mpsc::unbounded_channel::<(std::net::TcpStream, Conn)>();
    let work = move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, port, "cannot start an ingress worker runtime");
                return;
            }
        };
        runtime.block_on(async move {
            let shared = Arc::new(Shared::new(router));
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    a = accepted.recv() => match a {
                        Some((std_stream, conn)) => match TcpStream::from_std(std_stream) {
                            Ok(stream) => {
                                conns.spawn(serve_accepted(stream, conn, tls.clone(), shared.clone()));
                            }
                            Err(e) => tracing::debug!(error = %e, "cannot take the connection over"),
                        },
                        None => break,
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
            // Stopped: the open connections finish before the thread ends.
            while conns.join_next().await.is_some() {}
        });
    };
    match std::thread::Builder::new()
        .name(format!("ingress-{port}-{index}"))
        .spawn(work)
    {
        Ok(_) => Some(inbox),
        Err(e) => {
            tracing::warn!(error = %e, port, "cannot start an ingress worker thread");
            None
        }
    }
}

impl Shared {
    /// The state of one runtime's connections: the routing table and a client pool.
    fn new(router: Arc<Router>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Self { router, client }
    }
}

/// Serves one accepted connection, after the TLS handshake where `tls` is given.
async fn serve_accepted(
    stream: TcpStream,
    conn: Conn,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let peer = conn.peer;
    match tls {
        None => serve_conn(TokioIo::new(stream), conn, shared).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(s)) => serve_conn(TokioIo::new(s), conn, shared).await,
                Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn serve_conn<I>(io: TokioIo<I>, conn: Conn, shared: Arc<Shared>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (drivers, mut opened) = tokio::sync::mpsc::unbounded_channel::<Driver>();
    let state = Arc::new(ConnState {
        conn,
        shared,
        client_ip: HeaderValue::from_str(&conn.peer.ip().to_string()).ok(),
        port: HeaderValue::from(conn.port),
        idle: parking_lot::Mutex::new(Vec::new()),
        drivers,
    });
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(req, &state).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let server = async move {
        if let Err(e) = builder.serve_connection_with_upgrades(io, service).await {
            tracing::debug!(error = %e, peer = %conn.peer, "ingress connection ended");
        }
    };
    // The backend connections this client connection opened, polled on its task; they
    // end when it does (their senders go with the service).
    let backends = async move {
        let mut running = FuturesUnordered::new();
        loop {
            tokio::select! {
                d = opened.recv() => match d {
                    Some(d) => running.push(d),
                    None => break,
                },
                Some(()) = running.next(), if !running.is_empty() => {}
            }
        }
        while running.next().await.is_some() {}
    };
    tokio::join!(server, backends);
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(whole(Bytes::from_static(text.as_bytes())));
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
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers the Connection header names are hop-by-hop too (its usual tokens name
    // none besides the ones removed below: no name is made for them).
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|n| {
            !["keep-alive", "close", "upgrade"]
                .iter()
                .any(|t| n.eq_ignore_ascii_case(t))
        })
        .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in &HOP_BY_HOP {
        headers.remove(n);
    }
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

async fn handle(mut req: Request<Incoming>, state: &ConnState) -> Response<Body> {
    let (conn, shared) = (state.conn, &*state.shared);
    // HTTP/2 has the authority in the URI, HTTP/1.1 in the Host header (taken as it is:
    // a header value shares its bytes, so this copies nothing).
    let authority = match req.uri().authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => req.headers().get(header::HOST).cloned(),
    };
    let host = authority
        .as_ref()
        .and_then(|a| a.to_str().ok())
        .map_or("", host_of);
    let backend = match shared.router.route(host, req.uri().path()) {
        Route::Backend(b) => b,
        Route::NotFound => return plain(StatusCode::NOT_FOUND, "404 page not found\n"),
    };
    let Some(endpoint) = backend.pick() else {
        tracing::debug!(backend = %backend.name, "no ready endpoints");
        return plain(StatusCode::SERVICE_UNAVAILABLE, "no available server\n");
    };

    let upgrade = is_upgrade(&req);
    let upgrade_proto = req.headers().get(header::UPGRADE).cloned();
    // The backend gets the origin form (HTTP/2 requests carry the absolute form).
    if req.uri().authority().is_some() || req.uri().scheme().is_some() {
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        *req.uri_mut() = match path.parse::<Uri>() {
            Ok(u) => u,
            Err(_) => return plain(StatusCode::BAD_REQUEST, "bad request path\n"),
        };
    }
    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
    // The client's own forwarded values are not trusted (ingress-nginx's default).
    if let Some(h) = &authority {
        if headers.get(header::HOST) != Some(h) {
            headers.insert(header::HOST, h.clone());
        }
        headers.insert(HeaderName::from_static("x-forwarded-host"), h.clone());
    }
    if let Some(ip) = &state.client_ip {
        headers.insert(HeaderName::from_static("x-forwarded-for"), ip.clone());
        headers.insert(HeaderName::from_static("x-real-ip"), ip.clone());
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(if conn.tls { "https" } else { "http" }),
    );
    headers.insert(
        HeaderName::from_static("x-forwarded-port"),
        state.port.clone(),
    );
    *req.version_mut() = Version::HTTP_11;

    if upgrade {
        if let Some(p) = upgrade_proto {
            req.headers_mut().insert(header::UPGRADE, p);
            req.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        return forward_upgrade(req, endpoint, &backend.name).await;
    }

    match state.send(endpoint, req).await {
        Ok((resp, sender)) => {
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
                    Ok(b) => {
                        // The exchange is complete: the connection can take the next.
                        if let Some(s) = sender {
                            state.release(endpoint, s);
                        }
                        Response::from_parts(parts, whole(b.to_bytes()))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, backend = %backend.name, %endpoint, "ingress backend failed");
                        plain(StatusCode::BAD_GATEWAY, "bad gateway\n")
                    }
                };
            }
            // A streamed body: its connection is not kept (it closes once the body is
            // through), so no other request waits behind the stream.
            drop(sender);
            Response::from_parts(parts, Either::Right(body))
        }
        Err(SendError::Timeout) => plain(StatusCode::GATEWAY_TIMEOUT, "gateway timeout\n"),
        Err(SendError::Failed(e)) => {
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
        return Response::from_parts(parts, whole(Bytes::new()));
    }
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Either::Right(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("Keep-Alive, X-Hop, close"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-kept"]);
    }
}

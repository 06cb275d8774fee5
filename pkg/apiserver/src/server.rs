//! HTTPS serving: rustls with optional client certificates, HTTP/1.1 and HTTP/2, the
//! authenticated user attached to every request, and the timeouts that keep slow or idle
//! clients from holding connections forever.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::ApiServer;
use crate::auth::UserInfo;
use crate::handlers::body::RequestTimeout;

/// Turns a peer certificate into a user; supplied by the caller (k1s-pki parses them).
pub type CertAuthenticator = Arc<dyn Fn(&[u8]) -> Option<UserInfo> + Send + Sync>;

/// Timeouts of the HTTPS listener; the defaults are kube-apiserver's.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// A TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// An HTTP/1.1 request head must arrive within this, counted from the end of the
    /// previous request or of the handshake (upstream's `ReadHeaderTimeout`, 32 s).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed (upstream's
    /// `IdleTimeout`, 90 s, which also bounds an HTTP/2 client that never sends a frame).
    pub idle_timeout: Duration,
    /// A request body must have arrived within this after the request began, else the
    /// request ends with 504 (upstream's `--request-timeout`, 60 s).
    pub request_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(32),
            idle_timeout: Duration::from_secs(90),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves the API on `listener` until the future is dropped.
pub async fn serve(
    server: Arc<ApiServer>,
    listener: TcpListener,
    tls: rustls::ServerConfig,
    certs: CertAuthenticator,
    options: ServeOptions,
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
            let handshake = tokio::time::timeout(options.handshake_timeout, acceptor.accept(tcp));
            let tls = match handshake.await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let (_, session) = tls.get_ref();
            let cert_user = session
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| certs(c.as_ref()));
            let h2 = session.alpn_protocol() == Some(b"h2");
            serve_connection(server, TokioIo::new(tls), h2, cert_user, peer, options).await;
        });
    }
}

/// Serves one connection: HTTP/2 when ALPN chose it, HTTP/1.1 otherwise (as Go's server
/// does; sniffing the protocol instead would wait for the first bytes without a timeout).
async fn serve_connection<I>(
    server: Arc<ApiServer>,
    io: I,
    h2: bool,
    cert_user: Option<UserInfo>,
    peer: SocketAddr,
    options: ServeOptions,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let in_flight = activity.clone();
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let server = server.clone();
        let cert_user = cert_user.clone();
        let guard = in_flight.begin();
        async move {
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(crate::handlers::RemoteAddr(peer));
            match authenticate(&server, &parts.headers, cert_user) {
                Ok(Some(u)) => {
                    parts.extensions.insert(u);
                }
                Ok(None) => {}
                Err(()) => {
                    parts.extensions.insert(crate::handlers::InvalidCredentials);
                }
            }
            let body = SharedBody::new(DeadlineBody::new(body, options.request_timeout));
            let leftover = body.clone();
            let req = http::Request::from_parts(parts, Body::new(body));
            // Boxed: hyper keeps room for one service future in every connection from the
            // start, and the handler's state machine inline made that 23 KiB per open
            // connection (23 MiB for 1000 idle watches, per heaptrack); boxed, it is
            // allocated while a request runs.
            let mut response = Box::pin(crate::handlers::handle(server, req)).await;
            if !drain(leftover).await && !h2 {
                // Unread bytes stay behind: close after this response instead of
                // reading them as the next request.
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            // The request stays in flight until its response body (a watch stream, say)
            // is finished.
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                Body::new(Guarded {
                    body,
                    _in_flight: guard,
                })
            }))
        }
    });
    let ended = if h2 {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new());
        let conn = builder.serve_connection(io, service);
        drive(
            conn,
            |c| c.graceful_shutdown(),
            &activity,
            options.idle_timeout,
        )
        .await
    } else {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout);
        let conn = builder.serve_connection(io, service).with_upgrades();
        drive(
            conn,
            |c| c.graceful_shutdown(),
            &activity,
            options.idle_timeout,
        )
        .await
    };
    if let Err(e) = ended {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Runs a connection to its end, asking it to finish gracefully once it has had no
/// request in flight for `idle`, and dropping it if it is still idle `idle` after that
/// (an HTTP/2 client that never sends its preface cannot finish gracefully).
async fn drive<C>(
    conn: C,
    shutdown: fn(Pin<&mut C>),
    activity: &Activity,
    idle: Duration,
) -> Result<(), hyper::Error>
where
    C: Future<Output = Result<(), hyper::Error>>,
{
    let mut conn = std::pin::pin!(conn);
    let mut asked = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => return ended,
            () = activity.idle_for(idle) => {
                if asked {
                    return Ok(());
                }
                asked = true;
                activity.touch();
                shutdown(conn.as_mut());
            }
        }
    }
}

// === impl Activity ===

/// Requests in flight on one connection, and since when it has had none.
struct Activity {
    state: parking_lot::Mutex<(usize, Instant)>,
}

/// One request in flight; dropping it ends the request.
struct InFlight(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Self {
            state: parking_lot::Mutex::new((0, Instant::now())),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.state.lock().0 += 1;
        InFlight(self.clone())
    }

    /// Restarts the idle clock.
    fn touch(&self) {
        self.state.lock().1 = Instant::now();
    }

    /// Completes once no request has been in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let (in_flight, since) = *self.state.lock();
            let deadline = since + idle;
            if in_flight == 0 && Instant::now() >= deadline {
                return;
            }
            let wake = if in_flight == 0 {
                deadline
            } else {
                Instant::now() + idle
            };
            tokio::time::sleep_until(wake.into()).await;
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.0 = state.0.saturating_sub(1);
        state.1 = Instant::now();
    }
}

/// A response body that keeps its request in flight until it is done or dropped.
struct Guarded {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// How much of a request body a handler left unread is read and dropped after it
/// answered, and for how long. A handler that refuses a request early (a bad query
/// parameter, an unknown resource, a body over the limit) answers without reading the
/// body; if the connection then closed with the client still sending, the client would
/// see a reset instead of the answer (HTTP/1.1), or a stream error (HTTP/2).
const DRAIN_LIMIT: usize = 2 * crate::handlers::body::MAX_BODY_BYTES;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads what is left of a request body, within [`DRAIN_LIMIT`] and [`DRAIN_TIME`];
/// whether it reached the end.
async fn drain(mut body: SharedBody) -> bool {
    use http_body_util::BodyExt;
    if http_body::Body::is_end_stream(&body) {
        return true;
    }
    if http_body::Body::size_hint(&body).lower() > DRAIN_LIMIT as u64 {
        return false;
    }
    let read_all = async {
        let mut left = DRAIN_LIMIT;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            let len = frame.data_ref().map_or(0, Bytes::len);
            if len > left {
                return false;
            }
            left -= len;
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, read_all)
        .await
        .unwrap_or(false)
}

/// A request body shared by the handler and the connection, so that the connection can
/// [`drain`] what the handler left unread.
#[derive(Clone)]
struct SharedBody(Arc<parking_lot::Mutex<DeadlineBody>>);

impl SharedBody {
    fn new(body: DeadlineBody) -> Self {
        Self(Arc::new(parking_lot::Mutex::new(body)))
    }
}

impl http_body::Body for SharedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut inner = self.0.lock();
        Pin::new(&mut *inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.lock().is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.lock().size_hint()
    }
}

/// A request body that fails with [`RequestTimeout`] once the request timeout passes, so
/// a client that stops mid-body cannot hold its request open.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(RequestTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Authenticators tried in turn, the first that succeeds wins, in upstream's order: the
/// client certificate, then a bearer token. A valid certificate with a token nobody
/// knows is the certificate's user (upstream's own kubectl tests send exactly that).
/// `Ok(None)`: no credentials; `Err`: credentials that do not authenticate (a token no
/// authenticator knows, without a certificate).
fn authenticate(
    server: &ApiServer,
    headers: &http::HeaderMap,
    cert_user: Option<UserInfo>,
) -> Result<Option<UserInfo>, ()> {
    if cert_user.is_some() {
        return Ok(cert_user);
    }
    let Some(token) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Ok(None);
    };
    let token = token.trim();
    if let Some(user) = server.tokens.authenticate(token) {
        return Ok(Some(user.clone()));
    }
    if let Some(user) = crate::auth::bootstrap_token::authenticate(server, token) {
        return Ok(Some(user));
    }
    crate::auth::serviceaccount::authenticate(server, token)
        .or_else(|| crate::auth::legacy_tokens::authenticate(server, token))
        .map(Some)
        .ok_or(())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;
    use crate::test_util::TestApiServer;

    const SHORT: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn a_valid_certificate_wins_over_an_unknown_token() {
        let api = TestApiServer::new().await;
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer nobody-knows-this"),
        );
        let alice = UserInfo::new("alice", ["team".to_string()]);
        let user = authenticate(&api.server, &headers, Some(alice));
        assert_eq!(
            user.ok().flatten().map(|u| u.name),
            Some("alice".to_string())
        );
        // Without the certificate the unknown token is refused (401), not anonymous.
        assert!(authenticate(&api.server, &headers, None).is_err());
    }

    /// One served connection with short timeouts; returns the client's end.
    async fn connect(h2: bool) -> DuplexStream {
        let api = TestApiServer::new().await;
        let (client, server) = tokio::io::duplex(64 * 1024);
        let options = ServeOptions {
            handshake_timeout: SHORT,
            header_read_timeout: SHORT,
            idle_timeout: SHORT,
            request_timeout: SHORT,
        };
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let user = Some(UserInfo::loopback());
        let io = TokioIo::new(server);
        tokio::spawn(serve_connection(api.server, io, h2, user, peer, options));
        client
    }

    /// Everything the server sends until it closes; fails if it stays open for 5 s.
    async fn until_closed(client: &mut DuplexStream) -> String {
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut out));
        read.await
            .expect("the server closed the connection")
            .expect("read");
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn a_client_that_never_sends_a_request_is_dropped() {
        // Without a header read timeout an idle TLS client held a task forever.
        let mut client = connect(false).await;
        until_closed(&mut client).await;
    }

    #[tokio::test]
    async fn an_http2_client_that_never_sends_its_preface_is_dropped() {
        // HTTP/2 has no header timeout; the idle timeout must end it.
        let mut client = connect(true).await;
        until_closed(&mut client).await;
    }

    #[tokio::test]
    async fn headers_sent_one_byte_at_a_time_are_cut_off() {
        // Slowloris: every byte arrives before any read timeout, the head never ends.
        let mut client = connect(false).await;
        let (mut rd, mut wr) = tokio::io::split(&mut client);
        let drip = async {
            for b in b"GET /api HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
                if wr.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            std::future::pending::<()>().await;
        };
        let mut out = Vec::new();
        tokio::select! {
            () = drip => unreachable!("the drip never ends"),
            read = tokio::time::timeout(Duration::from_secs(5), rd.read_to_end(&mut out)) => {
                read.expect("the server closed the connection").expect("read");
            }
        }
    }

    #[tokio::test]
    async fn a_body_that_stops_midway_ends_in_504_timeout() {
        // A client that stops sending its body held the request open forever.
        let mut client = connect(false).await;
        let head = "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n\
                    Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"kind\"";
        client.write_all(head.as_bytes()).await.expect("write");
        let answer = until_closed(&mut client).await;
        assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
        assert!(answer.contains(r#""reason":"Timeout""#), "{answer}");
    }

    #[tokio::test]
    async fn a_watch_keeps_its_connection_past_the_idle_timeout() {
        // A request whose response is still streaming is in flight, not idle.
        let mut client = connect(false).await;
        let get = "GET /api/v1/namespaces/default/configmaps?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n";
        client.write_all(get.as_bytes()).await.expect("write");
        let mut head = [0u8; 12];
        client.read_exact(&mut head).await.expect("response head");
        assert_eq!(&head, b"HTTP/1.1 200");
        let mut rest = [0u8; 4096];
        let mut open = true;
        let until = tokio::time::Instant::now() + SHORT * 4;
        while let Ok(read) = tokio::time::timeout_at(until, client.read(&mut rest)).await {
            if matches!(read, Ok(0) | Err(_)) {
                open = false;
                break;
            }
        }
        assert!(open, "the watch was cut off as idle");
    }
}

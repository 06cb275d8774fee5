//! The kubelet's HTTPS server: the endpoints the API server proxies `kubectl logs`, `exec`,
//! `attach`, `port-forward` (and so `cp`) to, as upstream's kubelet serves them:
//!
//! - `GET /containerLogs/{namespace}/{pod}/{container}` ([`logs`])
//! - `GET|POST /exec/{namespace}/{pod}[/{uid}]/{container}?command=…&stdin=1…`
//! - `GET|POST /attach/{namespace}/{pod}[/{uid}]/{container}` ([`remotecommand`])
//! - `GET|POST /portForward/{namespace}/{pod}[/{uid}]` ([`portforward`])
//! - `GET /metrics/resource`: CPU and memory usage of the node, its pods and containers
//!   ([`crate::stats`]), the Prometheus text metrics-server scrapes
//! - `GET /stats/summary`: the Summary API ([`crate::summary`]), when the server was
//!   started with [`serve_with_stats`]
//! - `GET /healthz`
//!
//! exec/attach speak SPDY/3.1 ([`spdy`]) or WebSocket ([`ws`]) per the client's upgrade
//! request; port-forward speaks SPDY, directly or tunneled in a WebSocket. Containers and
//! sandboxes are found through [`ContainerRuntime`] by their labels, so the server needs
//! no state of its own and survives a kubelet restart like the containers do.
//!
//! Only the API server may call it: the TLS client certificate must chain to the cluster
//! CA (else 401) and name an authorized user or group (else 403).

pub mod logs;
pub mod portforward;
pub mod remotecommand;
pub mod spdy;
pub mod ws;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::runtime::{Container, ContainerRuntime, ContainerState, Sandbox, StreamRequest, labels};

/// The user the API server's kubelet client certificate names (kubeadm's name for it).
pub const APISERVER_CLIENT_USER: &str = "kube-apiserver-kubelet-client";

/// A response body: whole or streamed.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Who may call the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorizer {
    /// Certificate common names allowed.
    pub users: Vec<String>,
    /// Certificate organizations (groups) allowed.
    pub groups: Vec<String>,
}

impl Default for Authorizer {
    /// The API server's client certificate and cluster admins.
    fn default() -> Self {
        Self {
            users: vec![APISERVER_CLIENT_USER.to_string()],
            groups: vec!["system:masters".to_string()],
        }
    }
}

/// How the server is run; the caller binds the listener (port 0 for any free port) and
/// builds the TLS configuration (`k1s_pki::kubelet_server_tls_config`).
pub struct ServerConfig {
    /// Where to accept connections.
    pub listener: TcpListener,
    /// The serving certificate, with client certificates verified against the cluster CA
    /// and optional (a request without one is answered 401).
    pub tls: rustls::ServerConfig,
    /// Who may call.
    pub authorizer: Authorizer,
}

/// Serves until the handle is aborted (without `/stats/summary`).
pub fn serve(config: ServerConfig, runtime: Arc<dyn ContainerRuntime>) -> JoinHandle<()> {
    serve_with_stats(config, runtime, None)
}

/// Serves until the handle is aborted; `stats` says where the Summary API reads the
/// node's folders (`None`: `/stats/summary` is not served).
pub fn serve_with_stats(
    config: ServerConfig,
    runtime: Arc<dyn ContainerRuntime>,
    stats: Option<crate::summary::Sources>,
) -> JoinHandle<()> {
    let stats = stats.map(Arc::new);
    let mut tls = config.tls;
    // Upgrades (SPDY, WebSocket) are HTTP/1.1 only.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let authorizer = Arc::new(config.authorizer);
    let listener = config.listener;
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "kubelet server: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let runtime = runtime.clone();
            let authorizer = authorizer.clone();
            let stats = stats.clone();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "kubelet server: TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let identity = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| identity(c.as_ref()));
                let access = match &identity {
                    None => Access::Unauthenticated,
                    Some((user, groups)) => {
                        if authorizer.users.contains(user)
                            || groups.iter().any(|g| authorizer.groups.contains(g))
                        {
                            Access::Allowed
                        } else {
                            Access::Forbidden(user.clone())
                        }
                    }
                };
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let runtime = runtime.clone();
                    let access = access.clone();
                    let stats = stats.clone();
                    async move { Ok::<_, Infallible>(handle(req, runtime, access, stats).await) }
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(32));
                if let Err(e) = builder
                    .serve_connection(TokioIo::new(tls), service)
                    .with_upgrades()
                    .await
                {
                    tracing::debug!(%peer, error = %e, "kubelet server: connection ended");
                }
            });
        }
    })
}

#[derive(Clone)]
enum Access {
    Unauthenticated,
    Forbidden(String),
    Allowed,
}

/// The user (CN) and groups (O) of a client certificate.
fn identity(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect();
    Some((cn, groups))
}

/// A plain-text response, as upstream's kubelet writes its errors.
fn text(code: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(body.into()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = code;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

async fn handle(
    req: Request<Incoming>,
    runtime: Arc<dyn ContainerRuntime>,
    access: Access,
    stats: Option<Arc<crate::summary::Sources>>,
) -> Response<Body> {
    match access {
        Access::Unauthenticated => return text(StatusCode::UNAUTHORIZED, "Unauthorized"),
        Access::Forbidden(user) => {
            let verb = if req.method() == http::Method::GET {
                "get"
            } else {
                "create"
            };
            return text(
                StatusCode::FORBIDDEN,
                format!(
                    "Forbidden (user={user}, verb={verb}, resource=nodes, subresource(s)=[proxy])"
                ),
            );
        }
        Access::Allowed => {}
    }
    let path = req.uri().path().to_string();
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let get_or_post = matches!(*req.method(), http::Method::GET | http::Method::POST);
    match seg.as_slice() {
        ["healthz"] => text(StatusCode::OK, "ok"),
        ["metrics", "resource"] if req.method() == http::Method::GET => {
            let metrics = crate::stats::collect(runtime.as_ref()).await;
            let mut r = text(StatusCode::OK, crate::stats::render(&metrics));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        ["stats", "summary"] if req.method() == http::Method::GET && stats.is_some() => {
            let Some(src) = stats.as_deref() else {
                return text(StatusCode::NOT_FOUND, "404 page not found");
            };
            let body = crate::summary::summary(runtime.as_ref(), src).await;
            let mut r = text(
                StatusCode::OK,
                serde_json::to_string_pretty(&body).unwrap_or_default(),
            );
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        ["containerLogs", ns, pod, container] if req.method() == http::Method::GET => {
            let (ns, pod, container) = (ns.to_string(), pod.to_string(), container.to_string());
            container_logs(&req, runtime, &ns, &pod, &container).await
        }
        [kind @ ("exec" | "attach"), ns, pod, container]
        | [kind @ ("exec" | "attach"), ns, pod, _, container]
            if get_or_post =>
        {
            let attach = *kind == "attach";
            let (ns, pod, container) = (ns.to_string(), pod.to_string(), container.to_string());
            remote_command(req, runtime, attach, &ns, &pod, &container).await
        }
        ["portForward", ns, pod] | ["portForward", ns, pod, _] if get_or_post => {
            let (ns, pod) = (ns.to_string(), pod.to_string());
            port_forward(req, runtime, &ns, &pod).await
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn label<'a>(labels: &'a std::collections::BTreeMap<String, String>, key: &str) -> &'a str {
    labels.get(key).map(String::as_str).unwrap_or("")
}

fn attempt(c: &Container) -> u32 {
    label(&c.labels, labels::CONTAINER_ATTEMPT)
        .parse()
        .unwrap_or(0)
}

/// The pod's instances of `container`, newest first.
async fn instances(
    runtime: &dyn ContainerRuntime,
    ns: &str,
    pod: &str,
    container: &str,
) -> Result<Vec<Container>, Response<Body>> {
    let all = runtime
        .list_containers()
        .await
        .map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut found: Vec<Container> = all
        .into_iter()
        .filter(|c| {
            label(&c.labels, labels::POD_NAMESPACE) == ns
                && label(&c.labels, labels::POD_NAME) == pod
                && label(&c.labels, labels::CONTAINER_NAME) == container
        })
        .collect();
    found.sort_by(|a, b| {
        attempt(b)
            .cmp(&attempt(a))
            .then(b.created_at.cmp(&a.created_at))
    });
    Ok(found)
}

/// The pod's newest sandbox, ready ones first.
async fn sandbox_of(
    runtime: &dyn ContainerRuntime,
    ns: &str,
    pod: &str,
) -> Result<Option<Sandbox>, Response<Body>> {
    let all = runtime
        .list_sandboxes()
        .await
        .map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(all
        .into_iter()
        .filter(|s| {
            label(&s.labels, labels::POD_NAMESPACE) == ns
                && label(&s.labels, labels::POD_NAME) == pod
        })
        .max_by(|a, b| a.ready.cmp(&b.ready).then(a.created_at.cmp(&b.created_at))))
}

async fn container_logs(
    req: &Request<Incoming>,
    runtime: Arc<dyn ContainerRuntime>,
    ns: &str,
    pod: &str,
    container: &str,
) -> Response<Body> {
    let opts = match logs::LogOptions::from_query(&query_pairs(req), jiff::Timestamp::now()) {
        Ok(o) => o,
        Err(m) => return text(StatusCode::BAD_REQUEST, m),
    };
    let found = match instances(runtime.as_ref(), ns, pod, container).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let chosen = if opts.previous {
        // The instance before the newest: what upstream reports as the last state.
        match found.get(1) {
            Some(c) => c.clone(),
            None => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("previous terminated container {container:?} in pod {pod:?} not found"),
                );
            }
        }
    } else {
        match found.into_iter().next() {
            Some(c) => c,
            None => {
                return match sandbox_of(runtime.as_ref(), ns, pod).await {
                    Ok(Some(_)) => text(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "container {container:?} in pod {pod:?} is waiting to start: ContainerCreating"
                        ),
                    ),
                    Ok(None) => text(StatusCode::NOT_FOUND, format!("pod {pod:?} does not exist")),
                    Err(r) => r,
                };
            }
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(32);
    let id = chosen.id.clone();
    let follow_running = chosen.state == ContainerState::Running && !opts.previous;
    let rt = runtime.clone();
    tokio::spawn(logs::stream(chosen.log_path.clone(), opts, tx, move || {
        let rt = rt.clone();
        let id = id.clone();
        async move {
            follow_running
                && rt.list_containers().await.is_ok_and(|all| {
                    all.iter()
                        .any(|c| c.id == id && c.state == ContainerState::Running)
                })
        }
    }));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    r
}

fn flag(q: &[(String, String)], name: &str) -> bool {
    q.iter()
        .any(|(k, v)| k == name && (v == "1" || v.eq_ignore_ascii_case("true")))
}

/// The protocols a SPDY client offers in `X-Stream-Protocol-Version`.
fn spdy_offered(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn is_spdy(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("spdy/3.1"))
}

/// How the connection is upgraded.
enum Upgrade {
    Spdy(String),
    WebSocket(String),
}

/// Picks the transport and protocol, or the error response upstream gives.
fn negotiate(
    headers: &http::HeaderMap,
    spdy_supported: &[&str],
    ws_supported: &[&str],
) -> Result<Upgrade, Response<Body>> {
    if ws::is_websocket(headers) {
        let offered = ws::offered_protocols(headers);
        if offered.is_empty() {
            // Upstream's channel protocols answer a client naming none with the binary
            // channel protocol.
            return Ok(Upgrade::WebSocket(String::new()));
        }
        return ws::negotiate(&offered, ws_supported)
            .map(Upgrade::WebSocket)
            .ok_or_else(|| {
                text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "requested protocol(s) are not supported: {offered:?}; supports {ws_supported:?}"
                    ),
                )
            });
    }
    if is_spdy(headers) {
        let offered = spdy_offered(headers);
        if offered.is_empty() {
            // Clients before protocol negotiation speak the first version.
            return Ok(Upgrade::Spdy(String::new()));
        }
        return ws::negotiate(&offered, spdy_supported)
            .map(Upgrade::Spdy)
            .ok_or_else(|| {
                text(
                    StatusCode::FORBIDDEN,
                    format!(
                        "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {spdy_supported:?}"
                    ),
                )
            });
    }
    Err(text(StatusCode::BAD_REQUEST, "Upgrade request required"))
}

fn spdy_switching(protocol: &str) -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    h.insert(http::header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    if let Ok(v) = HeaderValue::from_str(protocol)
        && !protocol.is_empty()
    {
        h.insert("x-stream-protocol-version", v);
    }
    r
}

async fn remote_command(
    mut req: Request<Incoming>,
    runtime: Arc<dyn ContainerRuntime>,
    attach: bool,
    ns: &str,
    pod: &str,
    container: &str,
) -> Response<Body> {
    let q = query_pairs(&req);
    let tty = flag(&q, "tty");
    let request = StreamRequest {
        command: q
            .iter()
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.clone())
            .collect(),
        tty,
        stdin: flag(&q, "input") || flag(&q, "stdin"),
        stdout: flag(&q, "output") || flag(&q, "stdout"),
        // With a terminal stderr is merged into stdout.
        stderr: (flag(&q, "error") || flag(&q, "stderr")) && !tty,
    };
    if !request.stdin && !request.stdout && !request.stderr {
        return text(
            StatusCode::BAD_REQUEST,
            "you must specify at least 1 of stdin, stdout, stderr",
        );
    }
    if !attach && request.command.is_empty() {
        return text(StatusCode::BAD_REQUEST, "you must specify a command");
    }
    let found = match instances(runtime.as_ref(), ns, pod, container).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(target) = found
        .iter()
        .find(|c| c.state == ContainerState::Running)
        .or(found.first())
        .cloned()
    else {
        return text(
            StatusCode::NOT_FOUND,
            format!("container not found ({container:?})"),
        );
    };
    let upgrade = match negotiate(
        req.headers(),
        remotecommand::SPDY_PROTOCOLS,
        remotecommand::WS_PROTOCOLS,
    ) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let container_id = target.id.clone();
    let start: remotecommand::Starter = Box::new(move |request: StreamRequest| {
        Box::pin(async move {
            if attach {
                runtime.attach(&container_id, &request).await
            } else {
                runtime.exec(&container_id, &request).await
            }
        })
    });
    let on_upgrade = hyper::upgrade::on(&mut req);
    match upgrade {
        Upgrade::Spdy(protocol) => {
            let version = remotecommand::Version::of(&protocol);
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(up) => {
                        remotecommand::serve_spdy(TokioIo::new(up), version, request, start).await
                    }
                    Err(e) => tracing::debug!(error = %e, "exec upgrade failed"),
                }
            });
            spdy_switching(&protocol)
        }
        Upgrade::WebSocket(protocol) => {
            let Some(builder) = ws::switching_protocols(req.headers(), &protocol) else {
                return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
            };
            let p = protocol.clone();
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(up) => {
                        let socket = ws::server(up).await;
                        remotecommand::serve_ws(socket, &p, request, start).await
                    }
                    Err(e) => tracing::debug!(error = %e, "exec upgrade failed"),
                }
            });
            builder
                .body(empty())
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "bad response"))
        }
    }
}

async fn port_forward(
    mut req: Request<Incoming>,
    runtime: Arc<dyn ContainerRuntime>,
    ns: &str,
    pod: &str,
) -> Response<Body> {
    let sandbox = match sandbox_of(runtime.as_ref(), ns, pod).await {
        Ok(Some(s)) => s,
        Ok(None) => return text(StatusCode::NOT_FOUND, format!("pod {pod:?} does not exist")),
        Err(r) => return r,
    };
    let target = portforward::Target {
        pod: format!("{ns}/{pod}"),
        uid: label(&sandbox.labels, labels::POD_UID).to_string(),
        netns: sandbox.netns.clone(),
    };
    let upgrade = match negotiate(
        req.headers(),
        &[portforward::PROTOCOL],
        portforward::WS_PROTOCOLS,
    ) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    match upgrade {
        Upgrade::Spdy(protocol) => {
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(up) => portforward::serve(TokioIo::new(up), target).await,
                    Err(e) => tracing::debug!(error = %e, "port-forward upgrade failed"),
                }
            });
            spdy_switching(if protocol.is_empty() {
                portforward::PROTOCOL
            } else {
                &protocol
            })
        }
        Upgrade::WebSocket(protocol) => {
            let Some(builder) = ws::switching_protocols(req.headers(), &protocol) else {
                return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
            };
            // The channel protocol names its ports in the query, once per connection.
            let ports = if protocol == ws::PORT_FORWARD_TUNNEL {
                Vec::new()
            } else {
                match portforward::query_ports(&query_pairs(&req)) {
                    Ok(p) => p,
                    Err(m) => return text(StatusCode::BAD_REQUEST, m),
                }
            };
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(up) => {
                        let socket = ws::server(up).await;
                        if protocol == ws::PORT_FORWARD_TUNNEL {
                            portforward::serve(ws::tunnel(socket), target).await
                        } else {
                            portforward::serve_ws(socket, &protocol, ports, target).await
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "port-forward upgrade failed"),
                }
            });
            builder
                .body(empty())
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "bad response"))
        }
    }
}

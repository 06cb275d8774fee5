//! The pods' streaming subresources, proxied to the kubelet of the pod's node over TLS as
//! upstream's API server does: `log` (a plain streamed GET), and `exec`, `attach`,
//! `portforward` (the client's SPDY or WebSocket upgrade forwarded to the kubelet, then the
//! two connections spliced byte for byte).
//!
//! The kubelet is found from the pod's `spec.nodeName`: the Node's first `InternalIP`,
//! `ExternalIP` or `Hostname` address (k3s's `--kubelet-preferred-address-types`) and its
//! `status.daemonEndpoints.kubeletEndpoint.Port`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use k1s_apimachinery::{GroupResource, Status};
use serde_json::Value;

use super::Call;

/// The kubelet port when the Node names none.
const DEFAULT_KUBELET_PORT: u16 = 10250;
/// How long dialing a kubelet may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a kubelet's error body is reported.
const MAX_ERROR_BODY: usize = 1024;

/// The headers of an upgrade request the kubelet needs to see.
const UPGRADE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "x-stream-protocol-version",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
];

/// The headers of the kubelet's 101 the client needs to see.
const SWITCHING_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "x-stream-protocol-version",
    "sec-websocket-accept",
    "sec-websocket-protocol",
];

/// Serves `get` on `pods/log`.
pub async fn log(call: Call) -> Result<Response, Status> {
    let name = call.path.name.clone().unwrap_or_default();
    let pod = get_pod(&call, &name)?;
    let container = validate_container(call.query.get("container").map(String::as_str), &pod)?;
    if node_name(&pod).is_empty() {
        // Upstream answers an unscheduled pod's log with an empty stream.
        return Ok(plain_ok(Body::empty()));
    }
    let mut params: Vec<(&str, String)> = Vec::new();
    for key in [
        "follow",
        "previous",
        "timestamps",
        "sinceSeconds",
        "sinceTime",
        "tailLines",
        "limitBytes",
        "stream",
    ] {
        if let Some(v) = call.query.get(key) {
            if matches!(key, "follow" | "previous" | "timestamps") {
                if super::query_flag(&call.query, key) {
                    params.push((key, "true".into()));
                }
            } else if !v.is_empty() {
                params.push((key, v.clone()));
            }
        }
    }
    let query = encode_query(&params);
    let path = format!(
        "/containerLogs/{}/{}/{}?{}",
        enc(call.namespace().unwrap_or("")),
        enc(&name),
        enc(&container),
        query
    );
    let kubelet = kubelet_of(&call, &pod)?;
    let request = http::Request::get(path)
        .header(http::header::HOST, kubelet.host_header())
        .body(Body::empty())
        .map_err(|e| Status::internal_error(&e.to_string()))?;
    let (response, _conn) = kubelet.send(request).await?;
    if !response.status().is_success() {
        return Err(kubelet_error(response, &name).await);
    }
    Ok(plain_ok(Body::new(response.into_body())))
}

/// Serves `exec`, `attach` and `portforward` (`get` or `create`): forwards the upgrade
/// request to the kubelet and splices the two upgraded connections.
pub async fn upgrade(call: Call) -> Result<Response, Status> {
    let name = call.path.name.clone().unwrap_or_default();
    let sub = call.path.subresource.clone().unwrap_or_default();
    let pod = get_pod(&call, &name)?;
    let ns = call.namespace().unwrap_or("").to_string();
    let mut params: Vec<(&str, String)> = Vec::new();
    let path = if sub == "portforward" {
        let ports: Vec<&str> = call
            .query
            .get("ports")
            .map(|p| p.split(',').collect())
            .unwrap_or_default();
        if !ports.is_empty() {
            params.push(("port", ports.join(",")));
        }
        if node_name(&pod).is_empty() {
            return Err(Status::bad_request(&format!(
                "pod {name} does not have a host assigned"
            )));
        }
        format!("/portForward/{}/{}", enc(&ns), enc(&name))
    } else {
        let container = validate_container(call.query.get("container").map(String::as_str), &pod)?;
        if node_name(&pod).is_empty() {
            return Err(Status::bad_request(&format!(
                "pod {name} does not have a host assigned"
            )));
        }
        for key in ["stdin", "stdout", "stderr", "tty"] {
            if super::query_flag(&call.query, key) {
                params.push((key, "1".into()));
            }
        }
        if sub == "exec" {
            for command in all_values(&call, "command") {
                params.push(("command", command));
            }
        }
        format!("/{sub}/{}/{}/{}", enc(&ns), enc(&name), enc(&container))
    };
    let query = encode_query(&params);
    let path = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let kubelet = kubelet_of(&call, &pod)?;
    let mut request = http::Request::builder()
        .method(call.method.clone())
        .uri(path)
        .header(http::header::HOST, kubelet.host_header());
    for h in UPGRADE_HEADERS {
        for v in call.headers.get_all(*h) {
            request = request.header(*h, v);
        }
    }
    let request = request
        .body(Body::empty())
        .map_err(|e| Status::internal_error(&e.to_string()))?;
    let client_upgrade = call.upgrade.lock().take();
    let (mut response, _conn) = kubelet.send(request).await?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Upstream's proxy hands the kubelet's answer back as is; kubectl reports it as
        // "unable to upgrade connection: <body>".
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut r = Response::new(Body::from(bytes));
        *r.status_mut() = parts.status;
        if let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE) {
            r.headers_mut()
                .insert(http::header::CONTENT_TYPE, ct.clone());
        }
        return Ok(r);
    }
    let Some(client_upgrade) = client_upgrade else {
        return Err(Status::bad_request("Upgrade request required"));
    };
    let kubelet_upgrade = hyper::upgrade::on(&mut response);
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for h in SWITCHING_HEADERS {
        for v in response.headers().get_all(*h) {
            r.headers_mut().append(*h, v.clone());
        }
    }
    tokio::spawn(async move {
        let (client, kubelet) = match tokio::join!(client_upgrade, kubelet_upgrade) {
            (Ok(c), Ok(k)) => (c, k),
            (c, k) => {
                tracing::debug!(client = ?c.err(), kubelet = ?k.err(), "stream upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut kubelet = TokioIo::new(kubelet);
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut kubelet).await {
            tracing::debug!(error = %e, "stream proxy ended");
        }
    });
    Ok(r)
}

fn encode_query(pairs: &[(&str, String)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

fn plain_ok(body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    r
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Every value of a repeated query parameter (`command=sh&command=-c`), which the parsed
/// query keeps only the first of.
fn all_values(call: &Call, name: &str) -> Vec<String> {
    form_urlencoded::parse(call.raw_query.as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn get_pod(call: &Call, name: &str) -> Result<Value, Status> {
    call.server
        .generic
        .get(&call.resource, call.namespace(), name)
}

fn node_name(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn names(pod: &Value, field: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Upstream's `validateContainer`: the container named, or the only one; its errors.
fn validate_container(container: Option<&str>, pod: &Value) -> Result<String, Status> {
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let containers = names(pod, "containers");
    let all: Vec<String> = names(pod, "initContainers")
        .into_iter()
        .chain(containers.iter().cloned())
        .chain(names(pod, "ephemeralContainers"))
        .collect();
    match container.filter(|c| !c.is_empty()) {
        None => match containers.len() {
            1 => Ok(containers[0].clone()),
            0 => Err(Status::bad_request(&format!(
                "a container name must be specified for pod {pod_name}"
            ))),
            _ => Err(Status::bad_request(&format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                all.join(" ")
            ))),
        },
        Some(c) if all.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(Status::bad_request(&format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
    }
}

/// Where a node's kubelet listens.
pub(crate) struct Kubelet {
    host: String,
    ip: Option<IpAddr>,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
}

impl Kubelet {
    pub(crate) fn host_header(&self) -> String {
        match self.ip {
            Some(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }

    /// Dials the kubelet and sends one request; the connection task keeps running for an
    /// upgrade.
    pub(crate) async fn send(
        &self,
        request: http::Request<Body>,
    ) -> Result<
        (
            http::Response<hyper::body::Incoming>,
            tokio::task::JoinHandle<()>,
        ),
        Status,
    > {
        let dial_error = |e: &dyn std::fmt::Display| {
            Status::internal_error(&format!(
                "error dialing backend: dial tcp {}: {e}",
                self.host_header()
            ))
        };
        let tcp = tokio::time::timeout(
            DIAL_TIMEOUT,
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| dial_error(&"i/o timeout"))?
        .map_err(|e| dial_error(&e))?;
        let _ = tcp.set_nodelay(true);
        let server_name = match self.ip {
            Some(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
            None => rustls::pki_types::ServerName::try_from(self.host.clone())
                .map_err(|e| dial_error(&e))?,
        };
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        let tls = tokio::time::timeout(DIAL_TIMEOUT, connector.connect(server_name, tcp))
            .await
            .map_err(|_| dial_error(&"TLS handshake timeout"))?
            .map_err(|e| dial_error(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| dial_error(&e))?;
        let conn = tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "kubelet connection ended");
            }
        });
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Status::internal_error(&format!("error talking to the kubelet: {e}")))?;
        Ok((response, conn))
    }
}

/// The pod's node's kubelet endpoint.
fn kubelet_of(call: &Call, pod: &Value) -> Result<Kubelet, Status> {
    let node_name = node_name(pod);
    let snapshot = call.server.registry.snapshot();
    let nodes = snapshot
        .get("", "v1", "nodes")
        .cloned()
        .ok_or_else(|| Status::internal_error("nodes are not served"))?;
    let node = call
        .server
        .generic
        .get(&nodes, None, node_name)
        .map_err(|s| {
            if s.code() == 404 {
                Status::not_found(&GroupResource::new("", "nodes"), node_name)
            } else {
                s
            }
        })?;
    kubelet_of_node(&call.server, &node)
}

/// A Node's kubelet endpoint: its preferred address and published port.
pub(crate) fn kubelet_of_node(server: &crate::ApiServer, node: &Value) -> Result<Kubelet, Status> {
    let tls = server
        .kubelet_client_tls
        .get()
        .cloned()
        .ok_or_else(|| Status::service_unavailable("no kubelet client configured"))?;
    let node_name = node
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let host = ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|t| {
            addresses.iter().find_map(|a| {
                (a.get("type").and_then(Value::as_str) == Some(*t))
                    .then(|| a.get("address").and_then(Value::as_str))
                    .flatten()
                    .filter(|s| !s.is_empty())
            })
        })
        .ok_or_else(|| Status::bad_request(&format!("node {node_name} has no known addresses")))?
        .to_string();
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0 && *p <= u64::from(u16::MAX))
        .map_or(DEFAULT_KUBELET_PORT, |p| p as u16);
    Ok(Kubelet {
        ip: host.parse().ok(),
        host,
        port,
        tls,
    })
}

/// A kubelet's non-2xx answer as the Status upstream's generic response checker makes of
/// it: the code kept, the body (first KiB) as the message.
async fn kubelet_error(response: http::Response<hyper::body::Incoming>, name: &str) -> Status {
    let code = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)])
        .trim()
        .to_string();
    match code {
        400 => Status::bad_request(&text),
        404 => {
            let mut s = Status::generic(404, "NotFound", &text);
            let _ = name;
            s.details = None;
            s
        }
        401 => Status::unauthorized(&text),
        403 => Status::generic(403, "Forbidden", &text),
        _ => Status::internal_error(&text),
    }
}

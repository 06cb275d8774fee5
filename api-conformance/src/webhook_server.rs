//! The suite's own webhook server: the endpoints of upstream's sample webhook (agnhost
//! `webhook`: `/always-deny`, `/add-label`, `/pods`, `/configmaps`, `/custom-resource`,
//! `/crd`, ...) and of its CRD conversion webhook (agnhost `crd-conversion-webhook`:
//! `/crdconvert`), served over TLS with a CA of its own.
//!
//! Upstream's tests run that server as a pod behind a Service. Here it runs in the suite
//! (no kubelet needed): it listens on a host address, and the suite writes a Service
//! without selector plus its Endpoints pointing at that address, so the API server
//! reaches it exactly as upstream's does, through a `service:` clientConfig and the CA
//! bundle.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::ctx::Fail;
use crate::fail;

/// A running webhook server and the Service that reaches it.
pub struct WebhookServer {
    /// The CA certificate (PEM) that signed the server's certificate.
    pub ca_pem: String,
    /// Namespace of the Service.
    pub namespace: String,
    /// Name of the Service.
    pub service: String,
    /// Port of the Service.
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which ends every open connection
        // (a hanging `/pods` answer included).
        self.task.abort();
    }
}

impl WebhookServer {
    /// Starts a server for the Service `service` (port `port`) in `namespace`, and
    /// creates that Service (no selector) and its Endpoints at the server's address.
    pub async fn start(
        client: &kube::Client,
        namespace: &str,
        service: &str,
        port: u16,
    ) -> Result<Self, Fail> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dns = format!("{service}.{namespace}.svc");
        let (ca_pem, chain, key) = certificates(&dns).map_err(Fail)?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Fail(format!("webhook TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| Fail(format!("webhook TLS: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let ip = host_ip()?;
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|e| Fail(format!("webhook server: bind {ip}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Fail(format!("webhook server: {e}")))?;
        let task = tokio::spawn(serve(listener, acceptor));
        let server = WebhookServer {
            ca_pem,
            namespace: namespace.to_string(),
            service: service.to_string(),
            port,
            task,
        };
        let svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": service, "namespace": namespace, "labels": {"test": "webhook"}},
            "spec": {"ports": [{"protocol": "TCP", "port": port, "targetPort": local.port()}]}});
        let (code, body, _) = k1s_e2e::request(
            client,
            "POST",
            &format!("/api/v1/namespaces/{namespace}/services"),
            Some(&svc),
        )
        .await;
        if code != 201 {
            fail!("creating service {service}: {code} {body}");
        }
        let endpoints = json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": service, "namespace": namespace},
            "subsets": [{"addresses": [{"ip": ip.to_string()}],
                "ports": [{"port": local.port(), "protocol": "TCP"}]}]});
        let (code, body, _) = k1s_e2e::request(
            client,
            "POST",
            &format!("/api/v1/namespaces/{namespace}/endpoints"),
            Some(&endpoints),
        )
        .await;
        if code != 201 {
            fail!("creating the endpoints of service {service}: {code} {body}");
        }
        Ok(server)
    }

    /// The CA bundle as a webhook configuration carries it (base64 of the PEM).
    pub fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }

    /// A `service:` clientConfig for `path` of this server, trusting its CA.
    pub fn client_config(&self, path: &str) -> Value {
        json!({"service": {"namespace": self.namespace, "name": self.service,
                "path": path, "port": self.port},
            "caBundle": self.ca_bundle()})
    }

    /// Like [`Self::client_config`] without the CA bundle: calls to it fail.
    pub fn client_config_without_ca(&self, path: &str) -> Value {
        json!({"service": {"namespace": self.namespace, "name": self.service,
                "path": path, "port": self.port}})
    }
}

/// A host address the API server can dial and Endpoints may hold (not loopback, which
/// Endpoints refuse): the source address of the route to somewhere outside.
fn host_ip() -> Result<IpAddr, Fail> {
    for target in [
        "8.8.8.8:53",
        "10.255.255.254:9",
        "192.168.255.254:9",
        "172.31.255.254:9",
    ] {
        let Ok(sock) = std::net::UdpSocket::bind("0.0.0.0:0") else {
            continue;
        };
        if sock.connect(target).is_err() {
            continue;
        }
        if let Ok(addr) = sock.local_addr() {
            let ip = addr.ip();
            let link_local = matches!(ip, IpAddr::V4(v4) if v4.is_link_local());
            if !ip.is_loopback() && !ip.is_unspecified() && !link_local {
                return Ok(ip);
            }
        }
    }
    fail!("webhook server: this host has no routable (non-loopback) IPv4 address for Endpoints")
}

type Certs = (
    String,
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

/// A CA, and a server certificate for `dns` signed by it (like upstream's
/// `setupServerCert`): the CA's PEM, the server's chain and key.
fn certificates(dns: &str) -> Result<Certs, String> {
    let err = |e: rcgen::Error| format!("webhook certificates: {e}");
    let ca_key = rcgen::KeyPair::generate().map_err(err)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "e2e-server-cert-ca");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = rcgen::Issuer::from_ca_cert_der(ca_cert.der(), ca_key).map_err(err)?;
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let mut params = rcgen::CertificateParams::new(vec![dns.to_string()]).map_err(err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, dns);
    let cert = params.signed_by(&key, &issuer).map_err(err)?;
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| format!("webhook key: {e}"))?;
    Ok((ca_cert.pem(), vec![cert.der().clone()], key_der))
}

async fn serve(listener: tokio::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(
                |req: http::Request<hyper::body::Incoming>| async move {
                    let path = req.uri().path().to_string();
                    let json_body = req
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .is_some_and(|v| v.as_bytes() == b"application/json");
                    let body = req
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let (code, text) = answer(&path, json_body, &body).await;
                    let content_type = if code == 200 {
                        "application/json"
                    } else {
                        "text/plain; charset=utf-8"
                    };
                    Ok::<_, std::convert::Infallible>(
                        http::Response::builder()
                            .status(code)
                            .header(http::header::CONTENT_TYPE, content_type)
                            .body(Full::new(bytes::Bytes::from(text)))
                            .unwrap_or_default(),
                    )
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// What an admission endpoint decided.
enum Admit {
    /// An AdmissionResponse (without uid).
    Response(Value),
    /// No response at all (agnhost's handler returns nil and its server fails).
    Nothing,
    /// Never answers (agnhost blocks forever).
    Hang,
}

/// Answers one request to `path`: HTTP status and body.
async fn answer(path: &str, json_body: bool, body: &[u8]) -> (u16, String) {
    if path == "/readyz" {
        return (200, "ok".into());
    }
    if !json_body {
        // agnhost logs and answers nothing (an empty 200) to other content types.
        return (200, String::new());
    }
    let review: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return (400, format!("Request could not be decoded: {e}")),
    };
    if path == "/crdconvert" {
        return (200, convert_review(&review).to_string());
    }
    let api_version = review["apiVersion"].as_str().unwrap_or_default();
    if review["kind"] != "AdmissionReview"
        || !matches!(
            api_version,
            "admission.k8s.io/v1" | "admission.k8s.io/v1beta1"
        )
    {
        return (
            400,
            format!(
                "Unsupported group version kind: {api_version}, Kind={}",
                review["kind"].as_str().unwrap_or_default()
            ),
        );
    }
    let request = &review["request"];
    let decided = match path {
        "/always-allow-delay-5s" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Admit::Response(json!({"allowed": true}))
        }
        "/always-deny" => Admit::Response(denied_message("this webhook denies all requests")),
        "/add-label" => Admit::Response(add_label(request)),
        "/pods" => admit_pods(request),
        "/pods/attach" => Admit::Response(deny_attach(request)),
        "/mutating-pods" => mutate_pods(request),
        "/configmaps" => admit_data(request, "configmaps", "configmap", "key and value"),
        "/mutating-configmaps" => mutate_data(request, Some("configmaps")),
        "/custom-resource" => admit_data(request, "", "custom resource", "data"),
        "/mutating-custom-resource" => mutate_data(request, None),
        "/crd" => Admit::Response(admit_crd(request)),
        _ => return (404, "404 page not found\n".into()),
    };
    let mut response = match decided {
        Admit::Response(r) => r,
        Admit::Nothing => return (500, "no admission response".into()),
        Admit::Hang => std::future::pending().await,
    };
    response["uid"] = request["uid"].clone();
    let out = json!({"apiVersion": api_version, "kind": "AdmissionReview", "response": response});
    (200, out.to_string())
}

/// A denial; the AdmissionResponse's `result` is `status` in JSON.
fn denied_message(message: &str) -> Value {
    json!({"allowed": false, "status": {"metadata": {}, "message": message}})
}

fn denied_reason(reason: &str) -> Value {
    json!({"allowed": false, "status": {"metadata": {}, "reason": reason}})
}

/// An allowing response with a JSON patch.
fn patched(patch: Value) -> Value {
    json!({"allowed": true, "patchType": "JSONPatch",
        "patch": base64::engine::general_purpose::STANDARD.encode(patch.to_string())})
}

/// Whether the request is for `resource` of the core group, v1.
fn is_core(request: &Value, resource: &str) -> bool {
    let r = &request["resource"];
    r["group"].as_str().unwrap_or_default().is_empty()
        && r["version"] == "v1"
        && r["resource"] == resource
}

fn expect_resource_error(resource: &str) -> Value {
    denied_message(&format!("expect resource to be {{ v1 {resource}}}"))
}

/// `/add-label`: sets the label `added-label: yes`.
fn add_label(request: &Value) -> Value {
    let labels = request["object"]["metadata"]["labels"]
        .as_object()
        .filter(|l| !l.is_empty());
    let Some(labels) = labels else {
        return patched(
            json!([{"op": "add", "path": "/metadata/labels", "value": {"added-label": "yes"}}]),
        );
    };
    match labels.get("added-label") {
        None => {
            patched(json!([{"op": "add", "path": "/metadata/labels/added-label", "value": "yes"}]))
        }
        Some(v) if v != "yes" => patched(
            json!([{"op": "replace", "path": "/metadata/labels/added-label", "value": "yes"}]),
        ),
        Some(_) => json!({"allowed": true}),
    }
}

/// `/pods`: refuses pods labelled `webhook-e2e-test: webhook-disallow` or with a container
/// named like `webhook-disallow`; hangs on `webhook-e2e-test: wait-forever`.
fn admit_pods(request: &Value) -> Admit {
    if !is_core(request, "pods") {
        return Admit::Response(expect_resource_error("pods"));
    }
    let pod = &request["object"];
    let mut allowed = true;
    let mut msg = String::new();
    match pod["metadata"]["labels"]["webhook-e2e-test"].as_str() {
        Some("webhook-disallow") => {
            allowed = false;
            msg.push_str("the pod contains unwanted label; ");
        }
        Some("wait-forever") => return Admit::Hang,
        _ => {}
    }
    for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
        if container["name"]
            .as_str()
            .is_some_and(|n| n.contains("webhook-disallow"))
        {
            allowed = false;
            msg.push_str("the pod contains unwanted container name; ");
        }
    }
    Admit::Response(if allowed {
        json!({"allowed": true})
    } else {
        denied_message(msg.trim())
    })
}

/// `/mutating-pods`: adds an init container to the pod `webhook-to-be-mutated`.
fn mutate_pods(request: &Value) -> Admit {
    if !is_core(request, "pods") {
        return Admit::Nothing;
    }
    let pod = &request["object"];
    let has_init = pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["name"] == "webhook-added-init-container");
    Admit::Response(
        if pod["metadata"]["name"] == "webhook-to-be-mutated" && !has_init {
            patched(json!([{"op": "add", "path": "/spec/initContainers",
                "value": [{"image": "webhook-added-image", "name": "webhook-added-init-container", "resources": {}}]}]))
        } else {
            json!({"allowed": true})
        },
    )
}

/// `/pods/attach`: refuses `kubectl attach to-be-attached-pod -i -c=container1`.
fn deny_attach(request: &Value) -> Value {
    if request["name"] != "to-be-attached-pod" {
        return json!({"allowed": true});
    }
    if !is_core(request, "pods") {
        return expect_resource_error("pods");
    }
    let sub = request["subResource"].as_str().unwrap_or_default();
    if sub != "attach" {
        return denied_message(&format!("expect subresource to be attach, got {sub}"));
    }
    let options = &request["object"];
    if options["stdin"] != true || options["container"] != "container1" {
        return json!({"allowed": true});
    }
    denied_message("attaching to pod 'to-be-attached-pod' is not allowed")
}

/// `/configmaps` and `/custom-resource`: refuse creating or updating an object whose
/// `data` holds `webhook-e2e-test: webhook-disallow`, and deleting one holding
/// `webhook-e2e-test: webhook-nondeletable`.
fn admit_data(request: &Value, core_resource: &str, what: &str, unwanted: &str) -> Admit {
    if !core_resource.is_empty() && !is_core(request, core_resource) {
        return Admit::Nothing;
    }
    let operation = request["operation"].as_str().unwrap_or_default();
    let object = if operation == "DELETE" {
        &request["oldObject"]
    } else {
        &request["object"]
    };
    let mut response = json!({"allowed": true});
    match object["data"]["webhook-e2e-test"].as_str() {
        Some("webhook-disallow") if matches!(operation, "CREATE" | "UPDATE") => {
            response = denied_reason(&format!("the {what} contains unwanted {unwanted}"));
        }
        Some("webhook-nondeletable") if operation == "DELETE" => {
            response = denied_reason(&format!(
                "the {what} cannot be deleted because it contains unwanted key and value"
            ));
        }
        _ => {}
    }
    Admit::Response(response)
}

/// `/mutating-configmaps` and `/mutating-custom-resource`: `mutation-start: yes` adds
/// `mutation-stage-1`; `mutation-stage-1: yes` adds `mutation-stage-2` (the later rule
/// wins, as in agnhost).
fn mutate_data(request: &Value, core_resource: Option<&str>) -> Admit {
    if let Some(resource) = core_resource
        && !is_core(request, resource)
    {
        return Admit::Nothing;
    }
    let data = &request["object"]["data"];
    let mut patch = None;
    if data["mutation-start"] == "yes" {
        patch = Some(json!([{"op": "add", "path": "/data/mutation-stage-1", "value": "yes"}]));
    }
    if data["mutation-stage-1"] == "yes" {
        patch = Some(json!([{"op": "add", "path": "/data/mutation-stage-2", "value": "yes"}]));
    }
    Admit::Response(match patch {
        Some(p) => patched(p),
        None => json!({"allowed": true}),
    })
}

/// `/crd`: refuses CRDs labelled `webhook-e2e-test: webhook-disallow`.
fn admit_crd(request: &Value) -> Value {
    let r = &request["resource"];
    let version = r["version"].as_str().unwrap_or_default();
    if r["group"] != "apiextensions.k8s.io"
        || r["resource"] != "customresourcedefinitions"
        || !matches!(version, "v1" | "v1beta1")
    {
        return denied_message(&format!(
            "expect resource to be one of [{{apiextensions.k8s.io v1beta1 customresourcedefinitions}}, {{apiextensions.k8s.io v1 customresourcedefinitions}}] but got {{{} {} {}}}",
            r["group"].as_str().unwrap_or_default(),
            version,
            r["resource"].as_str().unwrap_or_default()
        ));
    }
    if request["object"]["metadata"]["labels"]["webhook-e2e-test"] == "webhook-disallow" {
        return denied_message("the crd contains unwanted label");
    }
    json!({"allowed": true})
}

/// `/crdconvert`: a ConversionReview between `stable.example.com/v1` (`hostPort`) and
/// `stable.example.com/v2` (`host` and `port`), as agnhost's example converter.
fn convert_review(review: &Value) -> Value {
    let request = &review["request"];
    let desired = request["desiredAPIVersion"].as_str().unwrap_or_default();
    let mut converted = Vec::new();
    let mut failure = None;
    for object in request["objects"].as_array().into_iter().flatten() {
        match convert(object, desired) {
            Ok(o) => converted.push(o),
            Err(message) => {
                failure = Some(message);
                break;
            }
        }
    }
    let response = match failure {
        None => json!({"uid": request["uid"], "convertedObjects": converted,
            "result": {"metadata": {}, "status": "Success"}}),
        Some(message) => json!({"uid": request["uid"], "convertedObjects": null,
            "result": {"metadata": {}, "status": "Failure", "message": message}}),
    };
    json!({"apiVersion": review["apiVersion"].as_str().unwrap_or("apiextensions.k8s.io/v1"),
        "kind": "ConversionReview", "response": response})
}

fn convert(object: &Value, to: &str) -> Result<Value, String> {
    let from = object["apiVersion"].as_str().unwrap_or_default();
    if from == to {
        return Err(format!(
            "conversion from a version to itself should not call the webhook: {to}"
        ));
    }
    let mut out = object.clone();
    let Some(fields) = out.as_object_mut() else {
        return Err("the object is not a JSON object".into());
    };
    match (from, to) {
        ("stable.example.com/v1", "stable.example.com/v2") => {
            if let Some(host_port) = fields.remove("hostPort") {
                let text = host_port.as_str().unwrap_or_default();
                let parts: Vec<&str> = text.split(':').collect();
                let [host, port] = parts.as_slice() else {
                    return Err(format!("invalid hostPort value `{text}`"));
                };
                fields.insert("host".into(), json!(host));
                fields.insert("port".into(), json!(port));
            }
        }
        ("stable.example.com/v2", "stable.example.com/v1") => {
            let host = fields.remove("host");
            let port = fields.remove("port");
            if host.is_some() || port.is_some() {
                let text = |v: Option<Value>| {
                    v.and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                };
                fields.insert(
                    "hostPort".into(),
                    json!(format!("{}:{}", text(host), text(port))),
                );
            }
        }
        ("stable.example.com/v1" | "stable.example.com/v2", _) => {
            return Err(format!("unexpected conversion version {to:?}"));
        }
        _ => return Err(format!("unexpected conversion version {from:?}")),
    }
    fields.insert("apiVersion".into(), json!(to));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(path_object: Value, operation: &str, resource: Value) -> Value {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u1", "operation": operation, "resource": resource,
                "object": path_object}})
    }

    async fn call(path: &str, review: &Value) -> Value {
        let (code, body) = answer(path, true, review.to_string().as_bytes()).await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    fn patch_of(response: &Value) -> Value {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(response["response"]["patch"].as_str().unwrap_or_default())
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    #[tokio::test]
    async fn admission_endpoints_answer_as_agnhost() {
        let pods = json!({"group": "", "version": "v1", "resource": "pods"});
        let cms = json!({"group": "", "version": "v1", "resource": "configmaps"});
        let bad_pod = json!({"metadata": {"labels": {"webhook-e2e-test": "webhook-disallow"}},
            "spec": {"containers": [{"name": "webhook-disallow"}]}});
        let out = call("/pods", &review(bad_pod, "CREATE", pods.clone())).await;
        assert_eq!(out["response"]["uid"], "u1");
        assert_eq!(out["response"]["allowed"], false);
        assert_eq!(
            out["response"]["status"]["message"],
            "the pod contains unwanted label; the pod contains unwanted container name;"
        );
        let cm = json!({"data": {"webhook-e2e-test": "webhook-disallow"}});
        let out = call("/configmaps", &review(cm, "UPDATE", cms.clone())).await;
        assert_eq!(
            out["response"]["status"]["reason"],
            "the configmap contains unwanted key and value"
        );
        let cm = json!({"data": {"mutation-start": "yes", "mutation-stage-1": "yes"}});
        let out = call("/mutating-configmaps", &review(cm, "CREATE", cms)).await;
        assert_eq!(
            patch_of(&out),
            json!([{"op": "add", "path": "/data/mutation-stage-2", "value": "yes"}])
        );
        let out = call(
            "/add-label",
            &review(json!({"metadata": {}}), "CREATE", pods),
        )
        .await;
        assert_eq!(
            patch_of(&out),
            json!([{"op": "add", "path": "/metadata/labels", "value": {"added-label": "yes"}}])
        );
        let (code, _) = answer("/nowhere", true, b"{}").await;
        assert_eq!(code, 400, "not an AdmissionReview");
    }

    #[test]
    fn conversion_splits_and_joins_host_port() {
        let v1 = json!({"apiVersion": "stable.example.com/v1", "kind": "E2e", "hostPort": "localhost:8080"});
        let v2 = convert(&v1, "stable.example.com/v2").unwrap_or_default();
        assert_eq!(
            v2,
            json!({"apiVersion": "stable.example.com/v2", "kind": "E2e", "host": "localhost", "port": "8080"})
        );
        assert_eq!(
            convert(&v2, "stable.example.com/v1").unwrap_or_default(),
            v1
        );
        assert!(convert(&v1, "stable.example.com/v1").is_err());
        let review = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "c1", "desiredAPIVersion": "stable.example.com/v2", "objects": [v1]}});
        let out = convert_review(&review);
        assert_eq!(out["response"]["uid"], "c1");
        assert_eq!(out["response"]["result"]["status"], "Success");
        assert_eq!(out["response"]["convertedObjects"][0]["host"], "localhost");
    }
}

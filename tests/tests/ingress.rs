//! The ingress controller end to end (issue 11's seed flow): a Deployment of nginx, its
//! Service and an Ingress with a host rule answer through the ingress's HTTP port with the
//! right Host header (404 with a wrong one), and over TLS on its HTTPS port with a
//! certificate from a `kubernetes.io/tls` Secret chosen by SNI; the Ingress's status
//! shows the node's address.
//!
//! Needs root, containerd and runc (scripts/test installs them) and the test images.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use k1s_e2e::{K1s, eventually, free_port, newest_kubectl};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);

/// A request with `Connection: close`; the whole response as text.
fn http_get<S: Read + Write>(s: &mut S, host: &str) -> Option<String> {
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn plain(port: u16, host: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    http_get(&mut s, host)
}

fn tls_config(trusted_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut trusted_pem.as_bytes()) {
        roots.add(c.expect("certificate")).expect("root");
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// A request over TLS with `sni` as the server name; `Err` when the handshake fails.
fn tls_get(port: u16, config: &Arc<rustls::ClientConfig>, sni: &str) -> Result<String, String> {
    let tcp = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let name =
        rustls::pki_types::ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let req = format!("GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        // nginx may close without close_notify; what was read counts.
        Err(e) if !out.is_empty() => eprintln!("TLS read ended: {e}"),
        Err(e) => return Err(e.to_string()),
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn a_deployment_answers_through_the_ingress_over_http_and_tls() {
    let http_port = free_port();
    let https_port = free_port();
    let (hp, sp) = (http_port.to_string(), https_port.to_string());
    let k1s = K1s::start_with_agent(&["--ingress-http-port", &hp, "--ingress-https-port", &sp]);
    let k = newest_kubectl();
    let node = k1s.node_name().expect("node name");
    eventually(Duration::from_secs(60), "the node Ready", || {
        let r = k1s.kubectl(&k, &["get", "node", &node, "-o", "json"]);
        let v: Value = serde_json::from_str(&r.stdout).ok()?;
        v["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
            .then_some(())
    });
    let class = k1s.kubectl(&k, &["get", "ingressclass", "k1s", "-o", "json"]);
    let class: Value = serde_json::from_str(class.ok()).expect("class json");
    assert_eq!(
        class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"], "true",
        "{class}"
    );

    // The certificate the test makes for its host, as a kubernetes.io/tls Secret.
    let cert =
        rcgen::generate_simple_self_signed(vec!["web.example".to_string()]).expect("certificate");
    let cert_pem = cert.cert.pem();
    let crt = k1s.write_file("web.crt", &cert_pem);
    let key = k1s.write_file("web.key", &cert.signing_key.serialize_pem());
    k1s.kubectl(
        &k,
        &[
            "create",
            "secret",
            "tls",
            "web-tls",
            "--cert",
            &crt.to_string_lossy(),
            "--key",
            &key.to_string_lossy(),
        ],
    )
    .ok();

    let manifest = k1s.write_file(
        "web.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:latest
        imagePullPolicy: IfNotPresent
        ports: [{name: http, containerPort: 80}]
        readinessProbe:
          httpGet: {path: /, port: 80}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 8080, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  tls: [{hosts: [web.example], secretName: web-tls}]
  rules:
  - host: web.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: web, port: {number: 8080}}}
"#,
    );
    k1s.kubectl(&k, &["apply", "-f", &manifest.to_string_lossy()])
        .ok();

    let page = eventually(WAIT, "nginx's page through the ingress on HTTP", || {
        plain(http_port, "web.example").filter(|r| r.starts_with("HTTP/1.1 200"))
    });
    assert!(page.to_lowercase().contains("nginx"), "{page}");
    let wrong = plain(http_port, "wrong.example").expect("an answer");
    assert!(wrong.starts_with("HTTP/1.1 404"), "{wrong}");

    let trusted = tls_config(&cert_pem);
    let page = eventually(Duration::from_secs(30), "the page over TLS", || {
        tls_get(https_port, &trusted, "web.example")
            .ok()
            .filter(|r| r.starts_with("HTTP/1.1 200"))
    });
    assert!(page.to_lowercase().contains("nginx"), "{page}");
    // Another server name gets the ingress's default certificate, not the Secret's.
    let other = tls_get(https_port, &trusted, "other.example");
    assert!(other.is_err(), "{other:?}");

    let ing = eventually(Duration::from_secs(30), "the Ingress's address", || {
        let r = k1s.kubectl(&k, &["get", "ingress", "web", "-o", "json"]);
        let v: Value = serde_json::from_str(&r.stdout).ok()?;
        v["status"]["loadBalancer"]["ingress"][0]["ip"]
            .as_str()
            .is_some()
            .then_some(v)
    });
    let node_json: Value =
        serde_json::from_str(k1s.kubectl(&k, &["get", "node", &node, "-o", "json"]).ok())
            .expect("node json");
    let internal = node_json["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
        .and_then(|x| x["address"].as_str())
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        ing["status"]["loadBalancer"]["ingress"][0]["ip"], internal,
        "{ing}"
    );

    // Scaled to zero, the matched backend has no ready endpoint: 503, not 404.
    k1s.kubectl(&k, &["scale", "deployment", "web", "--replicas=0"])
        .ok();
    eventually(WAIT, "503 once no endpoint is ready", || {
        plain(http_port, "web.example").filter(|r| r.starts_with("HTTP/1.1 503"))
    });
}

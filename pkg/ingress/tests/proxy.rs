//! The reverse proxy against tiny backends on loopback: forwarded headers, routing by
//! Host, table swaps on an open connection, WebSocket upgrades, TLS by SNI; and the
//! controller against an in-process API server (routing and status from objects).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use k1s_apiserver::test_util::TestApiServer;
use k1s_ingress::proxy::{self, Router};
use k1s_ingress::routes::{Backend, PathKind, PathRule, Table};
use k1s_ingress::tls::{CertResolver, Certs, certified_key};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::Api;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// A backend answering every request with `name` and the request's headers, one a line.
async fn echo_backend(name: &'static str) -> SocketAddr {
    echo_backend_on(name, "127.0.0.1:0").await
}

async fn echo_backend_on(name: &'static str, on: &str) -> SocketAddr {
    let listener = TcpListener::bind(on).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<_>| async move {
                    let mut text = format!("backend: {name}\npath: {}\n", req.uri());
                    for (k, v) in req.headers() {
                        text.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
                    }
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(text))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// A WebSocket backend echoing each message back with a prefix.
async fn ws_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Text(t) = m {
                        let _ = ws.send(Message::text(format!("echo {t}"))).await;
                    }
                }
            });
        }
    });
    addr
}

fn table(rules: &[(&str, &str, PathKind, Option<SocketAddr>)]) -> Table {
    let mut t = Table::default();
    for (host, path, kind, ep) in rules {
        let b = Arc::new(Backend::new(
            format!("{host}{path}"),
            ep.iter().copied().collect(),
        ));
        t.host(host).push(PathRule::new(path, *kind, b));
    }
    t
}

async fn start_proxy(router: Arc<Router>, tls: Option<tokio_rustls::TlsAcceptor>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(proxy::serve(
        listener,
        tls,
        router,
        std::future::pending::<()>(),
    ));
    addr
}

/// One HTTP/1.1 request on `s` (kept open); the status and the body.
async fn get<S>(s: &mut S, host: &str, path: &str) -> (u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 6.6.6.6\r\nUser-Agent: t\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    // Read the head, then Content-Length bytes.
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).await.expect("read");
        assert!(n > 0, "connection closed in the head: {buf:?}");
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .expect("content-length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.expect("body");
    (status, String::from_utf8_lossy(&body).to_string())
}

#[tokio::test]
async fn routes_by_host_and_sets_forwarded_headers() {
    let echo = echo_backend("echo").await;
    let router = Arc::new(Router::default());
    router.set(table(&[
        ("echo.example", "/", PathKind::Prefix, Some(echo)),
        ("down.example", "/", PathKind::Prefix, None),
    ]));
    let addr = start_proxy(router, None).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let (code, body) = get(&mut s, "echo.example", "/a/b?q=1").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("backend: echo"), "{body}");
    assert!(body.contains("path: /a/b?q=1"), "{body}");
    assert!(body.contains("host: echo.example\n"), "{body}");
    // The client's own X-Forwarded-For is not trusted.
    assert!(body.contains("x-forwarded-for: 127.0.0.1\n"), "{body}");
    assert!(body.contains("x-real-ip: 127.0.0.1\n"), "{body}");
    assert!(body.contains("x-forwarded-proto: http\n"), "{body}");
    assert!(body.contains("x-forwarded-host: echo.example\n"), "{body}");
    assert!(
        body.contains(&format!("x-forwarded-port: {}\n", addr.port())),
        "{body}"
    );
    let (code, _) = get(&mut s, "echo.example:8080", "/").await;
    assert_eq!(code, 200);
    let (code, _) = get(&mut s, "other.example", "/").await;
    assert_eq!(code, 404);
    let (code, _) = get(&mut s, "down.example", "/").await;
    assert_eq!(code, 503);
}

#[tokio::test]
async fn a_new_table_applies_to_open_connections() {
    let one = echo_backend("one").await;
    let two = echo_backend("two").await;
    let router = Arc::new(Router::default());
    router.set(table(&[("app.example", "/", PathKind::Prefix, Some(one))]));
    let addr = start_proxy(router.clone(), None).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let (_, body) = get(&mut s, "app.example", "/").await;
    assert!(body.contains("backend: one"), "{body}");
    router.set(table(&[
        ("app.example", "/", PathKind::Prefix, Some(one)),
        ("app.example", "/v2", PathKind::Prefix, Some(two)),
    ]));
    let (_, body) = get(&mut s, "app.example", "/v2/x").await;
    assert!(body.contains("backend: two"), "{body}");
    let (_, body) = get(&mut s, "app.example", "/v").await;
    assert!(body.contains("backend: one"), "{body}");
}

#[tokio::test]
async fn websocket_upgrades_pass_through() {
    let ws = ws_backend().await;
    let router = Arc::new(Router::default());
    router.set(table(&[("ws.example", "/", PathKind::Prefix, Some(ws))]));
    let addr = start_proxy(router, None).await;
    let s = TcpStream::connect(addr).await.expect("connect");
    let (mut client, resp) = tokio_tungstenite::client_async("ws://ws.example/chat", s)
        .await
        .expect("websocket handshake through the ingress");
    assert_eq!(resp.status(), 101);
    for i in 0..3 {
        client
            .send(Message::text(format!("hello {i}")))
            .await
            .expect("send");
        let m = tokio::time::timeout(Duration::from_secs(5), client.next())
            .await
            .expect("answer in time")
            .expect("a message")
            .expect("a good message");
        assert_eq!(m, Message::text(format!("echo hello {i}")));
    }
}

fn tls_client(trusted: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &trusted[..]) {
        roots.add(c.expect("cert")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn tls_by_server_name() {
    let echo = echo_backend("secure").await;
    let router = Arc::new(Router::default());
    router.set(table(&[(
        "secure.example",
        "/",
        PathKind::Prefix,
        Some(echo),
    )]));
    let cert =
        rcgen::generate_simple_self_signed(vec!["secure.example".to_string()]).expect("cert");
    let cert_pem = cert.cert.pem();
    let resolver = Arc::new(CertResolver::new().expect("resolver"));
    let mut certs = Certs::default();
    certs.insert(
        "secure.example",
        Arc::new(
            certified_key(
                cert_pem.as_bytes(),
                cert.signing_key.serialize_pem().as_bytes(),
            )
            .expect("key"),
        ),
    );
    resolver.set(certs);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(
        k1s_ingress::tls::server_config(resolver).expect("config"),
    ));
    let addr = start_proxy(router, Some(acceptor)).await;
    let connector = tls_client(cert_pem.as_bytes());

    let s = TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("secure.example").expect("name");
    let mut s = connector.connect(name, s).await.expect("TLS with SNI");
    let (code, body) = get(&mut s, "secure.example", "/").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("x-forwarded-proto: https\n"), "{body}");

    // Another name gets the default certificate, which this client does not trust.
    let s = TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("other.example").expect("name");
    assert!(connector.connect(name, s).await.is_err());
}

#[tokio::test]
async fn the_controller_serves_ingresses_of_its_class() {
    // EndpointSlices may not hold loopback addresses: the backend listens on the host's
    // own address (the one a route out would use; no packet is sent).
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp");
    probe.connect("192.0.2.1:9").expect("a route off the host");
    let host_ip = probe.local_addr().expect("addr").ip();
    assert!(
        !host_ip.is_loopback() && !host_ip.is_unspecified(),
        "{host_ip}"
    );
    let echo = echo_backend_on("from-api", "0.0.0.0:0").await;
    let api = TestApiServer::new().await;
    let client = api.client();
    let mut config = k1s_ingress::Config::new(vec!["192.0.2.7".parse().expect("ip")]);
    config.http = "127.0.0.1:0".parse().expect("addr");
    config.https = "127.0.0.1:0".parse().expect("addr");
    let listeners = k1s_ingress::Listeners::bind(&config).await.expect("bind");
    let (http, _) = listeners.local_addrs().expect("addrs");
    tokio::spawn(k1s_ingress::run(
        client.clone(),
        config,
        listeners,
        std::future::pending::<()>(),
    ));
    api.api()
        .create(
            "/api/v1/namespaces/default/services",
            json!({"metadata": {"name": "web"},
               "spec": {"selector": {"app": "web"},
                        "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}}),
        )
        .await;
    api.api()
        .create(
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            json!({"metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
               "addressType": "IPv4",
               "endpoints": [{"addresses": [host_ip.to_string()], "conditions": {"ready": true}}],
               "ports": [{"name": "http", "port": echo.port(), "protocol": "TCP"}]}),
        )
        .await;
    // No class named: served, since k1s is the default class.
    api.api()
        .create(
            "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
            json!({"metadata": {"name": "web"},
               "spec": {"rules": [{"host": "web.example", "http": {"paths": [
                   {"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}}]}}),
        )
        .await;
    // Another controller's class: not served.
    api.api()
        .create(
            "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
            json!({"metadata": {"name": "theirs"},
               "spec": {"ingressClassName": "nginx",
                        "rules": [{"host": "theirs.example", "http": {"paths": [
                   {"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}),
        )
        .await;

    let class: IngressClass = Api::all(client.clone()).get("k1s").await.expect("class");
    assert_eq!(
        class
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k1s_ingress::DEFAULT_CLASS_ANNOTATION))
            .map(String::as_str),
        Some("true")
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        let mut s = TcpStream::connect(http).await.expect("connect");
        let (code, body) = get(&mut s, "web.example", "/").await;
        if code == 200 {
            break body;
        }
        assert!(Instant::now() < deadline, "still {code}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(body.contains("backend: from-api"), "{body}");
    let mut s = TcpStream::connect(http).await.expect("connect");
    assert_eq!(get(&mut s, "theirs.example", "/").await.0, 404);

    let ingresses: Api<Ingress> = Api::namespaced(client, "default");
    loop {
        let ing = ingresses.get("web").await.expect("ingress");
        let ips: Vec<String> = ing
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| i.ip)
            .collect();
        if ips == ["192.0.2.7"] {
            break;
        }
        assert!(Instant::now() < deadline, "status still {ips:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let theirs = ingresses.get("theirs").await.expect("ingress");
    assert!(
        theirs
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .unwrap_or_default()
            .is_empty()
    );
}

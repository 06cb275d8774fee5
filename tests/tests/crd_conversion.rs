//! Issue 13, CRD conversion webhooks: a CRD with v1 (`hostPort: "host:port"`) and v2
//! (`host`, `port`) as in upstream's e2e, converted by a small HTTPS server the test
//! starts (trusted through `caBundle`), against a real `k1s server` driven by kubectl.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use k1s_e2e::{K1s, eventually, newest_kubectl};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// What the converter saw: (desiredAPIVersion, the apiVersions of the objects sent).
type Seen = Arc<Mutex<Vec<(String, Vec<String>)>>>;

const GROUP: &str = "stable.example.com";
const CRD: &str = "testcrds.stable.example.com";

/// Converts one object between v1 (`hostPort`) and v2 (`host`, `port`).
fn convert(mut obj: Value, desired: &str) -> Value {
    let Some(o) = obj.as_object_mut() else {
        return obj;
    };
    match desired {
        "stable.example.com/v2" => {
            if let Some(hp) = o.remove("hostPort")
                && let Some((host, port)) = hp.as_str().and_then(|s| s.split_once(':'))
            {
                o.insert("host".into(), json!(host));
                o.insert("port".into(), json!(port));
            }
        }
        _ => {
            if let (Some(h), Some(p)) = (o.remove("host"), o.remove("port")) {
                let (h, p) = (h.as_str().unwrap_or(""), p.as_str().unwrap_or(""));
                o.insert("hostPort".into(), json!(format!("{h}:{p}")));
            }
        }
    }
    o.insert("apiVersion".into(), json!(desired));
    obj
}

/// Answers one ConversionReview by path: `/convert` converts, `/bad` answers the objects
/// unconverted (still in their old apiVersion).
fn answer(path: &str, review: &Value) -> Value {
    let req = &review["request"];
    let desired = req["desiredAPIVersion"].as_str().unwrap_or_default();
    let objects: Vec<Value> = req["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| match path {
            "/bad" => o.clone(),
            _ => convert(o.clone(), desired),
        })
        .collect();
    json!({"apiVersion": review["apiVersion"], "kind": "ConversionReview",
        "response": {"uid": req["uid"], "convertedObjects": objects,
            "result": {"status": "Success"}}})
}

/// Starts the HTTPS converter on a free port; returns its port and CA (PEM).
fn start_converter(rt: &tokio::runtime::Runtime, seen: Seen) -> (u16, String) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
    let ca_pem = generated.cert.pem();
    let chain = vec![generated.cert.der().clone()];
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(generated.signing_key.serialize_der())
        .expect("key der");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(chain, key_der)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let review: Value =
                                serde_json::from_slice(&body).unwrap_or(Value::Null);
                            let r = &review["request"];
                            seen.lock().push((
                                r["desiredAPIVersion"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_string(),
                                r["objects"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .map(|o| o["apiVersion"].as_str().unwrap_or("").to_string())
                                    .collect(),
                            ));
                            let out = answer(&path, &review);
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(bytes::Bytes::from(out.to_string())))
                                    .expect("response"),
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, ca_pem)
}

fn crd(conversion: Value) -> Value {
    let version = |name: &str, storage: bool, props: Value| {
        json!({"name": name, "served": true, "storage": storage,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": props}}})
    };
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD},
        "spec": {"group": GROUP, "scope": "Namespaced",
            "names": {"plural": "testcrds", "singular": "testcrd", "kind": "TestCrd", "listKind": "TestCrdList"},
            "versions": [
                version("v1", true, json!({"hostPort": {"type": "string"}})),
                version("v2", false, json!({"host": {"type": "string"}, "port": {"type": "string"}})),
            ],
            "conversion": conversion}})
}

fn v1_obj(name: &str, host_port: &str) -> String {
    json!({"apiVersion": "stable.example.com/v1", "kind": "TestCrd",
        "metadata": {"name": name}, "hostPort": host_port})
    .to_string()
}

fn v2_obj(name: &str, host: &str, port: &str) -> String {
    json!({"apiVersion": "stable.example.com/v2", "kind": "TestCrd",
        "metadata": {"name": name}, "host": host, "port": port})
    .to_string()
}

#[test]
fn conversion_webhook_converts_reads_writes_lists_and_watches() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let seen: Seen = Arc::default();
    let (port, ca) = start_converter(&rt, seen.clone());
    let k1s = K1s::start();
    let k = newest_kubectl();
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(&ca);
    let create = |body: &str| k1s.kubectl_with(&k, &["create", "-f", "-"], Some(body), &[]);
    let get = |args: &[&str]| k1s.kubectl(&k, args);

    // Upstream's validation of spec.conversion (its internal field paths).
    let mut bad = crd(json!({"strategy": "Webhook",
        "webhook": {"clientConfig": {"url": "http://127.0.0.1/x"}}}));
    bad["spec"]["preserveUnknownFields"] = json!(true);
    let err = create(&bad.to_string()).fails().to_string();
    for want in [
        "spec.conversion.strategy: Invalid value: \"Webhook\": must be None if spec.preserveUnknownFields is true",
        "spec.conversion.webhookClientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme",
        "spec.conversion.conversionReviewVersions: Required value",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
    let bad = crd(json!({"strategy": "Webhook",
        "webhook": {"clientConfig": {"url": "https://127.0.0.1/x"}, "conversionReviewVersions": ["v9"]}}));
    let err = create(&bad.to_string()).fails().to_string();
    assert!(
        err.contains("spec.conversion.conversionReviewVersions: Invalid value")
            && err.contains("must include at least one of v1, v1beta1"),
        "{err}"
    );

    let conversion = |path: &str| {
        json!({"strategy": "Webhook", "webhook": {
            "clientConfig": {"url": format!("https://127.0.0.1:{port}{path}"), "caBundle": ca_bundle},
            "conversionReviewVersions": ["v1", "v1beta1"]}})
    };
    create(&crd(conversion("/convert")).to_string()).ok();
    get(&[
        "wait",
        "--for=condition=Established",
        &format!("crd/{CRD}"),
        "--timeout=30s",
    ])
    .ok();

    // Create in v1, read in v2: converted by the webhook.
    create(&v1_obj("cr1", "localhost:7070")).ok();
    let out: Value = serde_json::from_str(
        get(&["get", "testcrds.v2.stable.example.com", "cr1", "-o", "json"]).ok(),
    )
    .expect("json");
    assert_eq!(out["apiVersion"], "stable.example.com/v2");
    assert_eq!(
        (&out["host"], &out["port"]),
        (&json!("localhost"), &json!("7070"))
    );
    assert!(out.get("hostPort").is_none(), "{out}");

    // Create in v2: stored as v1 (the storage version), read back in v1.
    create(&v2_obj("cr2", "example.com", "8080")).ok();
    let host_port = get(&[
        "get",
        "testcrds.v1.stable.example.com",
        "cr2",
        "-o",
        "jsonpath={.hostPort}",
    ])
    .ok()
    .to_string();
    assert_eq!(host_port, "example.com:8080");
    assert!(
        seen.lock()
            .iter()
            .any(|(to, from)| to == "stable.example.com/v1" && from == &["stable.example.com/v2"]),
        "the v2 write was not converted to v1 by the webhook: {:?}",
        seen.lock()
    );

    // v2 becomes the storage version: objects stored from now on are v2, the older ones
    // stay v1, and a list in either version converts each object that needs it.
    get(&[
        "patch",
        "crd",
        CRD,
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/versions/0/storage","value":false},{"op":"replace","path":"/spec/versions/1/storage","value":true}]"#,
    ])
    .ok();
    eventually(Duration::from_secs(20), "v2 as the storage version", || {
        seen.lock().clear();
        let name = format!("cr3-{}", rand::random::<u32>());
        create(&v1_obj(&name, "mixed:9000")).ok();
        // Written in v1 and stored in v2 once the new storage version is in place.
        let stored_v2 = seen
            .lock()
            .iter()
            .any(|(to, from)| to == "stable.example.com/v2" && from == &["stable.example.com/v1"]);
        if !stored_v2 {
            get(&["delete", "testcrds.v1.stable.example.com", &name]).ok();
        }
        stored_v2.then_some(())
    });
    seen.lock().clear();
    let list: Value =
        serde_json::from_str(get(&["get", "testcrds.v1.stable.example.com", "-o", "json"]).ok())
            .expect("json");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "{list}");
    for item in items {
        assert_eq!(item["apiVersion"], "stable.example.com/v1", "{item}");
        assert!(
            item["hostPort"].is_string() && item.get("host").is_none(),
            "{item}"
        );
    }
    assert!(
        seen.lock()
            .iter()
            .any(|(to, from)| to == "stable.example.com/v1" && from == &["stable.example.com/v2"]),
        "the v2-stored object was not converted for the v1 list: {:?}",
        seen.lock()
    );
    let list: Value =
        serde_json::from_str(get(&["get", "testcrds.v2.stable.example.com", "-o", "json"]).ok())
            .expect("json");
    for item in list["items"].as_array().expect("items") {
        assert_eq!(item["apiVersion"], "stable.example.com/v2", "{item}");
        assert!(
            item["host"].is_string() && item.get("hostPort").is_none(),
            "{item}"
        );
    }

    // A watch in v2 sees converted objects, for events of objects written in v1.
    let mut watch = k1s.kubectl_spawn(
        &k,
        &[
            "get",
            "testcrds.v1.stable.example.com",
            "--watch-only",
            "-o",
            "custom-columns=NAME:.metadata.name,HOSTPORT:.hostPort",
        ],
    );
    let mut watch_v2 = k1s.kubectl_spawn(
        &k,
        &[
            "get",
            "testcrds.v2.stable.example.com",
            "--watch-only",
            "-o",
            "custom-columns=NAME:.metadata.name,HOST:.host,PORT:.port",
        ],
    );
    let buffer = |child: &mut std::process::Child| {
        let out = Arc::new(Mutex::new(String::new()));
        let mut stdout = child.stdout.take().expect("stdout");
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        out
    };
    let (seen_v1, seen_v2) = (buffer(&mut watch), buffer(&mut watch_v2));
    // The watches are open once an object written after them shows up in both.
    let mut probe = 0;
    eventually(Duration::from_secs(20), "the watches to open", || {
        probe += 1;
        let name = format!("probe{probe}");
        create(&v1_obj(&name, "probe:1")).ok();
        let opened = |out: &Arc<Mutex<String>>| out.lock().lines().any(|l| l.starts_with("probe"));
        (opened(&seen_v1) && opened(&seen_v2)).then_some(())
    });
    create(&v1_obj("cr4", "watched:4444")).ok();
    eventually(
        Duration::from_secs(20),
        "the watch in v2 to see cr4",
        || {
            seen_v2
                .lock()
                .lines()
                .any(|l| l.starts_with("cr4"))
                .then_some(())
        },
    );
    let line = seen_v2
        .lock()
        .lines()
        .find(|l| l.starts_with("cr4"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "));
    assert_eq!(line.as_deref(), Some("cr4 watched 4444"));
    get(&[
        "patch",
        "testcrds.v2.stable.example.com",
        "cr4",
        "--type=merge",
        "-p",
        r#"{"port":"5555"}"#,
    ])
    .ok();
    eventually(
        Duration::from_secs(20),
        "the v1 watch to see the v2 patch",
        || {
            seen_v1
                .lock()
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["cr4", "watched:5555"])
                .then_some(())
        },
    );
    let _ = watch.kill();
    let _ = watch_v2.kill();
    let _ = watch.wait();
    let _ = watch_v2.wait();

    // The webhook down: reads that need it fail with upstream's text, and the new
    // clientConfig is used at once (nothing of the old one is kept).
    let set_url = |url: &str| {
        let patch = json!({"spec": {"conversion": {"webhook": {"clientConfig": {"url": url}}}}});
        get(&[
            "patch",
            "crd",
            CRD,
            "--type=merge",
            "-p",
            &patch.to_string(),
        ])
        .ok();
    };
    set_url("https://127.0.0.1:1/convert");
    let err = eventually(Duration::from_secs(20), "the conversion to fail", || {
        let out = get(&["get", "testcrds.v2.stable.example.com", "cr1", "-o", "json"]);
        (out.code != 0).then(|| out.stderr.clone())
    });
    assert!(
        err.contains(
            "Error from server: conversion webhook for stable.example.com/v1, Kind=TestCrd failed: Post \"https://127.0.0.1:1/convert\": dial tcp 127.0.0.1:1: connect: connection refused"
        ),
        "{err}"
    );
    // A write that needs conversion fails too, and nothing is stored.
    let err = create(&v1_obj("cr5", "down:1")).fails().to_string();
    assert!(
        err.contains("conversion webhook for stable.example.com/v1, Kind=TestCrd failed"),
        "{err}"
    );
    // Objects already in the requested version need no webhook.
    get(&["get", "testcrds.v2.stable.example.com", "cr4"]).ok();

    // A webhook that answers objects unconverted: upstream's check refuses them.
    set_url(&format!("https://127.0.0.1:{port}/bad"));
    let err = eventually(
        Duration::from_secs(20),
        "the bad answer to be refused",
        || {
            let out = get(&["get", "testcrds.v2.stable.example.com", "cr1", "-o", "json"]);
            let err = out.stderr.clone();
            (out.code != 0 && !err.contains("connection refused")).then_some(err)
        },
    );
    assert!(
        err.contains(
            "conversion webhook for stable.example.com/v1, Kind=TestCrd returned invalid object at index 0: invalid groupVersion (expected stable.example.com/v2, received stable.example.com/v1)"
        ),
        "{err}"
    );

    // Back to a working webhook: everything reads again.
    set_url(&format!("https://127.0.0.1:{port}/convert"));
    eventually(Duration::from_secs(20), "conversion to work again", || {
        let out = get(&[
            "get",
            "testcrds.v2.stable.example.com",
            "cr1",
            "-o",
            "jsonpath={.host}:{.port}",
        ]);
        (out.code == 0 && out.stdout == "localhost:7070").then_some(())
    });
}

//! Issue 13 (done-when 6) and issue 12 (APIServices in api-resources): the aggregation
//! layer against a real `k1s server` driven by kubectl. A small HTTPS extension API server
//! started by the test serves `wardle.example.com/v1alpha1` `flunders`; it trusts only
//! client certificates from the front-proxy CA that k1s publishes in
//! `kube-system/extension-apiserver-authentication`, and records the identity headers.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use k1s_e2e::{K1s, TestRequest, TlsTestServer, eventually, newest_kubectl};
use parking_lot::Mutex;
use serde_json::{Value, json};

const GROUP: &str = "wardle.example.com";
const GV: &str = "wardle.example.com/v1alpha1";

/// (path, X-Remote-User, X-Remote-Group values) of every request the server answered.
type Seen = Arc<Mutex<Vec<(String, String, Vec<String>)>>>;

fn flunder(ns: &str, name: &str) -> Value {
    json!({"apiVersion": GV, "kind": "Flunder",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
            "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"reference": "none"}})
}

/// The extension server's answer for one GET.
fn answer(path: &str) -> (u16, Value) {
    let base = format!("/apis/{GV}");
    let rest = path.strip_prefix(&base);
    match rest {
        Some("") | Some("/") => (
            200,
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GV,
                "resources": [{"name": "flunders", "singularName": "flunder", "namespaced": true,
                    "kind": "Flunder", "verbs": ["get", "list"], "shortNames": ["fl"]}]}),
        ),
        Some("/flunders") => (
            200,
            json!({"apiVersion": GV, "kind": "FlunderList", "metadata": {"resourceVersion": "1"},
                "items": [flunder("default", "alpha")]}),
        ),
        Some(r) => {
            let parts: Vec<&str> = r.trim_matches('/').split('/').collect();
            match parts.as_slice() {
                ["namespaces", ns, "flunders"] => (
                    200,
                    json!({"apiVersion": GV, "kind": "FlunderList", "metadata": {"resourceVersion": "1"},
                        "items": if *ns == "default" { vec![flunder(ns, "alpha")] } else { vec![] }}),
                ),
                ["namespaces", "default", "flunders", "alpha"] => {
                    (200, flunder("default", "alpha"))
                }
                _ => not_found(),
            }
        }
        None => not_found(),
    }
}

fn not_found() -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "the server could not find the requested resource", "reason": "NotFound", "code": 404}),
    )
}

/// This machine's address on its default route: Endpoints may not point at loopback.
fn host_ip() -> std::net::IpAddr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    socket
        .connect("10.255.255.254:9")
        .expect("a route to a private address is needed for the test's Endpoints");
    let ip = socket.local_addr().expect("local address").ip();
    assert!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "no non-loopback address for the extension server: {ip}"
    );
    ip
}

/// Starts the HTTPS extension server on `ip`; returns its port and CA (PEM). Client
/// certificates are required and must come from `front_proxy_ca`.
fn start_extension_server(
    rt: &tokio::runtime::Runtime,
    ip: std::net::IpAddr,
    front_proxy_ca: &str,
    seen: Seen,
) -> (u16, String) {
    let names = ["wardle-api.default.svc"];
    let handler = move |req: TestRequest| {
        let seen = seen.clone();
        async move {
            let header = |n: &str| {
                req.headers
                    .get_all(n)
                    .iter()
                    .filter_map(|v| v.to_str().ok().map(str::to_string))
                    .collect::<Vec<_>>()
            };
            let user = header("x-remote-user").join(",");
            seen.lock()
                .push((req.path.clone(), user, header("x-remote-group")));
            answer(&req.path)
        }
    };
    let server = TlsTestServer::start(rt, ip, &names, Some(front_proxy_ca), handler);
    (server.port, server.ca_pem)
}

#[test]
fn an_extension_api_server_is_served_through_its_api_service() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let k1s = K1s::start();
    let k = newest_kubectl();
    let apply =
        |obj: &Value| k1s.kubectl_with(&k, &["apply", "-f", "-"], Some(&obj.to_string()), &[]);

    // Every built-in group-version has a local APIService, as upstream lists them.
    let out = k1s.kubectl(&k, &["get", "apiservices"]).ok().to_string();
    let header = out.lines().next().unwrap_or_default();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "SERVICE", "AVAILABLE", "AGE"],
        "{out}"
    );
    for name in [
        "v1.",
        "v1.apps",
        "v2.autoscaling",
        "v1.apiregistration.k8s.io",
    ] {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{out}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&cells[1..3], ["Local", "True"], "{line}");
    }
    let resources = k1s.kubectl(&k, &["api-resources"]).ok().to_string();
    assert!(
        resources.lines().any(|l| l.starts_with("apiservices ")
            && l.contains("apiregistration.k8s.io/v1")
            && l.contains("APIService")),
        "{resources}"
    );

    // The front-proxy CA and the request-header names are published as upstream's.
    let cm = k1s
        .kubectl(
            &k,
            &[
                "get",
                "configmap",
                "-n",
                "kube-system",
                "extension-apiserver-authentication",
                "-o",
                "json",
            ],
        )
        .ok()
        .to_string();
    let cm: Value = serde_json::from_str(&cm).expect("configmap json");
    assert_eq!(
        cm["data"]["requestheader-username-headers"],
        "[\"X-Remote-User\"]"
    );
    assert_eq!(
        cm["data"]["requestheader-group-headers"],
        "[\"X-Remote-Group\"]"
    );
    let front_proxy_ca = cm["data"]["requestheader-client-ca-file"]
        .as_str()
        .expect("requestheader-client-ca-file")
        .to_string();
    assert!(
        cm["data"]["client-ca-file"]
            .as_str()
            .is_some_and(|s| s.contains("BEGIN CERTIFICATE"))
    );

    let seen: Seen = Arc::default();
    let ip = host_ip();
    let (port, ca) = start_extension_server(&rt, ip, &front_proxy_ca, seen.clone());
    apply(&json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "wardle-api", "namespace": "default"},
        "spec": {"ports": [{"port": 443, "targetPort": port}]}}))
    .ok();
    let endpoints = json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "wardle-api", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": ip.to_string()}], "ports": [{"port": port}]}]});
    apply(&endpoints).ok();
    let api_service = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": format!("v1alpha1.{GROUP}")},
        "spec": {"group": GROUP, "version": "v1alpha1",
            "service": {"namespace": "default", "name": "wardle-api", "port": 443},
            "caBundle": base64::engine::general_purpose::STANDARD.encode(&ca),
            "groupPriorityMinimum": 1000, "versionPriority": 15}});
    apply(&api_service).ok();

    let status_of = || {
        let out = k1s
            .kubectl(&k, &["get", "apiservice", &format!("v1alpha1.{GROUP}")])
            .ok()
            .to_string();
        out.lines()
            .nth(1)
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    eventually(
        Duration::from_secs(30),
        "the APIService to turn Available",
        || (status_of().starts_with("default/wardle-api True")).then_some(()),
    );

    // Discovery: kubectl api-resources lists the remote resource.
    let resources = eventually(Duration::from_secs(20), "flunders in api-resources", || {
        let out = k1s.kubectl(&k, &["api-resources"]).ok().to_string();
        out.lines()
            .any(|l| l.starts_with("flunders "))
            .then_some(out)
    });
    let line = resources
        .lines()
        .find(|l| l.starts_with("flunders "))
        .unwrap_or_default();
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cells,
        ["flunders", "fl", GV, "true", "Flunder"],
        "{resources}"
    );
    let groups = k1s.kubectl(&k, &["get", "--raw", "/apis"]).ok().to_string();
    assert!(
        groups.contains(&format!("\"groupVersion\":\"{GV}\"")),
        "{groups}"
    );
    let group = k1s
        .kubectl(&k, &["get", "--raw", &format!("/apis/{GROUP}")])
        .ok()
        .to_string();
    let group: Value = serde_json::from_str(&group).expect("APIGroup");
    assert_eq!(group["preferredVersion"]["groupVersion"], GV);

    // get and list go through k1s to the extension server, as the requesting user.
    let out = k1s.kubectl(&k, &["get", "flunders"]).ok().to_string();
    assert!(out.lines().any(|l| l.starts_with("alpha ")), "{out}");
    let one = k1s
        .kubectl(
            &k,
            &[
                "get",
                "flunder",
                "alpha",
                "-o",
                "jsonpath={.kind}/{.metadata.name}",
            ],
        )
        .ok()
        .to_string();
    assert_eq!(one, "Flunder/alpha");
    let raw = k1s
        .kubectl(
            &k,
            &[
                "get",
                "--raw",
                &format!("/apis/{GV}/namespaces/default/flunders"),
            ],
        )
        .ok()
        .to_string();
    let raw: Value = serde_json::from_str(&raw).expect("list json");
    assert_eq!(raw["items"][0]["metadata"]["name"], "alpha");
    {
        let seen = seen.lock();
        let (_, user, groups) = seen
            .iter()
            .find(|(p, ..)| p.ends_with("/namespaces/default/flunders/alpha"))
            .expect("the get reached the extension server");
        assert_eq!(user, "system:admin");
        assert!(groups.contains(&"system:masters".to_string()), "{groups:?}");
        // The availability checks come as the aggregator itself.
        assert!(seen.iter().any(|(_, u, _)| u == "system:kube-aggregator"));
    }
    // k1s authorizes before proxying: a user without rights never reaches the server.
    let before = seen.lock().len();
    let err = k1s
        .kubectl(&k, &["get", "flunders", "--as", "jane"])
        .fails()
        .to_string();
    assert!(
        err.contains(&format!(
            "User \"jane\" cannot list resource \"flunders\" in API group \"{GROUP}\" in the namespace \"default\""
        )),
        "{err}"
    );
    let after: Vec<_> = seen.lock()[before..]
        .iter()
        .filter(|(_, u, _)| u == "jane")
        .cloned()
        .collect();
    assert!(after.is_empty(), "{after:?}");

    // Bad input is refused with a Status 422.
    let bad = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "wrong"},
        "spec": {"group": "x.example.com", "version": "v1", "groupPriorityMinimum": 0,
            "versionPriority": 15, "service": {"namespace": "default", "name": "wardle-api"},
            "caBundle": base64::engine::general_purpose::STANDARD.encode(&ca),
            "insecureSkipTLSVerify": true}});
    let err = k1s
        .kubectl_with(&k, &["create", "-f", "-"], Some(&bad.to_string()), &[])
        .fails()
        .to_string();
    for part in [
        "The APIService \"wrong\" is invalid",
        "metadata.name: Invalid value: \"wrong\": must be `spec.version+\".\"+spec.group`: \"v1.x.example.com\"",
        "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000",
        "spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is present",
    ] {
        assert!(err.contains(part), "{part:?} not in {err}");
    }

    // Without endpoints the APIService turns unavailable and its requests get 503.
    k1s.kubectl(&k, &["delete", "endpoints", "wardle-api"]).ok();
    eventually(
        Duration::from_secs(30),
        "the APIService to turn unavailable",
        || {
            let s = status_of();
            (s.starts_with("default/wardle-api False (MissingEndpoints)")
                || s.starts_with("default/wardle-api False (EndpointsNotFound)"))
            .then_some(())
        },
    );
    let err = k1s
        .kubectl(
            &k,
            &[
                "get",
                "--raw",
                &format!("/apis/{GV}/namespaces/default/flunders"),
            ],
        )
        .fails()
        .to_string();
    assert!(err.contains("ServiceUnavailable"), "{err}");
    // Deleting the APIService removes the group from discovery.
    k1s.kubectl(&k, &["delete", "apiservice", &format!("v1alpha1.{GROUP}")])
        .ok();
    eventually(
        Duration::from_secs(20),
        "the group to leave discovery",
        || {
            let out = k1s.kubectl(&k, &["get", "--raw", "/apis"]).ok().to_string();
            (!out.contains(GV)).then_some(())
        },
    );
}

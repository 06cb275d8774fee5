//! `metrics.k8s.io/v1beta1` (NodeMetrics, PodMetrics) served in-process, where upstream
//! serves it through metrics-server behind an aggregated APIService.
//!
//! A scraper ([`start`]) reads every node's kubelet `/metrics/resource` each resolution
//! through the same TLS client the pods' `log`/`exec` proxy uses; [`store`] keeps each
//! series' last two points and computes usage as metrics-server does (CPU: the rate of
//! the cumulative counter over the window between them). Only `get` and `list` are
//! served, as metrics-server does; discovery lists the group once the scraper runs, so
//! `kubectl top` and the HPA find it.

pub mod prometheus;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use k1s_apimachinery::{FieldSelector, GroupResource, Selector, Status};
use serde_json::{Map, Value, json};

use self::store::{MetricsStore, PodUsage, Usage};
use crate::ApiServer;
use crate::handlers::request::ResourcePath;
use crate::handlers::{Query, method_not_allowed, not_found, query_flag, response};

/// The group served.
pub const GROUP: &str = "metrics.k8s.io";
/// Its only version.
pub const VERSION: &str = "v1beta1";
/// metrics-server's default resolution as k3s deploys it.
pub const DEFAULT_RESOLUTION: Duration = Duration::from_secs(15);
/// How long one kubelet scrape may take (metrics-server's default timeout).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait before a node whose kubelet did not answer is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The resources of the group: plural, kind, namespaced.
const RESOURCES: &[(&str, &str, bool)] = &[
    ("nodes", "NodeMetrics", false),
    ("pods", "PodMetrics", true),
];

/// Starts scraping every node's kubelet each `resolution` and serving the group; the
/// handle stops it when aborted (it also ends with the server).
pub fn start(server: &Arc<ApiServer>, resolution: Duration) -> tokio::task::JoinHandle<()> {
    let store = server
        .resource_metrics
        .get_or_init(|| Arc::new(MetricsStore::default()))
        .clone();
    let weak: Weak<ApiServer> = Arc::downgrade(server);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(resolution);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = HashMap::new();
        loop {
            tick.tick().await;
            let Some(server) = weak.upgrade() else { return };
            scrape_all(&server, &store, &mut failing, resolution).await;
        }
    })
}

/// Scrapes every node once, all at the same time. A node whose kubelet does not answer
/// (a simulated node runs none) is tried again after a back-off that doubles up to
/// [`MAX_BACKOFF`], so thousands of them cost little.
async fn scrape_all(
    server: &ApiServer,
    store: &MetricsStore,
    failing: &mut HashMap<String, (u32, Instant)>,
    resolution: Duration,
) {
    let nodes = list(server, "nodes");
    let names: HashSet<String> = nodes.iter().map(|n| name_of(n).to_string()).collect();
    store.retain_nodes(&names);
    failing.retain(|n, _| names.contains(n));
    let now = Instant::now();
    let due = nodes
        .iter()
        .filter(|n| failing.get(name_of(n)).is_none_or(|(_, next)| *next <= now));
    let scrapes = due.map(|node| async move {
        let name = name_of(node).to_string();
        let result = match tokio::time::timeout(SCRAPE_TIMEOUT, scrape(server, node)).await {
            Ok(r) => r,
            Err(_) => Err("timed out".to_string()),
        };
        (name, result)
    });
    for (name, result) in futures::future::join_all(scrapes).await {
        match result {
            Ok(scrape) => {
                failing.remove(&name);
                store.record(&name, scrape);
            }
            Err(e) => {
                tracing::debug!(node = %name, error = %e, "metrics: scrape failed");
                let fails = failing.get(&name).map_or(0, |(n, _)| *n).saturating_add(1);
                let backoff = resolution
                    .saturating_mul(2u32.saturating_pow(fails.min(8) - 1))
                    .min(MAX_BACKOFF);
                failing.insert(name, (fails, Instant::now() + backoff));
            }
        }
    }
}

/// One node's kubelet's `/metrics/resource`.
async fn scrape(server: &ApiServer, node: &Value) -> Result<prometheus::Scrape, String> {
    let kubelet =
        crate::handlers::streaming::kubelet_of_node(server, node).map_err(|s| s.message)?;
    let request = http::Request::get("/metrics/resource")
        .header(http::header::HOST, kubelet.host_header())
        .body(Body::empty())
        .map_err(|e| e.to_string())?;
    let (response, _conn) = kubelet.send(request).await.map_err(|s| s.message)?;
    let code = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !code.is_success() {
        return Err(format!(
            "{code}: {}",
            String::from_utf8_lossy(&body[..body.len().min(256)])
        ));
    }
    let now = jiff::Timestamp::now().as_millisecond();
    prometheus::parse(&String::from_utf8_lossy(&body), now)
}

fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Every stored object of a core resource (`nodes`, `pods`).
fn list(server: &ApiServer, plural: &str) -> Vec<Value> {
    let snapshot = server.registry.snapshot();
    let Some(res) = snapshot.get("", "v1", plural).cloned() else {
        return Vec::new();
    };
    let prefix = res.info.collection_prefix(None);
    let (items, _, _) = server.generic.store().cache().list(&prefix, None, 0);
    items
        .iter()
        .filter_map(|kv| server.generic.decode_stored(&res, kv).ok())
        .collect()
}

/// One stored object of a core resource.
fn get(server: &ApiServer, plural: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
    let snapshot = server.registry.snapshot();
    let res = snapshot.get("", "v1", plural)?.clone();
    server.generic.get(&res, namespace, name).ok()
}

/// Whether the group is served (the scraper was started).
pub fn served(server: &ApiServer) -> bool {
    server.resource_metrics.get().is_some()
}

/// The group's entry in `/apis`.
pub fn group_json() -> Value {
    let v = json!({"groupVersion": format!("{GROUP}/{VERSION}"), "version": VERSION});
    json!({"name": GROUP, "versions": [v.clone()], "preferredVersion": v})
}

/// `/apis/metrics.k8s.io/v1beta1`, as metrics-server answers it.
pub fn resource_list() -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(plural, kind, namespaced)| {
            json!({
                "name": plural,
                "singularName": "",
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ["get", "list"],
            })
        })
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{GROUP}/{VERSION}"),
        "resources": resources,
    })
}

/// The group's item in the aggregated discovery document.
pub fn aggregated_json() -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(plural, kind, namespaced)| {
            json!({
                "resource": plural,
                "responseKind": {"group": "", "version": "", "kind": kind},
                "scope": if *namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": "",
                "verbs": ["get", "list"],
            })
        })
        .collect();
    json!({
        "metadata": {"name": GROUP, "creationTimestamp": null},
        "versions": [{"version": VERSION, "resources": resources, "freshness": "Current"}],
    })
}

/// Serves a request under `/apis/metrics.k8s.io/`.
pub fn handle(server: &ApiServer, path: &ResourcePath, method: &Method, query: &Query) -> Response {
    match serve(server, path, method, query) {
        Ok(v) => response::json(StatusCode::OK, &v),
        Err(s) => response::status(&s),
    }
}

fn serve(
    server: &ApiServer,
    path: &ResourcePath,
    method: &Method,
    query: &Query,
) -> Result<Value, Status> {
    let Some(store) = server.resource_metrics.get() else {
        return Err(not_found());
    };
    let Some((plural, kind, namespaced)) = RESOURCES
        .iter()
        .find(|(p, ..)| *p == path.resource)
        .copied()
    else {
        return Err(not_found());
    };
    if path.version != VERSION
        || path.subresource.is_some()
        || path.watch_prefix
        || (!namespaced && path.namespace.is_some())
    {
        return Err(not_found());
    }
    if *method != Method::GET {
        return Err(method_not_allowed());
    }
    let gr = GroupResource::new(GROUP, kind.to_lowercase());
    if query_flag(query, "watch") {
        return Err(Status::method_not_supported(&gr, "watch"));
    }
    let label_selector = match query.get("labelSelector").filter(|s| !s.is_empty()) {
        Some(s) => Some(Selector::parse(s).map_err(|e| Status::bad_request(&e.to_string()))?),
        None => None,
    };
    let field_selector = match query.get("fieldSelector").filter(|s| !s.is_empty()) {
        Some(s) => Some(FieldSelector::parse(s).map_err(|e| Status::bad_request(&e.to_string()))?),
        None => None,
    };
    let now = jiff::Timestamp::now();
    let ns = path.namespace.as_deref();
    let items: Vec<Value> = if plural == "nodes" {
        let usage = store.nodes();
        let nodes = match &path.name {
            Some(n) => get(server, "nodes", None, n).into_iter().collect(),
            None => list(server, "nodes"),
        };
        nodes
            .iter()
            .filter_map(|node| {
                let u = usage.get(name_of(node))?;
                Some(node_metrics(node, u, now))
            })
            .collect()
    } else {
        store
            .pods()
            .iter()
            .filter(|p| ns.is_none_or(|ns| p.namespace == ns))
            .filter(|p| path.name.as_ref().is_none_or(|n| p.name == *n))
            .filter_map(|p| {
                let pod = get(server, "pods", Some(&p.namespace), &p.name)?;
                Some(pod_metrics(&pod, p, now))
            })
            .collect()
    };
    let items: Vec<Value> = items
        .into_iter()
        .filter(|o| label_selector.as_ref().is_none_or(|s| s.matches_object(o)))
        .filter(|o| {
            field_selector.as_ref().is_none_or(|fs| {
                fs.matches(|f| match f {
                    "metadata.name" => Some(name_of(o).to_string()),
                    "metadata.namespace" => o
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    _ => None,
                })
            })
        })
        .collect();
    match &path.name {
        Some(name) => items
            .into_iter()
            .next()
            .ok_or_else(|| Status::not_found(&gr, name)),
        None => Ok(json!({
            "kind": format!("{kind}List"),
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "metadata": {},
            "items": items,
        })),
    }
}

fn metadata(obj: &Value, now: jiff::Timestamp) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(name_of(obj)));
    if let Some(ns) = obj.pointer("/metadata/namespace") {
        m.insert("namespace".into(), ns.clone());
    }
    m.insert("creationTimestamp".into(), json!(rfc3339(now)));
    if let Some(labels) = obj.pointer("/metadata/labels").filter(|l| l.is_object()) {
        m.insert("labels".into(), labels.clone());
    }
    m
}

fn usage_json(u: &Usage) -> Value {
    json!({"cpu": cpu_quantity(u.cpu_nanocores), "memory": memory_quantity(u.memory_bytes)})
}

fn node_metrics(node: &Value, u: &Usage, now: jiff::Timestamp) -> Value {
    json!({
        "kind": "NodeMetrics",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": metadata(node, now),
        "timestamp": rfc3339_ms(u.timestamp_ms),
        "window": go_duration(u.window_ms),
        "usage": usage_json(u),
    })
}

fn pod_metrics(pod: &Value, p: &PodUsage, now: jiff::Timestamp) -> Value {
    let containers: Vec<Value> = p
        .containers
        .iter()
        .map(|(name, u)| json!({"name": name, "usage": usage_json(u)}))
        .collect();
    json!({
        "kind": "PodMetrics",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": metadata(pod, now),
        "timestamp": rfc3339_ms(p.timestamp_ms),
        "window": go_duration(p.window_ms),
        "containers": containers,
    })
}

fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn rfc3339_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(rfc3339)
        .unwrap_or_default()
}

/// CPU in nanocores as metrics-server writes it (a decimal quantity, canonical form).
pub fn cpu_quantity(nanocores: u64) -> String {
    k1s_apimachinery::Quantity::parse(&format!("{nanocores}n"))
        .map(|q| q.canonical())
        .unwrap_or_else(|_| format!("{nanocores}n"))
}

/// Memory in bytes as metrics-server writes it (a binary quantity, canonical form).
pub fn memory_quantity(bytes: u64) -> String {
    let q = k1s_apimachinery::Quantity::from_i64(
        i64::try_from(bytes).unwrap_or(i64::MAX),
        k1s_apimachinery::quantity::Format::BinarySI,
    );
    q.canonical()
}

/// A duration as Go's `time.Duration.String` writes it (`15.004s`, `1m0.5s`, `500ms`).
pub fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms < 1000 {
        return format!("{sign}{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
    let s_ms = ms % 60_000;
    let mut secs = format!("{}", s_ms / 1000);
    if !s_ms.is_multiple_of(1000) {
        let frac = format!("{:03}", s_ms % 1000);
        secs = format!("{secs}.{}", frac.trim_end_matches('0'));
    }
    match (h, m) {
        (0, 0) => format!("{sign}{secs}s"),
        (0, m) => format!("{sign}{m}m{secs}s"),
        (h, m) => format!("{sign}{h}h{m}m{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestApiServer;

    fn point(ts: i64, cpu: u64, mem: u64) -> prometheus::Point {
        prometheus::Point {
            timestamp_ms: ts,
            cpu_ns: cpu,
            memory_bytes: mem,
            start_time: Some(1.0),
        }
    }

    #[tokio::test]
    async fn nodes_and_pods_are_served_with_get_and_list_only() {
        let server = TestApiServer::new().await;
        let api = server.api();
        let (code, _) = api
            .call("GET", "/apis/metrics.k8s.io/v1beta1", &json!({}))
            .await;
        assert_eq!(code, 404, "not served before the scraper starts");
        let store = server
            .server
            .resource_metrics
            .get_or_init(|| Arc::new(MetricsStore::default()))
            .clone();
        api.create(
            "/api/v1/nodes",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"zone": "a"}}}),
        )
        .await;
        for (name, app) in [("p1", "web"), ("p2", "db")] {
            api.create(
                "/api/v1/namespaces/default/pods",
                json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "labels": {"app": app}},
                       "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
            )
            .await;
        }
        for (ts, cpu) in [(1_700_000_000_000, 0), (1_700_000_015_000, 1_500_000_000)] {
            let mut s = prometheus::Scrape {
                node: Some(point(ts, cpu * 2, 1 << 30)),
                ..Default::default()
            };
            for pod in ["p1", "p2"] {
                s.containers.insert(
                    ("default".into(), pod.into(), "c".into()),
                    point(ts, cpu, 64 << 20),
                );
            }
            store.record("n1", s);
        }
        let (code, node) = api
            .call("GET", "/apis/metrics.k8s.io/v1beta1/nodes/n1", &json!({}))
            .await;
        assert_eq!(code, 200, "{node}");
        assert_eq!(node["kind"], "NodeMetrics");
        assert_eq!(node["metadata"]["labels"]["zone"], "a");
        assert_eq!(node["window"], "15s");
        assert_eq!(node["timestamp"], "2023-11-14T22:13:35Z");
        assert_eq!(node["usage"], json!({"cpu": "200m", "memory": "1Gi"}));
        let (code, pods) = api
            .call(
                "GET",
                "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb",
                &json!({}),
            )
            .await;
        assert_eq!(code, 200, "{pods}");
        assert_eq!(pods["kind"], "PodMetricsList");
        let items = pods["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{pods}");
        assert_eq!(items[0]["metadata"]["name"], "p1");
        assert_eq!(
            items[0]["containers"],
            json!([{"name": "c", "usage": {"cpu": "100m", "memory": "64Mi"}}])
        );
        let (_, all) = api
            .call("GET", "/apis/metrics.k8s.io/v1beta1/pods", &json!({}))
            .await;
        assert_eq!(all["items"].as_array().map(Vec::len), Some(2), "{all}");
        let (code, missing) = api
            .call(
                "GET",
                "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/none",
                &json!({}),
            )
            .await;
        assert_eq!(code, 404);
        assert_eq!(
            missing["message"],
            "podmetrics.metrics.k8s.io \"none\" not found"
        );
        for (method, uri, code) in [
            ("POST", "/apis/metrics.k8s.io/v1beta1/nodes", 405),
            ("DELETE", "/apis/metrics.k8s.io/v1beta1/nodes/n1", 405),
            (
                "PUT",
                "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/p1",
                405,
            ),
            ("GET", "/apis/metrics.k8s.io/v1beta1/services", 404),
            ("GET", "/apis/metrics.k8s.io/v1/nodes", 404),
            (
                "GET",
                "/apis/metrics.k8s.io/v1beta1/namespaces/default/nodes",
                404,
            ),
        ] {
            let (got, body) = api.call(method, uri, &json!({})).await;
            assert_eq!(got, code, "{method} {uri}: {body}");
        }
        // Discovery lists the group, with get and list only.
        let (_, groups) = api.call("GET", "/apis", &json!({})).await;
        assert!(
            groups["groups"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g["name"] == GROUP)),
            "{groups}"
        );
        let (code, list) = api
            .call("GET", "/apis/metrics.k8s.io/v1beta1", &json!({}))
            .await;
        assert_eq!(code, 200);
        assert_eq!(list, resource_list());
        let (code, group) = api.call("GET", "/apis/metrics.k8s.io", &json!({})).await;
        assert_eq!(code, 200);
        assert_eq!(group["preferredVersion"]["version"], "v1beta1");
    }

    #[test]
    fn quantities_and_windows_read_as_metrics_servers() {
        assert_eq!(cpu_quantity(123_456), "123456n");
        assert_eq!(cpu_quantity(5_000_000), "5m");
        assert_eq!(cpu_quantity(0), "0");
        assert_eq!(memory_quantity(1_048_576), "1Mi");
        assert_eq!(memory_quantity(14_716_928), "14372Ki");
        assert_eq!(memory_quantity(1_234_567), "1234567");
        assert_eq!(go_duration(15_004), "15.004s");
        assert_eq!(go_duration(15_000), "15s");
        assert_eq!(go_duration(60_500), "1m0.5s");
        assert_eq!(go_duration(500), "500ms");
        assert_eq!(go_duration(3_723_000), "1h2m3s");
    }
}

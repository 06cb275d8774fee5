//! Discovery: `/api`, `/apis`, per-group and per-version resource lists, and the
//! aggregated form (`apidiscovery.k8s.io` v2 and v2beta1) that kubectl 1.27+ asks for.

use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::ApiServer;
use crate::handlers::negotiation::parse_accept;
use crate::handlers::{not_found, response};
use crate::registry::{Resource, Snapshot, Subresource};

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// The aggregated-discovery version the client asked for, if any.
fn aggregated_version(accept: Option<&str>) -> Option<&'static str> {
    for m in parse_accept(accept) {
        if m.essence == "application/json"
            && m.param("g") == Some("apidiscovery.k8s.io")
            && m.param("as") == Some("APIGroupDiscoveryList")
        {
            match m.param("v") {
                Some("v2") => return Some("v2"),
                Some("v2beta1") => return Some("v2beta1"),
                _ => {}
            }
        }
        m.param("as")?;
    }
    None
}

fn server_addresses(server: &ApiServer) -> Value {
    json!([{"clientCIDR": "0.0.0.0/0", "serverAddress": server.config.advertise_address}])
}

/// `GET /`: the paths served.
pub fn root_paths(server: &ApiServer) -> Response {
    let snap = server.registry.snapshot();
    let mut paths = vec![
        "/api".to_string(),
        "/api/v1".to_string(),
        "/apis".to_string(),
    ];
    for g in snap.groups().iter().filter(|g| !g.group.is_empty()) {
        paths.push(format!("/apis/{}", g.group));
        for v in &g.versions {
            paths.push(format!("/apis/{}/{v}", g.group));
        }
    }
    paths.extend(
        [
            "/healthz",
            "/livez",
            "/openapi/v2",
            "/openapi/v3",
            "/readyz",
            "/version",
        ]
        .map(String::from),
    );
    response::json(StatusCode::OK, &json!({ "paths": paths }))
}

/// `GET /api`.
pub fn legacy_root(server: &ApiServer, accept: Option<&str>) -> Response {
    if let Some(v) = aggregated_version(accept) {
        return aggregated(server, true, v);
    }
    response::json(
        StatusCode::OK,
        &json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": server_addresses(server),
        }),
    )
}

fn group_json(snap: &Snapshot, group: &str) -> Option<Value> {
    let g = snap.groups().iter().find(|g| g.group == group)?;
    let versions: Vec<Value> = g
        .versions
        .iter()
        .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    Some(json!({"name": group, "versions": versions, "preferredVersion": preferred}))
}

/// `GET /apis`.
pub fn groups(server: &ApiServer, accept: Option<&str>) -> Response {
    if let Some(v) = aggregated_version(accept) {
        return aggregated(server, false, v);
    }
    let snap = server.registry.snapshot();
    let groups: Vec<Value> = snap
        .groups()
        .iter()
        .filter(|g| !g.group.is_empty())
        .filter_map(|g| group_json(&snap, &g.group))
        .collect();
    response::json(
        StatusCode::OK,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    )
}

/// `GET /apis/<group>`.
pub fn group(server: &ApiServer, group: &str) -> Response {
    let snap = server.registry.snapshot();
    match group_json(&snap, group).filter(|_| !group.is_empty()) {
        Some(mut g) => {
            g["kind"] = json!("APIGroup");
            g["apiVersion"] = json!("v1");
            response::json(StatusCode::OK, &g)
        }
        None => response::status(&not_found()),
    }
}

fn sub_kind(r: &Resource, sub: Subresource) -> (String, String, String) {
    match sub {
        Subresource::Scale => ("autoscaling".into(), "v1".into(), "Scale".into()),
        Subresource::Status | Subresource::Finalize => {
            (String::new(), String::new(), r.info.kind.clone())
        }
    }
}

/// `GET /api/v1` or `/apis/<group>/<version>`.
pub fn resource_list(server: &ApiServer, group: &str, version: &str) -> Response {
    let snap = server.registry.snapshot();
    let mut resources: Vec<Value> = Vec::new();
    for r in snap.resources_of(group, version) {
        let i = &r.info;
        let mut entry = json!({
            "name": i.plural,
            "singularName": i.singular,
            "namespaced": i.namespaced,
            "kind": i.kind,
            "verbs": i.verbs,
        });
        if !i.short_names.is_empty() {
            entry["shortNames"] = json!(i.short_names);
        }
        if !i.categories.is_empty() {
            entry["categories"] = json!(i.categories);
        }
        resources.push(entry);
        for sub in &i.subresources {
            let (g, v, k) = sub_kind(r, *sub);
            let mut e = json!({
                "name": format!("{}/{}", i.plural, sub.as_str()),
                "singularName": "",
                "namespaced": i.namespaced,
                "kind": k,
                "verbs": sub.verbs(),
            });
            if !g.is_empty() {
                e["group"] = json!(g);
                e["version"] = json!(v);
            }
            resources.push(e);
        }
    }
    if resources.is_empty() {
        return response::status(&not_found());
    }
    response::json(
        StatusCode::OK,
        &json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version(group, version),
            "resources": resources,
        }),
    )
}

fn aggregated_resource(r: &Resource) -> Value {
    let i = &r.info;
    let mut e = json!({
        "resource": i.plural,
        "responseKind": {"group": "", "version": "", "kind": i.kind},
        "scope": if i.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": i.singular,
        "verbs": i.verbs,
    });
    if !i.short_names.is_empty() {
        e["shortNames"] = json!(i.short_names);
    }
    if !i.categories.is_empty() {
        e["categories"] = json!(i.categories);
    }
    if !i.subresources.is_empty() {
        e["subresources"] = json!(
            i.subresources
                .iter()
                .map(|s| {
                    let (g, v, k) = sub_kind(r, *s);
                    json!({
                        "subresource": s.as_str(),
                        "responseKind": {"group": g, "version": v, "kind": k},
                        "verbs": s.verbs(),
                    })
                })
                .collect::<Vec<_>>()
        );
    }
    e
}

/// The aggregated document of the core group (`legacy`) or of every other group.
fn aggregated(server: &ApiServer, legacy: bool, version: &str) -> Response {
    let snap = server.registry.snapshot();
    let items: Vec<Value> = snap
        .groups()
        .iter()
        .filter(|g| g.group.is_empty() == legacy)
        .map(|g| {
            let versions: Vec<Value> = g
                .versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = snap
                        .resources_of(&g.group, v)
                        .map(|r| aggregated_resource(r))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g.group, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    });
    let mut r = response::json(StatusCode::OK, &body);
    let ct = format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    if let Ok(v) = HeaderValue::from_str(&ct) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

//! Remote APIServices in this server's discovery: `/apis`, `/apis/<group>` and the
//! aggregated document list the extension servers' groups after the server's own, from
//! the discovery documents the controller fetched.

use serde_json::{Value, json};

use super::Remote;
use crate::ApiServer;

fn group_version(r: &Remote) -> String {
    format!("{}/{}", r.group, r.version)
}

/// The `APIGroup` entries of the remote groups (for `/apis`), in discovery order; none
/// for a group the server serves itself.
pub fn groups(server: &ApiServer) -> Vec<Value> {
    let snap = server.registry.snapshot();
    server
        .aggregator
        .remote_groups()
        .into_iter()
        .filter(|(g, _)| !snap.groups().iter().any(|s| &s.group == g))
        .map(|(g, versions)| group_json(&g, &versions))
        .collect()
}

/// The `APIGroup` of a remote group, if one is registered.
pub fn group(server: &ApiServer, group: &str) -> Option<Value> {
    let versions = server.aggregator.remote_group(group);
    (!versions.is_empty()).then(|| group_json(group, &versions))
}

fn group_json(group: &str, versions: &[std::sync::Arc<Remote>]) -> Value {
    let list: Vec<Value> = versions
        .iter()
        .map(|r| json!({"groupVersion": group_version(r), "version": r.version}))
        .collect();
    let preferred = list.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": list, "preferredVersion": preferred})
}

/// The paths of the remote group-versions (for `/`).
pub fn paths(server: &ApiServer) -> Vec<String> {
    let mut out = Vec::new();
    for (g, versions) in server.aggregator.remote_groups() {
        out.push(format!("/apis/{g}"));
        for r in versions {
            out.push(format!("/apis/{}", group_version(&r)));
        }
    }
    out
}

/// The aggregated-discovery entries (`APIGroupDiscovery`) of the remote groups whose
/// extension servers answered discovery at least once; an unavailable one keeps its
/// last document, marked `Stale`, as upstream's discovery manager does.
pub fn aggregated(server: &ApiServer) -> Vec<Value> {
    let snap = server.registry.snapshot();
    let mut out = Vec::new();
    for (g, versions) in server.aggregator.remote_groups() {
        if snap.groups().iter().any(|s| s.group == g) {
            continue;
        }
        let versions: Vec<Value> = versions
            .iter()
            .filter_map(|r| {
                let doc = r.discovery.as_ref()?;
                Some(json!({
                    "version": r.version,
                    "resources": aggregated_resources(doc),
                    "freshness": if r.available { "Current" } else { "Stale" },
                }))
            })
            .collect();
        if !versions.is_empty() {
            out.push(
                json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions}),
            );
        }
    }
    out
}

/// An `APIResourceList` in the aggregated form: one entry per resource, its
/// subresources (`<resource>/<sub>`) folded into it.
fn aggregated_resources(list: &Value) -> Vec<Value> {
    let items = list
        .get("resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut out: Vec<Value> = Vec::new();
    for r in items.iter().filter(|r| !s(r, "name").contains('/')) {
        let mut e = json!({
            "resource": s(r, "name"),
            "responseKind": {"group": s(r, "group"), "version": s(r, "version"), "kind": s(r, "kind")},
            "scope": if r.get("namespaced").and_then(Value::as_bool).unwrap_or(false) { "Namespaced" } else { "Cluster" },
            "singularResource": s(r, "singularName"),
            "verbs": r.get("verbs").cloned().unwrap_or(json!([])),
        });
        for k in ["shortNames", "categories"] {
            if let Some(v) = r
                .get(k)
                .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            {
                e[k] = v.clone();
            }
        }
        out.push(e);
    }
    for r in items.iter() {
        let name = s(r, "name");
        let Some((parent, sub)) = name.split_once('/') else {
            continue;
        };
        if let Some(p) = out.iter_mut().find(|e| e["resource"] == parent) {
            let entry = json!({
                "subresource": sub,
                "responseKind": {"group": s(r, "group"), "version": s(r, "version"), "kind": s(r, "kind")},
                "verbs": r.get("verbs").cloned().unwrap_or(json!([])),
            });
            match p.get_mut("subresources").and_then(Value::as_array_mut) {
                Some(list) => list.push(entry),
                None => p["subresources"] = json!([entry]),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_list_folds_into_the_aggregated_form() {
        let list = json!({"kind": "APIResourceList", "groupVersion": "wardle.example.com/v1alpha1",
        "resources": [
            {"name": "flunders", "singularName": "flunder", "namespaced": true, "kind": "Flunder",
             "verbs": ["get", "list"], "shortNames": ["fl"]},
            {"name": "flunders/status", "singularName": "", "namespaced": true, "kind": "Flunder",
             "verbs": ["get"]},
        ]});
        let got = aggregated_resources(&list);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["resource"], "flunders");
        assert_eq!(got[0]["scope"], "Namespaced");
        assert_eq!(got[0]["shortNames"], json!(["fl"]));
        assert_eq!(got[0]["subresources"][0]["subresource"], "status");
    }
}

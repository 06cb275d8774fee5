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
    if crate::metrics::served(server) {
        paths.push(format!("/apis/{}", crate::metrics::GROUP));
        paths.push(format!(
            "/apis/{}/{}",
            crate::metrics::GROUP,
            crate::metrics::VERSION
        ));
    }
    paths.extend(crate::aggregator::discovery::paths(server));
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
    let mut groups: Vec<Value> = snap
        .groups()
        .iter()
        .filter(|g| !g.group.is_empty())
        .filter_map(|g| group_json(&snap, &g.group))
        .collect();
    // Aggregated groups come after the server's own, as upstream lists them.
    if crate::metrics::served(server) {
        groups.push(crate::metrics::group_json());
    }
    groups.extend(crate::aggregator::discovery::groups(server));
    response::json(
        StatusCode::OK,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    )
}

/// `GET /apis/<group>`.
pub fn group(server: &ApiServer, group: &str) -> Response {
    let snap = server.registry.snapshot();
    let found = if group == crate::metrics::GROUP && crate::metrics::served(server) {
        Some(crate::metrics::group_json())
    } else {
        group_json(&snap, group).or_else(|| crate::aggregator::discovery::group(server, group))
    };
    match found.filter(|_| !group.is_empty()) {
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
        Subresource::Token => (
            "authentication.k8s.io".into(),
            "v1".into(),
            "TokenRequest".into(),
        ),
        Subresource::Eviction => ("policy".into(), "v1".into(), "Eviction".into()),
        Subresource::Status
        | Subresource::Finalize
        | Subresource::Approval
        | Subresource::EphemeralContainers
        | Subresource::Resize => (String::new(), String::new(), r.info.kind.clone()),
        Subresource::Binding => (String::new(), String::new(), "Binding".into()),
        Subresource::Log => (String::new(), String::new(), "Pod".into()),
        Subresource::Exec => (String::new(), String::new(), "PodExecOptions".into()),
        Subresource::Attach => (String::new(), String::new(), "PodAttachOptions".into()),
        Subresource::PortForward => (String::new(), String::new(), "PodPortForwardOptions".into()),
    }
}

/// The subresources of a resource in upstream's discovery order, by name
/// (`namespaces/finalize` before `namespaces/status`, `deployments/scale` before
/// `deployments/status`).
pub fn subresources_by_name(r: &Resource) -> Vec<Subresource> {
    let mut subs = r.info.subresources.clone();
    subs.sort_by_key(|s| s.as_str());
    subs
}

/// Upstream's `storageVersionHash`: the first 8 bytes of the SHA-256 of
/// `<group>/<version>/<kind>` of the stored version, in standard base64. Storage
/// migrators compare it to notice a changed storage version.
pub fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{group}/{version}/{kind}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(&digest.as_ref()[..8])
}

/// `GET /api/v1` or `/apis/<group>/<version>`.
pub fn resource_list(server: &ApiServer, group: &str, version: &str) -> Response {
    if group == crate::metrics::GROUP {
        return if version == crate::metrics::VERSION && crate::metrics::served(server) {
            response::json(StatusCode::OK, &crate::metrics::resource_list())
        } else {
            response::status(&not_found())
        };
    }
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
        // Only what is kept in storage has a storage version (not componentstatuses,
        // bindings or the review kinds); everything stored can be watched.
        if i.supports("watch") {
            let stored = if i.storage_version {
                i
            } else {
                snap.storage_resource(&i.key_prefix).map_or(i, |r| &r.info)
            };
            entry["storageVersionHash"] = json!(storage_version_hash(
                &stored.group,
                &stored.version,
                &stored.kind
            ));
        }
        resources.push(entry);
        for sub in &subresources_by_name(r) {
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
            subresources_by_name(r)
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
    let mut items: Vec<Value> = snap
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
    if !legacy && crate::metrics::served(server) {
        items.push(crate::metrics::aggregated_json());
    }
    if !legacy {
        items.extend(crate::aggregator::discovery::aggregated(server));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every verb of an ordinary read-write resource.
    const ALL: &[&str] = &[
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ];
    /// Verbs of `status` and `scale` subresources.
    const GPU: &[&str] = &["get", "patch", "update"];
    /// Subresources with their verbs.
    type Subs = &'static [(&'static str, &'static [&'static str])];
    /// Group, version, resource, verbs, subresources.
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
        Subs,
    );
    const STATUS: Subs = &[("status", GPU)];
    const SCALE_STATUS: Subs = &[("scale", GPU), ("status", GPU)];
    const NONE: Subs = &[];

    /// Upstream 1.35's discovery (`api/discovery/api__v1.json`, `apis__<group>__<v>.json`)
    /// for every resource k1s serves: verbs, and the subresources of the kinds the generic
    /// registry implements (status, scale, finalize, pods/binding, pods/eviction,
    /// pods/ephemeralcontainers, pods/resize, serviceaccounts/token,
    /// certificatesigningrequests/approval) and the pods' streaming ones (log, exec,
    /// attach, portforward) with theirs. Upstream's other subresources (pods/proxy;
    /// nodes/proxy; services/proxy) are not served by k1s and so not listed.
    #[rustfmt::skip]
    const UPSTREAM: &[Row] = &[
        ("", "v1", "bindings", &["create"], NONE),
        ("authentication.k8s.io", "v1", "selfsubjectreviews", &["create"], NONE),
        ("authentication.k8s.io", "v1", "tokenreviews", &["create"], NONE),
        ("authorization.k8s.io", "v1", "localsubjectaccessreviews", &["create"], NONE),
        ("authorization.k8s.io", "v1", "selfsubjectaccessreviews", &["create"], NONE),
        ("authorization.k8s.io", "v1", "selfsubjectrulesreviews", &["create"], NONE),
        ("authorization.k8s.io", "v1", "subjectaccessreviews", &["create"], NONE),
        ("", "v1", "componentstatuses", &["get", "list"], NONE),
        ("", "v1", "configmaps", ALL, NONE),
        ("", "v1", "endpoints", ALL, NONE),
        ("", "v1", "events", ALL, NONE),
        ("", "v1", "limitranges", ALL, NONE),
        ("", "v1", "namespaces", &["create", "delete", "get", "list", "patch", "update", "watch"],
            &[("finalize", &["update"]), ("status", GPU)]),
        ("", "v1", "nodes", ALL, STATUS),
        ("", "v1", "persistentvolumeclaims", ALL, STATUS),
        ("", "v1", "persistentvolumes", ALL, STATUS),
        ("", "v1", "pods", ALL, &[("attach", &["create", "get"]), ("binding", &["create"]),
            ("ephemeralcontainers", GPU), ("eviction", &["create"]), ("exec", &["create", "get"]), ("log", &["get"]), ("portforward", &["create", "get"]), ("resize", GPU), ("status", GPU)]),
        ("", "v1", "podtemplates", ALL, NONE),
        ("", "v1", "replicationcontrollers", ALL, SCALE_STATUS),
        ("", "v1", "resourcequotas", ALL, STATUS),
        ("", "v1", "secrets", ALL, NONE),
        ("", "v1", "serviceaccounts", ALL, &[("token", &["create"])]),
        ("", "v1", "services", ALL, STATUS),
        ("apps", "v1", "controllerrevisions", ALL, NONE),
        ("apps", "v1", "daemonsets", ALL, STATUS),
        ("apps", "v1", "deployments", ALL, SCALE_STATUS),
        ("apps", "v1", "replicasets", ALL, SCALE_STATUS),
        ("apps", "v1", "statefulsets", ALL, SCALE_STATUS),
        ("batch", "v1", "cronjobs", ALL, STATUS),
        ("batch", "v1", "jobs", ALL, STATUS),
        ("autoscaling", "v1", "horizontalpodautoscalers", ALL, STATUS),
        ("autoscaling", "v2", "horizontalpodautoscalers", ALL, STATUS),
        ("networking.k8s.io", "v1", "ingressclasses", ALL, NONE),
        ("networking.k8s.io", "v1", "ingresses", ALL, STATUS),
        ("networking.k8s.io", "v1", "ipaddresses", ALL, NONE),
        ("networking.k8s.io", "v1", "networkpolicies", ALL, NONE),
        ("networking.k8s.io", "v1", "servicecidrs", ALL, STATUS),
        ("policy", "v1", "poddisruptionbudgets", ALL, STATUS),
        ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", ALL, NONE),
        ("rbac.authorization.k8s.io", "v1", "clusterroles", ALL, NONE),
        ("rbac.authorization.k8s.io", "v1", "rolebindings", ALL, NONE),
        ("rbac.authorization.k8s.io", "v1", "roles", ALL, NONE),
        ("coordination.k8s.io", "v1", "leases", ALL, NONE),
        ("discovery.k8s.io", "v1", "endpointslices", ALL, NONE),
        ("storage.k8s.io", "v1", "csidrivers", ALL, NONE),
        ("storage.k8s.io", "v1", "csinodes", ALL, NONE),
        ("storage.k8s.io", "v1", "csistoragecapacities", ALL, NONE),
        ("storage.k8s.io", "v1", "storageclasses", ALL, NONE),
        ("storage.k8s.io", "v1", "volumeattachments", ALL, STATUS),
        ("storage.k8s.io", "v1", "volumeattributesclasses", ALL, NONE),
        ("scheduling.k8s.io", "v1", "priorityclasses", ALL, NONE),
        ("node.k8s.io", "v1", "runtimeclasses", ALL, NONE),
        ("certificates.k8s.io", "v1", "certificatesigningrequests", ALL,
            &[("approval", GPU), ("status", GPU)]),
        ("events.k8s.io", "v1", "events", ALL, NONE),
        ("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", ALL, NONE),
        ("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", ALL, NONE),
        ("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", ALL, STATUS),
        ("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings", ALL, NONE),
        ("apiextensions.k8s.io", "v1", "customresourcedefinitions", ALL, STATUS),
        ("apiregistration.k8s.io", "v1", "apiservices", ALL, STATUS),
        ("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", ALL, STATUS),
        ("flowcontrol.apiserver.k8s.io", "v1", "prioritylevelconfigurations", ALL, STATUS),
        ("resource.k8s.io", "v1", "deviceclasses", ALL, NONE),
        ("resource.k8s.io", "v1", "resourceclaims", ALL, STATUS),
        ("resource.k8s.io", "v1", "resourceclaimtemplates", ALL, NONE),
        ("resource.k8s.io", "v1", "resourceslices", ALL, NONE),
    ];

    #[test]
    fn every_served_resource_has_upstreams_verbs_and_subresources() {
        let served = &crate::fuzz::builtin().resources;
        let mut problems = Vec::new();
        for r in served {
            let i = &r.info;
            let Some((.., verbs, subs)) = UPSTREAM
                .iter()
                .find(|(g, v, p, ..)| *g == i.group && *v == i.version && *p == i.plural)
            else {
                problems.push(format!(
                    "{}/{} {}: not in the table",
                    i.group, i.version, i.plural
                ));
                continue;
            };
            if i.verbs != *verbs {
                problems.push(format!(
                    "{}: verbs {:?}, upstream {:?}",
                    i.plural, i.verbs, verbs
                ));
            }
            let ours: Vec<(&str, &[&str])> = subresources_by_name(r)
                .iter()
                .map(|s| (s.as_str(), s.verbs()))
                .collect();
            if ours != *subs {
                problems.push(format!(
                    "{}: subresources {ours:?}, upstream {subs:?}",
                    i.plural
                ));
            }
        }
        for (g, v, p, ..) in UPSTREAM {
            if !served
                .iter()
                .any(|r| r.info.group == *g && r.info.version == *v && r.info.plural == *p)
            {
                problems.push(format!("{g}/{v} {p}: in the table but not served"));
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }
}

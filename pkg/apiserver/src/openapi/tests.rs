//! The published documents against what the server serves: every `$ref` resolves, every
//! served operation is listed (and only those), operations have upstream's shape, and
//! kubectl's protobuf form still encodes.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::auth::UserInfo;
use crate::test_util::TestApiServer;

/// One request as a cluster admin; the status and, unless `stream`, the body as JSON.
async fn send(
    api: &TestApiServer,
    method: &str,
    uri: &str,
    body: Value,
    stream: bool,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(
            http::header::CONTENT_TYPE,
            if method == "PATCH" {
                "application/merge-patch+json"
            } else {
                "application/json"
            },
        )
        .body(Body::from(body.to_string()))
        .expect("a valid request");
    req.extensions_mut().insert(UserInfo::loopback());
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        crate::handlers::handle(api.server.clone(), req),
    )
    .await
    .unwrap_or_else(|_| panic!("{method} {uri} did not answer"));
    let status = resp.status();
    if stream {
        return (status, Value::Null);
    }
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A namespaced CRD with status and scale, in two versions.
fn crontab_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"},
            "versions": [
                {"name": "v1", "served": true, "storage": true,
                 "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                     "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
                     "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}},
                 "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}},
                {"name": "v1beta1", "served": true, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
            ],
        }
    })
}

/// A server with the CRD above established.
async fn server_with_crd() -> TestApiServer {
    let api = TestApiServer::new().await;
    let (code, body) = send(
        &api,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        crontab_crd(),
        false,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while api
        .server
        .registry
        .snapshot()
        .get("stable.example.com", "v1beta1", "crontabs")
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the CRD is never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    api
}

/// Every `$ref` of a document and whether it resolves there.
fn dangling_refs(doc: &Value) -> Vec<String> {
    let mut refs = Vec::new();
    refs_in(doc, "#/", &mut refs);
    refs.sort();
    refs.dedup();
    refs.into_iter()
        // Definition and parameter names hold no `/` or `~`: the reference is the pointer.
        .filter(|r| doc.pointer(&format!("/{r}")).is_none())
        .collect()
}

/// The path × method pairs of a document's `paths`.
fn operations_of(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(k, _)| k) {
            if method != "parameters" {
                out.insert((path.clone(), method.clone()));
            }
        }
    }
    out
}

/// What discovery says is served, as upstream's router would route it: from each group
/// version's `APIResourceList` (verbs, scope, subresources), the paths and methods.
async fn served_per_discovery(api: &TestApiServer) -> BTreeSet<(String, String)> {
    let snap = api.server.registry.snapshot();
    let mut out = BTreeSet::new();
    let mut add = |path: String, method: &str| {
        out.insert((path, method.to_string()));
    };
    add("/api/".into(), "get");
    add("/apis/".into(), "get");
    add("/version/".into(), "get");
    for g in snap.groups() {
        if !g.group.is_empty() {
            add(format!("/apis/{}/", g.group), "get");
        }
        for v in &g.versions {
            let base = if g.group.is_empty() {
                format!("/api/{v}")
            } else {
                format!("/apis/{}/{v}", g.group)
            };
            add(format!("{base}/"), "get");
            let (code, list) = send(api, "GET", &base, Value::Null, false).await;
            assert_eq!(code, StatusCode::OK);
            for e in list["resources"].as_array().into_iter().flatten() {
                let name = e["name"].as_str().unwrap_or_default();
                let namespaced = e["namespaced"] == json!(true);
                let verbs: Vec<&str> = e["verbs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let (plural, sub) = match name.split_once('/') {
                    Some((p, s)) => (p, Some(s)),
                    None => (name, None),
                };
                let scope = if namespaced {
                    "/namespaces/{namespace}"
                } else {
                    ""
                };
                let collection = format!("{base}{scope}/{plural}");
                let item = format!("{collection}/{{name}}");
                if let Some(sub) = sub {
                    for verb in verbs {
                        let method = match verb {
                            "get" => "get",
                            "update" => "put",
                            "patch" => "patch",
                            "create" => "post",
                            other => panic!("unexpected subresource verb {other}"),
                        };
                        add(format!("{item}/{sub}"), method);
                    }
                    continue;
                }
                let custom = snap.get(&g.group, v, plural).is_some_and(|r| r.info.custom);
                for verb in verbs {
                    match verb {
                        "list" => {
                            add(collection.clone(), "get");
                            if namespaced {
                                add(format!("{base}/{plural}"), "get");
                            }
                        }
                        "create" => add(collection.clone(), "post"),
                        "deletecollection" => add(collection.clone(), "delete"),
                        "get" => add(item.clone(), "get"),
                        "update" => add(item.clone(), "put"),
                        "patch" => add(item.clone(), "patch"),
                        "delete" => add(item.clone(), "delete"),
                        // Upstream lists the legacy watch paths of built-in kinds only.
                        "watch" if !custom => {
                            add(format!("{base}/watch{scope}/{plural}"), "get");
                            add(format!("{base}/watch{scope}/{plural}/{{name}}"), "get");
                            if namespaced {
                                add(format!("{base}/watch/{plural}"), "get");
                            }
                        }
                        "watch" => {}
                        other => panic!("unexpected verb {other}"),
                    }
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn every_ref_resolves_in_v2_and_in_every_v3_document() {
    let api = server_with_crd().await;
    let snap = api.server.registry.snapshot();
    let v2 = document_v2(&snap);
    assert_eq!(dangling_refs(&v2), Vec::<String>::new(), "v2");
    let docs = documents_v3(&snap);
    for key in [
        "api",
        "apis",
        "version",
        "api/v1",
        "apis/apps",
        "apis/apps/v1",
        "apis/stable.example.com/v1",
    ] {
        assert!(docs.contains_key(key), "no v3 document {key}");
    }
    for (path, doc) in &docs {
        assert_eq!(dangling_refs(doc), Vec::<String>::new(), "v3 {path}");
    }
}

#[tokio::test]
async fn every_list_kind_scale_and_meta_type_is_defined() {
    let api = server_with_crd().await;
    let snap = api.server.registry.snapshot();
    let v2 = document_v2(&snap);
    let defs = &v2["definitions"];
    for name in [
        "io.k8s.api.apps.v1.DeploymentList",
        "io.k8s.api.core.v1.PodList",
        "io.k8s.api.core.v1.ComponentStatusList",
        "io.k8s.api.events.v1.EventList",
        "io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerList",
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerList",
        "com.example.stable.v1.CronTabList",
        "com.example.stable.v1beta1.CronTabList",
        "io.k8s.api.autoscaling.v1.Scale",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
    ] {
        assert!(defs.get(name).is_some(), "{name} is not defined");
    }
    for r in snap.all().filter(|r| r.info.supports("list")) {
        let list = &defs[defs::list_name(r)];
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            json!(format!("#/definitions/{}", r.info.definition))
        );
        assert_eq!(
            list["x-kubernetes-group-version-kind"],
            json!([{"group": r.info.group, "kind": format!("{}List", r.info.kind), "version": r.info.version}])
        );
    }
    assert!(
        defs.get("io.k8s.api.core.v1.BindingList").is_none(),
        "bindings cannot be listed"
    );
    // A group version's document carries its lists and, where a kind scales, Scale.
    let apps = &documents_v3(&snap)["apis/apps/v1"]["components"]["schemas"];
    for name in [
        "io.k8s.api.apps.v1.DeploymentList",
        "io.k8s.api.autoscaling.v1.Scale",
    ] {
        assert!(apps.get(name).is_some(), "apps/v1 lacks {name}");
    }
}

#[tokio::test]
async fn the_documents_list_exactly_what_discovery_says_is_served() {
    let api = server_with_crd().await;
    let snap = api.server.registry.snapshot();
    let expected = served_per_discovery(&api).await;
    let v2 = operations_of(&document_v2(&snap));
    let missing: Vec<_> = expected.difference(&v2).collect();
    let extra: Vec<_> = v2.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "v2 lacks {missing:#?}\nv2 has more {extra:#?}"
    );
    let mut v3 = BTreeSet::new();
    for (key, doc) in documents_v3(&snap) {
        for (path, method) in operations_of(&doc) {
            // Each document holds its own group version's (or group's, or root's) paths.
            assert!(
                path.trim_end_matches('/') == format!("/{key}")
                    || path.starts_with(&format!("/{key}/")),
                "{path} in the {key} document"
            );
            assert!(v3.insert((path, method)), "listed in two documents");
        }
    }
    assert_eq!(v3, expected, "v3");
    // The finding: namespaces cannot be deleted as a collection, so it is not listed.
    assert!(!v2.contains(&("/api/v1/namespaces".into(), "delete".into())));
    assert!(v2.contains(&("/api/v1/namespaces/{name}/finalize".into(), "put".into())));
    assert!(!v2.contains(&("/api/v1/namespaces/{name}/finalize".into(), "get".into())));
    assert!(v2.contains(&(
        "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/scale".into(),
        "patch".into()
    )));
    assert!(v2.contains(&("/apis/stable.example.com/v1/crontabs".into(), "get".into())));
}

#[tokio::test]
async fn every_listed_operation_is_routed() {
    // Asked for real, each listed path and method reaches a handler: no 405, and no
    // 404 of the router (a missing object's 404 names it).
    let api = server_with_crd().await;
    let snap = api.server.registry.snapshot();
    for (path, method) in operations_of(&document_v2(&snap)) {
        let uri = path
            .replace("{namespace}", "default")
            .replace("{name}", "openapi-probe");
        let watch = uri.contains("/watch/");
        let uri = match method.as_str() {
            "get" if watch => format!("{uri}?timeoutSeconds=1"),
            "get" => uri,
            _ => format!("{uri}?dryRun=All"),
        };
        let (code, body) = send(&api, &method.to_uppercase(), &uri, json!({}), watch).await;
        assert_ne!(
            code,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}: {body}"
        );
        assert!(
            !(code == StatusCode::NOT_FOUND
                && body["message"] == "the server could not find the requested resource"),
            "{method} {uri} is not routed"
        );
    }
}

#[tokio::test]
async fn operations_have_upstreams_shape() {
    let api = server_with_crd().await;
    let snap = api.server.registry.snapshot();
    let v2 = document_v2(&snap);
    let paths = &v2["paths"];
    let r = |name: &str| json!({"$ref": format!("#/parameters/{name}")});

    let cms = &paths["/api/v1/namespaces/{namespace}/configmaps"];
    assert_eq!(
        cms["parameters"],
        json!([r("namespace-vgWSWtn3"), r("pretty-tJGM1-ng")])
    );
    assert_eq!(
        cms["delete"]["operationId"],
        "deleteCoreV1CollectionNamespacedConfigMap"
    );
    assert_eq!(
        cms["delete"]["description"],
        "delete collection of ConfigMap"
    );
    assert_eq!(cms["delete"]["x-kubernetes-action"], "deletecollection");
    let names: Vec<&str> = cms["delete"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            p["$ref"]
                .as_str()
                .or(p["name"].as_str())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        names,
        [
            "#/parameters/body-2Y1dVQaQ",
            "#/parameters/continue-QfD61s0i",
            "dryRun",
            "#/parameters/fieldSelector-xIcQKXFG",
            "#/parameters/gracePeriodSeconds--K5HaBOS",
            "#/parameters/labelSelector-5Zw57w4C",
            "#/parameters/limit-1NfNmdNH",
            "#/parameters/orphanDependents-uRB25kX5",
            "#/parameters/propagationPolicy-6jk3prlO",
            "#/parameters/resourceVersion-5WAnf1kx",
            "#/parameters/resourceVersionMatch-t8XhRHeC",
            "#/parameters/sendInitialEvents-rLXlEK_k",
            "#/parameters/timeoutSeconds-yvYezaOC",
        ]
    );
    assert_eq!(
        cms["delete"]["responses"],
        json!({"200": {"description": "OK", "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Status"}}, "401": {"description": "Unauthorized"}})
    );
    assert_eq!(cms["get"]["operationId"], "listCoreV1NamespacedConfigMap");
    assert_eq!(
        cms["get"]["responses"]["200"]["schema"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.ConfigMapList"
    );
    assert_eq!(
        cms["post"]["operationId"],
        "createCoreV1NamespacedConfigMap"
    );
    assert_eq!(cms["post"]["description"], "create a ConfigMap");
    assert_eq!(
        cms["post"]["responses"]
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["200".into(), "201".into(), "202".into(), "401".into()])
    );

    // The namespaces collection: list and create, so only pretty is shared.
    let ns = &paths["/api/v1/namespaces"];
    assert_eq!(ns["parameters"], json!([r("pretty-tJGM1-ng")]));
    assert!(ns.get("delete").is_none());
    // Finalize takes PUT alone: everything but the body moves to the path.
    let fin = &paths["/api/v1/namespaces/{name}/finalize"];
    assert_eq!(fin["put"]["operationId"], "replaceCoreV1NamespaceFinalize");
    assert_eq!(
        fin["put"]["description"],
        "replace finalize of the specified Namespace"
    );
    assert_eq!(fin["put"]["parameters"][0]["in"], "body");
    let hoisted: Vec<&str> = fin["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            p["$ref"]
                .as_str()
                .or(p["name"].as_str())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        hoisted,
        [
            "dryRun",
            "#/parameters/fieldManager-Qy4HdaTW",
            "fieldValidation",
            "name",
            "#/parameters/pretty-tJGM1-ng"
        ]
    );

    // Scale answers with autoscaling/v1 Scale.
    let scale = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["get"]["operationId"],
        "readAppsV1NamespacedDeploymentScale"
    );
    assert_eq!(
        scale["get"]["description"],
        "read scale of the specified Deployment"
    );
    assert_eq!(
        scale["get"]["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
    );
    assert_eq!(
        scale["patch"]["responses"]["200"]["schema"]["$ref"],
        "#/definitions/io.k8s.api.autoscaling.v1.Scale"
    );
    // Deletes of pods answer with the pod; of configmaps with a Status.
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods/{name}"]["delete"]["responses"]["202"]["schema"]
            ["$ref"],
        "#/definitions/io.k8s.api.core.v1.Pod"
    );
    // Legacy watch paths and the list across namespaces.
    let w = &paths["/api/v1/watch/namespaces/{namespace}/configmaps/{name}"]["get"];
    assert_eq!(w["operationId"], "watchCoreV1NamespacedConfigMap");
    assert_eq!(w["x-kubernetes-action"], "watch");
    assert_eq!(
        paths["/api/v1/watch/configmaps"]["get"]["operationId"],
        "watchCoreV1ConfigMapListForAllNamespaces"
    );
    assert_eq!(
        paths["/api/v1/configmaps"]["get"]["operationId"],
        "listCoreV1ConfigMapForAllNamespaces"
    );
    assert_eq!(
        paths["/apis/rbac.authorization.k8s.io/v1/clusterroles"]["get"]["operationId"],
        "listRbacAuthorizationV1ClusterRole"
    );
    assert_eq!(
        paths["/apis/rbac.authorization.k8s.io/v1/clusterroles"]["get"]["tags"],
        json!(["rbacAuthorization_v1"])
    );
    assert_eq!(
        paths["/api/v1/componentstatuses"]["get"]["description"],
        "list objects of kind ComponentStatus"
    );
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/endpoints"]["post"]["description"],
        "create Endpoints"
    );
    // Custom resources: no strategic merge patch, no protobuf, no watch paths.
    let ct = &paths["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"];
    assert_eq!(
        ct["patch"]["consumes"],
        json!([
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml"
        ])
    );
    assert_eq!(
        ct["get"]["produces"],
        json!(["application/json", "application/yaml"])
    );
    assert_eq!(
        ct["get"]["operationId"],
        "readStableExampleComV1NamespacedCronTab"
    );
    // Every shared parameter referred to is defined, and only those.
    let mut used = Vec::new();
    refs_in(paths, "#/parameters/", &mut used);
    used.sort();
    used.dedup();
    let defined: Vec<String> = v2["parameters"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(used, defined);

    // v3: bodies and answers by media type.
    let docs = documents_v3(&snap);
    let cm = &docs["api/v1"]["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"];
    assert_eq!(
        cm["put"]["requestBody"],
        json!({"content": {"*/*": {"schema": {"$ref": "#/components/schemas/io.k8s.api.core.v1.ConfigMap"}}}, "required": true})
    );
    assert_eq!(
        cm["delete"]["requestBody"],
        json!({"content": {"*/*": {"schema": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"}}}})
    );
    assert_eq!(
        cm["patch"]["requestBody"]["content"]["application/apply-patch+yaml"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
    );
    assert_eq!(
        cm["get"]["responses"]["200"]["content"]["application/yaml"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.ConfigMap"
    );
    assert_eq!(
        cm["get"]["responses"]["401"],
        json!({"description": "Unauthorized"})
    );
    assert_eq!(
        cm["parameters"][0]["schema"],
        json!({"type": "string", "uniqueItems": true})
    );
}

#[tokio::test]
async fn the_v2_document_still_encodes_for_kubectl() {
    // kubectl explain and apply read /openapi/v2 as protobuf.
    let api = server_with_crd().await;
    let snap = api.server.registry.snapshot();
    let v2 = document_v2(&snap);
    let bytes = v2proto::encode_document(&v2).expect("the document encodes");
    assert!(bytes.len() > 100_000);
}

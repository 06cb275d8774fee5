//! API gaps found by trying real manifests and clients against k1s (issue 12): each test
//! sends what a chart, kubectl or a client library sends and checks upstream's answer.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::test_util::{TestApi, TestApiServer};

/// Retries `f` until it returns `Some` or twenty seconds pass (debug builds on busy
/// machines are slow).
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "gave up: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates a CRD and waits until its first served version answers.
async fn establish(api: &TestApi, crd: Value) -> Value {
    let created = api
        .create(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            crd.clone(),
        )
        .await;
    let group = crd["spec"]["group"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let plural = crd["spec"]["names"]["plural"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let version = crd["spec"]["versions"][0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let uri = format!("/apis/{group}/{version}/namespaces/default/{plural}");
    eventually("CRD served", || {
        let api = api.clone();
        let uri = uri.clone();
        async move {
            let (code, _) = api.call("GET", &uri, &Value::Null).await;
            (code == 200).then_some(())
        }
    })
    .await;
    created
}

fn crd(group: &str, plural: &str, kind: &str, versions: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": plural, "kind": kind, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
            "versions": versions,
        }
    })
}

/// The StatefulSet of upstream's documentation: `www` is a volume only through its
/// claim template.
#[tokio::test]
async fn statefulset_mounting_a_claim_template_volume_is_accepted() {
    let t = TestApiServer::new().await;
    let api = t.api();
    let sts = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "nginx"}},
            "serviceName": "nginx",
            "replicas": 3,
            "minReadySeconds": 10,
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "terminationGracePeriodSeconds": 10,
                    "containers": [{
                        "name": "nginx", "image": "registry.k8s.io/nginx-slim:0.24",
                        "ports": [{"containerPort": 80, "name": "web"}],
                        "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]
                    }]
                }
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "my-storage-class",
                         "resources": {"requests": {"storage": "1Gi"}}}
            }]
        }
    });
    let created = api
        .create("/apis/apps/v1/namespaces/default/statefulsets", sts.clone())
        .await;
    let mut update = created.clone();
    update["spec"]["replicas"] = json!(2);
    let (code, body) = api
        .call(
            "PUT",
            "/apis/apps/v1/namespaces/default/statefulsets/web",
            &update,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = api
        .call_with(
            "PATCH",
            "/apis/apps/v1/namespaces/default/statefulsets/web2?fieldManager=kubectl",
            "application/apply-patch+yaml",
            &{
                let mut s = sts;
                s["metadata"]["name"] = json!("web2");
                s
            },
        )
        .await;
    assert_eq!(code, 201, "{body}");
}

/// cert-manager's Order and Argo CD's kinds require `metadata` and `spec` at the root.
#[tokio::test]
async fn crd_root_schema_requiring_metadata_validates_the_whole_object() {
    let t = TestApiServer::new().await;
    let api = t.api();
    establish(
        &api,
        crd(
            "acme.example.com",
            "orders",
            "Order",
            json!([{"name": "v1", "served": true, "storage": true,
            "schema": {"openAPIV3Schema": {
                "type": "object", "required": ["metadata", "spec"],
                "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": {"type": "object", "properties": {"request": {"type": "string"}}}
                }}}}]),
        ),
    )
    .await;
    let uri = "/apis/acme.example.com/v1/namespaces/default/orders";
    api.create(
        uri,
        json!({"apiVersion": "acme.example.com/v1", "kind": "Order",
               "metadata": {"name": "a"}, "spec": {"request": "x"}}),
    )
    .await;
    let (code, body) = api
        .call(
            "POST",
            uri,
            &json!({"apiVersion": "acme.example.com/v1", "kind": "Order", "metadata": {"name": "b"}}),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("spec: Required value"),
        "{body}"
    );
    assert!(
        !body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("metadata"),
        "{body}"
    );
}

/// A `null` in a field that is not nullable is dropped, on every write path.
#[tokio::test]
async fn null_in_a_non_nullable_custom_field_is_pruned() {
    let t = TestApiServer::new().await;
    let api = t.api();
    establish(
        &api,
        crd(
            "nulls.example.com",
            "things",
            "Thing",
            json!([{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "a": {"type": "string"},
                        "o": {"type": "object", "properties": {"x": {"type": "integer"}}},
                        "n": {"type": "string", "nullable": true},
                        "l": {"type": "array", "items": {"type": "object", "properties": {"y": {"type": "string"}}}}
                    }}}}}}]),
        ),
    )
    .await;
    let uri = "/apis/nulls.example.com/v1/namespaces/default/things";
    let obj = json!({"apiVersion": "nulls.example.com/v1", "kind": "Thing",
        "metadata": {"name": "a"},
        "spec": {"a": null, "o": null, "n": null, "l": [{"y": null}]}});
    let created = api.create(uri, obj.clone()).await;
    assert_eq!(created["spec"], json!({"n": null, "l": [{}]}), "{created}");
    let mut replace = created.clone();
    replace["spec"]["a"] = Value::Null;
    replace["spec"]["o"] = json!({"x": null});
    let (code, body) = api.call("PUT", &format!("{uri}/a"), &replace).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["spec"],
        json!({"n": null, "l": [{}], "o": {}}),
        "{body}"
    );
    let mut applied = obj;
    applied["metadata"]["name"] = json!("b");
    let (code, body) = api
        .call_with(
            "PATCH",
            &format!("{uri}/b?fieldManager=m"),
            "application/apply-patch+yaml",
            &applied,
        )
        .await;
    assert_eq!(code, 201, "{body}");
    assert!(body["spec"].get("a").is_none(), "{body}");
}

/// Discovery orders a CRD group's versions by Kubernetes version priority.
#[tokio::test]
async fn crd_group_versions_are_sorted_by_priority() {
    let t = TestApiServer::new().await;
    let api = t.api();
    let v = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}})
    };
    establish(
        &api,
        crd(
            "prio.example.com",
            "gizmos",
            "Gizmo",
            json!([
                v("v1alpha1", true),
                v("v2beta1", false),
                v("v1", false),
                v("v1beta2", false),
                v("foo", false)
            ]),
        ),
    )
    .await;
    let (code, body) = api
        .call("GET", "/apis/prio.example.com", &Value::Null)
        .await;
    assert_eq!(code, 200, "{body}");
    let versions: Vec<&str> = body["versions"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v["version"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(versions, ["v1", "v2beta1", "v1beta2", "v1alpha1", "foo"]);
    assert_eq!(body["preferredVersion"]["version"], json!("v1"));
}

/// The create answer of a CRD carries the status upstream's strategy gives it.
#[tokio::test]
async fn crd_create_answer_has_accepted_names_and_stored_versions() {
    let t = TestApiServer::new().await;
    let api = t.api();
    let created = api
        .create(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            crd(
                "status.example.com",
                "foos",
                "Foo",
                json!([{"name": "v1beta1", "served": true, "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object"}}}]),
            ),
        )
        .await;
    assert_eq!(
        created["status"],
        json!({"conditions": null, "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1beta1"]}),
        "{created}"
    );
}

/// JSON bodies end with a newline, objects and errors alike.
#[tokio::test]
async fn json_bodies_end_with_a_newline() {
    let t = TestApiServer::new().await;
    let api = t.api();
    for uri in [
        "/api/v1/namespaces/default",
        "/api/v1/namespaces/nope",
        "/api/v1/namespaces",
        "/apis",
    ] {
        let (_, body) = api
            .call_raw("GET", uri, "application/json", Vec::new())
            .await;
        assert_eq!(body.last(), Some(&b'\n'), "{uri}");
        assert_ne!(body.get(body.len().wrapping_sub(2)), Some(&b'\n'), "{uri}");
    }
}

/// Built-in objects come out in the field order of the Go structs.
#[tokio::test]
async fn objects_keep_go_field_order() {
    let t = TestApiServer::new().await;
    let api = t.api();
    api.create(
        "/api/v1/namespaces/default/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}),
    )
    .await;
    let (_, body) = api
        .call_raw(
            "GET",
            "/api/v1/namespaces/default/configmaps/c",
            "application/json",
            Vec::new(),
        )
        .await;
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.starts_with(r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"#),
        "{text}"
    );
    let (_, body) = api
        .call_raw(
            "GET",
            "/api/v1/namespaces/default",
            "application/json",
            Vec::new(),
        )
        .await;
    let text = String::from_utf8_lossy(&body);
    let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap_or(usize::MAX);
    assert!(at("kind") < at("apiVersion"), "{text}");
    assert!(
        at("metadata") < at("spec") && at("spec") < at("status"),
        "{text}"
    );
}

fn storage_version_hash(gvk: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, gvk.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest.as_ref()[..8])
}

/// Discovery's resources carry the hash of their storage version.
#[tokio::test]
async fn discovery_lists_storage_version_hashes() {
    let t = TestApiServer::new().await;
    let api = t.api();
    let (_, core) = api.call("GET", "/api/v1", &Value::Null).await;
    let find = |list: &Value, name: &str| -> Value {
        list["resources"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == json!(name)).cloned())
            .unwrap_or(Value::Null)
    };
    // Upstream's well-known value for pods.
    assert_eq!(
        find(&core, "pods")["storageVersionHash"],
        json!("xPOwRZ+Yhw8=")
    );
    assert_eq!(
        find(&core, "pods")["storageVersionHash"],
        json!(storage_version_hash("/v1/Pod"))
    );
    assert!(
        find(&core, "pods/status")
            .get("storageVersionHash")
            .is_none()
    );
    assert!(find(&core, "bindings").get("storageVersionHash").is_none());
    assert!(
        find(&core, "componentstatuses")
            .get("storageVersionHash")
            .is_none()
    );
    let (_, apps) = api.call("GET", "/apis/apps/v1", &Value::Null).await;
    assert_eq!(
        find(&apps, "deployments")["storageVersionHash"],
        json!(storage_version_hash("apps/v1/Deployment"))
    );
}

/// A body that is not JSON gets upstream's decode error.
#[tokio::test]
async fn undecodable_body_gets_upstreams_text() {
    let t = TestApiServer::new().await;
    let api = t.api();
    let (code, body) = api
        .call_raw(
            "POST",
            "/api/v1/namespaces",
            "application/json",
            b"{\"foo\"".to_vec(),
        )
        .await;
    assert_eq!(code, 400);
    let status: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!(
        status["message"],
        json!(
            "the object provided is unrecognized (must be of type Namespace): couldn't get version/kind; json parse error: unexpected end of JSON input ({\"foo\")"
        )
    );
    let (code, body) = api
        .call_raw(
            "PUT",
            "/api/v1/namespaces/default",
            "application/json",
            b"not json at all, and longer than thirty bytes".to_vec(),
        )
        .await;
    assert_eq!(code, 400);
    let status: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!(
        status["message"],
        json!(
            "the object provided is unrecognized (must be of type Namespace): couldn't get version/kind; json parse error: invalid character 'o' in literal null (expecting 'u') (6e6f74206a736f6e20617420616c6c2c20616e64206c6f6e676572207468 ...)"
        )
    );
}

/// An update through `/scale` is recorded as made through that subresource.
#[tokio::test]
async fn scale_updates_are_recorded_with_their_subresource() {
    let t = TestApiServer::new().await;
    let api = t.api();
    api.create(
        "/apis/apps/v1/namespaces/default/deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                        "template": {"metadata": {"labels": {"a": "b"}},
                                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    )
    .await;
    let (code, body) = api
        .call_with(
            "PATCH",
            "/apis/apps/v1/namespaces/default/deployments/d/scale?fieldManager=scaler",
            "application/merge-patch+json",
            &json!({"spec": {"replicas": 3}}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let (_, d) = api
        .call(
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/d",
            &Value::Null,
        )
        .await;
    let entry = d["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["manager"] == json!("scaler")).cloned())
        .unwrap_or(Value::Null);
    assert_eq!(entry["subresource"], json!("scale"), "{d}");
}

/// A subresource nothing serves is not found, whatever the method.
#[tokio::test]
async fn unknown_subresource_is_not_found() {
    let t = TestApiServer::new().await;
    let api = t.api();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let (code, body) = api
            .call(
                method,
                "/api/v1/namespaces/default/pods/p/nonsense",
                &json!({}),
            )
            .await;
        assert_eq!(code, 404, "{method}: {body}");
    }
}

/// `kubectl certificate approve` PUTs the request with an Approved condition to
/// `/approval`; the conditions change, their times are stamped, nothing else moves.
#[tokio::test]
async fn csr_approval_subresource_sets_conditions_only() {
    let t = TestApiServer::new().await;
    let api = t.api();
    let mut csr = crate::kinds::certificates::csr::tests::node_csr();
    csr["apiVersion"] = json!("certificates.k8s.io/v1");
    csr["kind"] = json!("CertificateSigningRequest");
    let uri = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    let created = api.create(uri, csr).await;
    let approval = format!("{uri}/node-csr-abc/approval");
    let (code, got) = api.call("GET", &approval, &Value::Null).await;
    assert_eq!(
        (code, &got["kind"]),
        (200, &json!("CertificateSigningRequest"))
    );
    let mut approve = created.clone();
    approve["status"]["conditions"] = json!([{"type": "Approved", "status": "True",
        "reason": "KubectlApprove", "message": "This CSR was approved by kubectl certificate approve."}]);
    approve["spec"]["expirationSeconds"] = json!(600);
    approve["status"]["certificate"] = json!("Zm9v");
    let (code, body) = api.call("PUT", &approval, &approve).await;
    assert_eq!(code, 200, "{body}");
    let cond = &body["status"]["conditions"][0];
    assert_eq!(cond["type"], json!("Approved"));
    assert!(cond["lastUpdateTime"].is_string(), "{body}");
    assert!(cond["lastTransitionTime"].is_string(), "{body}");
    assert_eq!(body["spec"]["expirationSeconds"], json!(86400), "spec kept");
    assert!(
        body["status"].get("certificate").is_none(),
        "certificate kept"
    );
    // Approved and Denied together are refused, as upstream's approval validation does.
    let mut deny = body.clone();
    if let Some(c) = deny["status"]["conditions"].as_array_mut() {
        c.push(json!({"type": "Denied", "status": "True"}));
    }
    let (code, body) = api.call("PUT", &approval, &deny).await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Approved and Denied conditions are mutually exclusive"),
        "{body}"
    );
    // The main resource still cannot approve.
    let (_, mut main) = api
        .call("GET", &format!("{uri}/node-csr-abc"), &Value::Null)
        .await;
    assert_eq!(created["metadata"]["uid"], main["metadata"]["uid"]);
    main["status"]["conditions"] = json!([{"type": "Denied", "status": "True"}]);
    let (code, body) = api.call("PUT", &format!("{uri}/node-csr-abc"), &main).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"]["conditions"][0]["type"], json!("Approved"));
}

/// `kubectl debug` adds an ephemeral container through `/ephemeralcontainers`.
#[tokio::test]
async fn pod_ephemeral_containers_subresource_only_adds() {
    let t = TestApiServer::new().await;
    let api = t.api();
    let uri = "/api/v1/namespaces/default/pods";
    let created = api
        .create(
            uri,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
                   "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
        )
        .await;
    let sub = format!("{uri}/p/ephemeralcontainers");
    let (code, got) = api.call("GET", &sub, &Value::Null).await;
    assert_eq!((code, &got["kind"]), (200, &json!("Pod")));
    let (code, body) = api
        .call_with(
            "PATCH",
            &sub,
            "application/strategic-merge-patch+json",
            &json!({"spec": {"ephemeralContainers": [{"name": "debugger", "image": "busybox",
                "targetContainerName": "c", "stdin": true, "tty": true}]},
                "metadata": {"labels": {"a": "changed"}}}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["spec"]["ephemeralContainers"][0]["name"],
        json!("debugger")
    );
    assert_eq!(
        body["metadata"]["labels"]["a"],
        json!("b"),
        "only ephemeral containers change"
    );
    assert_eq!(body["spec"]["containers"], created["spec"]["containers"]);
    let mut removed = body.clone();
    removed["spec"]["ephemeralContainers"] = json!([]);
    let (code, body) = api.call("PUT", &sub, &removed).await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("existing ephemeral containers \"debugger\" may not be removed"),
        "{body}"
    );
    // Through the pod itself they cannot be added.
    let (_, mut main) = api.call("GET", &format!("{uri}/p"), &Value::Null).await;
    main["spec"]["ephemeralContainers"] = json!([{"name": "x", "image": "busybox"}]);
    let (code, _) = api.call("PUT", &format!("{uri}/p"), &main).await;
    assert_eq!(code, 422);
}

/// `kubectl get cs`: the scheduler, the controller-manager and the datastore as etcd-0,
/// each with its real health.
#[tokio::test]
async fn componentstatuses_report_the_components_health() {
    let t = TestApiServer::new().await;
    let api = t.api();
    t.server
        .register_component("scheduler", std::sync::Arc::new(|| Ok(())));
    let (code, list) = api
        .call("GET", "/api/v1/componentstatuses", &Value::Null)
        .await;
    assert_eq!(code, 200, "{list}");
    let rows: Vec<(String, String)> = list["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    (
                        i["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        i["conditions"][0]["status"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let want = [
        ("scheduler", "True"),
        ("controller-manager", "False"),
        ("etcd-0", "True"),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(rows, want);
    let (code, etcd) = api
        .call("GET", "/api/v1/componentstatuses/etcd-0", &Value::Null)
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        etcd["conditions"],
        json!([{"type": "Healthy", "status": "True", "message": "ok"}])
    );
    let (code, _) = api
        .call("GET", "/api/v1/componentstatuses/nope", &Value::Null)
        .await;
    assert_eq!(code, 404);
}

/// `/openapi/v2` publishes what kubectl's client-side validation can read: a root that
/// keeps unknown fields is a bare object, nested ones lose their properties.
#[tokio::test]
async fn openapi_v2_publishes_preserved_schemas_bare() {
    let t = TestApiServer::new().await;
    let api = t.api();
    establish(
        &api,
        crd(
            "v2.example.com",
            "loose",
            "Loose",
            json!([{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}}}}}]),
        ),
    )
    .await;
    establish(
        &api,
        crd(
            "v2.example.com",
            "nested",
            "Nested",
            json!([{"name": "v1", "served": true, "storage": true,
            "schema": {"openAPIV3Schema": {"type": "object", "required": ["spec"], "properties": {
                "spec": {"type": "object", "required": ["n"], "properties": {
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                             "properties": {"x": {"type": "string"}}},
                    "n": {"type": "string", "nullable": true},
                    "any": {"type": "string", "anyOf": [{"maxLength": 3}, {"minLength": 10}]}
                }}}}}}]),
        ),
    )
    .await;
    let (code, doc) = api.call("GET", "/openapi/v2", &Value::Null).await;
    assert_eq!(code, 200);
    let defs = &doc["definitions"];
    assert_eq!(
        defs["com.example.v2.v1.Loose"],
        json!({"type": "object", "x-kubernetes-group-version-kind": [
            {"group": "v2.example.com", "kind": "Loose", "version": "v1"}]})
    );
    let spec = &defs["com.example.v2.v1.Nested"]["properties"]["spec"];
    assert!(
        spec["properties"]["free"].get("properties").is_none(),
        "{spec}"
    );
    assert_eq!(
        spec["properties"]["free"]["type"],
        json!("object"),
        "{spec}"
    );
    assert!(spec["properties"]["n"].get("type").is_none(), "{spec}");
    assert!(spec.get("required").is_none(), "{spec}");
    assert!(spec["properties"]["any"].get("anyOf").is_none(), "{spec}");
    assert!(defs["com.example.v2.v1.Nested"]["properties"]["metadata"].is_object());
    // v3 keeps the whole schema.
    let (_, v3) = api
        .call("GET", "/openapi/v3/apis/v2.example.com/v1", &Value::Null)
        .await;
    let free = &v3["components"]["schemas"]["com.example.v2.v1.Nested"]["properties"]["spec"]["properties"]
        ["free"];
    assert!(free["properties"]["x"].is_object(), "{free}");
}

/// A CRD change rebuilds the OpenAPI documents off the request path: they are current
/// before anyone asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_are_rebuilt_before_the_first_request() {
    let t = TestApiServer::new().await;
    let api = t.api();
    establish(
        &api,
        crd(
            "warm.example.com",
            "warms",
            "Warm",
            json!([{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}}}]),
        ),
    )
    .await;
    let server = t.server.clone();
    eventually("documents rebuilt without a request", || {
        let server = server.clone();
        async move {
            let current = server.registry.snapshot().generation;
            (server.openapi.built_generation() == Some(current)).then_some(())
        }
    })
    .await;
}

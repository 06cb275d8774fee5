//! Issue "Validation parity": each finding of the OpenAPI-driven fuzzing, against a real
//! `k1s server`, through kubectl where kubectl can send the request and raw HTTPS where
//! it cannot. Nothing a refused request touched may have changed.

use std::time::Duration;

use k1s_e2e::{K1s, eventually, newest_kubectl, request, request_bytes};
use serde_json::{Value, json};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn message(body: &Value) -> &str {
    body.get("message").and_then(Value::as_str).unwrap_or("")
}

#[test]
fn system_namespaces_survive_deletes() {
    let k1s = K1s::start();
    let k = newest_kubectl();
    for ns in ["default", "kube-system", "kube-public"] {
        let out = k1s.kubectl(&k, &["delete", "namespace", ns]);
        let err = out.fails();
        assert!(
            err.contains(&format!(
                "namespaces \"{ns}\" is forbidden: this namespace may not be deleted"
            )),
            "{err}"
        );
        let phase = k1s.kubectl(&k, &["get", "ns", ns, "-o", "jsonpath={.status.phase}"]);
        assert_eq!(phase.ok(), "Active");
    }
    // The collection has no deletecollection verb: 405, and nothing is deleted.
    let rt = runtime();
    rt.block_on(async {
        let client = k1s.client().await;
        let (code, body, _) = request(&client, "DELETE", "/api/v1/namespaces", None).await;
        assert_eq!(code, 405, "{body}");
        assert_eq!(body["reason"], json!("MethodNotAllowed"), "{body}");
        let (code, body, _) = request(&client, "GET", "/api/v1/namespaces", None).await;
        assert_eq!(code, 200);
        let items = body["items"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(items, 4, "{body}");
    });
    // kube-node-lease may be deleted, and comes back like upstream's system namespaces.
    let uid = |k1s: &K1s| {
        k1s.kubectl(
            &k,
            &[
                "get",
                "ns",
                "kube-node-lease",
                "-o",
                "jsonpath={.metadata.uid}",
            ],
        )
    };
    let before = uid(&k1s).ok().to_string();
    k1s.kubectl(
        &k,
        &["delete", "namespace", "kube-node-lease", "--wait=false"],
    )
    .ok();
    eventually(
        Duration::from_secs(60),
        "kube-node-lease to be recreated",
        || {
            let now = uid(&k1s);
            (now.code == 0 && !now.stdout.is_empty() && now.stdout != before).then_some(())
        },
    );
}

#[test]
fn a_put_must_name_the_object_it_replaces() {
    let k1s = K1s::start();
    let rt = runtime();
    rt.block_on(async {
        let client = k1s.client().await;
        let cms = "/api/v1/namespaces/default/configmaps";
        let cm = json!({"metadata": {"name": "keep", "labels": {"app": "x"}}, "data": {"a": "1"}});
        let (code, body, _) = request(&client, "POST", cms, Some(&cm)).await;
        assert_eq!(code, 201, "{body}");
        let item = format!("{cms}/keep");
        for (doc, want) in [
            (
                json!({}),
                "the name of the object () does not match the name on the URL (keep)",
            ),
            (
                json!({"metadata": {"name": "other"}, "data": {}}),
                "the name of the object (other) does not match the name on the URL (keep)",
            ),
            (
                json!({"metadata": {"name": "keep", "namespace": "kube-system"}}),
                "the namespace of the provided object does not match the namespace sent on the request",
            ),
        ] {
            let (code, body, _) = request(&client, "PUT", &item, Some(&doc)).await;
            assert_eq!((code, message(&body)), (400, want), "{doc}");
        }
        let (code, body, _) = request(&client, "GET", &item, None).await;
        assert_eq!(code, 200);
        assert_eq!(body["data"], json!({"a": "1"}));
        assert_eq!(body["metadata"]["labels"], json!({"app": "x"}));
    });
}

/// The kinds the fuzzer created with nothing but a name.
const NAME_ONLY: &[(&str, &str, bool)] = &[
    ("rbac.authorization.k8s.io/v1", "RoleBinding", true),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", false),
    ("v1", "PersistentVolume", false),
    ("v1", "PersistentVolumeClaim", true),
    ("networking.k8s.io/v1", "Ingress", true),
    ("storage.k8s.io/v1", "StorageClass", false),
    ("discovery.k8s.io/v1", "EndpointSlice", true),
    ("certificates.k8s.io/v1", "CertificateSigningRequest", false),
    ("node.k8s.io/v1", "RuntimeClass", false),
    ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema", false),
    (
        "flowcontrol.apiserver.k8s.io/v1",
        "PriorityLevelConfiguration",
        false,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        false,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicyBinding",
        false,
    ),
    ("events.k8s.io/v1", "Event", true),
    ("v1", "PodTemplate", true),
    ("networking.k8s.io/v1", "IPAddress", false),
    ("networking.k8s.io/v1", "ServiceCIDR", false),
    ("storage.k8s.io/v1", "VolumeAttachment", false),
    ("autoscaling/v2", "HorizontalPodAutoscaler", true),
];

#[test]
fn objects_with_only_a_name_are_invalid() {
    let k1s = K1s::start();
    let k = newest_kubectl();
    for (api_version, kind, namespaced) in NAME_ONLY {
        // IPAddress names must be IPs; the rest take a plain name.
        let name = if *kind == "IPAddress" {
            "10.43.0.77"
        } else {
            "name-only"
        };
        let doc = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
        let out = k1s.kubectl_with(&k, &["create", "-f", "-"], Some(&doc.to_string()), &[]);
        let err = out.fails();
        assert!(err.contains("is invalid"), "{kind} with only a name: {err}");
        let ns: &[&str] = if *namespaced { &["-n", "default"] } else { &[] };
        let resource = format!("{}.{}", kind.to_lowercase(), group_of(api_version));
        let args: Vec<&str> = ["get", resource.as_str(), "-o", "name", "--ignore-not-found"]
            .iter()
            .chain(ns)
            .copied()
            .collect();
        let listed = k1s.kubectl(&k, &args);
        assert!(!listed.ok().contains(name), "{kind}: {}", listed.stdout);
    }
}

fn group_of(api_version: &str) -> &str {
    match api_version.rsplit_once('/') {
        Some((group, _)) => group,
        None => "",
    }
    .trim_end_matches('.')
}

/// Applies `doc`, then `changed` (a patch of one immutable field), which must fail with
/// `want` and leave the object as it was.
fn immutable(k1s: &K1s, resource: &str, doc: Value, patch: Value, want: &str) {
    let k = newest_kubectl();
    k1s.kubectl_with(&k, &["apply", "-f", "-"], Some(&doc.to_string()), &[])
        .ok();
    let name = doc["metadata"]["name"].as_str().unwrap_or("");
    let before = k1s.kubectl(&k, &["get", resource, name, "-o", "json"]);
    let before: Value = serde_json::from_str(before.ok()).expect("json");
    let out = k1s.kubectl(
        &k,
        &[
            "patch",
            resource,
            name,
            "--type=merge",
            "-p",
            &patch.to_string(),
        ],
    );
    let err = out.fails();
    assert!(err.contains(want), "{resource} {patch}: {err}");
    let after = k1s.kubectl(&k, &["get", resource, name, "-o", "json"]);
    let after: Value = serde_json::from_str(after.ok()).expect("json");
    // Controllers may write status between the two reads (a Deployment's rollout); all the
    // rest must be as it was.
    assert_eq!(
        without_status(after),
        without_status(before),
        "{resource} changed"
    );
}

fn without_status(mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    object
}

#[test]
fn immutable_fields_stay_as_created() {
    let k1s = K1s::start();
    immutable(
        &k1s,
        "clusterrolebinding",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "viewers"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]}),
        json!({"roleRef": {"name": "cluster-admin"}}),
        "cannot change roleRef",
    );
    immutable(
        &k1s,
        "storageclass",
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": "local"}, "provisioner": "rancher.io/local-path",
               "parameters": {"a": "1"}}),
        json!({"provisioner": "example.com/other"}),
        "updates to provisioner are forbidden",
    );
    immutable(
        &k1s,
        "storageclass",
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": "local"}, "provisioner": "rancher.io/local-path",
               "parameters": {"a": "1"}}),
        json!({"parameters": {"a": "2"}}),
        "updates to parameters are forbidden",
    );
    immutable(
        &k1s,
        "priorityclass",
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
               "metadata": {"name": "high"}, "value": 1000}),
        json!({"value": 2000}),
        "value: Forbidden: may not be changed in an update",
    );
    immutable(
        &k1s,
        "secret",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "frozen"},
               "immutable": true, "stringData": {"a": "1"}}),
        json!({"data": {"a": "Mg=="}}),
        "field is immutable when `immutable` is set",
    );
    immutable(
        &k1s,
        "configmap",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frozen"},
               "immutable": true, "data": {"a": "1"}}),
        json!({"data": {"a": "2"}}),
        "field is immutable when `immutable` is set",
    );
    let template = json!({"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    immutable(
        &k1s,
        "deployment",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template}}),
        json!({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "x"}},
                        "template": {"metadata": {"labels": {"tier": "x"}}}}}),
        "field is immutable",
    );
    let mut job_template = template.clone();
    job_template["spec"]["restartPolicy"] = json!("Never");
    immutable(
        &k1s,
        "job",
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
               "spec": {"template": job_template}}),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
        "field is immutable",
    );
    immutable(
        &k1s,
        "service",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"clusterIP": "10.43.0.50", "ports": [{"port": 80}]}}),
        json!({"spec": {"clusterIP": "10.43.0.51", "clusterIPs": ["10.43.0.51"]}}),
        "spec.clusterIPs[0]: Invalid value: [\"10.43.0.51\"]: may not change once set",
    );
    immutable(
        &k1s,
        "persistentvolumeclaim",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        json!({"spec": {"accessModes": ["ReadWriteMany"]}}),
        "spec is immutable after creation",
    );
}

#[test]
fn malformed_timestamps_are_refused_when_decoding() {
    let k1s = K1s::start();
    let rt = runtime();
    rt.block_on(async {
        let client = k1s.client().await;
        let event = json!({"metadata": {"name": "late"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
                           "reason": "Test", "lastTimestamp": "2024-01-01T12:99:00Z"});
        let (code, body, _) =
            request(&client, "POST", "/api/v1/namespaces/default/events", Some(&event)).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(
            message(&body),
            "Event in version \"v1\" cannot be handled as a Event: parsing time \"2024-01-01T12:99:00Z\": minute out of range"
        );
        for when in ["12:99", ""] {
            let event = json!({"metadata": {"name": "e"}, "eventTime": when, "reason": "Test",
                               "action": "Testing", "reportingController": "example.com/test",
                               "reportingInstance": "test-1", "type": "Normal",
                               "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}});
            let (code, body, _) = request(
                &client,
                "POST",
                "/apis/events.k8s.io/v1/namespaces/default/events",
                Some(&event),
            )
            .await;
            assert_eq!(code, 400, "{body}");
            assert!(
                message(&body).contains(&format!(
                    "parsing time \"{when}\" as \"2006-01-02T15:04:05.000000Z07:00\""
                )),
                "{body}"
            );
        }
        // A status condition's time, through a patch of /status.
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let (code, body, _) =
            request(&client, "POST", "/api/v1/namespaces/default/pods", Some(&pod)).await;
        assert_eq!(code, 201, "{body}");
        let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
                                                      "lastTransitionTime": "2024-01-01T12:99:00Z"}]}});
        let (code, body, _) = request_bytes(
            &client,
            "PATCH",
            "/api/v1/namespaces/default/pods/p/status",
            "application/merge-patch+json",
            patch.to_string().into_bytes(),
        )
        .await;
        assert_eq!(code, 400, "{body}");
        assert!(message(&body).contains("minute out of range"), "{body}");
        let (_, stored, _) =
            request(&client, "GET", "/api/v1/namespaces/default/pods/p", None).await;
        // The scheduler may have written PodScheduled meanwhile; the refused Ready is absent.
        let ready = stored["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready"));
        assert!(!ready, "{stored}");
    });
}

#[test]
fn nulls_decode_as_go_decodes_them_and_empty_items_are_validated() {
    let k1s = K1s::start();
    let rt = runtime();
    rt.block_on(async {
        let client = k1s.client().await;
        let ns = "/api/v1/namespaces/default";
        let cm = json!({"metadata": {"name": "nulls", "labels": {"x": null}}, "data": {"a": null}});
        let (code, body, _) =
            request(&client, "POST", &format!("{ns}/configmaps"), Some(&cm)).await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["metadata"]["labels"]["x"], json!(""), "{body}");
        assert_eq!(body["data"], json!({"a": ""}), "{body}");
        let refused = [
            (
                "endpoints",
                json!({"metadata": {"name": "e1"}, "subsets": [null]}),
                "subsets[0]",
            ),
            (
                "endpoints",
                json!({"metadata": {"name": "e2"}, "subsets": [{"addresses": [{"hostname": "a"}], "ports": [{"port": 80}]}]}),
                "subsets[0].addresses[0].ip",
            ),
        ];
        for (resource, doc, want) in refused {
            let (code, body, _) =
                request(&client, "POST", &format!("{ns}/{resource}"), Some(&doc)).await;
            assert_eq!(code, 422, "{doc}: {body}");
            assert!(message(&body).contains(want), "{doc}: {body}");
        }
        let deploy = json!({"metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "d"}, "matchExpressions": [{}]},
                     "template": {"metadata": {"labels": {"app": "d"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
        let (code, body, _) = request(
            &client,
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            Some(&deploy),
        )
        .await;
        assert_eq!(code, 422, "{body}");
        assert!(
            message(&body).contains("spec.selector.matchExpressions[0]"),
            "{body}"
        );
    });
}

#[test]
fn events_carry_the_fields_typed_clients_require() {
    let k1s = K1s::start();
    let rt = runtime();
    rt.block_on(async {
        let client = k1s.client().await;
        let event = json!({"metadata": {"name": "bare"}, "reason": "Test", "message": "m"});
        let (code, body, _) = request(
            &client,
            "POST",
            "/api/v1/namespaces/default/events",
            Some(&event),
        )
        .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["involvedObject"], json!({}), "{body}");
        // Typed clients decode every event.
        let events: kube::Api<k8s_openapi::api::core::v1::Event> =
            kube::Api::namespaced(client.clone(), "default");
        let list = events
            .list(&Default::default())
            .await
            .expect("typed list of events");
        assert_eq!(list.items.len(), 1);
    });
}

#[test]
fn openapi_documents_are_self_contained_and_list_what_is_served() {
    let k1s = K1s::start();
    let rt = runtime();
    rt.block_on(async {
        let client = k1s.client().await;
        let (code, v2, _) = request(&client, "GET", "/openapi/v2", None).await;
        assert_eq!(code, 200);
        let mut refs = Vec::new();
        collect_refs(&v2, &mut refs);
        refs.sort();
        refs.dedup();
        // `#/definitions/X` and `#/parameters/X` must name an entry of that section.
        let dangling: Vec<&String> = refs
            .iter()
            .filter(|r| {
                let mut parts = r.trim_start_matches("#/").splitn(2, '/');
                let (section, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                v2[section].get(name).is_none()
            })
            .collect();
        assert!(
            dangling.is_empty(),
            "v2 refs without definitions: {dangling:?}"
        );
        let paths = v2["paths"].as_object().expect("paths");
        // Every resource discovery lists has its collection path.
        let (_, groups, _) = request(&client, "GET", "/apis", None).await;
        let mut versions = vec!["/api/v1".to_string()];
        for g in groups["groups"].as_array().into_iter().flatten() {
            // The resource metrics API is served in-process where upstream aggregates
            // metrics-server's, and k1s does not publish its OpenAPI (yet).
            if g["name"] == "metrics.k8s.io" {
                continue;
            }
            for v in g["versions"].as_array().into_iter().flatten() {
                versions.push(format!(
                    "/apis/{}",
                    v["groupVersion"].as_str().unwrap_or("")
                ));
            }
        }
        for gv in versions {
            let (_, list, _) = request(&client, "GET", &gv, None).await;
            for r in list["resources"].as_array().into_iter().flatten() {
                let name = r["name"].as_str().unwrap_or("");
                let verbs: Vec<&str> = r["verbs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let namespaced = r["namespaced"].as_bool().unwrap_or(false);
                let path = match (name.split_once('/'), namespaced) {
                    (Some((res, sub)), true) => {
                        format!("{gv}/namespaces/{{namespace}}/{res}/{{name}}/{sub}")
                    }
                    (Some((res, sub)), false) => format!("{gv}/{res}/{{name}}/{sub}"),
                    (None, true) if verbs.contains(&"list") => {
                        format!("{gv}/namespaces/{{namespace}}/{name}")
                    }
                    (None, true) => format!("{gv}/namespaces/{{namespace}}/{name}"),
                    (None, false) => format!("{gv}/{name}"),
                };
                assert!(paths.contains_key(&path), "/openapi/v2 lacks {path}");
            }
        }
        let (_, root, _) = request(&client, "GET", "/openapi/v3", None).await;
        for (gv, entry) in root["paths"].as_object().expect("v3 paths") {
            let url = entry["serverRelativeURL"].as_str().unwrap_or("");
            let (code, doc, _) = request(&client, "GET", url, None).await;
            assert_eq!(code, 200, "{gv}");
            let schemas = doc["components"]["schemas"].as_object();
            let mut refs = Vec::new();
            collect_refs(&doc, &mut refs);
            for r in refs {
                let name = r.strip_prefix("#/components/schemas/").unwrap_or(&r);
                assert!(
                    schemas.is_some_and(|s| s.contains_key(name)),
                    "/openapi/v3/{gv}: {r} is not defined"
                );
            }
        }
    });
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            for x in m.values() {
                collect_refs(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// A ConfigMap of about `size` bytes.
fn big_config_map(size: usize) -> Vec<u8> {
    json!({"metadata": {"name": "big"}, "data": {"blob": "x".repeat(size)}})
        .to_string()
        .into_bytes()
}

#[test]
fn an_early_refusal_reaches_a_client_still_sending_its_body() {
    let k1s = K1s::start();
    let rt = runtime();
    rt.block_on(async {
        // HTTP/1.1 (kube's client): the 400 arrives instead of a reset connection.
        let client = k1s.client().await;
        let uri = "/api/v1/namespaces/default/configmaps?dryRun=x";
        for _ in 0..3 {
            let (code, body, _) =
                request_bytes(&client, "POST", uri, "application/json", big_config_map(1 << 20))
                    .await;
            assert_eq!(code, 400, "{body}");
            assert!(message(&body).contains("dryRun"), "{body}");
        }
        // A client that writes its whole request before reading (urllib3, so the Python
        // client) must still read the answer: a server that closed the connection with
        // the body unread would reset it under the client's writes.
        for size in [64 << 10, 2 << 20] {
            let head = format!(
                "POST {uri} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n",
                k1s.addr()
            );
            let mut body = big_config_map(size);
            body.resize(size, b' ');
            let answer = write_then_read(&k1s, &[head.as_bytes(), &body].concat()).await;
            assert!(
                answer.starts_with("HTTP/1.1 400"),
                "{size} bytes: {}",
                &answer[..answer.len().min(300)]
            );
            assert!(answer.contains("dryRun"), "{answer}");
        }
        // HTTP/2: the same, and an oversized body gets its 413 rather than a stream error.
        let mut h2 = H2::connect(&k1s).await;
        let (code, body) = h2.post(uri, big_config_map(1 << 20)).await;
        assert_eq!(code, 400, "{body}");
        let ok = "/api/v1/namespaces/default/configmaps";
        let (code, body) = h2.post(ok, big_config_map(4 << 20)).await;
        assert_eq!(code, 413, "{body}");
        let (code, body) = h2.post(ok, big_config_map(1000)).await;
        assert_eq!(code, 201, "{body}");
    });
}

#[test]
fn warning_headers_are_capped() {
    let k1s = K1s::start();
    let rt = runtime();
    rt.block_on(async {
        let client = k1s.client().await;
        let mut data = serde_json::Map::new();
        data.insert("name".into(), json!("warned"));
        for i in 0..500 {
            data.insert(
                format!("unknown-field-with-a-long-name-{i:04}-{}", "x".repeat(40)),
                json!(i),
            );
        }
        let cm = json!({"metadata": Value::Object(data)});
        let (code, body, headers) = request(
            &client,
            "POST",
            "/api/v1/namespaces/default/configmaps?fieldValidation=Warn",
            Some(&cm),
        )
        .await;
        assert_eq!(code, 201, "{body}");
        let warnings: Vec<&str> = headers
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        // Upstream's recorder: once the texts pass 4096 characters every text is cut to
        // 256, and no warning is added after the texts reach 4096 again.
        let texts: Vec<String> = warnings
            .iter()
            .map(|w| {
                w.trim_start_matches("299 - \"")
                    .trim_end_matches('"')
                    .replace("\\\"", "\"")
            })
            .collect();
        let total: usize = texts.iter().map(|t| t.chars().count()).sum();
        assert!(
            !texts.is_empty() && texts.len() < 500,
            "{} warnings",
            texts.len()
        );
        assert!(texts.iter().all(|t| t.chars().count() <= 256), "{texts:?}");
        assert!(
            total < 4096 + 256,
            "{} warnings, {total} characters",
            texts.len()
        );
    });
}

async fn tls_connect(
    k1s: &K1s,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::ServerName;
    let tcp = tokio::net::TcpStream::connect(k1s.addr())
        .await
        .expect("connect");
    tokio_rustls::TlsConnector::from(k1s.tls_client_config(&[alpn]))
        .connect(ServerName::IpAddress(k1s.addr().ip().into()), tcp)
        .await
        .expect("TLS")
}

/// Writes `request` whole, then reads until the server closes or 10 s pass; what came
/// back (or the error that ended the exchange).
async fn write_then_read(k1s: &K1s, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tls = tls_connect(k1s, b"http/1.1").await;
    if let Err(e) = tls.write_all(request).await {
        return format!("writing the request failed: {e}");
    }
    let _ = tls.flush().await;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 << 10];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, tls.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                // One response is enough: stop at the end of its body.
                let text = String::from_utf8_lossy(&out);
                if let Some(at) = text.find("\r\n\r\n")
                    && let Some(len) = text[..at].lines().find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .and_then(|n| n.trim().parse::<usize>().ok())
                    })
                    && out.len() >= at + 4 + len
                {
                    break;
                }
            }
            Ok(Err(e)) => {
                out.extend_from_slice(format!("\n[read failed: {e}]").as_bytes());
                break;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A bare HTTP/2 client over TLS with the admin certificate.
struct H2 {
    send: hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>,
    authority: String,
}

impl H2 {
    async fn connect(k1s: &K1s) -> Self {
        let tls = tls_connect(k1s, b"h2").await;
        let (send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .expect("HTTP/2 handshake");
        tokio::spawn(conn);
        Self {
            send,
            authority: k1s.addr().to_string(),
        }
    }

    async fn post(&mut self, uri: &str, body: Vec<u8>) -> (u16, Value) {
        use http_body_util::BodyExt;
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("https://{}{uri}", self.authority))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .expect("request");
        self.send.ready().await.expect("connection ready");
        let resp = self
            .send
            .send_request(req)
            .await
            .unwrap_or_else(|e| panic!("HTTP/2 POST {uri}: {e}"));
        let code = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("HTTP/2 POST {uri}: reading the answer: {e}"))
            .to_bytes();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

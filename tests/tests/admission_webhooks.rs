//! Issue 13, admission: webhooks (a small HTTPS server started by the test, trusted through
//! `caBundle`, reached by URL and through a Service), PodSecurity, against a real
//! `k1s server` driven by kubectl.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use k1s_e2e::{K1s, TestRequest, TlsTestServer, eventually, newest_kubectl};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// What the test webhook saw: (path, operation, dryRun, object name).
type Seen = Arc<Mutex<Vec<(String, String, bool, String)>>>;

/// Answers one AdmissionReview by path: `/validate` refuses pods labelled `deny=yes`
/// (and warns otherwise), `/mutate` adds the label `mutated=true`, `/slow` answers after
/// three seconds.
async fn answer(path: &str, review: &Value) -> Value {
    let req = &review["request"];
    let uid = req["uid"].clone();
    let obj = if req["object"].is_null() {
        &req["oldObject"]
    } else {
        &req["object"]
    };
    let response = match path {
        "/validate" => {
            if obj.pointer("/metadata/labels/deny").and_then(Value::as_str) == Some("yes") {
                json!({"uid": uid, "allowed": false,
                    "status": {"code": 403, "message": "pods labelled deny=yes are refused"}})
            } else {
                json!({"uid": uid, "allowed": true, "warnings": ["validated by the test webhook"]})
            }
        }
        "/mutate" => {
            let patch = json!([{"op": "add", "path": "/metadata/labels/mutated", "value": "true"}]);
            json!({"uid": uid, "allowed": true, "patchType": "JSONPatch",
                "patch": base64::engine::general_purpose::STANDARD.encode(patch.to_string())})
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            json!({"uid": uid, "allowed": true})
        }
        _ => json!({"uid": uid, "allowed": true}),
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// Starts the HTTPS webhook server on a free port; returns its port and CA (PEM).
fn start_webhook_server(rt: &tokio::runtime::Runtime, seen: Seen) -> (u16, String) {
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    let names = ["webhook.default.svc", "127.0.0.1"];
    let server = TlsTestServer::start(rt, ip, &names, None, move |req: TestRequest| {
        let seen = seen.clone();
        async move {
            let r = &req.body["request"];
            seen.lock().push((
                req.path.clone(),
                r["operation"].as_str().unwrap_or_default().to_string(),
                r["dryRun"].as_bool().unwrap_or(false),
                r["name"].as_str().unwrap_or_default().to_string(),
            ));
            (200, answer(&req.path, &req.body).await)
        }
    });
    (server.port, server.ca_pem)
}

fn hook(name: &str, client: Value, ca: &str, selector: Value, extra: Value) -> Value {
    let mut h = json!({
        "name": name,
        "clientConfig": client,
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "objectSelector": {"matchLabels": selector},
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    h["clientConfig"]["caBundle"] = json!(base64::engine::general_purpose::STANDARD.encode(ca));
    if let (Some(h), Some(extra)) = (h.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            h.insert(k.clone(), v.clone());
        }
    }
    h
}

fn pod(name: &str, labels: Value) -> String {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    .to_string()
}

#[test]
fn webhooks_deny_mutate_fail_and_dry_run_as_upstream() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let seen: Seen = Arc::default();
    let (port, ca) = start_webhook_server(&rt, seen.clone());
    let k1s = K1s::start();
    let k = newest_kubectl();
    let url = |path: &str| json!({"url": format!("https://127.0.0.1:{port}{path}")});
    // The mutating webhook is reached through a Service (ExternalName to this host), so
    // its certificate is checked for webhook.default.svc.
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "webhook", "namespace": "default"},
        "spec": {"type": "ExternalName", "externalName": "localhost", "ports": [{"port": port}]}});
    k1s.kubectl_with(&k, &["create", "-f", "-"], Some(&service.to_string()), &[])
        .ok();
    let validating = json!({"apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "test-validating"},
    "webhooks": [
        hook("deny.example.com", url("/validate"), &ca, json!({"webhook": "on"}), json!({})),
        hook("slow-fail.example.com", url("/slow"), &ca, json!({"slow": "fail"}),
            json!({"timeoutSeconds": 1, "failurePolicy": "Fail"})),
        hook("slow-ignore.example.com", url("/slow"), &ca, json!({"slow": "ignore"}),
            json!({"timeoutSeconds": 1, "failurePolicy": "Ignore"})),
        hook("down.example.com", json!({"url": "https://127.0.0.1:1/down"}), &ca, json!({"down": "ignore"}),
            json!({"failurePolicy": "Ignore"})),
        hook("dry.example.com", url("/dry"), &ca, json!({"dry": "run"}),
            json!({"sideEffects": "NoneOnDryRun"})),
    ]});
    let mutating = json!({"apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration", "metadata": {"name": "test-mutating"},
        "webhooks": [hook("label.example.com",
            json!({"service": {"namespace": "default", "name": "webhook", "path": "/mutate", "port": port}}),
            &ca, json!({"webhook": "on"}), json!({"reinvocationPolicy": "IfNeeded"}))]});
    for config in [&validating, &mutating] {
        k1s.kubectl_with(&k, &["create", "-f", "-"], Some(&config.to_string()), &[])
            .ok();
    }

    // A validating webhook refuses with its own message and code.
    let create = |name: &str, labels: Value, extra: &[&str]| {
        let mut args = vec!["create", "-f", "-"];
        args.extend_from_slice(extra);
        k1s.kubectl_with(&k, &args, Some(&pod(name, labels)), &[])
    };
    let out = create("denied", json!({"webhook": "on", "deny": "yes"}), &[]);
    let err = out.fails();
    assert!(
        // The webhook's status has no reason, so kubectl names none (as with upstream).
        err.contains("Error from server: error when creating \"STDIN\": admission webhook \"deny.example.com\" denied the request: pods labelled deny=yes are refused"),
        "{err}"
    );

    // A mutating webhook (through the Service) adds a label; the validating one warns.
    let out = create("allowed", json!({"webhook": "on"}), &[]);
    out.ok();
    assert!(
        out.stderr
            .contains("Warning: validated by the test webhook"),
        "{}",
        out.stderr
    );
    let label = k1s.kubectl(
        &k,
        &[
            "get",
            "pod",
            "allowed",
            "-o",
            "jsonpath={.metadata.labels.mutated}",
        ],
    );
    assert_eq!(label.ok(), "true");

    // failurePolicy Fail: a webhook past its timeout refuses the request with upstream's
    // text; Ignore lets it through (also when the webhook cannot be reached at all).
    let out = create("slow-fail", json!({"slow": "fail"}), &[]);
    let err = out.fails();
    assert!(
        err.contains(&format!(
            "Internal error occurred: failed calling webhook \"slow-fail.example.com\": failed to call webhook: Post \"https://127.0.0.1:{port}/slow?timeout=1s\": context deadline exceeded"
        )),
        "{err}"
    );
    create("slow-ignore", json!({"slow": "ignore"}), &[]).ok();
    create("down-ignore", json!({"down": "ignore"}), &[]).ok();
    k1s.kubectl(&k, &["get", "pod", "slow-ignore", "down-ignore"])
        .ok();
    assert!(
        k1s.kubectl(&k, &["get", "pod", "slow-fail"])
            .fails()
            .contains("NotFound")
    );

    // Dry run: the side-effect-free webhooks are called with dryRun=true, nothing is stored.
    seen.lock().clear();
    let out = create("dry", json!({"dry": "run"}), &["--dry-run=server"]);
    out.ok();
    let calls = seen.lock().clone();
    assert!(
        calls
            .iter()
            .any(|(path, op, dry, name)| path == "/dry" && op == "CREATE" && *dry && name == "dry"),
        "{calls:?}"
    );
    assert!(
        k1s.kubectl(&k, &["get", "pod", "dry"])
            .fails()
            .contains("NotFound")
    );
    let out = create(
        "dry-denied",
        json!({"webhook": "on", "deny": "yes"}),
        &["--dry-run=server"],
    );
    assert!(
        out.fails()
            .contains("denied the request: pods labelled deny=yes are refused")
    );

    // Deleting the configuration stops the calls.
    k1s.kubectl(
        &k,
        &[
            "delete",
            "validatingwebhookconfiguration",
            "test-validating",
        ],
    )
    .ok();
    create("denied", json!({"webhook": "on", "deny": "yes"}), &[]).ok();
}

#[test]
fn pod_security_enforces_and_warns_with_upstream_messages() {
    let k1s = K1s::start();
    let k = newest_kubectl();
    k1s.kubectl(&k, &["create", "namespace", "strict"]).ok();
    k1s.kubectl(
        &k,
        &[
            "label",
            "namespace",
            "strict",
            "pod-security.kubernetes.io/enforce=restricted",
        ],
    )
    .ok();
    let privileged = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "priv", "namespace": "strict"},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "securityContext": {"privileged": true}}]}});
    let out = k1s.kubectl_with(
        &k,
        &["create", "-f", "-"],
        Some(&privileged.to_string()),
        &[],
    );
    let err = out.fails();
    assert!(
        err.contains("pods \"priv\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), privileged (container \"c\" must not set securityContext.privileged=true), runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"),
        "{err}"
    );
    // A hardened pod is admitted.
    let hardened = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "hardened", "namespace": "strict"},
        "spec": {"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "image": "busybox", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}});
    k1s.kubectl_with(&k, &["create", "-f", "-"], Some(&hardened.to_string()), &[])
        .ok();

    // warn: admitted with a Warning; a Deployment's template is warned about too.
    k1s.kubectl(&k, &["create", "namespace", "lax"]).ok();
    k1s.kubectl(
        &k,
        &[
            "label",
            "namespace",
            "lax",
            "pod-security.kubernetes.io/warn=restricted",
        ],
    )
    .ok();
    let mut lax = privileged.clone();
    lax["metadata"]["namespace"] = json!("lax");
    let out = k1s.kubectl_with(&k, &["create", "-f", "-"], Some(&lax.to_string()), &[]);
    out.ok();
    assert!(
        out.stderr.contains("Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false")
            && out.stderr.contains("privileged (container \"c\" must not set securityContext.privileged=true)"),
        "{}",
        out.stderr
    );
    let out = k1s.kubectl(
        &k,
        &[
            "-n",
            "lax",
            "create",
            "deployment",
            "web",
            "--image=busybox",
        ],
    );
    out.ok();
    assert!(
        out.stderr.contains("Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"busybox\" must set securityContext.allowPrivilegeEscalation=false)"),
        "{}",
        out.stderr
    );

    // Tightening the enforce level warns about the pods already there (dry run too).
    let out = k1s.kubectl(
        &k,
        &[
            "label",
            "--dry-run=server",
            "--overwrite",
            "namespace",
            "lax",
            "pod-security.kubernetes.io/enforce=baseline",
        ],
    );
    out.ok();
    assert!(
        out.stderr.contains("Warning: existing pods in namespace \"lax\" violate the new PodSecurity enforce level \"baseline:latest\"")
            && out.stderr.contains("Warning: priv: privileged"),
        "{}",
        out.stderr
    );

    // Labels that do not parse are refused (422), as upstream.
    let out = k1s.kubectl(
        &k,
        &[
            "label",
            "--overwrite",
            "namespace",
            "lax",
            "pod-security.kubernetes.io/enforce=strict",
        ],
    );
    let err = out.fails();
    assert!(
        err.contains("metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted"),
        "{err}"
    );

    // LimitRanger: defaults on new pods, max refused with upstream's text.
    k1s.kubectl(&k, &["create", "namespace", "limits"]).ok();
    let range = json!({"apiVersion": "v1", "kind": "LimitRange",
        "metadata": {"name": "cpu", "namespace": "limits"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"},
            "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}}]}});
    k1s.kubectl_with(&k, &["create", "-f", "-"], Some(&range.to_string()), &[])
        .ok();
    k1s.kubectl(&k, &["-n", "limits", "run", "small", "--image=busybox"])
        .ok();
    let res = k1s.kubectl(&k, &["-n", "limits", "get", "pod", "small", "-o",
        "jsonpath={.spec.containers[0].resources.limits.cpu} {.spec.containers[0].resources.requests.cpu} {.metadata.annotations.kubernetes\\.io/limit-ranger}"]);
    assert_eq!(
        res.ok(),
        "500m 100m LimitRanger plugin set: cpu request for container small; cpu limit for container small"
    );
    let out = k1s.kubectl(&k, &["-n", "limits", "run", "big", "--image=busybox", "--overrides",
        r#"{"spec": {"containers": [{"name": "big", "image": "busybox", "resources": {"limits": {"cpu": "2"}}}]}}"#]);
    let err = out.fails();
    assert!(
        err.contains(
            "pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
        ),
        "{err}"
    );

    // ResourceQuota: once the quota counts the pod there, the next one is refused.
    k1s.kubectl(
        &k,
        &["-n", "limits", "create", "quota", "q", "--hard=pods=1"],
    )
    .ok();
    eventually(
        Duration::from_secs(30),
        "the quota to count the pod",
        || {
            let used = k1s.kubectl(
                &k,
                &[
                    "-n",
                    "limits",
                    "get",
                    "quota",
                    "q",
                    "-o",
                    "jsonpath={.status.used.pods}",
                ],
            );
            (used.code == 0 && used.stdout == "1").then_some(())
        },
    );
    let out = k1s.kubectl(&k, &["-n", "limits", "run", "second", "--image=busybox"]);
    let err = out.fails();
    assert!(
        err.contains("pods \"second\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"),
        "{err}"
    );
}

/// Every byte of the SQLite datastore (database and WAL).
fn datastore_bytes(k1s: &K1s) -> Vec<u8> {
    let dir = k1s.data_dir().join("server").join("db");
    let mut all = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("db dir").flatten() {
        all.extend(std::fs::read(entry.path()).unwrap_or_default());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_are_encrypted_at_rest_and_keys_rotate() {
    let mut k1s = K1s::start_with(&["--secrets-encryption"]);
    let k = newest_kubectl();
    let value = "hunter2-plaintext-canary";
    let encoded = base64::engine::general_purpose::STANDARD.encode(value);
    k1s.kubectl(
        &k,
        &[
            "create",
            "secret",
            "generic",
            "db",
            &format!("--from-literal=password={value}"),
        ],
    )
    .ok();
    k1s.kubectl(
        &k,
        &[
            "create",
            "configmap",
            "plain",
            "--from-literal=note=visible-configmap-canary",
        ],
    )
    .ok();
    let got = k1s.kubectl(
        &k,
        &["get", "secret", "db", "-o", "jsonpath={.data.password}"],
    );
    assert_eq!(got.ok(), encoded);
    let bytes = datastore_bytes(&k1s);
    assert!(
        !contains(&bytes, value) && !contains(&bytes, &encoded),
        "the secret is stored in plaintext"
    );
    assert!(contains(&bytes, "k8s:enc:aescbc:v1:aescbckey:"));
    // Only Secrets: a ConfigMap stays readable in the file.
    assert!(contains(&bytes, "visible-configmap-canary"));
    let config = k1s.data_dir().join("server/cred/encryption-config.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&config).expect("config").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // status and rotate, then a restart: the old Secret still reads, a new one uses the new key.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(k1s_e2e::k1s_binary())
            .args(args)
            .arg("--data-dir")
            .arg(k1s.data_dir())
            .output()
            .expect("k1s runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let status = cli(&["secrets-encrypt", "status"]);
    assert!(
        status.contains("Encryption Status: Enabled")
            && status.contains(" *      AES-CBC   aescbckey"),
        "{status}"
    );
    let rotated = cli(&["secrets-encrypt", "rotate"]);
    assert!(rotated.contains("aescbckey-"), "{rotated}");
    k1s.restart();
    let got = k1s.kubectl(
        &k,
        &["get", "secret", "db", "-o", "jsonpath={.data.password}"],
    );
    assert_eq!(got.ok(), encoded);
    k1s.kubectl(
        &k,
        &[
            "create",
            "secret",
            "generic",
            "after",
            "--from-literal=k=rotated-canary-value",
        ],
    )
    .ok();
    let bytes = datastore_bytes(&k1s);
    assert!(contains(&bytes, "k8s:enc:aescbc:v1:aescbckey-"));
    assert!(!contains(&bytes, "rotated-canary-value"));
}

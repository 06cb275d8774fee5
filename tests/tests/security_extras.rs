//! Issue 13, the rest of security: the audit log (policy levels, Audit-Id), the
//! max-in-flight limit (429), webhook matchConditions, the admission order
//! (ValidatingAdmissionPolicy before the validating webhooks), the CEL `authorizer` in a
//! policy, and legacy service account token Secrets — against one `k1s server` driven by
//! kubectl and raw requests.

use std::sync::Arc;
use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, TestRequest, TlsTestServer, eventually, newest_kubectl, request};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// Names of the objects the test webhook was asked about.
type Seen = Arc<Mutex<Vec<String>>>;

/// The webhook: refuses objects labelled `deny=yes`; `/slow` answers after two seconds.
async fn answer(path: &str, review: &Value) -> Value {
    let req = &review["request"];
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let denied = req["object"]
        .pointer("/metadata/labels/deny")
        .and_then(Value::as_str)
        == Some("yes");
    let response = if denied {
        json!({"uid": req["uid"], "allowed": false,
            "status": {"code": 403, "message": "refused by the test webhook"}})
    } else {
        // Recorded in the audit event as `<webhook name>/<key>`.
        json!({"uid": req["uid"], "allowed": true,
            "auditAnnotations": {"seen": req["name"]}})
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// Starts the HTTPS webhook on a free port; returns its port and CA (PEM).
fn start_webhook(rt: &tokio::runtime::Runtime, seen: Seen) -> (u16, String) {
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    let server = TlsTestServer::start(rt, ip, &["127.0.0.1"], None, move |req: TestRequest| {
        let seen = seen.clone();
        async move {
            seen.lock().push(
                req.body["request"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            (200, answer(&req.path, &req.body).await)
        }
    });
    (server.port, server.ca_pem)
}

const AUDIT_POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["ResponseStarted"]
rules:
- level: None
  resources: [{group: "", resources: ["configmaps"]}]
  namespaces: ["quiet"]
- level: Request
  resources: [{group: "", resources: ["configmaps"]}]
"#;

/// A kubeconfig with a bearer token and no client certificate.
fn token_kubeconfig(k1s: &K1s, name: &str, token: &str) -> String {
    let path = k1s.write_file(
        &format!("{name}.kubeconfig"),
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k1s\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: u\n  context: {{cluster: k1s, user: u}}\ncurrent-context: u\n",
            k1s.url(),
            k1s.tls_files().ca.display()
        ),
    );
    path.to_str().unwrap_or_default().to_string()
}

/// Runs kubectl with another kubeconfig (and stdin): exit code, stdout, stderr.
fn run(k: &Kubectl, kubeconfig: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(&k.path)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl");
    if let Some(mut pipe) = child.stdin.take() {
        let _ = pipe.write_all(stdin.unwrap_or("").as_bytes());
    }
    let out = child.wait_with_output().expect("kubectl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The audit events written so far.
fn audit_events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn audit_inflight_match_conditions_policies_and_legacy_tokens() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let seen: Seen = Arc::default();
    let (port, ca) = start_webhook(&rt, seen.clone());
    let scratch = tempfile::tempdir().expect("temp dir");
    let policy = scratch.path().join("audit-policy.yaml");
    std::fs::write(&policy, AUDIT_POLICY).expect("policy");
    let log = scratch.path().join("logs").join("audit.log");
    let tokens = scratch.path().join("tokens.csv");
    std::fs::write(&tokens, "bob-token,bob,u-bob,\"\"\n").expect("tokens");
    // The log path comes the way k3s passes kube-apiserver flags.
    let k1s = K1s::start_with(&[
        "--audit-policy-file",
        policy.to_str().unwrap_or_default(),
        &format!(
            "--kube-apiserver-arg=audit-log-path={}",
            log.to_str().unwrap_or_default()
        ),
        "--kube-apiserver-arg=max-mutating-requests-inflight=1",
        "--token-auth-file",
        tokens.to_str().unwrap_or_default(),
    ]);
    let k = newest_kubectl();
    for ns in ["quiet", "hooks", "authz", "audited"] {
        k1s.kubectl(&k, &["create", "namespace", ns]).ok();
    }

    audit_log_records_by_policy(&k1s, &k, &log);
    webhooks_and_policies(&k1s, &k, port, &ca, &seen);
    admission_annotations_reach_the_audit_log(&k1s, &k, &log);
    the_authorizer_in_a_policy(&k1s, &k);
    too_many_requests(&k1s, &k, &rt, port, &ca);
    legacy_token_secrets(&k1s, &k);
}

fn audit_log_records_by_policy(k1s: &K1s, k: &Kubectl, log: &std::path::Path) {
    k1s.kubectl(
        k,
        &[
            "create",
            "configmap",
            "audited",
            "-n",
            "default",
            "--from-literal=a=b",
        ],
    )
    .ok();
    k1s.kubectl(
        k,
        &[
            "create",
            "configmap",
            "unheard",
            "-n",
            "quiet",
            "--from-literal=a=b",
        ],
    )
    .ok();
    let complete = eventually(
        Duration::from_secs(10),
        "the audit event of the create",
        || {
            audit_events(log).into_iter().find(|e| {
                e["stage"] == "ResponseComplete"
                    && e["verb"] == "create"
                    && e["objectRef"]["name"] == "audited"
            })
        },
    );
    assert_eq!(complete["kind"], "Event");
    assert_eq!(complete["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(complete["level"], "Request");
    assert!(
        complete["requestURI"]
            .as_str()
            .unwrap_or("")
            .starts_with("/api/v1/namespaces/default/configmaps?"),
        "{complete}"
    );
    assert_eq!(complete["objectRef"]["resource"], "configmaps");
    assert_eq!(complete["objectRef"]["namespace"], "default");
    assert_eq!(complete["objectRef"]["apiVersion"], "v1");
    assert_eq!(complete["responseStatus"]["code"], 201);
    assert_eq!(complete["requestObject"]["data"]["a"], "b");
    assert!(complete.get("responseObject").is_none(), "{complete}");
    assert_eq!(
        complete["annotations"]["authorization.k8s.io/decision"],
        "allow"
    );
    assert!(
        complete["user"]["groups"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g == "system:masters")),
        "{complete}"
    );
    assert!(
        complete["userAgent"]
            .as_str()
            .unwrap_or("")
            .starts_with("kubectl"),
        "{complete}"
    );
    assert!(
        complete["sourceIPs"]
            .as_array()
            .is_some_and(|ips| ips.iter().any(|ip| ip == "127.0.0.1")),
        "{complete}"
    );
    for ts in ["requestReceivedTimestamp", "stageTimestamp"] {
        let t = complete[ts].as_str().unwrap_or("");
        assert!(t.ends_with('Z') && t.len() == 27, "{ts}: {t}");
    }
    // The same request's first stage, with the same audit ID.
    let events = audit_events(log);
    let received: Vec<&Value> = events
        .iter()
        .filter(|e| e["auditID"] == complete["auditID"])
        .map(|e| &e["stage"])
        .collect();
    assert_eq!(received, vec!["RequestReceived", "ResponseComplete"]);
    // A rule of level None leaves the request out.
    assert!(
        !events.iter().any(|e| e["objectRef"]["name"] == "unheard"),
        "a None rule was audited"
    );
    // Every answer carries its audit ID, the event's.
    let (code, _, headers) =
        k1s_request(k1s, "GET", "/api/v1/namespaces/default/configmaps/audited");
    assert_eq!(code, 200);
    let id = headers
        .get("audit-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(id.len(), 36, "{headers:?}");
    eventually(Duration::from_secs(10), "the get's audit event", || {
        audit_events(log)
            .into_iter()
            .find(|e| e["auditID"] == id.as_str() && e["stage"] == "ResponseComplete")
    });
}

/// A policy bound with `Audit` records its failure, and its `auditAnnotations`, in the
/// request's audit event; the webhook's `auditAnnotations` are there too.
fn admission_annotations_reach_the_audit_log(k1s: &K1s, k: &Kubectl, log: &std::path::Path) {
    let policy = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: extras-audit}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"]}
  validations:
  - expression: "!has(object.metadata.labels) || !('auditme' in object.metadata.labels)"
    message: "the policy audits auditme"
  auditAnnotations:
  - {key: checked, valueExpression: "'checked ' + object.metadata.name"}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: extras-audit-binding}
spec:
  policyName: extras-audit
  validationActions: [Audit]
  matchResources:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: audited}}
"#;
    k1s.kubectl_with(k, &["create", "-f", "-"], Some(policy), &[])
        .ok();
    let complete = |name: &str| {
        audit_events(log).into_iter().find(|e| {
            e["objectRef"]["name"] == name
                && e["verb"] == "create"
                && e["stage"] == "ResponseComplete"
        })
    };
    // An Audit binding does not refuse: the write succeeds and the event says why it
    // failed the policy.
    k1s.kubectl(k, &["create", "configmap", "audit-me", "-n", "audited"])
        .ok();
    let plain = eventually(Duration::from_secs(10), "the first event", || {
        complete("audit-me")
    });
    assert_eq!(
        plain["annotations"]["extras-audit/checked"], "checked audit-me",
        "{plain}"
    );
    assert!(
        plain["annotations"]
            .get("validation.policy.admission.k8s.io/validation_failure")
            .is_none(),
        "{plain}"
    );
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: audit-me-too, namespace: audited, labels: {auditme: \"1\"}}\n";
    k1s.kubectl_with(k, &["create", "-f", "-"], Some(cm), &[])
        .ok();
    let event = eventually(Duration::from_secs(10), "the audited event", || {
        complete("audit-me-too")
    });
    assert_eq!(
        event["annotations"]["validation.policy.admission.k8s.io/validation_failure"],
        r#"[{"message":"the policy audits auditme","policy":"extras-audit","binding":"extras-audit-binding","expressionIndex":0,"validationActions":["Audit"]}]"#,
        "{event}"
    );
    assert_eq!(
        event["annotations"]["extras-audit/checked"],
        "checked audit-me-too"
    );
    // The webhook's own audit annotations, under its name.
    k1s.kubectl(k, &["create", "configmap", "hooked", "-n", "hooks"])
        .ok();
    let hooked = eventually(Duration::from_secs(10), "the webhook's event", || {
        complete("hooked")
    });
    assert_eq!(
        hooked["annotations"]["deny.extras.example.com/seen"], "hooked",
        "{hooked}"
    );
}

fn k1s_request(k1s: &K1s, method: &str, uri: &str) -> (u16, Value, http::HeaderMap) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = k1s.client().await;
        request(&client, method, uri, None).await
    })
}

fn webhooks_and_policies(k1s: &K1s, k: &Kubectl, port: u16, ca: &str, seen: &Seen) {
    use base64::Engine;
    let webhook = json!({"apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "extras-validating"},
    "webhooks": [{
        "name": "deny.extras.example.com",
        "clientConfig": {"url": format!("https://127.0.0.1:{port}/validate"),
            "caBundle": base64::engine::general_purpose::STANDARD.encode(ca)},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "hooks"}},
        "matchConditions": [{"name": "not-exempt",
            "expression": "!has(object.metadata.labels) || !('exempt' in object.metadata.labels)"}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }]});
    let policy = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: extras-order}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"]}
  validations:
  - expression: "!has(object.metadata.labels) || !('vapdeny' in object.metadata.labels)"
    message: "the policy refuses vapdeny"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: extras-order}
spec:
  policyName: extras-order
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: hooks}}
"#;
    k1s.kubectl_with(k, &["create", "-f", "-"], Some(&webhook.to_string()), &[])
        .ok();
    k1s.kubectl_with(k, &["create", "-f", "-"], Some(policy), &[])
        .ok();
    let create = |name: &str, labels: &str| {
        let cm = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: hooks, labels: {{{labels}}}}}\n"
        );
        k1s.kubectl_with(k, &["create", "-f", "-"], Some(&cm), &[])
    };
    // The webhook refuses, once the policy binding is in effect.
    let refused = eventually(Duration::from_secs(10), "the webhook to refuse", || {
        let out = create("refused", "deny: \"yes\"");
        (out.code != 0).then(|| out.fails().trim().to_string())
    });
    assert_eq!(
        refused,
        r#"Error from server: error when creating "STDIN": admission webhook "deny.extras.example.com" denied the request: refused by the test webhook"#
    );
    // A false match condition skips the webhook: it is never asked.
    create("exempted", "deny: \"yes\", exempt: \"true\"").ok();
    assert!(!seen.lock().iter().any(|n| n == "exempted"));
    // The policy refuses before the webhook is called.
    eventually(Duration::from_secs(10), "the policy to refuse", || {
        let out = create("vap-first", "vapdeny: x, deny: \"yes\"");
        (out.code != 0 && out.fails().contains("ValidatingAdmissionPolicy")).then_some(())
    });
    let out = create("vap-first", "vapdeny: x, deny: \"yes\"");
    let err = out.fails();
    assert!(
        err.contains("ValidatingAdmissionPolicy 'extras-order' with binding 'extras-order' denied request: the policy refuses vapdeny"),
        "{err}"
    );
    assert!(
        !seen.lock().iter().any(|n| n == "vap-first"),
        "the webhook was called before the policy refused: {:?}",
        seen.lock()
    );
}

fn the_authorizer_in_a_policy(k1s: &K1s, k: &Kubectl) {
    let policy = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: extras-authz}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"]}
  validations:
  - expression: "authorizer.group('').resource('secrets').namespace(object.metadata.namespace).check('list').allowed()"
    message: "only who may list secrets may create configmaps here"
  - expression: "authorizer.requestResource.check('create').allowed()"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: extras-authz}
spec:
  policyName: extras-authz
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: authz}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-writer, namespace: authz}
rules:
- {apiGroups: [""], resources: ["configmaps"], verbs: ["create", "get"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-cm-writer, namespace: authz}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-writer}
subjects: [{kind: User, name: bob, apiGroup: rbac.authorization.k8s.io}]
"#;
    k1s.kubectl_with(k, &["create", "-f", "-"], Some(policy), &[])
        .ok();
    let bob = token_kubeconfig(k1s, "bob", "bob-token");
    let create = |name: &str| run(k, &bob, &["create", "configmap", name, "-n", "authz"], None);
    let refused = eventually(
        Duration::from_secs(10),
        "the authorizer policy to refuse bob",
        || {
            let (code, _, err) = create("by-bob");
            (code != 0 && err.contains("ValidatingAdmissionPolicy")).then_some(err)
        },
    );
    assert!(
        refused.contains("ValidatingAdmissionPolicy 'extras-authz' with binding 'extras-authz' denied request: only who may list secrets may create configmaps here"),
        "{refused}"
    );
    // The admin may list secrets: allowed.
    k1s.kubectl(k, &["create", "configmap", "by-admin", "-n", "authz"])
        .ok();
    // Once bob may list secrets, so may he.
    k1s.kubectl(
        k,
        &[
            "create",
            "rolebinding",
            "bob-view",
            "-n",
            "authz",
            "--clusterrole=admin",
            "--user=bob",
        ],
    )
    .ok();
    eventually(Duration::from_secs(10), "bob to be allowed", || {
        (create("by-bob").0 == 0).then_some(())
    });
}

fn too_many_requests(k1s: &K1s, k: &Kubectl, rt: &tokio::runtime::Runtime, port: u16, ca: &str) {
    use base64::Engine;
    // A slow webhook holds bob's one mutating slot for two seconds.
    let webhook = json!({"apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "extras-slow"},
    "webhooks": [{
        "name": "slow.extras.example.com",
        "clientConfig": {"url": format!("https://127.0.0.1:{port}/slow"),
            "caBundle": base64::engine::general_purpose::STANDARD.encode(ca)},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        "objectSelector": {"matchLabels": {"slow": "yes"}},
        "timeoutSeconds": 10,
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }]});
    k1s.kubectl_with(k, &["create", "-f", "-"], Some(&webhook.to_string()), &[])
        .ok();
    let bob = token_kubeconfig(k1s, "bob", "bob-token");
    let results = rt.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&bob).expect("kubeconfig");
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("config");
        // kube retries a 429 by itself; the test looks at the first answer.
        config.default_retry = false;
        let client = kube::Client::try_from(config).expect("client");
        let cm = |name: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "labels": {"slow": "yes"}}})
        };
        let slow = {
            let client = client.clone();
            let body = cm("slow-one");
            tokio::spawn(async move {
                request(
                    &client,
                    "POST",
                    "/api/v1/namespaces/authz/configmaps",
                    Some(&body),
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(700)).await;
        let second = request(
            &client,
            "POST",
            "/api/v1/namespaces/authz/configmaps",
            Some(&cm("too-many")),
        )
        .await;
        // Reads have their own limit, still free.
        let read = request(
            &client,
            "GET",
            "/api/v1/namespaces/authz/configmaps/by-bob",
            None,
        )
        .await;
        (slow.await.expect("slow create"), second, read)
    });
    let (slow, second, read) = results;
    assert_eq!(slow.0, 201, "{:?}", slow.1);
    assert_eq!(second.0, 429, "{:?}", second.1);
    assert_eq!(
        second.2.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(read.0, 200, "{:?}", read.1);
    // The admin (system:masters) is never refused.
    k1s.kubectl(k, &["create", "configmap", "by-master", "-n", "authz"])
        .ok();
    k1s.kubectl(
        k,
        &["delete", "validatingwebhookconfiguration", "extras-slow"],
    )
    .ok();
}

fn legacy_token_secrets(k1s: &K1s, k: &Kubectl) {
    k1s.kubectl(k, &["create", "serviceaccount", "legacy", "-n", "default"])
        .ok();
    let secret = r#"
apiVersion: v1
kind: Secret
metadata:
  name: legacy-token
  namespace: default
  annotations: {kubernetes.io/service-account.name: legacy}
type: kubernetes.io/service-account-token
"#;
    k1s.kubectl_with(k, &["create", "-f", "-"], Some(secret), &[])
        .ok();
    let filled = eventually(Duration::from_secs(15), "the token controller", || {
        let out = k1s.kubectl(
            k,
            &[
                "get",
                "secret",
                "legacy-token",
                "-n",
                "default",
                "-o",
                "json",
            ],
        );
        let v: Value = serde_json::from_str(out.ok()).ok()?;
        v.pointer("/data/token").is_some().then_some(v)
    });
    use base64::Engine;
    let decode = |key: &str| {
        let b64 = filled["data"][key].as_str().unwrap_or_default();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("base64"),
        )
        .expect("utf-8")
    };
    assert_eq!(decode("namespace"), "default");
    assert!(decode("ca.crt").starts_with("-----BEGIN CERTIFICATE-----"));
    let sa_uid = k1s
        .kubectl(
            k,
            &[
                "get",
                "sa",
                "legacy",
                "-n",
                "default",
                "-o",
                "jsonpath={.metadata.uid}",
            ],
        )
        .ok()
        .to_string();
    assert_eq!(
        filled["metadata"]["annotations"]["kubernetes.io/service-account.uid"],
        sa_uid.as_str()
    );
    let token = decode("token");
    let kc = token_kubeconfig(k1s, "legacy", &token);
    let (code, out, err) = run(
        k,
        &kc,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "system:serviceaccount:default:legacy");
    // Its use is tracked on the secret.
    eventually(Duration::from_secs(15), "the last-used label", || {
        let out = k1s.kubectl(
            k,
            &[
                "get",
                "secret",
                "legacy-token",
                "-n",
                "default",
                "-o",
                r"jsonpath={.metadata.labels.kubernetes\.io/legacy-token-last-used}",
            ],
        );
        (out.ok().len() == 10).then_some(())
    });
    // A TokenReview takes it, with the API server's audiences only.
    let review = |audiences: &str| {
        let tr = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token, "audiences": serde_json::from_str::<Value>(audiences).unwrap_or_default()}});
        let out = k1s.kubectl_with(
            k,
            &["create", "-o", "json", "-f", "-"],
            Some(&tr.to_string()),
            &[],
        );
        serde_json::from_str::<Value>(out.ok()).unwrap_or_default()["status"].clone()
    };
    let reviewed = review("[]");
    assert_eq!(reviewed["authenticated"], true, "{reviewed}");
    assert_eq!(
        reviewed["user"]["username"],
        "system:serviceaccount:default:legacy"
    );
    assert_eq!(review(r#"["elsewhere"]"#)["authenticated"], Value::Null);
    // A token the clean-up marked invalid does not authenticate until the label goes.
    let label = "kubernetes.io/legacy-token-invalid-since";
    k1s.kubectl(
        k,
        &[
            "label",
            "secret",
            "legacy-token",
            "-n",
            "default",
            &format!("{label}=2026-01-01"),
        ],
    )
    .ok();
    let (code, _, err) = run(k, &kc, &["auth", "whoami"], None);
    assert_ne!(code, 0);
    assert!(err.contains("Unauthorized"), "{err}");
    k1s.kubectl(
        k,
        &[
            "label",
            "secret",
            "legacy-token",
            "-n",
            "default",
            &format!("{label}-"),
        ],
    )
    .ok();
    let (code, _, err) = run(k, &kc, &["auth", "whoami"], None);
    assert_eq!(code, 0, "{err}");
    // Without its secret the token no longer authenticates.
    k1s.kubectl(k, &["delete", "secret", "legacy-token", "-n", "default"])
        .ok();
    let (code, _, err) = run(k, &kc, &["auth", "whoami"], None);
    assert_ne!(code, 0);
    assert!(err.contains("Unauthorized"), "{err}");
}

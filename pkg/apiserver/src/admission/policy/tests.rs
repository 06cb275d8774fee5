use serde_json::{Value, json};

use crate::test_util::TestApiServer;

const POLICIES: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies";
const BINDINGS: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

fn policy(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
           "metadata": {"name": name}, "spec": spec})
}

fn binding(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
           "metadata": {"name": name}, "spec": spec})
}

fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

fn configmap_rules() -> Value {
    json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]}]})
}

#[tokio::test]
async fn deny_bindings_refuse_with_upstream_status() {
    let server = TestApiServer::new().await;
    let api = server.api();
    api.create(POLICIES, policy("max-keys", json!({
        "matchConstraints": configmap_rules(),
        "variables": [{"name": "keys", "expression": "has(object.data) ? object.data.size() : 0"}],
        "validations": [
            {"expression": "variables.keys <= 2", "messageExpression": "'too many keys: ' + string(variables.keys)"},
            {"expression": "!has(object.data) || !('forbidden' in object.data)", "reason": "Forbidden"}
        ]
    }))).await;
    api.create(
        BINDINGS,
        binding(
            "max-keys-binding",
            json!({
                "policyName": "max-keys", "validationActions": ["Deny"]
            }),
        ),
    )
    .await;
    api.create(CONFIGMAPS, configmap("ok", json!({"a": "1"})))
        .await;
    let (code, body) = api
        .call(
            "POST",
            CONFIGMAPS,
            &configmap("big", json!({"a": "1", "b": "2", "c": "3"})),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["reason"], "Invalid");
    let denial = "ValidatingAdmissionPolicy 'max-keys' with binding 'max-keys-binding' denied request: too many keys: 3";
    assert_eq!(
        body["message"],
        format!("configmaps \"big\" is forbidden: {denial}")
    );
    assert_eq!(body["details"]["causes"][0]["message"], denial);
    let (code, body) = api
        .call(
            "POST",
            CONFIGMAPS,
            &configmap("bad", json!({"forbidden": "1"})),
        )
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden");
    assert!(
        body["message"].as_str().unwrap_or("").ends_with(
            "denied request: failed expression: !has(object.data) || !('forbidden' in object.data)"
        ),
        "{body}"
    );
    // Updates are checked too, with oldObject bound.
    let (code, body) = api
        .call(
            "PUT",
            &format!("{CONFIGMAPS}/ok"),
            &configmap("ok", json!({"a": "1", "b": "2", "c": "3"})),
        )
        .await;
    assert_eq!(code, 422, "{body}");
}

#[tokio::test]
async fn params_selectors_and_failure_policy() {
    let server = TestApiServer::new().await;
    let api = server.api();
    api.create(CONFIGMAPS, configmap("limits", json!({"max": "1"})))
        .await;
    api.create(POLICIES, policy("limit", json!({
        "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
        "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
            "operations": ["CREATE"], "resources": ["configmaps"]}],
            "objectSelector": {"matchLabels": {"checked": "yes"}}},
        "validations": [{"expression": "size(object.data) <= int(params.data.max)", "message": "over the limit"}]
    }))).await;
    api.create(
        BINDINGS,
        binding(
            "limit-binding",
            json!({
                "policyName": "limit", "validationActions": ["Deny"],
                "paramRef": {"name": "limits", "parameterNotFoundAction": "Deny"}
            }),
        ),
    )
    .await;
    let mut labelled = configmap("two", json!({"a": "1", "b": "2"}));
    labelled["metadata"]["labels"] = json!({"checked": "yes"});
    let (code, body) = api.call("POST", CONFIGMAPS, &labelled).await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .ends_with("denied request: over the limit"),
        "{body}"
    );
    // Not selected: allowed.
    api.create(
        CONFIGMAPS,
        configmap("unlabelled", json!({"a": "1", "b": "2"})),
    )
    .await;
    // Params missing in another namespace, with parameterNotFoundAction Deny.
    api.create(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}),
    )
    .await;
    let (code, body) = api
        .call("POST", "/api/v1/namespaces/other/configmaps", &labelled)
        .await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["message"].as_str().unwrap_or("").ends_with(
            "denied request: no params found for policy binding with `Deny` parameterNotFoundAction"
        ),
        "{body}"
    );
    // An expression that fails at run time follows failurePolicy: Fail denies, Ignore
    // lets the write through.
    api.create(
        POLICIES,
        policy(
            "broken",
            json!({
                "failurePolicy": "Fail",
                "matchConstraints": configmap_rules(),
                "validations": [{"expression": "object.data.missing == 'x'"}]
            }),
        ),
    )
    .await;
    api.create(
        BINDINGS,
        binding(
            "broken-binding",
            json!({"policyName": "broken", "validationActions": ["Deny"]}),
        ),
    )
    .await;
    let (code, body) = api
        .call("POST", CONFIGMAPS, &configmap("any", json!({"a": "1"})))
        .await;
    assert_eq!(code, 422, "{body}");
    assert!(body["message"].as_str().unwrap_or("").ends_with(
        "denied request: expression 'object.data.missing == 'x'' resulted in error: no such key: missing"
    ), "{body}");
    let (code, _) = api
        .call(
            "PATCH",
            &format!("{POLICIES}/broken"),
            &json!({"spec": {"failurePolicy": "Ignore"}}),
        )
        .await;
    assert_eq!(code, 415);
    let (code, body) = api
        .call_with(
            "PATCH",
            &format!("{POLICIES}/broken"),
            "application/merge-patch+json",
            &json!({"spec": {"failurePolicy": "Ignore"}}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    api.create(CONFIGMAPS, configmap("any", json!({"a": "1"})))
        .await;
    // The policy kinds themselves are never intercepted.
    let (code, body) = api
        .call_with(
            "PATCH",
            &format!("{POLICIES}/broken"),
            "application/merge-patch+json",
            &json!({"spec": {"failurePolicy": "Fail"}}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test]
async fn invalid_expressions_are_refused_when_written() {
    let server = TestApiServer::new().await;
    let api = server.api();
    let (code, body) = api.call("POST", POLICIES, &policy("bad", json!({
        "matchConstraints": configmap_rules(),
        "validations": [{"expression": "object.data.size() >"}, {"expression": "object.name.lowerascii() == 'x'"}]
    }))).await;
    assert_eq!(code, 422, "{body}");
    let msg = body["message"].as_str().unwrap_or("");
    assert!(msg.contains("spec.validations[0].expression: Invalid value: \"object.data.size() >\": compilation failed: ERROR: <input>:1:"), "{msg}");
    assert!(
        msg.contains("undeclared reference to 'lowerascii' (in container '')"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_binding_selecting_only_namespaces_takes_the_policys_resources() {
    // matchResources with a namespaceSelector and no resourceRules matched nothing.
    let server = TestApiServer::new().await;
    let api = server.api();
    api.create(
        POLICIES,
        policy(
            "no-b",
            json!({"matchConstraints": configmap_rules(),
                "validations": [{"expression": "!has(object.data) || !('b' in object.data)"}]}),
        ),
    )
    .await;
    api.create(
        BINDINGS,
        binding(
            "no-b",
            json!({"policyName": "no-b", "validationActions": ["Deny"], "matchResources":
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "default"}}}}),
        ),
    )
    .await;
    let (code, body) = api
        .call("POST", CONFIGMAPS, &configmap("b", json!({"b": "1"})))
        .await;
    assert_eq!(code, 422, "{body}");
    let (code, body) = api
        .call(
            "POST",
            "/api/v1/namespaces/kube-system/configmaps",
            &configmap("b", json!({"b": "1"})),
        )
        .await;
    assert_eq!(code, 201, "{body}");
}

#[tokio::test]
async fn audit_bindings_and_audit_annotations_go_to_the_audit_event() {
    let server = TestApiServer::new().await;
    let api = server.api();
    api.create(POLICIES, policy("small", json!({
        "matchConstraints": configmap_rules(),
        "validations": [
            {"expression": "true"},
            {"expression": "!has(object.data) || object.data.size() <= 1", "message": "too big"}
        ],
        "auditAnnotations": [
            {"key": "size", "valueExpression": "string(has(object.data) ? object.data.size() : 0)"},
            {"key": "skipped", "valueExpression": "null"}
        ]
    }))).await;
    api.create(
        BINDINGS,
        binding(
            "small-audit",
            json!({"policyName": "small", "validationActions": ["Audit", "Warn"]}),
        ),
    )
    .await;
    let snapshot = server.server.generic.registry().snapshot();
    let configmaps = snapshot.get("", "v1", "configmaps").expect("configmaps");
    let user = crate::auth::UserInfo::new("jane", Vec::<String>::new());
    let obj = configmap("big", json!({"a": "1", "b": "2"}));
    let req = super::Request {
        info: &configmaps.info,
        subresource: None,
        operation: "CREATE",
        namespace: Some("default"),
        name: "big",
        object: Some(&obj),
        old_object: None,
        user: &user,
        dry_run: false,
    };
    let (warnings, annotations) =
        crate::audit::collect_annotations(super::admit(&server.server.generic, &req)).await;
    assert_eq!(
        warnings.expect("an Audit binding does not deny"),
        vec!["Validation failed for ValidatingAdmissionPolicy 'small' with binding 'small-audit': too big".to_string()]
    );
    assert_eq!(
        annotations["validation.policy.admission.k8s.io/validation_failure"],
        r#"[{"message":"too big","policy":"small","binding":"small-audit","expressionIndex":1,"validationActions":["Audit","Warn"]}]"#
    );
    assert_eq!(annotations["small/size"], "2");
    assert!(
        !annotations.contains_key("small/skipped"),
        "{annotations:?}"
    );
}

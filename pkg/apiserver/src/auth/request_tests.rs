//! Authentication and authorization through the whole request path, in process.

use serde_json::{Value, json};

use super::UserInfo;
use crate::test_util::{TestApi, TestApiServer};

async fn rbac_server() -> TestApiServer {
    let t = TestApiServer::new().await;
    super::bootstrap_policy::run(&t.server)
        .await
        .unwrap_or_else(|s| panic!("bootstrap policy: {}", s.message));
    t
}

fn jane() -> UserInfo {
    UserInfo::new("jane", [])
}

async fn can(api: &TestApi, verb: &str, resource: &str, ns: &str, name: &str) -> bool {
    let (code, body) = api
        .call(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "namespace": ns, "name": name}}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    body["status"]["allowed"] == json!(true)
}

#[tokio::test]
async fn a_user_without_bindings_is_refused_with_upstreams_text() {
    let t = rbac_server().await;
    let api = t.api_as(jane());
    let (code, body) = api
        .call("GET", "/api/v1/namespaces/default/pods", &Value::Null)
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default""#
    );
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(body["details"]["kind"], "pods");
    let (code, body) = api.call("GET", "/api/v1/nodes/n1", &Value::Null).await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        r#"nodes "n1" is forbidden: User "jane" cannot get resource "nodes" in API group "" at the cluster scope"#
    );
    // Discovery and health are for every authenticated user.
    let (code, _) = api.call("GET", "/apis", &Value::Null).await;
    assert_eq!(code, 200);
    let (code, _) = api.call("GET", "/version", &Value::Null).await;
    assert_eq!(code, 200);
    // Anonymous users get health and version only.
    let anon = t.api_as(UserInfo::anonymous());
    let (code, _) = anon.call("GET", "/healthz", &Value::Null).await;
    assert_eq!(code, 200);
    let (code, body) = anon.call("GET", "/api", &Value::Null).await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        r#"forbidden: User "system:anonymous" cannot get path "/api""#
    );
}

#[tokio::test]
async fn roles_bindings_names_and_aggregation_grant_what_they_say() {
    let t = rbac_server().await;
    let admin = t.api();
    let api = t.api_as(jane());
    assert!(!can(&api, "get", "configmaps", "default", "one").await);
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "cm-one"},
                   "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["one"], "verbs": ["get"]}]}),
        )
        .await;
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "jane-cm"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-one"},
                   "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]}),
        )
        .await;
    assert!(can(&api, "get", "configmaps", "default", "one").await);
    assert!(!can(&api, "get", "configmaps", "default", "two").await);
    assert!(!can(&api, "get", "configmaps", "other", "one").await);
    // The view role binds through aggregation.
    let sa = UserInfo::new(
        "system:serviceaccount:default:robot",
        [
            "system:serviceaccounts".to_string(),
            "system:serviceaccounts:default".to_string(),
        ],
    );
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "robot-view"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                   "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "default"}]}),
        )
        .await;
    super::bootstrap_policy::aggregate_now(&t.server).await;
    let robot = t.api_as(sa);
    assert!(can(&robot, "list", "pods", "default", "").await);
    assert!(can(&robot, "get", "pods/log", "default", "p").await);
    assert!(!can(&robot, "get", "secrets", "default", "").await);
    assert!(!can(&robot, "list", "pods", "kube-system", "").await);
    // Escalation: jane may write roles in default, but not grant what she lacks.
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "jane-admin-roles"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:aggregate-to-admin"},
                   "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]}),
        )
        .await;
    let (code, body) = api
        .call(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "sneaky"},
                    "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}),
        )
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "roles.rbac.authorization.k8s.io \"sneaky\" is forbidden: user \"jane\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\"]}"
    );
    let (code, body) = api
        .call(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "jane-edit"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                    "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]}),
        )
        .await;
    assert_eq!(code, 403, "{body}");
    // What she holds she may grant.
    let (code, body) = api
        .call(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "fine"},
                    "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["one"], "verbs": ["get"]}]}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
}

#[tokio::test]
async fn impersonation_needs_the_impersonate_verb() {
    let t = rbac_server().await;
    let api = t.api_as(jane());
    let req = |user: &str| {
        http::Request::builder()
            .method("POST")
            .uri("/apis/authentication.k8s.io/v1/selfsubjectreviews")
            .header("content-type", "application/json")
            .header("Impersonate-User", user)
            .header("Impersonate-Group", "devs")
            .body(axum::body::Body::from(
                r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#,
            ))
            .unwrap_or_else(|_| unreachable!())
    };
    let send = |user: UserInfo, target: &str| {
        let mut r = req(target);
        r.extensions_mut().insert(user);
        crate::handlers::handle(t.server.clone(), r)
    };
    let resp = send(jane(), "bob").await;
    assert_eq!(resp.status(), 403);
    let resp = send(UserInfo::loopback(), "bob").await;
    assert_eq!(resp.status(), 201);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!(
        v["status"]["userInfo"],
        json!({"username": "bob", "groups": ["devs", "system:authenticated"]})
    );
    drop(api);
}

#[tokio::test]
async fn subject_access_and_rules_reviews_answer_for_the_subject() {
    let t = rbac_server().await;
    let admin = t.api();
    let (code, body) = admin
        .call(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                    "spec": {"user": "jane", "nonResourceAttributes": {"path": "/apis", "verb": "get"}}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    // No system:authenticated is implied for a review's subject.
    assert_eq!(body["status"]["allowed"], false);
    let (code, body) = admin
        .call(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {"user": "jane"}}),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    let (code, body) = admin
        .call(
            "POST",
            "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews",
            &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
                    "spec": {"user": "jane", "resourceAttributes": {"namespace": "other", "verb": "get", "resource": "pods"}}}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    let api = t.api_as(jane());
    let (code, body) = api
        .call(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "default"}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let rules = body["status"]["resourceRules"].to_string();
    assert!(rules.contains("selfsubjectaccessreviews"), "{rules}");
    assert!(
        body["status"]["nonResourceRules"]
            .to_string()
            .contains("/api/*")
    );
}

//! ResourceQuota admission on create, through the whole write path.

use serde_json::{Value, json};

use crate::test_util::TestApiServer;

const QUOTAS: &str = "/api/v1/namespaces/default/resourcequotas";
const CMS: &str = "/api/v1/namespaces/default/configmaps";
const PODS: &str = "/api/v1/namespaces/default/pods";

#[tokio::test]
async fn creates_over_a_synced_quota_are_forbidden_and_charged() {
    let server = TestApiServer::new().await;
    let api = server.api();
    let hard = json!({"configmaps": "2", "pods": "1", "requests.cpu": "1"});
    api.create(
        QUOTAS,
        json!({"metadata": {"name": "q"}, "spec": {"hard": hard}}),
    )
    .await;
    // Not yet synced by the controller (no status.hard): nothing is enforced.
    api.create(CMS, json!({"metadata": {"name": "a"}})).await;
    // What the controller would write.
    let status = json!({"status": {"hard": hard,
        "used": {"configmaps": "1", "pods": "0", "requests.cpu": "0"}}});
    let (code, body) = api
        .call_with(
            "PATCH",
            &format!("{QUOTAS}/q/status"),
            "application/merge-patch+json",
            &status,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    api.create(CMS, json!({"metadata": {"name": "b"}})).await;
    let (code, body) = api
        .call("POST", CMS, &json!({"metadata": {"name": "c"}}))
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(
        body["message"],
        "configmaps \"c\" is forbidden: exceeded quota: q, requested: configmaps=1, used: configmaps=2, limited: configmaps=2"
    );
    let (_, q) = api.call("GET", &format!("{QUOTAS}/q"), &Value::Null).await;
    assert_eq!(q["status"]["used"]["configmaps"], "2", "{q}");

    // cpu under quota: every container must ask for it.
    let pod = |cpu: Option<&str>| {
        let mut c = json!({"name": "c", "image": "i"});
        if let Some(cpu) = cpu {
            c["resources"] = json!({"requests": {"cpu": cpu}});
        }
        json!({"metadata": {"name": "p"}, "spec": {"containers": [c]}})
    };
    let (code, body) = api.call("POST", PODS, &pod(None)).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"p\" is forbidden: failed quota: q: must specify requests.cpu for: c"
    );
    let (code, body) = api.call("POST", PODS, &pod(Some("2"))).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"p\" is forbidden: exceeded quota: q, requested: requests.cpu=2, used: requests.cpu=0, limited: requests.cpu=1"
    );
    api.create(PODS, pod(Some("500m"))).await;
    let (_, q) = api.call("GET", &format!("{QUOTAS}/q"), &Value::Null).await;
    assert_eq!(q["status"]["used"]["requests.cpu"], "500m", "{q}");
    assert_eq!(q["status"]["used"]["pods"], "1", "{q}");
    // A dry run is checked but charges nothing.
    let (code, _) = api
        .call(
            "POST",
            &format!("{CMS}?dryRun=All"),
            &json!({"metadata": {"name": "d"}}),
        )
        .await;
    assert_eq!(code, 403);
}

#[tokio::test]
async fn a_service_turned_load_balancer_is_charged_on_update() {
    let server = TestApiServer::new().await;
    let api = server.api();
    let hard = json!({"services.loadbalancers": "0"});
    api.create(
        QUOTAS,
        json!({"metadata": {"name": "lb"}, "spec": {"hard": hard}}),
    )
    .await;
    let (code, body) = api
        .call_with(
            "PATCH",
            &format!("{QUOTAS}/lb/status"),
            "application/merge-patch+json",
            &json!({"status": {"hard": hard, "used": {"services.loadbalancers": "0"}}}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    api.create(
        "/api/v1/namespaces/default/services",
        json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    let (code, body) = api
        .call_with(
            "PATCH",
            "/api/v1/namespaces/default/services/web",
            "application/merge-patch+json",
            &json!({"spec": {"type": "LoadBalancer"}}),
        )
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "services \"web\" is forbidden: exceeded quota: lb, requested: services.loadbalancers=1, used: services.loadbalancers=0, limited: services.loadbalancers=0"
    );
}

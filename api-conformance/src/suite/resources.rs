//! Core resources the API alone decides: configmaps, secrets, service accounts,
//! resource quotas and limit ranges.

use k8s_openapi::api::core::v1::{ConfigMap, LimitRange, ResourceQuota, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::{Test, t};
use crate::ctx::{Ctx, Fail, R, eventually, obj};
use crate::ensure;

async fn configmap_lifecycle(c: Ctx) -> R {
    let api: Api<ConfigMap> = c.api();
    let name = "test-configmap";
    api.create(&PostParams::default(), &obj(json!({"metadata": {"name": name, "labels": {"test-configmap-static": "true"}}, "data": {"valueName": "value"}}))?).await?;
    api.patch(name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"test-configmap": "patched"}}, "data": {"valueName": "value1"}}))).await?;
    let got = api.get(name).await?;
    ensure!(
        got.data
            .unwrap_or_default()
            .get("valueName")
            .map(String::as_str)
            == Some("value1"),
        "the patched configmap lacks its data"
    );
    let across: Api<ConfigMap> = c.all();
    let l = across
        .list(&ListParams::default().labels("test-configmap-static=true"))
        .await?;
    ensure!(
        l.items
            .iter()
            .any(|i| i.metadata.namespace.as_deref() == Some(c.ns.as_str())),
        "listing across namespaces misses the configmap"
    );
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("test-configmap-static=true"),
    )
    .await?;
    let l = api
        .list(&ListParams::default().labels("test-configmap-static=true"))
        .await?;
    ensure!(
        l.items.is_empty(),
        "delete-collection left {} configmaps",
        l.items.len()
    );
    Ok(())
}

async fn configmap_empty_key(c: Ctx) -> R {
    let (code, v) = c.raw("POST", &format!("/api/v1/namespaces/{}/configmaps", c.ns), Some(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-empty-key"}, "data": {"": "value-1"}}))).await;
    ensure!(
        code == 422,
        "a configmap with an empty key: {code} {v}, want 422 Invalid"
    );
    Ok(())
}

async fn secret_empty_key(c: Ctx) -> R {
    let (code, v) = c.raw("POST", &format!("/api/v1/namespaces/{}/secrets", c.ns), Some(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "secret-empty-key"}, "data": {"": "dmFsdWUtMQo="}}))).await;
    ensure!(
        code == 422,
        "a secret with an empty key: {code} {v}, want 422 Invalid"
    );
    Ok(())
}

async fn secret_patching(c: Ctx) -> R {
    let api: Api<Secret> = c.api();
    c.k(&[
        "create",
        "secret",
        "generic",
        "test-secret",
        "--from-literal=key=value",
    ])
    .await?;
    c.k(&["label", "secret", "test-secret", "testsecret-constant=true"])
        .await?;
    let across: Api<Secret> = c.all();
    let l = across
        .list(&ListParams::default().labels("testsecret-constant=true"))
        .await?;
    ensure!(
        l.items
            .iter()
            .any(|s| s.metadata.namespace.as_deref() == Some(c.ns.as_str())),
        "listing secrets across namespaces by label misses it"
    );
    api.patch(
        "test-secret",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"labels": {"testsecret": "true"}}, "data": {"key": "dmFsdWUy"}}),
        ),
    )
    .await?;
    let got = api.get("test-secret").await?;
    let v = got
        .data
        .unwrap_or_default()
        .get("key")
        .map(|b| String::from_utf8_lossy(&b.0).into_owned());
    ensure!(
        v.as_deref() == Some("value2"),
        "the patched secret holds {v:?}"
    );
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("testsecret-constant=true"),
    )
    .await?;
    ensure!(
        api.get_opt("test-secret").await?.is_none(),
        "delete-collection left the secret"
    );
    Ok(())
}

async fn service_account_lifecycle(c: Ctx) -> R {
    let api: Api<ServiceAccount> = c.api();
    api.create(&PostParams::default(), &obj(json!({"metadata": {"name": "testserviceaccount", "labels": {"test-serviceaccount-static": "true"}}}))?).await?;
    api.patch(
        "testserviceaccount",
        &PatchParams::default(),
        &Patch::Merge(json!({"automountServiceAccountToken": false})),
    )
    .await?;
    let got = api.get("testserviceaccount").await?;
    ensure!(
        got.automount_service_account_token == Some(false),
        "the patched service account still automounts"
    );
    let across: Api<ServiceAccount> = c.all();
    let l = across
        .list(&ListParams::default().labels("test-serviceaccount-static=true"))
        .await?;
    ensure!(
        !l.items.is_empty(),
        "listing service accounts by label found none"
    );
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("test-serviceaccount-static=true"),
    )
    .await?;
    ensure!(
        api.get_opt("testserviceaccount").await?.is_none(),
        "delete-collection left the service account"
    );
    Ok(())
}

async fn service_account_update(c: Ctx) -> R {
    let api: Api<ServiceAccount> = c.api();
    api.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "e2e-sa"}}))?,
    )
    .await?;
    let mut sa = api.get("e2e-sa").await?;
    sa.automount_service_account_token = Some(true);
    sa.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("updated".into(), "true".into());
    let after = api.replace("e2e-sa", &PostParams::default(), &sa).await?;
    ensure!(
        after.automount_service_account_token == Some(true),
        "the update of automountServiceAccountToken did not stick"
    );
    Ok(())
}

async fn service_account_token_review(c: Ctx) -> R {
    c.k(&["create", "serviceaccount", "e2e-sa"]).await?;
    let token = c.k(&["create", "token", "e2e-sa"]).await?;
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token.trim()}});
    let (code, v) = c
        .raw(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            Some(&review),
        )
        .await;
    ensure!(code == 201, "TokenReview: {code} {v}");
    let user = v["status"]["user"]["username"].as_str().unwrap_or_default();
    ensure!(
        v["status"]["authenticated"] == true
            && user == format!("system:serviceaccount:{}:e2e-sa", c.ns),
        "TokenReview said {v}"
    );
    Ok(())
}

async fn root_ca_configmap(c: Ctx) -> R {
    let api: Api<ConfigMap> = c.api();
    let has_ca = |cm: &ConfigMap| {
        cm.data.as_ref().is_some_and(|d| {
            d.get("ca.crt")
                .is_some_and(|v| v.contains("BEGIN CERTIFICATE"))
        })
    };
    eventually(30, "kube-root-ca.crt in a new namespace", || async {
        api.get_opt("kube-root-ca.crt")
            .await
            .ok()
            .flatten()
            .filter(has_ca)
            .map(|_| ())
    })
    .await?;
    api.patch(
        "kube-root-ca.crt",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"ca.crt": "changed"}})),
    )
    .await?;
    eventually(
        30,
        "kube-root-ca.crt to be reconciled after a change",
        || async {
            api.get_opt("kube-root-ca.crt")
                .await
                .ok()
                .flatten()
                .filter(has_ca)
                .map(|_| ())
        },
    )
    .await?;
    api.delete("kube-root-ca.crt", &DeleteParams::default())
        .await?;
    eventually(
        30,
        "kube-root-ca.crt to be recreated after its deletion",
        || async {
            api.get_opt("kube-root-ca.crt")
                .await
                .ok()
                .flatten()
                .filter(has_ca)
                .map(|_| ())
        },
    )
    .await
}

// ---- resource quotas

async fn quota(c: &Ctx, name: &str, spec: Value) -> Result<Api<ResourceQuota>, Fail> {
    let api: Api<ResourceQuota> = c.api();
    api.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": name}, "spec": spec}))?,
    )
    .await?;
    Ok(api)
}

/// Waits until the quota's status.used[resource] is `want`.
async fn used(api: &Api<ResourceQuota>, name: &str, resource: &str, want: &str) -> R {
    eventually(
        40,
        &format!("quota {name} to count {resource}={want}"),
        || async {
            let q = api.get(name).await.ok()?;
            let u = q.status?.used?;
            (u.get(resource).map(|q| q.0.as_str()) == Some(want)).then_some(())
        },
    )
    .await
}

/// A quota counting `resource`; creating `manifest` counts 1 and deleting it 0.
async fn object_count(c: Ctx, resource: &str, plural: &str, manifest: Value) -> R {
    let api = quota(&c, "test-quota", json!({"hard": {resource: "10"}})).await?;
    // The quota counts what already exists (service accounts and configmaps of a new namespace).
    let before = eventually(40, "the quota's first status", || async {
        let q = api.get("test-quota").await.ok()?;
        q.status?.used?.get(resource).map(|q| q.0.clone())
    })
    .await?;
    let base: i64 = before.parse().unwrap_or(0);
    c.k_stdin(&["create", "-f", "-"], Some(&manifest.to_string()))
        .await?;
    used(&api, "test-quota", resource, &(base + 1).to_string()).await?;
    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
    c.k(&["delete", plural, name, "--wait=false"]).await?;
    used(&api, "test-quota", resource, &base.to_string()).await
}

async fn quota_configmap(c: Ctx) -> R {
    object_count(c, "count/configmaps", "configmaps", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "test-configmap"}, "data": {"a": "b"}})).await
}

async fn quota_secret(c: Ctx) -> R {
    object_count(c, "secrets", "secrets", json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "test-secret"}, "data": {"a": "Yg=="}})).await
}

async fn quota_service(c: Ctx) -> R {
    object_count(c, "services", "services", json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "test-service"}, "spec": {"ports": [{"port": 80}]}})).await
}

fn pod_template_spec() -> Value {
    json!({"metadata": {"labels": {"name": "quota-test"}}, "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}})
}

async fn quota_replicaset(c: Ctx) -> R {
    object_count(c, "count/replicasets.apps", "replicasets", json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "test-rs"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"name": "quota-test"}}, "template": pod_template_spec()}})).await
}

async fn quota_rc(c: Ctx) -> R {
    object_count(c, "replicationcontrollers", "replicationcontrollers", json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "test-rc"},
        "spec": {"replicas": 0, "selector": {"name": "quota-test"}, "template": pod_template_spec()}})).await
}

async fn quota_pod(c: Ctx) -> R {
    let api = quota(
        &c,
        "test-quota",
        json!({"hard": {"pods": "1", "requests.cpu": "1", "requests.memory": "500Mi"}}),
    )
    .await?;
    used(&api, "test-quota", "pods", "0").await?;
    let pod = |name: &str, cpu: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": cpu, "memory": "252Mi"}, "limits": {"cpu": cpu, "memory": "252Mi"}}}]}})
    };
    c.k_stdin(
        &["create", "-f", "-"],
        Some(&pod("test-pod", "500m").to_string()),
    )
    .await?;
    used(&api, "test-quota", "pods", "1").await?;
    used(&api, "test-quota", "requests.cpu", "500m").await?;
    let err = c
        .k_fails(
            &["create", "-f", "-"],
            Some(&pod("fail-pod", "600m").to_string()),
        )
        .await?;
    ensure!(
        err.contains("exceeded quota"),
        "a pod over the quota was refused with: {err}"
    );
    c.k(&["delete", "pod", "test-pod", "--grace-period=0", "--force"])
        .await?;
    used(&api, "test-quota", "pods", "0").await
}

async fn quota_resourcequotas(c: Ctx) -> R {
    let api = quota(&c, "test-quota", json!({"hard": {"resourcequotas": "1"}})).await?;
    used(&api, "test-quota", "resourcequotas", "1").await?;
    let (code, v) = c.raw("POST", &format!("/api/v1/namespaces/{}/resourcequotas", c.ns), Some(&json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "second"}, "spec": {"hard": {"pods": "1"}}}))).await;
    ensure!(
        code == 403,
        "a second quota over `resourcequotas: 1`: {code} {v}, want 403"
    );
    Ok(())
}

async fn quota_update_delete(c: Ctx) -> R {
    let api = quota(
        &c,
        "test-quota",
        json!({"hard": {"cpu": "1", "memory": "500Mi"}}),
    )
    .await?;
    let mut q = api.get("test-quota").await?;
    if let Some(h) = q.spec.as_mut().and_then(|s| s.hard.as_mut()) {
        h.insert(
            "cpu".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("2".into()),
        );
    }
    let after = api
        .replace("test-quota", &PostParams::default(), &q)
        .await?;
    let cpu = after
        .spec
        .and_then(|s| s.hard)
        .and_then(|h| h.get("cpu").cloned())
        .map(|q| q.0);
    ensure!(
        cpu.as_deref() == Some("2"),
        "the updated quota's hard cpu is {cpu:?}"
    );
    api.delete("test-quota", &DeleteParams::default()).await?;
    ensure!(
        api.get_opt("test-quota").await?.is_none(),
        "the deleted quota is still there"
    );
    Ok(())
}

async fn quota_lifecycle(c: Ctx) -> R {
    let api = quota(
        &c,
        "e2e-rq",
        json!({"hard": {"pods": "1", "services": "1"}}),
    )
    .await?;
    let across: Api<ResourceQuota> = c.all();
    let l = across.list(&ListParams::default()).await?;
    ensure!(
        l.items
            .iter()
            .any(|q| q.metadata.name.as_deref() == Some("e2e-rq")),
        "listing quotas across namespaces misses it"
    );
    api.patch("e2e-rq", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"e2e-rq-label": "dynamic"}}, "spec": {"hard": {"pods": "2"}}}))).await?;
    let got = api.get("e2e-rq").await?;
    ensure!(
        got.spec
            .and_then(|s| s.hard)
            .and_then(|h| h.get("pods").cloned())
            .map(|q| q.0)
            .as_deref()
            == Some("2"),
        "the patched quota's hard pods"
    );
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("e2e-rq-label=dynamic"),
    )
    .await?;
    ensure!(
        api.get_opt("e2e-rq").await?.is_none(),
        "delete-collection left the quota"
    );
    Ok(())
}

async fn quota_status(c: Ctx) -> R {
    let api = quota(
        &c,
        "e2e-rq-status",
        json!({"hard": {"cpu": "500m", "memory": "500Mi"}}),
    )
    .await?;
    let q = api.get_status("e2e-rq-status").await?;
    ensure!(
        q.metadata.name.as_deref() == Some("e2e-rq-status"),
        "get status"
    );
    // Status writes by hand are taken, then the quota controller puts its count back.
    let patched = api.patch_status("e2e-rq-status", &PatchParams::default(), &Patch::Merge(json!({"status": {"hard": {"cpu": "500m", "memory": "500Mi"}, "used": {"cpu": "1", "memory": "1Gi"}}}))).await?;
    let hard = patched.status.and_then(|s| s.hard).unwrap_or_default();
    ensure!(
        hard.get("cpu").map(|q| q.0.as_str()) == Some("500m"),
        "the patched status: {hard:?}"
    );
    used(&api, "e2e-rq-status", "cpu", "0").await
}

async fn quota_scope_best_effort(c: Ctx) -> R {
    let be = quota(
        &c,
        "quota-besteffort",
        json!({"hard": {"pods": "5"}, "scopes": ["BestEffort"]}),
    )
    .await?;
    quota(
        &c,
        "quota-not-besteffort",
        json!({"hard": {"pods": "5"}, "scopes": ["NotBestEffort"]}),
    )
    .await?;
    used(&be, "quota-besteffort", "pods", "0").await?;
    used(&be, "quota-not-besteffort", "pods", "0").await?;
    c.k_stdin(&["create", "-f", "-"], Some(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "be-pod"}, "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}).to_string())).await?;
    used(&be, "quota-besteffort", "pods", "1").await?;
    used(&be, "quota-not-besteffort", "pods", "0").await?;
    c.k_stdin(&["create", "-f", "-"], Some(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "burst-pod"}, "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}}}]}}).to_string())).await?;
    used(&be, "quota-not-besteffort", "pods", "1").await?;
    used(&be, "quota-besteffort", "pods", "1").await?;
    c.k(&["delete", "pods", "--all", "--grace-period=0", "--force"])
        .await?;
    used(&be, "quota-besteffort", "pods", "0").await?;
    used(&be, "quota-not-besteffort", "pods", "0").await
}

async fn quota_scope_terminating(c: Ctx) -> R {
    let t = quota(
        &c,
        "quota-terminating",
        json!({"hard": {"pods": "5"}, "scopes": ["Terminating"]}),
    )
    .await?;
    quota(
        &c,
        "quota-not-terminating",
        json!({"hard": {"pods": "5"}, "scopes": ["NotTerminating"]}),
    )
    .await?;
    used(&t, "quota-terminating", "pods", "0").await?;
    used(&t, "quota-not-terminating", "pods", "0").await?;
    c.k_stdin(&["create", "-f", "-"], Some(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "long-pod"}, "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}).to_string())).await?;
    used(&t, "quota-not-terminating", "pods", "1").await?;
    used(&t, "quota-terminating", "pods", "0").await?;
    c.k_stdin(&["create", "-f", "-"], Some(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "short-pod"}, "spec": {"activeDeadlineSeconds": 3600, "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}).to_string())).await?;
    used(&t, "quota-terminating", "pods", "1").await?;
    c.k(&["delete", "pods", "--all", "--grace-period=0", "--force"])
        .await?;
    used(&t, "quota-terminating", "pods", "0").await?;
    used(&t, "quota-not-terminating", "pods", "0").await
}

// ---- limit ranges

async fn limit_range_defaults(c: Ctx) -> R {
    let api: Api<LimitRange> = c.api();
    api.create(&PostParams::default(), &obj(json!({"metadata": {"name": "limit-range"}, "spec": {"limits": [{"type": "Container",
        "min": {"cpu": "100m", "memory": "10Mi"}, "max": {"cpu": "500m", "memory": "500Mi"},
        "default": {"cpu": "500m", "memory": "500Mi"}, "defaultRequest": {"cpu": "100m", "memory": "200Mi"}}]}}))?).await?;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod-no-resources"}, "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}});
    let out = c
        .k_stdin(&["create", "-f", "-", "-o", "json"], Some(&pod.to_string()))
        .await?;
    let v: Value = serde_json::from_str(&out)?;
    let res = &v["spec"]["containers"][0]["resources"];
    ensure!(
        res["requests"]["cpu"] == "100m"
            && res["requests"]["memory"] == "200Mi"
            && res["limits"]["cpu"] == "500m"
            && res["limits"]["memory"] == "500Mi",
        "the pod got resources {res}"
    );
    let over = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod-over"}, "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "600m"}, "limits": {"cpu": "600m"}}}]}});
    let err = c
        .k_fails(&["create", "-f", "-"], Some(&over.to_string()))
        .await?;
    ensure!(
        err.contains("maximum cpu usage per Container is 500m"),
        "a pod over the range was refused with: {err}"
    );
    Ok(())
}

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    vec![
        t!(
            "ConfigMap lifecycle",
            "[sig-node] ConfigMap should run through a ConfigMap lifecycle [Conformance]",
            configmap_lifecycle
        ),
        t!(
            "ConfigMap, with empty-key",
            "[sig-node] ConfigMap should fail to create ConfigMap with empty key [Conformance]",
            configmap_empty_key
        ),
        t!(
            "Secrets, with empty-key",
            "[sig-node] Secrets should fail to create secret due to empty secret key [Conformance]",
            secret_empty_key
        ),
        t!(
            "Secret patching",
            "[sig-node] Secrets should patch a secret [Conformance]",
            secret_patching
        ),
        t!(
            "ServiceAccount lifecycle test",
            "[sig-auth] ServiceAccounts should run through the lifecycle of a ServiceAccount [Conformance]",
            service_account_lifecycle
        ),
        t!(
            "ServiceAccount, update a ServiceAccount",
            "[sig-auth] ServiceAccounts should update a ServiceAccount [Conformance]",
            service_account_update
        ),
        t!(
            "ServiceAccount, create and review token",
            "[sig-auth] ServiceAccounts should create a serviceAccountToken and ensure a successful TokenReview [Conformance]",
            service_account_token_review
        ),
        t!(
            "RootCA ConfigMap test",
            "[sig-auth] ServiceAccounts should guarantee kube-root-ca.crt exist in any namespace [Conformance]",
            root_ca_configmap
        ),
        t!(
            "ResourceQuota, object count quota, configmap",
            "[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a configMap. [Conformance]",
            quota_configmap
        ),
        t!(
            "ResourceQuota, object count quota, secret",
            "[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a secret. [Conformance]",
            quota_secret
        ),
        t!(
            "ResourceQuota, object count quota, service",
            "[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a service. [Conformance]",
            quota_service
        ),
        t!(
            "ResourceQuota, object count quota, replicaSet",
            "[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a replica set. [Conformance]",
            quota_replicaset
        ),
        t!(
            "ResourceQuota, object count quota, replicationController",
            "[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a replication controller. [Conformance]",
            quota_rc
        ),
        t!(
            "ResourceQuota, object count quota, pod",
            "[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a pod. [Conformance]",
            quota_pod
        ),
        t!(
            "ResourceQuota, object count quota, resourcequotas",
            "[sig-api-machinery] ResourceQuota should create a ResourceQuota and ensure its status is promptly calculated. [Conformance]",
            quota_resourcequotas
        ),
        t!(
            "ResourceQuota, update and delete",
            "[sig-api-machinery] ResourceQuota should be able to update and delete ResourceQuota. [Conformance]",
            quota_update_delete
        ),
        t!(
            "ResourceQuota, manage lifecycle of a ResourceQuota",
            "[sig-api-machinery] ResourceQuota should manage the lifecycle of a ResourceQuota [Conformance]",
            quota_lifecycle
        ),
        t!(
            "ResourceQuota, apply changes to a ResourceQuota status",
            "[sig-api-machinery] ResourceQuota should apply changes to a resourcequota status [Conformance]",
            quota_status
        ),
        t!(
            "ResourceQuota, quota scope, BestEffort and NotBestEffort scope",
            "[sig-api-machinery] ResourceQuota should verify ResourceQuota with best effort scope. [Conformance]",
            quota_scope_best_effort
        ),
        t!(
            "ResourceQuota, quota scope, Terminating and NotTerminating scope",
            "[sig-api-machinery] ResourceQuota should verify ResourceQuota with terminating scopes. [Conformance]",
            quota_scope_terminating
        ),
        t!(
            "LimitRange, resources",
            "[sig-scheduling] LimitRange should create a LimitRange with defaults and ensure pod has those defaults applied. [Conformance]",
            limit_range_defaults
        ),
    ]
}

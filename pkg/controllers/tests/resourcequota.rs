//! The resourcequota controller against a real API server: status.used follows the
//! namespace's objects, and the API server's quota admission refuses creates over it.

mod common;

use common::{Cluster, eventually};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ResourceQuota};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

fn pod(name: &str, cpu: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx",
            "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}, "limits": {"memory": "64Mi"}}}]},
    }))
    .expect("pod")
}

async fn used(api: &Api<ResourceQuota>, name: &str, resource: &str) -> Option<String> {
    let q = api.get(name).await.ok()?;
    Some(q.status?.used?.get(resource)?.0.clone())
}

#[tokio::test]
async fn quota_usage_follows_objects_and_limits_creates() {
    let c = Cluster::start().await;
    c.namespace("quota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(c.client.clone(), "quota");
    let q: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "compute"},
        "spec": {"hard": {"pods": "2", "requests.cpu": "1", "requests.memory": "1Gi",
                          "limits.memory": "1Gi", "configmaps": "10",
                          "count/deployments.apps": "3"}},
    }))
    .expect("quota");
    quotas
        .create(&PostParams::default(), &q)
        .await
        .expect("create quota");
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "quota");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("one".into());
    cms.create(&PostParams::default(), &cm).await.expect("cm");

    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "quota");
    // Until the controller has counted, admission cannot vouch for the quota.
    eventually("quota synced", || async {
        let q = quotas.get("compute").await.ok()?;
        let s = q.status?;
        (s.hard?.len() == 6).then_some(())
    })
    .await;
    pods.create(&PostParams::default(), &pod("a", "300m"))
        .await
        .expect("pod a");
    eventually("usage of one pod", || async {
        let n = cms
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .len()
            .to_string();
        let ok = used(&quotas, "compute", "pods").await? == "1"
            && used(&quotas, "compute", "requests.cpu").await? == "300m"
            && used(&quotas, "compute", "requests.memory").await? == "64Mi"
            && used(&quotas, "compute", "configmaps").await? == n
            && used(&quotas, "compute", "count/deployments.apps").await? == "0";
        ok.then_some(())
    })
    .await;
    pods.create(&PostParams::default(), &pod("b", "800m"))
        .await
        .expect_err("over requests.cpu");
    pods.create(&PostParams::default(), &pod("b", "300m"))
        .await
        .expect("pod b");
    let err = pods
        .create(&PostParams::default(), &pod("c", "100m"))
        .await
        .expect_err("over pods");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 403);
            assert_eq!(
                s.message,
                "pods \"c\" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2"
            );
        }
        other => panic!("unexpected {other}"),
    }
    pods.delete("a", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete");
    eventually("usage after a delete", || async {
        let ok = used(&quotas, "compute", "pods").await? == "1"
            && used(&quotas, "compute", "requests.cpu").await? == "300m";
        ok.then_some(())
    })
    .await;
}

//! The HorizontalPodAutoscaler controller against a real API server: replicas kept
//! within the bounds through the target's scale, and upstream's account of why it
//! cannot scale on metrics while no metrics API is served.

mod common;

use common::{Cluster, eventually};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

async fn deployment(c: &Cluster, ns: &str, name: &str, replicas: i32) {
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(c.client.clone(), ns)
        .create(&PostParams::default(), &d)
        .await
        .expect("create deployment");
}

async fn hpa(c: &Cluster, ns: &str, name: &str, min: i32, max: i32) {
    let h: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "minReplicas": min, "maxReplicas": max,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                     "target": {"type": "Utilization", "averageUtilization": 50}}}]},
    }))
    .expect("hpa");
    Api::<HorizontalPodAutoscaler>::namespaced(c.client.clone(), ns)
        .create(&PostParams::default(), &h)
        .await
        .expect("create hpa");
}

fn condition(h: &HorizontalPodAutoscaler, t: &str) -> Option<(String, String, String)> {
    let c = h
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)?;
    Some((c.status.clone(), c.reason.clone()?, c.message.clone()?))
}

#[tokio::test]
async fn hpa_enforces_bounds_and_explains_missing_metrics() {
    let c = Cluster::start().await;
    c.namespace("hpa").await;
    let deploys: Api<Deployment> = Api::namespaced(c.client.clone(), "hpa");
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.client.clone(), "hpa");
    deployment(&c, "hpa", "low", 1).await;
    deployment(&c, "hpa", "high", 6).await;
    deployment(&c, "hpa", "inside", 3).await;
    hpa(&c, "hpa", "low", 2, 5).await;
    hpa(&c, "hpa", "high", 1, 4).await;
    hpa(&c, "hpa", "inside", 1, 5).await;

    for (name, want) in [("low", 2), ("high", 4)] {
        eventually(&format!("{name} scaled to {want}"), || async {
            let d = deploys.get(name).await.ok()?;
            (d.spec?.replicas? == want).then_some(())
        })
        .await;
        let h = eventually(&format!("{name} status"), || async {
            let h = hpas.get(name).await.ok()?;
            let s = h.status.clone()?;
            (s.desired_replicas == want && s.last_scale_time.is_some()).then_some(h)
        })
        .await;
        assert_eq!(
            condition(&h, "AbleToScale"),
            Some((
                "True".into(),
                "SucceededRescale".into(),
                format!("the HPA controller was able to update the target scale to {want}")
            ))
        );
    }

    let h = eventually("inside: ScalingActive False", || async {
        let h = hpas.get("inside").await.ok()?;
        condition(&h, "ScalingActive").map(|_| h)
    })
    .await;
    assert_eq!(
        condition(&h, "ScalingActive"),
        Some((
            "False".into(),
            "FailedGetResourceMetric".into(),
            "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)".into()
        ))
    );
    assert_eq!(
        condition(&h, "AbleToScale").map(|c| c.1),
        Some("SucceededGetScale".into())
    );
    assert_eq!(h.status.as_ref().and_then(|s| s.current_replicas), Some(3));
    assert_eq!(
        deploys
            .get("inside")
            .await
            .ok()
            .and_then(|d| d.spec?.replicas),
        Some(3)
    );
    let events: Api<Event> = Api::namespaced(c.client.clone(), "hpa");
    let note = eventually("FailedComputeMetricsReplicas event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedComputeMetricsReplicas"))
            .and_then(|e| e.message)
    })
    .await;
    assert_eq!(
        note,
        "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)"
    );
}

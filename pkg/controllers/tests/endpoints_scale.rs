//! A rough scale check of the endpoint controllers (ignored by default: run with
//! `cargo test -p k1s-controllers --release --test endpoints_scale -- --ignored`):
//! 20 Services of 100 ready pods each converge to full Endpoints and slices.

mod common;

use std::time::Instant;

use common::{Cluster, eventually};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn twenty_services_of_a_hundred_pods_converge() {
    let cluster = Cluster::start().await;
    cluster.namespace("scale").await;
    let c = cluster.client.clone();
    let nodes: Api<Node> = Api::all(c.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let services: Api<Service> = Api::namespaced(c.clone(), "scale");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "scale");
    for s in 0..20 {
        let svc: Service = serde_json::from_value(json!({"metadata": {"name": format!("s{s}")},
            "spec": {"selector": {"app": format!("s{s}")}, "ports": [{"port": 80}]}}))
        .unwrap();
        services.create(&PostParams::default(), &svc).await.unwrap();
    }
    let start = Instant::now();
    for i in 0..2000 {
        let s = i % 20;
        let pod: Pod = serde_json::from_value(
            json!({"metadata": {"name": format!("p{i}"), "labels": {"app": format!("s{s}")}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]}}),
        )
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        let ip = format!("10.42.{}.{}", i / 250, i % 250);
        let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}]}});
        pods.patch_status(
            &format!("p{i}"),
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
        .unwrap();
    }
    let created = start.elapsed();
    let eps: Api<Endpoints> = Api::namespaced(c.clone(), "scale");
    let slices: Api<EndpointSlice> = Api::namespaced(c.clone(), "scale");
    eventually("every Endpoints full", || async {
        let list = eps.list(&ListParams::default()).await.ok()?;
        let full = list.items.iter().filter(|e| {
            e.subsets
                .iter()
                .flatten()
                .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
                .sum::<usize>()
                == 100
        });
        (full.count() == 20).then_some(())
    })
    .await;
    eventually("every slice full", || async {
        let list = slices.list(&ListParams::default()).await.ok()?;
        let n: usize = list.items.iter().map(|s| s.endpoints.len()).sum();
        (n == 2000).then_some(())
    })
    .await;
    eprintln!(
        "2000 pods written in {created:?}; endpoints converged {:?} after",
        start.elapsed() - created
    );
}

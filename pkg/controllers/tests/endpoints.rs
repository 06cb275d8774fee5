//! The endpoints and EndpointSlice controllers against an in-process API server: the
//! test acts as the kubelet, giving pods IPs and flipping their readiness.

mod common;

use common::{Cluster, eventually};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

async fn create<K>(api: &Api<K>, v: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(v).expect("object");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create")
}

async fn set_status(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("patch status");
}

fn addresses(ep: &Endpoints, ready: bool) -> Vec<String> {
    let mut out: Vec<String> = ep
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| {
            if ready {
                s.addresses.clone()
            } else {
                s.not_ready_addresses.clone()
            }
        })
        .flatten()
        .map(|a| a.ip)
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn services_get_endpoints_and_slices_that_follow_pod_readiness() {
    let cluster = Cluster::start().await;
    cluster.namespace("web").await;
    let c = cluster.client.clone();
    let nodes: Api<Node> = Api::all(c.clone());
    create(
        &nodes,
        json!({"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z1"}}}),
    )
    .await;
    let services: Api<Service> = Api::namespaced(c.clone(), "web");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "web");
    let eps: Api<Endpoints> = Api::namespaced(c.clone(), "web");
    let slices: Api<EndpointSlice> = Api::namespaced(c.clone(), "web");
    create(
        &services,
        json!({"metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
    )
    .await;
    // A Service without a selector: its Endpoints are the user's.
    create(
        &services,
        json!({"metadata": {"name": "manual"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    create(
        &eps,
        json!({"metadata": {"name": "manual"},
        "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]}),
    )
    .await;
    for (name, ip, ready) in [("a", "10.42.0.1", true), ("b", "10.42.0.2", false)] {
        create(
            &pods,
            json!({"metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx",
                     "ports": [{"name": "http", "containerPort": 8080}]}]}}),
        )
        .await;
        set_status(&pods, name, ip, ready).await;
    }

    let ep = eventually(
        "endpoints with one ready and one not-ready address",
        || async {
            eps.get_opt("web").await.ok().flatten().filter(|ep| {
                addresses(ep, true) == ["10.42.0.1"] && addresses(ep, false) == ["10.42.0.2"]
            })
        },
    )
    .await;
    let subset = &ep.subsets.as_ref().unwrap()[0];
    assert_eq!(subset.ports.as_ref().unwrap()[0].port, 8080);
    assert_eq!(
        subset.addresses.as_ref().unwrap()[0].node_name.as_deref(),
        Some("n1")
    );
    assert_eq!(ep.metadata.labels.as_ref().unwrap()["app"], "web");
    assert!(
        ep.metadata
            .annotations
            .as_ref()
            .unwrap()
            .contains_key("endpoints.kubernetes.io/last-change-trigger-time")
    );

    let slice = eventually("a slice with both pods", || async {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .ok()?;
        list.items.into_iter().find(|s| s.endpoints.len() == 2)
    })
    .await;
    assert!(slice.metadata.name.as_deref().unwrap().starts_with("web-"));
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(slice.ports.as_ref().unwrap()[0].port, Some(8080));
    assert_eq!(
        slice.metadata.labels.as_ref().unwrap()["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    let a = slice
        .endpoints
        .iter()
        .find(|e| e.addresses == ["10.42.0.1"])
        .unwrap();
    assert_eq!(a.conditions.as_ref().unwrap().ready, Some(true));
    assert_eq!(a.zone.as_deref(), Some("z1"));
    let b = slice
        .endpoints
        .iter()
        .find(|e| e.addresses == ["10.42.0.2"])
        .unwrap();
    assert_eq!(b.conditions.as_ref().unwrap().ready, Some(false));

    // a turns not ready, b ready.
    set_status(&pods, "a", "10.42.0.1", false).await;
    set_status(&pods, "b", "10.42.0.2", true).await;
    eventually("the addresses to swap", || async {
        eps.get_opt("web").await.ok().flatten().filter(|ep| {
            addresses(ep, true) == ["10.42.0.2"] && addresses(ep, false) == ["10.42.0.1"]
        })
    })
    .await;
    // Relabelled: a leaves the Service.
    pods.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .unwrap();
    eventually("a to leave", || async {
        eps.get_opt("web")
            .await
            .ok()
            .flatten()
            .filter(|ep| addresses(ep, true) == ["10.42.0.2"] && addresses(ep, false).is_empty())
    })
    .await;
    eventually("a to leave the slice", || async {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .ok()?;
        (list.items.len() == 1 && list.items[0].endpoints.len() == 1).then_some(())
    })
    .await;

    // The user's Endpoints were left alone, and mirrored into a slice.
    let manual = eps.get("manual").await.unwrap();
    assert_eq!(addresses(&manual, true), ["192.0.2.1"]);
    let mirrored = eventually("the mirrored slice", || async {
        let list = slices
            .list(&ListParams::default().labels(
                "kubernetes.io/service-name=manual,endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io",
            ))
            .await
            .ok()?;
        list.items.into_iter().next()
    })
    .await;
    assert_eq!(mirrored.endpoints[0].addresses, ["192.0.2.1"]);
    assert_eq!(mirrored.ports.as_ref().unwrap()[0].port, Some(80));
    // The API server's `kubernetes` Endpoints are not mirrored.
    let default_slices: Api<EndpointSlice> = Api::namespaced(c.clone(), "default");
    let mirrored_kubernetes = default_slices
        .list(&ListParams::default().labels(
            "endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io",
        ))
        .await
        .unwrap();
    assert!(mirrored_kubernetes.items.is_empty());
    // Its Endpoints deleted, the mirrored slice goes.
    eps.delete("manual", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the mirrored slice to go", || async {
        let list = slices
            .list(&ListParams::default().labels(
                "kubernetes.io/service-name=manual,endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io",
            ))
            .await
            .ok()?;
        list.items.is_empty().then_some(())
    })
    .await;

    // A pod on a node nobody knows is left out of slices, and the Service says why.
    create(
        &services,
        json!({"metadata": {"name": "ghost"},
        "spec": {"selector": {"app": "ghost"}, "ports": [{"port": 80}]}}),
    )
    .await;
    create(
        &pods,
        json!({"metadata": {"name": "g", "labels": {"app": "ghost"}},
        "spec": {"nodeName": "nowhere", "containers": [{"name": "c", "image": "nginx"}]}}),
    )
    .await;
    set_status(&pods, "g", "10.42.0.9", true).await;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(c.clone(), "web");
    let event = eventually("FailedToUpdateEndpointSlices", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedToUpdateEndpointSlices"))
    })
    .await;
    assert_eq!(
        event.regarding.as_ref().unwrap().name.as_deref(),
        Some("ghost")
    );
    assert!(
        event
            .note
            .as_deref()
            .unwrap_or("")
            .contains("Error updating Endpoint Slices for Service web/ghost")
    );
    // The Endpoints controller does not look at nodes.
    eventually("ghost's endpoints", || async {
        eps.get_opt("ghost")
            .await
            .ok()
            .flatten()
            .filter(|ep| addresses(ep, true) == ["10.42.0.9"])
    })
    .await;

    // The Service goes: its Endpoints and (through the garbage collector) slices go.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the endpoints to go", || async {
        eps.get_opt("web")
            .await
            .ok()
            .and_then(|e| e.is_none().then_some(()))
    })
    .await;
    eventually("the slices to go", || async {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .ok()?;
        list.items.is_empty().then_some(())
    })
    .await;
}

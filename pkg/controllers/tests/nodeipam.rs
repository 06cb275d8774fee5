//! The node IPAM controller against a real API server: nodes get the next free subnet of
//! the cluster CIDR, keep it, the simulator's own CIDRs are respected, a full range says
//! `CIDRNotAvailable`, and a restarted controller rebuilds what is taken from the Nodes.

mod common;

use common::eventually;
use k1s_apiserver::test_util::TestApiServer;
use k1s_controllers::{CONTROLLERS, ControllerConfig};
use k8s_openapi::api::core::v1::{Event, Node};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use tokio::sync::oneshot;

/// Starts only the node IPAM controller over `cidr`; it stops when the sender is dropped.
fn start(client: &kube::Client, cidr: &str) -> oneshot::Sender<()> {
    let ipam: Vec<_> = CONTROLLERS
        .iter()
        .filter(|d| d.name == "node-ipam-controller")
        .copied()
        .collect();
    assert_eq!(ipam.len(), 1, "node-ipam-controller is in the table");
    let config = ControllerConfig {
        cluster_cidr: Some(cidr.parse().expect("cidr")),
        ..Default::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    k1s_controllers::run_with(client.clone(), config, ipam, async move {
        let _ = stopped.await;
    });
    stop
}

async fn create_node(nodes: &Api<Node>, name: &str, pod_cidr: Option<&str>) {
    let mut node = json!({"metadata": {"name": name}});
    if let Some(cidr) = pod_cidr {
        node["spec"] = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
    }
    let node: Node = serde_json::from_value(node).expect("node");
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
}

/// The node's `podCIDR` and `podCIDRs`, once it has them.
async fn cidr_of(nodes: &Api<Node>, name: &str) -> String {
    eventually(&format!("a pod CIDR on {name}"), || async {
        let node = nodes.get(name).await.ok()?;
        let spec = node.spec?;
        let cidr = spec.pod_cidr?;
        assert_eq!(
            spec.pod_cidrs,
            Some(vec![cidr.clone()]),
            "podCIDRs of {name}"
        );
        Some(cidr)
    })
    .await
}

#[tokio::test]
async fn nodes_get_free_subnets_keep_them_and_wait_when_the_range_is_full() {
    let server = TestApiServer::new().await;
    let client = server.client();
    let nodes: Api<Node> = Api::all(client.clone());
    // A node that set its own CIDR (as the simulated nodes do) before the controller ran.
    create_node(&nodes, "simulated", Some("10.42.0.0/24")).await;
    let _stop = start(&client, "10.42.0.0/22");

    create_node(&nodes, "a", None).await;
    assert_eq!(cidr_of(&nodes, "a").await, "10.42.1.0/24");
    create_node(&nodes, "b", None).await;
    assert_eq!(cidr_of(&nodes, "b").await, "10.42.2.0/24");
    create_node(&nodes, "c", None).await;
    assert_eq!(cidr_of(&nodes, "c").await, "10.42.3.0/24");
    assert_eq!(cidr_of(&nodes, "simulated").await, "10.42.0.0/24");

    // The /22 is used up: the next node is told so and waits.
    create_node(&nodes, "d", None).await;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let event = eventually("a CIDRNotAvailable event for d", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("CIDRNotAvailable")
                && e.involved_object.name.as_deref() == Some("d")
        })
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Normal"));
    assert_eq!(
        event.message.as_deref(),
        Some("Node d status is now: CIDRNotAvailable")
    );
    assert_eq!(event.involved_object.kind.as_deref(), Some("Node"));
    let d = nodes.get("d").await.expect("d");
    assert!(d.spec.and_then(|s| s.pod_cidr).is_none());

    // A deleted node frees its subnet for the waiting one; the others keep theirs.
    nodes
        .delete("b", &DeleteParams::default())
        .await
        .expect("delete b");
    assert_eq!(cidr_of(&nodes, "d").await, "10.42.2.0/24");
    assert_eq!(cidr_of(&nodes, "a").await, "10.42.1.0/24");
    assert_eq!(cidr_of(&nodes, "c").await, "10.42.3.0/24");
}

#[tokio::test]
async fn a_restarted_controller_rebuilds_what_is_taken_from_the_nodes() {
    let server = TestApiServer::new().await;
    let client = server.client();
    let nodes: Api<Node> = Api::all(client.clone());
    let stop = start(&client, "10.42.0.0/16");
    create_node(&nodes, "a", None).await;
    create_node(&nodes, "b", None).await;
    let a = cidr_of(&nodes, "a").await;
    let b = cidr_of(&nodes, "b").await;
    assert_ne!(a, b);
    drop(stop);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    // Started again, it must not hand out a or b's subnet, nor touch them.
    let _stop = start(&client, "10.42.0.0/16");
    create_node(&nodes, "c", None).await;
    let c = cidr_of(&nodes, "c").await;
    assert!(c != a && c != b, "{c} was taken");
    assert_eq!(cidr_of(&nodes, "a").await, a);
    assert_eq!(cidr_of(&nodes, "b").await, b);
}

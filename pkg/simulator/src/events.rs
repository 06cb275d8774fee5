//! The events a kubelet posts about the pods it runs (`Pulled`, `Created`, `Started` when
//! a container starts, `Killing` when it is stopped), reported by `kubelet` from the
//! node. Written straight as `events.k8s.io/v1` Events, each unique, without a
//! recorder's aggregation cache: at 30k pods that cache would cost more than the pods.

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

/// One event about one container of a pod.
pub(crate) struct ContainerEvent {
    /// `spec.containers` or `spec.initContainers`.
    pub(crate) list: &'static str,
    /// The container's name.
    pub(crate) container: String,
    /// Upstream's reason.
    pub(crate) reason: &'static str,
    /// Upstream's message.
    pub(crate) note: String,
}

/// The events of a container that starts, in the kubelet's order and words.
pub(crate) fn started(list: &'static str, container: &str, image: &str) -> [ContainerEvent; 3] {
    let name = || container.to_string();
    [
        ContainerEvent {
            list,
            container: name(),
            reason: "Pulled",
            note: format!(
                "Container image \"{image}\" already present on machine and can be accessed by the pod"
            ),
        },
        ContainerEvent {
            list,
            container: name(),
            reason: "Created",
            note: format!("Created container: {container}"),
        },
        ContainerEvent {
            list,
            container: name(),
            reason: "Started",
            note: format!("Started container {container}"),
        },
    ]
}

/// The event of a container being stopped.
pub(crate) fn killing(list: &'static str, container: &str) -> ContainerEvent {
    ContainerEvent {
        list,
        container: container.to_string(),
        reason: "Killing",
        note: format!("Stopping container {container}"),
    }
}

/// What a starting kubelet says about its node: it starts, its conditions, its
/// allocatable limits, and that it is ready.
pub(crate) async fn post_node_started(client: &kube::Client, node: &str, uid: Option<String>) {
    let status = |s: &str| format!("Node {node} status is now: {s}");
    let notes = [
        ("Starting", "Starting kubelet.".to_string()),
        ("NodeHasSufficientMemory", status("NodeHasSufficientMemory")),
        ("NodeHasNoDiskPressure", status("NodeHasNoDiskPressure")),
        ("NodeHasSufficientPID", status("NodeHasSufficientPID")),
        (
            "NodeAllocatableEnforced",
            "Updated Node Allocatable limit across pods".to_string(),
        ),
        ("NodeReady", status("NodeReady")),
    ];
    let regarding = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: Some(node.to_string()),
        uid,
        ..ObjectReference::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    for (reason, note) in notes {
        let event = event(node, node, "default", reason, note, regarding.clone());
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(node, error = %e, "cannot post a kubelet event");
        }
    }
}

fn event(
    node: &str,
    about: &str,
    ns: &str,
    reason: &str,
    note: String,
    regarding: ObjectReference,
) -> Event {
    let now = Timestamp::now();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{about}.{:x}", now.as_nanosecond())),
            namespace: Some(ns.to_string()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        action: Some(reason.to_string()),
        reason: Some(reason.to_string()),
        note: Some(note),
        type_: Some("Normal".into()),
        reporting_controller: Some("kubelet".into()),
        reporting_instance: Some(node.to_string()),
        regarding: Some(regarding),
        ..Event::default()
    }
}

/// Posts the events (errors are logged: events are best effort, as upstream's are).
pub(crate) async fn post(client: &kube::Client, node: &str, pod: &Pod, events: &[ContainerEvent]) {
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    for ev in events {
        let regarding = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            uid: pod.metadata.uid.clone(),
            field_path: Some(format!("{}{{{}}}", ev.list, ev.container)),
            ..ObjectReference::default()
        };
        let event = event(node, &name, &ns, ev.reason, ev.note.clone(), regarding);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(pod = %name, error = %e, "cannot post a kubelet event");
        }
    }
}

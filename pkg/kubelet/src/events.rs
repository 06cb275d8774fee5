//! The kubelet's events (`Pulling`, `Pulled`, `Created`, `Started`, `Killing`, `BackOff`,
//! `Failed`, `Unhealthy`, and the node's own), written as `events.k8s.io/v1` Events by
//! `kubelet` from this node.
//!
//! Aggregated as upstream's recorder (and k1s's controllers' one) does: a repeat of the
//! same event (same object, type, reason and note) bumps the series count of the first
//! instead of writing another object, so a crash-looping container cannot flood the store.
//! Writes go through one background task so a pod worker never waits on them.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;

/// Distinct events remembered for aggregation; the memory starts over beyond it.
const MAX_REMEMBERED: usize = 4096;

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something went wrong.
    Warning,
}

#[derive(Debug)]
struct Record {
    regarding: ObjectReference,
    type_: EventType,
    reason: String,
    note: String,
}

/// Writes the kubelet's events; cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Record>,
}

impl Recorder {
    /// A recorder writing through `client` as the kubelet of `node`; its writer task
    /// ends when every clone is dropped.
    pub fn new(client: kube::Client, node: &str) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(client, node.to_string(), rx));
        Self { tx }
    }

    /// Records an event about `pod`, or about one of its containers when `field_path`
    /// (`spec.containers{name}`) is given.
    pub fn pod(
        &self,
        pod: &Pod,
        field_path: Option<String>,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let regarding = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path,
        };
        self.record(regarding, type_, reason, note);
    }

    /// Records an event about the node `name`.
    pub fn node(
        &self,
        name: &str,
        uid: Option<String>,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let regarding = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(name.to_string()),
            uid,
            ..ObjectReference::default()
        };
        self.record(regarding, type_, reason, note);
    }

    fn record(&self, regarding: ObjectReference, type_: EventType, reason: &str, note: String) {
        let _ = self.tx.send(Record {
            regarding,
            type_,
            reason: reason.to_string(),
            note,
        });
    }
}

type Key = (
    String,
    String,
    String,
    Option<String>,
    EventType,
    String,
    String,
);

async fn writer(client: kube::Client, node: String, mut rx: mpsc::UnboundedReceiver<Record>) {
    let mut seen: HashMap<Key, (String, i32)> = HashMap::new();
    while let Some(rec) = rx.recv().await {
        let ns = rec
            .regarding
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let key: Key = (
            ns.clone(),
            rec.regarding.name.clone().unwrap_or_default(),
            rec.regarding.uid.clone().unwrap_or_default(),
            rec.regarding.field_path.clone(),
            rec.type_,
            rec.reason.clone(),
            rec.note.clone(),
        );
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        let now = Timestamp::now();
        if let Some((name, count)) = seen.get(&key).cloned() {
            let series = EventSeries {
                count: count + 1,
                last_observed_time: MicroTime(now),
            };
            match api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "series": series })),
                )
                .await
            {
                Ok(_) => {
                    seen.insert(key, (name, count + 1));
                    continue;
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    tracing::debug!(error = %e, "cannot update a kubelet event");
                    continue;
                }
            }
        }
        let base = rec.regarding.name.clone().unwrap_or_else(|| node.clone());
        let name = format!("{base}.{:x}", now.as_nanosecond());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns),
                ..ObjectMeta::default()
            },
            action: Some(rec.reason.clone()),
            reason: Some(rec.reason.clone()),
            note: Some(rec.note.clone()),
            type_: Some(
                match rec.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            event_time: Some(MicroTime(now)),
            regarding: Some(rec.regarding),
            reporting_controller: Some("kubelet".into()),
            reporting_instance: Some(node.clone()),
            ..Event::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                if seen.len() >= MAX_REMEMBERED {
                    seen.clear();
                }
                seen.insert(key, (name, 1));
            }
            Err(e) => tracing::debug!(error = %e, "cannot write a kubelet event"),
        }
    }
}

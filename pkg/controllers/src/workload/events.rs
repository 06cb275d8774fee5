//! Events the controllers write (`events.k8s.io/v1`, readable as core Events), with the
//! reporting component named as upstream names it (`replicaset-controller`, …) and
//! aggregated as upstream's event recorder does: a repeat of the same event (same object,
//! type, reason, action and note) bumps the series count of the first instead of adding
//! another object, so a crash-looping workload cannot flood the store.
//!
//! kube-runtime's `Recorder` keys its series without the note, so "Created pod: a"
//! followed by "Created pod: b" would read as two occurrences of the first; this one takes
//! the same [`Event`] and keys on the note too.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as EventObject, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use parking_lot::Mutex;
use serde_json::json;

/// Distinct events remembered for aggregation; the memory starts over beyond it.
const MAX_REMEMBERED: usize = 4096;

/// Where events of cluster-scoped objects (nodes) go, as upstream puts them.
const CLUSTER_EVENTS_NAMESPACE: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    regarding: (String, String, String),
    related: Option<(String, String, String)>,
    warning: bool,
    reason: String,
    action: String,
    note: String,
}

fn identity(r: &ObjectReference) -> (String, String, String) {
    (
        r.kind.clone().unwrap_or_default(),
        r.name.clone().unwrap_or_default(),
        r.uid.clone().unwrap_or_default(),
    )
}

struct Inner {
    client: kube::Client,
    controller: String,
    /// Event name and series count of each event written, by what makes it the same.
    seen: Mutex<HashMap<Key, (String, i32)>>,
}

/// Writes one controller's events; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

impl Recorder {
    /// A recorder whose events name `controller` as their reporting controller.
    pub fn new(client: kube::Client, controller: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                controller: controller.to_string(),
                seen: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Records `ev` about `regarding`: a new Event, or one more in the series of the same
    /// event written before.
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let inner = &self.inner;
        let namespace = regarding
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| CLUSTER_EVENTS_NAMESPACE.to_string());
        let warning = matches!(ev.type_, EventType::Warning);
        let key = Key {
            namespace: namespace.clone(),
            regarding: identity(regarding),
            related: ev.secondary.as_ref().map(identity),
            warning,
            reason: ev.reason.clone(),
            action: ev.action.clone(),
            note: ev.note.clone().unwrap_or_default(),
        };
        let api: Api<EventObject> = Api::namespaced(inner.client.clone(), &namespace);
        let now = Timestamp::now();
        let repeat = inner.seen.lock().get(&key).cloned();
        if let Some((name, count)) = repeat {
            let series = EventSeries {
                count: count + 1,
                last_observed_time: MicroTime(now),
            };
            let patch = json!({ "series": series });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {
                    inner.seen.lock().insert(key, (name, count + 1));
                    return Ok(());
                }
                // Gone (expired, deleted): start a new one below.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let base = regarding
            .name
            .clone()
            .unwrap_or_else(|| inner.controller.clone());
        let name = format!("{base}.{:x}", now.as_nanosecond());
        let event = EventObject {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace),
                ..ObjectMeta::default()
            },
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            note: ev.note.clone(),
            type_: Some(if warning { "Warning" } else { "Normal" }.to_string()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: ev.secondary.clone(),
            reporting_controller: Some(inner.controller.clone()),
            reporting_instance: Some(inner.controller.clone()),
            ..EventObject::default()
        };
        api.create(&PostParams::default(), &event).await?;
        let mut seen = inner.seen.lock();
        if seen.len() >= MAX_REMEMBERED {
            seen.clear();
        }
        seen.insert(key, (name, 1));
        Ok(())
    }
}

/// A recorder whose events name `controller` (upstream's component name) as their
/// reporting controller.
pub fn recorder(client: kube::Client, controller: &str) -> Recorder {
    Recorder::new(client, controller)
}

#[cfg(test)]
mod tests {
    use k1s_apiserver::test_util::TestApiServer;
    use kube::api::ListParams;

    use super::*;

    fn event(note: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: "SuccessfulCreate".into(),
            note: Some(note.into()),
            action: "Create".into(),
            secondary: None,
        }
    }

    #[tokio::test]
    async fn repeats_join_a_series_and_other_notes_are_events_of_their_own() {
        let server = TestApiServer::new().await;
        let client = server.client();
        let rec = recorder(client.clone(), "replicaset-controller");
        let regarding = ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some("ReplicaSet".into()),
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("u1".into()),
            ..ObjectReference::default()
        };
        for note in [
            "Created pod: web-a",
            "Created pod: web-b",
            "Created pod: web-a",
        ] {
            rec.publish(&event(note), &regarding)
                .await
                .expect("publish");
        }
        let api: Api<EventObject> = Api::namespaced(client, "default");
        let mut events: Vec<(String, i32)> = api
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .into_iter()
            .filter(|e| e.reporting_controller.as_deref() == Some("replicaset-controller"))
            .map(|e| (e.note.unwrap_or_default(), e.series.map_or(1, |s| s.count)))
            .collect();
        events.sort();
        assert_eq!(
            events,
            [
                ("Created pod: web-a".to_string(), 2),
                ("Created pod: web-b".to_string(), 1)
            ]
        );
    }
}

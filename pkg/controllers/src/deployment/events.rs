//! Events (`events.k8s.io/v1`, readable as core Events) aggregated as upstream's
//! recorder does: a repeat of the same event (same object, type, reason and message)
//! bumps the series count of the first instead of adding another object.
//!
//! kube-runtime's `Recorder` (behind `workload::recorder`) keys its series without the
//! message, so "Scaled up replica set a from 0 to 1" followed by "... from 1 to 2" would
//! be recorded as a second occurrence of the first text; hence this sink.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use parking_lot::Mutex;
use serde_json::json;

/// Distinct events remembered for aggregation before the memory is cleared.
const MAX_REMEMBERED: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    uid: String,
    type_: &'static str,
    reason: String,
    note: String,
}

/// Writes a controller's events.
pub struct EventSink {
    client: kube::Client,
    controller: String,
    seen: Mutex<HashMap<Key, (String, i32)>>,
}

impl EventSink {
    /// A sink whose events name `controller` as their reporting controller.
    pub fn new(client: kube::Client, controller: &str) -> Self {
        Self {
            client,
            controller: controller.to_string(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event about `regarding`; `warning` picks the type. Failures are logged:
    /// events are best effort.
    pub async fn publish(
        &self,
        regarding: ObjectReference,
        warning: bool,
        reason: &str,
        note: &str,
    ) {
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let key = Key {
            namespace: namespace.clone(),
            uid: regarding.uid.clone().unwrap_or_default(),
            type_: if warning { "Warning" } else { "Normal" },
            reason: reason.to_string(),
            note: note.to_string(),
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let now = Timestamp::now();
        let repeat = self.seen.lock().get(&key).cloned();
        if let Some((name, count)) = repeat {
            let series = EventSeries {
                count: count + 1,
                last_observed_time: MicroTime(now),
            };
            let patch = json!({"series": series});
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .is_ok()
            {
                self.seen.lock().insert(key, (name, count + 1));
                return;
            }
        }
        let base = regarding
            .name
            .clone()
            .unwrap_or_else(|| self.controller.clone());
        let name = format!("{base}.{:x}", now.as_nanosecond());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace),
                ..ObjectMeta::default()
            },
            action: Some(reason.to_string()),
            reason: Some(reason.to_string()),
            note: Some(note.to_string()),
            type_: Some(key.type_.to_string()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.controller.clone()),
            ..Event::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                let mut seen = self.seen.lock();
                if seen.len() >= MAX_REMEMBERED {
                    seen.clear();
                }
                seen.insert(key, (name, 1));
            }
            Err(e) => tracing::debug!(error = %e, reason, "recording event failed"),
        }
    }
}

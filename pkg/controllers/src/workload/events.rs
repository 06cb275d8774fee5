//! Events the controllers write (`events.k8s.io/v1`, readable as core Events), with the
//! reporting component named as upstream names it (`replicaset-controller`, …) and
//! aggregated as upstream's event recorder does: a repeat of the same event (same object,
//! type, reason, action and note) bumps the series count of the first instead of adding
//! another object, so a crash-looping workload cannot flood the store.
//!
//! Like upstream's recorder, each controller also rate-limits its events per object (the
//! spam filter: a bucket of 25 events refilled by one every 5 minutes), so a ReplicaSet
//! of 100 replicas records its first 25 `SuccessfulCreate` events, not 100.
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

/// Events about one object one controller may record at once (upstream's
/// `defaultSpamBurst`).
const SPAM_BURST: f64 = 25.0;

/// How often the bucket gains one event back (upstream's `defaultSpamQPS`, 1/300).
const SPAM_REFILL: std::time::Duration = std::time::Duration::from_secs(300);

/// The object a spam-filter bucket counts: namespace, then kind, name and uid.
type BucketKey = (String, (String, String, String));

/// A token bucket per object: how many events may be recorded now, as of when.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

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
    /// The spam filter's bucket of each object (namespace, kind, name, uid).
    buckets: Mutex<HashMap<BucketKey, Bucket>>,
}

impl Inner {
    /// Takes one event from the object's bucket; false when it is empty (the event is
    /// dropped, as upstream's spam filter drops it).
    fn allow(&self, namespace: &str, regarding: &(String, String, String)) -> bool {
        let now = std::time::Instant::now();
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_REMEMBERED {
            // Full buckets are the default: forgetting them loses nothing.
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() / SPAM_REFILL.as_secs_f64()
                    < SPAM_BURST
            });
        }
        let b = buckets
            .entry((namespace.to_string(), regarding.clone()))
            .or_insert(Bucket {
                tokens: SPAM_BURST,
                at: now,
            });
        let refill = now.duration_since(b.at).as_secs_f64() / SPAM_REFILL.as_secs_f64();
        b.tokens = (b.tokens + refill).min(SPAM_BURST);
        b.at = now;
        if b.tokens < 1.0 {
            return false;
        }
        b.tokens -= 1.0;
        true
    }
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
                buckets: Mutex::new(HashMap::new()),
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
        if !inner.allow(&namespace, &identity(regarding)) {
            tracing::trace!(reason = %ev.reason, "event dropped by the spam filter");
            return Ok(());
        }
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

    #[tokio::test]
    async fn an_object_gets_25_events_at_once_then_one_per_five_minutes() {
        let server = TestApiServer::new().await;
        let rec = recorder(server.client(), "replicaset-controller");
        let web = (
            "ReplicaSet".to_string(),
            "web".to_string(),
            "u1".to_string(),
        );
        let other = (
            "ReplicaSet".to_string(),
            "other".to_string(),
            "u2".to_string(),
        );
        let allowed = (0..30).filter(|_| rec.inner.allow("default", &web)).count();
        assert_eq!(allowed, 25);
        // Another object has a bucket of its own.
        assert!(rec.inner.allow("default", &other));
        // Five minutes refill one.
        if let Some(b) = rec
            .inner
            .buckets
            .lock()
            .get_mut(&("default".to_string(), web.clone()))
        {
            b.at -= SPAM_REFILL;
        }
        assert!(rec.inner.allow("default", &web));
        assert!(!rec.inner.allow("default", &web));
    }
}

//! The status both kinds share (upstream's `calculateStatus`): replicas counted from the
//! claimed active pods, and the `ReplicaFailure` condition while creates or deletes fail.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k1s_apimachinery::labels::Selector;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::workload::{is_pod_available, is_pod_ready};

/// The condition a set carries while creating or deleting its pods fails.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// One status condition (`ReplicaSetCondition`, `ReplicationControllerCondition`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetCondition {
    /// `type`.
    pub type_: String,
    /// `status`: True, False or Unknown.
    pub status: String,
    /// `reason`.
    pub reason: Option<String>,
    /// `message`.
    pub message: Option<String>,
    /// `lastTransitionTime`.
    pub last_transition_time: Option<Time>,
}

/// The status of a ReplicaSet or ReplicationController.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetStatus {
    /// Active pods the set controls.
    pub replicas: i32,
    /// Those carrying every label of the template.
    pub fully_labeled_replicas: i32,
    /// Those Ready.
    pub ready_replicas: i32,
    /// Those Ready for at least `minReadySeconds`.
    pub available_replicas: i32,
    /// Pods the set controls that are being deleted (ReplicaSets only).
    pub terminating_replicas: Option<i32>,
    /// The generation this status describes.
    pub observed_generation: i64,
    /// Conditions.
    pub conditions: Vec<SetCondition>,
}

/// A count as upstream serializes it: zero omitted (`omitempty`), `null` in a merge
/// patch removes it.
fn count(n: i32) -> Value {
    if n == 0 { Value::Null } else { json!(n) }
}

impl SetStatus {
    /// The merge patch of the status subresource that writes exactly this status.
    pub fn to_patch(&self) -> Value {
        let conditions: Vec<Value> = self
            .conditions
            .iter()
            .map(|c| {
                json!({
                    "type": c.type_,
                    "status": c.status,
                    "reason": c.reason,
                    "message": c.message,
                    "lastTransitionTime": c.last_transition_time,
                })
            })
            .collect();
        let mut status = json!({
            "replicas": self.replicas,
            "fullyLabeledReplicas": count(self.fully_labeled_replicas),
            "readyReplicas": count(self.ready_replicas),
            "availableReplicas": count(self.available_replicas),
            "observedGeneration": self.observed_generation,
            "conditions": if conditions.is_empty() { Value::Null } else { Value::Array(conditions) },
        });
        if let Some(t) = self.terminating_replicas {
            status["terminatingReplicas"] = json!(t);
        }
        json!({ "status": status })
    }
}

/// Why the last attempt to create or delete pods failed, for the `ReplicaFailure`
/// condition.
#[derive(Debug, Clone, PartialEq)]
pub struct ManageFailure {
    /// `FailedCreate` or `FailedDelete`.
    pub reason: &'static str,
    /// The error.
    pub message: String,
}

/// What [`calculate`] reads off the set.
#[derive(Debug, Clone, Copy)]
pub struct SetSpec<'a> {
    /// `metadata.generation`.
    pub generation: i64,
    /// The template's labels.
    pub template_labels: &'a BTreeMap<String, String>,
    /// `spec.minReadySeconds`.
    pub min_ready_seconds: i32,
    /// Whether the kind reports `terminatingReplicas`.
    pub terminating_replicas: bool,
}

/// The new status: counts from the claimed active pods (and the terminating ones), the
/// `ReplicaFailure` condition added when managing pods failed and removed once it works,
/// everything else as it was.
pub fn calculate(
    current: &SetStatus,
    spec: SetSpec<'_>,
    active: &[Arc<Pod>],
    terminating: usize,
    failure: Option<&ManageFailure>,
    now: Timestamp,
) -> SetStatus {
    let template = Selector::from_set(spec.template_labels);
    let mut status = current.clone();
    status.replicas = len_i32(active.len());
    status.fully_labeled_replicas = len_i32(
        active
            .iter()
            .filter(|p| template.matches(p.metadata.labels.as_ref().unwrap_or(&BTreeMap::new())))
            .count(),
    );
    status.ready_replicas = len_i32(active.iter().filter(|p| is_pod_ready(p)).count());
    status.available_replicas = len_i32(
        active
            .iter()
            .filter(|p| is_pod_ready(p) && is_pod_available(p, spec.min_ready_seconds, now))
            .count(),
    );
    status.terminating_replicas = spec.terminating_replicas.then(|| len_i32(terminating));
    status.observed_generation = spec.generation;
    let existing = status
        .conditions
        .iter()
        .position(|c| c.type_ == REPLICA_FAILURE);
    match (failure, existing) {
        (Some(f), None) => status.conditions.push(SetCondition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some(f.reason.into()),
            message: Some(f.message.clone()),
            last_transition_time: Some(Time(now)),
        }),
        (None, Some(i)) => {
            status.conditions.remove(i);
        }
        _ => {}
    }
    status
}

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// When to look again so availability is counted once `minReadySeconds` have passed:
/// the shortest wait among pods that are ready but not yet available.
pub fn next_availability_check(
    active: &[Arc<Pod>],
    min_ready_seconds: i32,
    now: Timestamp,
) -> Option<Duration> {
    if min_ready_seconds <= 0 {
        return None;
    }
    active
        .iter()
        .filter(|p| is_pod_ready(p) && !is_pod_available(p, min_ready_seconds, now))
        .map(|p| {
            let since = ready_since(p).map_or(now.as_second(), |t| t.0.as_second());
            let due_ms = (since + i64::from(min_ready_seconds)) * 1000 - now.as_millisecond();
            // Whole seconds are compared, so wait until the second has fully begun.
            Duration::from_millis(u64::try_from(due_ms.max(0)).unwrap_or(0) + 50)
        })
        .min()
}

fn ready_since(pod: &Pod) -> Option<&Time> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_transition_time
        .as_ref()
}

/// The shortest spacing of two status writes of one set that only move its pod counts.
pub const STATUS_WRITE_SPACING: Duration = Duration::from_secs(1);

/// Spaces the status writes of each set while its pods change one after another.
///
/// A set of 100 pods starting together would otherwise write its status once per pod
/// that is created or becomes ready (and its Deployment once more after each), each write
/// fanned out to every watcher of ReplicaSets. Upstream's controller-manager is held to
/// 20 API writes a second (`--kube-api-qps`), which folds such bursts together; here a
/// change that only moves counts is written at once when the set's last write is older
/// than [`STATUS_WRITE_SPACING`], otherwise when that spacing has passed. Changes of
/// conditions or `observedGeneration`, and a status that has reached the spec (every
/// replica there, ready and available), are written at once.
#[derive(Debug)]
pub struct StatusPacer {
    spacing: Duration,
    /// When each set (by uid) last wrote its status.
    last: Mutex<HashMap<String, Instant>>,
}

impl StatusPacer {
    /// A pacer spacing writes by `spacing`.
    pub fn new(spacing: Duration) -> Self {
        Self {
            spacing,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the change from `current` to `new` is written now (`None`, the write then
    /// counted) or after the returned wait.
    pub fn admit(
        &self,
        uid: &str,
        current: &SetStatus,
        new: &SetStatus,
        replicas: i32,
        now: Instant,
    ) -> Option<Duration> {
        let counts_only = new.observed_generation == current.observed_generation
            && new.conditions == current.conditions;
        let settled = new.replicas == replicas
            && new.ready_replicas == replicas
            && new.available_replicas == replicas
            && new.terminating_replicas.unwrap_or(0) == 0;
        let mut last = self.last.lock();
        if counts_only
            && !settled
            && let Some(at) = last.get(uid)
        {
            let due = *at + self.spacing;
            if due > now {
                return Some(due - now);
            }
        }
        last.insert(uid.to_string(), now);
        None
    }

    /// Forgets a deleted set.
    pub fn forget(&self, uid: &str) {
        self.last.lock().remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn pod(labels: &[(&str, &str)], ready_since: Option<i64>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                conditions: ready_since.map(|t| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(Timestamp::from_second(t).expect("valid"))),
                        ..PodCondition::default()
                    }]
                }),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn counts_come_from_the_claimed_pods() {
        let now = Timestamp::from_second(1_000).expect("valid");
        let labels: BTreeMap<String, String> = [
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "fe".to_string()),
        ]
        .into();
        let spec = SetSpec {
            generation: 4,
            template_labels: &labels,
            min_ready_seconds: 10,
            terminating_replicas: true,
        };
        let pods = [
            pod(&[("app", "web"), ("tier", "fe")], Some(900)),
            pod(&[("app", "web"), ("tier", "fe")], Some(995)),
            pod(&[("app", "web")], None),
        ]
        .map(Arc::new);
        let s = calculate(&SetStatus::default(), spec, &pods, 2, None, now);
        assert_eq!(
            (
                s.replicas,
                s.fully_labeled_replicas,
                s.ready_replicas,
                s.available_replicas
            ),
            (3, 2, 2, 1)
        );
        assert_eq!(
            (s.terminating_replicas, s.observed_generation),
            (Some(2), 4)
        );
        // The second pod becomes available 5 s from now.
        let wait = next_availability_check(&pods, 10, now).expect("a wait");
        assert!(
            wait >= Duration::from_secs(5) && wait < Duration::from_secs(6),
            "{wait:?}"
        );
        let rc = SetSpec {
            terminating_replicas: false,
            ..spec
        };
        assert_eq!(
            calculate(&s, rc, &pods, 2, None, now).terminating_replicas,
            None
        );
    }

    #[test]
    fn replica_failure_is_set_while_managing_fails_and_cleared_after() {
        let now = Timestamp::from_second(1_000).expect("valid");
        let labels = BTreeMap::new();
        let spec = SetSpec {
            generation: 1,
            template_labels: &labels,
            min_ready_seconds: 0,
            terminating_replicas: true,
        };
        let failure = ManageFailure {
            reason: "FailedCreate",
            message: "pods \"web-x\" is forbidden: exceeded quota".into(),
        };
        let failed = calculate(&SetStatus::default(), spec, &[], 0, Some(&failure), now);
        assert_eq!(failed.conditions.len(), 1);
        assert_eq!(failed.conditions[0].reason.as_deref(), Some("FailedCreate"));
        // Failing again keeps the condition as it was (its transition time too).
        let later = Timestamp::from_second(2_000).expect("valid");
        let again = calculate(&failed, spec, &[], 0, Some(&failure), later);
        assert_eq!(again.conditions, failed.conditions);
        let cleared = calculate(&again, spec, &[], 0, None, later);
        assert!(cleared.conditions.is_empty());
        assert_eq!(cleared.to_patch()["status"]["conditions"], Value::Null);
        assert_eq!(cleared.to_patch()["status"]["readyReplicas"], Value::Null);
        assert_eq!(
            cleared.to_patch()["status"]["terminatingReplicas"],
            json!(0)
        );
    }

    #[test]
    fn count_changes_are_spaced_and_the_rest_written_at_once() {
        let pacer = StatusPacer::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let counts = |replicas, ready| SetStatus {
            replicas,
            ready_replicas: ready,
            available_replicas: ready,
            observed_generation: 1,
            ..SetStatus::default()
        };
        // The first write of a set goes at once, the next count change waits out the
        // spacing, and one after the spacing goes at once again.
        assert_eq!(
            pacer.admit("a", &counts(0, 0), &counts(5, 0), 10, at(0)),
            None
        );
        assert_eq!(
            pacer.admit("a", &counts(5, 0), &counts(5, 2), 10, at(300)),
            Some(Duration::from_millis(700))
        );
        assert_eq!(
            pacer.admit("b", &counts(0, 0), &counts(5, 0), 10, at(300)),
            None
        );
        assert_eq!(
            pacer.admit("a", &counts(5, 0), &counts(5, 2), 10, at(1000)),
            None
        );
        // A set that reached its spec, a new generation and a condition are not held.
        assert_eq!(
            pacer.admit("a", &counts(5, 2), &counts(10, 10), 10, at(1100)),
            None
        );
        let mut newer = counts(10, 10);
        newer.observed_generation = 2;
        assert_eq!(
            pacer.admit("a", &counts(10, 10), &newer, 12, at(1200)),
            None
        );
        let mut failing = newer.clone();
        failing.conditions.push(SetCondition {
            type_: REPLICA_FAILURE.into(),
            ..SetCondition::default()
        });
        assert_eq!(pacer.admit("a", &newer, &failing, 12, at(1300)), None);
        // A deleted set starts over.
        let (before, after) = (counts(5, 0), counts(5, 2));
        assert!(pacer.admit("a", &before, &after, 10, at(1400)).is_some());
        pacer.forget("a");
        assert_eq!(pacer.admit("a", &before, &after, 10, at(1400)), None);
    }
}

//! Pods made from templates, and what the controllers read off pods: active, ready,
//! available, and the order in which surplus pods are deleted.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::future::Future;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

/// The annotation that ranks pods for deletion: lower costs go first.
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The pod a controller creates from its template: the template's labels, annotations,
/// finalizers and spec, the controller reference, and a generated name `<prefix>-…`.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    prefix: &str,
    owner: OwnerReference,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}-")),
            namespace: Some(namespace.to_string()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Whether the pod still counts toward its controller's replicas: neither finished
/// (Succeeded, Failed) nor being deleted.
pub fn is_pod_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

fn ready_condition_since(pod: &Pod) -> Option<Option<&Time>> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref())
}

/// Whether the pod's Ready condition is True.
pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_condition_since(pod).is_some()
}

/// Whether the pod has been ready for at least `min_ready_seconds` at `now` (with no
/// minimum, ready is available).
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_condition_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => {
            let ready_for = now.as_second() - since.0.as_second();
            ready_for >= i64::from(min_ready_seconds)
        }
    }
}

fn phase_rank(pod: &Pod) -> u8 {
    match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| {
            cs.iter().map(|c| c.restart_count).max().unwrap_or(0)
        })
}

/// Upstream's logarithmic comparison of two ages: times in the same power-of-two bucket
/// of seconds before `now` are equal, so scale-down is not biased by tiny differences.
/// Newer sorts first.
fn log_age_cmp(a: Option<&Time>, b: Option<&Time>, now: Timestamp) -> Ordering {
    let bucket = |t: Option<&Time>| -> Option<i64> {
        let t = t?;
        let secs = now.as_second() - t.0.as_second();
        Some(if secs <= 0 {
            -1
        } else {
            i64::from(63 - secs.leading_zeros() as i32)
        })
    };
    match (bucket(a), bucket(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

/// Sorts pods so that the ones to delete first come first, as upstream's
/// `ActivePodsWithRanks` (with logarithmic scale-down): unscheduled before scheduled;
/// Pending, then Unknown, then Running; not ready before ready; lower
/// `pod-deletion-cost` first; pods sharing a node with more of `related` first; ready
/// for less time first; more restarts first; newer first.
pub fn active_pods_deletion_order(pods: &mut [Pod], related: &[Pod], now: Timestamp) {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for p in related {
        if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.as_deref())
            && is_pod_active(p)
        {
            *per_node.entry(node).or_default() += 1;
        }
    }
    let node_of = |p: &Pod| -> String {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    let rank = |p: &Pod| -> usize {
        let node = node_of(p);
        if node.is_empty() {
            0
        } else {
            per_node.get(node.as_str()).copied().unwrap_or(0)
        }
    };
    pods.sort_by(|a, b| {
        let (na, nb) = (node_of(a), node_of(b));
        na.is_empty()
            .cmp(&nb.is_empty())
            .reverse()
            .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
            .then_with(|| is_pod_ready(a).cmp(&is_pod_ready(b)))
            .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
            .then_with(|| rank(b).cmp(&rank(a)))
            .then_with(|| {
                let since = |p| ready_condition_since(p).flatten();
                if is_pod_ready(a) && is_pod_ready(b) {
                    log_age_cmp(since(a), since(b), now)
                } else {
                    Ordering::Equal
                }
            })
            .then_with(|| restarts(b).cmp(&restarts(a)))
            .then_with(|| {
                log_age_cmp(
                    a.metadata.creation_timestamp.as_ref(),
                    b.metadata.creation_timestamp.as_ref(),
                    now,
                )
            })
    });
}

/// The first batch of a slow start: upstream creates 1 pod, then 2, 4, … so that a
/// template every create fails for costs one request, not hundreds.
pub const SLOW_START_INITIAL_BATCH_SIZE: usize = 1;

/// Runs `op` `count` times in doubling batches (1, 2, 4, …), each batch concurrently,
/// stopping after the first batch in which any call fails. Returns how many succeeded
/// and the first error.
pub async fn slow_start_batch<F, Fut, E>(count: usize, mut op: F) -> (usize, Option<E>)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut done = 0;
    let mut batch = SLOW_START_INITIAL_BATCH_SIZE.min(count);
    while batch > 0 {
        let results = futures::future::join_all((done..done + batch).map(&mut op)).await;
        let mut first_err = None;
        for r in results {
            match r {
                Ok(()) => done += 1,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if first_err.is_some() {
            return (done, first_err);
        }
        batch = (batch * 2).min(count - done);
    }
    (done, None)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};

    use super::*;

    fn at(s: i64) -> Time {
        Time(Timestamp::from_second(s).expect("valid"))
    }

    fn pod(name: &str, node: &str, phase: &str, ready_since: Option<i64>, created: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(at(created)),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_string()),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_since.map(|t| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(at(t)),
                        ..PodCondition::default()
                    }]
                }),
                ..PodStatus::default()
            }),
        }
    }

    fn names(pods: &[Pod]) -> Vec<&str> {
        pods.iter()
            .map(|p| p.metadata.name.as_deref().unwrap_or(""))
            .collect()
    }

    #[test]
    fn least_useful_pods_go_first() {
        let now = Timestamp::from_second(100_000).expect("valid");
        let mut pods = vec![
            pod("ready-old", "n1", "Running", Some(1_000), 500),
            pod("unscheduled", "", "Pending", None, 99_000),
            pod("pending", "n2", "Pending", None, 99_000),
            pod("running-not-ready", "n2", "Running", None, 99_000),
            pod("ready-new", "n3", "Running", Some(99_990), 99_900),
        ];
        let related = pods.clone();
        active_pods_deletion_order(&mut pods, &related, now);
        assert_eq!(
            names(&pods),
            [
                "unscheduled",
                "pending",
                "running-not-ready",
                "ready-new",
                "ready-old"
            ]
        );
    }

    #[test]
    fn doubled_up_pods_go_before_lonely_ones() {
        let now = Timestamp::from_second(100_000).expect("valid");
        let mut pods = vec![
            pod("alone", "n1", "Running", Some(50_000), 1_000),
            pod("shared-a", "n2", "Running", Some(50_000), 1_000),
            pod("shared-b", "n2", "Running", Some(50_000), 1_000),
        ];
        let related = pods.clone();
        active_pods_deletion_order(&mut pods, &related, now);
        assert_eq!(names(&pods)[2], "alone");
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let now = Timestamp::from_second(1_000).expect("valid");
        let p = pod("p", "n", "Running", Some(990), 900);
        assert!(is_pod_ready(&p));
        assert!(is_pod_available(&p, 0, now));
        assert!(is_pod_available(&p, 10, now));
        assert!(!is_pod_available(&p, 11, now));
        assert!(!is_pod_available(
            &pod("q", "n", "Running", None, 900),
            0,
            now
        ));
    }

    #[test]
    fn pods_from_templates_carry_the_controller_reference() {
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec::default()),
        };
        let owner = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "web-1".into(),
            uid: "u".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let p = pod_from_template(&template, "ns", "web-1", owner.clone());
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-1-"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(p.metadata.owner_references, Some(vec![owner]));
        assert_eq!(p.metadata.labels, template.metadata.and_then(|m| m.labels));
    }

    #[tokio::test]
    async fn slow_start_stops_after_the_first_failing_batch() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let calls = AtomicUsize::new(0);
        // Batches 1, 2, 4: the fourth call fails, so the batch of 4 is the last.
        let (ok, err) = slow_start_batch(20, |i| {
            calls.fetch_add(1, SeqCst);
            async move { if i == 3 { Err("quota") } else { Ok(()) } }
        })
        .await;
        assert_eq!((ok, err), (6, Some("quota")));
        assert_eq!(calls.load(SeqCst), 7);
        let (ok, err) = slow_start_batch(5, |_| async { Ok::<(), ()>(()) }).await;
        assert_eq!((ok, err), (5, None));
    }
}

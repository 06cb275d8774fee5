//! What decides a pod's failure and a Job's success beyond counting (upstream
//! `pod_failure_policy.go`, `success_policy.go`, `backoff_utils.go`).

use std::time::Duration;

use k8s_openapi::api::batch::v1::{
    Job, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, SuccessPolicy,
};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;

use super::indexes::Intervals;

/// The first back-off after a failed pod (upstream `DefaultJobPodFailureBackOff`).
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(10);
/// The longest back-off (upstream `MaxJobPodFailureBackOff`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(360);

/// What a matching pod failure policy rule says about a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyMatch {
    /// The Job must fail, with this message (`FailJob`).
    pub fail_job: Option<String>,
    /// Whether the failure counts toward `backoffLimit`.
    pub count: bool,
    /// The action of the matching rule, if one matched.
    pub action: Option<String>,
}

fn exit_code_matches(code: i32, req: &PodFailurePolicyOnExitCodesRequirement) -> bool {
    let listed = req.values.contains(&code);
    match req.operator.as_str() {
        "In" => listed,
        "NotIn" => !listed,
        _ => false,
    }
}

fn matching_container<'a>(
    statuses: Option<&'a Vec<ContainerStatus>>,
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<(&'a ContainerStatus, i32)> {
    statuses.into_iter().flatten().find_map(|cs| {
        let code = cs.state.as_ref()?.terminated.as_ref()?.exit_code;
        let named = req.container_name.as_ref().is_none_or(|n| *n == cs.name);
        (named && code != 0 && exit_code_matches(code, req)).then_some((cs, code))
    })
}

/// Upstream's `matchPodFailurePolicy`: the first rule matching the failed pod's exit
/// codes (containers, then init containers) or conditions decides.
pub fn match_pod_failure_policy(policy: &PodFailurePolicy, pod: &Pod) -> PolicyMatch {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.as_ref();
    for (index, rule) in policy.rules.iter().enumerate() {
        let matched: Option<String> = if let Some(req) = &rule.on_exit_codes {
            let st = status.and_then(|s| {
                matching_container(s.container_statuses.as_ref(), req)
                    .or_else(|| matching_container(s.init_container_statuses.as_ref(), req))
            });
            st.map(|(cs, code)| {
                format!(
                    "Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {index}",
                    cs.name, rule.action
                )
            })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .find(|c| {
                    patterns.iter().any(|p| {
                        let want = p.status.as_deref().unwrap_or("True");
                        p.type_ == c.type_ && want == c.status
                    })
                })
                .map(|c| {
                    format!(
                        "Pod {ns}/{name} has condition {} matching {} rule at index {index}",
                        c.type_, rule.action
                    )
                })
        } else {
            None
        };
        let Some(message) = matched else { continue };
        let action = Some(rule.action.clone());
        return match rule.action.as_str() {
            "Ignore" => PolicyMatch {
                fail_job: None,
                count: false,
                action,
            },
            "FailJob" => PolicyMatch {
                fail_job: Some(message),
                count: true,
                action,
            },
            // Count, and FailIndex (handled by the caller for per-index back-off).
            _ => PolicyMatch {
                fail_job: None,
                count: true,
                action,
            },
        };
    }
    PolicyMatch {
        fail_job: None,
        count: true,
        action: None,
    }
}

/// Upstream's `matchSuccessPolicy`: the message of the first rule the succeeded indexes
/// satisfy.
pub fn match_success_policy(
    policy: Option<&SuccessPolicy>,
    completions: i32,
    succeeded: &Intervals,
) -> Option<String> {
    for (index, rule) in policy?.rules.iter().enumerate() {
        let met = if let Some(ixs) = &rule.succeeded_indexes {
            let required = Intervals::parse(ixs, completions);
            let matched = required.iter().filter(|ix| succeeded.has(*ix)).count();
            match rule.succeeded_count {
                None => matched == required.total(),
                Some(n) => matched >= usize::try_from(n).unwrap_or(0),
            }
        } else if let Some(n) = rule.succeeded_count {
            succeeded.total() >= usize::try_from(n).unwrap_or(0)
        } else {
            false
        };
        if met {
            return Some(format!("Matched rules at index {index}"));
        }
    }
    None
}

/// Whether the pod failed, as upstream's `isPodFailed`: its phase says so, or (unless
/// the Job only replaces Failed pods) it is being deleted without having succeeded.
pub fn is_pod_failed(pod: &Pod, job: &Job) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase == Some("Failed") {
        return true;
    }
    if only_replace_failed_pods(job) {
        return false;
    }
    pod.metadata.deletion_timestamp.is_some() && phase != Some("Succeeded")
}

/// Whether replacements wait until a pod has fully failed (`podReplacementPolicy:
/// Failed`, implied by a pod failure policy).
pub fn only_replace_failed_pods(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    spec.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
        || spec.is_some_and(|s| s.pod_failure_policy.is_some())
}

/// When the pod finished: its containers' latest termination, else its deletion, else
/// its Ready condition's last change, else its creation (upstream `getFinishedTime`).
pub fn finished_at(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref();
    let terminated = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| {
            c.state
                .as_ref()?
                .terminated
                .as_ref()?
                .finished_at
                .as_ref()
                .map(|t| t.0)
        })
        .max();
    terminated
        .or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .or_else(|| {
            status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .find(|c| c.type_ == "Ready")
                .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
        })
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// How long a Job whose pods failed `failures` times in a row since the last success,
/// the last at `last_failure`, still waits before creating pods: 10 s doubling per
/// failure up to 6 minutes, counted from the last failure.
pub fn backoff_remaining(
    failures: u32,
    last_failure: Option<Timestamp>,
    now: Timestamp,
) -> Duration {
    let Some(last) = last_failure else {
        return Duration::ZERO;
    };
    if failures == 0 {
        return Duration::ZERO;
    }
    let exp = (failures - 1).min(16);
    let backoff = DEFAULT_BACKOFF.saturating_mul(1u32 << exp).min(MAX_BACKOFF);
    let since = now.duration_since(last);
    let since = Duration::try_from(since).unwrap_or(Duration::ZERO);
    backoff.saturating_sub(since)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn backoff_doubles_from_ten_seconds_to_six_minutes() {
        let t0 = Timestamp::from_second(1_000).expect("ts");
        let at = |s: i64| Timestamp::from_second(1_000 + s).expect("ts");
        assert_eq!(backoff_remaining(0, Some(t0), t0), Duration::ZERO);
        assert_eq!(backoff_remaining(1, Some(t0), t0), Duration::from_secs(10));
        assert_eq!(
            backoff_remaining(1, Some(t0), at(4)),
            Duration::from_secs(6)
        );
        assert_eq!(backoff_remaining(2, Some(t0), t0), Duration::from_secs(20));
        assert_eq!(backoff_remaining(3, Some(t0), at(40)), Duration::ZERO);
        assert_eq!(backoff_remaining(6, Some(t0), t0), Duration::from_secs(320));
        assert_eq!(backoff_remaining(7, Some(t0), t0), MAX_BACKOFF);
        assert_eq!(backoff_remaining(40, Some(t0), t0), MAX_BACKOFF);
    }

    fn failed_pod(exit: i32, conditions: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {
                "phase": "Failed",
                "conditions": conditions,
                "containerStatuses": [{
                    "name": "main", "image": "i", "imageID": "", "ready": false,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": exit}}
                }]
            }
        }))
        .expect("pod")
    }

    #[test]
    fn pod_failure_policy_rules_match_in_order() {
        let policy: PodFailurePolicy = serde_json::from_value(json!({"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}}
        ]}))
        .expect("policy");
        let m = match_pod_failure_policy(&policy, &failed_pod(42, json!([])));
        assert_eq!(
            m.fail_job.as_deref(),
            Some(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0"
            )
        );
        let disrupted = json!([{"type": "DisruptionTarget", "status": "True"}]);
        let m = match_pod_failure_policy(&policy, &failed_pod(1, disrupted));
        assert_eq!((m.count, m.action.as_deref()), (false, Some("Ignore")));
        let m = match_pod_failure_policy(&policy, &failed_pod(3, json!([])));
        assert_eq!((m.count, m.action.as_deref()), (true, Some("Count")));
        let m = match_pod_failure_policy(&policy, &failed_pod(1, json!([])));
        assert_eq!((m.count, m.action), (true, None));
    }

    #[test]
    fn success_policy_rules() {
        let policy: SuccessPolicy = serde_json::from_value(json!({"rules": [
            {"succeededIndexes": "0-2", "succeededCount": 2},
            {"succeededCount": 4}
        ]}))
        .expect("policy");
        let s = Intervals::parse("0,5", 10);
        assert_eq!(match_success_policy(Some(&policy), 10, &s), None);
        let s = Intervals::parse("0,2", 10);
        assert_eq!(
            match_success_policy(Some(&policy), 10, &s).as_deref(),
            Some("Matched rules at index 0")
        );
        let s = Intervals::parse("5-8", 10);
        assert_eq!(
            match_success_policy(Some(&policy), 10, &s).as_deref(),
            Some("Matched rules at index 1")
        );
    }
}

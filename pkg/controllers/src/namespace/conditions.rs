//! The status conditions a terminating namespace carries, in upstream's words
//! (`pkg/controller/namespace/deletion/status_condition_utils.go`): each of the five
//! types is always present, `True` with the failure or `False` with the all-clear.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NamespaceCondition, NamespaceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Discovery failed for some groups.
pub const DISCOVERY_FAILURE: &str = "NamespaceDeletionDiscoveryFailure";
/// A group version could not be parsed.
pub const GV_PARSING_FAILURE: &str = "NamespaceDeletionGroupVersionParsingFailure";
/// Deleting some resource type failed.
pub const CONTENT_FAILURE: &str = "NamespaceDeletionContentFailure";
/// Objects remain in the namespace.
pub const CONTENT_REMAINING: &str = "NamespaceContentRemaining";
/// Objects with finalizers remain in the namespace.
pub const FINALIZERS_REMAINING: &str = "NamespaceFinalizersRemaining";

/// The condition types the namespace controller maintains, in upstream's order.
pub const CONDITION_TYPES: [&str; 5] = [
    DISCOVERY_FAILURE,
    GV_PARSING_FAILURE,
    CONTENT_FAILURE,
    CONTENT_REMAINING,
    FINALIZERS_REMAINING,
];

fn ok_reason(t: &str) -> &'static str {
    match t {
        DISCOVERY_FAILURE => "ResourcesDiscovered",
        GV_PARSING_FAILURE => "ParsedGroupVersions",
        CONTENT_FAILURE => "ContentDeleted",
        _ => "ContentRemoved",
    }
}

fn ok_message(t: &str) -> &'static str {
    match t {
        DISCOVERY_FAILURE => "All resources successfully discovered",
        GV_PARSING_FAILURE => "All legacy kube types successfully parsed",
        CONTENT_FAILURE => "All content successfully deleted, may be waiting on finalization",
        _ => "All content successfully removed",
    }
}

/// What one pass over a namespace's content found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentReport {
    /// Discovery failure message, if any group failed.
    pub discovery_error: Option<String>,
    /// Group versions that could not be parsed.
    pub group_version_errors: Vec<String>,
    /// One message per resource type whose deletion failed.
    pub delete_errors: Vec<String>,
    /// `resource.group` → objects still present.
    pub remaining: BTreeMap<String, usize>,
    /// Finalizer → objects still carrying it.
    pub finalizers: BTreeMap<String, usize>,
}

impl ContentReport {
    /// Whether anything stands between the namespace and its finalization.
    pub fn has_errors(&self) -> bool {
        self.discovery_error.is_some()
            || !self.group_version_errors.is_empty()
            || !self.delete_errors.is_empty()
    }

    /// The failing conditions (`True`); types not listed are all-clear.
    pub fn failing_conditions(&self, now: &Time) -> Vec<NamespaceCondition> {
        let cond = |t: &str, reason: &str, message: String| NamespaceCondition {
            type_: t.to_string(),
            status: "True".into(),
            last_transition_time: Some(now.clone()),
            reason: Some(reason.into()),
            message: Some(message),
        };
        let mut out = Vec::new();
        if let Some(msg) = &self.discovery_error {
            out.push(cond(DISCOVERY_FAILURE, "DiscoveryFailed", msg.clone()));
        }
        if !self.group_version_errors.is_empty() {
            out.push(cond(
                GV_PARSING_FAILURE,
                "GroupVersionParsingFailed",
                self.group_version_errors.join(", "),
            ));
        }
        if !self.delete_errors.is_empty() {
            let mut msgs = self.delete_errors.clone();
            msgs.sort();
            out.push(cond(
                CONTENT_FAILURE,
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    msgs.len(),
                    msgs.join(", ")
                ),
            ));
        }
        let remaining: Vec<String> = self
            .remaining
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{r} has {n} resource instances"))
            .collect();
        if !remaining.is_empty() {
            out.push(cond(
                CONTENT_REMAINING,
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", remaining.join(", ")),
            ));
        }
        let finalizers: Vec<String> = self
            .finalizers
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        if !finalizers.is_empty() {
            // Upstream's reason really is singular here.
            out.push(cond(
                FINALIZERS_REMAINING,
                "SomeFinalizerRemain",
                format!("Some finalizers are remaining: {}", finalizers.join(", ")),
            ));
        }
        out
    }
}

/// Brings `status.conditions` in line with `failing` (all other maintained types become
/// all-clear); returns whether anything changed. The transition time moves only when a
/// condition's status flips, as upstream's `updateConditions` does.
pub fn update_conditions(
    status: &mut NamespaceStatus,
    failing: &[NamespaceCondition],
    now: &Time,
) -> bool {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let mut changed = false;
    for t in CONDITION_TYPES {
        let new = failing
            .iter()
            .find(|c| c.type_ == t)
            .cloned()
            .unwrap_or_else(|| NamespaceCondition {
                type_: t.to_string(),
                status: "False".into(),
                last_transition_time: Some(now.clone()),
                reason: Some(ok_reason(t).into()),
                message: Some(ok_message(t).into()),
            });
        match conditions.iter_mut().find(|c| c.type_ == t) {
            None => {
                conditions.push(new);
                changed = true;
            }
            Some(old)
                if old.status != new.status
                    || old.reason != new.reason
                    || old.message != new.message =>
            {
                if old.status != new.status {
                    old.last_transition_time = Some(now.clone());
                }
                old.status = new.status;
                old.reason = new.reason;
                old.message = new.message;
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
    }

    fn find<'a>(s: &'a NamespaceStatus, t: &str) -> &'a NamespaceCondition {
        s.conditions
            .as_ref()
            .and_then(|c| c.iter().find(|c| c.type_ == t))
            .unwrap_or_else(|| panic!("no {t} condition"))
    }

    #[test]
    fn a_clean_pass_sets_all_five_conditions_false() {
        // kubectl describe ns shows all five; a missing one reads as "unknown".
        let mut status = NamespaceStatus::default();
        let report = ContentReport::default();
        assert!(update_conditions(
            &mut status,
            &report.failing_conditions(&now()),
            &now()
        ));
        assert_eq!(status.conditions.as_ref().map(Vec::len), Some(5));
        let c = find(&status, CONTENT_FAILURE);
        assert_eq!(c.status, "False");
        assert_eq!(c.reason.as_deref(), Some("ContentDeleted"));
        assert_eq!(
            c.message.as_deref(),
            Some("All content successfully deleted, may be waiting on finalization")
        );
        // A second identical pass changes nothing, so no status write follows.
        assert!(!update_conditions(
            &mut status,
            &report.failing_conditions(&now()),
            &now()
        ));
    }

    #[test]
    fn remaining_content_and_finalizers_are_counted_in_upstreams_words() {
        // Users find stuck namespaces by these messages.
        let mut report = ContentReport::default();
        report.remaining.insert("configmaps.".into(), 2);
        report.remaining.insert("widgets.example.com".into(), 1);
        report.finalizers.insert("example.com/hold".into(), 1);
        let mut status = NamespaceStatus::default();
        update_conditions(&mut status, &report.failing_conditions(&now()), &now());
        let c = find(&status, CONTENT_REMAINING);
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("True", Some("SomeResourcesRemain"))
        );
        assert_eq!(
            c.message.as_deref(),
            Some(
                "Some resources are remaining: configmaps. has 2 resource instances, widgets.example.com has 1 resource instances"
            )
        );
        let f = find(&status, FINALIZERS_REMAINING);
        assert_eq!(f.reason.as_deref(), Some("SomeFinalizerRemain"));
        assert_eq!(
            f.message.as_deref(),
            Some("Some finalizers are remaining: example.com/hold in 1 resource instances")
        );
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        // A message change alone must not look like a new transition.
        let t0 = now();
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(60).unwrap_or(t0.0));
        let mut status = NamespaceStatus::default();
        let mut report = ContentReport::default();
        report.remaining.insert("pods.".into(), 1);
        update_conditions(&mut status, &report.failing_conditions(&t0), &t0);
        report.remaining.insert("pods.".into(), 2);
        assert!(update_conditions(
            &mut status,
            &report.failing_conditions(&t1),
            &t1
        ));
        assert_eq!(
            find(&status, CONTENT_REMAINING).last_transition_time,
            Some(t0.clone())
        );
        let clean = ContentReport::default();
        assert!(update_conditions(
            &mut status,
            &clean.failing_conditions(&t1),
            &t1
        ));
        let c = find(&status, CONTENT_REMAINING);
        assert_eq!(
            (c.status.as_str(), c.last_transition_time.clone()),
            ("False", Some(t1))
        );
    }

    #[test]
    fn delete_errors_are_sorted_and_counted() {
        let report = ContentReport {
            delete_errors: vec!["b failed".into(), "a failed".into()],
            ..Default::default()
        };
        assert!(report.has_errors());
        let conds = report.failing_conditions(&now());
        assert_eq!(
            conds[0].message.as_deref(),
            Some("Failed to delete all resource types, 2 remaining: a failed, b failed")
        );
    }
}

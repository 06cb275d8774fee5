//! Table tests of the rollout arithmetic, written from the behaviour upstream's
//! `deployment_util_test.go`, `sync_test.go` and `rolling_test.go` check.

use k8s_openapi::api::apps::v1::{
    DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, PodSpec};

use super::*;

fn int(i: i32) -> IntOrString {
    IntOrString::Int(i)
}

fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}

fn tmpl(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some(image.into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
    }
}

fn deploy(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            generation: Some(1),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some([("app".to_string(), "web".to_string())].into()),
                ..LabelSelector::default()
            },
            template: tmpl("nginx:1"),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(surge),
                    max_unavailable: Some(unavailable),
                }),
            }),
            progress_deadline_seconds: Some(600),
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

fn rs(name: &str, created: i64, replicas: i32, available: i32) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            creation_timestamp: Some(Time(Timestamp::from_second(created).expect("time"))),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            template: Some(tmpl("nginx:1")),
            ..ReplicaSetSpec::default()
        }),
        status: Some(ReplicaSetStatus {
            replicas,
            available_replicas: Some(available),
            ready_replicas: Some(available),
            ..ReplicaSetStatus::default()
        }),
    }
}

fn with_max(mut rs: ReplicaSet, desired: i32, max: i32) -> ReplicaSet {
    set_replicas_annotations(&mut rs, desired, max);
    rs
}

#[test]
fn fenceposts_round_surge_up_and_unavailable_down() {
    // (maxSurge, maxUnavailable, replicas) -> (surge, unavailable)
    let cases = [
        (pct("25%"), pct("25%"), 10, (3, 2)),
        (pct("25%"), pct("25%"), 1, (1, 0)),
        (pct("25%"), pct("25%"), 4, (1, 1)),
        (int(0), int(0), 5, (0, 1)),
        (pct("0%"), pct("0%"), 5, (0, 1)),
        (int(2), pct("50%"), 5, (2, 2)),
        (pct("100%"), pct("100%"), 3, (3, 3)),
        (pct("30%"), int(0), 3, (1, 0)),
    ];
    for (surge, unavailable, replicas, want) in cases {
        assert_eq!(
            resolve_fenceposts(Some(&surge), Some(&unavailable), replicas),
            want,
            "{surge:?} {unavailable:?} of {replicas}"
        );
    }
}

#[test]
fn max_unavailable_is_capped_and_zero_without_rolling_update() {
    assert_eq!(max_unavailable(&deploy(3, int(0), int(5))), 3);
    assert_eq!(max_unavailable(&deploy(0, int(1), int(1))), 0);
    assert_eq!(max_unavailable(&deploy(10, pct("25%"), pct("25%"))), 2);
    let mut recreate = deploy(10, int(1), int(1));
    if let Some(s) = recreate.spec.as_mut() {
        s.strategy = Some(DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        });
    }
    assert_eq!(max_unavailable(&recreate), 0);
    assert_eq!(max_surge(&recreate), 0);
    // Recreate creates the new ReplicaSet at full size.
    let new = rs("new", 2, 0, 0);
    assert_eq!(
        new_rs_new_replicas(&recreate, std::slice::from_ref(&new), &new),
        10
    );
}

#[test]
fn new_replica_set_grows_within_max_surge() {
    // (replicas, maxSurge, old replicas, new replicas) -> new size
    let cases = [
        (1, 1, 1, 0, 1),
        (3, 1, 3, 0, 1),
        (3, 1, 3, 1, 1), // at the surge limit already
        (3, 1, 2, 1, 2),
        (10, 3, 10, 0, 3),
        (10, 3, 5, 5, 8),
        (10, 3, 0, 5, 10), // never beyond the replicas
        (5, 0, 5, 0, 0),
    ];
    for (replicas, surge, old, new, want) in cases {
        let d = deploy(replicas, int(surge), int(1));
        let old_rs = rs("old", 1, old, old);
        let new_rs = rs("new", 2, new, 0);
        assert_eq!(
            new_rs_new_replicas(&d, &[old_rs, new_rs.clone()], &new_rs),
            want,
            "replicas {replicas} surge {surge} old {old} new {new}"
        );
    }
}

#[test]
fn proportional_scaling_shares_by_the_annotated_size() {
    // 5 -> 10 with no surge: 3 old + 2 new become 6 + 4.
    let d = deploy(10, int(0), int(1));
    let mut all = vec![
        with_max(rs("old", 1, 3, 3), 5, 5),
        with_max(rs("new", 2, 2, 2), 5, 5),
    ];
    let sizes = crate::deployment::sync::proportional_sizes(&d, &mut all, 10);
    let got: Vec<(&str, i32)> = all.iter().map(name).zip(sizes).collect();
    assert_eq!(got, [("old", 6), ("new", 4)]);

    // 10 -> 5: 6 old + 4 new become 3 + 2, the larger first.
    let d = deploy(5, int(0), int(1));
    let mut all = vec![
        with_max(rs("new", 2, 4, 4), 10, 10),
        with_max(rs("old", 1, 6, 6), 10, 10),
    ];
    let sizes = crate::deployment::sync::proportional_sizes(&d, &mut all, 5);
    let got: Vec<(&str, i32)> = all.iter().map(name).zip(sizes).collect();
    assert_eq!(got, [("old", 3), ("new", 2)]);

    // 10 -> 11 with two equal halves: the newer takes the rounded-up share.
    let d = deploy(11, int(0), int(1));
    let mut all = vec![
        with_max(rs("old", 1, 5, 5), 10, 10),
        with_max(rs("new", 2, 5, 5), 10, 10),
    ];
    let sizes = crate::deployment::sync::proportional_sizes(&d, &mut all, 11);
    let got: Vec<(&str, i32)> = all.iter().map(name).zip(sizes).collect();
    assert_eq!(got, [("new", 6), ("old", 5)]);

    // 10 -> 15 over three: shares are capped by what is left to hand out.
    let d = deploy(15, int(0), int(1));
    let mut all = vec![
        with_max(rs("a", 1, 3, 3), 10, 10),
        with_max(rs("b", 2, 3, 3), 10, 10),
        with_max(rs("c", 3, 4, 4), 10, 10),
    ];
    let sizes = crate::deployment::sync::proportional_sizes(&d, &mut all, 15);
    let got: Vec<(&str, i32)> = all.iter().map(name).zip(sizes).collect();
    assert_eq!(got, [("c", 6), ("b", 5), ("a", 4)]);

    // Scaling to 0 empties every ReplicaSet.
    let d = deploy(0, int(0), int(1));
    let mut all = vec![
        with_max(rs("a", 1, 3, 3), 10, 10),
        with_max(rs("b", 2, 7, 7), 10, 10),
    ];
    let sizes = crate::deployment::sync::proportional_sizes(&d, &mut all, 0);
    assert_eq!(sizes, [0, 0]);

    // With surge: 10 (+3) -> 20 (+3), 8 old + 5 new (13 = the old maximum).
    let d = deploy(20, int(3), int(1));
    let mut all = vec![
        with_max(rs("old", 1, 8, 8), 10, 13),
        with_max(rs("new", 2, 5, 0), 10, 13),
    ];
    let sizes = crate::deployment::sync::proportional_sizes(&d, &mut all, 23);
    let got: Vec<(&str, i32)> = all.iter().map(name).zip(sizes).collect();
    // 8 * 23 / 13 = 14.15 -> 14; 5 * 23 / 13 = 8.85 -> 9; 14 + 9 = 23.
    assert_eq!(got, [("old", 14), ("new", 9)]);
}

#[test]
fn rolling_scale_down_keeps_minimum_availability() {
    use crate::deployment::sync::max_scaled_down;
    // (replicas, maxUnavailable, old spec, old available, new spec, new available) -> max
    let cases = [
        (10, 2, 10, 10, 3, 0, Some(2)), // 13 - 8 - 3
        (10, 2, 10, 10, 0, 0, Some(2)), // 10 - 8
        (10, 0, 10, 10, 1, 0, None),    // the new pod is not available yet
        (10, 0, 10, 10, 1, 1, Some(1)), // now it is
        (3, 1, 3, 3, 1, 1, Some(2)),    // 4 - 2 - 0
        (3, 1, 0, 0, 3, 3, None),       // nothing old left
        (10, 2, 10, 5, 2, 0, Some(2)),  // unhealthy old pods may go first
    ];
    for (replicas, unavailable, old, old_av, new, new_av, want) in cases {
        let d = deploy(replicas, int(3), int(unavailable));
        let old_rs = rs("old", 1, old, old_av);
        let new_rs = rs("new", 2, new, new_av);
        let all = vec![old_rs.clone(), new_rs.clone()];
        assert_eq!(
            max_scaled_down(&d, &all, &[old_rs], &new_rs),
            want,
            "{replicas} {unavailable} {old}/{old_av} {new}/{new_av}"
        );
    }
}

#[test]
fn fnv32a_and_safe_encoding_match_go() {
    let mut h = Fnv32a::new();
    assert_eq!(h.0, 0x811c_9dc5);
    h.write(b"a");
    assert_eq!(h.0, 0xe40c_292c);
    let mut h = Fnv32a::new();
    h.write(b"foobar");
    assert_eq!(h.0, 0xbf9c_f968);
    // Bytes map to ALPHANUMS[b % 27]: '0' is 48 -> 48 % 27 = 21 -> '4'.
    assert_eq!(safe_encode_string("0"), "4");
    assert_eq!(safe_encode_string("0123456789"), "456789bcdf");
}

#[test]
fn template_hash_is_stable_and_ignores_its_own_label() {
    let a = tmpl("nginx:1");
    let h = compute_hash(&a, None);
    assert!(!h.is_empty() && h.len() <= 10, "{h}");
    assert!(h.bytes().all(|b| ALPHANUMS.contains(&b)), "{h}");
    assert_eq!(h, compute_hash(&a.clone(), None));
    assert_ne!(h, compute_hash(&tmpl("nginx:2"), None));
    // A collision count changes the name, so a taken name can be escaped.
    assert_ne!(h, compute_hash(&a, Some(1)));
    assert_ne!(compute_hash(&a, Some(1)), compute_hash(&a, Some(2)));
    // Empty lists and absent ones are the same template.
    let mut b = a.clone();
    if let Some(s) = b.spec.as_mut() {
        s.volumes = Some(vec![]);
    }
    assert_eq!(h, compute_hash(&b, None));
    let labelled = template_with_hash(&a, &h);
    assert!(equal_ignore_hash(&labelled, &a));
    assert!(!equal_ignore_hash(&labelled, &tmpl("nginx:2")));
}

#[test]
fn new_replica_set_takes_the_next_revision_and_keeps_its_history() {
    let mut d = deploy(3, int(1), int(0));
    d.metadata.annotations = Some(
        [
            ("kubernetes.io/change-cause".to_string(), "v2".to_string()),
            (LAST_APPLIED_ANNOTATION.to_string(), "{}".to_string()),
            (REVISION_ANNOTATION.to_string(), "9".to_string()),
        ]
        .into(),
    );
    let mut new = rs("new", 1, 0, 0);
    assert!(set_new_rs_annotations(&d, &mut new, "1", false, 2000));
    let ann = new.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(ann.get(REVISION_ANNOTATION).map(String::as_str), Some("1"));
    assert_eq!(
        ann.get("kubernetes.io/change-cause").map(String::as_str),
        Some("v2")
    );
    assert!(!ann.contains_key(LAST_APPLIED_ANNOTATION));
    assert!(!ann.contains_key(REVISION_HISTORY_ANNOTATION));
    assert_eq!(
        ann.get(DESIRED_REPLICAS_ANNOTATION).map(String::as_str),
        Some("3")
    );
    assert_eq!(
        ann.get(MAX_REPLICAS_ANNOTATION).map(String::as_str),
        Some("4")
    );
    // Nothing changes a second time.
    assert!(!set_new_rs_annotations(&d, &mut new, "1", true, 2000));
    // Rolled back to: revision 3, then 5; the revisions it served are kept.
    assert!(set_new_rs_annotations(&d, &mut new, "3", true, 2000));
    assert!(set_new_rs_annotations(&d, &mut new, "5", true, 2000));
    let ann = new.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(ann.get(REVISION_ANNOTATION).map(String::as_str), Some("5"));
    assert_eq!(
        ann.get(REVISION_HISTORY_ANNOTATION).map(String::as_str),
        Some("1,3")
    );
    // A lower revision never replaces a higher one.
    assert!(!set_new_rs_annotations(&d, &mut new, "4", true, 2000));
    // The history is trimmed from the oldest to fit its limit.
    assert!(set_new_rs_annotations(&d, &mut new, "6", true, 4));
    let ann = new.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        ann.get(REVISION_HISTORY_ANNOTATION).map(String::as_str),
        Some("3,5")
    );
}

#[test]
fn the_oldest_matching_replica_set_is_the_new_one() {
    let d = deploy(3, int(1), int(0));
    let mut other = rs("other", 0, 1, 1);
    if let Some(s) = other.spec.as_mut() {
        s.template = Some(tmpl("nginx:0"));
    }
    let mut second = rs("second", 5, 1, 1);
    if let Some(s) = second.spec.as_mut() {
        s.template = Some(template_with_hash(&tmpl("nginx:1"), "abc"));
    }
    let first = rs("first", 3, 1, 1);
    let all = [other, second, first];
    assert_eq!(find_new_rs(&d, &all).map(name), Some("first"));
    let old_rss = find_old_rss(&d, &all);
    let old: Vec<&str> = old_rss.iter().map(name).collect();
    assert_eq!(old, ["other", "second"]);
}

#[test]
fn active_or_latest() {
    let new = rs("new", 3, 0, 0);
    let old1 = rs("old1", 1, 0, 0);
    let old2 = rs("old2", 2, 2, 2);
    assert_eq!(
        find_active_or_latest(Some(&new), &[old1.clone(), old2.clone()])
            .as_ref()
            .map(name),
        Some("old2")
    );
    assert_eq!(
        find_active_or_latest(Some(&new), std::slice::from_ref(&old1))
            .as_ref()
            .map(name),
        Some("new")
    );
    assert_eq!(
        find_active_or_latest(None, &[old1.clone(), rs("old3", 2, 0, 0)])
            .as_ref()
            .map(name),
        Some("old3")
    );
    let busy = rs("busy", 3, 1, 1);
    assert!(find_active_or_latest(Some(&busy), &[old2]).is_none());
}

#[test]
fn saturation_needs_the_annotation_the_size_and_availability() {
    let d = deploy(3, int(1), int(0));
    let full = with_max(rs("new", 1, 3, 3), 3, 4);
    assert!(is_saturated(&d, Some(&full)));
    assert!(!is_saturated(&d, Some(&with_max(rs("new", 1, 3, 2), 3, 4))));
    assert!(!is_saturated(&d, Some(&with_max(rs("new", 1, 3, 3), 2, 3))));
    assert!(!is_saturated(&d, Some(&rs("new", 1, 3, 3))));
    assert!(!is_saturated(&d, None));
}

#[test]
fn status_and_availability_condition() {
    let d = deploy(3, int(1), int(1));
    let now = Timestamp::from_second(1_000).expect("time");
    let old = rs("old", 1, 1, 1);
    let new = rs("new", 2, 2, 1);
    let status = calculate_status(&[old.clone(), new.clone()], Some(&new), &d, now);
    assert_eq!(status.replicas, Some(3));
    assert_eq!(status.updated_replicas, Some(2));
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(status.available_replicas, Some(2));
    assert_eq!(status.unavailable_replicas, Some(1));
    assert_eq!(status.observed_generation, Some(1));
    let cond = get_condition(&status, AVAILABLE).expect("available");
    assert_eq!(
        (
            cond.status.as_str(),
            cond.reason.as_deref(),
            cond.message.as_deref()
        ),
        (
            "True",
            Some(MINIMUM_REPLICAS_AVAILABLE),
            Some("Deployment has minimum availability.")
        )
    );
    let none = calculate_status(&[rs("new", 2, 3, 0)], None, &d, now);
    let cond = get_condition(&none, AVAILABLE).expect("available");
    assert_eq!(
        (cond.status.as_str(), cond.message.as_deref()),
        (
            "False",
            Some("Deployment does not have minimum availability.")
        )
    );
    // ReplicaSets that do not report terminating replicas leave the count unknown.
    assert_eq!(none.terminating_replicas, None);
    let mut t = rs("t", 1, 1, 1);
    if let Some(s) = t.status.as_mut() {
        s.terminating_replicas = Some(2);
    }
    let mut u = rs("u", 1, 1, 1);
    if let Some(s) = u.status.as_mut() {
        s.terminating_replicas = Some(0);
    }
    assert_eq!(terminating_replica_count(&[t, u]), Some(2));
}

#[test]
fn conditions_keep_their_transition_time_while_the_status_holds() {
    let mut status = DeploymentStatus::default();
    let t1 = Timestamp::from_second(100).expect("time");
    let t2 = Timestamp::from_second(200).expect("time");
    set_condition(
        &mut status,
        new_condition(PROGRESSING, "True", NEW_REPLICA_SET_REASON, "a".into(), t1),
    );
    // Same status and reason: nothing changes, not even the update time.
    set_condition(
        &mut status,
        new_condition(PROGRESSING, "True", NEW_REPLICA_SET_REASON, "b".into(), t2),
    );
    let c = get_condition(&status, PROGRESSING).expect("cond");
    assert_eq!(c.message.as_deref(), Some("a"));
    // Same status, new reason: updated, transition time kept.
    set_condition(
        &mut status,
        new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE_REASON, "c".into(), t2),
    );
    let c = get_condition(&status, PROGRESSING).expect("cond");
    assert_eq!(c.last_transition_time, Some(now_time(t1)));
    assert_eq!(c.last_update_time, Some(now_time(t2)));
    // New status: a transition.
    set_condition(
        &mut status,
        new_condition(PROGRESSING, "False", TIMED_OUT_REASON, "d".into(), t2),
    );
    let c = get_condition(&status, PROGRESSING).expect("cond");
    assert_eq!(c.last_transition_time, Some(now_time(t2)));
    assert_eq!(status.conditions.as_ref().map(Vec::len), Some(1));
}

#[test]
fn progress_and_deadline() {
    let mut d = deploy(3, int(1), int(0));
    d.status = Some(DeploymentStatus {
        replicas: Some(3),
        updated_replicas: Some(1),
        ready_replicas: Some(3),
        available_replicas: Some(3),
        ..DeploymentStatus::default()
    });
    let same = d.status.clone().unwrap_or_default();
    assert!(!deployment_progressing(&d, &same));
    let more_updated = DeploymentStatus {
        updated_replicas: Some(2),
        ..same.clone()
    };
    assert!(deployment_progressing(&d, &more_updated));
    let fewer_old = DeploymentStatus {
        replicas: Some(2),
        ..same.clone()
    };
    assert!(deployment_progressing(&d, &fewer_old));

    let t0 = Timestamp::from_second(1_000).expect("time");
    let mut status = same.clone();
    set_condition(
        &mut status,
        new_condition(
            PROGRESSING,
            "True",
            REPLICA_SET_UPDATED_REASON,
            "x".into(),
            t0,
        ),
    );
    let at = |s: i64| Timestamp::from_second(1_000 + s).expect("time");
    assert!(!deployment_timed_out(&d, &status, at(600)));
    assert!(deployment_timed_out(&d, &status, at(601)));
    assert_eq!(time_to_deadline(&d, &status, at(100)), Some(500));
    // No deadline, no timeout.
    if let Some(s) = d.spec.as_mut() {
        s.progress_deadline_seconds = Some(i32::MAX);
    }
    assert!(!deployment_timed_out(&d, &status, at(10_000)));

    let done = DeploymentStatus {
        updated_replicas: Some(3),
        observed_generation: Some(1),
        ..same
    };
    assert!(deployment_complete(&d, &done));
    assert!(!deployment_complete(
        &d,
        &DeploymentStatus {
            observed_generation: Some(0),
            ..done.clone()
        }
    ));
    assert!(status_equal(
        Some(&DeploymentStatus {
            unavailable_replicas: Some(0),
            conditions: Some(vec![]),
            ..done.clone()
        }),
        Some(&done)
    ));
}

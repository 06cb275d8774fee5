//! What one StatefulSet sync does, decided from the set and its pods alone (upstream's
//! `updateStatefulSet` in `stateful_set_control.go`): create missing ordinals, replace
//! failed pods, delete ordinals beyond the range highest first, and roll pods onto the
//! update revision highest ordinal first down to the partition. With `OrderedReady` each
//! step waits for the pods before it to be Running and Ready; with `Parallel` nothing
//! waits.

/// The set as the plan sees it.
#[derive(Debug, Clone)]
pub struct SetView {
    /// `spec.ordinals.start`.
    pub start: i32,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `podManagementPolicy: Parallel`.
    pub parallel: bool,
    /// `updateStrategy.type: RollingUpdate` (otherwise OnDelete).
    pub rolling: bool,
    /// `rollingUpdate.partition`: replicas with a lower index keep the current revision.
    pub partition: i32,
    /// `rollingUpdate.maxUnavailable`, resolved against the replicas (at least 1).
    pub max_unavailable: i32,
    /// The revision the set's template is at.
    pub update_revision: String,
}

/// A pod of the set as the plan sees it.
#[derive(Debug, Clone)]
pub struct PodView {
    /// The pod's name.
    pub name: String,
    /// Its ordinal.
    pub ordinal: i32,
    /// Its `controller-revision-hash` label.
    pub revision: String,
    /// Being deleted.
    pub terminating: bool,
    /// Succeeded or Failed: replaced.
    pub finished: bool,
    /// Running, Ready, and ready for `minReadySeconds`.
    pub available: bool,
}

/// Which revision a created pod is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revision {
    /// The current revision (below the partition during a rolling update).
    Current,
    /// The update revision.
    Update,
}

/// One step of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the pod of this ordinal (its claims first).
    Create(i32, Revision),
    /// Delete a failed or succeeded pod so it is recreated.
    Replace(String),
    /// Delete a pod whose ordinal is out of range.
    ScaleDown(String),
    /// Delete a pod of an old revision so it is recreated at the update revision.
    Update(String),
}

/// The steps of one sync, in order.
pub fn plan(set: &SetView, pods: &[PodView]) -> Vec<Action> {
    let end = set.start.saturating_add(set.replicas.max(0));
    let monotonic = !set.parallel;
    let in_range = |o: i32| o >= set.start && o < end;
    let mut condemned: Vec<&PodView> = pods.iter().filter(|p| !in_range(p.ordinal)).collect();
    condemned.sort_by_key(|p| std::cmp::Reverse(p.ordinal));
    let slot = |o: i32| pods.iter().find(|p| p.ordinal == o);
    let mut actions = Vec::new();

    for o in set.start..end {
        match slot(o) {
            None => {
                let index = o - set.start;
                let rev = if set.rolling && index < set.partition {
                    Revision::Current
                } else {
                    Revision::Update
                };
                actions.push(Action::Create(o, rev));
                if monotonic {
                    return actions;
                }
            }
            Some(p) if p.finished && !p.terminating => {
                actions.push(Action::Replace(p.name.clone()));
                if monotonic {
                    return actions;
                }
            }
            Some(p) if monotonic && (p.terminating || !p.available) => return actions,
            Some(_) => {}
        }
    }

    // Out of range, highest ordinal first; one at a time unless Parallel.
    let first_unhealthy = condemned
        .iter()
        .find(|p| p.terminating || !p.available)
        .map(|p| p.name.clone());
    for p in &condemned {
        if p.terminating {
            if monotonic {
                return actions;
            }
            continue;
        }
        if monotonic && !p.available && first_unhealthy.as_deref() != Some(p.name.as_str()) {
            return actions;
        }
        actions.push(Action::ScaleDown(p.name.clone()));
        if monotonic {
            return actions;
        }
    }

    if !set.rolling {
        return actions;
    }
    // Rolling update: at most maxUnavailable replicas down at once, counting those
    // already down, from the highest ordinal to the partition.
    let unavailable = (set.start..end)
        .filter(|o| slot(*o).is_none_or(|p| p.terminating || !p.available))
        .count();
    let max = usize::try_from(set.max_unavailable.max(1)).unwrap_or(1);
    let mut budget = max.saturating_sub(unavailable);
    let update_min = set.start.saturating_add(set.partition.max(0));
    for o in (update_min..end).rev() {
        if budget == 0 {
            break;
        }
        if let Some(p) = slot(o)
            && p.revision != set.update_revision
            && !p.terminating
        {
            actions.push(Action::Update(p.name.clone()));
            budget -= 1;
        }
    }
    actions
}

/// The ordinal of a pod named `<set>-<ordinal>`, if it is one of the set's names.
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    let rest = pod.strip_prefix(set)?.strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Upstream's name pattern has no leading zeros other than "0" itself.
    if rest.len() > 1 && rest.starts_with('0') {
        return None;
    }
    rest.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(replicas: i32) -> SetView {
        SetView {
            start: 0,
            replicas,
            parallel: false,
            rolling: true,
            partition: 0,
            max_unavailable: 1,
            update_revision: "new".into(),
        }
    }

    fn pod(o: i32, rev: &str, available: bool) -> PodView {
        PodView {
            name: format!("web-{o}"),
            ordinal: o,
            revision: rev.into(),
            terminating: false,
            finished: false,
            available,
        }
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time_in_order() {
        let s = set(3);
        assert_eq!(plan(&s, &[]), [Action::Create(0, Revision::Update)]);
        // web-0 exists but is not ready yet: nothing happens.
        assert!(plan(&s, &[pod(0, "new", false)]).is_empty());
        assert_eq!(
            plan(&s, &[pod(0, "new", true)]),
            [Action::Create(1, Revision::Update)]
        );
        // A gap is filled first, before anything above it.
        assert_eq!(
            plan(&s, &[pod(0, "new", true), pod(2, "new", true)]),
            [Action::Create(1, Revision::Update)]
        );
    }

    #[test]
    fn parallel_creates_everything_at_once() {
        let s = SetView {
            parallel: true,
            ..set(3)
        };
        assert_eq!(
            plan(&s, &[pod(1, "new", false)]),
            [
                Action::Create(0, Revision::Update),
                Action::Create(2, Revision::Update)
            ]
        );
    }

    #[test]
    fn ordinals_start_where_the_spec_says() {
        let s = SetView { start: 5, ..set(2) };
        assert_eq!(plan(&s, &[]), [Action::Create(5, Revision::Update)]);
        assert_eq!(
            plan(&s, &[pod(0, "new", true)])[0],
            Action::Create(5, Revision::Update)
        );
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-012"), None);
        assert_eq!(ordinal_of("web", "webx-1"), None);
        assert_eq!(ordinal_of("web", "web-"), None);
    }

    #[test]
    fn scale_down_goes_highest_first_one_at_a_time() {
        let s = set(1);
        let pods = [
            pod(0, "new", true),
            pod(1, "new", true),
            pod(2, "new", true),
        ];
        assert_eq!(plan(&s, &pods), [Action::ScaleDown("web-2".into())]);
        // While web-2 terminates, web-1 waits.
        let mut terminating = pods.clone();
        terminating[2].terminating = true;
        assert!(plan(&s, &terminating).is_empty());
        // Parallel deletes all condemned at once.
        let p = SetView {
            parallel: true,
            ..set(1)
        };
        assert_eq!(
            plan(&p, &pods),
            [
                Action::ScaleDown("web-2".into()),
                Action::ScaleDown("web-1".into())
            ]
        );
    }

    #[test]
    fn failed_pods_are_replaced() {
        let s = set(2);
        let mut failed = pod(0, "new", false);
        failed.finished = true;
        assert_eq!(plan(&s, &[failed]), [Action::Replace("web-0".into())]);
    }

    #[test]
    fn rolling_update_goes_from_the_top_down_to_the_partition() {
        let s = set(3);
        let old = [
            pod(0, "old", true),
            pod(1, "old", true),
            pod(2, "old", true),
        ];
        assert_eq!(plan(&s, &old), [Action::Update("web-2".into())]);
        // web-2 recreated but not ready yet: the update waits.
        let mid = [
            pod(0, "old", true),
            pod(1, "old", true),
            pod(2, "new", false),
        ];
        assert!(plan(&s, &mid).is_empty());
        let mid = [
            pod(0, "old", true),
            pod(1, "old", true),
            pod(2, "new", true),
        ];
        assert_eq!(plan(&s, &mid), [Action::Update("web-1".into())]);
        // Partition 2: only web-2 moves; a missing web-0 comes back at the current revision.
        let part = SetView {
            partition: 2,
            ..set(3)
        };
        assert_eq!(plan(&part, &mid), Vec::<Action>::new());
        assert_eq!(plan(&part, &[]), [Action::Create(0, Revision::Current)]);
        // maxUnavailable 2 updates two at once.
        let two = SetView {
            max_unavailable: 2,
            ..set(3)
        };
        assert_eq!(
            plan(&two, &old),
            [
                Action::Update("web-2".into()),
                Action::Update("web-1".into())
            ]
        );
        // OnDelete leaves old pods alone.
        let on_delete = SetView {
            rolling: false,
            ..set(3)
        };
        assert!(plan(&on_delete, &old).is_empty());
    }
}

//! One sync of one PodDisruptionBudget, as upstream's `DisruptionController.trySync`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k1s_apimachinery::Selector;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{self, Timestamp};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};

use crate::workload::Recorder;
use kube::{Api, Resource, ResourceExt};

use crate::workload::{controller_of, is_pod_ready};

/// How long an eviction the API server approved is waited for before the pod counts
/// again (upstream's `DeletionTimeout`).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

/// How often a budget is looked at again without any change (the controllers' scale
/// can change without any pod changing).
const RESYNC: Duration = Duration::from_secs(30);

/// Shared state of the controller.
pub(super) struct Context {
    pub client: kube::Client,
    pub pods: k1s_informer::Informer<Pod>,
    pub recorder: Recorder,
}

/// Why a sync did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Computing the status failed; the budget is marked SyncFailed.
    #[error("{0}")]
    Compute(String),
    /// An API call failed.
    #[error("{context}: {source}")]
    Api {
        /// What was attempted.
        context: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// The selector of a budget as the controller applies it: none selects nothing, `{}`
/// every pod of the namespace; None when it cannot be parsed.
pub(super) fn selector_of(pdb: &PodDisruptionBudget) -> Option<Selector> {
    let value = pdb
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .map(|s| serde_json::to_value(s).unwrap_or_default())
        .unwrap_or_default();
    Selector::from_label_selector(&value).ok()
}

/// The numbers a budget's status is made of, before they are written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Budget {
    /// Pods the budget expects (`status.expectedPods`).
    pub expected: i32,
    /// Pods that must stay healthy (`status.desiredHealthy`).
    pub desired_healthy: i32,
    /// Healthy pods now (`status.currentHealthy`).
    pub current_healthy: i32,
    /// Approved evictions still waited for.
    pub disrupted: BTreeMap<String, Time>,
    /// When the earliest of them expires.
    pub recheck: Option<Timestamp>,
}

/// `intstr.GetScaledValueFromIntOrPercent` rounding up.
fn scaled(v: &IntOrString, total: i32) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let v = (pct * i64::from(total) + 99) / 100;
            Ok(i32::try_from(v).unwrap_or(i32::MAX))
        }
    }
}

/// Computes the status numbers of a budget from its pods and the scale of their
/// controllers (`expected_scale`, asked only when a percentage or maxUnavailable needs
/// it). Pure, for tests.
pub fn compute_status(
    pdb: &PodDisruptionBudget,
    pods: &[Arc<Pod>],
    expected_scale: Option<i32>,
    now: Timestamp,
) -> Result<Budget, String> {
    let spec = pdb.spec.clone().unwrap_or_default();
    let (expected, desired_healthy) = match (&spec.max_unavailable, &spec.min_available) {
        (Some(max), _) => {
            let expected = expected_scale.ok_or("no scale")?;
            let max = scaled(max, expected)?;
            (expected, (expected - max).max(0))
        }
        (None, Some(IntOrString::Int(min))) => {
            (i32::try_from(pods.len()).unwrap_or(i32::MAX), *min)
        }
        (None, Some(min)) => {
            let expected = expected_scale.ok_or("no scale")?;
            (expected, scaled(min, expected)?)
        }
        (None, None) => (0, 0),
    };
    let timeout = jiff::SignedDuration::try_from(DELETION_TIMEOUT).unwrap_or_default();
    let recorded = pdb
        .status
        .as_ref()
        .and_then(|s| s.disrupted_pods.clone())
        .unwrap_or_default();
    let mut disrupted = BTreeMap::new();
    let mut recheck: Option<Timestamp> = None;
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.name_any();
        let Some(at) = recorded.get(&name) else {
            continue;
        };
        let expires = at.0.checked_add(timeout).unwrap_or(at.0);
        if expires > now {
            recheck = Some(recheck.map_or(expires, |r| r.min(expires)));
            disrupted.insert(name, at.clone());
        }
    }
    let current_healthy = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !disrupted.contains_key(&p.name_any()))
        .filter(|p| is_pod_ready(p))
        .count();
    Ok(Budget {
        expected,
        desired_healthy,
        current_healthy: i32::try_from(current_healthy).unwrap_or(i32::MAX),
        disrupted,
        recheck,
    })
}

/// Whether the budget needs the scale of its pods' controllers.
fn needs_scale(pdb: &PodDisruptionBudget) -> bool {
    let spec = pdb.spec.as_ref();
    spec.is_some_and(|s| {
        s.max_unavailable.is_some() || matches!(s.min_available, Some(IntOrString::String(_)))
    })
}

/// The replicas a controller reference asks for, when it names a workload k1s knows
/// and the uid matches; `Ok(None)` when it names something else or is gone.
async fn scale_of(
    client: &kube::Client,
    ns: &str,
    owner: &OwnerReference,
) -> Result<Option<(String, i32)>, SyncError> {
    fn found<K>(
        obj: Result<Option<K>, kube::Error>,
        owner: &OwnerReference,
        replicas: impl Fn(&K) -> i32,
    ) -> Result<Option<(String, i32)>, SyncError>
    where
        K: Resource,
    {
        match obj {
            Ok(Some(o)) if o.meta().uid.as_deref() == Some(owner.uid.as_str()) => {
                Ok(Some((owner.uid.clone(), replicas(&o))))
            }
            Ok(_) => Ok(None),
            Err(source) => Err(SyncError::Api {
                context: format!("get {} {}", owner.kind, owner.name),
                source,
            }),
        }
    }
    let group = owner.api_version.split_once('/').map_or("", |(g, _)| g);
    match (group, owner.kind.as_str()) {
        ("apps", "ReplicaSet") => {
            let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
            let rs = api.get_opt(&owner.name).await;
            // A ReplicaSet run by a Deployment counts as the Deployment's scale.
            if let Ok(Some(rs)) = &rs
                && rs.metadata.uid.as_deref() == Some(owner.uid.as_str())
                && let Some(dref) = controller_of(&rs.metadata).filter(|r| r.kind == "Deployment")
            {
                let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
                return found(api.get_opt(&dref.name).await, dref, |d| {
                    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
                });
            }
            found(rs, owner, |r| {
                r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
            })
        }
        ("apps", "StatefulSet") => {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
            found(api.get_opt(&owner.name).await, owner, |s| {
                s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
            })
        }
        ("apps", "Deployment") => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
            found(api.get_opt(&owner.name).await, owner, |d| {
                d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
            })
        }
        ("", "ReplicationController") => {
            let api: Api<ReplicationController> = Api::namespaced(client.clone(), ns);
            found(api.get_opt(&owner.name).await, owner, |r| {
                r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
            })
        }
        _ => Ok(None),
    }
}

/// Upstream's `getExpectedScale`: the sum of the scale of every controller of the
/// budget's pods, each counted once; pods without a controller are reported.
async fn expected_scale(
    client: &kube::Client,
    ns: &str,
    pods: &[Arc<Pod>],
) -> Result<(i32, Vec<String>), SyncError> {
    let mut scales: HashMap<String, i32> = HashMap::new();
    let mut unmanaged = Vec::new();
    for pod in pods {
        let Some(owner) = controller_of(&pod.metadata) else {
            unmanaged.push(pod.name_any());
            continue;
        };
        if scales.contains_key(&owner.uid) {
            continue;
        }
        match scale_of(client, ns, owner).await? {
            Some((uid, n)) => {
                scales.insert(uid, n);
            }
            None => {
                return Err(SyncError::Compute(format!(
                    "found no controllers for pod {:?}",
                    pod.name_any()
                )));
            }
        }
    }
    Ok((scales.values().sum(), unmanaged))
}

/// Upstream's `UpdateDisruptionAllowedCondition`.
fn set_condition(
    status: &mut PodDisruptionBudgetStatus,
    now: Timestamp,
    reason: Option<(&str, String)>,
) {
    let (value, reason, message) = match reason {
        Some((r, m)) => ("False", r.to_string(), m),
        None if status.disruptions_allowed > 0 => ("True", "SufficientPods".into(), String::new()),
        None => ("False", "InsufficientPods".into(), String::new()),
    };
    let observed = status.observed_generation;
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    match conditions
        .iter_mut()
        .find(|c| c.type_ == "DisruptionAllowed")
    {
        Some(c) => {
            if c.status != value {
                c.last_transition_time = Time(now);
            }
            c.status = value.into();
            c.reason = reason;
            c.message = message;
            c.observed_generation = observed;
        }
        None => conditions.push(Condition {
            type_: "DisruptionAllowed".into(),
            status: value.into(),
            reason,
            message,
            observed_generation: observed,
            last_transition_time: Time(now),
        }),
    }
}

/// Upstream's `ConditionsAreUpToDate`.
fn conditions_up_to_date(pdb: &PodDisruptionBudget) -> bool {
    let Some(status) = pdb.status.as_ref() else {
        return false;
    };
    let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed")
    else {
        return false;
    };
    if status.observed_generation != pdb.metadata.generation {
        return false;
    }
    if status.disruptions_allowed > 0 {
        c.status == "True" && c.reason == "SufficientPods"
    } else {
        c.status == "False" && c.reason == "InsufficientPods"
    }
}

/// The status of `budget`, or None when the stored one already says it.
fn next_status(
    pdb: &PodDisruptionBudget,
    budget: &Budget,
    now: Timestamp,
) -> Option<PodDisruptionBudgetStatus> {
    // A budget that expects no pods allows nothing, so its first pods are safe before
    // this controller has counted them.
    let allowed = if budget.expected <= 0 {
        0
    } else {
        (budget.current_healthy - budget.desired_healthy).max(0)
    };
    let old = pdb.status.clone().unwrap_or_default();
    let disrupted = (!budget.disrupted.is_empty()).then(|| budget.disrupted.clone());
    if old.current_healthy == budget.current_healthy
        && old.desired_healthy == budget.desired_healthy
        && old.expected_pods == budget.expected
        && old.disruptions_allowed == allowed
        && old.disrupted_pods.clone().filter(|m| !m.is_empty()) == disrupted
        && conditions_up_to_date(pdb)
    {
        return None;
    }
    let mut status = PodDisruptionBudgetStatus {
        current_healthy: budget.current_healthy,
        desired_healthy: budget.desired_healthy,
        expected_pods: budget.expected,
        disruptions_allowed: allowed,
        disrupted_pods: disrupted,
        observed_generation: pdb.metadata.generation,
        conditions: old.conditions,
    };
    set_condition(&mut status, now, None);
    Some(status)
}

async fn write_status(
    client: &kube::Client,
    pdb: &PodDisruptionBudget,
    status: PodDisruptionBudgetStatus,
) -> Result<(), SyncError> {
    let ns = pdb.namespace().unwrap_or_default();
    let api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    let mut next = pdb.clone();
    next.status = Some(status);
    // The resourceVersion read is the precondition: evictions write this status too.
    api.replace_status(&pdb.name_any(), &Default::default(), &next)
        .await
        .map(|_| ())
        .map_err(|source| SyncError::Api {
            context: format!("update status of {}", pdb.name_any()),
            source,
        })
}

async fn event(
    ctx: &Context,
    pdb: &PodDisruptionBudget,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &pdb.object_ref(&())).await {
        tracing::debug!(error = %e, reason, "cannot record event");
    }
}

/// One pass over one budget: its status from its pods, or SyncFailed when that cannot
/// be computed.
pub(super) async fn reconcile(
    pdb: Arc<PodDisruptionBudget>,
    ctx: Arc<Context>,
) -> Result<Action, SyncError> {
    let ns = pdb.namespace().unwrap_or_default();
    let now = Timestamp::now();
    match try_sync(&pdb, &ctx, &ns, now).await {
        Ok(recheck) => Ok(Action::requeue(recheck.unwrap_or(RESYNC).min(RESYNC))),
        Err(SyncError::Api { context, source }) if matches!(&source, kube::Error::Api(s) if s.code == 409) => {
            Err(SyncError::Api { context, source })
        }
        Err(e) => {
            // Upstream's failSafe: no disruption is allowed while the status is unknown.
            let mut status = pdb.status.clone().unwrap_or_default();
            status.disruptions_allowed = 0;
            set_condition(&mut status, now, Some(("SyncFailed", e.to_string())));
            write_status(&ctx.client, &pdb, status).await?;
            Err(e)
        }
    }
}

async fn try_sync(
    pdb: &PodDisruptionBudget,
    ctx: &Context,
    ns: &str,
    now: Timestamp,
) -> Result<Option<Duration>, SyncError> {
    let selector = selector_of(pdb).ok_or_else(|| SyncError::Compute("invalid selector".into()))?;
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns) && selector.matches(p.labels()))
        .collect();
    if pods.is_empty() {
        event(
            ctx,
            pdb,
            EventType::Normal,
            "NoPods",
            "No matching pods found".into(),
        )
        .await;
    }
    let scale = if needs_scale(pdb) {
        match expected_scale(&ctx.client, ns, &pods).await {
            Ok((n, unmanaged)) => {
                if !unmanaged.is_empty() {
                    let sel = pdb
                        .spec
                        .as_ref()
                        .and_then(|s| s.selector.as_ref())
                        .map(|s| serde_json::to_string(s).unwrap_or_default())
                        .unwrap_or_default();
                    event(ctx, pdb, EventType::Warning, "UnmanagedPods", format!(
                        "Pods selected by this PodDisruptionBudget (selector: {sel}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value."
                    )).await;
                }
                Some(n)
            }
            Err(e) => {
                event(
                    ctx,
                    pdb,
                    EventType::Warning,
                    "CalculateExpectedPodCountFailed",
                    format!("Failed to calculate the number of expected pods: {e}"),
                )
                .await;
                return Err(e);
            }
        }
    } else {
        None
    };
    let budget = compute_status(pdb, &pods, scale, now).map_err(SyncError::Compute)?;
    if let Some(status) = next_status(pdb, &budget, now) {
        write_status(&ctx.client, pdb, status).await?;
    }
    Ok(budget.recheck.map(|r| {
        Duration::from_millis(u64::try_from(r.duration_since(now).as_millis()).unwrap_or(0) + 100)
    }))
}

/// Retries a failed sync with a short back-off.
pub(super) fn error_policy(
    _pdb: Arc<PodDisruptionBudget>,
    err: &SyncError,
    _ctx: Arc<Context>,
) -> Action {
    tracing::debug!(error = %err, "pdb sync failed");
    Action::requeue(Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pdb(spec: serde_json::Value, disrupted: serde_json::Value) -> PodDisruptionBudget {
        serde_json::from_value(json!({
            "metadata": {"name": "b", "namespace": "ns", "generation": 1},
            "spec": spec,
            "status": {"disruptedPods": disrupted, "currentHealthy": 0, "desiredHealthy": 0,
                       "disruptionsAllowed": 0, "expectedPods": 0},
        }))
        .expect("pdb")
    }

    fn pod(name: &str, ready: bool) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "labels": {"app": "a"}},
                "status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": if ready { "True" } else { "False" }}]},
            }))
            .expect("pod"),
        )
    }

    #[test]
    fn min_available_int_counts_pods() {
        let p = pdb(json!({"minAvailable": 2}), json!(null));
        let pods = vec![pod("a", true), pod("b", true), pod("c", false)];
        let now = Timestamp::now();
        let b = compute_status(&p, &pods, None, now).expect("ok");
        assert_eq!(
            (b.expected, b.desired_healthy, b.current_healthy),
            (3, 2, 2)
        );
        let s = next_status(&p, &b, now).expect("changed");
        assert_eq!(s.disruptions_allowed, 0);
        let c = &s.conditions.expect("conditions")[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "InsufficientPods")
        );
    }

    #[test]
    fn max_unavailable_percent_uses_the_scale_rounding_up() {
        let p = pdb(json!({"maxUnavailable": "50%"}), json!(null));
        let pods = vec![pod("a", true), pod("b", true), pod("c", true)];
        let now = Timestamp::now();
        let b = compute_status(&p, &pods, Some(3), now).expect("ok");
        // 50% of 3 rounds up to 2 unavailable: 1 must stay healthy.
        assert_eq!(
            (b.expected, b.desired_healthy, b.current_healthy),
            (3, 1, 3)
        );
        let s = next_status(&p, &b, now).expect("changed");
        assert_eq!(s.disruptions_allowed, 2);
        assert_eq!(s.conditions.expect("c")[0].reason, "SufficientPods");
    }

    #[test]
    fn disrupted_pods_do_not_count_until_they_expire() {
        let now = Timestamp::now();
        let recent = now
            .checked_sub(jiff::SignedDuration::from_secs(10))
            .expect("t");
        let old = now
            .checked_sub(jiff::SignedDuration::from_secs(300))
            .expect("t");
        let p = pdb(
            json!({"minAvailable": 1}),
            json!({"a": recent.to_string(), "b": old.to_string()}),
        );
        let pods = vec![pod("a", true), pod("b", true)];
        let b = compute_status(&p, &pods, None, now).expect("ok");
        assert_eq!(
            b.current_healthy, 1,
            "a is on its way out, b's eviction expired"
        );
        assert_eq!(b.disrupted.keys().collect::<Vec<_>>(), vec!["a"]);
        assert!(b.recheck.is_some());
    }

    #[test]
    fn unchanged_status_is_not_written() {
        let now = Timestamp::now();
        let p = pdb(json!({"minAvailable": 1}), json!(null));
        let pods = vec![pod("a", true), pod("b", true)];
        let b = compute_status(&p, &pods, None, now).expect("ok");
        let mut written = p.clone();
        written.status = next_status(&p, &b, now);
        assert_eq!(next_status(&written, &b, now), None);
    }
}

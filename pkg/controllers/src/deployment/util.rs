//! What the Deployment controller computes without touching the API (upstream's
//! `pkg/controller/deployment/util`): the pod-template hash, maxSurge/maxUnavailable,
//! how many replicas a new ReplicaSet may have, proportional shares, revisions and their
//! annotations, conditions and status.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// The label that keeps the pods of a Deployment's ReplicaSets apart.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// A ReplicaSet's place in its Deployment's rollout sequence (also on the Deployment).
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The earlier revisions a ReplicaSet served (it was rolled back to).
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// The Deployment's replicas plus maxSurge when the ReplicaSet was last scaled.
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// kubectl's client-side apply annotation, never copied onto ReplicaSets.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The extensions/v1beta1 rollback request, never copied onto ReplicaSets.
pub const DEPRECATED_ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// Upstream's limit on the length of the revision-history annotation.
pub const MAX_REV_HISTORY_LENGTH_IN_CHARS: usize = 2000;

/// Condition types.
pub const PROGRESSING: &str = "Progressing";
/// The Available condition.
pub const AVAILABLE: &str = "Available";
/// The ReplicaFailure condition, copied from ReplicaSets.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// Progressing: one of its ReplicaSets was scaled as part of the rollout.
pub const REPLICA_SET_UPDATED_REASON: &str = "ReplicaSetUpdated";
/// Progressing: the new ReplicaSet could not be created.
pub const FAILED_RS_CREATE_REASON: &str = "ReplicaSetCreateError";
/// Progressing: the new ReplicaSet was created.
pub const NEW_REPLICA_SET_REASON: &str = "NewReplicaSetCreated";
/// Progressing: an existing ReplicaSet matches the template.
pub const FOUND_NEW_RS_REASON: &str = "FoundNewReplicaSet";
/// Progressing: the rollout completed.
pub const NEW_RS_AVAILABLE_REASON: &str = "NewReplicaSetAvailable";
/// Progressing: no progress within progressDeadlineSeconds.
pub const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";
/// Progressing: paused.
pub const PAUSED_DEPLOY_REASON: &str = "DeploymentPaused";
/// Progressing: resumed.
pub const RESUMED_DEPLOY_REASON: &str = "DeploymentResumed";
/// Available: enough replicas are available.
pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
/// Available: too few replicas are available.
pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

// ---------------------------------------------------------------------------------------
// Accessors with the API server's defaults.

/// `spec.replicas` (defaulted to 1).
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `spec.minReadySeconds`.
pub fn min_ready_seconds(d: &Deployment) -> i32 {
    d.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

/// `spec.template`.
pub fn template(d: &Deployment) -> PodTemplateSpec {
    d.spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default()
}

/// `spec.selector`.
pub fn selector(d: &Deployment) -> LabelSelector {
    d.spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default()
}

/// `spec.paused`.
pub fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

/// Whether the strategy is RollingUpdate (the default).
pub fn is_rolling_update(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

/// Whether a progress deadline applies (set, and not upstream's "infinite" MaxInt32).
pub fn has_progress_deadline(d: &Deployment) -> bool {
    progress_deadline_seconds(d).is_some_and(|s| s != i32::MAX)
}

fn progress_deadline_seconds(d: &Deployment) -> Option<i32> {
    d.spec.as_ref().and_then(|s| s.progress_deadline_seconds)
}

/// `spec.revisionHistoryLimit`, if set.
pub fn revision_history_limit(d: &Deployment) -> Option<i32> {
    d.spec.as_ref().and_then(|s| s.revision_history_limit)
}

/// A ReplicaSet's `spec.replicas` (defaulted to 1).
pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// A ReplicaSet's `status.availableReplicas`.
pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

// ---------------------------------------------------------------------------------------
// The pod-template hash.

/// The alphabet upstream's `rand.SafeEncodeString` maps bytes to (no vowels, no 0/1/3).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Upstream's `rand.SafeEncodeString`: each byte becomes one letter of [`ALPHANUMS`].
pub fn safe_encode_string(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

/// FNV-1a, 32 bits (Go's `hash/fnv.New32a`).
#[derive(Debug, Clone, Copy)]
struct Fnv32a(u32);

impl Fnv32a {
    fn new() -> Self {
        Self(0x811c_9dc5)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u32::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
}

/// The `pod-template-hash` of a template: FNV-32a over the template's canonical JSON
/// (keys sorted, nulls and empty lists and maps dropped) and, if set, the collision count
/// as four little-endian bytes, its decimal rendering encoded as upstream's
/// `SafeEncodeString`. Upstream hashes Go's deep-printed struct instead, which cannot be
/// reproduced outside Go; names therefore differ from upstream's for the same template,
/// in the same alphabet and shape.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut h = Fnv32a::new();
    h.write(canonical_json(template).as_bytes());
    if let Some(c) = collision_count {
        h.write(&c.cast_unsigned().to_le_bytes());
    }
    safe_encode_string(&h.0.to_string())
}

/// The template as JSON with sorted keys and without nulls or empty lists and maps (which
/// upstream's semantic equality treats as absent).
fn normalized(template: &PodTemplateSpec) -> Value {
    let mut v = serde_json::to_value(template).unwrap_or(Value::Null);
    prune(&mut v);
    v
}

fn prune(v: &mut Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(items) => {
            for item in items.iter_mut() {
                prune(item);
            }
            !items.is_empty()
        }
        Value::Object(map) => {
            map.retain(|_, v| prune(v));
            !map.is_empty()
        }
        _ => true,
    }
}

fn canonical_json(template: &PodTemplateSpec) -> String {
    let mut out = String::new();
    write_canonical(&normalized(template), &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Whether two templates are equal but for the `pod-template-hash` label (upstream's
/// `EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH_LABEL);
        }
        normalized(&t)
    };
    strip(a) == strip(b)
}

/// The template with the hash label added (the new ReplicaSet's template).
pub fn template_with_hash(template: &PodTemplateSpec, hash: &str) -> PodTemplateSpec {
    let mut t = template.clone();
    t.metadata
        .get_or_insert_with(ObjectMeta::default)
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH_LABEL.to_string(), hash.to_string());
    t
}

/// The selector with `key=value` added to its matchLabels.
pub fn selector_with_label(selector: &LabelSelector, key: &str, value: &str) -> LabelSelector {
    let mut s = selector.clone();
    s.match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), value.to_string());
    s
}

// ---------------------------------------------------------------------------------------
// maxSurge and maxUnavailable.

/// Upstream's `GetScaledValueFromIntOrPercent`: an int as is, a percentage of `total`
/// rounded up or down. A malformed value (validation rejects those) counts as 0.
pub fn scaled_value(v: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match v {
        None => 0,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let Some(pct) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                return 0;
            };
            let scaled = (pct as f64) * f64::from(total) / 100.0;
            let r = if round_up {
                scaled.ceil()
            } else {
                scaled.floor()
            };
            r as i32
        }
    }
}

/// Upstream's `ResolveFenceposts`: maxSurge rounded up, maxUnavailable rounded down, and
/// never both 0 (then maxUnavailable is 1, so a rollout can proceed).
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let surge = scaled_value(max_surge, desired, true);
    let mut unavailable = scaled_value(max_unavailable, desired, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let default = IntOrString::String("25%".into());
    let surge = ru.map_or(Some(&default), |r| r.max_surge.as_ref());
    let unavailable = ru.map_or(Some(&default), |r| r.max_unavailable.as_ref());
    resolve_fenceposts(surge, unavailable, replicas(d))
}

/// How many pods may be unavailable during a rolling update (0 for Recreate or no
/// replicas), at most the replicas.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling_update(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

/// How many pods may exist above the replicas during a rolling update.
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    fenceposts(d).0
}

// ---------------------------------------------------------------------------------------
// ReplicaSet sets.

/// The ReplicaSets with replicas (upstream's `FilterActiveReplicaSets`).
pub fn filter_active(rss: &[ReplicaSet]) -> Vec<ReplicaSet> {
    rss.iter()
        .filter(|rs| rs_replicas(rs) > 0)
        .cloned()
        .collect()
}

/// The sum of `spec.replicas`.
pub fn replica_count(rss: &[ReplicaSet]) -> i32 {
    rss.iter().map(rs_replicas).sum()
}

/// The sum of `status.replicas`.
pub fn actual_replica_count(rss: &[ReplicaSet]) -> i32 {
    rss.iter().map(rs_status_replicas).sum()
}

/// The sum of `status.availableReplicas`.
pub fn available_replica_count(rss: &[ReplicaSet]) -> i32 {
    rss.iter().map(rs_available).sum()
}

/// The sum of `status.terminatingReplicas`, unknown if any ReplicaSet does not report it.
pub fn terminating_replica_count(rss: &[ReplicaSet]) -> Option<i32> {
    rss.iter()
        .map(|rs| rs.status.as_ref().and_then(|s| s.terminating_replicas))
        .sum()
}

fn created(rs: &ReplicaSet) -> Option<Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

fn name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or("")
}

/// Oldest first, then by name (upstream's `ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| name(a).cmp(name(b)))
}

/// Largest first, older first among equals (`ReplicaSetsBySizeOlder`).
pub fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(a, b))
}

/// Largest first, newer first among equals (`ReplicaSetsBySizeNewer`).
pub fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| created(b).cmp(&created(a)))
}

/// Lowest revision first, then by creation (`ReplicaSetsByRevision`).
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    revision(&a.metadata)
        .cmp(&revision(&b.metadata))
        .then_with(|| by_creation(a, b))
}

/// The revision annotation as a number (0 when absent or malformed).
pub fn revision(meta: &ObjectMeta) -> i64 {
    annotation(meta, REVISION_ANNOTATION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The highest revision among the ReplicaSets.
pub fn max_revision(rss: &[ReplicaSet]) -> i64 {
    rss.iter()
        .map(|rs| revision(&rs.metadata))
        .max()
        .unwrap_or(0)
}

/// The ReplicaSet whose template is the Deployment's, the oldest if several are
/// (`FindNewReplicaSet`).
pub fn find_new_rs<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let template = template(d);
    let mut sorted: Vec<&ReplicaSet> = rss.iter().collect();
    sorted.sort_by(|a, b| by_creation(a, b));
    sorted.into_iter().find(|rs| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| equal_ignore_hash(t, &template))
    })
}

/// Every ReplicaSet but the new one (`FindOldReplicaSets`' second result).
pub fn find_old_rss(d: &Deployment, rss: &[ReplicaSet]) -> Vec<ReplicaSet> {
    let new_uid = find_new_rs(d, rss).and_then(|rs| rs.metadata.uid.clone());
    rss.iter()
        .filter(|rs| new_uid.is_none() || rs.metadata.uid != new_uid)
        .cloned()
        .collect()
}

/// The one ReplicaSet with replicas, or the newest if none has any; `None` when several
/// have replicas and a scale must be shared proportionally (`FindActiveOrLatest`).
pub fn find_active_or_latest(
    new_rs: Option<&ReplicaSet>,
    old_rss: &[ReplicaSet],
) -> Option<ReplicaSet> {
    if new_rs.is_none() && old_rss.is_empty() {
        return None;
    }
    let mut olds = old_rss.to_vec();
    olds.sort_by(|a, b| by_creation(b, a));
    let mut all = olds.clone();
    all.extend(new_rs.cloned());
    let active = filter_active(&all);
    match active.len() {
        0 => new_rs.cloned().or_else(|| olds.first().cloned()),
        1 => active.into_iter().next(),
        _ => None,
    }
}

/// How many replicas the new ReplicaSet should have now (`NewRSNewReplicas`): under
/// RollingUpdate as many as maxSurge allows without passing the Deployment's replicas,
/// under Recreate all of them.
pub fn new_rs_new_replicas(d: &Deployment, all_rss: &[ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let desired = replicas(d);
    if !is_rolling_update(d) {
        return desired;
    }
    let current = replica_count(all_rss);
    let max_total = desired + max_surge(d);
    if current >= max_total {
        return rs_replicas(new_rs);
    }
    let scale_up = (max_total - current).min(desired - rs_replicas(new_rs));
    rs_replicas(new_rs) + scale_up
}

/// Whether the new ReplicaSet has all the Deployment's replicas, all available
/// (`IsSaturated`).
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else {
        return false;
    };
    let desired = replicas(d);
    let annotated =
        annotation(&rs.metadata, DESIRED_REPLICAS_ANNOTATION).and_then(|v| v.parse::<i32>().ok());
    annotated == Some(desired) && rs_replicas(rs) == desired && rs_available(rs) == desired
}

fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    annotation(&rs.metadata, key).and_then(|v| v.parse().ok())
}

/// The desired-replicas annotation, if set and numeric.
pub fn desired_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    int_annotation(rs, DESIRED_REPLICAS_ANNOTATION)
}

/// The share of a scale by `to_add` replicas (`added` of them already handed out) that
/// this ReplicaSet gets (`GetProportion`).
pub fn get_proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = replica_set_fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// How many replicas this ReplicaSet gains (or loses) if the Deployment's new size is
/// shared in proportion to the size it had when the ReplicaSet was last scaled.
fn replica_set_fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    let desired = replicas(d);
    if desired == 0 {
        return -rs_replicas(rs);
    }
    let deployment_replicas = desired + max_surge(d);
    let annotated = int_annotation(rs, MAX_REPLICAS_ANNOTATION).unwrap_or_else(|| {
        d.status
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or_default()
    });
    if annotated == 0 {
        return 0;
    }
    let size = f64::from(rs_replicas(rs)) * f64::from(deployment_replicas) / f64::from(annotated);
    // Go's math.Round rounds halves away from zero, as f64::round does.
    size.round() as i32 - rs_replicas(rs)
}

/// Sets the desired- and max-replicas annotations; whether they changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (key, value) in [
        (DESIRED_REPLICAS_ANNOTATION, desired),
        (MAX_REPLICAS_ANNOTATION, max),
    ] {
        let value = value.to_string();
        if annotations.get(key) != Some(&value) {
            annotations.insert(key.to_string(), value);
            changed = true;
        }
    }
    changed
}

/// Whether the desired- and max-replicas annotations differ from these values.
pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    int_annotation(rs, DESIRED_REPLICAS_ANNOTATION) != Some(desired)
        || int_annotation(rs, MAX_REPLICAS_ANNOTATION) != Some(max)
}

fn skip_copy_annotation(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED_ANNOTATION
            | REVISION_ANNOTATION
            | REVISION_HISTORY_ANNOTATION
            | DESIRED_REPLICAS_ANNOTATION
            | MAX_REPLICAS_ANNOTATION
            | DEPRECATED_ROLLBACK_TO
    )
}

/// Copies the Deployment's annotations (but its own bookkeeping and kubectl's apply
/// record) onto the new ReplicaSet, raises its revision to `new_revision` (keeping the
/// revisions it served before in revision-history) and, for a ReplicaSet about to be
/// created, sets the replicas annotations; whether anything changed
/// (`SetNewReplicaSetAnnotations`).
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: &str,
    exists: bool,
    history_limit_chars: usize,
) -> bool {
    let mut changed = false;
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy_annotation(k) || annotations.get(k) == Some(v) {
            continue;
        }
        annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    let old_revision = annotations.get(REVISION_ANNOTATION).cloned();
    let old_revision_int = match old_revision.as_deref() {
        None | Some("") => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    let Ok(new_revision_int) = new_revision.parse::<i64>() else {
        return false;
    };
    if old_revision_int < new_revision_int {
        annotations.insert(REVISION_ANNOTATION.to_string(), new_revision.to_string());
        changed = true;
    }
    if let Some(old) = old_revision.filter(|_| old_revision_int < new_revision_int) {
        let history = annotations
            .get(REVISION_HISTORY_ANNOTATION)
            .cloned()
            .unwrap_or_default();
        if history.is_empty() {
            annotations.insert(REVISION_HISTORY_ANNOTATION.to_string(), old);
        } else {
            let mut revisions: Vec<&str> = history.split(',').collect();
            let mut total = history.len() + old.len() + 1;
            let mut start = 0;
            while total > history_limit_chars && start < revisions.len() {
                total -= revisions[start].len() + 1;
                start += 1;
            }
            if total <= history_limit_chars {
                revisions = revisions.split_off(start);
                revisions.push(&old);
                let joined = revisions.join(",");
                annotations.insert(REVISION_HISTORY_ANNOTATION.to_string(), joined);
            } else {
                tracing::warn!(limit = history_limit_chars, "revision history too long");
            }
        }
    }
    if !exists {
        let desired = replicas(d);
        if set_replicas_annotations(rs, desired, desired + max_surge(d)) {
            changed = true;
        }
    }
    changed
}

/// Sets the Deployment's revision annotation; whether it changed.
pub fn set_deployment_revision(d: &mut Deployment, revision: &str) -> bool {
    let annotations = d.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if annotations.get(REVISION_ANNOTATION).map(String::as_str) == Some(revision) {
        return false;
    }
    annotations.insert(REVISION_ANNOTATION.to_string(), revision.to_string());
    true
}

// ---------------------------------------------------------------------------------------
// Conditions and status.

/// `now` to the second, as the API stores times, so that a status compares equal to
/// what was written.
pub fn now_time(now: Timestamp) -> Time {
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// A condition whose update and transition times are `now`.
pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: Some(now_time(now)),
        last_transition_time: Some(now_time(now)),
    }
}

/// The condition of this type.
pub fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

/// Sets a condition, unless one of its type has the same status and reason; keeps the
/// transition time when the status is unchanged (`SetDeploymentCondition`).
pub fn set_condition(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    if let Some(current) = get_condition(status, &condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition
                .last_transition_time
                .clone_from(&current.last_transition_time);
        }
    }
    remove_condition(status, &condition.type_);
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(condition);
}

/// Removes the condition of this type.
pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
}

/// The Deployment's status computed from its ReplicaSets (`calculateStatus`), with the
/// Available condition set; other conditions are carried over.
pub fn calculate_status(
    all_rss: &[ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let available = available_replica_count(all_rss);
    let total = replica_count(all_rss);
    let unavailable = (total - available).max(0);
    let previous = d.status.clone().unwrap_or_default();
    let new_rss: Vec<ReplicaSet> = new_rs.cloned().into_iter().collect();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(actual_replica_count(all_rss)),
        updated_replicas: Some(actual_replica_count(&new_rss)),
        ready_replicas: Some(all_rss.iter().map(rs_ready).sum()),
        available_replicas: Some(available),
        unavailable_replicas: Some(unavailable),
        terminating_replicas: terminating_replica_count(all_rss),
        collision_count: previous.collision_count,
        conditions: previous.conditions,
    };
    let condition = if available >= replicas(d) - max_unavailable(d) {
        new_condition(
            AVAILABLE,
            "True",
            MINIMUM_REPLICAS_AVAILABLE,
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        new_condition(
            AVAILABLE,
            "False",
            MINIMUM_REPLICAS_UNAVAILABLE,
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    set_condition(&mut status, condition);
    status
}

/// Whether two statuses say the same, reading an absent count as 0 (the API omits
/// zeros) and an absent list of conditions as empty.
pub fn status_equal(a: Option<&DeploymentStatus>, b: Option<&DeploymentStatus>) -> bool {
    let norm = |s: Option<&DeploymentStatus>| {
        let mut s = s.cloned().unwrap_or_default();
        for v in [
            &mut s.replicas,
            &mut s.updated_replicas,
            &mut s.ready_replicas,
            &mut s.available_replicas,
            &mut s.unavailable_replicas,
            &mut s.terminating_replicas,
        ] {
            if *v == Some(0) {
                *v = None;
            }
        }
        if s.observed_generation == Some(0) {
            s.observed_generation = None;
        }
        if s.conditions.as_ref().is_some_and(Vec::is_empty) {
            s.conditions = None;
        }
        s
    };
    norm(a) == norm(b)
}

fn count(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// Whether the rollout is done: every replica updated and available, no old ones left,
/// the latest spec observed (`DeploymentComplete`).
pub fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let desired = replicas(d);
    count(status.updated_replicas) == desired
        && count(status.replicas) == desired
        && count(status.available_replicas) == desired
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Whether `new` shows progress over the Deployment's current status: more updated,
/// fewer old, more ready or more available replicas (`DeploymentProgressing`).
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = count(old.replicas) - count(old.updated_replicas);
    let new_old = count(new.replicas) - count(new.updated_replicas);
    count(new.updated_replicas) > count(old.updated_replicas)
        || new_old < old_old
        || count(new.ready_replicas) > count(old.ready_replicas)
        || count(new.available_replicas) > count(old.available_replicas)
}

/// Whether the rollout made no progress for progressDeadlineSeconds since the
/// Progressing condition was last updated (`DeploymentTimedOut`).
pub fn deployment_timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(cond) = get_condition(status, PROGRESSING) else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(NEW_RS_AVAILABLE_REASON) => return false,
        Some(TIMED_OUT_REASON) => return true,
        _ => {}
    }
    let Some(from) = cond.last_update_time.as_ref() else {
        return false;
    };
    let deadline = i64::from(progress_deadline_seconds(d).unwrap_or(0));
    from.0.as_second() + deadline < now.as_second()
}

/// How long until the Progressing condition's deadline passes, if the rollout is still
/// expected to progress.
pub fn time_to_deadline(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> Option<i64> {
    if !has_progress_deadline(d) {
        return None;
    }
    let cond = get_condition(status, PROGRESSING)?;
    let complete = count(status.replicas) == count(status.updated_replicas)
        && cond.reason.as_deref() == Some(NEW_RS_AVAILABLE_REASON);
    if complete || cond.reason.as_deref() == Some(TIMED_OUT_REASON) {
        return None;
    }
    let from = cond.last_update_time.as_ref()?.0.as_second();
    let deadline = i64::from(progress_deadline_seconds(d).unwrap_or(0));
    Some(from + deadline - now.as_second())
}

/// The ReplicaFailure condition to copy from the ReplicaSets, the new one's first.
pub fn replica_failure(
    all_rss: &[ReplicaSet],
    new_rs: Option<&ReplicaSet>,
) -> Option<DeploymentCondition> {
    let failure = |rs: &ReplicaSet| {
        rs.status
            .as_ref()?
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == REPLICA_FAILURE)
            .map(|c| DeploymentCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time.clone(),
            })
    };
    new_rs
        .and_then(failure)
        .or_else(|| all_rss.iter().find_map(failure))
}

#[cfg(test)]
mod tests;

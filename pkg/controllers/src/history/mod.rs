//! ControllerRevision history shared by the StatefulSet and DaemonSet controllers
//! (upstream `pkg/controller/history`): each revision stores the owner's pod template as
//! a patch (`{"spec":{"template":{…,"$patch":"replace"}}}`), is named `<owner>-<hash>`
//! and numbered; equal templates share one revision, moved to the front when reused, and
//! history beyond `revisionHistoryLimit` is pruned unless pods still use it.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use crate::workload::is_controlled_by;

/// The pod and revision label naming the revision a pod was made from.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

/// The characters upstream's `rand.SafeEncodeString` maps to (no vowels, no look-alikes).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Go's `hash/fnv` New32 (FNV-1, 32 bits).
fn fnv1_32(parts: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for part in parts {
        for b in *part {
            h = h.wrapping_mul(0x0100_0193);
            h ^= u32::from(*b);
        }
    }
    h
}

/// Maps each byte of `s` onto [`ALPHANUMS`], as upstream does so that hashes never spell
/// words and are valid in names and label values.
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

/// The hash of a revision's data and collision count (upstream `HashControllerRevision`):
/// FNV-1 of the data's bytes then the count in decimal, the sum's decimal safe-encoded.
pub fn hash_revision(data: &Value, collision_count: Option<i32>) -> String {
    let bytes = serde_json::to_vec(data).unwrap_or_default();
    let probe = collision_count.map(|c| c.to_string()).unwrap_or_default();
    safe_encode(&fnv1_32(&[&bytes, probe.as_bytes()]).to_string())
}

/// The name of a revision: the owner's name (cut to 223 characters) and the hash.
pub fn revision_name(owner: &str, hash: &str) -> String {
    let prefix: String = owner.chars().take(223).collect();
    format!("{prefix}-{hash}")
}

/// The data a revision stores for a pod template: the patch that restores it.
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut t {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The pod template a revision stores, if its data is a template patch.
pub fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    if let Value::Object(m) = &mut t {
        m.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

/// Whether two revisions store the same data.
pub fn same_data(rev: &ControllerRevision, data: &Value) -> bool {
    rev.data.as_ref().is_some_and(|d| &d.0 == data)
}

/// Orders revisions oldest first: by revision number, then creation time, then name.
pub fn sort_revisions(revs: &mut [ControllerRevision]) {
    revs.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| {
                let t = |r: &ControllerRevision| r.metadata.creation_timestamp.clone();
                t(a).partial_cmp(&t(b)).unwrap_or(Ordering::Equal)
            })
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
}

/// The number the next revision gets: one more than the newest (revisions sorted).
pub fn next_revision(sorted: &[ControllerRevision]) -> i64 {
    sorted.last().map_or(1, |r| r.revision + 1)
}

/// A revision object (not yet created) for `data`, numbered `revision`, carrying `labels`
/// and controlled by `owner`, named with `collision_count`.
pub fn new_revision(
    owner_name: &str,
    namespace: &str,
    owner: OwnerReference,
    labels: std::collections::BTreeMap<String, String>,
    data: Value,
    revision: i64,
    collision_count: i32,
) -> ControllerRevision {
    let hash = hash_revision(&data, Some(collision_count));
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(owner_name, &hash)),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// Creates `rev`; a name already taken by a different revision is a hash collision: the
/// collision count goes up and the name is recomputed, as upstream's
/// `CreateControllerRevision`. An existing equal revision of the same owner is returned.
pub async fn create_revision(
    api: &Api<ControllerRevision>,
    mut rev: ControllerRevision,
    owner_name: &str,
    owner_uid: &str,
    collision_count: &mut i32,
) -> Result<ControllerRevision, kube::Error> {
    let data = rev
        .data
        .as_ref()
        .map(|d| d.0.clone())
        .unwrap_or(Value::Null);
    loop {
        let hash = hash_revision(&data, Some(*collision_count));
        rev.metadata.name = Some(revision_name(owner_name, &hash));
        if let Some(labels) = rev.metadata.labels.as_mut()
            && labels.contains_key(CONTROLLER_REVISION_HASH)
        {
            labels.insert(CONTROLLER_REVISION_HASH.into(), hash.clone());
        }
        match api.create(&PostParams::default(), &rev).await {
            Ok(created) => return Ok(created),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let existing = api.get(&rev.name_any()).await?;
                if is_controlled_by(&existing.metadata, owner_uid) && same_data(&existing, &data) {
                    return Ok(existing);
                }
                *collision_count += 1;
                if *collision_count > 1000 {
                    return Err(kube::Error::Api(s));
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Gives an existing revision a new number (it became current again).
pub async fn update_revision_number(
    api: &Api<ControllerRevision>,
    rev: &ControllerRevision,
    revision: i64,
) -> Result<ControllerRevision, kube::Error> {
    let patch = json!({"metadata": {"resourceVersion": rev.metadata.resource_version}, "revision": revision});
    api.patch(
        &rev.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
}

/// The revisions to delete to keep at most `limit` that no pod or status still uses:
/// the oldest non-live ones (revisions sorted oldest first).
pub fn revisions_to_prune(
    sorted: &[ControllerRevision],
    live: impl Fn(&ControllerRevision) -> bool,
    limit: i32,
) -> Vec<&ControllerRevision> {
    let history: Vec<&ControllerRevision> = sorted.iter().filter(|r| !live(r)).collect();
    let limit = usize::try_from(limit.max(0)).unwrap_or(0);
    let excess = history.len().saturating_sub(limit);
    history.into_iter().take(excess).collect()
}

/// Deletes the given revisions, ignoring those already gone.
pub async fn prune(
    api: &Api<ControllerRevision>,
    revs: Vec<&ControllerRevision>,
) -> Result<(), kube::Error> {
    for r in revs {
        match api.delete(&r.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(name: &str, n: i64, data: Value) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(data)),
            revision: n,
        }
    }

    #[test]
    fn fnv_matches_go() {
        // Go: fnv.New32() over "" is the offset basis; over "a" is 0x050c5d7e.
        assert_eq!(fnv1_32(&[b""]), 0x811c_9dc5);
        assert_eq!(fnv1_32(&[b"a"]), 0x050c_5d7e);
        assert_eq!(fnv1_32(&[b"ab"]), fnv1_32(&[b"a", b"b"]));
    }

    #[test]
    fn hashes_are_safe_stable_and_move_with_the_collision_count() {
        let data = json!({"spec": {"template": {"$patch": "replace"}}});
        let a = hash_revision(&data, Some(0));
        assert_eq!(a, hash_revision(&data, Some(0)));
        assert_ne!(a, hash_revision(&data, Some(1)));
        assert!(a.bytes().all(|b| ALPHANUMS.contains(&b)), "{a}");
        assert_eq!(safe_encode("0123"), "4567");
        assert_eq!(revision_name("web", &a), format!("web-{a}"));
    }

    #[test]
    fn templates_round_trip_through_revisions() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}
        }))
        .expect("template");
        let data = template_patch(&t);
        assert_eq!(data["spec"]["template"]["$patch"], json!("replace"));
        let r = rev("web-1", 1, data.clone());
        assert_eq!(template_of(&r), Some(t));
        assert!(same_data(&r, &data));
    }

    #[test]
    fn pruning_keeps_live_and_newest_revisions() {
        let mut revs = vec![
            rev("c", 3, json!(3)),
            rev("a", 1, json!(1)),
            rev("b", 2, json!(2)),
            rev("d", 4, json!(4)),
        ];
        sort_revisions(&mut revs);
        assert_eq!(next_revision(&revs), 5);
        // "a" is live (a pod uses it), "d" is current: of b and c, one may stay.
        let live = |r: &ControllerRevision| matches!(r.name_any().as_str(), "a" | "d");
        let names: Vec<String> = revisions_to_prune(&revs, live, 1)
            .iter()
            .map(|r| r.name_any())
            .collect();
        assert_eq!(names, ["b"]);
        assert!(revisions_to_prune(&revs, live, 10).is_empty());
    }
}

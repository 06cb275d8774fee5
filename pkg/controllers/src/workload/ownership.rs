//! Controller references and adoption (upstream's `ControllerRefManager`): an object
//! belongs to the owner its `controller: true` owner reference names. An owner adopts
//! orphans its selector matches and releases the objects it owns that its selector no
//! longer matches; it never touches what another controller owns.

use std::fmt::Debug;

use k1s_apimachinery::labels::Selector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// The owner reference a controller puts on what it creates or adopts: `controller` and
/// `blockOwnerDeletion` set, so foreground deletion waits for the dependent.
pub fn controller_ref<K>(owner: &K) -> OwnerReference
where
    K: Resource<DynamicType = ()>,
{
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The owner reference that marks the object's controller, if it has one.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// Whether the object's controller is the owner with this uid.
pub fn is_controlled_by(meta: &ObjectMeta, owner_uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == owner_uid)
}

/// What [`claim`] did.
#[derive(Debug, Default)]
pub struct Claimed<T> {
    /// The objects the owner now controls (kept and adopted), in the order given.
    pub owned: Vec<T>,
    /// How many orphans were adopted.
    pub adopted: usize,
    /// How many owned objects were released.
    pub released: usize,
}

/// Sorts `candidates` (the owner's namespace's objects of one kind) into what `owner`
/// controls, adopting orphans that `selector` matches and releasing owned objects it no
/// longer matches, as upstream's `ClaimObject`. An owner being deleted adopts nothing and
/// releases nothing. Objects that vanish meanwhile are skipped; other API errors end the
/// claim (the caller requeues).
pub async fn claim<T, O>(
    api: &Api<T>,
    owner: &O,
    selector: &Selector,
    candidates: Vec<T>,
) -> Result<Claimed<T>, kube::Error>
where
    T: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
    O: Resource<DynamicType = ()>,
{
    let owner_uid = owner.meta().uid.clone().unwrap_or_default();
    let owner_deleting = owner.meta().deletion_timestamp.is_some();
    let mut out = Claimed {
        owned: Vec::new(),
        adopted: 0,
        released: 0,
    };
    for obj in candidates {
        let labels = obj.labels().clone();
        let matches = selector.matches(&labels);
        match controller_of(obj.meta()) {
            Some(r) if r.uid != owner_uid => {}
            Some(_) => {
                if matches || owner_deleting {
                    out.owned.push(obj);
                } else {
                    match release(api, &obj, &owner_uid).await {
                        Ok(()) => out.released += 1,
                        Err(e) if gone(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            None => {
                if owner_deleting || !matches || obj.meta().deletion_timestamp.is_some() {
                    continue;
                }
                match adopt(api, &obj, controller_ref(owner)).await {
                    Ok(adopted) => {
                        out.adopted += 1;
                        out.owned.push(adopted);
                    }
                    Err(e) if gone(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(out)
}

/// A 404, or the 409/422 of a uid precondition: the object went away or was replaced.
fn gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 || s.code == 409 || s.code == 422)
}

/// Adds the controller reference, with the object's uid as a precondition so that a
/// recreated object of the same name is not adopted by mistake.
async fn adopt<T>(api: &Api<T>, obj: &T, owner: OwnerReference) -> Result<T, kube::Error>
where
    T: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let patch = json!({
        "metadata": {
            "ownerReferences": [owner],
            "uid": obj.meta().uid,
        }
    });
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
}

/// Removes the owner's reference, again guarded by the object's uid.
async fn release<T>(api: &Api<T>, obj: &T, owner_uid: &str) -> Result<(), kube::Error>
where
    T: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let patch = json!({
        "metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
            "uid": obj.meta().uid,
        }
    });
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use k1s_apiserver::test_util::TestApiServer;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{ListParams, PostParams};

    use super::*;

    fn pod(name: &str, app: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .expect("pod")
    }

    #[tokio::test]
    async fn claim_adopts_orphans_releases_strays_and_leaves_others_alone() {
        let server = TestApiServer::new().await;
        let client = server.client();
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}
                }
            }
        }))
        .expect("rs");
        let rs = sets
            .create(&PostParams::default(), &rs)
            .await
            .expect("create rs");
        let pp = PostParams::default();
        pods.create(&pp, &pod("orphan", "web"))
            .await
            .expect("orphan");
        pods.create(&pp, &pod("stranger", "db"))
            .await
            .expect("stranger");
        let mut owned = pod("stray", "db");
        owned.metadata.owner_references = Some(vec![controller_ref(&rs)]);
        pods.create(&pp, &owned).await.expect("stray");
        let mut other = pod("other", "web");
        other.metadata.owner_references = Some(vec![OwnerReference {
            uid: "someone-else".into(),
            ..controller_ref(&rs)
        }]);
        pods.create(&pp, &other).await.expect("other");

        let selector = Selector::from_set(&[("app".to_string(), "web".to_string())].into());
        let all = pods.list(&ListParams::default()).await.expect("list").items;
        let claimed = claim(&pods, &rs, &selector, all).await.expect("claim");
        let names: Vec<String> = claimed.owned.iter().map(|p| p.name_any()).collect();
        assert_eq!(names, ["orphan"]);
        assert_eq!((claimed.adopted, claimed.released), (1, 1));

        let uid = rs.meta().uid.clone().expect("uid");
        let orphan = pods.get("orphan").await.expect("orphan");
        assert!(is_controlled_by(&orphan.metadata, &uid));
        let stray = pods.get("stray").await.expect("stray");
        assert!(controller_of(&stray.metadata).is_none(), "{stray:?}");
        let other = pods.get("other").await.expect("other");
        assert!(!is_controlled_by(&other.metadata, &uid));
    }
}

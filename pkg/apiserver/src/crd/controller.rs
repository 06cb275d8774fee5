//! The CRD controller inside the apiserver (upstream's naming, establishing and finalizer
//! controllers in one loop): accepts names and marks definitions Established, serves
//! their custom resources through the registry, and on deletion removes every custom
//! object before letting the definition go.

use std::sync::Arc;
use std::time::Duration;

use k1s_apimachinery::Status;
use serde_json::{Value, json};

use super::custom::{is_servable, resources_for};
use super::definition::{CLEANUP_FINALIZER, set_condition};
use crate::auth::UserInfo;
use crate::registry::generic::{DeleteOptions, ListOptions, WriteContext};
use crate::registry::{Resource, Subresource};
use crate::schema::model::Definitions;
use crate::{ApiServer, meta};

const GROUP: &str = "apiextensions.k8s.io";
const PLURAL: &str = "customresourcedefinitions";

/// How often a terminating definition is looked at again while custom objects with
/// finalizers of their own keep it waiting.
const CLEANUP_RETRY: Duration = Duration::from_millis(500);
/// Resync period when nothing happens, as a safety net.
const RESYNC: Duration = Duration::from_secs(30);

fn ctx() -> WriteContext {
    WriteContext {
        user: UserInfo::loopback(),
        field_manager: "kube-apiserver".into(),
        ..WriteContext::default()
    }
}

/// Runs the CRD controller: one pass now (so that custom resources are served before the
/// server reports ready), then a background task that follows every change.
pub async fn start(server: Arc<ApiServer>) -> tokio::task::JoinHandle<()> {
    let mut controller = CrdController {
        server,
        served: String::new(),
    };
    let _ = controller.reconcile().await;
    tokio::spawn(async move { controller.run().await })
}

struct CrdController {
    server: Arc<ApiServer>,
    /// Fingerprint of what the registry serves, so that unrelated status writes do not
    /// rebuild discovery and OpenAPI.
    served: String,
}

impl CrdController {
    fn crd_resource(&self) -> Option<Arc<Resource>> {
        self.server
            .registry
            .snapshot()
            .get(GROUP, "v1", PLURAL)
            .cloned()
    }

    async fn run(&mut self) {
        let Some(res) = self.crd_resource() else {
            return;
        };
        let prefix = res.info.collection_prefix(None);
        loop {
            let cache = self.server.generic.store().cache().clone();
            let from = cache.revision();
            let pending = match self.reconcile().await {
                Ok(pending) => pending,
                Err(e) => {
                    tracing::warn!(error = %e.message, "CRD reconcile failed; retrying");
                    true
                }
            };
            let wait = if pending { CLEANUP_RETRY } else { RESYNC };
            match cache.watch(&prefix, from) {
                Ok(mut stream) => {
                    let _ = tokio::time::timeout(wait, stream.next()).await;
                }
                Err(_) => tokio::time::sleep(CLEANUP_RETRY).await,
            }
        }
    }

    /// One pass over every definition. Returns whether a deletion is still in progress.
    async fn reconcile(&mut self) -> Result<bool, Status> {
        let Some(res) = self.crd_resource() else {
            return Ok(false);
        };
        let generic = &self.server.generic;
        let crds = generic
            .list(&res, None, &ListOptions::default())
            .await?
            .items;
        let mut pending = false;
        // One definition that cannot be handled (its custom objects cannot be read or
        // deleted, e.g. their conversion webhook is gone) must not hold up the others.
        for crd in &crds {
            let name = meta::name(crd);
            let desired = desired_status(crd, &crds);
            if desired != crd.get("status").cloned().unwrap_or(Value::Null)
                && let Err(e) = self.write_status(&res, crd, &crds).await
            {
                tracing::warn!(crd = name, error = %e.message, "cannot update the CRD's status; retrying");
                pending = true;
            }
            if meta::is_deleting(crd)
                && meta::finalizers(crd).iter().any(|f| f == CLEANUP_FINALIZER)
            {
                match self.clean_up(&res, crd).await {
                    Ok(done) => pending |= !done,
                    Err(e) => {
                        tracing::warn!(crd = name, error = %e.message, "cannot delete the CRD's custom objects; retrying");
                        let message = format!("could not issue all deletes: {}", e.message);
                        self.set_terminating(&res, name, "InstanceDeletionFailed", &message)
                            .await;
                        pending = true;
                    }
                }
            }
        }
        // Serve what the (possibly just updated) definitions describe.
        let crds = generic
            .list(&res, None, &ListOptions::default())
            .await?
            .items;
        self.install(&crds);
        Ok(pending)
    }

    async fn write_status(
        &self,
        res: &Arc<Resource>,
        crd: &Value,
        all: &[Value],
    ) -> Result<(), Status> {
        let name = meta::name(crd).to_string();
        let result = self
            .server
            .generic
            .update(
                res,
                None,
                &name,
                Some(Subresource::Status),
                &ctx(),
                |current, _| {
                    let current = current
                        .cloned()
                        .ok_or_else(|| Status::not_found(&res.info.group_resource(), &name))?;
                    let others: Vec<Value> = all
                        .iter()
                        .filter(|o| meta::name(o) != name)
                        .cloned()
                        .chain([current.clone()])
                        .collect();
                    let mut next = current;
                    next["status"] = desired_status(&next, &others);
                    Ok(next)
                },
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            // Gone meanwhile: the next pass sees it.
            Err(s) if s.code == 404 => Ok(()),
            Err(s) => Err(s),
        }
    }

    /// Deletes the custom objects of a terminating definition; once none is left, drops
    /// the cleanup finalizer. Returns whether the definition is finished.
    async fn clean_up(&self, res: &Arc<Resource>, crd: &Value) -> Result<bool, Status> {
        let name = meta::name(crd).to_string();
        let group = str_of(crd, "/spec/group");
        let plural = str_of(crd, "/status/acceptedNames/plural");
        let snap = self.server.registry.snapshot();
        let storage = if plural.is_empty() {
            None
        } else {
            snap.storage_resource(&format!("/registry/{group}/{plural}"))
                .cloned()
        };
        let mut remaining = 0usize;
        if let Some(cr) = storage {
            let items = self
                .server
                .generic
                .list(&cr, None, &ListOptions::default())
                .await?
                .items;
            remaining = items.len();
            for item in &items {
                if meta::is_deleting(item) {
                    continue;
                }
                let ns = meta::namespace(item);
                let ns = (!ns.is_empty()).then_some(ns);
                match self
                    .server
                    .generic
                    .delete(&cr, ns, meta::name(item), &DeleteOptions::default(), &ctx())
                    .await
                {
                    Ok(_) => {}
                    Err(s) if s.code == 404 => {}
                    Err(s) => return Err(s),
                }
            }
            if remaining > 0 {
                // Count again: objects without finalizers are gone now.
                remaining = self
                    .server
                    .generic
                    .list(&cr, None, &ListOptions::default())
                    .await?
                    .items
                    .len();
            }
        }
        let done = remaining == 0;
        let result = self
            .server
            .generic
            .update(res, None, &name, None, &ctx(), |current, _| {
                let mut next = current
                    .cloned()
                    .ok_or_else(|| Status::not_found(&res.info.group_resource(), &name))?;
                if done {
                    let finalizers: Vec<String> = meta::finalizers(&next)
                        .into_iter()
                        .filter(|f| f != CLEANUP_FINALIZER)
                        .collect();
                    meta::set_meta(&mut next, "finalizers", Some(json!(finalizers)));
                }
                Ok(next)
            })
            .await;
        if !done {
            self.set_terminating(
                res,
                &name,
                "InstanceDeletionInProgress",
                "CustomResource deletion is in progress",
            )
            .await;
        }
        match result {
            Ok(_) => Ok(done),
            Err(s) if s.code == 404 => Ok(true),
            Err(s) => Err(s),
        }
    }

    /// Records why a terminating definition is still there (best effort: the next pass
    /// writes it again).
    async fn set_terminating(&self, res: &Arc<Resource>, name: &str, reason: &str, message: &str) {
        let _ = self
            .server
            .generic
            .update(
                res,
                None,
                name,
                Some(Subresource::Status),
                &ctx(),
                |current, _| {
                    let mut next = current
                        .cloned()
                        .ok_or_else(|| Status::not_found(&res.info.group_resource(), name))?;
                    set_condition(&mut next, "Terminating", "True", reason, message);
                    Ok(next)
                },
            )
            .await;
    }

    /// Hands the registry the custom resources of every servable definition.
    fn install(&mut self, crds: &[Value]) {
        let servable: Vec<&Value> = crds.iter().filter(|c| is_servable(c)).collect();
        let fingerprint = servable
            .iter()
            .map(|c| {
                format!(
                    "{}@{}:{}",
                    meta::name(c),
                    c.pointer("/metadata/generation")
                        .cloned()
                        .unwrap_or(Value::Null),
                    c.pointer("/status/acceptedNames")
                        .cloned()
                        .unwrap_or(Value::Null)
                )
            })
            .collect::<Vec<_>>()
            .join("|");
        if fingerprint == self.served {
            return;
        }
        let snap = self.server.registry.snapshot();
        let mut defs = Definitions::new();
        let mut resources = Vec::new();
        for crd in servable {
            for r in resources_for(crd, &mut defs) {
                // A definition may not take over a built-in resource.
                let clash = snap
                    .get(&r.info.group, &r.info.version, &r.info.plural)
                    .is_some_and(|existing| !self.server.is_custom(existing));
                if clash {
                    tracing::warn!(
                        crd = meta::name(crd),
                        "CRD clashes with a built-in resource; not served"
                    );
                    continue;
                }
                resources.push(Arc::new(r));
            }
        }
        tracing::info!(count = resources.len(), "serving custom resources");
        self.server.set_custom_resources(resources, defs);
        self.served = fingerprint;
    }
}

fn str_of(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The status a definition should have: accepted names (unless they clash with another
/// definition of the same group), the NamesAccepted and Established conditions, and the
/// stored versions.
fn desired_status(crd: &Value, all: &[Value]) -> Value {
    let mut next = crd.clone();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let group = str_of(crd, "/spec/group");
    let conflict = all
        .iter()
        .filter(|o| meta::name(o) != meta::name(crd) && str_of(o, "/spec/group") == group)
        .find_map(|other| names_conflict(&names, other));
    match conflict {
        Some((reason, message)) => {
            set_condition(&mut next, "NamesAccepted", "False", reason, &message);
            if !is_servable(crd) {
                set_condition(
                    &mut next,
                    "Established",
                    "False",
                    "NotAccepted",
                    "not all names are accepted",
                );
            }
        }
        None => {
            let mut accepted = names.clone();
            if let Some(o) = accepted.as_object_mut() {
                o.retain(|_, v| !v.is_null());
            }
            next["status"]["acceptedNames"] = accepted;
            set_condition(
                &mut next,
                "NamesAccepted",
                "True",
                "NoConflicts",
                "no conflicts found",
            );
            set_condition(
                &mut next,
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            );
        }
    }
    let mut stored: Vec<Value> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(v) = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        })
        .and_then(|v| v.get("name").cloned())
        && !stored.contains(&v)
    {
        stored.push(v);
    }
    next["status"]["storedVersions"] = Value::Array(stored);
    if next["status"].get("acceptedNames").is_none() {
        next["status"]["acceptedNames"] = json!({"plural": "", "kind": ""});
    }
    next["status"].clone()
}

/// Whether `names` clashes with the accepted names of `other` (same group).
fn names_conflict(names: &Value, other: &Value) -> Option<(&'static str, String)> {
    let accepted = other.pointer("/status/acceptedNames")?;
    let get = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mine_short: Vec<String> = names
        .get("shortNames")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let theirs_short: Vec<&str> = accepted
        .get("shortNames")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let taken = |n: &str| {
        !n.is_empty()
            && (get(accepted, "plural") == n
                || get(accepted, "singular") == n
                || theirs_short.contains(&n))
    };
    if taken(&get(names, "plural")) {
        return Some((
            "PluralConflict",
            format!("\"{}\" is already in use", get(names, "plural")),
        ));
    }
    if taken(&get(names, "singular")) {
        return Some((
            "SingularConflict",
            format!("\"{}\" is already in use", get(names, "singular")),
        ));
    }
    if let Some(s) = mine_short.iter().find(|s| taken(s)) {
        return Some(("ShortNamesConflict", format!("\"{s}\" is already in use")));
    }
    let kind = get(names, "kind");
    if !kind.is_empty() && (get(accepted, "kind") == kind || get(accepted, "listKind") == kind) {
        return Some(("KindConflict", format!("\"{kind}\" is already in use")));
    }
    let list_kind = get(names, "listKind");
    if !list_kind.is_empty()
        && (get(accepted, "kind") == list_kind || get(accepted, "listKind") == list_kind)
    {
        return Some((
            "ListKindConflict",
            format!("\"{list_kind}\" is already in use"),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(name: &str, plural: &str, kind: &str, short: &[&str]) -> Value {
        json!({
            "metadata": {"name": name},
            "spec": {"group": "example.com", "names": {"plural": plural, "kind": kind, "shortNames": short},
                     "versions": [{"name": "v1", "storage": true, "served": true}]},
        })
    }

    #[test]
    fn accepts_names_and_records_the_storage_version() {
        let a = crd("widgets.example.com", "widgets", "Widget", &["wd"]);
        let status = desired_status(&a, std::slice::from_ref(&a));
        assert_eq!(status["acceptedNames"]["plural"], json!("widgets"));
        assert_eq!(status["storedVersions"], json!(["v1"]));
        let types: Vec<&str> = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, vec!["NamesAccepted", "Established"]);
    }

    #[test]
    fn a_short_name_in_use_is_a_conflict() {
        let mut a = crd("widgets.example.com", "widgets", "Widget", &["wd"]);
        a["status"] = desired_status(&a, std::slice::from_ref(&a));
        let b = crd("wodgets.example.com", "wodgets", "Wodget", &["wd"]);
        let status = desired_status(&b, &[a, b.clone()]);
        assert_eq!(
            status["conditions"][0]["reason"],
            json!("ShortNamesConflict")
        );
        assert_eq!(status["acceptedNames"]["plural"], json!(""));
    }
}

#[cfg(test)]
mod serving_tests {
    use std::time::Duration;

    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
    use serde_json::json;

    use crate::test_util::TestApiServer;

    fn crd() -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {
                            "size": {"type": "integer", "maximum": 10, "default": 3}}}}}}}],
            }
        }))
        .unwrap()
    }

    fn widgets(client: kube::Client) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
        Api::namespaced_with(client, "default", &ApiResource::from_gvk(&gvk))
    }

    fn widget(name: &str, spec: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name}, "spec": spec,
        }))
        .unwrap()
    }

    /// Retries `f` until it succeeds or five seconds pass.
    async fn eventually<T, E: std::fmt::Debug, F, Fut>(mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match f().await {
                Ok(v) => return v,
                Err(e) if tokio::time::Instant::now() > deadline => panic!("gave up: {e:?}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    #[tokio::test]
    async fn a_crd_is_served_validated_and_cleaned_up() {
        let api = TestApiServer::new().await;
        let client = api.client();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &crd()).await.unwrap();

        let w = widgets(client.clone());
        let a = widget("a", json!({}));
        let pp = PostParams::default();
        let created = eventually(|| w.create(&pp, &a)).await;
        assert_eq!(created.data["spec"]["size"], json!(3), "default applied");
        let established = crds.get("widgets.example.com").await.unwrap();
        let conditions = established.status.unwrap().conditions.unwrap();
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        );

        let err = w
            .create(&PostParams::default(), &widget("b", json!({"size": 11})))
            .await
            .unwrap_err();
        match err {
            kube::Error::Api(s) => {
                assert_eq!(s.code, 422);
                assert!(
                    s.message.contains(
                        "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10"
                    ),
                    "{}",
                    s.message
                );
            }
            other => panic!("unexpected {other}"),
        }

        crds.delete("widgets.example.com", &DeleteParams::default())
            .await
            .unwrap();
        eventually(|| async {
            match crds.get_opt("widgets.example.com").await {
                Ok(None) => Ok(()),
                other => Err(format!("still there: {:?}", other.map(|o| o.is_some()))),
            }
        })
        .await;
        let stored = api
            .server
            .generic
            .store()
            .cache()
            .list("/registry/example.com/widgets/", None, 0)
            .0;
        assert!(stored.is_empty(), "custom objects removed with their CRD");
        assert!(
            w.list(&Default::default()).await.is_err(),
            "no longer served"
        );
    }

    /// A definition whose custom objects cannot be deleted (their conversion webhook is
    /// unreachable) stays Terminating with the reason, and other definitions are still
    /// established meanwhile.
    #[tokio::test]
    async fn a_stuck_deletion_does_not_hold_up_other_definitions() {
        let api = TestApiServer::new().await;
        let client = api.client();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let mut def = serde_json::to_value(crd()).unwrap();
        let v1 = def["spec"]["versions"][0].clone();
        let mut v2 = v1.clone();
        v2["name"] = json!("v2");
        v2["storage"] = json!(false);
        def["spec"]["versions"] = json!([v1, v2]);
        def["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": {"url": "https://127.0.0.1:1/convert"}}});
        let def: CustomResourceDefinition = serde_json::from_value(def).unwrap();
        crds.create(&PostParams::default(), &def).await.unwrap();
        let w = widgets(client.clone());
        let pp = PostParams::default();
        let a = widget("a", json!({}));
        eventually(|| w.create(&pp, &a)).await;
        // v2 becomes the storage version: the object stored as v1 now needs the webhook.
        let mut current =
            serde_json::to_value(crds.get("widgets.example.com").await.unwrap()).unwrap();
        current["spec"]["versions"][0]["storage"] = json!(false);
        current["spec"]["versions"][1]["storage"] = json!(true);
        let current: CustomResourceDefinition = serde_json::from_value(current).unwrap();
        crds.replace("widgets.example.com", &pp, &current)
            .await
            .unwrap();
        crds.delete("widgets.example.com", &DeleteParams::default())
            .await
            .unwrap();
        eventually(|| async {
            let c = crds
                .get("widgets.example.com")
                .await
                .map_err(|e| e.to_string())?;
            let conditions = c.status.and_then(|s| s.conditions).unwrap_or_default();
            conditions
                .iter()
                .find(|c| {
                    c.type_ == "Terminating"
                        && c.reason.as_deref() == Some("InstanceDeletionFailed")
                })
                .map(|c| {
                    assert!(
                        c.message
                            .as_deref()
                            .unwrap_or_default()
                            .contains("could not issue all deletes"),
                        "{:?}",
                        c.message
                    )
                })
                .ok_or_else(|| format!("no InstanceDeletionFailed yet: {conditions:?}"))
        })
        .await;

        let mut other = serde_json::to_value(crd()).unwrap();
        other["metadata"]["name"] = json!("gadgets.example.com");
        other["spec"]["names"] = json!({"plural": "gadgets", "kind": "Gadget"});
        let other: CustomResourceDefinition = serde_json::from_value(other).unwrap();
        crds.create(&pp, &other).await.unwrap();
        eventually(|| async {
            let c = crds
                .get("gadgets.example.com")
                .await
                .map_err(|e| e.to_string())?;
            let conditions = c.status.and_then(|s| s.conditions).unwrap_or_default();
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
                .ok_or_else(|| "not established".to_string())
        })
        .await;
    }
}

//! The lifecycle most API conformance tests walk through for one resource: discovery,
//! create, get, list (in the namespace and across them), watch, patch, update, the status
//! subresource, delete and delete-collection; checked through kube-rs's dynamic client.

use futures::StreamExt as _;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use serde_json::{Value, json};

use crate::ctx::{Ctx, Fail, R};
use crate::{ensure, fail};

/// One resource and what to send it.
pub struct Resource {
    /// `group/version` (`v1` for the core group).
    pub api_version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural resource name.
    pub plural: &'static str,
    /// Whether it lives in namespaces.
    pub namespaced: bool,
    /// The object's body without apiVersion, kind and metadata.name.
    pub body: Value,
    /// Merge patch sent to the status subresource (None: it has none to test).
    pub status_patch: Option<Value>,
}

impl Resource {
    fn api_resource(&self) -> ApiResource {
        let (group, version) = match self.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.api_version),
        };
        ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: self.api_version.into(),
            kind: self.kind.into(),
            plural: self.plural.into(),
        }
    }

    /// The dynamic API of this resource in the test's namespace (or cluster-wide).
    pub fn api(&self, ctx: &Ctx) -> Api<DynamicObject> {
        let ar = self.api_resource();
        if self.namespaced {
            Api::namespaced_with(ctx.client(), &ctx.ns, &ar)
        } else {
            Api::all_with(ctx.client(), &ar)
        }
    }

    /// The object named `name`, labelled for this test.
    pub fn object(&self, ctx: &Ctx, name: &str) -> Result<DynamicObject, Fail> {
        let mut v = self.body.clone();
        let Some(m) = v.as_object_mut() else {
            fail!("the body of {} is no object", self.kind);
        };
        m.insert("apiVersion".into(), json!(self.api_version));
        m.insert("kind".into(), json!(self.kind));
        let mut meta = m.remove("metadata").unwrap_or_else(|| json!({}));
        meta["name"] = json!(name);
        meta["labels"]["conformance-test"] = json!(ctx.tag);
        m.insert("metadata".into(), meta);
        serde_json::from_value(v).map_err(|e| Fail(format!("{} manifest: {e}", self.kind)))
    }
}

/// Checks that discovery lists `plural` (and `plural/status` when `status`) in `api_version`.
pub async fn discovered(ctx: &Ctx, api_version: &str, plural: &str, status: bool) -> R {
    let path = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    let (code, doc) = ctx.raw("GET", &path, None).await;
    ensure!(code == 200, "GET {path}: {code} {doc}");
    let names: Vec<&str> = doc["resources"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["name"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        names.contains(&plural),
        "{path} does not list {plural}: {names:?}"
    );
    if status {
        let sub = format!("{plural}/status");
        ensure!(
            names.contains(&sub.as_str()),
            "{path} does not list {sub}: {names:?}"
        );
    }
    if let Some((group, _)) = api_version.split_once('/') {
        let (code, groups) = ctx.raw("GET", "/apis", None).await;
        ensure!(code == 200, "GET /apis: {code}");
        let listed = groups["groups"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g["name"] == group));
        ensure!(listed, "/apis does not list the group {group}");
    }
    Ok(())
}

/// Walks `r` through its whole lifecycle.
pub async fn lifecycle(ctx: &Ctx, r: &Resource) -> R {
    discovered(ctx, r.api_version, r.plural, r.status_patch.is_some()).await?;
    let api = r.api(ctx);
    let selector = format!("conformance-test={}", ctx.tag);
    let lp = ListParams::default().labels(&selector);
    let names: Vec<String> = (1..=3)
        .map(|i| format!("{}-{i}", ctx.name("obj")))
        .collect();
    for n in &names {
        let o = r.object(ctx, n)?;
        let created = api.create(&PostParams::default(), &o).await?;
        ensure!(
            created.metadata.uid.is_some() && created.metadata.resource_version.is_some(),
            "created {} {n} has no uid or resourceVersion",
            r.kind
        );
    }
    let got = api.get(&names[0]).await?;
    ensure!(
        got.metadata.name.as_deref() == Some(names[0].as_str()),
        "get {} gave another object",
        names[0]
    );
    let list = api.list(&lp).await?;
    ensure!(
        list.items.len() == 3,
        "list by label gave {} {}s, want 3",
        list.items.len(),
        r.kind
    );
    if r.namespaced {
        let across: Api<DynamicObject> = Api::all_with(ctx.client(), &r.api_resource());
        let all = across.list(&lp).await?;
        ensure!(
            all.items.len() == 3,
            "list across namespaces gave {} items, want 3",
            all.items.len()
        );
    }
    // A watch from the list's resourceVersion sees the next change.
    let rv = list.metadata.resource_version.clone().unwrap_or_default();
    let mut watch = api
        .watch(&WatchParams::default().labels(&selector).timeout(30), &rv)
        .await?
        .boxed();
    let patched = api
        .patch(
            &names[0],
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"patched": "true"}}})),
        )
        .await?;
    ensure!(
        patched
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("patched"))
            .map(String::as_str)
            == Some("true"),
        "patched {} lacks its annotation",
        r.kind
    );
    let seen = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        while let Some(ev) = watch.next().await {
            if let Ok(WatchEvent::Modified(o)) = ev
                && o.metadata.name.as_deref() == Some(names[0].as_str())
            {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    ensure!(
        seen,
        "the watch saw no MODIFIED event of the patched {}",
        r.kind
    );
    // Update (PUT) of what was read; a controller may write the object meanwhile, and a
    // conflict means read again.
    let mut attempt = 0;
    let updated = loop {
        let mut current = api.get(&names[1]).await?;
        current
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("updated".into(), "true".into());
        match api
            .replace(&names[1], &PostParams::default(), &current)
            .await
        {
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < 5 => attempt += 1,
            other => break other?,
        }
    };
    ensure!(
        updated
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("updated"))
            .map(String::as_str)
            == Some("true"),
        "updated {} lacks its label",
        r.kind
    );
    if let Some(status) = &r.status_patch {
        let got = api.get_status(&names[0]).await?;
        ensure!(
            got.metadata.name.as_deref() == Some(names[0].as_str()),
            "get status gave another object"
        );
        let after = api
            .patch_status(
                &names[0],
                &PatchParams::default(),
                &Patch::Merge(status.clone()),
            )
            .await?;
        let want = &status["status"];
        let have = &after.data["status"];
        ensure!(
            contains(have, want),
            "status after the patch is {have}, want it to hold {want}"
        );
    }
    api.delete(&names[2], &DeleteParams::default()).await?;
    crate::ctx::eventually(30, "the deleted object to go", || async {
        match api.get_opt(&names[2]).await {
            Ok(None) => Some(()),
            _ => None,
        }
    })
    .await?;
    api.delete_collection(&DeleteParams::default(), &lp).await?;
    crate::ctx::eventually(30, "delete-collection to remove every object", || async {
        match api.list(&lp).await {
            Ok(l) if l.items.is_empty() => Some(()),
            _ => None,
        }
    })
    .await?;
    Ok(())
}

/// Whether `have` holds every field of `want` (objects compared field by field).
pub fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| contains(hv, wv))),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(a, b)| contains(a, b))
        }
        _ => have == want,
    }
}

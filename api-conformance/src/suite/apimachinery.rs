//! sig-api-machinery: watch, resourceVersion, CRDs, field validation, discovery,
//! namespaces, chunking, tables, server version.

use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PodTemplate};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::{Value, json};

use super::{Test, t};
use crate::ctx::{Ctx, Fail, R, eventually, obj};
use crate::{ensure, fail};

type Events =
    std::pin::Pin<Box<dyn Stream<Item = Result<WatchEvent<ConfigMap>, kube::Error>> + Send>>;

/// A watch of the test's configmaps matching `labels`, from `rv` ("0": any).
async fn watch_cms(c: &Ctx, labels: &str, rv: &str) -> Result<Events, Fail> {
    let api: Api<ConfigMap> = c.api();
    Ok(api
        .watch(&WatchParams::default().labels(labels).timeout(60), rv)
        .await?
        .boxed())
}

/// The next `n` events (type, name, data.mutation) of a watch; fails after 20 s.
async fn next_events(
    w: &mut Events,
    n: usize,
) -> Result<Vec<(String, String, String, String)>, Fail> {
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(20), async {
        while out.len() < n {
            let Some(ev) = w.next().await else { break };
            let (ty, cm) = match ev? {
                WatchEvent::Added(o) => ("ADDED", o),
                WatchEvent::Modified(o) => ("MODIFIED", o),
                WatchEvent::Deleted(o) => ("DELETED", o),
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => return Err(Fail(format!("watch error: {e:?}"))),
            };
            let mutation = cm
                .data
                .as_ref()
                .and_then(|d| d.get("mutation"))
                .cloned()
                .unwrap_or_default();
            out.push((
                ty.to_string(),
                cm.metadata.name.clone().unwrap_or_default(),
                mutation,
                cm.metadata.resource_version.clone().unwrap_or_default(),
            ));
        }
        Ok::<(), Fail>(())
    })
    .await;
    match r {
        Ok(Ok(())) if out.len() == n => Ok(out),
        Ok(Err(e)) => Err(e),
        _ => fail!("watch: wanted {n} events, got {out:?}"),
    }
}

fn types(ev: &[(String, String, String, String)]) -> Vec<String> {
    ev.iter()
        .map(|e| format!("{} {} {}", e.0, e.1, e.2))
        .collect()
}

fn cm(name: &str, labels: Value) -> Result<ConfigMap, Fail> {
    obj(json!({"metadata": {"name": name, "labels": labels}}))
}

async fn set_mutation(api: &Api<ConfigMap>, name: &str, n: u32) -> Result<ConfigMap, Fail> {
    Ok(api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"mutation": n.to_string()}})),
        )
        .await?)
}

async fn watch_multiple_watchers(c: Ctx) -> R {
    let api: Api<ConfigMap> = c.api();
    let mut wa = watch_cms(&c, "watch-this-configmap=multiple-watchers-A", "0").await?;
    let mut wb = watch_cms(&c, "watch-this-configmap=multiple-watchers-B", "0").await?;
    let mut wab = watch_cms(
        &c,
        "watch-this-configmap in (multiple-watchers-A,multiple-watchers-B)",
        "0",
    )
    .await?;
    api.create(
        &PostParams::default(),
        &cm(
            "cm-a",
            json!({"watch-this-configmap": "multiple-watchers-A"}),
        )?,
    )
    .await?;
    set_mutation(&api, "cm-a", 1).await?;
    set_mutation(&api, "cm-a", 2).await?;
    api.delete("cm-a", &DeleteParams::default()).await?;
    api.create(
        &PostParams::default(),
        &cm(
            "cm-b",
            json!({"watch-this-configmap": "multiple-watchers-B"}),
        )?,
    )
    .await?;
    api.delete("cm-b", &DeleteParams::default()).await?;
    let a = types(&next_events(&mut wa, 4).await?);
    ensure!(
        a == [
            "ADDED cm-a ",
            "MODIFIED cm-a 1",
            "MODIFIED cm-a 2",
            "DELETED cm-a 2"
        ],
        "watcher A saw {a:?}"
    );
    let b = types(&next_events(&mut wb, 2).await?);
    ensure!(b == ["ADDED cm-b ", "DELETED cm-b "], "watcher B saw {b:?}");
    let ab = types(&next_events(&mut wab, 6).await?);
    ensure!(
        ab.len() == 6 && ab[..4] == a[..] && ab[4..] == b[..],
        "watcher A or B saw {ab:?}"
    );
    Ok(())
}

async fn watch_from_resource_version(c: Ctx) -> R {
    let api: Api<ConfigMap> = c.api();
    api.create(
        &PostParams::default(),
        &cm(
            "cm-rv",
            json!({"watch-this-configmap": "from-resource-version"}),
        )?,
    )
    .await?;
    let first = set_mutation(&api, "cm-rv", 1).await?;
    set_mutation(&api, "cm-rv", 2).await?;
    api.delete("cm-rv", &DeleteParams::default()).await?;
    let rv = first.metadata.resource_version.unwrap_or_default();
    let mut w = watch_cms(&c, "watch-this-configmap=from-resource-version", &rv).await?;
    let ev = types(&next_events(&mut w, 2).await?);
    ensure!(
        ev == ["MODIFIED cm-rv 2", "DELETED cm-rv 2"],
        "a watch from the first update's resourceVersion saw {ev:?}"
    );
    Ok(())
}

async fn watch_closed_and_restarted(c: Ctx) -> R {
    let api: Api<ConfigMap> = c.api();
    let sel = "watch-this-configmap=watch-closed-and-restarted";
    let mut w = watch_cms(&c, sel, "0").await?;
    api.create(
        &PostParams::default(),
        &cm(
            "cm-restart",
            json!({"watch-this-configmap": "watch-closed-and-restarted"}),
        )?,
    )
    .await?;
    set_mutation(&api, "cm-restart", 1).await?;
    let seen = next_events(&mut w, 2).await?;
    drop(w);
    let last_rv = seen[1].3.clone();
    set_mutation(&api, "cm-restart", 2).await?;
    api.delete("cm-restart", &DeleteParams::default()).await?;
    let mut again = watch_cms(&c, sel, &last_rv).await?;
    let ev = types(&next_events(&mut again, 2).await?);
    ensure!(
        ev == ["MODIFIED cm-restart 2", "DELETED cm-restart 2"],
        "the restarted watch saw {ev:?}"
    );
    Ok(())
}

async fn watch_label_changed(c: Ctx) -> R {
    let api: Api<ConfigMap> = c.api();
    let mut w = watch_cms(&c, "watch-this-configmap=label-changed-and-restored", "0").await?;
    api.create(
        &PostParams::default(),
        &cm(
            "cm-label",
            json!({"watch-this-configmap": "label-changed-and-restored"}),
        )?,
    )
    .await?;
    set_mutation(&api, "cm-label", 1).await?;
    let relabel =
        |v: &str| Patch::Merge(json!({"metadata": {"labels": {"watch-this-configmap": v}}}));
    api.patch("cm-label", &PatchParams::default(), &relabel("wrong-value"))
        .await?;
    set_mutation(&api, "cm-label", 2).await?;
    api.patch(
        "cm-label",
        &PatchParams::default(),
        &relabel("label-changed-and-restored"),
    )
    .await?;
    set_mutation(&api, "cm-label", 3).await?;
    api.delete("cm-label", &DeleteParams::default()).await?;
    let ev = types(&next_events(&mut w, 6).await?);
    let want = [
        "ADDED cm-label ",
        "MODIFIED cm-label 1",
        "DELETED cm-label 1",
        "ADDED cm-label 2",
        "MODIFIED cm-label 3",
        "DELETED cm-label 3",
    ];
    ensure!(
        ev == want,
        "the label-selected watch saw {ev:?}, want {want:?}"
    );
    Ok(())
}

async fn watch_consistency(c: Ctx) -> R {
    let api: Api<ConfigMap> = c.api();
    let sel = "watch-this-configmap=consistency";
    let first = api
        .create(
            &PostParams::default(),
            &cm("cm-0", json!({"watch-this-configmap": "consistency"}))?,
        )
        .await?;
    let start = first.metadata.resource_version.unwrap_or_default();
    // Writes go on while watchers start at the resourceVersions they produce.
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            for i in 1..=30u32 {
                let name = format!("cm-{}", i % 5);
                let r = match api.get_opt(&name).await {
                    Ok(Some(_)) if i % 3 == 0 => api
                        .delete(&name, &DeleteParams::default())
                        .await
                        .map(|_| ()),
                    Ok(Some(_)) => set_mutation(&api, &name, i)
                        .await
                        .map(|_| ())
                        .map_err(|_| kube::Error::LinesCodecMaxLineLengthExceeded),
                    _ => api
                        .create(
                            &PostParams::default(),
                            &cm(&name, json!({"watch-this-configmap": "consistency"}))
                                .unwrap_or_default(),
                        )
                        .await
                        .map(|_| ()),
                };
                if r.is_err() {
                    return false;
                }
            }
            true
        })
    };
    let mut watchers = vec![watch_cms(&c, sel, &start).await?];
    let mut starts = vec![start.clone()];
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let l = api.list(&ListParams::default().labels(sel)).await?;
        let rv = l.metadata.resource_version.unwrap_or_default();
        watchers.push(watch_cms(&c, sel, &rv).await?);
        starts.push(rv);
    }
    ensure!(
        writer.await.unwrap_or(false),
        "the writer's requests failed"
    );
    // The first watcher saw every event; each later one a suffix of the same sequence.
    let mut all = Vec::new();
    while let Ok(Ok(ev)) =
        tokio::time::timeout(Duration::from_secs(3), next_events(&mut watchers[0], 1)).await
    {
        all.extend(ev);
    }
    ensure!(
        all.len() >= 30,
        "the first watcher saw {} events, want 30",
        all.len()
    );
    for (i, w) in watchers.iter_mut().enumerate().skip(1) {
        let from: u64 = starts[i].parse().unwrap_or(0);
        let want: Vec<_> = all
            .iter()
            .filter(|e| e.3.parse::<u64>().unwrap_or(0) > from)
            .cloned()
            .collect();
        let got = next_events(w, want.len()).await?;
        ensure!(
            got == want,
            "watcher {i} from {} saw another order: {:?} vs {:?}",
            starts[i],
            types(&got),
            types(&want)
        );
    }
    Ok(())
}

async fn server_version(c: Ctx) -> R {
    let (code, v) = c.raw("GET", "/version", None).await;
    ensure!(code == 200, "GET /version: {code}");
    for f in ["major", "minor"] {
        let s = v[f].as_str().unwrap_or_default();
        ensure!(
            !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()),
            "version {f} {s:?} is no integer"
        );
    }
    let out = c.k(&["version", "-o", "json"]).await?;
    ensure!(
        out.contains("serverVersion"),
        "kubectl version printed no server version: {out}"
    );
    Ok(())
}

async fn table_406(c: Ctx) -> R {
    let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}}});
    let req = http::Request::builder()
        .method("POST")
        .uri("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
        .header("content-type", "application/json")
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(kube::client::Body::from(body.to_string().into_bytes()))
        .map_err(|e| Fail(e.to_string()))?;
    let resp = c.client().send(req).await?;
    ensure!(
        resp.status().as_u16() == 406,
        "a Table of a SelfSubjectAccessReview: {}, want 406",
        resp.status()
    );
    Ok(())
}

async fn chunking(c: Ctx) -> R {
    let api: Api<PodTemplate> = c.api();
    for i in 0..40 {
        let pt: PodTemplate = obj(json!({"metadata": {"name": format!("template-{i:04}")},
            "template": {"spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}))?;
        api.create(&PostParams::default(), &pt).await?;
    }
    let mut token: Option<String> = None;
    let mut seen = 0;
    let mut first_rv = None;
    loop {
        let mut lp = ListParams::default().limit(7);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await?;
        ensure!(
            page.items.len() <= 7,
            "a page of {} items over the limit 7",
            page.items.len()
        );
        seen += page.items.len();
        let rv = page.metadata.resource_version.clone();
        match &first_rv {
            None => first_rv = rv,
            Some(f) => ensure!(
                rv.as_ref() == Some(f),
                "page resourceVersion {rv:?} differs from the first {f}"
            ),
        }
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(t) => {
                let left = page.metadata.remaining_item_count.unwrap_or(-1);
                ensure!(
                    left == (40 - seen) as i64,
                    "remainingItemCount {left}, want {}",
                    40 - seen
                );
                token = Some(t);
            }
            None => break,
        }
    }
    ensure!(seen == 40, "the pages held {seen} items, want 40");
    let all = api.list(&ListParams::default()).await?;
    ensure!(
        all.items.len() == 40 && all.metadata.continue_.as_deref().unwrap_or("").is_empty(),
        "an unlimited list gave {} items",
        all.items.len()
    );
    Ok(())
}

// ---- namespaces

async fn make_ns(c: &Ctx, base: &str) -> Result<(Api<Namespace>, String), Fail> {
    let api: Api<Namespace> = c.all();
    let name = c.name(base);
    api.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": name, "labels": {"e2e": "conformance"}}}))?,
    )
    .await?;
    Ok((api, name))
}

async fn ns_patch(c: Ctx) -> R {
    let (api, name) = make_ns(&c, "nspatch").await?;
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"testLabel": "testValue"}}})),
    )
    .await?;
    let got = api.get(&name).await?;
    let v = got
        .metadata
        .labels
        .unwrap_or_default()
        .get("testLabel")
        .cloned();
    api.delete(&name, &DeleteParams::default()).await?;
    ensure!(
        v.as_deref() == Some("testValue"),
        "the patched namespace has testLabel {v:?}"
    );
    Ok(())
}

async fn ns_update(c: Ctx) -> R {
    let (api, name) = make_ns(&c, "nsupdate").await?;
    let mut ns = api.get(&name).await?;
    ns.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("e2e".into(), "updated".into());
    let after = api.replace(&name, &PostParams::default(), &ns).await?;
    api.delete(&name, &DeleteParams::default()).await?;
    let v = after
        .metadata
        .labels
        .unwrap_or_default()
        .get("e2e")
        .cloned();
    ensure!(
        v.as_deref() == Some("updated"),
        "the updated namespace has e2e={v:?}"
    );
    Ok(())
}

async fn ns_status(c: Ctx) -> R {
    let (api, name) = make_ns(&c, "nsstatus").await?;
    let got = api.get_status(&name).await?;
    let phase = got.status.and_then(|s| s.phase).unwrap_or_default();
    ensure!(phase == "Active", "a new namespace's phase is {phase:?}");
    let cond = json!({"type": "StatusPatch", "status": "True", "reason": "E2E", "message": "Patched by an e2e test"});
    let patched = api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [cond]}})),
        )
        .await?;
    let conds = serde_json::to_value(
        patched
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    ensure!(
        conds.as_array().is_some_and(|a| a
            .iter()
            .any(|c| c["type"] == "StatusPatch" && c["reason"] == "E2E")),
        "the patched status lacks its condition: {conds}"
    );
    let mut ns = api.get_status(&name).await?;
    if let Some(s) = ns.status.as_mut() {
        s.conditions.get_or_insert_with(Vec::new).push(obj(json!({"type": "StatusUpdate", "status": "True", "reason": "E2E", "message": "Updated by an e2e test"}))?);
    }
    let updated = api
        .replace_status(&name, &PostParams::default(), &ns)
        .await?;
    let conds = serde_json::to_value(
        updated
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    api.delete(&name, &DeleteParams::default()).await?;
    ensure!(
        conds
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["type"] == "StatusUpdate")),
        "the updated status lacks its condition: {conds}"
    );
    Ok(())
}

async fn ns_finalizer(c: Ctx) -> R {
    let (api, name) = make_ns(&c, "nsfinalizer").await?;
    let mut ns = api.get(&name).await?;
    ns.spec
        .get_or_insert_with(Default::default)
        .finalizers
        .get_or_insert_with(Vec::new)
        .push("e2e.example.com/fakeFinalizer".into());
    let uri = format!("/api/v1/namespaces/{name}/finalize");
    let (code, after) = c.raw("PUT", &uri, Some(&serde_json::to_value(&ns)?)).await;
    ensure!(code == 200, "PUT {uri}: {code} {after}");
    let has = |v: &Value| {
        v["spec"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "e2e.example.com/fakeFinalizer"))
    };
    ensure!(has(&after), "the finalizer was not added: {after}");
    let mut ns = api.get(&name).await?;
    if let Some(f) = ns.spec.as_mut().and_then(|s| s.finalizers.as_mut()) {
        f.retain(|x| x != "e2e.example.com/fakeFinalizer");
    }
    let (code, after) = c.raw("PUT", &uri, Some(&serde_json::to_value(&ns)?)).await;
    api.delete(&name, &DeleteParams::default()).await?;
    ensure!(
        code == 200 && !has(&after),
        "removing the finalizer: {code} {after}"
    );
    Ok(())
}

async fn ns_deletion_removes(c: Ctx, kind: &str) -> R {
    let (api, name) = make_ns(&c, &format!("nsdelete-{kind}")).await?;
    let manifest = match kind {
        "pod" => json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "test-pod"},
            "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}),
        _ => json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "test-service"},
            "spec": {"ports": [{"port": 80, "targetPort": 80}], "selector": {"foo": "bar"}}}),
    };
    c.k_stdin(
        &["-n", &name, "create", "-f", "-"],
        Some(&manifest.to_string()),
    )
    .await?;
    api.delete(&name, &DeleteParams::default()).await?;
    eventually(90, "the namespace to be gone", || async {
        matches!(api.get_opt(&name).await, Ok(None)).then_some(())
    })
    .await?;
    let (api2, name2) = make_ns(&c, &format!("nsrecreate-{kind}")).await?;
    let plural = if kind == "pod" { "pods" } else { "services" };
    let out = c.k(&["-n", &name, "get", plural, "-o", "name"]).await?;
    api2.delete(&name2, &DeleteParams::default()).await?;
    ensure!(
        out.trim().is_empty(),
        "after the namespace's deletion, {plural} are left: {out}"
    );
    Ok(())
}

async fn ns_removes_pods(c: Ctx) -> R {
    ns_deletion_removes(c, "pod").await
}

async fn ns_removes_services(c: Ctx) -> R {
    ns_deletion_removes(c, "service").await
}

// ---- discovery

async fn discovery_group_versions(c: Ctx) -> R {
    let (code, groups) = c.raw("GET", "/apis", None).await;
    ensure!(code == 200, "GET /apis: {code}");
    for g in groups["groups"].as_array().cloned().unwrap_or_default() {
        for v in g["versions"].as_array().cloned().unwrap_or_default() {
            let gv = v["groupVersion"].as_str().unwrap_or_default();
            let (code, list) = c.raw("GET", &format!("/apis/{gv}"), None).await;
            if code == 404 && !still_served(&c, gv).await {
                // A CRD of a test running beside this one went meanwhile.
                continue;
            }
            ensure!(code == 200, "GET /apis/{gv}: {code}");
            ensure!(
                list["groupVersion"] == gv,
                "/apis/{gv} says groupVersion {}",
                list["groupVersion"]
            );
            let any = list["resources"].as_array().is_some_and(|r| {
                r.iter().any(|r| {
                    r["name"].as_str().is_some_and(|n| !n.is_empty()) && r["kind"].is_string()
                })
            });
            ensure!(any, "/apis/{gv} lists no valid resource");
        }
    }
    let (code, core) = c.raw("GET", "/api/v1", None).await;
    ensure!(
        code == 200 && core["groupVersion"] == "v1",
        "GET /api/v1: {code}"
    );
    Ok(())
}

/// Whether /apis still lists the group version `gv`.
async fn still_served(c: &Ctx, gv: &str) -> bool {
    let (_, groups) = c.raw("GET", "/apis", None).await;
    groups["groups"].as_array().is_some_and(|g| {
        g.iter().any(|g| {
            g["versions"]
                .as_array()
                .is_some_and(|v| v.iter().any(|v| v["groupVersion"] == gv))
        })
    })
}

async fn discovery_preferred(c: Ctx) -> R {
    let (code, groups) = c.raw("GET", "/apis", None).await;
    ensure!(code == 200, "GET /apis: {code}");
    for g in groups["groups"].as_array().cloned().unwrap_or_default() {
        let name = g["name"].as_str().unwrap_or_default();
        if name.ends_with("example.com") {
            continue;
        }
        let pref = g["preferredVersion"]["groupVersion"]
            .as_str()
            .unwrap_or_default();
        let listed = g["versions"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v["groupVersion"] == pref));
        ensure!(
            listed,
            "group {name}: preferredVersion {pref:?} is none of its versions"
        );
        let (code, one) = c.raw("GET", &format!("/apis/{name}"), None).await;
        if code == 404 && !still_served(&c, pref).await {
            continue;
        }
        ensure!(
            code == 200 && one["preferredVersion"]["groupVersion"] == pref,
            "GET /apis/{name}: {code}, preferred {}",
            one["preferredVersion"]
        );
    }
    Ok(())
}

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

async fn aggregated(c: &Ctx, path: &str, accept: &str) -> Result<Value, Fail> {
    let req = http::Request::builder()
        .uri(path)
        .header("accept", accept)
        .body(kube::client::Body::empty())
        .map_err(|e| Fail(e.to_string()))?;
    let resp = c.client().send(req).await?;
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .map_err(|e| Fail(e.to_string()))?
        .to_bytes();
    ensure!(status == 200, "GET {path} ({accept}): {status}");
    ensure!(
        ct.contains("as=APIGroupDiscoveryList"),
        "GET {path} ({accept}): content type {ct}"
    );
    Ok(serde_json::from_slice(&bytes)?)
}

/// Whether an aggregated document lists `group/version` with the resource `plural`.
fn lists(doc: &Value, group: &str, version: &str, plural: &str) -> bool {
    doc["items"].as_array().is_some_and(|items| {
        items.iter().any(|g| {
            g["metadata"]["name"].as_str().unwrap_or_default() == group
                && g["versions"].as_array().is_some_and(|vs| {
                    vs.iter().any(|v| {
                        v["version"] == version
                            && v["resources"]
                                .as_array()
                                .is_some_and(|rs| rs.iter().any(|r| r["resource"] == plural))
                    })
                })
        })
    })
}

async fn aggregated_builtin(c: Ctx, accepts: &[&str]) -> R {
    for accept in accepts {
        let core = aggregated(&c, "/api", accept).await?;
        ensure!(
            lists(&core, "", "v1", "pods") && lists(&core, "", "v1", "configmaps"),
            "/api ({accept}) lacks pods or configmaps"
        );
        let apis = aggregated(&c, "/apis", accept).await?;
        for (g, v, r) in [
            ("apps", "v1", "deployments"),
            ("batch", "v1", "jobs"),
            ("rbac.authorization.k8s.io", "v1", "roles"),
            ("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
            ("coordination.k8s.io", "v1", "leases"),
        ] {
            ensure!(lists(&apis, g, v, r), "/apis ({accept}) lacks {g}/{v} {r}");
        }
    }
    Ok(())
}

async fn aggregated_interface(c: Ctx) -> R {
    aggregated_builtin(c, &[AGGREGATED]).await
}

const ACCEPTS: [&str; 3] = [
    AGGREGATED,
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;charset=utf-8,application/json;q=0.9",
];

async fn aggregated_accept(c: Ctx) -> R {
    aggregated_builtin(c, &ACCEPTS).await
}

async fn aggregated_crd(c: Ctx, accepts: &[&str]) -> R {
    let crd = Crd::simple(&c, "agg");
    crd.create(&c).await?;
    let r = async {
        for accept in accepts {
            let found = eventually(20, "the CRD in aggregated discovery", || async {
                let doc = aggregated(&c, "/apis", accept).await.ok()?;
                lists(&doc, &crd.group, "v1", &crd.plural).then_some(())
            })
            .await;
            found?;
        }
        Ok(())
    }
    .await;
    crd.delete(&c).await?;
    r
}

async fn aggregated_interface_crd(c: Ctx) -> R {
    aggregated_crd(c, &[AGGREGATED]).await
}

async fn aggregated_accept_crd(c: Ctx) -> R {
    aggregated_crd(c, &ACCEPTS).await
}

// ---- CustomResourceDefinitions

/// A CRD of this test: group `<base>-<tag>.example.com`, kind `E2eTest<Base>`.
#[derive(Clone)]
pub struct Crd {
    /// API group.
    pub group: String,
    /// Plural resource name.
    pub plural: String,
    /// Kind.
    pub kind: String,
    /// `Namespaced` or `Cluster`.
    pub scope: &'static str,
    /// The versions (served, storage, schema …), as in the CRD's spec.
    pub versions: Value,
}

impl Crd {
    /// A CRD with one version `v1` keeping unknown fields.
    pub fn simple(c: &Ctx, base: &str) -> Self {
        Self::with_schema(
            c,
            base,
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        )
    }

    /// A CRD with one version `v1`, the status subresource and `schema`.
    pub fn with_schema(c: &Ctx, base: &str, schema: Value) -> Self {
        let b = base.to_lowercase();
        Crd {
            group: format!("{b}-{}.example.com", c.tag),
            plural: format!("e2e{b}s"),
            kind: format!("E2e{}", b[..1].to_uppercase() + &b[1..]),
            scope: "Namespaced",
            versions: json!([{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": schema}, "subresources": {"status": {}}}]),
        }
    }

    /// The CRD's name.
    pub fn name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }

    /// The CRD object.
    pub fn manifest(&self) -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": self.name(), "labels": {"e2e-crd": "true"}},
            "spec": {"group": self.group, "scope": self.scope, "versions": self.versions,
                "names": {"plural": self.plural, "singular": self.kind.to_lowercase(), "kind": self.kind, "listKind": format!("{}List", self.kind)}}})
    }

    /// Creates it and waits until it is Established and its resource answers.
    pub async fn create(&self, c: &Ctx) -> R {
        let (code, body) = c
            .raw(
                "POST",
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                Some(&self.manifest()),
            )
            .await;
        ensure!(
            code == 201,
            "creating the CRD {}: {code} {body}",
            self.name()
        );
        self.wait_served(c).await
    }

    /// Waits until it is Established and its first version's list answers.
    pub async fn wait_served(&self, c: &Ctx) -> R {
        let path = format!(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{}",
            self.name()
        );
        eventually(30, "the CRD to be Established", || async {
            let (_, v) = c.raw("GET", &path, None).await;
            v["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
                .then_some(())
        })
        .await?;
        let version = self.versions[0]["name"]
            .as_str()
            .unwrap_or("v1")
            .to_string();
        let list = self.path(c, &version, None);
        eventually(30, "the custom resource to be served", || async {
            (c.raw("GET", &list, None).await.0 == 200).then_some(())
        })
        .await
    }

    /// The path of the custom objects in the test's namespace (or of one of them).
    pub fn path(&self, c: &Ctx, version: &str, name: Option<&str>) -> String {
        let base = if self.scope == "Namespaced" {
            format!(
                "/apis/{}/{version}/namespaces/{}/{}",
                self.group, c.ns, self.plural
            )
        } else {
            format!("/apis/{}/{version}/{}", self.group, self.plural)
        };
        match name {
            Some(n) => format!("{base}/{n}"),
            None => base,
        }
    }

    /// Deletes the CRD.
    pub async fn delete(&self, c: &Ctx) -> R {
        let path = format!(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{}",
            self.name()
        );
        let (code, body) = c.raw("DELETE", &path, None).await;
        ensure!(
            code == 200 || code == 202,
            "deleting the CRD: {code} {body}"
        );
        Ok(())
    }
}

/// Runs `f` with a created CRD and deletes the CRD after, whatever `f` gave.
macro_rules! with_crd {
    ($c:expr, $crd:expr, $body:expr) => {{
        $crd.create(&$c).await?;
        let r: R = $body.await;
        let d = $crd.delete(&$c).await;
        r.and(d)
    }};
}

async fn crd_create(c: Ctx) -> R {
    let crd = Crd::simple(&c, "create");
    with_crd!(c, crd, async { Ok(()) })
}

async fn crd_list(c: Ctx) -> R {
    let crds: Vec<Crd> = (0..3)
        .map(|i| Crd::simple(&c, &format!("list{i}")))
        .collect();
    for crd in &crds {
        crd.create(&c).await?;
    }
    let sel = format!("e2e-list={}", c.tag);
    for crd in &crds {
        let path = format!(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{}",
            crd.name()
        );
        let (code, _) = c.raw("PATCH", &path, None).await;
        let _ = code;
        let (code, b) = c
            .raw_typed(
                "PATCH",
                &path,
                "application/merge-patch+json",
                &json!({"metadata": {"labels": {"e2e-list": c.tag}}}).to_string(),
            )
            .await;
        ensure!(code == 200, "labelling the CRD: {code} {b}");
    }
    let (code, list) = c
        .raw(
            "GET",
            &format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions?labelSelector={sel}"),
            None,
        )
        .await;
    let n = list["items"].as_array().map(Vec::len).unwrap_or(0);
    ensure!(
        code == 200 && n == 3,
        "listing the CRDs by label: {code}, {n} items"
    );
    let (code, b) = c
        .raw(
            "DELETE",
            &format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions?labelSelector={sel}"),
            None,
        )
        .await;
    ensure!(code == 200, "delete-collection of CRDs: {code} {b}");
    Ok(())
}

async fn crd_status(c: Ctx) -> R {
    let crd = Crd::simple(&c, "status");
    with_crd!(c, crd, async {
        let path = format!(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{}/status",
            crd.name()
        );
        let (code, mut got) = c.raw("GET", &path, None).await;
        ensure!(code == 200, "GET the CRD's status: {code}");
        let cond = json!({"type": "StatusUpdate", "status": "True", "reason": "E2E", "message": "Set from e2e test", "lastTransitionTime": "2024-01-01T00:00:00Z"});
        if let Some(a) = got["status"]["conditions"].as_array_mut() {
            a.push(cond);
        }
        let (code, after) = c.raw("PUT", &path, Some(&got)).await;
        ensure!(code == 200, "PUT the CRD's status: {code} {after}");
        ensure!(
            after["status"]["conditions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|c| c["type"] == "StatusUpdate")),
            "the updated status lacks its condition"
        );
        let patch = json!({"status": {"conditions": [{"type": "StatusPatched", "status": "True", "reason": "E2E", "message": "Patched", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
        let (code, after) = c
            .raw_typed(
                "PATCH",
                &path,
                "application/merge-patch+json",
                &patch.to_string(),
            )
            .await;
        ensure!(code == 200, "PATCH the CRD's status: {code} {after}");
        ensure!(
            after["status"]["conditions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|c| c["type"] == "StatusPatched")),
            "the patched status lacks its condition"
        );
        Ok(())
    })
}

async fn crd_defaulting(c: Ctx) -> R {
    let schema = |b_default: bool| {
        let mut props = json!({"a": {"type": "string", "default": "A"}});
        if b_default {
            props["b"] = json!({"type": "string", "default": "B"});
        }
        json!({"type": "object", "properties": {"spec": {"type": "object", "default": {}, "properties": props}}})
    };
    let crd = Crd::with_schema(&c, "defaulting", schema(false));
    with_crd!(c, crd, async {
        let obj = json!({"apiVersion": format!("{}/v1", crd.group), "kind": crd.kind, "metadata": {"name": "cr-1"}});
        let (code, created) = c.raw("POST", &crd.path(&c, "v1", None), Some(&obj)).await;
        ensure!(code == 201, "creating a custom object: {code} {created}");
        ensure!(
            created["spec"]["a"] == "A",
            "the created object lacks its default spec.a: {created}"
        );
        // A default added later shows when the stored object is read.
        let path = format!(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{}",
            crd.name()
        );
        let patch = json!([{"op": "replace", "path": "/spec/versions/0/schema/openAPIV3Schema", "value": schema(true)}]);
        let (code, b) = c
            .raw_typed(
                "PATCH",
                &path,
                "application/json-patch+json",
                &patch.to_string(),
            )
            .await;
        ensure!(code == 200, "adding a default to the CRD: {code} {b}");
        let one = crd.path(&c, "v1", Some("cr-1"));
        eventually(30, "the new default on a stored object", || async {
            let (_, v) = c.raw("GET", &one, None).await;
            (v["spec"]["b"] == "B").then_some(())
        })
        .await
    })
}

async fn crd_discovery(c: Ctx) -> R {
    let crd = Crd::simple(&c, "discovery");
    with_crd!(c, crd, async {
        let (code, apis) = c.raw("GET", "/apis", None).await;
        let group = apis["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["name"] == crd.group.as_str()).cloned());
        ensure!(
            code == 200 && group.is_some(),
            "/apis does not list {}",
            crd.group
        );
        let group = group.unwrap_or_default();
        ensure!(
            group["preferredVersion"]["version"] == "v1",
            "the group's preferred version is {}",
            group["preferredVersion"]
        );
        let (code, g) = c.raw("GET", &format!("/apis/{}", crd.group), None).await;
        ensure!(
            code == 200 && g["versions"][0]["version"] == "v1",
            "/apis/{}: {code} {g}",
            crd.group
        );
        discover_resource(&c, &format!("{}/v1", crd.group), &crd.plural, true).await
    })
}

async fn discover_resource(c: &Ctx, gv: &str, plural: &str, status: bool) -> R {
    super::lifecycle::discovered(c, gv, plural, status).await
}

async fn crd_watch(c: Ctx) -> R {
    let crd = Crd::simple(&c, "watch");
    with_crd!(c, crd, async {
        let ar = kube::api::ApiResource {
            group: crd.group.clone(),
            version: "v1".into(),
            api_version: format!("{}/v1", crd.group),
            kind: crd.kind.clone(),
            plural: crd.plural.clone(),
        };
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(c.client(), &c.ns, &ar);
        let mut w = api
            .watch(&WatchParams::default().timeout(60), "0")
            .await?
            .boxed();
        let obj = |name: &str| -> Result<kube::api::DynamicObject, Fail> {
            Ok(serde_json::from_value(
                json!({"apiVersion": format!("{}/v1", crd.group), "kind": crd.kind, "metadata": {"name": name}, "content": {"key": "value"}}),
            )?)
        };
        api.create(&PostParams::default(), &obj("name1")?).await?;
        api.create(&PostParams::default(), &obj("name2")?).await?;
        api.patch(
            "name1",
            &PatchParams::default(),
            &Patch::Merge(json!({"dummy": "test"})),
        )
        .await?;
        api.patch(
            "name2",
            &PatchParams::default(),
            &Patch::Merge(json!({"dummy": "test"})),
        )
        .await?;
        api.delete("name1", &DeleteParams::default()).await?;
        api.delete("name2", &DeleteParams::default()).await?;
        let mut seen = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), async {
            while seen.len() < 6 {
                match w.next().await {
                    Some(Ok(WatchEvent::Added(o))) => {
                        seen.push(format!("ADDED {}", o.metadata.name.unwrap_or_default()))
                    }
                    Some(Ok(WatchEvent::Modified(o))) => {
                        seen.push(format!("MODIFIED {}", o.metadata.name.unwrap_or_default()))
                    }
                    Some(Ok(WatchEvent::Deleted(o))) => {
                        seen.push(format!("DELETED {}", o.metadata.name.unwrap_or_default()))
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
        })
        .await;
        let want = [
            "ADDED name1",
            "ADDED name2",
            "MODIFIED name1",
            "MODIFIED name2",
            "DELETED name1",
            "DELETED name2",
        ];
        ensure!(seen == want, "the watch of custom objects saw {seen:?}");
        Ok(())
    })
}

// ---- field validation

async fn post_strict(c: &Ctx, path: &str, body: &str, content_type: &str) -> (u16, Value) {
    let sep = if path.contains('?') { '&' } else { '?' };
    c.raw_typed(
        "POST",
        &format!("{path}{sep}fieldValidation=Strict"),
        content_type,
        body,
    )
    .await
}

async fn fv_typed(c: Ctx) -> R {
    let path = format!(
        "/apis/apps/v1/namespaces/{}/deployments?fieldManager=field_validation_mgr",
        c.ns
    );
    let body = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"my-dep","labels":{"app":"nginx"}},
        "spec":{"unknownField":"foo","replicas":2,"replicas":3,"selector":{"matchLabels":{"app":"nginx"}},
        "template":{"metadata":{"labels":{"app":"nginx"}},"spec":{"containers":[{"name":"nginx","image":"nginx:latest"}]}}}}"#;
    let (code, v) = post_strict(&c, &path, body, "application/json").await;
    let msg = v["message"].as_str().unwrap_or_default();
    let want = r#"strict decoding error: unknown field "spec.unknownField", duplicate field "spec.replicas""#;
    ensure!(
        code == 400 && msg.contains(want),
        "a strict create with unknown and duplicate fields: {code} {msg}; want it to say {want}"
    );
    Ok(())
}

async fn fv_typed_metadata(c: Ctx) -> R {
    let path = format!(
        "/apis/apps/v1/namespaces/{}/deployments?fieldManager=field_validation_mgr",
        c.ns
    );
    let body = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"my-dep","unknownMeta":"foo","labels":{"app":"nginx"}},
        "spec":{"selector":{"matchLabels":{"app":"nginx"}},
        "template":{"metadata":{"labels":{"app":"nginx"}},"spec":{"containers":[{"name":"nginx","image":"nginx:latest"}]}}}}"#;
    let (code, v) = post_strict(&c, &path, body, "application/json").await;
    let msg = v["message"].as_str().unwrap_or_default();
    let want = r#"strict decoding error: unknown field "metadata.unknownMeta""#;
    ensure!(
        code == 400 && msg.contains(want),
        "unknown metadata field: {code} {msg}; want it to say {want}"
    );
    Ok(())
}

/// A cluster-scoped CRD (as upstream's fixture) with `spec` of `schema` (None: no schema).
fn fv_crd(c: &Ctx, base: &str, spec: Option<Value>) -> Crd {
    let schema = match spec {
        Some(spec) => json!({"type": "object", "properties": {"spec": spec}}),
        None => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    };
    let mut crd = Crd::with_schema(c, base, schema);
    crd.scope = "Cluster";
    crd
}

/// The `spec` schema of upstream's field validation CRDs (`preserve`: keeps unknown fields).
fn fv_spec_schema(preserve: bool, template: bool) -> Value {
    let mut props = json!({
        "foo": {"type": "string"},
        "cronSpec": {"type": "string", "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"},
        "ports": {"type": "array", "x-kubernetes-list-map-keys": ["containerPort", "protocol"], "x-kubernetes-list-type": "map",
            "items": {"type": "object", "required": ["containerPort", "protocol"], "properties": {
                "containerPort": {"type": "integer", "format": "int32"}, "hostIP": {"type": "string"},
                "hostPort": {"type": "integer", "format": "int32"}, "name": {"type": "string"}, "protocol": {"type": "string"}}}}});
    if template {
        props["template"] = json!({"type": "object", "x-kubernetes-embedded-resource": true, "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string"}}}, "spec": {"type": "object"}}});
    }
    let mut spec = json!({"type": "object", "properties": props});
    if preserve {
        spec["x-kubernetes-preserve-unknown-fields"] = json!(true);
    }
    spec
}

/// Server-side apply of the YAML `body` with strict field validation: code and answer.
async fn apply_cr(c: &Ctx, crd: &Crd, name: &str, body: &str) -> (u16, Value) {
    let path = format!(
        "{}?fieldManager=field_validation_mgr&fieldValidation=Strict",
        crd.path(c, "v1", Some(name))
    );
    c.raw_typed("PATCH", &path, "application/apply-patch+yaml", body)
        .await
}

/// Upstream's custom object as YAML: `extra_meta` lines go into metadata, `root` at the
/// top level, `spec` lines into spec (each indented by the caller).
fn fv_yaml(crd: &Crd, extra_meta: &str, root: &str, spec: &str) -> String {
    format!(
        "\napiVersion: {}/v1\nkind: {}\nmetadata:\n  name: mytest\n{extra_meta}  finalizers:\n  - test-finalizer\n{root}spec:\n{spec}  cronSpec: \"* * * * */5\"\n  ports:\n  - name: x\n    containerPort: 80\n    protocol: TCP",
        crd.group, crd.kind
    )
}

async fn fv_no_schema(c: Ctx) -> R {
    let crd = fv_crd(&c, "noschema", None);
    with_crd!(c, crd, async {
        let (code, v) = apply_cr(
            &c,
            &crd,
            "mytest",
            &fv_yaml(&crd, "", "", "  unknown: uk1\n"),
        )
        .await;
        ensure!(
            code == 201 || code == 200,
            "apply with unknown fields (no schema): {code} {v}"
        );
        Ok(())
    })
}

async fn fv_valid_cr(c: Ctx) -> R {
    let crd = fv_crd(&c, "valid", Some(fv_spec_schema(false, false)));
    with_crd!(c, crd, async {
        let (code, v) = apply_cr(&c, &crd, "mytest", &fv_yaml(&crd, "", "", "  foo: foo1\n")).await;
        ensure!(code == 201 || code == 200, "a valid apply: {code} {v}");
        Ok(())
    })
}

async fn fv_unknown_cr(c: Ctx) -> R {
    let crd = fv_crd(&c, "unknown", Some(fv_spec_schema(false, false)));
    with_crd!(c, crd, async {
        let (code, v) = apply_cr(
            &c,
            &crd,
            "mytest",
            &fv_yaml(&crd, "", "unknownField: unknown\n", "  foo: foo1\n"),
        )
        .await;
        let msg = v["message"].as_str().unwrap_or_default();
        ensure!(
            msg.contains(".unknownField: field not declared in schema"),
            "an apply with an unknown root field: {code} {v}"
        );
        Ok(())
    })
}

async fn fv_cr_duplicates(c: Ctx) -> R {
    let crd = fv_crd(&c, "dup", Some(fv_spec_schema(true, false)));
    with_crd!(c, crd, async {
        let (code, v) = apply_cr(
            &c,
            &crd,
            "mytest",
            &fv_yaml(&crd, "", "", "  unknown: uk1\n  foo: foo1\n  foo: foo2\n"),
        )
        .await;
        let msg = v["message"].as_str().unwrap_or_default();
        ensure!(
            msg.contains(r#"line 11: key "foo" already set in map"#),
            "an apply with a duplicate field: {code} {msg}"
        );
        Ok(())
    })
}

async fn fv_cr_unknown_metadata(c: Ctx) -> R {
    let crd = fv_crd(&c, "meta", Some(fv_spec_schema(true, true)));
    with_crd!(c, crd, async {
        let template = format!(
            "  template:\n    apiversion: foo/v1\n    kind: Sub\n    metadata:\n        unknownSubMeta: unknown\n        name: subobject\n        namespace: {}\n  foo: foo1\n",
            c.ns
        );
        let (code, v) = apply_cr(
            &c,
            &crd,
            "mytest",
            &fv_yaml(&crd, "  unknownMeta: unknown\n", "", &template),
        )
        .await;
        let msg = v["message"].as_str().unwrap_or_default();
        ensure!(
            msg.contains(".spec.template.metadata.unknownSubMeta: field not declared in schema")
                || msg.contains(".metadata.unknownMeta: field not declared in schema"),
            "unknown metadata in the root and an embedded object: {code} {msg}"
        );
        Ok(())
    })
}

// ---- garbage collector

async fn gc_dependency_cycle(c: Ctx) -> R {
    let api: Api<k8s_openapi::api::core::v1::Pod> = c.api();
    let mut uids = Vec::new();
    for i in 1..=3 {
        let p = obj(json!({"metadata": {"name": format!("pod{i}")},
            "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}))?;
        let created = api.create(&PostParams::default(), &p).await?;
        uids.push(created.metadata.uid.unwrap_or_default());
    }
    // pod1 is owned by pod3, pod2 by pod1, pod3 by pod2.
    for (i, owner) in [(1, 3), (2, 1), (3, 2)] {
        let owner_ref = json!({"apiVersion": "v1", "kind": "Pod", "name": format!("pod{owner}"), "uid": uids[owner - 1], "blockOwnerDeletion": true});
        api.patch(
            &format!("pod{i}"),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"ownerReferences": [owner_ref]}})),
        )
        .await?;
    }
    api.delete("pod1", &DeleteParams::default()).await?;
    eventually(
        60,
        "the garbage collector to delete every pod of the cycle",
        || async {
            api.list(&ListParams::default())
                .await
                .ok()
                .filter(|l| {
                    l.items
                        .iter()
                        .all(|p| p.metadata.deletion_timestamp.is_some())
                })
                .map(|_| ())
        },
    )
    .await
}

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    vec![
        t!(
            "watch-configmaps-with-multiple-watchers",
            "[sig-api-machinery] Watchers should observe add, update, and delete watch notifications on configmaps [Conformance]",
            watch_multiple_watchers
        ),
        t!(
            "watch-configmaps-from-resource-version",
            "[sig-api-machinery] Watchers should be able to start watching from a specific resource version [Conformance]",
            watch_from_resource_version
        ),
        t!(
            "watch-configmaps-closed-and-restarted",
            "[sig-api-machinery] Watchers should be able to restart watching from the last resource version observed by the previous watch [Conformance]",
            watch_closed_and_restarted
        ),
        t!(
            "watch-configmaps-label-changed",
            "[sig-api-machinery] Watchers should observe an object deletion if it stops meeting the requirements of the selector [Conformance]",
            watch_label_changed
        ),
        t!(
            "watch-consistency",
            "[sig-api-machinery] Watchers should receive events on concurrent watches in same order [Conformance]",
            watch_consistency
        ),
        t!(
            "Confirm a server version",
            "[sig-api-machinery] server version should find the server version [Conformance]",
            server_version
        ),
        t!(
            "API metadata HTTP return",
            "[sig-api-machinery] Servers with support for Table transformation should return a 406 for a backend which does not implement metadata [Conformance]",
            table_406
        ),
        t!(
            "API Chunking, server should return chunks of results for list calls",
            "[sig-api-machinery] Servers with support for API chunking should return chunks of results for list calls [Conformance]",
            chunking
        ),
        t!(
            "Namespace patching",
            "[sig-api-machinery] Namespaces should patch a Namespace [Conformance] [Serial]",
            ns_patch
        ),
        t!(
            "Namespace, apply update to a namespace",
            "[sig-api-machinery] Namespaces should apply an update to a Namespace [Conformance] [Serial]",
            ns_update
        ),
        t!(
            "Namespace, apply changes to a namespace status",
            "[sig-api-machinery] Namespaces should apply changes to a namespace status [Conformance] [Serial]",
            ns_status
        ),
        t!(
            "Namespace, apply finalizer to a namespace",
            "[sig-api-machinery] Namespaces should apply a finalizer to a Namespace [Conformance] [Serial]",
            ns_finalizer
        ),
        t!(
            "namespace-deletion-removes-pods",
            "[sig-api-machinery] Namespaces should ensure that all pods are removed when a namespace is deleted [Conformance] [Serial]",
            ns_removes_pods
        ),
        t!(
            "namespace-deletion-removes-services",
            "[sig-api-machinery] Namespaces should ensure that all services are removed when a namespace is deleted [Conformance] [Serial]",
            ns_removes_services
        ),
        t!(
            "Discovery, confirm the groupVerion and a resourcefrom each apiGroup",
            "[sig-api-machinery] Discovery should locate the groupVersion and a resource within each APIGroup [Conformance]",
            discovery_group_versions
        ),
        t!(
            "Discovery, confirm the PreferredVersion for each api group",
            "[sig-api-machinery] Discovery should validate PreferredVersion for each APIGroup [Conformance]",
            discovery_preferred
        ),
        t!(
            "Aggregated Discovery Interface",
            "[sig-api-machinery] AggregatedDiscovery should support aggregated discovery interface [Conformance]",
            aggregated_interface
        ),
        t!(
            "Aggregated Discovery Interface CRDs",
            "[sig-api-machinery] AggregatedDiscovery should support aggregated discovery interface for CRDs [Conformance]",
            aggregated_interface_crd
        ),
        t!(
            "Aggregated Discovery Endpoint Accept Headers",
            "[sig-api-machinery] AggregatedDiscovery should support raw aggregated discovery endpoint Accept headers [Conformance]",
            aggregated_accept
        ),
        t!(
            "Aggregated Discovery Endpoint Accept Headers CRDs",
            "[sig-api-machinery] AggregatedDiscovery should support raw aggregated discovery request for CRDs [Conformance]",
            aggregated_accept_crd
        ),
        t!(
            "Custom Resource Definition, create",
            "[sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] Simple CustomResourceDefinition creating/deleting custom resource definition objects works [Conformance]",
            crd_create
        ),
        t!(
            "Custom Resource Definition, list",
            "[sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] Simple CustomResourceDefinition listing custom resource definition objects works [Conformance]",
            crd_list
        ),
        t!(
            "Custom Resource Definition, status sub-resource",
            "[sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] Simple CustomResourceDefinition getting/updating/patching custom resource definition status sub-resource works [Conformance]",
            crd_status
        ),
        t!(
            "Custom Resource Definition, defaulting",
            "[sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] custom resource defaulting for requests and from storage works [Conformance]",
            crd_defaulting
        ),
        t!(
            "Custom Resource Definition, discovery",
            "[sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] should include custom resource definition resources in discovery documents [Conformance]",
            crd_discovery
        ),
        t!(
            "Custom Resource Definition, watch",
            "[sig-api-machinery] CustomResourceDefinition Watch [Privileged:ClusterAdmin] CustomResourceDefinition Watch watch on custom resource definition objects [Conformance]",
            crd_watch
        ),
        t!(
            "Server side field validation, typed object",
            "[sig-api-machinery] FieldValidation should detect unknown and duplicate fields of a typed object [Conformance]",
            fv_typed
        ),
        t!(
            "Server side field validation, typed unknown metadata",
            "[sig-api-machinery] FieldValidation should detect unknown metadata fields of a typed object [Conformance]",
            fv_typed_metadata
        ),
        t!(
            "Server side field validation, unknown fields CR no validation schema",
            "[sig-api-machinery] FieldValidation should create/apply a CR with unknown fields for CRD with no validation schema [Conformance]",
            fv_no_schema
        ),
        t!(
            "Server side field validation, valid CR with validation schema",
            "[sig-api-machinery] FieldValidation should create/apply a valid CR for CRD with validation schema [Conformance]",
            fv_valid_cr
        ),
        t!(
            "Server side field validation, unknown fields CR fails validation",
            "[sig-api-machinery] FieldValidation should create/apply an invalid CR with extra properties for CRD with validation schema [Conformance]",
            fv_unknown_cr
        ),
        t!(
            "Server side field validation, CR duplicates",
            "[sig-api-machinery] FieldValidation should detect duplicates in a CR when preserving unknown fields [Conformance]",
            fv_cr_duplicates
        ),
        t!(
            "Server side field validation, unknown metadata",
            "[sig-api-machinery] FieldValidation should detect unknown metadata fields in both the root and embedded object of a CR [Conformance]",
            fv_cr_unknown_metadata
        ),
        t!(
            "Garbage Collector, dependency cycle",
            "[sig-api-machinery] Garbage collector should not be blocked by dependency circle [Conformance]",
            gc_dependency_cycle
        ),
    ]
}

//! The APIService controller: upstream's autoregistration (a local APIService for every
//! built-in group-version, labelled `kube-aggregator.kubernetes.io/automanaged: onstart`),
//! CRD registration (one for every custom-resource group-version, labelled `true`,
//! removed with it) and availability controllers in one loop. Local APIServices are
//! Available (`Local`); a remote one is checked as upstream does (the Service, its port,
//! its endpoints, then a GET of its discovery document) and marked Available or not with
//! upstream's reasons. The fetched discovery documents feed this server's discovery.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use k1s_apimachinery::Status;
use serde_json::{Value, json};

use super::remote::{Unreachable, connect, resolve, tls_config};
use super::{GROUP, PLURAL, Remote, VERSION};
use crate::auth::UserInfo;
use crate::registry::generic::{DeleteOptions, WriteContext};
use crate::registry::{Resource, Subresource};
use crate::{ApiServer, meta};

/// The label upstream's registration controllers put on the APIServices they manage.
pub const AUTOMANAGED_LABEL: &str = "kube-aggregator.kubernetes.io/automanaged";

/// How often everything is checked again when nothing changes (remote discovery is
/// refreshed this often).
const RESYNC: Duration = Duration::from_secs(10);
/// How long one discovery check may take (upstream: a 5 s client timeout).
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Discovery documents larger than this are refused.
const MAX_DISCOVERY_BYTES: usize = 4 << 20;

/// Upstream's group and version priorities of the built-in group-versions
/// (`DefaultGenericAPIServicePriorities` merged with kube-apiserver's table).
const PRIORITIES: &[(&str, &str, i64, i64)] = &[
    ("", "v1", 18000, 1),
    ("apiregistration.k8s.io", "v1", 18000, 15),
    ("apps", "v1", 17800, 15),
    ("events.k8s.io", "v1", 17750, 15),
    ("authentication.k8s.io", "v1", 17700, 15),
    ("authorization.k8s.io", "v1", 17600, 15),
    ("autoscaling", "v1", 17500, 15),
    ("autoscaling", "v2", 17500, 30),
    ("batch", "v1", 17400, 15),
    ("certificates.k8s.io", "v1", 17300, 15),
    ("networking.k8s.io", "v1", 17200, 15),
    ("policy", "v1", 17100, 15),
    ("rbac.authorization.k8s.io", "v1", 17000, 15),
    ("storage.k8s.io", "v1", 16800, 15),
    ("apiextensions.k8s.io", "v1", 16700, 15),
    ("admissionregistration.k8s.io", "v1", 16700, 15),
    ("scheduling.k8s.io", "v1", 16600, 15),
    ("coordination.k8s.io", "v1", 16500, 15),
    ("node.k8s.io", "v1", 16300, 15),
    ("discovery.k8s.io", "v1", 16200, 15),
    ("resource.k8s.io", "v1", 16200, 21),
    ("resource.k8s.io", "v1beta2", 16200, 15),
    ("resource.k8s.io", "v1beta1", 16200, 9),
    ("flowcontrol.apiserver.k8s.io", "v1", 16100, 21),
    ("metrics.k8s.io", "v1beta1", 100, 100),
];
/// Upstream's CRD registration priorities: low, and versions sorted kube-like.
const CRD_GROUP_PRIORITY: i64 = 1000;
const CRD_VERSION_PRIORITY: i64 = 100;

fn ctx() -> WriteContext {
    WriteContext {
        user: UserInfo::loopback(),
        field_manager: "kube-apiserver".into(),
        ..WriteContext::default()
    }
}

/// Runs the controller: one pass now (so the local APIServices exist before the server
/// reports ready), then a task that follows every change of APIServices, Services,
/// Endpoints, EndpointSlices and CRDs.
pub async fn start(server: Arc<ApiServer>) -> tokio::task::JoinHandle<()> {
    if let Err(e) = reconcile(&server).await {
        tracing::warn!(error = %e.message, "APIService reconcile failed; retrying");
    }
    tokio::spawn(async move { run(server).await })
}

fn resource(server: &ApiServer, group: &str, plural: &str) -> Option<Arc<Resource>> {
    server.registry.snapshot().get(group, "v1", plural).cloned()
}

async fn run(server: Arc<ApiServer>) {
    let prefixes: Vec<String> = [
        (GROUP, PLURAL),
        ("", "services"),
        ("", "endpoints"),
        ("discovery.k8s.io", "endpointslices"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
    ]
    .iter()
    .filter_map(|(g, p)| resource(&server, g, p))
    .map(|r| r.info.collection_prefix(None))
    .collect();
    loop {
        if server.is_shutting_down() {
            return;
        }
        let cache = server.generic.store().cache().clone();
        let from = cache.revision();
        if let Err(e) = reconcile(&server).await {
            tracing::warn!(error = %e.message, "APIService reconcile failed; retrying");
        }
        let mut waits = Vec::new();
        for p in &prefixes {
            if let Ok(mut stream) = cache.watch(p, from) {
                waits.push(Box::pin(async move {
                    let _ = stream.next().await;
                }));
            }
        }
        if waits.is_empty() {
            tokio::time::sleep(RESYNC).await;
        } else {
            let _ = tokio::time::timeout(RESYNC, futures::future::select_all(waits)).await;
        }
    }
}

/// The local APIServices this server should have: name → (group, version, group
/// priority, version priority, automanaged label).
fn desired_local(server: &ApiServer) -> BTreeMap<String, Value> {
    let snap = server.registry.snapshot();
    let mut out = BTreeMap::new();
    let mut add = |group: &str, version: &str, custom: bool| {
        let (gp, vp, label) = if custom {
            (CRD_GROUP_PRIORITY, CRD_VERSION_PRIORITY, "true")
        } else {
            match PRIORITIES
                .iter()
                .find(|(g, v, _, _)| *g == group && *v == version)
            {
                Some((_, _, gp, vp)) => (*gp, *vp, "onstart"),
                // Upstream skips a built-in group-version missing from its table.
                None => return,
            }
        };
        let name = format!("{version}.{group}");
        out.insert(
            name.clone(),
            json!({
                "apiVersion": format!("{GROUP}/{VERSION}"), "kind": "APIService",
                "metadata": {"name": name, "labels": {AUTOMANAGED_LABEL: label}},
                "spec": {"group": group, "version": version,
                         "groupPriorityMinimum": gp, "versionPriority": vp},
            }),
        );
    };
    for g in snap.groups() {
        for v in &g.versions {
            let custom = snap.resources_of(&g.group, v).any(|r| r.info.custom);
            add(&g.group, v, custom);
        }
    }
    if crate::metrics::served(server) {
        add(crate::metrics::GROUP, crate::metrics::VERSION, false);
    }
    out
}

/// One pass: local APIServices created, updated and removed; every status checked.
pub async fn reconcile(server: &ApiServer) -> Result<(), Status> {
    let Some(res) = resource(server, GROUP, PLURAL) else {
        return Ok(());
    };
    let generic = &server.generic;
    let existing = list(server, &res);
    let desired = desired_local(server);
    let by_name: BTreeMap<&str, &Value> = existing.iter().map(|o| (meta::name(o), o)).collect();
    for (name, want) in &desired {
        match by_name.get(name.as_str()) {
            None => match generic
                .create(&res, None, want.clone(), &ctx(), Vec::new())
                .await
            {
                Ok(_) => {}
                Err(s) if s.reason() == "AlreadyExists" => {}
                Err(s) => return Err(s),
            },
            Some(current) => {
                // Only what the controller manages is put back: a user's APIService of
                // the same name (one pointing at a Service) is left alone.
                let managed = current
                    .pointer(&format!(
                        "/metadata/labels/{}",
                        AUTOMANAGED_LABEL.replace('/', "~1")
                    ))
                    .is_some();
                if managed && current.get("spec") != want.get("spec") {
                    let spec = want["spec"].clone();
                    let _ = generic
                        .update(&res, None, name, None, &ctx(), |cur, _| {
                            let mut next = cur.cloned().ok_or_else(|| {
                                Status::not_found(&res.info.group_resource(), name)
                            })?;
                            next["spec"] = spec.clone();
                            Ok(next)
                        })
                        .await;
                }
            }
        }
    }
    // A custom-resource group-version that is no longer served loses its APIService.
    for obj in &existing {
        let name = meta::name(obj);
        let label = obj
            .pointer(&format!(
                "/metadata/labels/{}",
                AUTOMANAGED_LABEL.replace('/', "~1")
            ))
            .and_then(Value::as_str);
        if label == Some("true") && !desired.contains_key(name) {
            let _ = generic
                .delete(&res, None, name, &DeleteOptions::default(), &ctx())
                .await;
        }
    }
    // Availability, and the remote discovery documents.
    let previous: BTreeMap<String, Option<Value>> = server
        .aggregator
        .remotes()
        .iter()
        .map(|r| (r.name.clone(), r.discovery.clone()))
        .collect();
    let mut remotes = Vec::new();
    let mut seen = BTreeSet::new();
    for obj in list(server, &res) {
        let name = meta::name(&obj).to_string();
        seen.insert(name.clone());
        let (condition, discovery) = match Remote::from_api_service(&obj, None) {
            None => (
                (
                    "True",
                    "Local",
                    "Local APIServices are always available".to_string(),
                ),
                None,
            ),
            Some(remote) => match check(server, &remote).await {
                Ok(doc) => (
                    ("True", "Passed", "all checks passed".to_string()),
                    Some(doc),
                ),
                Err(Check::Unreachable(u)) => (("False", u.reason, u.message), None),
                Err(Check::Discovery(message)) => (
                    ("False", "FailedDiscoveryCheck", message),
                    previous.get(&name).cloned().flatten(),
                ),
            },
        };
        let updated = set_available(server, &res, &obj, condition).await?;
        if let Some(r) = Remote::from_api_service(&updated, discovery) {
            remotes.push(r);
        }
    }
    server.aggregator.set_remotes(remotes);
    Ok(())
}

fn list(server: &ApiServer, res: &Resource) -> Vec<Value> {
    let (items, _, _) =
        server
            .generic
            .store()
            .cache()
            .list(&res.info.collection_prefix(None), None, 0);
    items
        .iter()
        .filter_map(|kv| server.generic.decode_stored(res, kv).ok())
        .collect()
}

/// Writes the Available condition when it changed; returns the object as stored.
async fn set_available(
    server: &ApiServer,
    res: &Arc<Resource>,
    obj: &Value,
    (status, reason, message): (&str, &str, String),
) -> Result<Value, Status> {
    let current = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Available"))
        });
    let same = current.is_some_and(|c| {
        c.get("status").and_then(Value::as_str) == Some(status)
            && c.get("reason").and_then(Value::as_str) == Some(reason)
            && c.get("message").and_then(Value::as_str) == Some(message.as_str())
    });
    if same {
        return Ok(obj.clone());
    }
    let keep_time = current
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|c| c.get("lastTransitionTime").cloned());
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let condition = json!({
        "type": "Available", "status": status,
        "lastTransitionTime": keep_time.unwrap_or(json!(now)),
        "reason": reason, "message": message,
    });
    let name = meta::name(obj).to_string();
    let written = server
        .generic
        .update(
            res,
            None,
            &name,
            Some(Subresource::Status),
            &ctx(),
            |cur, _| {
                let mut next = cur
                    .cloned()
                    .ok_or_else(|| Status::not_found(&res.info.group_resource(), &name))?;
                let mut conditions: Vec<Value> = next
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some("Available"));
                conditions.push(condition.clone());
                next["status"] = json!({"conditions": conditions});
                Ok(next)
            },
        )
        .await;
    match written {
        Ok(w) => Ok(w.object),
        // Deleted meanwhile: the next pass sees it.
        Err(s) if s.code == 404 => Ok(obj.clone()),
        Err(s) => Err(s),
    }
}

enum Check {
    Unreachable(Unreachable),
    Discovery(String),
}

/// Upstream's availability check of a remote APIService: the Service resolves to an
/// endpoint, and a GET of `/apis/<group>/<version>` there (as `system:kube-aggregator`
/// in `system:masters`, without verifying the certificate, as upstream's check does)
/// answers 2xx. Returns the document it answered.
async fn check(server: &ApiServer, remote: &Remote) -> Result<Value, Check> {
    let (host, port) = resolve(&server.generic, remote).map_err(Check::Unreachable)?;
    let path = if remote.name == "v1." {
        format!("/api/{}", remote.version)
    } else {
        format!("/apis/{}/{}", remote.group, remote.version)
    };
    let url = format!(
        "https://{}:{}{path}",
        super::remote::server_name(remote),
        remote.port
    );
    let identity = server.aggregator.identity();
    let attempt = async {
        let tls = tls_config(remote, identity.as_deref(), false)?;
        let mut sender = connect(remote, &host, port, tls).await?;
        let mut request = http::Request::get(path.as_str())
            .header(http::header::HOST, format!("{host}:{port}"))
            .header(http::header::ACCEPT, "application/json")
            .body(axum::body::Body::empty())
            .map_err(|e| e.to_string())?;
        let aggregator = UserInfo {
            name: "system:kube-aggregator".into(),
            groups: vec!["system:masters".into()],
            uid: String::new(),
            extra: BTreeMap::new(),
        };
        super::proxy::set_identity(request.headers_mut(), &aggregator);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let code = response.status();
        if !code.is_success() {
            return Err(format!("bad status from {url}: {}", code.as_u16()));
        }
        let body = http_body_util::Limited::new(response.into_body(), MAX_DISCOVERY_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        serde_json::from_slice::<Value>(&body)
            .map_err(|e| format!("invalid discovery document: {e}"))
    };
    match tokio::time::timeout(CHECK_TIMEOUT, attempt).await {
        Ok(Ok(doc)) => Ok(doc),
        Ok(Err(e)) => Err(Check::Discovery(format!(
            "failing or missing response from {url}: {e}"
        ))),
        Err(_) => Err(Check::Discovery(format!("timed out waiting for {url}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestApiServer;

    #[tokio::test]
    async fn every_built_in_group_version_gets_a_local_available_api_service() {
        let api = TestApiServer::new().await;
        reconcile(&api.server).await.expect("reconcile");
        let res = resource(&api.server, GROUP, PLURAL).expect("apiservices served");
        let all = list(&api.server, &res);
        let names: Vec<&str> = all.iter().map(meta::name).collect();
        for want in [
            "v1.",
            "v1.apps",
            "v2.autoscaling",
            "v1.apiregistration.k8s.io",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let apps = all
            .iter()
            .find(|o| meta::name(o) == "v1.apps")
            .expect("v1.apps");
        assert_eq!(
            apps.pointer("/spec/groupPriorityMinimum"),
            Some(&json!(17800))
        );
        assert_eq!(
            apps.pointer("/metadata/labels/kube-aggregator.kubernetes.io~1automanaged"),
            Some(&json!("onstart"))
        );
        assert_eq!(
            apps.pointer("/status/conditions/0/reason"),
            Some(&json!("Local"))
        );
        // A second pass writes nothing.
        let rv = meta::meta_str(apps, "resourceVersion").to_string();
        reconcile(&api.server).await.expect("reconcile");
        let again = list(&api.server, &res);
        let apps = again
            .iter()
            .find(|o| meta::name(o) == "v1.apps")
            .expect("v1.apps");
        assert_eq!(meta::meta_str(apps, "resourceVersion"), rv);
    }

    #[tokio::test]
    async fn a_remote_api_service_without_its_service_is_unavailable() {
        let api = TestApiServer::new().await;
        let res = resource(&api.server, GROUP, PLURAL).expect("apiservices served");
        let obj = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": "v1alpha1.wardle.example.com"},
            "spec": {"group": "wardle.example.com", "version": "v1alpha1",
                "service": {"namespace": "default", "name": "api"},
                "insecureSkipTLSVerify": true, "groupPriorityMinimum": 1000, "versionPriority": 15}});
        api.server
            .generic
            .create(&res, None, obj, &ctx(), Vec::new())
            .await
            .expect("create");
        reconcile(&api.server).await.expect("reconcile");
        let got = list(&api.server, &res)
            .into_iter()
            .find(|o| meta::name(o) == "v1alpha1.wardle.example.com")
            .expect("stored");
        let c = got.pointer("/status/conditions/0").expect("condition");
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "ServiceNotFound");
        assert_eq!(c["message"], "service/api in \"default\" is not present");
        let remote = api
            .server
            .aggregator
            .remote("wardle.example.com", "v1alpha1")
            .expect("remote known");
        assert!(!remote.available);
    }
}

//! Pod binding: `POST /api/v1/namespaces/<ns>/bindings` and `POST .../pods/<name>/binding`.
//!
//! Like upstream's `BindingREST`, a Binding is never stored: it is validated, then one
//! update of the named pod sets `spec.nodeName` to the target, merges the Binding's
//! annotations into the pod's and marks the pod `PodScheduled`; the answer is a `Status`
//! of `Success`.

use axum::response::Response;
use http::StatusCode;
use k1s_apimachinery::{GroupKind, GroupResource, Status};
use serde_json::{Value, json};

use super::create::object_body;
use super::negotiation::{parse_accept, resource_output};
use super::{Call, response};
use crate::kinds::core::binding::validate_pod_binding;
use crate::meta;
use crate::registry::Subresource;

/// POST to the `bindings` collection: the pod is the one the Binding names.
pub async fn create_collection(call: Call) -> Result<Response, Status> {
    bind(call, None).await
}

/// POST to `pods/<name>/binding`: the Binding must name the pod of the URL.
pub async fn create_subresource(call: Call) -> Result<Response, Status> {
    let name = call.path.name.clone().unwrap_or_default();
    bind(call, Some(name)).await
}

async fn bind(mut call: Call, url_name: Option<String>) -> Result<Response, Status> {
    resource_output(&parse_accept(call.header(http::header::ACCEPT)))?;
    let ctx = call.write_context()?;
    let snapshot = call.server.registry.snapshot();
    let (Some(bindings), Some(pods)) = (
        snapshot.get("", "v1", "bindings").cloned(),
        snapshot.get("", "v1", "pods").cloned(),
    ) else {
        return Err(super::not_found());
    };
    let mut warnings = Vec::new();
    let body = object_body(&mut call, ctx.field_validation, &mut warnings).await?;
    let binding =
        call.server
            .generic
            .decode_request(&bindings, body, ctx.field_validation, &mut warnings)?;
    let name = meta::name(&binding).to_string();
    if let Some(url_name) = &url_name
        && *url_name != name
    {
        return Err(Status::bad_request(
            "name in URL does not match name in Binding object",
        ));
    }
    let namespace = call.namespace().unwrap_or("").to_string();
    let body_ns = meta::namespace(&binding);
    if !body_ns.is_empty() && body_ns != namespace {
        return Err(Status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let errs = validate_pod_binding(&binding);
    if !errs.is_empty() {
        return Err(Status::invalid(
            &GroupKind::new("", "Binding"),
            &name,
            &errs,
        ));
    }
    let target = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let want_uid = meta::uid(&binding).to_string();
    let want_rv = meta::resource_version(&binding).to_string();
    let annotations = meta::metadata(&binding)
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let pods_gr = GroupResource::new("", "pods");
    let binding_gr = GroupResource::new("", "pods/binding");
    let key = pods.info.key(Some(&namespace), &name);
    call.server
        .generic
        .update(
            &pods,
            Some(&namespace),
            &name,
            Some(Subresource::Binding),
            &ctx,
            |current, _| {
                let Some(current) = current else {
                    return Err(Status::not_found(&pods_gr, &name));
                };
                let precondition = |what: &str, want: &str, have: &str| {
                    Status::conflict(
                        &pods_gr,
                        &name,
                        &format!(
                            "StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}"
                        ),
                    )
                };
                if !want_uid.is_empty() && want_uid != meta::uid(current) {
                    return Err(precondition("UID", &want_uid, meta::uid(current)));
                }
                if !want_rv.is_empty() && want_rv != meta::resource_version(current) {
                    return Err(precondition(
                        "ResourceVersion",
                        &want_rv,
                        meta::resource_version(current),
                    ));
                }
                if meta::is_deleting(current) {
                    return Err(Status::conflict(
                        &binding_gr,
                        &name,
                        &format!("pod {name} is being deleted, cannot be assigned to a host"),
                    ));
                }
                let node = current
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !node.is_empty() {
                    return Err(Status::conflict(
                        &binding_gr,
                        &name,
                        &format!("pod {name} is already assigned to node \"{node}\""),
                    ));
                }
                if current
                    .pointer("/spec/schedulingGates")
                    .and_then(Value::as_array)
                    .is_some_and(|g| !g.is_empty())
                {
                    return Err(Status::conflict(
                        &binding_gr,
                        &name,
                        &format!("pod {name} has non-empty .spec.schedulingGates"),
                    ));
                }
                let mut pod = current.clone();
                meta::set_meta(&mut pod, "resourceVersion", None);
                meta::set_path(&mut pod, &["spec", "nodeName"], json!(target));
                if !annotations.is_empty() {
                    let m = meta::metadata_mut(&mut pod);
                    let a = m
                        .entry("annotations")
                        .or_insert_with(|| json!({}));
                    if !a.is_object() {
                        *a = json!({});
                    }
                    if let Some(a) = a.as_object_mut() {
                        for (k, v) in &annotations {
                            a.insert(k.clone(), v.clone());
                        }
                    }
                }
                set_scheduled(&mut pod);
                Ok(pod)
            },
        )
        .await?;
    let mut status = Status::success();
    status.code = i32::from(StatusCode::CREATED.as_u16());
    Ok(response::with_warnings(
        response::status(&status),
        &warnings,
    ))
}

/// Upstream's `UpdatePodCondition` with `PodScheduled=True`: reason and message go, the
/// transition time stays when the status does not change.
fn set_scheduled(pod: &mut Value) {
    let now = meta::now_rfc3339();
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let status = &mut pod["status"];
    if !status.get("conditions").is_some_and(Value::is_array) {
        status["conditions"] = json!([]);
    }
    let Some(conditions) = status["conditions"].as_array_mut() else {
        return;
    };
    let mut cond = json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": now});
    match conditions
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled"))
    {
        Some(old) => {
            if old.get("status").and_then(Value::as_str) == Some("True")
                && let Some(t) = old.get("lastTransitionTime")
            {
                cond["lastTransitionTime"] = t.clone();
            }
            *old = cond;
        }
        None => conditions.push(cond),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::test_util::TestApiServer;

    const PODS: &str = "/api/v1/namespaces/default/pods";

    async fn pod(api: &crate::test_util::TestApi, name: &str) {
        let (code, body) = api
            .call(
                "POST",
                PODS,
                &json!({"metadata": {"name": name},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
    }

    fn binding(name: &str, node: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Binding",
               "metadata": {"name": name, "annotations": {"a": "b"}},
               "target": {"kind": "Node", "name": node}})
    }

    #[tokio::test]
    async fn a_binding_assigns_the_pod_and_is_not_stored() {
        let server = TestApiServer::new().await;
        let api = server.api();
        pod(&api, "p1").await;
        let (code, body) = api
            .call(
                "POST",
                "/api/v1/namespaces/default/bindings",
                &binding("p1", "n1"),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["kind"], "Status");
        assert_eq!(body["status"], "Success");
        assert_eq!(body["code"], 201);
        let (_, p) = api.call("GET", &format!("{PODS}/p1"), &Value::Null).await;
        assert_eq!(p["spec"]["nodeName"], "n1");
        assert_eq!(p["metadata"]["annotations"]["a"], "b");
        let conds = p["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            conds
                .iter()
                .any(|c| c["type"] == "PodScheduled" && c["status"] == "True"),
            "{p}"
        );
        // Bound already: 409 as upstream words it.
        let (code, body) = api
            .call("POST", &format!("{PODS}/p1/binding"), &binding("p1", "n2"))
            .await;
        assert_eq!(code, 409, "{body}");
        assert_eq!(
            body["message"],
            "Operation cannot be fulfilled on pods/binding \"p1\": pod p1 is already assigned to node \"n1\""
        );
        // Nothing is stored: the collection cannot even be listed.
        let (code, _) = api
            .call("GET", "/api/v1/namespaces/default/bindings", &Value::Null)
            .await;
        assert_eq!(code, 405);
    }

    #[tokio::test]
    async fn the_subresource_checks_names_preconditions_and_the_target() {
        let server = TestApiServer::new().await;
        let api = server.api();
        pod(&api, "p2").await;
        let (code, body) = api
            .call(
                "POST",
                &format!("{PODS}/p2/binding"),
                &binding("other", "n1"),
            )
            .await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(
            body["message"],
            "name in URL does not match name in Binding object"
        );
        let mut b = binding("p2", "n1");
        b["metadata"]["uid"] = json!("not-the-uid");
        let (code, body) = api.call("POST", &format!("{PODS}/p2/binding"), &b).await;
        assert_eq!(code, 409, "{body}");
        let mut b = binding("p2", "");
        b["target"]["kind"] = json!("Pod");
        let (code, body) = api.call("POST", &format!("{PODS}/p2/binding"), &b).await;
        assert_eq!(code, 422, "{body}");
        let (code, body) = api
            .call(
                "POST",
                &format!("{PODS}/missing/binding"),
                &binding("missing", "n1"),
            )
            .await;
        assert_eq!(code, 404, "{body}");
        let (code, body) = api
            .call("POST", &format!("{PODS}/p2/binding"), &binding("p2", "n1"))
            .await;
        assert_eq!(code, 201, "{body}");
    }

    #[tokio::test]
    async fn discovery_lists_pods_binding() {
        let server = TestApiServer::new().await;
        let (code, body) = server.api().call("GET", "/api/v1", &Value::Null).await;
        assert_eq!(code, 200);
        let entry = body["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|e| e["name"] == "pods/binding").cloned());
        assert_eq!(
            entry,
            Some(
                json!({"name": "pods/binding", "singularName": "", "namespaced": true,
                        "kind": "Binding", "verbs": ["create"]})
            )
        );
    }

    #[tokio::test]
    async fn pods_get_their_priority_from_their_class() {
        let server = TestApiServer::new().await;
        let api = server.api();
        let (code, body) = api
            .call(
                "POST",
                PODS,
                &json!({"metadata": {"name": "crit"},
                        "spec": {"priorityClassName": "system-cluster-critical",
                                 "containers": [{"name": "c", "image": "busybox"}]}}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["spec"]["priority"], 2_000_000_000);
        let (code, body) = api
            .call(
                "POST",
                PODS,
                &json!({"metadata": {"name": "nope"},
                        "spec": {"priorityClassName": "nope",
                                 "containers": [{"name": "c", "image": "busybox"}]}}),
            )
            .await;
        assert_eq!(code, 403, "{body}");
        assert_eq!(
            body["message"],
            "pods \"nope\" is forbidden: no PriorityClass with name nope was found"
        );
    }
}

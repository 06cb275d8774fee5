//! `POST /api/v1/namespaces/{ns}/pods/{name}/eviction`: deletes a pod unless that would
//! violate its PodDisruptionBudget, as upstream's `EvictionREST` does.

use std::sync::Arc;

use axum::response::Response;
use http::StatusCode;
use k1s_apimachinery::status::{StatusCause, StatusDetails};
use k1s_apimachinery::{GroupResource, Selector, Status};
use serde_json::{Value, json};

use super::create::{decode_typed, object_body};
use super::{Call, response};
use crate::meta;
use crate::registry::generic::{DeleteOptions, ListOptions, WriteContext};
use crate::registry::{Resource, Subresource};

/// Upstream's limit on `status.disruptedPods`: beyond it the PDB controller has fallen
/// too far behind for more evictions to be approved.
const MAX_DISRUPTED_POD_SIZE: usize = 2000;
/// Tries of a write that conflicts with another (upstream's `EvictionsRetry` steps).
const EVICTION_RETRIES: usize = 20;
/// The message of every refusal for lack of budget.
const VIOLATES_BUDGET: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

/// Upstream's 429 for an eviction the budget refuses, with its `DisruptionBudget` cause.
fn too_many_requests(retry_after: i32, cause: String) -> Status {
    let mut s = Status::too_many_requests(VIOLATES_BUDGET, retry_after);
    let details = s.details.get_or_insert_with(StatusDetails::default);
    details.causes.push(StatusCause {
        reason: "DisruptionBudget".into(),
        message: cause,
        field: String::new(),
    });
    s
}

/// The 429 of a budget the disruption controller has not caught up with yet.
fn still_processing(pdb_name: &str) -> Status {
    too_many_requests(
        10,
        format!("The disruption budget {pdb_name} is still being processed by the server."),
    )
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Pods that are not running (pending or terminal) or already being deleted are deleted
/// without consulting a budget: they disrupt nothing more.
fn can_ignore_pdb(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending") || meta::is_deleting(pod)
}

/// A running pod is deleted only at the resourceVersion the decision saw, so it cannot
/// have become ready (and counted towards a budget) in between.
fn should_enforce_resource_version(pod: &Value) -> bool {
    !(matches!(phase(pod), "Succeeded" | "Failed") || meta::is_deleting(pod))
}

/// Whether the pod's Ready condition is True.
fn is_pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn status_i64(pdb: &Value, field: &str) -> i64 {
    pdb.pointer(&format!("/status/{field}"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// DeleteOptions carried by the Eviction, with the request's dryRun merged in as
/// upstream's `propagateDryRun` does. Returns the options and whether it is a dry run.
fn delete_options(eviction: &Value, query_dry_run: bool) -> Result<(DeleteOptions, bool), Status> {
    let mut opts = DeleteOptions::default();
    let Some(d) = eviction.get("deleteOptions").filter(|d| !d.is_null()) else {
        return Ok((opts, query_dry_run));
    };
    opts.grace_period_seconds = d.get("gracePeriodSeconds").and_then(Value::as_i64);
    opts.propagation_policy = d
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(str::to_string);
    opts.orphan_dependents = d.get("orphanDependents").and_then(Value::as_bool);
    opts.precondition_uid = d
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        .map(str::to_string);
    opts.precondition_resource_version = d
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string);
    let body_dry_run: Vec<&str> = d
        .get("dryRun")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let dry_run = match (body_dry_run.is_empty(), query_dry_run) {
        (true, q) => q,
        (false, false) => body_dry_run.contains(&"All"),
        (false, true) if body_dry_run == ["All"] => true,
        (false, true) => {
            return Err(Status::bad_request(&format!(
                "Non-matching dry-run options in request and content: [All] and [{}]",
                body_dry_run.join(" ")
            )));
        }
    };
    Ok((opts, dry_run))
}

/// The PodDisruptionBudgets of the pod's namespace whose selector matches it; an empty
/// or invalid selector matches nothing.
async fn pod_budgets(call: &Call, pdbs: &Resource, pod: &Value) -> Result<Vec<Value>, Status> {
    let page = call
        .server
        .generic
        .list(pdbs, Some(meta::namespace(pod)), &ListOptions::default())
        .await?;
    let labels = meta::labels(pod);
    Ok(page
        .items
        .into_iter()
        .filter(|pdb| {
            let sel = pdb.pointer("/spec/selector").unwrap_or(&Value::Null);
            Selector::from_label_selector(sel)
                .is_ok_and(|s| !s.is_empty() && !s.matches_nothing() && s.matches(&labels))
        })
        .collect())
}

/// Upstream's `UpdateDisruptionAllowedCondition`: the DisruptionAllowed condition from
/// `status.disruptionsAllowed`, its transition time moved only when its status changes.
pub fn set_disruption_allowed_condition(pdb: &mut Value, now: &str) {
    let allowed = status_i64(pdb, "disruptionsAllowed") > 0;
    let observed = status_i64(pdb, "observedGeneration");
    let (status, reason) = if allowed {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    if !pdb.get("status").is_some_and(Value::is_object) {
        pdb["status"] = json!({});
    }
    let conditions = pdb["status"]
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(Value::Array(conditions)) = conditions else {
        return;
    };
    let existing = conditions
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("DisruptionAllowed"));
    match existing {
        Some(c) => {
            if c.get("status").and_then(Value::as_str) != Some(status) {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!("");
            c["observedGeneration"] = json!(observed);
        }
        None => conditions.push(json!({
            "type": "DisruptionAllowed",
            "status": status,
            "reason": reason,
            "message": "",
            "observedGeneration": observed,
            "lastTransitionTime": now,
        })),
    }
}

/// Upstream's `checkAndDecrement`: refuses when the budget allows no disruption, else
/// takes one and records the pod in `status.disruptedPods`.
fn check_and_decrement(pdb: &Value, pod_name: &str, dry_run: bool) -> Result<Value, Status> {
    let name = meta::name(pdb);
    let generation = pdb
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if status_i64(pdb, "observedGeneration") < generation {
        return Err(still_processing(name));
    }
    let allowed = status_i64(pdb, "disruptionsAllowed");
    let gr = GroupResource::new("policy", "poddisruptionbudget");
    if allowed < 0 {
        return Err(Status::forbidden(
            &gr,
            name,
            "pdb disruptions allowed is negative",
        ));
    }
    let disrupted = pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    if disrupted > MAX_DISRUPTED_POD_SIZE {
        return Err(Status::forbidden(
            &gr,
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(too_many_requests(
            0,
            format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                status_i64(pdb, "desiredHealthy"),
                status_i64(pdb, "currentHealthy")
            ),
        ));
    }
    let mut next = pdb.clone();
    next["status"]["disruptionsAllowed"] = json!(allowed - 1);
    let now = meta::now_rfc3339();
    if allowed - 1 == 0 {
        set_disruption_allowed_condition(&mut next, &now);
    }
    if !dry_run {
        let status = &mut next["status"];
        if !status.get("disruptedPods").is_some_and(Value::is_object) {
            status["disruptedPods"] = json!({});
        }
        status["disruptedPods"][pod_name] = json!(now);
    }
    Ok(next)
}

/// Serves `create` on `pods/eviction`.
pub async fn create(mut call: Call) -> Result<Response, Status> {
    let ctx = call.write_context()?;
    let mut warnings = Vec::new();
    let mut eviction = object_body(&mut call, ctx.field_validation, &mut warnings).await?;
    decode_typed(
        &mut eviction,
        "io.k8s.api.policy.v1.Eviction",
        "Eviction",
        "v1",
    )?;
    if let Some(kind) = eviction.get("kind").and_then(Value::as_str)
        && kind != "Eviction"
    {
        return Err(Status::bad_request(&format!(
            "not a Eviction object: {kind}"
        )));
    }
    let name = call.path.name.clone().unwrap_or_default();
    if meta::name(&eviction) != name {
        return Err(Status::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let ns = call.namespace().unwrap_or("").to_string();
    let body_ns = meta::namespace(&eviction);
    if !body_ns.is_empty() && body_ns != ns {
        return Err(Status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    call.server
        .generic
        .admit_node_restriction(&crate::admission::noderestriction::Request {
            group: "",
            resource: "pods",
            subresource: "eviction",
            operation: crate::admission::Operation::Create,
            namespace: &ns,
            name: &name,
            object: Some(&eviction),
            old_object: None,
            user: &ctx.user,
        })?;
    let (opts, dry_run) = delete_options(&eviction, ctx.dry_run)?;
    let ctx = WriteContext { dry_run, ..ctx };
    let server = call.server.clone();
    let generic = server.generic.clone();
    let pods = call.resource.clone();
    let rv_unset = opts.precondition_resource_version.is_none();

    // Pods that disrupt nothing more are deleted at once, retrying while another writer
    // changes them (unless the caller pinned a version).
    let mut pod = None;
    for attempt in 0..EVICTION_RETRIES {
        let current = generic.get(&pods, Some(&ns), &name)?;
        if !can_ignore_pdb(&current) {
            pod = Some(current);
            break;
        }
        let mut o = opts.clone();
        if should_enforce_resource_version(&current) && rv_unset {
            o.precondition_resource_version = Some(meta::resource_version(&current).into());
        }
        match mark_and_delete(&generic, &pods, &ns, &name, o, &ctx).await {
            Ok(()) => return Ok(success()),
            Err(s) if s.code() == 409 && rv_unset && attempt + 1 < EVICTION_RETRIES => continue,
            Err(s) => return Err(s),
        }
    }
    let Some(pod) = pod else {
        return Err(Status::conflict(
            &GroupResource::new("", "pods"),
            &name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    };

    let snapshot = server.registry.snapshot();
    let pdbs = snapshot
        .get("policy", "v1", "poddisruptionbudgets")
        .cloned()
        .ok_or_else(|| Status::internal_error("poddisruptionbudgets are not served"))?;
    let budgets = pod_budgets(&call, &pdbs, &pod).await?;
    if budgets.len() > 1 {
        let mut s = Status::generic(
            500,
            "",
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        );
        s.details = None;
        return Ok(response::status(&s));
    }
    let mut pin_pod_version = false;
    let mut pdb_name = String::new();
    if let Some(pdb) = budgets.first() {
        pdb_name = meta::name(pdb).to_string();
        let always_allow =
            pdb.pointer("/spec/unhealthyPodEvictionPolicy") == Some(&json!("AlwaysAllow"));
        let desired = status_i64(pdb, "desiredHealthy");
        if !is_pod_ready(&pod)
            && (always_allow || (status_i64(pdb, "currentHealthy") >= desired && desired > 0))
        {
            // An unhealthy pod counts towards neither side of the budget: deleting it
            // takes nothing from it.
            pin_pod_version = true;
        } else {
            take_from_budget(&generic, &pdbs, &ns, &pdb_name, &name, &ctx).await?;
        }
    }

    let mut o = opts.clone();
    if pin_pod_version {
        o.precondition_resource_version = Some(meta::resource_version(&pod).into());
    }
    match mark_and_delete(&generic, &pods, &ns, &name, o, &ctx).await {
        Ok(()) => Ok(success()),
        Err(s) if s.code() == 409 && pin_pod_version && rv_unset => {
            Err(still_processing(&pdb_name))
        }
        Err(s) => Err(s),
    }
}

/// Upstream's `addConditionAndDeletePod`: the pod first gets the `DisruptionTarget`
/// condition (so its controller and `kubectl describe` can tell it was evicted), on
/// the version the caller's preconditions name, then is deleted.
async fn mark_and_delete(
    generic: &crate::registry::generic::GenericStore,
    pods: &Arc<Resource>,
    ns: &str,
    name: &str,
    mut opts: DeleteOptions,
    ctx: &WriteContext,
) -> Result<(), Status> {
    if !ctx.dry_run {
        let gr = GroupResource::new("", "pods");
        let modified = "the object has been modified; please apply your changes to the latest version and try again";
        let written = generic
            .update(pods, Some(ns), name, Some(Subresource::Status), ctx, |cur, _| {
                let cur = cur.ok_or_else(|| Status::not_found(&gr, name))?;
                if opts
                    .precondition_uid
                    .as_deref()
                    .is_some_and(|u| !u.is_empty() && u != meta::uid(cur))
                {
                    return Err(Status::conflict(&gr, name, &format!(
                        "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                        opts.precondition_uid.as_deref().unwrap_or(""),
                        meta::uid(cur)
                    )));
                }
                if opts
                    .precondition_resource_version
                    .as_deref()
                    .is_some_and(|rv| !rv.is_empty() && rv != meta::resource_version(cur))
                {
                    return Err(Status::conflict(&gr, name, modified));
                }
                let mut next = cur.clone();
                set_disruption_target(&mut next, &meta::now_rfc3339());
                Ok(next)
            })
            .await?;
        if opts.precondition_resource_version.is_some() {
            // This write moved the pod on; the delete is conditional on it.
            opts.precondition_resource_version =
                Some(meta::resource_version(&written.object).to_string());
        }
    }
    generic
        .delete(pods, Some(ns), name, &opts, ctx)
        .await
        .map(|_| ())
}

/// Sets the pod's `DisruptionTarget` condition as the eviction API does.
fn set_disruption_target(pod: &mut Value, now: &str) {
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let Some(status) = pod["status"].as_object_mut() else {
        return;
    };
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    let Some(conditions) = conditions.as_array_mut() else {
        return;
    };
    let wanted = json!({
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
        "lastTransitionTime": now,
    });
    match conditions
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("DisruptionTarget"))
    {
        Some(c) => {
            let since = if c.get("status").and_then(Value::as_str) == Some("True") {
                c.get("lastTransitionTime").cloned().unwrap_or(json!(now))
            } else {
                json!(now)
            };
            *c = wanted;
            c["lastTransitionTime"] = since;
        }
        None => conditions.push(wanted),
    }
}

/// Takes one disruption from the named budget, re-reading it after each conflicting
/// write.
async fn take_from_budget(
    generic: &crate::registry::generic::GenericStore,
    pdbs: &Arc<Resource>,
    ns: &str,
    pdb_name: &str,
    pod_name: &str,
    ctx: &WriteContext,
) -> Result<(), Status> {
    for _ in 0..EVICTION_RETRIES {
        let current = generic.get(pdbs, Some(ns), pdb_name)?;
        let next = check_and_decrement(&current, pod_name, ctx.dry_run)?;
        if ctx.dry_run {
            return Ok(());
        }
        // The version read is the precondition: a concurrent eviction makes this one
        // conflict and look again.
        match generic
            .update(
                pdbs,
                Some(ns),
                pdb_name,
                Some(Subresource::Status),
                ctx,
                |_, _| Ok(next.clone()),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(s) if s.code() == 409 => continue,
            Err(s) => return Err(s),
        }
    }
    Err(Status::timeout(
        &format!("couldn't update PodDisruptionBudget \"{pdb_name}\" due to conflicts"),
        10,
    ))
}

/// Upstream's answer to an eviction that deleted the pod: 201 with a success Status.
fn success() -> Response {
    response::json(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdb(allowed: i64, generation: i64, observed: i64) -> Value {
        json!({
            "metadata": {"name": "b", "namespace": "ns", "generation": generation},
            "status": {"disruptionsAllowed": allowed, "observedGeneration": observed,
                       "desiredHealthy": 2, "currentHealthy": 2, "expectedPods": 3},
        })
    }

    #[test]
    fn decrement_records_the_pod_and_flips_the_condition_at_zero() {
        let next = check_and_decrement(&pdb(1, 1, 1), "p", false).expect("allowed");
        assert_eq!(next["status"]["disruptionsAllowed"], 0);
        assert!(next["status"]["disruptedPods"]["p"].is_string());
        let c = &next["status"]["conditions"][0];
        assert_eq!(c["reason"], "InsufficientPods");
        assert_eq!(c["status"], "False");
    }

    #[test]
    fn no_budget_is_429_with_the_cause() {
        let s = check_and_decrement(&pdb(0, 1, 1), "p", false).expect_err("refused");
        assert_eq!(s.code(), 429);
        assert_eq!(s.message, VIOLATES_BUDGET);
        let cause = &s.details.as_ref().expect("details").causes[0];
        assert_eq!(cause.reason, "DisruptionBudget");
        assert_eq!(
            cause.message,
            "The disruption budget b needs 2 healthy pods and has 2 currently"
        );
    }

    #[test]
    fn stale_budget_and_negative_budget() {
        let s = check_and_decrement(&pdb(3, 2, 1), "p", false).expect_err("stale");
        assert_eq!(s.code(), 429);
        assert_eq!(s.details.as_ref().map(|d| d.retry_after_seconds), Some(10));
        let s = check_and_decrement(&pdb(-1, 1, 1), "p", false).expect_err("negative");
        assert_eq!(s.code(), 403);
    }

    #[test]
    fn dry_run_merging() {
        let ev = json!({"deleteOptions": {"dryRun": ["All"]}});
        assert!(delete_options(&ev, false).expect("ok").1);
        assert!(delete_options(&json!({}), true).expect("ok").1);
        assert!(!delete_options(&json!({}), false).expect("ok").1);
    }

    mod api {
        use serde_json::{Value, json};

        use crate::test_util::{TestApi, TestApiServer};

        const PODS: &str = "/api/v1/namespaces/default/pods";
        const PDBS: &str = "/apis/policy/v1/namespaces/default/poddisruptionbudgets";

        async fn pod(api: &TestApi, name: &str, phase: &str, ready: bool) {
            api.create(
                PODS,
                json!({"metadata": {"name": name, "labels": {"app": "a"}},
                       "spec": {"containers": [{"name": "c", "image": "i"}]}}),
            )
            .await;
            let status = json!({"status": {"phase": phase, "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
            let (code, body) = api
                .call_with(
                    "PATCH",
                    &format!("{PODS}/{name}/status"),
                    "application/merge-patch+json",
                    &status,
                )
                .await;
            assert_eq!(code, 200, "{body}");
        }

        async fn pdb(api: &TestApi, name: &str, allowed: i64) {
            api.create(
                PDBS,
                json!({"metadata": {"name": name},
                       "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "a"}}}}),
            )
            .await;
            let status = json!({"status": {"observedGeneration": 1, "disruptionsAllowed": allowed,
                "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2}});
            let (code, body) = api
                .call_with(
                    "PATCH",
                    &format!("{PDBS}/{name}/status"),
                    "application/merge-patch+json",
                    &status,
                )
                .await;
            assert_eq!(code, 200, "{body}");
        }

        async fn evict(api: &TestApi, name: &str) -> (u16, Value) {
            api.call(
                "POST",
                &format!("{PODS}/{name}/eviction"),
                &json!({"apiVersion": "policy/v1", "kind": "Eviction",
                        "metadata": {"name": name, "namespace": "default"}}),
            )
            .await
        }

        #[tokio::test]
        async fn eviction_honours_the_budget() {
            let server = TestApiServer::new().await;
            let api = server.api();
            pod(&api, "p1", "Running", true).await;
            pod(&api, "p2", "Running", true).await;
            pdb(&api, "b", 0).await;

            let (code, body) = evict(&api, "p1").await;
            assert_eq!(code, 429, "{body}");
            assert_eq!(body["reason"], "TooManyRequests");
            assert_eq!(
                body["message"],
                "Cannot evict pod as it would violate the pod's disruption budget."
            );
            assert_eq!(body["details"]["causes"][0]["reason"], "DisruptionBudget");
            let (code, _) = api.call("GET", &format!("{PODS}/p1"), &Value::Null).await;
            assert_eq!(code, 200, "the pod stays");

            let (code, _) = api
                .call_with(
                    "PATCH",
                    &format!("{PDBS}/b/status"),
                    "application/merge-patch+json",
                    &json!({"status": {"disruptionsAllowed": 1}}),
                )
                .await;
            assert_eq!(code, 200);
            let (code, body) = evict(&api, "p1").await;
            assert_eq!(code, 201, "{body}");
            assert_eq!(body["status"], "Success");
            let (_, got) = api.call("GET", &format!("{PDBS}/b"), &Value::Null).await;
            assert_eq!(got["status"]["disruptionsAllowed"], 0);
            assert!(got["status"]["disruptedPods"]["p1"].is_string(), "{got}");
            assert_eq!(
                got["status"]["conditions"][0]["reason"], "InsufficientPods",
                "{got}"
            );
            let (_, gone) = api.call("GET", &format!("{PODS}/p1"), &Value::Null).await;
            assert!(
                gone["code"] == 404 || !gone["metadata"]["deletionTimestamp"].is_null(),
                "{gone}"
            );

            // No budget left, but a pending pod disrupts nothing: deleted at once.
            pod(&api, "p3", "Pending", false).await;
            let (code, body) = evict(&api, "p3").await;
            assert_eq!(code, 201, "{body}");

            // Two budgets over one pod: upstream's 500.
            pdb(&api, "b2", 5).await;
            let (code, body) = evict(&api, "p2").await;
            assert_eq!(code, 500, "{body}");
            assert_eq!(
                body["message"],
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
            );

            let (code, body) = api
                .call(
                    "POST",
                    &format!("{PODS}/p2/eviction"),
                    &json!({"metadata": {"name": "other"}}),
                )
                .await;
            assert_eq!(code, 400, "{body}");
            assert_eq!(
                body["message"],
                "name in URL does not match name in Eviction object"
            );
        }

        #[tokio::test]
        async fn evicted_pods_carry_the_disruption_target_condition() {
            let server = TestApiServer::new().await;
            let api = server.api();
            api.create(
                PODS,
                json!({"metadata": {"name": "kept", "finalizers": ["example.com/keep"]},
                       "spec": {"containers": [{"name": "c", "image": "i"}]}}),
            )
            .await;
            let (code, body) = evict(&api, "kept").await;
            assert_eq!(code, 201, "{body}");
            let (_, pod) = api.call("GET", &format!("{PODS}/kept"), &Value::Null).await;
            assert!(!pod["metadata"]["deletionTimestamp"].is_null(), "{pod}");
            let cond = pod["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "DisruptionTarget"))
                .cloned()
                .unwrap_or_default();
            assert_eq!(cond["status"], "True", "{pod}");
            assert_eq!(cond["reason"], "EvictionByEvictionAPI");
            assert_eq!(cond["message"], "Eviction API: evicting");
        }

        #[tokio::test]
        async fn unhealthy_pods_are_evicted_when_the_budget_is_met() {
            let server = TestApiServer::new().await;
            let api = server.api();
            pod(&api, "u", "Running", false).await;
            // currentHealthy 2 ≥ desiredHealthy 1: the unready pod goes without taking
            // from the budget.
            pdb(&api, "b", 0).await;
            let (code, body) = evict(&api, "u").await;
            assert_eq!(code, 201, "{body}");
            let (_, got) = api.call("GET", &format!("{PDBS}/b"), &Value::Null).await;
            assert_eq!(got["status"]["disruptionsAllowed"], 0);
            assert!(got["status"]["disruptedPods"].is_null(), "{got}");
        }
    }
}

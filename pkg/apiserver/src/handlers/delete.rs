//! DELETE of an object or a collection.

use axum::response::Response;
use http::StatusCode;
use k1s_apimachinery::Status;
use serde_json::{Value, json};

use super::list::list_options;
use super::{Call, body, response};
use crate::meta;
use crate::registry::generic::{DeleteOptions, Deleted};
use crate::schema::decode;
use crate::schema::model::Schema;

/// The definition request bodies of deletes are decoded against.
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";

/// DeleteOptions from the body (if any) and the query.
async fn delete_options(call: &mut Call) -> Result<(DeleteOptions, bool), Status> {
    let bytes = body::read(call.take_body()).await?;
    let mut opts = DeleteOptions::default();
    let mut dry_run = false;
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        // Typed clients (kubectl 1.32+) may send DeleteOptions as protobuf.
        let mut v: Value = if bytes.starts_with(crate::schema::protobuf::MAGIC) {
            body::parse_protobuf(&bytes)?
        } else {
            body::parse_yaml(&bytes)?
        };
        // Typed, as upstream decodes it: `gracePeriodSeconds: "0"` is a 400, not a
        // default grace period.
        decode::decode(
            &mut v,
            &Schema::reference(DELETE_OPTIONS),
            crate::openapi::request_definitions(),
        )
        .map_err(|e| Status::bad_request(&e.message))?;
        if let Some(kind) = v.get("kind").and_then(Value::as_str)
            && kind != "DeleteOptions"
        {
            return Err(Status::bad_request(&format!(
                "kind {kind} is not DeleteOptions"
            )));
        }
        opts.grace_period_seconds = v.get("gracePeriodSeconds").and_then(Value::as_i64);
        opts.propagation_policy = v
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string);
        opts.orphan_dependents = v.get("orphanDependents").and_then(Value::as_bool);
        opts.precondition_uid = v
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        opts.precondition_resource_version = v
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        dry_run = v
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|d| d == "All"));
    }
    let q = &call.query;
    if let Some(g) = q.get("gracePeriodSeconds") {
        opts.grace_period_seconds =
            Some(g.parse().map_err(|_| {
                Status::bad_request(&format!("invalid gracePeriodSeconds \"{g}\""))
            })?);
    }
    if let Some(p) = q.get("propagationPolicy") {
        opts.propagation_policy = Some(p.clone());
    }
    if let Some(o) = q.get("orphanDependents") {
        opts.orphan_dependents = Some(o == "true");
    }
    if opts.orphan_dependents.is_some() && opts.propagation_policy.is_some() {
        return Err(Status::invalid(
            &k1s_apimachinery::GroupKind::new("", "DeleteOptions"),
            "",
            &[k1s_apimachinery::FieldError::invalid(
                &k1s_apimachinery::Path::new("propagationPolicy"),
                json!(opts.propagation_policy),
                "orphanDependents and deletionPropagation cannot be both set",
            )],
        ));
    }
    Ok((opts, dry_run))
}

fn deleted_status(call: &Call, obj: &Value) -> Value {
    let info = &call.resource.info;
    let mut details = json!({"name": meta::name(obj), "kind": info.plural, "uid": meta::uid(obj)});
    if !info.group.is_empty() {
        details["group"] = json!(info.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// Serves `delete`.
pub async fn delete(mut call: Call) -> Result<Response, Status> {
    let (opts, body_dry_run) = delete_options(&mut call).await?;
    let mut ctx = call.write_context()?;
    ctx.dry_run |= body_dry_run;
    let name = call.path.name.clone().unwrap_or_default();
    let generic = call.server.generic.clone();
    let result = generic
        .delete(&call.resource, call.namespace(), &name, &opts, &ctx)
        .await?;
    let info = &call.resource.info;
    Ok(match result {
        Deleted::Pending(obj) => response::json(StatusCode::OK, &obj),
        Deleted::Gone(obj) if info.returns_deleted_object => response::json(StatusCode::OK, &obj),
        Deleted::Gone(obj) => response::json(StatusCode::OK, &deleted_status(&call, &obj)),
    })
}

/// Serves `deletecollection`: every object the selectors match.
pub async fn delete_collection(mut call: Call) -> Result<Response, Status> {
    let (opts, body_dry_run) = delete_options(&mut call).await?;
    let mut ctx = call.write_context()?;
    ctx.dry_run |= body_dry_run;
    let generic = call.server.generic.clone();
    let mut list_opts = list_options(&generic, &call.resource, &call.query)?;
    list_opts.limit = 0;
    list_opts.continue_token = None;
    let page = generic
        .list(&call.resource, call.namespace(), &list_opts)
        .await?;
    let mut items = Vec::new();
    for obj in page.items {
        let ns = meta::namespace(&obj).to_string();
        let ns = (!ns.is_empty()).then_some(ns);
        match generic
            .delete(&call.resource, ns.as_deref(), meta::name(&obj), &opts, &ctx)
            .await
        {
            Ok(Deleted::Gone(o) | Deleted::Pending(o)) => items.push(o),
            Err(s) if s.code() == 404 => {}
            Err(s) => return Err(s),
        }
    }
    let info = &call.resource.info;
    Ok(response::json(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", info.kind),
            "apiVersion": info.api_version(),
            "metadata": {"resourceVersion": generic.store().revision().to_string()},
            "items": items,
        }),
    ))
}

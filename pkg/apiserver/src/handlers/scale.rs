//! The `/scale` subresource: an autoscaling/v1 Scale view of a workload's replicas.

use axum::response::Response;
use http::StatusCode;
use k1s_apimachinery::{FieldError, GroupKind, Path, Selector, Status};
use serde_json::{Value, json};

use super::create::object_body;
use super::negotiation::BodyType;
use super::patch::PATCH_MEDIA_TYPES;
use super::{Call, body, response};
use crate::meta::{self, get_path, set_path};
use crate::registry::strategy::SelectorForm;
use crate::registry::{ScaleSpec, Subresource};

fn spec_of(call: &Call) -> Result<ScaleSpec, Status> {
    call.resource.strategy.scale().ok_or_else(super::not_found)
}

/// The path's segments as `&str`s.
fn strs(p: &[String]) -> Vec<&str> {
    p.iter().map(String::as_str).collect()
}

/// The Scale object of a workload.
pub(crate) fn scale_of(obj: &Value, spec: &ScaleSpec) -> Value {
    let replicas = get_path(obj, &strs(&spec.spec_replicas))
        .and_then(Value::as_i64)
        .unwrap_or(spec.default_replicas);
    let status_replicas = get_path(obj, &strs(&spec.status_replicas))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let selector_value = spec.selector.as_ref().and_then(|p| get_path(obj, &strs(p)));
    let selector = match (selector_value, spec.selector_form) {
        (Some(sel), SelectorForm::Map) => {
            let mut pairs: Vec<String> = sel
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default();
            pairs.sort();
            pairs.join(",")
        }
        (Some(sel), SelectorForm::LabelSelector) => Selector::from_label_selector(sel)
            .map(|s| s.to_string())
            .unwrap_or_default(),
        (Some(sel), SelectorForm::String) => sel.as_str().unwrap_or("").to_string(),
        (None, _) => String::new(),
    };
    let m = meta::metadata(obj).cloned().unwrap_or_default();
    let mut metadata = serde_json::Map::new();
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(f) {
            metadata.insert(f.into(), v.clone());
        }
    }
    let mut status = json!({"replicas": status_replicas});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": replicas},
        "status": status,
    })
}

/// GET `/scale`.
pub async fn get(call: Call) -> Result<Response, Status> {
    let spec = spec_of(&call)?;
    let obj = call.server.generic.get(
        &call.resource,
        call.namespace(),
        call.path.name.as_deref().unwrap_or(""),
    )?;
    Ok(response::json(StatusCode::OK, &scale_of(&obj, &spec)))
}

/// Writes a desired Scale: its replicas go to the workload (with its resourceVersion as a
/// precondition when set).
async fn write_scale(call: &Call, desired: Value) -> Result<Response, Status> {
    let spec = spec_of(call)?;
    let name = call.path.name.clone().unwrap_or_default();
    let replicas = desired
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        return Err(Status::invalid(
            &GroupKind::new("autoscaling", "Scale"),
            &name,
            &[FieldError::invalid(
                &Path::new("spec").child("replicas"),
                json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    let rv = desired
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ctx = call.write_context()?;
    let written = call
        .server
        .generic
        .update(
            &call.resource,
            call.namespace(),
            &name,
            Some(Subresource::Scale),
            &ctx,
            |current, _| {
                let Some(current) = current else {
                    return Err(Status::not_found(
                        &call.resource.info.group_resource(),
                        &name,
                    ));
                };
                let mut obj = current.clone();
                set_path(&mut obj, &strs(&spec.spec_replicas), json!(replicas));
                meta::set_meta(
                    &mut obj,
                    "resourceVersion",
                    (!rv.is_empty()).then(|| json!(rv)),
                );
                Ok(obj)
            },
        )
        .await?;
    Ok(response::json(
        StatusCode::OK,
        &scale_of(&written.object, &spec),
    ))
}

/// PUT `/scale`.
pub async fn update(mut call: Call) -> Result<Response, Status> {
    let ctx = call.write_context()?;
    let mut warnings = Vec::new();
    let desired = object_body(&mut call, ctx.field_validation, &mut warnings).await?;
    write_scale(&call, desired).await
}

/// PATCH `/scale`: the patch applies to the Scale object.
pub async fn patch(call: Call) -> Result<Response, Status> {
    let spec = spec_of(&call)?;
    let ty = call
        .body_type()
        .map_err(|_| Status::unsupported_media_type(PATCH_MEDIA_TYPES))?;
    let bytes = body::read(call.take_body()).await?;
    let current = call.server.generic.get(
        &call.resource,
        call.namespace(),
        call.path.name.as_deref().unwrap_or(""),
    )?;
    let scale = scale_of(&current, &spec);
    let mut desired = match ty {
        BodyType::JsonPatch => crate::patch::apply_json_patch(&scale, &bytes)
            .map_err(|e| Status::bad_request(&e.to_string()))?,
        BodyType::MergePatch | BodyType::StrategicMergePatch | BodyType::ApplyPatch => {
            let p = body::parse_yaml(&bytes)?;
            crate::patch::apply_merge_patch(&scale, &p)
        }
        _ => return Err(Status::unsupported_media_type(PATCH_MEDIA_TYPES)),
    };
    // Without an explicit precondition the patch applies to whatever is current.
    if let Some(m) = desired.get_mut("metadata").and_then(Value::as_object_mut) {
        let patch_rv = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|p| p.pointer("/metadata/resourceVersion").cloned());
        if patch_rv.is_none() {
            m.remove("resourceVersion");
        }
    }
    write_scale(&call, desired).await
}

//! PATCH: JSON patch, merge patch, strategic merge patch and server-side apply, each
//! applied to the current object and then written through the update path.

use axum::response::Response;
use k1s_apimachinery::{GroupKind, Path, Status};
use serde_json::Value;

use super::negotiation::{BodyType, parse_accept, resource_output};
use super::{Call, body, response, write_code};
use crate::meta;
use crate::registry::generic::FieldValidation;
use crate::schema::model::Schema;

/// Media types PATCH accepts for built-in kinds.
pub const PATCH_MEDIA_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// Media types PATCH accepts for custom resources (no strategic merge patch).
pub const CUSTOM_PATCH_MEDIA_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

/// The parsed patch document.
enum PatchDoc {
    Json(Vec<u8>),
    Merge(Value),
    Strategic(Value),
    Apply(Value),
}

impl PatchDoc {
    /// Whether the patch itself sets a resourceVersion (which then is a precondition).
    fn sets_resource_version(&self) -> bool {
        match self {
            PatchDoc::Json(bytes) => serde_json::from_slice::<Value>(bytes)
                .ok()
                .and_then(|v| v.as_array().cloned())
                .is_some_and(|ops| {
                    ops.iter().any(|op| {
                        op.get("path").and_then(Value::as_str) == Some("/metadata/resourceVersion")
                    })
                }),
            PatchDoc::Merge(v) | PatchDoc::Strategic(v) | PatchDoc::Apply(v) => v
                .pointer("/metadata/resourceVersion")
                .is_some_and(|rv| !rv.is_null()),
        }
    }
}

/// Serves `patch` on an object or its `/status`.
pub async fn patch(call: Call) -> Result<Response, Status> {
    let output = resource_output(&parse_accept(call.header(http::header::ACCEPT)))?;
    let sub = call.subresource()?;
    let mut ctx = call.write_context()?;
    ctx.patch = true;
    let custom = call.server.is_custom(&call.resource);
    let accepted = if custom {
        CUSTOM_PATCH_MEDIA_TYPES
    } else {
        PATCH_MEDIA_TYPES
    };
    let ty = call
        .body_type()
        .map_err(|_| Status::unsupported_media_type(accepted))?;
    let bytes = body::read(call.take_body()).await?;
    let mut repeated_keys = Vec::new();
    let doc = match ty {
        BodyType::JsonPatch => PatchDoc::Json(bytes),
        BodyType::MergePatch => {
            PatchDoc::Merge(crate::patch::parse_merge_patch(&bytes).map_err(patch_error)?)
        }
        BodyType::StrategicMergePatch if !custom => PatchDoc::Strategic(
            crate::patch::parse_strategic_merge_patch(&bytes).map_err(patch_error)?,
        ),
        BodyType::ApplyPatch => {
            if ctx.field_validation != FieldValidation::Ignore {
                repeated_keys = body::yaml_duplicates(&bytes);
            }
            PatchDoc::Apply(body::parse_yaml(&bytes)?)
        }
        _ => return Err(Status::unsupported_media_type(accepted)),
    };
    if matches!(doc, PatchDoc::Apply(_))
        && call.query.get("fieldManager").is_none_or(|m| m.is_empty())
    {
        return Err(Status::invalid(
            &GroupKind::new("meta.k8s.io", "PatchOptions"),
            "",
            &[k1s_apimachinery::FieldError::required(
                &Path::new("fieldManager"),
                "is required for apply patch",
            )],
        ));
    }
    // Upstream decodes an apply configuration strictly too: a repeated key refuses a
    // Strict apply and warns otherwise, each with go-yaml's text.
    if !repeated_keys.is_empty() && ctx.field_validation == FieldValidation::Strict {
        return Err(Status::bad_request(&format!(
            "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  {}",
            repeated_keys.join("\n  ")
        )));
    }
    let generic = call.server.generic.clone();
    let res = call.resource.clone();
    let name = call.path.name.clone().unwrap_or_default();
    let ns = call.namespace().map(str::to_string);
    let keeps_rv = doc.sets_resource_version();
    ctx.applied = matches!(doc, PatchDoc::Apply(_));
    let info = res.info.clone();
    let snapshot = call.server.registry.snapshot();
    let defs = snapshot.definitions.clone();
    let schema = Schema::reference(info.definition.clone());

    // Server-side apply of a missing object creates it.
    if let PatchDoc::Apply(config) = &doc
        && sub.is_none()
        && generic.get(&res, ns.as_deref(), &name).is_err()
    {
        let mut warnings = repeated_keys.clone();
        let mut obj = crate::managed::apply_create(config, &ctx, &info, &schema, &defs)?;
        meta::set_meta(&mut obj, "name", Some(Value::String(name.clone())));
        let obj = generic.decode_request(&res, obj, ctx.field_validation, &mut warnings)?;
        match generic
            .create(&res, ns.as_deref(), obj, &ctx, warnings)
            .await
        {
            Ok(written) => {
                let printer = res.strategy.table(&info.group, &info.kind);
                let r = response::object(
                    write_code(true),
                    &written.object,
                    &output,
                    &printer,
                    "Metadata",
                );
                return Ok(response::with_warnings(r, &written.warnings));
            }
            Err(s) if s.code() == 409 && s.reason() == "AlreadyExists" => {}
            Err(s) => return Err(s),
        }
    }

    let written = generic
        .update(
            &res,
            ns.as_deref(),
            &name,
            sub,
            &ctx,
            |current, warnings| {
                let Some(current) = current else {
                    return Err(Status::not_found(&info.group_resource(), &name));
                };
                let mut patched = match &doc {
                    PatchDoc::Json(p) => {
                        crate::patch::apply_json_patch(current, p).map_err(patch_error)?
                    }
                    PatchDoc::Merge(p) => crate::patch::apply_merge_patch(current, p),
                    PatchDoc::Strategic(p) => {
                        crate::patch::apply_strategic_merge_patch(current, p, &schema, &defs)
                            .map_err(patch_error)?
                    }
                    PatchDoc::Apply(config) => crate::managed::apply_patch(
                        current, config, &ctx, &info, sub, &schema, &defs,
                    )?,
                };
                if !keeps_rv {
                    meta::set_meta(&mut patched, "resourceVersion", None);
                }
                generic.decode_request(&res, patched, ctx.field_validation, warnings)
            },
        )
        .await?;
    let printer = res.strategy.table(&info.group, &info.kind);
    let r = response::object(
        write_code(written.created),
        &written.object,
        &output,
        &printer,
        "Metadata",
    );
    let mut warnings = repeated_keys;
    warnings.extend(written.warnings);
    Ok(response::with_warnings(r, &warnings))
}

fn patch_error(e: crate::patch::PatchError) -> Status {
    let code = e.http_status();
    let mut s = Status::generic(code, e.reason(), &e.message());
    if code == 422 {
        s.details = Some(Default::default());
    }
    s
}

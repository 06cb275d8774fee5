//! `metadata.managedFields` bookkeeping for every write, and server-side apply, over the
//! [`crate::apply`] field manager.

use k1s_apimachinery::Status;
use k1s_apimachinery::status::{StatusCause, StatusDetails};
use serde_json::Value;

use crate::apply::{self, ApplyContext, ApplyError, FieldSet, PathElement};
use crate::meta;
use crate::registry::generic::WriteContext;
use crate::registry::{ResourceInfo, Subresource};
use crate::schema::model::{Definitions, Schema};

/// The fields a write through `sub` may not change (upstream's reset fields): `status`
/// through the main resource, everything but `status` (and metadata) through `/status`.
fn reset_fields(info: &ResourceInfo, sub: Option<Subresource>, obj: &Value) -> FieldSet {
    match sub {
        None if info.has_subresource(Subresource::Status) => {
            FieldSet::from_paths([vec![PathElement::field("status")]])
        }
        Some(Subresource::Status) => FieldSet::from_paths(
            obj.as_object()
                .map(|o| {
                    o.keys()
                        .filter(|k| {
                            !matches!(k.as_str(), "status" | "metadata" | "apiVersion" | "kind")
                        })
                        .map(|k| vec![PathElement::field(k.clone())])
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        ),
        _ => FieldSet::new(),
    }
}

fn context<'a>(
    schema: &'a Schema,
    defs: &'a Definitions,
    info: &'a ResourceInfo,
    sub: Option<Subresource>,
    obj: &Value,
) -> ApplyContext<'a> {
    let mut ctx = ApplyContext::new(schema, defs, "", meta::now_rfc3339());
    ctx.reset_fields = reset_fields(info, sub, obj);
    ctx.subresource = sub.map(Subresource::as_str);
    ctx
}

/// Records the fields `ctx.field_manager` changed from `old` to `obj` as its Update entry
/// (a create when `old` is `None`). Server-side apply writes skip this: apply already
/// recorded its fields.
///
/// The field manager compares the objects without their managedFields: these are taken
/// out of both for the comparison and put back (`old`'s as they were), rather than the
/// objects being copied.
pub fn track_update(
    obj: &mut Value,
    mut old: Option<&mut Value>,
    ctx: &WriteContext,
    info: &ResourceInfo,
    sub: Option<Subresource>,
    defs: &Definitions,
) {
    if ctx.applied {
        return;
    }
    let schema = Schema::reference(info.definition.clone());
    let api_version = info.api_version();
    let mut actx = context(&schema, defs, info, sub, obj);
    actx.api_version = &api_version;
    let managed = apply::managed_fields_for_update(old.as_deref(), obj, sub.is_some());
    let old_taken = old.as_deref_mut().and_then(take_managed_fields);
    let new_taken = take_managed_fields(obj);
    let entries = apply::update_unmanaged(old.as_deref(), obj, &ctx.field_manager, managed, &actx);
    if let (Some(old), Some(taken)) = (old, old_taken) {
        put_managed_fields(old, taken);
    }
    match new_taken {
        // Where the request had them, as `set_managed_fields` would leave them.
        Some((at, _)) if !entries.is_empty() => {
            put_managed_fields(obj, (at, apply::encode_managed_fields(&entries)));
        }
        _ => apply::set_managed_fields(obj, &entries),
    }
}

/// Takes `metadata.managedFields` out of an object: its place among the metadata keys
/// and its value.
fn take_managed_fields(obj: &mut Value) -> Option<(usize, Value)> {
    let meta = obj.get_mut("metadata")?.as_object_mut()?;
    let at = meta.keys().position(|k| k == "managedFields")?;
    let value = meta.shift_remove("managedFields")?;
    Some((at, value))
}

/// Puts managedFields back where [`take_managed_fields`] took them from.
fn put_managed_fields(obj: &mut Value, (at, value): (usize, Value)) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.shift_insert(at.min(meta.len()), "managedFields".into(), value);
    }
}

/// Keeps managedFields as they are for a system write (deletion bookkeeping).
pub fn touch(_obj: &mut Value) {}

fn apply_error(info: &ResourceInfo, name: &str, e: ApplyError) -> Status {
    let mut s = Status::generic(e.code(), e.reason(), &e.to_string());
    let causes: Vec<StatusCause> = e
        .causes()
        .into_iter()
        .map(|c| StatusCause {
            reason: c.reason,
            message: c.message,
            field: c.field,
        })
        .collect();
    if e.code() == 409 || !causes.is_empty() {
        s.details = Some(StatusDetails {
            name: name.to_string(),
            group: info.group.clone(),
            kind: info.plural.clone(),
            causes,
            ..StatusDetails::default()
        });
    }
    s
}

/// The object a server-side apply of `config` creates.
pub fn apply_create(
    config: &Value,
    ctx: &WriteContext,
    info: &ResourceInfo,
    schema: &Schema,
    defs: &Definitions,
) -> Result<Value, Status> {
    let api_version = info.api_version();
    let mut actx = context(schema, defs, info, None, config);
    actx.api_version = &api_version;
    actx.kind = Some(&info.kind);
    let name = meta::name(config).to_string();
    let (obj, _) = apply::apply(None, config, &ctx.field_manager, ctx.force, &[], &actx)
        .map_err(|e| apply_error(info, &name, e))?;
    Ok(obj)
}

/// The object after a server-side apply of `config` over `current`.
pub fn apply_patch(
    current: &Value,
    config: &Value,
    ctx: &WriteContext,
    info: &ResourceInfo,
    sub: Option<Subresource>,
    schema: &Schema,
    defs: &Definitions,
) -> Result<Value, Status> {
    let api_version = info.api_version();
    let mut actx = context(schema, defs, info, sub, current);
    actx.api_version = &api_version;
    actx.kind = Some(&info.kind);
    let managed = current
        .pointer("/metadata/managedFields")
        .and_then(|m| apply::decode_managed_fields(m).ok())
        .unwrap_or_default();
    let name = meta::name(current).to_string();
    let (obj, _) = apply::apply(
        Some(current),
        config,
        &ctx.field_manager,
        ctx.force,
        &managed,
        &actx,
    )
    .map_err(|e| apply_error(info, &name, e))?;
    Ok(obj)
}

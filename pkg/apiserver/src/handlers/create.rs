//! POST to a collection.

use axum::response::Response;
use k1s_apimachinery::Status;

use super::negotiation::{BodyType, parse_accept, resource_output};
use super::{Call, body, response, write_code};
use crate::registry::generic::FieldValidation;

/// Media types a create or update accepts.
pub const OBJECT_MEDIA_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

/// Media types a create or update of a custom resource accepts (no protobuf, as upstream).
pub const CUSTOM_OBJECT_MEDIA_TYPES: &[&str] = &["application/json", "application/yaml"];

/// Type-checks the body of a subresource POST whose kind is not the resource's own
/// (TokenRequest, Eviction) against its definition, as upstream's typed decoding does:
/// 400 `<Kind> in version "<v>" cannot be handled as a <Kind>: json: cannot unmarshal …`.
pub(crate) fn decode_typed(
    obj: &mut serde_json::Value,
    definition: &str,
    kind: &str,
    version: &str,
) -> Result<(), Status> {
    crate::schema::decode::decode(
        obj,
        &crate::schema::model::Schema::reference(definition),
        crate::openapi::request_definitions(),
    )
    .map(|_| ())
    .map_err(|e| {
        Status::bad_request(&format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {}",
            e.message
        ))
    })
}

/// Reads and parses an object body (JSON, YAML, or protobuf for built-in kinds). Keys
/// repeated in a JSON body are refused (`Strict`) or warned about (`Warn`), as upstream's
/// strict decoder does.
pub async fn object_body(
    call: &mut Call,
    validation: FieldValidation,
    warnings: &mut Vec<String>,
) -> Result<serde_json::Value, Status> {
    let custom = call.server.is_custom(&call.resource);
    let accepted = if custom {
        CUSTOM_OBJECT_MEDIA_TYPES
    } else {
        OBJECT_MEDIA_TYPES
    };
    let ty = call
        .body_type()
        .map_err(|_| Status::unsupported_media_type(accepted))?;
    match ty {
        BodyType::Json | BodyType::Yaml => {}
        BodyType::Protobuf if !custom => {}
        _ => return Err(Status::unsupported_media_type(accepted)),
    }
    let bytes = body::read(call.take_body()).await?;
    let value = body::parse_object(&bytes, ty, &call.resource.info.kind)?;
    if ty == BodyType::Json && validation != FieldValidation::Ignore {
        let duplicates: Vec<String> = body::duplicate_fields(&bytes)
            .iter()
            .map(|f| format!("duplicate field \"{f}\""))
            .collect();
        if validation == FieldValidation::Strict && !duplicates.is_empty() {
            let info = &call.resource.info;
            return Err(Status::bad_request(&format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                info.kind,
                info.version,
                info.kind,
                duplicates.join(", ")
            )));
        }
        warnings.extend(duplicates);
    }
    Ok(value)
}

/// Serves `create`.
pub async fn create(mut call: Call) -> Result<Response, Status> {
    let output = resource_output(&parse_accept(call.header(http::header::ACCEPT)))?;
    let ctx = call.write_context()?;
    let mut warnings = Vec::new();
    let obj = object_body(&mut call, ctx.field_validation, &mut warnings).await?;
    let generic = &call.server.generic;
    let obj = generic.decode_request(&call.resource, obj, ctx.field_validation, &mut warnings)?;
    let written = generic
        .create(&call.resource, call.namespace(), obj, &ctx, warnings)
        .await?;
    let info = &call.resource.info;
    let printer = call.resource.strategy.table(&info.group, &info.kind);
    let r = response::object(
        write_code(written.created),
        &written.object,
        &output,
        &printer,
        "Metadata",
    );
    Ok(response::with_warnings(r, &written.warnings))
}

//! PUT of an object or its `/status`.

use axum::response::Response;
use k1s_apimachinery::Status;

use super::create::object_body_deferred;
use super::negotiation::{parse_accept, resource_output};
use super::{Call, response, write_code};

/// Serves `update`.
pub async fn update(mut call: Call) -> Result<Response, Status> {
    let output = resource_output(&parse_accept(call.header(http::header::ACCEPT)))?;
    let sub = call.subresource()?;
    let ctx = call.write_context()?;
    let mut decode_warnings = Vec::new();
    let (raw, duplicates) =
        object_body_deferred(&mut call, ctx.field_validation, &mut decode_warnings).await?;
    let generic = call.server.generic.clone();
    let res = call.resource.clone();
    let name = call.path.name.clone().unwrap_or_default();
    let obj = generic.decode_request_with(
        &res,
        raw,
        ctx.field_validation,
        &mut decode_warnings,
        duplicates,
    )?;
    let written = generic
        .update(&res, call.namespace(), &name, sub, &ctx, |_current, _w| {
            Ok(obj.clone())
        })
        .await?;
    let info = &res.info;
    let printer = res.strategy.table(&info.group, &info.kind);
    let r = response::object(
        write_code(written.created),
        &written.object,
        &output,
        &printer,
        "Metadata",
    );
    let mut warnings = decode_warnings;
    warnings.extend(written.warnings);
    Ok(response::with_warnings(r, &warnings))
}

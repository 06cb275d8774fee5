//! GET of one object (or its `/status`).

use axum::response::Response;
use http::StatusCode;
use k1s_apimachinery::Status;

use super::negotiation::{parse_accept, resource_output};
use super::{Call, response};
use crate::registry::generic::parse_resource_version;

/// Serves `get`.
pub async fn get(call: Call) -> Result<Response, Status> {
    let output = resource_output(&parse_accept(call.header(http::header::ACCEPT)))?;
    call.subresource()?;
    let generic = &call.server.generic;
    if let Some(rv) = call
        .query
        .get("resourceVersion")
        .filter(|rv| !rv.is_empty() && *rv != "0")
    {
        generic
            .wait_for_revision(parse_resource_version(rv)?)
            .await?;
    }
    let name = call.path.name.as_deref().unwrap_or("");
    let obj = generic.get(&call.resource, call.namespace(), name)?;
    let info = &call.resource.info;
    let printer = call.resource.strategy.table(&info.group, &info.kind);
    let include = call
        .query
        .get("includeObject")
        .map(String::as_str)
        .unwrap_or("Metadata");
    Ok(response::object(
        StatusCode::OK,
        &obj,
        &output,
        &printer,
        include,
    ))
}

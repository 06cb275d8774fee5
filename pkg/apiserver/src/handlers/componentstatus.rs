//! `componentstatuses` (deprecated upstream, still read by `kubectl get cs` and client
//! tests): nothing stored, each read probes the components. k1s runs the scheduler and
//! the controller-manager in process, so their health is that of those tasks; the
//! datastore is reported as `etcd-0`, as upstream names its etcd server.

use axum::response::Response;
use http::StatusCode;
use k1s_apimachinery::Status;
use serde_json::{Map, Value, json};

use super::negotiation::{Output, parse_accept, resource_output};
use super::{Call, response};
use crate::ApiServer;

/// One ComponentStatus as upstream's REST storage builds it.
fn status_object(name: &str, health: &Result<(), String>) -> Value {
    let condition = match health {
        Ok(()) => json!({"type": "Healthy", "status": "True", "message": "ok"}),
        Err(e) => json!({"type": "Healthy", "status": "False", "message": e, "error": e}),
    };
    json!({
        "kind": "ComponentStatus",
        "apiVersion": "v1",
        "metadata": {"name": name, "creationTimestamp": null},
        "conditions": [condition],
    })
}

/// Every component with its health, in upstream's order.
pub fn statuses(server: &ApiServer) -> Vec<Value> {
    server
        .component_health()
        .iter()
        .map(|(name, health)| status_object(name, health))
        .collect()
}

fn include(call: &Call) -> &str {
    call.query
        .get("includeObject")
        .map(String::as_str)
        .unwrap_or("Metadata")
}

/// `GET /api/v1/componentstatuses`.
pub async fn list(call: Call) -> Result<Response, Status> {
    let output = resource_output(&parse_accept(call.header(http::header::ACCEPT)))?;
    let items = statuses(&call.server);
    let info = &call.resource.info;
    let body = match output {
        Output::Table => call.resource.strategy.table(&info.group, &info.kind).table(
            &items,
            include(&call),
            Map::new(),
            true,
        ),
        Output::PartialMetadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {},
            "items": items.iter().map(crate::registry::table::partial_metadata).collect::<Vec<_>>(),
        }),
        Output::Json | Output::Yaml => json!({
            "kind": "ComponentStatusList",
            "apiVersion": "v1",
            "metadata": {},
            "items": items,
        }),
    };
    Ok(match output {
        Output::Yaml => {
            response::bytes_response(StatusCode::OK, "application/yaml", response::to_yaml(&body))
        }
        _ => response::json(StatusCode::OK, &body),
    })
}

/// `GET /api/v1/componentstatuses/<name>`.
pub async fn get(call: Call) -> Result<Response, Status> {
    let output = resource_output(&parse_accept(call.header(http::header::ACCEPT)))?;
    let name = call.path.name.as_deref().unwrap_or("");
    let obj = statuses(&call.server)
        .into_iter()
        .find(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
        .ok_or_else(|| Status::not_found(&call.resource.info.group_resource(), name))?;
    let info = &call.resource.info;
    let printer = call.resource.strategy.table(&info.group, &info.kind);
    Ok(response::object(
        StatusCode::OK,
        &obj,
        &output,
        &printer,
        include(&call),
    ))
}

//! Building HTTP responses: Status errors, objects in the negotiated form, warnings.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use k1s_apimachinery::Status;
use serde_json::{Map, Value, json};

use super::negotiation::Output;
use crate::registry::table::{TablePrinter, partial_metadata};

/// A JSON response.
pub fn json(code: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    bytes_response(code, "application/json", bytes)
}

/// A response with a body of the given type.
pub fn bytes_response(code: StatusCode, content_type: &str, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// A Status error (or success) as its HTTP response.
pub fn status(s: &Status) -> Response {
    let code = StatusCode::from_u16(s.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_value(s).unwrap_or_else(|_| json!({}));
    json(code, &body)
}

/// Adds `Warning: 299 - "..."` headers, as upstream sends them.
pub fn with_warnings(mut r: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}

/// Serializes to YAML the way kubectl's `-o yaml` would read it back.
pub fn to_yaml(v: &Value) -> Vec<u8> {
    serde_saphyr::to_string(v)
        .map(String::into_bytes)
        .unwrap_or_default()
}

/// One object in the negotiated representation.
pub fn object(
    code: StatusCode,
    obj: &Value,
    output: &Output,
    printer: &TablePrinter,
    include: &str,
) -> Response {
    match output {
        Output::Json => json(code, obj),
        Output::Yaml => bytes_response(code, "application/yaml", to_yaml(obj)),
        Output::PartialMetadata => json(code, &partial_metadata(obj)),
        Output::Table => {
            let mut meta = Map::new();
            if let Some(rv) = obj.pointer("/metadata/resourceVersion") {
                meta.insert("resourceVersion".into(), rv.clone());
            }
            json(
                code,
                &printer.table(std::slice::from_ref(obj), include, meta, true),
            )
        }
    }
}

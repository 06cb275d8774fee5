//! Reading request bodies: size limit, then JSON, YAML or Kubernetes protobuf into a JSON
//! value.

use axum::body::Body;
use http_body_util::BodyExt;
use k1s_apimachinery::Status;
use serde_json::Value;

use super::negotiation::BodyType;

/// Upstream's limit on request bodies.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`].
pub async fn read(body: Body) -> Result<Vec<u8>, Status> {
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes().to_vec()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Status::request_entity_too_large(&format!(
                "limit is {MAX_BODY_BYTES}"
            )))
        }
        Err(e) => Err(Status::bad_request(&format!(
            "error reading request body: {e}"
        ))),
    }
}

/// Parses a JSON, YAML or protobuf document into a value.
pub fn parse(bytes: &[u8], ty: BodyType) -> Result<Value, Status> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Status::bad_request("Object 'Kind' is missing in ''"));
    }
    match ty {
        BodyType::Yaml | BodyType::ApplyPatch => parse_yaml(bytes),
        BodyType::Protobuf => parse_protobuf(bytes),
        _ => serde_json::from_slice(bytes).map_err(|e| {
            Status::bad_request(&format!("couldn't get version/kind; json parse error: {e}"))
        }),
    }
}

/// Parses YAML (JSON is YAML too) into a value.
pub fn parse_yaml(bytes: &[u8]) -> Result<Value, Status> {
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return Ok(v);
    }
    serde_saphyr::from_slice::<Value>(bytes)
        .map_err(|e| Status::bad_request(&format!("error converting YAML to JSON: yaml: {e}")))
}

/// Decodes a Kubernetes protobuf document of a built-in kind into its JSON value, which
/// then takes the same path as a JSON body.
pub fn parse_protobuf(bytes: &[u8]) -> Result<Value, Status> {
    crate::schema::protobuf::decode_object(bytes).map_err(|e| Status::bad_request(&e.to_string()))
}

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
    let (value, duplicates) = object_body_deferred(call, validation, warnings).await?;
    if !duplicates.is_empty() {
        let info = &call.resource.info;
        return Err(Status::bad_request(&format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
            info.kind,
            info.version,
            info.kind,
            duplicates.join(", ")
        )));
    }
    Ok(value)
}

/// [`object_body`] that hands a `Strict` request's repeated keys back instead of
/// refusing it at once: the decoding then reports them with the unknown fields in one
/// message, as upstream's strict decoder does.
pub async fn object_body_deferred(
    call: &mut Call,
    validation: FieldValidation,
    warnings: &mut Vec<String>,
) -> Result<(serde_json::Value, Vec<String>), Status> {
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
    if validation == FieldValidation::Ignore {
        return Ok((value, Vec::new()));
    }
    let duplicates: Vec<String> = match ty {
        BodyType::Json => body::duplicate_fields(&bytes)
            .iter()
            .map(|f| format!("duplicate field \"{f}\""))
            .collect(),
        // go-yaml's strict decoding names a YAML body's repeated keys by line.
        BodyType::Yaml => {
            let keys = body::yaml_duplicates(&bytes);
            if keys.is_empty() || validation != FieldValidation::Strict {
                keys
            } else {
                vec![format!(
                    "error converting YAML to JSON: yaml: unmarshal errors:\n  {}",
                    keys.join("\n  ")
                )]
            }
        }
        _ => Vec::new(),
    };
    if validation == FieldValidation::Strict {
        return Ok((value, duplicates));
    }
    warnings.extend(duplicates);
    Ok((value, Vec::new()))
}

/// Serves `create`.
pub async fn create(mut call: Call) -> Result<Response, Status> {
    let output = resource_output(&parse_accept(call.header(http::header::ACCEPT)))?;
    let ctx = call.write_context()?;
    let mut warnings = Vec::new();
    let (obj, duplicates) =
        object_body_deferred(&mut call, ctx.field_validation, &mut warnings).await?;
    let generic = &call.server.generic;
    let obj = generic.decode_request_with(
        &call.resource,
        obj,
        ctx.field_validation,
        &mut warnings,
        duplicates,
    )?;
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

#[cfg(test)]
mod tests {
    use crate::test_util::TestApiServer;

    const DEPLOYMENT: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},
        "spec":{"unknownField":"foo","replicas":2,"replicas":3,"selector":{"matchLabels":{"app":"a"}},
        "template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}"#;

    #[tokio::test]
    async fn strict_decoding_reports_unknown_and_duplicate_fields_in_one_message() {
        let t = TestApiServer::new().await;
        let api = t.api();
        let path = "/apis/apps/v1/namespaces/default/deployments?fieldValidation=Strict";
        let (code, body) = api
            .call_raw("POST", path, "application/json", DEPLOYMENT.into())
            .await;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(code, 400, "{v}");
        assert_eq!(
            v["message"],
            "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.unknownField\", duplicate field \"spec.replicas\""
        );
        // A YAML body names its repeated keys as go-yaml does.
        let yaml =
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yml\ndata:\n  a: '1'\n  a: '2'\n";
        let (code, body) = api
            .call_raw(
                "POST",
                "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
                "application/yaml",
                yaml.into(),
            )
            .await;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(code, 400, "{v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .ends_with("strict decoding error: error converting YAML to JSON: yaml: unmarshal errors:\n  line 7: key \"a\" already set in map"),
            "{v}"
        );
        // Warn (the default) keeps the last value.
        let (code, body) = api
            .call_raw(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                "application/yaml",
                yaml.into(),
            )
            .await;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (code, &v["data"]["a"]),
            (201, &serde_json::json!("2")),
            "{v}"
        );
    }

    #[tokio::test]
    async fn a_strict_apply_refuses_repeated_yaml_keys_by_line() {
        let t = TestApiServer::new().await;
        let api = t.api();
        let yaml =
            "\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ap\ndata:\n  foo: a\n  foo: b\n";
        let (code, body) = api
            .call_raw(
                "PATCH",
                "/api/v1/namespaces/default/configmaps/ap?fieldManager=m&fieldValidation=Strict",
                "application/apply-patch+yaml",
                yaml.into(),
            )
            .await;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(code, 400, "{v}");
        assert_eq!(
            v["message"],
            "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 8: key \"foo\" already set in map"
        );
        let (code, body) = api
            .call_raw(
                "PATCH",
                "/api/v1/namespaces/default/configmaps/ap?fieldManager=m",
                "application/apply-patch+yaml",
                yaml.into(),
            )
            .await;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (code, &v["data"]["foo"]),
            (201, &serde_json::json!("b")),
            "{v}"
        );
    }
}

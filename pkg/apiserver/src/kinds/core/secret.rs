//! Secrets: `stringData` folds into `data`; type defaults to Opaque and is immutable; the
//! built-in types require their keys (upstream's `ValidateSecret`/`ValidateSecretUpdate`).

use base64::Engine;
use k1s_apimachinery::meta::FIELD_IMMUTABLE_ERROR_MSG;
use k1s_apimachinery::validation::is_config_map_key;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::configmap::{MAX_DATA_BYTES, decoded_len, validate_immutable_data};
use crate::kinds::validation::Fields;
use crate::registry::Strategy;

/// The Secret strategy.
pub struct SecretStrategy;

/// The annotation a service account token Secret must name its account in.
const SERVICE_ACCOUNT_NAME_KEY: &str = "kubernetes.io/service-account.name";

/// The bytes of `data[key]`, when present.
fn data_bytes(obj: &Value, key: &str) -> Option<Vec<u8>> {
    let encoded = obj.f("data").get(key)?.as_str().unwrap_or("");
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_default(),
    )
}

/// What Go's `json.Unmarshal` into a `map[string]interface{}` says about `bytes`, if it
/// fails. Go's syntax errors are worded differently from serde's; the type mismatch ones
/// are reproduced.
fn docker_config_error(bytes: &[u8]) -> Option<String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Some("unexpected end of JSON input".into());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Err(e) => Some(e.to_string()),
        Ok(Value::Object(_) | Value::Null) => None,
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            };
            Some(format!(
                "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            ))
        }
    }
}

fn validate(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let data = Path::new("data");
    let mut total = 0usize;
    if let Some(map) = obj.m("data") {
        for (k, v) in map {
            for msg in is_config_map_key(k) {
                errs.push(FieldError::invalid(&data.key(k), k.as_str(), msg));
            }
            total += v.as_str().map_or(0, decoded_len);
        }
    }
    if total > MAX_DATA_BYTES {
        errs.push(FieldError::too_long(&data, "", MAX_DATA_BYTES as i64));
    }
    let has = |k: &str| obj.f("data").get(k).is_some();
    match obj.s("type") {
        "kubernetes.io/service-account-token" => {
            let name = obj
                .f("metadata")
                .f("annotations")
                .s(SERVICE_ACCOUNT_NAME_KEY);
            if name.is_empty() {
                errs.push(FieldError::required(
                    &Path::new("metadata")
                        .child("annotations")
                        .key(SERVICE_ACCOUNT_NAME_KEY),
                    "",
                ));
            }
        }
        ty @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let key = if ty == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match data_bytes(obj, key) {
                None => errs.push(FieldError::required(&data.key(key), "")),
                Some(bytes) => {
                    if let Some(e) = docker_config_error(&bytes) {
                        errs.push(FieldError::invalid(
                            &data.key(key),
                            "<secret contents redacted>",
                            e,
                        ));
                    }
                }
            }
        }
        // Either may be empty, but one must be there.
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(FieldError::required(&data.key("username"), ""));
            errs.push(FieldError::required(&data.key("password"), ""));
        }
        "kubernetes.io/ssh-auth"
            if data_bytes(obj, "ssh-privatekey").is_none_or(|b| b.is_empty()) =>
        {
            errs.push(FieldError::required(&data.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !has(key) {
                    errs.push(FieldError::required(&data.key(key), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

impl Strategy for SecretStrategy {
    fn default(&self, obj: &mut Value) {
        if obj
            .get("type")
            .is_none_or(|t| t.as_str().is_none_or(str::is_empty))
        {
            obj["type"] = json!("Opaque");
        }
        // stringData is write-only: merged into data, base64-encoded, winning over data.
        if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|o| o.remove("stringData")) {
            if !obj.get("data").is_some_and(Value::is_object) {
                obj["data"] = json!({});
            }
            for (k, v) in sd {
                let text = v.as_str().unwrap_or("").to_string();
                obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
            }
        }
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = ErrorList::new();
        if new.s("type") != old.s("type") {
            errs.push(FieldError::invalid(
                &Path::new("type"),
                new.s("type"),
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        // stringData was folded into data already, so only data is compared.
        errs.extend(validate_immutable_data(new, old, &["data"]));
        errs.extend(validate(new));
        errs
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![("type", obj.s("type").to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn string_data_is_encoded_into_data_and_type_defaults() {
        let mut s = json!({"stringData": {"user": "admin"}, "data": {"x": "eA=="}});
        SecretStrategy.default(&mut s);
        assert_eq!(s["data"]["user"], json!("YWRtaW4="));
        assert_eq!(s["data"]["x"], json!("eA=="));
        assert_eq!(s["type"], json!("Opaque"));
        assert!(s.get("stringData").is_none());
    }

    #[test]
    fn every_built_in_type_accepts_its_usual_shape() {
        let docker = b64(r#"{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNz"}}}"#);
        for secret in [
            json!({"type": "Opaque", "data": {"password": b64("s3cr3t")}}),
            json!({"type": "kubernetes.io/service-account-token",
                "metadata": {"annotations": {SERVICE_ACCOUNT_NAME_KEY: "default"}}}),
            json!({"type": "kubernetes.io/dockercfg", "data": {".dockercfg": b64("{}")}}),
            json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": docker}}),
            json!({"type": "kubernetes.io/basic-auth", "data": {"username": b64("admin")}}),
            json!({"type": "kubernetes.io/ssh-auth", "data": {"ssh-privatekey": b64("KEY")}}),
            json!({"type": "kubernetes.io/tls", "data": {"tls.crt": b64("C"), "tls.key": b64("K")}}),
            json!({"type": "bootstrap.kubernetes.io/token", "data": {"token-id": b64("abcdef")}}),
            json!({"type": "helm.sh/release.v1", "data": {"release": b64("H4sI")}}),
        ] {
            assert!(
                validate(&secret).is_empty(),
                "{secret}: {:?}",
                validate(&secret)
            );
        }
    }

    #[test]
    fn built_in_types_require_their_keys() {
        let t = texts(validate(
            &json!({"type": "kubernetes.io/tls", "data": {"tls.crt": b64("C")}}),
        ));
        assert_eq!(t, vec!["data[tls.key]: Required value"]);
        let t = texts(validate(&json!({"type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": b64("[1]")}})));
        assert_eq!(
            t,
            vec![
                "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": json: cannot unmarshal array into Go value of type map[string]interface {}"
            ]
        );
        let t = texts(validate(&json!({"type": "kubernetes.io/basic-auth"})));
        assert_eq!(
            t,
            vec![
                "data[username]: Required value",
                "data[password]: Required value"
            ]
        );
        let t = texts(validate(
            &json!({"type": "kubernetes.io/service-account-token"}),
        ));
        assert_eq!(
            t,
            vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
        );
    }

    #[test]
    fn type_and_immutable_data_are_frozen() {
        let old = json!({"type": "Opaque", "data": {"a": "eA=="}, "immutable": true});
        let new = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA==", "tls.key": "eA=="}, "immutable": true});
        let t = texts(SecretStrategy.validate_update(&new, &old));
        assert_eq!(
            t,
            vec![
                "type: Invalid value: \"kubernetes.io/tls\": field is immutable",
                "data: Forbidden: field is immutable when `immutable` is set",
            ]
        );
    }
}

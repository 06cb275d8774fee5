//! Secrets: `stringData` folds into `data`; type defaults to Opaque and is immutable.

use base64::Engine;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::configmap::validate_data_keys;
use crate::registry::Strategy;

/// The Secret strategy.
pub struct SecretStrategy;

impl Strategy for SecretStrategy {
    fn default(&self, obj: &mut Value) {
        if obj
            .get("type")
            .is_none_or(|t| t.as_str().is_none_or(str::is_empty))
        {
            obj["type"] = json!("Opaque");
        }
        // stringData is write-only: merged into data, base64-encoded.
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
        let mut errs = validate_data_keys(obj, &["data"], "Secret");
        let ty = obj.get("type").and_then(Value::as_str).unwrap_or("");
        let data = obj.get("data").and_then(Value::as_object);
        let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
        let required: &[&str] = match ty {
            "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
            "kubernetes.io/dockercfg" => &[".dockercfg"],
            "kubernetes.io/basic-auth" => &[],
            "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
            "kubernetes.io/tls" => &["tls.crt", "tls.key"],
            _ => &[],
        };
        for k in required {
            if !has(k) {
                errs.push(FieldError::required(&Path::new("data").key(k), ""));
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        if new.get("type") != old.get("type") {
            errs.push(FieldError::invalid(
                &Path::new("type"),
                new.get("type").cloned().unwrap_or(json!("")),
                "field is immutable",
            ));
        }
        if old.get("immutable").and_then(Value::as_bool) == Some(true)
            && (new.get("data") != old.get("data"))
        {
            errs.push(FieldError::forbidden(
                &Path::new("data"),
                "field is immutable when `immutable` is set",
            ));
        }
        errs
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![(
            "type",
            obj.get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_data_is_encoded_into_data_and_type_defaults() {
        let mut s = json!({"stringData": {"user": "admin"}, "data": {"x": "eA=="}});
        SecretStrategy.default(&mut s);
        assert_eq!(s["data"]["user"], json!("YWRtaW4="));
        assert_eq!(s["data"]["x"], json!("eA=="));
        assert_eq!(s["type"], json!("Opaque"));
        assert!(s.get("stringData").is_none());
    }
}

//! ConfigMaps: upstream's `ValidateConfigMap` and `ValidateConfigMapUpdate` (keys, the
//! 1 MiB total, and `immutable: true` freezing the data).

use base64::Engine;
use k1s_apimachinery::validation::is_config_map_key;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::validation::{Fields, semantic_eq};
use crate::registry::Strategy;

/// The ConfigMap strategy.
pub struct ConfigMapStrategy;

/// Upstream's limit on the total size of a ConfigMap's or Secret's data (`MaxSecretSize`).
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

/// The message of every change refused because `immutable` was set.
pub const IMMUTABLE_SET_MSG: &str = "field is immutable when `immutable` is set";

/// The length of the bytes a base64 `[]byte` field carries (what upstream measures).
pub fn decoded_len(encoded: &str) -> usize {
    match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(bytes) => bytes.len(),
        // The decoder refuses bad base64 before this; estimate anyway.
        Err(_) => encoded.len() / 4 * 3,
    }
}

/// `Forbidden` errors for `immutable: true` objects whose `fields` or `immutable` flag
/// changed (shared by ConfigMaps and Secrets).
pub fn validate_immutable_data(new: &Value, old: &Value, fields: &[&str]) -> ErrorList {
    let mut errs = ErrorList::new();
    if !old.b("immutable") {
        return errs;
    }
    if !new.b("immutable") {
        errs.push(FieldError::forbidden(
            &Path::new("immutable"),
            IMMUTABLE_SET_MSG,
        ));
    }
    for field in fields {
        if !semantic_eq(new.f(field), old.f(field)) {
            errs.push(FieldError::forbidden(&Path::new(field), IMMUTABLE_SET_MSG));
        }
    }
    errs
}

fn validate(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut total = 0usize;
    let binary = obj.m("binaryData");
    if let Some(data) = obj.m("data") {
        for (k, v) in data {
            let p = Path::new("data").key(k);
            for msg in is_config_map_key(k) {
                errs.push(FieldError::invalid(&p, k.as_str(), msg));
            }
            if binary.is_some_and(|b| b.contains_key(k)) {
                errs.push(FieldError::invalid(
                    &p,
                    k.as_str(),
                    "duplicate of key present in binaryData",
                ));
            }
            total += v.as_str().map_or(0, str::len);
        }
    }
    if let Some(binary) = binary {
        for (k, v) in binary {
            let p = Path::new("binaryData").key(k);
            for msg in is_config_map_key(k) {
                errs.push(FieldError::invalid(&p, k.as_str(), msg));
            }
            total += v.as_str().map_or(0, decoded_len);
        }
    }
    if total > MAX_DATA_BYTES {
        // Upstream names the whole object with an empty path (printed `[]`).
        errs.push(FieldError::too_long(
            &Path::new(""),
            "",
            MAX_DATA_BYTES as i64,
        ));
    }
    errs
}

impl Strategy for ConfigMapStrategy {
    fn validate(&self, obj: &Value) -> ErrorList {
        validate(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = validate_immutable_data(new, old, &["data", "binaryData"]);
        errs.extend(validate(new));
        errs
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_util::texts;

    #[test]
    fn immutable_config_maps_freeze_data_binary_data_and_the_flag() {
        let old = json!({"data": {"a": "1"}, "immutable": true});
        let s = ConfigMapStrategy;
        assert!(s.validate_update(&old, &old).is_empty());
        let t = texts(s.validate_update(
            &json!({"data": {"a": "2"}, "binaryData": {"b": "eA=="}}),
            &old,
        ));
        assert_eq!(
            t,
            vec![
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set",
                "binaryData: Forbidden: field is immutable when `immutable` is set",
            ]
        );
        // A mutable one may change, and become immutable.
        let mutable = json!({"data": {"a": "1"}});
        assert!(s.validate_update(&old, &mutable).is_empty());
    }

    #[test]
    fn keys_duplicates_and_size() {
        let s = ConfigMapStrategy;
        let t = texts(
            s.validate(&json!({"data": {"a": "1", "b b": "2"}, "binaryData": {"a": "eA=="}})),
        );
        assert!(
            t.contains(
                &"data[a]: Invalid value: \"a\": duplicate of key present in binaryData"
                    .to_string()
            ),
            "{t:?}"
        );
        assert!(
            t.iter()
                .any(|e| e.starts_with("data[b b]: Invalid value: \"b b\": a valid config key")),
            "{t:?}"
        );
        let big = "x".repeat(MAX_DATA_BYTES + 1);
        assert_eq!(
            texts(s.validate(&json!({"data": {"a": big}}))),
            vec!["[]: Too long: may not be more than 1048576 bytes"]
        );
    }
}

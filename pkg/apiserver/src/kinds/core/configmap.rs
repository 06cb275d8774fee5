//! ConfigMaps: key validation.

use k1s_apimachinery::validation::is_config_map_key;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use crate::registry::Strategy;

/// The ConfigMap strategy.
pub struct ConfigMapStrategy;

/// Upstream's limit on the total size of a ConfigMap's or Secret's data.
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

/// Validates data keys of `data`/`binaryData` (or `stringData`) maps and their total size.
pub fn validate_data_keys(obj: &Value, fields: &[&str], kind_limit_message: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut total = 0usize;
    let mut seen: Vec<String> = Vec::new();
    for field in fields {
        let Some(map) = obj.get(*field).and_then(Value::as_object) else {
            continue;
        };
        for (k, v) in map {
            let p = Path::new(field).key(k);
            for msg in is_config_map_key(k) {
                errs.push(FieldError::invalid(&p, json!(k), msg));
            }
            if seen.contains(k) {
                errs.push(FieldError::invalid(
                    &p,
                    json!(k),
                    "duplicate of key present in data",
                ));
            }
            seen.push(k.clone());
            total += v.as_str().map_or(0, str::len);
        }
    }
    if total > MAX_DATA_BYTES {
        errs.push(FieldError::too_long(
            &Path::root(),
            json!(""),
            MAX_DATA_BYTES as i64,
        ));
        let _ = kind_limit_message;
    }
    errs
}

impl Strategy for ConfigMapStrategy {
    fn validate(&self, obj: &Value) -> ErrorList {
        validate_data_keys(obj, &["data", "binaryData"], "ConfigMap")
    }
}

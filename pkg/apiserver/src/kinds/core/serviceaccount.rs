//! ServiceAccounts: upstream validates only their metadata (`ValidateServiceAccount`);
//! the strategy keeps nothing but the name of each referenced Secret.

use serde_json::{Value, json};

use crate::registry::Strategy;

/// The ServiceAccount strategy.
pub struct ServiceAccountStrategy;

/// Upstream's `cleanSecretReferences`: a reference to a Secret of the account's own
/// namespace needs its name only.
fn clean_secret_references(obj: &mut Value) {
    if let Some(secrets) = obj.get_mut("secrets").and_then(Value::as_array_mut) {
        for s in secrets {
            let name = s.get("name").cloned();
            *s = match name {
                Some(n) => json!({"name": n}),
                None => json!({}),
            };
        }
    }
}

impl Strategy for ServiceAccountStrategy {
    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        clean_secret_references(obj);
    }

    fn prepare_for_update(&self, new: &mut Value, _old: &Value, _has_status: bool) {
        clean_secret_references(new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_references_keep_only_the_name() {
        let mut sa = json!({"secrets": [{"name": "tok", "namespace": "other", "uid": "u"}]});
        ServiceAccountStrategy.prepare_for_create(&mut sa, false);
        assert_eq!(sa["secrets"], json!([{"name": "tok"}]));
    }
}

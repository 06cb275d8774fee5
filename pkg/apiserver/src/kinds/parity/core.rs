//! Parity rows of the core group besides Pods (see the module above).

use serde_json::json;

use super::Case;

/// The rows.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "/api/v1/namespaces/parity/configmaps",
            json!({"metadata": {"name": "x"}, "data": {"a": "1"}, "immutable": true}),
        )
        .invalid("/data/a b", json!("1"), "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
        .immutable("/data/a", json!("2"), "data: Forbidden: field is immutable when `immutable` is set"),
    ]
}

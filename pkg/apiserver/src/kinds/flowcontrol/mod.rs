//! flowcontrol.apiserver.k8s.io/v1: FlowSchemas and PriorityLevelConfigurations
//! (upstream's `pkg/apis/flowcontrol/validation`, the v1 defaults, and the mandatory
//! `exempt` and `catch-all` objects whose specs are fixed).

pub mod flowschema;
pub mod prioritylevelconfiguration;

pub use flowschema::FlowSchemaStrategy;
pub use prioritylevelconfiguration::PriorityLevelConfigurationStrategy;

use std::collections::HashSet;

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Map, Value};

use crate::kinds::validation::{Fields, semantic_eq};

/// The name of the mandatory exempt objects.
pub const EXEMPT: &str = "exempt";
/// The name of the mandatory catch-all objects.
pub const CATCH_ALL: &str = "catch-all";

/// `value` without Go zero values (`false`, `0`, `""`), which a typed comparison cannot
/// tell from absent fields.
fn without_zero_values(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| {
                    !matches!(v, Value::Bool(false) | Value::Null)
                        && v.as_i64() != Some(0)
                        && v.as_str() != Some("")
                })
                .map(|(k, v)| (k.clone(), without_zero_values(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_zero_values).collect()),
        other => other.clone(),
    }
}

/// Upstream's `apiequality.Semantic.DeepEqual` of two typed specs, on JSON.
pub(crate) fn spec_eq(a: &Value, b: &Value) -> bool {
    semantic_eq(&without_zero_values(a), &without_zero_values(b))
}

/// The condition checks both kinds' status has: a non-empty, unique type.
pub(crate) fn validate_status_conditions(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let path = Path::new("status").child("conditions");
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, c) in obj.f("status").a("conditions").iter().enumerate() {
        let ty = c.s("type");
        if !seen.insert(ty) {
            errs.push(FieldError::duplicate(&path.index(i).child("type"), ty));
        }
        if ty.is_empty() {
            errs.push(FieldError::required(
                &path.index(i).child("type"),
                "must not be empty",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn zero_values_equal_absent_fields() {
        assert!(spec_eq(
            &json!({"a": false, "b": 0, "c": "", "d": [{"e": false}], "f": 1}),
            &json!({"d": [{}], "f": 1})
        ));
        assert!(!spec_eq(&json!({"a": true}), &json!({})));
    }
}

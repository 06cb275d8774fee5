//! ControllerRevisions (upstream `ValidateControllerRevision*`): immutable snapshots a
//! DaemonSet or StatefulSet controller writes.

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::validation::{Fields, immutable_field, nonnegative};
use crate::registry::Strategy;

/// The ControllerRevision strategy.
pub struct ControllerRevisionStrategy;

impl Strategy for ControllerRevisionStrategy {
    /// `ValidateControllerRevisionCreate`: the data is a JSON object.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = nonnegative(obj.i("revision"), &Path::new("revision"));
        match obj.get("data") {
            None | Some(Value::Null) => {
                errs.push(FieldError::required(
                    &Path::new("data"),
                    "data is mandatory",
                ));
            }
            Some(Value::Object(_)) => {}
            Some(_) => errs.push(FieldError::required(
                &Path::new("data"),
                "data must be a valid JSON object",
            )),
        }
        errs
    }

    /// `ValidateControllerRevisionUpdate`: the data may not change.
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = nonnegative(new.i("revision"), &Path::new("revision"));
        errs.extend(immutable_field(new, old, "data", &Path::root()));
        errs
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn data_is_required_and_immutable() {
        let s = ControllerRevisionStrategy;
        let e = s.validate(&json!({"revision": 1}));
        assert_eq!(e[0].to_string(), "data: Required value: data is mandatory");
        let e = s.validate(&json!({"revision": 1, "data": "x"}));
        assert_eq!(
            e[0].to_string(),
            "data: Required value: data must be a valid JSON object"
        );
        let old = json!({"revision": 1, "data": {"spec": {"a": 1}}});
        let new = json!({"revision": 1, "data": {"spec": {"a": 2}}});
        assert!(
            s.validate_update(&new, &old)[0]
                .to_string()
                .starts_with("data: Invalid value:")
        );
        assert!(s.validate_update(&old, &old).is_empty());
    }
}

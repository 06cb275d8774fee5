//! ControllerRevisions (upstream `ValidateControllerRevision*`): immutable snapshots a
//! DaemonSet or StatefulSet controller writes.

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::validation::{Fields, immutable_field, nonnegative};
use crate::registry::Strategy;

/// The ControllerRevision strategy.
pub struct ControllerRevisionStrategy;

impl Strategy for ControllerRevisionStrategy {
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = ErrorList::new();
        if !obj.has("data") {
            errs.push(FieldError::required(
                &Path::new("data"),
                "data is mandatory",
            ));
        }
        errs.extend(nonnegative(obj.i("revision"), &Path::new("revision")));
        errs
    }

    /// The data may not change; the rest is validated as on create.
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
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

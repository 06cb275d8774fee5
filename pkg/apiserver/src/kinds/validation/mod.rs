//! What every kind's validation shares (upstream's `apimachinery/pkg/api/validation` and
//! the helpers at the top of `pkg/apis/core/validation/validation.go`): reading fields of
//! a JSON object without a chain of `Option`s, upstream's semantic equality (a missing
//! list equals an empty one), immutable fields, and the small numeric and name checks
//! nearly every kind repeats.
//!
//! Objects are JSON values that already passed the schema decoder, so a field has its
//! schema's JSON type or is absent; the accessors below read an absent field (or one of
//! another type) as Go's zero value, which is how upstream's typed validation sees it.

pub mod ip;
pub mod resources;
pub mod scheduling;

use k1s_apimachinery::meta::{FIELD_IMMUTABLE_ERROR_MSG, IS_NEGATIVE_ERROR_MSG};
use k1s_apimachinery::validation::is_qualified_name;
use k1s_apimachinery::{ErrorList, FieldError, Path, Quantity};
use serde_json::{Map, Value};

/// The `null` every absent field reads as.
static NULL: Value = Value::Null;

/// Zero-value reads of JSON object fields.
pub trait Fields {
    /// The field `key` (Null when absent or when this is not an object).
    fn f(&self, key: &str) -> &Value;
    /// A string field ("" when absent).
    fn s(&self, key: &str) -> &str;
    /// An integer field, when present.
    fn i(&self, key: &str) -> Option<i64>;
    /// A boolean field (false when absent).
    fn b(&self, key: &str) -> bool;
    /// A list field (empty when absent).
    fn a(&self, key: &str) -> &[Value];
    /// A map field's entries (none when absent).
    fn m(&self, key: &str) -> Option<&Map<String, Value>>;
    /// Whether the field is present and not null.
    fn has(&self, key: &str) -> bool;
}

impl Fields for Value {
    fn f(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }

    fn s(&self, key: &str) -> &str {
        self.get(key).and_then(Value::as_str).unwrap_or("")
    }

    fn i(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    fn b(&self, key: &str) -> bool {
        self.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    fn a(&self, key: &str) -> &[Value] {
        self.get(key)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn m(&self, key: &str) -> Option<&Map<String, Value>> {
        self.get(key).and_then(Value::as_object)
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| !v.is_null())
    }
}

/// A copy of a JSON object without `keys` (for "every field but these" comparisons); a
/// non-object reads as an empty object.
pub fn without(obj: &Value, keys: &[&str]) -> Value {
    match obj {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => Value::Object(Map::new()),
    }
}

/// The list at `key` of `obj`, distinguishing absent (Go's nil slice) from empty.
pub fn list_of<'a>(obj: &'a Value, key: &str) -> Option<&'a [Value]> {
    obj.get(key).and_then(Value::as_array).map(Vec::as_slice)
}

/// The strings of a list value (a non-string item reads as "", an absent list as none).
pub fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap_or("")).collect())
        .unwrap_or_default()
}

/// Upstream's `apiequality.Semantic.DeepEqual` on JSON: a missing or null field equals an
/// empty list, an empty map and an empty object. Quantities are strings here and compare
/// as written; where a field is a quantity, compare with [`quantity_eq`].
pub fn semantic_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys = x.keys().chain(y.keys().filter(|k| !x.contains_key(*k)));
            for k in keys {
                if !semantic_eq(x.get(k).unwrap_or(&NULL), y.get(k).unwrap_or(&NULL)) {
                    return false;
                }
            }
            true
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| semantic_eq(p, q))
        }
        (Value::Null, other) | (other, Value::Null) => is_empty_container(other),
        _ => a == b,
    }
}

/// Whether two quantity strings have the same value (`1000m` and `1`); unparsable ones
/// compare as strings.
pub fn quantity_eq(a: &str, b: &str) -> bool {
    match (Quantity::parse(a), Quantity::parse(b)) {
        (Ok(p), Ok(q)) => p == q,
        _ => a == b,
    }
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(Value::is_null),
        _ => false,
    }
}

/// `field is immutable` at `path` unless `new` and `old` are semantically equal
/// (upstream's `ValidateImmutableField`); the error shows the new value.
pub fn immutable(new: &Value, old: &Value, path: &Path) -> ErrorList {
    if semantic_eq(new, old) {
        return ErrorList::new();
    }
    vec![FieldError::invalid(
        path,
        new.clone(),
        FIELD_IMMUTABLE_ERROR_MSG,
    )]
}

/// [`immutable`] for the field `key` of two objects, at `path.key`.
pub fn immutable_field(new: &Value, old: &Value, key: &str, path: &Path) -> ErrorList {
    immutable(new.f(key), old.f(key), &path.child(key))
}

/// `must be greater than or equal to 0` when `value` is negative
/// (`ValidateNonnegativeField`).
pub fn nonnegative(value: Option<i64>, path: &Path) -> ErrorList {
    match value {
        Some(v) if v < 0 => vec![FieldError::invalid(path, v, IS_NEGATIVE_ERROR_MSG)],
        _ => ErrorList::new(),
    }
}

/// `must be greater than zero` when `value` is present and not positive
/// (`ValidatePositiveField`'s wording in core validation).
pub fn positive(value: Option<i64>, path: &Path) -> ErrorList {
    match value {
        Some(v) if v <= 0 => vec![FieldError::invalid(path, v, "must be greater than zero")],
        _ => ErrorList::new(),
    }
}

/// Each message of a format check as an `Invalid value` of `value` at `path` (upstream's
/// `for _, msg := range IsX(value) { allErrs = append(allErrs, field.Invalid(...)) }`).
pub fn invalid_each(value: &str, path: &Path, msgs: Vec<String>) -> ErrorList {
    msgs.into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// `ValidateQualifiedName`: each problem of a qualified name (`example.com/name`).
pub fn validate_qualified_name(value: &str, path: &Path) -> ErrorList {
    invalid_each(value, path, is_qualified_name(value))
}

/// `Required value` when the string is empty, otherwise each message of `check` as an
/// `Invalid value` (the shape of most name fields: `if len(x) == 0 {Required} else
/// {for msg := range IsDNS1123Subdomain(x) {Invalid}}`).
pub fn required_name(value: &str, path: &Path, check: fn(&str) -> Vec<String>) -> ErrorList {
    if value.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    invalid_each(value, path, check(value))
}

/// Each message of `check` as an `Invalid value` when the string is not empty (optional
/// name fields).
pub fn optional_name(value: &str, path: &Path, check: fn(&str) -> Vec<String>) -> ErrorList {
    if value.is_empty() {
        return ErrorList::new();
    }
    required_name(value, path, check)
}

/// `Unsupported value` unless `value` is one of `valid`; an empty value is `Required`
/// when `required`, otherwise accepted.
pub fn one_of(value: &str, valid: &[&str], required: bool, path: &Path) -> ErrorList {
    if value.is_empty() {
        return if required {
            vec![FieldError::required(path, "")]
        } else {
            ErrorList::new()
        };
    }
    if valid.contains(&value) {
        return ErrorList::new();
    }
    vec![FieldError::not_supported(path, value, valid)]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn missing_fields_read_as_zero_values() {
        let v = json!({"a": "x", "n": 3, "l": [1], "m": {"k": "v"}, "t": true, "z": null});
        assert_eq!(v.s("a"), "x");
        assert_eq!(v.s("missing"), "");
        assert_eq!(v.i("n"), Some(3));
        assert_eq!(v.a("l").len(), 1);
        assert!(v.a("missing").is_empty());
        assert!(v.b("t") && !v.b("missing"));
        assert!(v.f("missing").f("deeper").a("x").is_empty());
        assert!(v.has("m") && !v.has("z") && !v.has("missing"));
    }

    #[test]
    fn semantic_equality_ignores_empty_and_absent() {
        assert!(semantic_eq(&json!({"a": []}), &json!({})));
        assert!(semantic_eq(&json!({"a": {}}), &json!({"a": null})));
        assert!(quantity_eq("1000m", "1") && !quantity_eq("1", "2"));
        assert!(!semantic_eq(&json!({"a": [1]}), &json!({})));
        assert!(!semantic_eq(&json!({"a": ""}), &json!({"a": "b"})));
        assert!(!semantic_eq(&json!({"a": 0}), &json!({})));
    }

    #[test]
    fn immutable_fields_report_the_new_value() {
        let path = Path::new("spec");
        let errs = immutable_field(
            &json!({"roleRef": {"name": "b"}}),
            &json!({"roleRef": {"name": "a"}}),
            "roleRef",
            &path,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.roleRef");
        assert!(immutable_field(&json!({}), &json!({"x": []}), "x", &path).is_empty());
    }
}

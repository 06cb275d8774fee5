//! Field paths and field-level validation errors (`k8s.io/apimachinery/pkg/util/validation/field`).
//!
//! A [`FieldError`] renders exactly like upstream's `field.Error`, e.g.
//! `spec.replicas: Invalid value: -1: must be greater than or equal to 0`; the same text
//! ends up in a 422 `Status` message and in its causes, which kubectl prints verbatim.

use crate::goformat;
use serde_json::Value;
use std::fmt;

// === Path ===

/// One step of a [`Path`]: a field name, or a subscript (list index or map key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Name(String),
    Subscript(String),
}

/// A path to a field in an object, rendered like upstream: `spec.containers[0].image`,
/// `metadata.labels[app]`.
///
/// [`Path::root`] is upstream's nil path: it renders as `<nil>`, and a child of it renders
/// as just the child's name (label selector errors show both forms).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path {
    segments: Vec<Segment>,
}

impl Path {
    /// The empty (nil) path; renders as `<nil>`.
    pub fn root() -> Path {
        Path::default()
    }

    /// A path starting at the field `name`, e.g. `Path::new("metadata")`.
    pub fn new(name: &str) -> Path {
        Path::root().child(name)
    }

    /// This path extended by the field `name`.
    #[must_use]
    pub fn child(&self, name: &str) -> Path {
        let mut p = self.clone();
        p.segments.push(Segment::Name(name.to_string()));
        p
    }

    /// This path extended by the list index `index` (`[3]`).
    #[must_use]
    pub fn index(&self, index: usize) -> Path {
        let mut p = self.clone();
        p.segments.push(Segment::Subscript(index.to_string()));
        p
    }

    /// This path extended by the map key `key` (`[app]`).
    #[must_use]
    pub fn key(&self, key: &str) -> Path {
        let mut p = self.clone();
        p.segments.push(Segment::Subscript(key.to_string()));
        p
    }

    /// Whether this is the root (nil) path.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("<nil>");
        }
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                // Upstream writes a name segment with an empty name as a subscript.
                Segment::Name(n) if n.is_empty() => write!(f, "[]")?,
                Segment::Name(n) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(n)?;
                }
                Segment::Subscript(s) => write!(f, "[{s}]")?,
            }
        }
        Ok(())
    }
}

// === ErrorType ===

/// Why a field is invalid; matches upstream's `field.ErrorType` (and `metav1.CauseType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// `FieldValueNotFound`: a referenced value could not be found.
    NotFound,
    /// `FieldValueRequired`: a required value is missing.
    Required,
    /// `FieldValueDuplicate`: a value that must be unique is repeated.
    Duplicate,
    /// `FieldValueInvalid`: a malformed value.
    Invalid,
    /// `FieldValueNotSupported`: a value outside an enumerated set.
    NotSupported,
    /// `FieldValueForbidden`: a well-formed value that is not allowed here.
    Forbidden,
    /// `FieldValueTooLong`: a value longer than allowed (the value is not shown).
    TooLong,
    /// `FieldValueTooMany`: a list with too many items.
    TooMany,
    /// `InternalError`: a server-side problem unrelated to the input.
    Internal,
    /// `FieldValueTypeInvalid`: a value of the wrong schema type.
    TypeInvalid,
}

impl ErrorType {
    /// The machine-readable reason, used as a `Status` cause's `reason`
    /// (`FieldValueInvalid`, `FieldValueRequired`, …).
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Internal => "InternalError",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human-readable description that starts an error's text (`Invalid value`, …).
    pub fn description(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Internal => "Internal error",
            ErrorType::TypeInvalid => "Invalid value",
        }
    }

    /// Parses a reason string back into an error type.
    pub fn from_reason(reason: &str) -> Option<ErrorType> {
        [
            ErrorType::NotFound,
            ErrorType::Required,
            ErrorType::Duplicate,
            ErrorType::Invalid,
            ErrorType::NotSupported,
            ErrorType::Forbidden,
            ErrorType::TooLong,
            ErrorType::TooMany,
            ErrorType::Internal,
            ErrorType::TypeInvalid,
        ]
        .into_iter()
        .find(|t| t.reason() == reason)
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

// === FieldError ===

/// A field-level validation error; `Display` is upstream's `field.Error.Error()`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// What kind of problem this is.
    pub error_type: ErrorType,
    /// The rendered path of the offending field (`spec.replicas`).
    pub field: String,
    /// The offending value; `None` when it is not shown.
    pub bad_value: Option<Value>,
    /// Extra explanation appended after the value.
    pub detail: String,
}

/// A list of field errors, in the order they were found.
pub type ErrorList = Vec<FieldError>;

impl FieldError {
    fn new(error_type: ErrorType, path: &Path, bad_value: Option<Value>, detail: String) -> Self {
        FieldError {
            error_type,
            field: path.to_string(),
            bad_value,
            detail,
        }
    }

    /// A malformed value (failed format check, out of range, …).
    pub fn invalid(path: &Path, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, path, Some(value.into()), detail.into())
    }

    /// A required value that is missing; the value is never shown.
    pub fn required(path: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, path, None, detail.into())
    }

    /// A value outside the enumerated `valid` set; the detail lists them quoted
    /// (`supported values: "Always", "Never"`).
    pub fn not_supported(path: &Path, value: impl Into<Value>, valid: &[&str]) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| goformat::quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorType::NotSupported, path, Some(value.into()), detail)
    }

    /// A well-formed value that is not allowed in this context; the value is never shown.
    pub fn forbidden(path: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, path, None, detail.into())
    }

    /// A value longer than `max_length` bytes (negative: no limit is named). Like upstream,
    /// the value itself is neither shown nor kept.
    pub fn too_long(path: &Path, _value: impl Into<Value>, max_length: i64) -> Self {
        let detail = if max_length >= 0 {
            let unit = if max_length == 1 { "byte" } else { "bytes" };
            format!("may not be more than {max_length} {unit}")
        } else {
            "value is too long".to_string()
        };
        Self::new(ErrorType::TooLong, path, None, detail)
    }

    /// A list with `actual` items (negative: not shown) where at most `max` are allowed
    /// (negative: no limit is named).
    pub fn too_many(path: &Path, actual: i64, max: i64) -> Self {
        let detail = if max >= 0 {
            let unit = if max == 1 { "item" } else { "items" };
            format!("must have at most {max} {unit}")
        } else {
            "has too many items".to_string()
        };
        let value = (actual >= 0).then(|| Value::from(actual));
        Self::new(ErrorType::TooMany, path, value, detail)
    }

    /// A value that must be unique but is repeated.
    pub fn duplicate(path: &Path, value: impl Into<Value>) -> Self {
        Self::new(
            ErrorType::Duplicate,
            path,
            Some(value.into()),
            String::new(),
        )
    }

    /// A referenced value that could not be found.
    pub fn not_found(path: &Path, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::NotFound, path, Some(value.into()), String::new())
    }

    /// A server-side problem found while validating; `message` is the underlying error.
    pub fn internal(path: &Path, message: impl Into<String>) -> Self {
        Self::new(ErrorType::Internal, path, None, message.into())
    }

    /// A value of the wrong schema type.
    pub fn type_invalid(path: &Path, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        Self::new(
            ErrorType::TypeInvalid,
            path,
            Some(value.into()),
            detail.into(),
        )
    }

    /// The text without the field name (upstream's `ErrorBody`), used as a `Status`
    /// cause's message: `Invalid value: -1: must be greater than or equal to 0`.
    pub fn body(&self) -> String {
        let mut s = match (self.error_type, &self.bad_value) {
            (
                ErrorType::Required
                | ErrorType::Forbidden
                | ErrorType::TooLong
                | ErrorType::Internal,
                _,
            )
            | (_, None) => self.error_type.description().to_string(),
            (t, Some(v)) => format!("{}: {}", t.description(), goformat::bad_value(v)),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// Renders a list of errors the way upstream's `ErrorList.ToAggregate().Error()` does:
/// duplicates (by text) dropped, one error as itself, several as `[a, b]`. `None` for an
/// empty list.
pub fn aggregate(errors: &[FieldError]) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        let msg = e.to_string();
        if !seen.contains(&msg) {
            seen.push(msg);
        }
    }
    match seen.len() {
        0 => None,
        1 => seen.pop(),
        _ => Some(format!("[{}]", seen.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn path_renders_names_dotted_and_subscripts_bracketed() {
        let p = Path::new("spec")
            .child("containers")
            .index(0)
            .child("image");
        assert_eq!(p.to_string(), "spec.containers[0].image");
        assert_eq!(
            Path::new("metadata").child("labels").key("app").to_string(),
            "metadata.labels[app]"
        );
    }

    #[test]
    fn root_path_renders_nil_and_its_child_renders_bare() {
        // Label selector parse errors show `<nil>: Invalid value: …` exactly like upstream.
        assert_eq!(Path::root().to_string(), "<nil>");
        assert_eq!(Path::root().child("key").to_string(), "key");
        assert_eq!(
            Path::root().child("values").index(0).key("a").to_string(),
            "values[0][a]"
        );
    }

    #[test]
    fn invalid_error_shows_numbers_plain_and_strings_quoted() {
        let p = Path::new("spec").child("replicas");
        let e = FieldError::invalid(&p, -1, "must be greater than or equal to 0");
        assert_eq!(
            e.to_string(),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        let e = FieldError::invalid(&Path::new("metadata").child("name"), "A_b", "bad");
        assert_eq!(e.to_string(), "metadata.name: Invalid value: \"A_b\": bad");
        assert_eq!(e.error_type.reason(), "FieldValueInvalid");
    }

    #[test]
    fn required_and_forbidden_never_show_a_value() {
        let e = FieldError::required(
            &Path::new("metadata").child("name"),
            "name or generateName is required",
        );
        assert_eq!(
            e.to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
        let e = FieldError::required(&Path::new("metadata").child("namespace"), "");
        assert_eq!(e.to_string(), "metadata.namespace: Required value");
        let e = FieldError::forbidden(
            &Path::new("metadata").child("namespace"),
            "not allowed on this type",
        );
        assert_eq!(
            e.to_string(),
            "metadata.namespace: Forbidden: not allowed on this type"
        );
    }

    #[test]
    fn not_supported_lists_quoted_valid_values() {
        let e = FieldError::not_supported(
            &Path::new("spec").child("restartPolicy"),
            "Sometimes",
            &["Always", "Never"],
        );
        assert_eq!(
            e.to_string(),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\""
        );
        assert_eq!(e.error_type.reason(), "FieldValueNotSupported");
    }

    #[test]
    fn too_long_omits_value_and_names_limit_in_bytes() {
        let e = FieldError::too_long(&Path::new("metadata").child("annotations"), "", 262144);
        assert_eq!(
            e.to_string(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
        assert_eq!(
            FieldError::too_long(&Path::new("x"), "", 1).detail,
            "may not be more than 1 byte"
        );
        assert_eq!(
            FieldError::too_long(&Path::new("x"), "", -1).detail,
            "value is too long"
        );
    }

    #[test]
    fn too_many_shows_count_and_limit() {
        let e = FieldError::too_many(&Path::new("items"), 5, 3);
        assert_eq!(
            e.to_string(),
            "items: Too many: 5: must have at most 3 items"
        );
        let e = FieldError::too_many(&Path::new("items"), -1, 1);
        assert_eq!(e.to_string(), "items: Too many: must have at most 1 item");
    }

    #[test]
    fn duplicate_not_found_internal_and_type_invalid_render_like_upstream() {
        let p = Path::new("spec").child("ports").index(1).child("name");
        assert_eq!(
            FieldError::duplicate(&p, "http").to_string(),
            "spec.ports[1].name: Duplicate value: \"http\""
        );
        assert_eq!(
            FieldError::not_found(&p, "x").to_string(),
            "spec.ports[1].name: Not found: \"x\""
        );
        assert_eq!(
            FieldError::internal(&p, "boom").to_string(),
            "spec.ports[1].name: Internal error: boom"
        );
        assert_eq!(
            FieldError::type_invalid(&p, json!(3), "must be a string").to_string(),
            "spec.ports[1].name: Invalid value: 3: must be a string"
        );
    }

    #[test]
    fn null_and_composite_bad_values_render_as_go_json() {
        let p = Path::new("f");
        assert_eq!(
            FieldError::invalid(&p, Value::Null, "d").to_string(),
            "f: Invalid value: null: d"
        );
        assert_eq!(
            FieldError::invalid(&p, json!(["orphan", "foregroundDeletion"]), "d").to_string(),
            "f: Invalid value: [\"orphan\",\"foregroundDeletion\"]: d"
        );
    }

    #[test]
    fn aggregate_drops_duplicates_and_brackets_several() {
        let p = Path::new("a");
        let e1 = FieldError::required(&p, "");
        let e2 = FieldError::invalid(&p, 1, "x");
        assert_eq!(aggregate(&[]), None);
        assert_eq!(
            aggregate(std::slice::from_ref(&e1)).as_deref(),
            Some("a: Required value")
        );
        assert_eq!(
            aggregate(&[e1.clone(), e1.clone()]).as_deref(),
            Some("a: Required value")
        );
        assert_eq!(
            aggregate(&[e1.clone(), e2, e1]).as_deref(),
            Some("[a: Required value, a: Invalid value: 1: x]")
        );
    }

    #[test]
    fn error_type_reasons_round_trip() {
        for t in [
            ErrorType::Invalid,
            ErrorType::Internal,
            ErrorType::TooMany,
            ErrorType::TypeInvalid,
        ] {
            assert_eq!(ErrorType::from_reason(t.reason()), Some(t));
        }
        assert_eq!(ErrorType::from_reason("Nope"), None);
    }
}

//! Canonical rendering of `resource.Quantity` values in table cells, as Go's
//! `Quantity.String()` produces them after decoding (see
//! [`k1s_apimachinery::quantity::canonical::canonical_form`]).

use k1s_apimachinery::quantity::canonical::canonical_form as canonical;
use serde_json::Value;

/// Renders a quantity JSON value (string or number) in canonical form.
/// `None` (field unset) renders as Go's zero quantity, `"0"`.
pub(crate) fn quantity_string(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "0".to_string(),
        Some(Value::String(s)) => canonical(s.trim()),
        Some(Value::Number(n)) => canonical(&n.to_string()),
        Some(other) => other.to_string(),
    }
}

/// Renders an optional quantity like Go's `(*Quantity).String()` on a possibly-nil pointer.
pub(crate) fn quantity_ptr_string(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "<nil>".to_string(),
        some => quantity_string(some),
    }
}

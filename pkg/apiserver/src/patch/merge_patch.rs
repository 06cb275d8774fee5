//! RFC 7386 JSON merge patch, as upstream's API server applies it (`evanphx/json-patch`
//! v4 `MergePatch`).
//!
//! The rules are the RFC's: a `null` member deletes, an object merges recursively into an
//! object, anything else replaces. Where upstream differs from the letter of the RFC this
//! follows upstream: a value that lands where there was nothing to merge into (a missing or
//! `null` member, or a non-object) is *pruned* of `null` object members at every depth,
//! arrays included (`{"a":[{"b":null}]}` adds `a: [{}]`), while `null` array elements are
//! kept; an array or scalar replacing an existing object is taken as it is.

use serde_json::{Map, Value};

use super::PatchError;
use super::gocompat::decode_json;

/// The error upstream's merge patch library gives for a body it cannot use.
const BAD_PATCH: &str = "Invalid JSON Patch";

/// Decodes a merge patch request body the way upstream accepts it: a JSON object (the
/// usual case) or array. Anything else (invalid JSON, `null`, a scalar) is
/// [`PatchError::Malformed`] with upstream's text `Invalid JSON Patch` (400).
pub fn parse_merge_patch(body: &[u8]) -> Result<Value, PatchError> {
    match decode_json(body) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => Ok(v),
        _ => Err(PatchError::Malformed(BAD_PATCH.into())),
    }
}

/// Applies a JSON merge patch to `doc`.
///
/// An object patch merges into an object document; an object patch on a non-object
/// document, and an array patch, replace the document (pruned of `null` object
/// members). A scalar or `null` patch replaces the document as RFC 7386 says; upstream
/// refuses such bodies before applying them, see [`parse_merge_patch`].
pub fn apply_merge_patch(doc: &Value, patch: &Value) -> Value {
    match (doc, patch) {
        (Value::Object(d), Value::Object(p)) => {
            let mut d = d.clone();
            merge_objects(&mut d, p);
            Value::Object(d)
        }
        (_, Value::Object(_) | Value::Array(_)) => pruned(patch.clone()),
        _ => patch.clone(),
    }
}

fn merge_objects(doc: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            doc.shift_remove(k);
            continue;
        }
        match doc.get_mut(k) {
            Some(cur) if !cur.is_null() => merge_value(cur, v),
            _ => {
                doc.insert(k.clone(), pruned(v.clone()));
            }
        }
    }
}

fn merge_value(cur: &mut Value, patch: &Value) {
    match (&mut *cur, patch) {
        (Value::Object(c), Value::Object(p)) => merge_objects(c, p),
        // An object replaced by a non-object: the patch value as sent.
        (Value::Object(_), _) => *cur = patch.clone(),
        // Nothing to merge into: the patch value without its null members.
        _ => *cur = pruned(patch.clone()),
    }
}

/// Drops `null` members of objects, recursively (through arrays too); `null` array
/// elements stay.
fn pruned(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, pruned(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(pruned).collect()),
        other => other,
    }
}

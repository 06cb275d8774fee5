//! RFC 6902 JSON patch, with the semantics of `evanphx/json-patch` v4 (which upstream's
//! API server uses) rather than the letter of the RFC where the two differ:
//!
//! - `replace` of a missing object member adds it (only array indices are checked);
//! - `copy` from a missing object member copies `null`, `test` of a missing member
//!   against `null` passes;
//! - array indices may be negative (`-1` is the last element; for `add`, `-1` appends);
//! - a path without a leading `/` has its first token ignored;
//! - `add`/`remove` of the whole document (`""`) fail with "doc is missing path";
//!   `replace` of the whole document takes an object or array and ignores anything else.
//!
//! Two limits keep a small patch from making a huge or unreadable document: the `copy`
//! operations of one patch may add at most [`MAX_JSON_PATCH_COPY_BYTES`] (upstream's
//! `AccumulatedCopySizeLimit`), and no operation may make the document nest deeper than a
//! request body may ([`MAX_NESTING_DEPTH`]), since the result is stored and read back.
//!
//! Error texts are the library's, so that logs read as upstream's do; the API server
//! answers every apply failure with the same 422 (see [`PatchError`]).

use serde_json::{Map, Value};

use super::PatchError;
use super::gocompat::{decode_json, go_atoi, json_kind};
use crate::schema::decode::{MAX_NESTING_DEPTH, nesting_depth};

/// Most operations upstream accepts in one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Most bytes the `copy` operations of one patch may add, all together (upstream's
/// `JSONPatchMaxCopyBytes` default): a member copied into itself doubles each time.
pub const MAX_JSON_PATCH_COPY_BYTES: usize = 3 * 1024 * 1024;

/// Applies an RFC 6902 JSON patch (the raw request body) to `doc`.
///
/// Errors: [`PatchError::Malformed`] (400) when the body is not a JSON array of
/// objects, [`PatchError::TooManyOperations`] (413) past
/// [`MAX_JSON_PATCH_OPERATIONS`], [`PatchError::OperationFailed`] (422) when an
/// operation does not apply. Operations apply in order; the first failure stops the
/// patch and nothing of it is kept.
pub fn apply_json_patch(doc: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let ops = decode_patch(patch)?;
    if !matches!(doc, Value::Object(_) | Value::Array(_)) {
        return Err(PatchError::OperationFailed(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.partialDoc",
            json_kind(doc)
        )));
    }
    let mut doc = doc.clone();
    let mut copied = 0;
    for op in &ops {
        apply_operation(&mut doc, op, &mut copied).map_err(PatchError::OperationFailed)?;
    }
    Ok(doc)
}

/// One operation: its members, or `None` for a `null` array element.
type Operation = Option<Map<String, Value>>;

fn decode_patch(patch: &[u8]) -> Result<Vec<Operation>, PatchError> {
    let value = decode_json(patch).map_err(PatchError::Malformed)?;
    let items = match value {
        // Go decodes `null` into an empty patch.
        Value::Null => Vec::new(),
        Value::Array(items) => items,
        other => {
            return Err(PatchError::Malformed(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                json_kind(&other)
            )));
        }
    };
    let mut ops = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::Object(m) => ops.push(Some(m)),
            Value::Null => ops.push(None),
            other => {
                return Err(PatchError::Malformed(format!(
                    "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                    json_kind(&other)
                )));
            }
        }
    }
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations(ops.len()));
    }
    Ok(ops)
}

const MISSING: &str = "missing value";

/// The `op` member; `unknown` when absent, null or not a string.
fn op_kind(op: &Operation) -> &str {
    op.as_ref()
        .and_then(|m| m.get("op"))
        .and_then(Value::as_str)
        .unwrap_or("unknown")
}

/// A string member (`path`, `from`), with the library's error when it is absent.
fn op_string(op: &Operation, name: &str, missing: &str) -> Result<String, String> {
    match op.as_ref().and_then(|m| m.get(name)) {
        None | Some(Value::Null) => Err(format!("{missing}: {MISSING}")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go value of type string",
            json_kind(other)
        )),
    }
}

fn op_path(op: &Operation) -> Result<String, String> {
    op_string(op, "path", "operation missing path field")
}

fn op_from(op: &Operation) -> Result<String, String> {
    op_string(op, "from", "operation, missing from field")
}

/// The `value` member: `None` when absent (a `null` member is `Some(Null)`).
fn op_value(op: &Operation) -> Option<&Value> {
    op.as_ref().and_then(|m| m.get("value"))
}

/// Applies one operation; `copied` is what the patch's copies have added so far.
fn apply_operation(doc: &mut Value, op: &Operation, copied: &mut usize) -> Result<(), String> {
    match op_kind(op) {
        "add" => add(doc, op),
        "remove" => remove(doc, op),
        "replace" => replace(doc, op),
        "move" => move_op(doc, op),
        "test" => test(doc, op),
        "copy" => copy(doc, op, copied),
        other => Err(format!("Unexpected kind: {other}")),
    }
}

fn add(doc: &mut Value, op: &Operation) -> Result<(), String> {
    let path =
        op_path(op).map_err(|_| format!("add operation failed to decode path: {MISSING}"))?;
    let (con, key) = find_object(doc, &path).ok_or_else(|| {
        format!("add operation does not apply: doc is missing path: \"{path}\": {MISSING}")
    })?;
    let value = op_value(op).cloned().unwrap_or(Value::Null);
    check_nesting("add", &path, &value)?;
    container_add(con, &key, value).map_err(|e| format!("error in add for path: '{path}': {e}"))
}

fn remove(doc: &mut Value, op: &Operation) -> Result<(), String> {
    let path =
        op_path(op).map_err(|_| format!("remove operation failed to decode path: {MISSING}"))?;
    let (con, key) = find_object(doc, &path).ok_or_else(|| {
        format!("remove operation does not apply: doc is missing path: \"{path}\": {MISSING}")
    })?;
    container_remove(con, &key).map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

fn replace(doc: &mut Value, op: &Operation) -> Result<(), String> {
    let path = op_path(op).map_err(|e| format!("replace operation failed to decode path: {e}"))?;
    if path.is_empty() {
        // The whole document: only an object or an array replaces it; the library
        // silently ignores any other value.
        return match op_value(op) {
            Some(v @ (Value::Object(_) | Value::Array(_))) => {
                check_nesting("replace", &path, v)?;
                *doc = v.clone();
                Ok(())
            }
            Some(_) => Ok(()),
            None => Err(format!("replace operation hit impossible case: {MISSING}")),
        };
    }
    let (con, key) = find_object(doc, &path).ok_or_else(|| {
        format!("replace operation does not apply: doc is missing path: {path}: {MISSING}")
    })?;
    if container_get(con, &key).is_err() {
        return Err(format!(
            "replace operation does not apply: doc is missing key: {path}: {MISSING}"
        ));
    }
    let value = op_value(op).cloned().unwrap_or(Value::Null);
    check_nesting("replace", &path, &value)?;
    container_set(con, &key, value).map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

fn move_op(doc: &mut Value, op: &Operation) -> Result<(), String> {
    let from = op_from(op).map_err(|e| format!("move operation failed to decode from: {e}"))?;
    let (con, key) = find_object(doc, &from).ok_or_else(|| {
        format!("move operation does not apply: doc is missing from path: {from}: {MISSING}")
    })?;
    let value = container_get(con, &key)
        .map_err(|e| format!("error in move for path: '{key}': {e}"))?
        .cloned()
        .unwrap_or(Value::Null);
    container_remove(con, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
    let path = op_path(op).map_err(|e| format!("move operation failed to decode path: {e}"))?;
    let (con, key) = find_object(doc, &path).ok_or_else(|| {
        format!("move operation does not apply: doc is missing destination path: {path}: {MISSING}")
    })?;
    check_nesting("move", &path, &value)?;
    container_add(con, &key, value).map_err(|e| format!("error in move for path: '{path}': {e}"))
}

fn test(doc: &mut Value, op: &Operation) -> Result<(), String> {
    let path = op_path(op).map_err(|e| format!("test operation failed to decode path: {e}"))?;
    let failed = || format!("testing value {path} failed: test failed");
    let expected = op_value(op);
    if path.is_empty() {
        return match expected {
            Some(v) if v == doc => Ok(()),
            _ => Err(failed()),
        };
    }
    let (con, key) = find_object(doc, &path).ok_or_else(|| {
        format!("test operation does not apply: is missing path: {path}: {MISSING}")
    })?;
    let actual =
        container_get(con, &key).map_err(|e| format!("error in test for path: '{path}': {e}"))?;
    match (actual, expected) {
        // A missing member, or a null one, equals a `null` value.
        (None, Some(Value::Null)) => Ok(()),
        (Some(a), Some(e)) if a == e => Ok(()),
        _ => Err(failed()),
    }
}

fn copy(doc: &mut Value, op: &Operation, copied: &mut usize) -> Result<(), String> {
    let from = op_from(op).map_err(|e| format!("copy operation failed to decode from: {e}"))?;
    let (con, key) = find_object(doc, &from).ok_or_else(|| {
        format!("copy operation does not apply: doc is missing from path: {from}: {MISSING}")
    })?;
    let found = container_get(con, &key)
        .map_err(|e| format!("error in copy for from: '{from}': {e}"))?
        .cloned();
    let path =
        op_path(op).map_err(|_| format!("copy operation failed to decode path: {MISSING}"))?;
    let (con, key) = find_object(doc, &path).ok_or_else(|| {
        format!("copy operation does not apply: doc is missing destination path: {path}: {MISSING}")
    })?;
    // Upstream counts the copied value's JSON length (nothing for a missing one).
    *copied = copied.saturating_add(found.as_ref().map_or(0, json_len));
    if *copied > MAX_JSON_PATCH_COPY_BYTES {
        return Err(format!(
            "Unable to complete the copy, the accumulated size increase of copy is {copied}, \
             exceeding the limit {MAX_JSON_PATCH_COPY_BYTES}"
        ));
    }
    let value = found.unwrap_or(Value::Null);
    check_nesting("copy", &path, &value)?;
    container_add(con, &key, value)
        .map_err(|e| format!("error while adding value during copy: {e}"))
}

/// The length of `v` written as JSON, counted without writing it anywhere.
fn json_len(v: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // A JSON value always serializes, and the counter never fails.
    let _ = serde_json::to_writer(&mut counter, v);
    counter.0
}

/// Refuses to put `value` at `path` when the document would then nest deeper than a
/// request body may: the patched object is stored, and must decode when read back.
fn check_nesting(op: &str, path: &str, value: &Value) -> Result<(), String> {
    // The container at `path` is as deep as the tokens before the last one, plus the root.
    let container = path.split('/').count().saturating_sub(1);
    let depth = container + nesting_depth(value);
    if depth > MAX_NESTING_DEPTH {
        return Err(format!(
            "{op} operation does not apply: the document would nest {depth} levels deep at \
             {path}, more than the {MAX_NESTING_DEPTH} allowed"
        ));
    }
    Ok(())
}

/// RFC 6901 token decoding: `~1` is `/`, `~0` is `~`, in one left-to-right pass.
fn decode_token(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.peek() {
                Some('1') => {
                    chars.next();
                    out.push('/');
                    continue;
                }
                Some('0') => {
                    chars.next();
                    out.push('~');
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// The container (object or array) a path's last token lives in, and that token.
/// `None` when the path has no `/`, or an intermediate value is missing, null or a
/// scalar. Like the library, the first token (before the first `/`) is skipped.
fn find_object<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let tokens: Vec<&str> = path.split('/').collect();
    if tokens.len() < 2 {
        return None;
    }
    let (last, middle) = tokens[1..].split_last()?;
    let mut cur = doc;
    for token in middle {
        let token = decode_token(token);
        let next = match cur {
            Value::Object(m) => m.get_mut(&token)?,
            Value::Array(a) => {
                let idx = array_index(&token, a.len()).ok()?;
                a.get_mut(idx)?
            }
            _ => return None,
        };
        if !matches!(next, Value::Object(_) | Value::Array(_)) {
            return None;
        }
        cur = next;
    }
    Some((cur, decode_token(last)))
}

fn invalid_index(idx: i64) -> String {
    format!("Unable to access invalid index: {idx}: invalid index referenced")
}

/// An existing element's index (negative counts from the end).
fn array_index(token: &str, len: usize) -> Result<usize, String> {
    let idx = go_atoi(token)?;
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let adjusted = if idx < 0 {
        if idx < -len_i {
            return Err(invalid_index(idx));
        }
        idx + len_i
    } else {
        idx
    };
    if adjusted >= len_i {
        return Err(invalid_index(idx));
    }
    usize::try_from(adjusted).map_err(|_| invalid_index(idx))
}

/// The member or element at `key`: `Ok(None)` for a missing or null object member.
fn container_get<'a>(con: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    match con {
        Value::Object(m) => Ok(m.get(key).filter(|v| !v.is_null())),
        Value::Array(a) => {
            let idx = array_index(key, a.len())?;
            Ok(a.get(idx).filter(|v| !v.is_null()))
        }
        _ => Err(MISSING.into()),
    }
}

fn container_add(con: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match con {
        Value::Object(m) => {
            m.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(a) => {
            if key == "-" {
                a.push(value);
                return Ok(());
            }
            let idx = go_atoi(key)
                .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            let size = i64::try_from(a.len()).unwrap_or(i64::MAX) + 1;
            if idx >= size {
                return Err(invalid_index(idx));
            }
            let adjusted = if idx < 0 {
                if idx < -size {
                    return Err(invalid_index(idx));
                }
                idx + size
            } else {
                idx
            };
            let at = usize::try_from(adjusted).map_err(|_| invalid_index(idx))?;
            a.insert(at, value);
            Ok(())
        }
        _ => Err(MISSING.into()),
    }
}

fn container_remove(con: &mut Value, key: &str) -> Result<(), String> {
    match con {
        Value::Object(m) => match m.shift_remove(key) {
            Some(_) => Ok(()),
            None => Err(format!(
                "Unable to remove nonexistent key: {key}: {MISSING}"
            )),
        },
        Value::Array(a) => {
            let idx = array_index(key, a.len())?;
            a.remove(idx);
            Ok(())
        }
        _ => Err(MISSING.into()),
    }
}

fn container_set(con: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match con {
        Value::Object(m) => {
            m.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(a) => {
            let idx = array_index(key, a.len())?;
            if let Some(slot) = a.get_mut(idx) {
                *slot = value;
            }
            Ok(())
        }
        _ => Err(MISSING.into()),
    }
}

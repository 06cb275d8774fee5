//! Patch application (being replaced by the full implementation).

use serde_json::Value;

use crate::schema::model::{Definitions, Schema};

/// Why a patch failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PatchError(String);

impl PatchError {
    /// The HTTP status upstream answers with.
    pub fn http_status(&self) -> u16 {
        400
    }
}

/// RFC 6902.
pub fn apply_json_patch(_doc: &Value, _patch: &[u8]) -> Result<Value, PatchError> {
    Err(PatchError("json patch is not supported yet".into()))
}

/// RFC 7386.
pub fn apply_merge_patch(doc: &Value, patch: &Value) -> Value {
    match (doc, patch) {
        (Value::Object(d), Value::Object(p)) => {
            let mut out = d.clone();
            for (k, v) in p {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = apply_merge_patch(d.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        (_, Value::Object(p)) => apply_merge_patch(
            &Value::Object(Default::default()),
            &Value::Object(p.clone()),
        ),
        (_, p) => p.clone(),
    }
}

/// Strategic merge patch.
pub fn apply_strategic_merge_patch(
    doc: &Value,
    patch: &Value,
    _schema: &Schema,
    _defs: &Definitions,
) -> Result<Value, PatchError> {
    Ok(apply_merge_patch(doc, patch))
}

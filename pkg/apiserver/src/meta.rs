//! Reading and writing the common parts of JSON objects (`metadata`, `apiVersion`) and
//! the server's clock formats.

use serde_json::{Map, Value};

/// The object's `metadata`, if it is an object.
pub fn metadata(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// The object's `metadata`, created when missing (objects are always JSON objects here).
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let o = obj.as_object_mut().expect("just made an object");
    let m = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut().expect("just made an object")
}

/// A string field of metadata (empty when absent).
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    metadata(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.name`.
pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name")
}

/// `metadata.namespace`.
pub fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace")
}

/// `metadata.uid`.
pub fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid")
}

/// `metadata.resourceVersion`.
pub fn resource_version(obj: &Value) -> &str {
    meta_str(obj, "resourceVersion")
}

/// `metadata.labels` (empty when absent).
pub fn labels(obj: &Value) -> Map<String, Value> {
    metadata(obj)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// `metadata.finalizers`.
pub fn finalizers(obj: &Value) -> Vec<String> {
    metadata(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `metadata.deletionTimestamp` is set.
pub fn is_deleting(obj: &Value) -> bool {
    metadata(obj)
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some_and(|v| !v.is_null())
}

/// Sets or removes (when `None`) a metadata field.
pub fn set_meta(obj: &mut Value, field: &str, value: Option<Value>) {
    let m = metadata_mut(obj);
    match value {
        Some(v) => {
            m.insert(field.to_string(), v);
        }
        None => {
            m.remove(field);
        }
    }
}

/// Follows a path of object keys.
pub fn get_path<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.get(k))
}

/// Sets a value at a path of object keys, creating objects on the way.
pub fn set_path(obj: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *obj = value;
        return;
    };
    let mut cur = obj;
    for k in parents {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        cur = cur
            .as_object_mut()
            .expect("just made an object")
            .entry(k.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    cur.as_object_mut()
        .expect("just made an object")
        .insert(last.to_string(), value);
}

/// Sets a value at a path unless something is there already (defaulting).
pub fn default_path(obj: &mut Value, path: &[&str], value: Value) {
    if get_path(obj, path).is_none_or(Value::is_null) {
        set_path(obj, path, value);
    }
}

/// The object with everything but `metadata` and `status`: what a generation tracks.
pub fn spec_part(obj: &Value) -> Map<String, Value> {
    obj.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Now, as a `meta/v1.Time` string (seconds precision, UTC).
pub fn now_rfc3339() -> String {
    format_time(jiff::Timestamp::now())
}

/// A timestamp as a `meta/v1.Time` string.
pub fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now, as a `meta/v1.MicroTime` string.
pub fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A request's metadata as an answer echoes it: as Go writes the decoded struct back (an
/// owner reference sent as `null` comes back with its required fields empty, not as `{}`),
/// creation time unset. Managed fields that do not decode (a `fieldsV1` that is not an
/// object) are dropped, as upstream's field manager resets managed fields it cannot read.
pub fn echoed_metadata(meta: &Value) -> Value {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let mut typed: ObjectMeta = serde_json::from_value(meta.clone()).unwrap_or_default();
    typed.creation_timestamp = None;
    let unreadable = typed.managed_fields.iter().flatten().any(|entry| {
        entry
            .fields_v1
            .as_ref()
            .is_some_and(|fields| !fields.0.is_object() && !fields.0.is_null())
    });
    if unreadable {
        typed.managed_fields = None;
    }
    let mut out = serde_json::to_value(typed).unwrap_or_else(|_| serde_json::json!({}));
    out["creationTimestamp"] = Value::Null;
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn echoed_metadata_drops_managed_fields_it_cannot_read() {
        let meta = json!({"name": "a", "managedFields": [{"fieldsV1": [null, null]}]});
        assert!(echoed_metadata(&meta).get("managedFields").is_none());
        let meta =
            json!({"name": "a", "managedFields": [{"manager": "m", "fieldsV1": {"f:a": {}}}]});
        assert_eq!(echoed_metadata(&meta)["managedFields"][0]["manager"], "m");
    }

    #[test]
    fn set_path_creates_parents_and_default_path_keeps_values() {
        let mut v = json!({});
        set_path(
            &mut v,
            &["spec", "strategy", "type"],
            json!("RollingUpdate"),
        );
        default_path(&mut v, &["spec", "strategy", "type"], json!("Recreate"));
        default_path(&mut v, &["spec", "replicas"], json!(1));
        assert_eq!(
            v,
            json!({"spec": {"strategy": {"type": "RollingUpdate"}, "replicas": 1}})
        );
    }

    #[test]
    fn time_format_is_rfc3339_seconds_utc() {
        let t: jiff::Timestamp = "2024-05-06T07:08:09.123Z".parse().unwrap();
        assert_eq!(format_time(t), "2024-05-06T07:08:09Z");
    }
}

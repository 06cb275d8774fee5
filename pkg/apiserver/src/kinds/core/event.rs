//! Events: core/v1 is stored; events.k8s.io/v1 is the same object with other field names.

use k1s_apimachinery::Status;
use serde_json::{Map, Value};

use crate::meta;
use crate::registry::{Conversion, Strategy};

/// The Event strategy (both versions).
pub struct EventStrategy;

impl Strategy for EventStrategy {
    fn validate_name(&self, name: &str, prefix: bool) -> Vec<String> {
        k1s_apimachinery::validation::validate_path_segment_name(name, prefix)
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let s = |path: &[&str]| {
            meta::get_path(obj, path)
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default()
        };
        vec![
            ("involvedObject.kind", s(&["involvedObject", "kind"])),
            (
                "involvedObject.namespace",
                s(&["involvedObject", "namespace"]),
            ),
            ("involvedObject.name", s(&["involvedObject", "name"])),
            ("involvedObject.uid", s(&["involvedObject", "uid"])),
            (
                "involvedObject.apiVersion",
                s(&["involvedObject", "apiVersion"]),
            ),
            (
                "involvedObject.resourceVersion",
                s(&["involvedObject", "resourceVersion"]),
            ),
            (
                "involvedObject.fieldPath",
                s(&["involvedObject", "fieldPath"]),
            ),
            ("reason", s(&["reason"])),
            ("reportingComponent", s(&["reportingComponent"])),
            ("source", s(&["source", "component"])),
            ("type", s(&["type"])),
        ]
    }
}

/// Field names: (events.k8s.io/v1, core/v1).
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(obj: Value, to_core: bool) -> Value {
    let Value::Object(o) = obj else { return obj };
    let out: Map<String, Value> = o
        .into_iter()
        .map(|(k, v)| {
            let renamed = RENAMES.iter().find_map(|(new, old)| {
                if to_core && k == *new {
                    Some(old.to_string())
                } else if !to_core && k == *old {
                    Some(new.to_string())
                } else {
                    None
                }
            });
            (renamed.unwrap_or(k), v)
        })
        .collect();
    Value::Object(out)
}

/// Converts events.k8s.io/v1 Events to and from the stored core/v1 form.
pub struct EventsV1Conversion;

impl Conversion for EventsV1Conversion {
    fn stored_form(&self, obj: Value) -> Result<Value, Status> {
        Ok(rename(obj, true))
    }

    fn served_form(&self, obj: Value) -> Result<Value, Status> {
        Ok(rename(obj, false))
    }
}

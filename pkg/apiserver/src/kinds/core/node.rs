//! Nodes: cluster-scoped, `spec.unschedulable` selectable.

use serde_json::Value;

use crate::meta;
use crate::registry::Strategy;

/// The Node strategy.
pub struct NodeStrategy;

impl Strategy for NodeStrategy {
    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let unsched = meta::get_path(obj, &["spec", "unschedulable"])
            .and_then(Value::as_bool)
            .unwrap_or(false);
        vec![("spec.unschedulable", unsched.to_string())]
    }
}

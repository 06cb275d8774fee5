//! The autoscaling/v1 conversion.

use k1s_apimachinery::Status;
use serde_json::{Value, json};

use crate::meta::get_path;
use crate::registry::Conversion;
use crate::registry::generic::GenericStore;

/// autoscaling/v1 HPAs are stored as autoscaling/v2: the CPU target maps to one
/// Resource metric (upstream's conversion, without the annotation round trip).
pub struct HpaV1Conversion;

impl Conversion for HpaV1Conversion {
    fn stored_form(&self, _: &GenericStore, mut obj: Value) -> Result<Value, Status> {
        let target = get_path(&obj, &["spec", "targetCPUUtilizationPercentage"]).cloned();
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("targetCPUUtilizationPercentage");
            if let Some(t) = target {
                spec.insert(
                    "metrics".into(),
                    json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": t}}}]),
                );
            }
        }
        if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut)
            && let Some(cur) = status.remove("currentCPUUtilizationPercentage")
        {
            status.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cur}}}]),
            );
        }
        Ok(obj)
    }

    fn served_form(&self, _: &GenericStore, mut obj: Value) -> Result<Value, Status> {
        let cpu = |list: Option<&Value>, field: &str| {
            list.and_then(Value::as_array).and_then(|ms| {
                ms.iter().find_map(|m| {
                    (m.get("type").and_then(Value::as_str) == Some("Resource")
                        && get_path(m, &["resource", "name"]).and_then(Value::as_str)
                            == Some("cpu"))
                    .then(|| get_path(m, &["resource", field, "averageUtilization"]).cloned())
                    .flatten()
                })
            })
        };
        let target = cpu(get_path(&obj, &["spec", "metrics"]), "target");
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("metrics");
            spec.remove("behavior");
            if let Some(t) = target {
                spec.insert("targetCPUUtilizationPercentage".into(), t);
            }
        }
        let current = cpu(get_path(&obj, &["status", "currentMetrics"]), "current");
        if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
            status.remove("currentMetrics");
            status.remove("conditions");
            if let Some(c) = current {
                status.insert("currentCPUUtilizationPercentage".into(), c);
            }
        }
        Ok(obj)
    }
}

//! HorizontalPodAutoscalers (upstream `pkg/apis/autoscaling/validation` and
//! `pkg/registry/autoscaling/horizontalpodautoscaler`). Objects are validated in their
//! stored autoscaling/v2 form, so an autoscaling/v1 write is checked after conversion,
//! as upstream checks its internal form: `spec.minReplicas`, `spec.maxReplicas` and
//! `spec.scaleTargetRef` keep their paths, and v1's CPU target becomes
//! `spec.metrics[0].resource.target.averageUtilization`.

use k1s_apimachinery::validation::{is_dns1123_label, validate_path_segment_name};
use k1s_apimachinery::{ErrorList, FieldError, Path, Quantity};
use serde_json::{Value, json};

use crate::kinds::validation::{Fields, nonnegative};
use crate::meta::default_path;
use crate::registry::Strategy;

/// The HorizontalPodAutoscaler strategy (both served versions).
pub struct HorizontalPodAutoscalerStrategy;

const MAX_PERIOD_SECONDS: i64 = 1800;
const MAX_STABILIZATION_WINDOW_SECONDS: i64 = 3600;
const METRIC_SOURCE_TYPES: &[&str] = &[
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];
const SELECT_POLICIES: &[&str] = &["Disabled", "Max", "Min"];
const POLICY_TYPES: &[&str] = &["Percent", "Pods"];

/// `ValidateCrossVersionObjectReference`: kind and name, each a path segment.
fn validate_reference(r: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for f in ["kind", "name"] {
        let v = r.s(f);
        if v.is_empty() {
            errs.push(FieldError::required(&path.child(f), ""));
        } else {
            for msg in validate_path_segment_name(v, false) {
                errs.push(FieldError::invalid(&path.child(f), v, msg));
            }
        }
    }
    errs
}

/// The sign of a quantity field (`Sign()`); unparsable or absent reads as 0.
fn quantity_sign(v: &Value) -> i32 {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return 0,
    };
    Quantity::parse(&text).map_or(0, |q| q.signum())
}

/// `validateMetricTarget`.
fn validate_target(t: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let ty = t.s("type");
    if ty.is_empty() {
        errs.push(FieldError::required(
            &path.child("type"),
            "must specify a metric target type",
        ));
    }
    if !["Utilization", "Value", "AverageValue"].contains(&ty) {
        errs.push(FieldError::invalid(
            &path.child("type"),
            ty,
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    for f in ["value", "averageValue"] {
        if t.has(f) && quantity_sign(t.f(f)) != 1 {
            errs.push(FieldError::invalid(
                &path.child(f),
                t.f(f).clone(),
                "must be positive",
            ));
        }
    }
    if let Some(u) = t.i("averageUtilization")
        && u < 1
    {
        errs.push(FieldError::invalid(
            &path.child("averageUtilization"),
            u,
            "must be greater than 0",
        ));
    }
    errs
}

/// `validateMetricIdentifier`.
fn validate_identifier(id: &Value, path: &Path) -> ErrorList {
    let name = id.s("name");
    if name.is_empty() {
        return vec![FieldError::required(
            &path.child("name"),
            "must specify a metric name",
        )];
    }
    validate_path_segment_name(name, false)
        .into_iter()
        .map(|msg| FieldError::invalid(&path.child("name"), name, msg))
        .collect()
}

/// The checks of one metric source, by its field name.
fn validate_source(kind: &str, src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let target = src.f("target");
    let tp = path.child("target");
    match kind {
        "object" => {
            errs.extend(validate_reference(
                src.f("describedObject"),
                &path.child("describedObject"),
            ));
            errs.extend(validate_identifier(src.f("metric"), &path.child("metric")));
            errs.extend(validate_target(target, &tp));
            if !target.has("value") && !target.has("averageValue") {
                errs.push(FieldError::required(
                    &tp.child("averageValue"),
                    "must set either a target value or averageValue",
                ));
            }
        }
        "external" => {
            errs.extend(validate_identifier(src.f("metric"), &path.child("metric")));
            errs.extend(validate_target(target, &tp));
            if !target.has("value") && !target.has("averageValue") {
                errs.push(FieldError::required(
                    &tp.child("averageValue"),
                    "must set either a target value for metric or a per-pod target",
                ));
            }
            if target.has("value") && target.has("averageValue") {
                errs.push(FieldError::forbidden(
                    &tp.child("value"),
                    "may not set both a target value for metric and a per-pod target",
                ));
            }
        }
        "pods" => {
            errs.extend(validate_identifier(src.f("metric"), &path.child("metric")));
            errs.extend(validate_target(target, &tp));
            if !target.has("averageValue") {
                errs.push(FieldError::required(
                    &tp.child("averageValue"),
                    "must specify a positive target averageValue",
                ));
            }
        }
        _ => {
            // resource and containerResource
            let name = src.s("name");
            if name.is_empty() {
                errs.push(FieldError::required(
                    &path.child("name"),
                    "must specify a resource name",
                ));
            }
            if kind == "containerResource" {
                let container = src.s("container");
                if container.is_empty() {
                    errs.push(FieldError::required(
                        &path.child("container"),
                        "must specify a container",
                    ));
                } else {
                    for msg in is_dns1123_label(container) {
                        errs.push(FieldError::invalid(
                            &path.child("container"),
                            container,
                            msg,
                        ));
                    }
                }
            }
            errs.extend(validate_target(target, &tp));
            let (util, avg) = (target.has("averageUtilization"), target.has("averageValue"));
            if !util && !avg {
                errs.push(FieldError::required(
                    &tp.child("averageUtilization"),
                    "must set either a target raw value or a target utilization",
                ));
            }
            if util && avg {
                errs.push(FieldError::forbidden(
                    &tp.child("averageValue"),
                    "may not set both a target raw value and a target utilization",
                ));
            }
        }
    }
    errs
}

/// `validateMetricSpec`.
fn validate_metric(m: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let ty = m.s("type");
    if ty.is_empty() {
        errs.push(FieldError::required(
            &path.child("type"),
            "must specify a metric source type",
        ));
    }
    if !METRIC_SOURCE_TYPES.contains(&ty) {
        errs.push(FieldError::not_supported(
            &path.child("type"),
            ty,
            METRIC_SOURCE_TYPES,
        ));
    }
    // Only the first source present (in this order) is validated.
    let present: Vec<&str> = [
        "object",
        "external",
        "pods",
        "resource",
        "containerResource",
    ]
    .into_iter()
    .filter(|f| m.has(f))
    .collect();
    if let Some(first) = present.first() {
        errs.extend(validate_source(first, m.f(first), &path.child(first)));
    }
    let expected = match ty {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "External" => "external",
        "ContainerResource" => "containerResource",
        _ => {
            errs.push(FieldError::not_supported(
                &path.child("type"),
                ty,
                METRIC_SOURCE_TYPES,
            ));
            ""
        }
    };
    if !expected.is_empty() && !m.has(expected) {
        errs.push(FieldError::required(
            &path.child(expected),
            "must populate information for the given metric source",
        ));
    }
    if present.len() != 1 {
        for f in present.iter().filter(|f| **f != expected) {
            errs.push(FieldError::forbidden(
                &path.child(f),
                "must populate the given metric source only",
            ));
        }
    }
    errs
}

/// `validateScalingRules`.
fn validate_rules(rules: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(w) = rules.i("stabilizationWindowSeconds") {
        let p = path.child("stabilizationWindowSeconds");
        if w < 0 {
            errs.push(FieldError::invalid(
                &p,
                w,
                "must be greater than or equal to zero",
            ));
        }
        if w > MAX_STABILIZATION_WINDOW_SECONDS {
            errs.push(FieldError::invalid(
                &p,
                w,
                format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"),
            ));
        }
    }
    if rules.has("selectPolicy") && !SELECT_POLICIES.contains(&rules.s("selectPolicy")) {
        errs.push(FieldError::not_supported(
            &path.child("selectPolicy"),
            rules.s("selectPolicy"),
            SELECT_POLICIES,
        ));
    }
    let policies = rules.a("policies");
    let pp = path.child("policies");
    if policies.is_empty() {
        errs.push(FieldError::required(
            &pp,
            "must specify at least one Policy",
        ));
    }
    for (i, p) in policies.iter().enumerate() {
        let ip = pp.index(i);
        let ty = p.s("type");
        if !POLICY_TYPES.contains(&ty) {
            errs.push(FieldError::not_supported(
                &ip.child("type"),
                ty,
                POLICY_TYPES,
            ));
        }
        let value = p.i("value").unwrap_or(0);
        if value <= 0 {
            errs.push(FieldError::invalid(
                &ip.child("value"),
                value,
                "must be greater than zero",
            ));
        }
        let period = p.i("periodSeconds").unwrap_or(0);
        if period <= 0 {
            errs.push(FieldError::invalid(
                &ip.child("periodSeconds"),
                period,
                "must be greater than zero",
            ));
        }
        if period > MAX_PERIOD_SECONDS {
            errs.push(FieldError::invalid(
                &ip.child("periodSeconds"),
                period,
                format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
            ));
        }
    }
    errs
}

/// `validateHorizontalPodAutoscalerSpec`; `min_lower_bound` is 1, or 0 for an object
/// that already scales to zero (the HPAScaleToZero gate is off by default).
fn validate_spec(spec: &Value, min_lower_bound: i64) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    let min = spec.i("minReplicas");
    if let Some(m) = min
        && m < min_lower_bound
    {
        errs.push(FieldError::invalid(
            &path.child("minReplicas"),
            m,
            format!("must be greater than or equal to {min_lower_bound}"),
        ));
    }
    let max = spec.i("maxReplicas").unwrap_or(0);
    if max < 1 {
        errs.push(FieldError::invalid(
            &path.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if let Some(m) = min
        && max < m
    {
        errs.push(FieldError::invalid(
            &path.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    errs.extend(validate_reference(
        spec.f("scaleTargetRef"),
        &path.child("scaleTargetRef"),
    ));
    let metrics = spec.a("metrics");
    let mut object_or_external = false;
    for (i, m) in metrics.iter().enumerate() {
        errs.extend(validate_metric(m, &path.child("metrics").index(i)));
        object_or_external |= matches!(m.s("type"), "Object" | "External");
    }
    if min == Some(0) && !object_or_external {
        errs.push(FieldError::forbidden(
            &path.child("metrics"),
            "must specify at least one Object or External metric to support scaling to zero replicas",
        ));
    }
    let behavior = spec.f("behavior");
    for f in ["scaleUp", "scaleDown"] {
        if behavior.has(f) {
            errs.extend(validate_rules(
                behavior.f(f),
                &path.child("behavior").child(f),
            ));
        }
    }
    errs
}

/// `copyHPAScalingRules` onto a direction's defaults: the user's fields win, the rest
/// (policies included) come from `defaults`.
fn default_rules(rules: &mut Value, defaults: Value) {
    let Value::Object(mut merged) = defaults else {
        return;
    };
    if let Some(user) = rules.as_object() {
        for (k, v) in user {
            if !v.is_null() {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    *rules = Value::Object(merged);
}

impl Strategy for HorizontalPodAutoscalerStrategy {
    /// autoscaling/v2's `SetDefaults_HorizontalPodAutoscaler`: one replica at least, a
    /// CPU target of 80% when no metric is given, and a given behavior completed with the
    /// controller's historical rules.
    fn default(&self, obj: &mut Value) {
        default_path(obj, &["spec", "minReplicas"], json!(1));
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        if spec
            .get("metrics")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            spec.insert(
                "metrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}}}]),
            );
        }
        if let Some(behavior) = spec.get_mut("behavior").filter(|b| b.is_object()) {
            default_rules(
                &mut behavior["scaleUp"],
                json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15}
                ]}),
            );
            default_rules(
                &mut behavior["scaleDown"],
                json!({"selectPolicy": "Max", "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15}
                ]}),
            );
        }
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec(obj.f("spec"), 1)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let bound = if old.f("spec").i("minReplicas") == Some(0) {
            0
        } else {
            1
        };
        validate_spec(new.f("spec"), bound)
    }

    /// `ValidateHorizontalPodAutoscalerStatusUpdate`.
    fn validate_status_update(&self, new: &Value, _old: &Value) -> ErrorList {
        let status = new.f("status");
        let path = Path::new("status");
        let mut errs = nonnegative(status.i("currentReplicas"), &path.child("currentReplicas"));
        errs.extend(nonnegative(
            status.i("desiredReplicas"),
            &path.child("desiredReplicas"),
        ));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(spec: Value) -> Vec<String> {
        let mut o = json!({"metadata": {"name": "h"}, "spec": spec});
        HorizontalPodAutoscalerStrategy.default(&mut o);
        HorizontalPodAutoscalerStrategy
            .validate(&o)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn kubectl_autoscale_is_accepted() {
        let e = errors(json!({
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
        }));
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn replica_bounds_and_target() {
        let e = errors(
            json!({"scaleTargetRef": {"kind": "Deployment"}, "minReplicas": 5, "maxReplicas": 2}),
        );
        assert_eq!(
            e,
            vec![
                "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
                "spec.scaleTargetRef.name: Required value",
            ]
        );
        let e = errors(
            json!({"scaleTargetRef": {"kind": "Deployment", "name": "w"}, "minReplicas": 0, "maxReplicas": 2}),
        );
        assert_eq!(
            e[0],
            "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"
        );
    }

    #[test]
    fn behavior_is_completed_with_default_rules() {
        let mut o = json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"}, "maxReplicas": 3,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}}});
        HorizontalPodAutoscalerStrategy.default(&mut o);
        assert!(HorizontalPodAutoscalerStrategy.validate(&o).is_empty());
        assert_eq!(
            o["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
            json!(300)
        );
        assert_eq!(
            o["spec"]["behavior"]["scaleUp"]["policies"][0]["value"],
            json!(4)
        );
        assert_eq!(o["spec"]["metrics"][0]["resource"]["name"], json!("cpu"));
        // An explicitly empty list of policies is kept, and refused.
        let e = errors(
            json!({"scaleTargetRef": {"kind": "Deployment", "name": "w"}, "maxReplicas": 3,
            "behavior": {"scaleUp": {"policies": []}}}),
        );
        assert_eq!(
            e,
            vec![
                "spec.behavior.scaleUp.policies: Required value: must specify at least one Policy"
            ]
        );
    }

    #[test]
    fn a_metric_must_populate_its_source() {
        let e = errors(
            json!({"scaleTargetRef": {"kind": "Deployment", "name": "w"}, "maxReplicas": 2,
            "metrics": [{"type": "Pods"}]}),
        );
        assert_eq!(
            e,
            vec![
                "spec.metrics[0].pods: Required value: must populate information for the given metric source"
            ]
        );
    }
}

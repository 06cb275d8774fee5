//! LimitRanges: upstream's `SetDefaults_LimitRangeItem` and `ValidateLimitRange`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use k1s_apimachinery::validation::is_qualified_name;
use k1s_apimachinery::{ErrorList, FieldError, Path, Quantity};
use serde_json::{Map, Value};

use crate::kinds::validation::Fields;
use crate::kinds::validation::resources::{
    is_overcommit_allowed, quantity_bad_value, quantity_of, validate_container_resource_name,
    validate_resource_name,
};
use crate::registry::Strategy;

/// The LimitRange strategy.
pub struct LimitRangeStrategy;

const LIMIT_TYPES: &[&str] = &["Pod", "Container", "PersistentVolumeClaim"];

fn validate_type_name(ty: &str, path: &Path) -> ErrorList {
    let errs: ErrorList = is_qualified_name(ty)
        .into_iter()
        .map(|m| FieldError::invalid(path, ty, m))
        .collect();
    if !errs.is_empty() {
        return errs;
    }
    if !ty.contains('/') && !LIMIT_TYPES.contains(&ty) {
        return vec![FieldError::invalid(
            path,
            ty,
            "must be a standard limit type or fully qualified",
        )];
    }
    errs
}

fn validate_resource(ty: &str, name: &str, path: &Path) -> ErrorList {
    match ty {
        "Pod" | "Container" => validate_container_resource_name(name, path),
        _ => validate_resource_name(name, path),
    }
}

/// Copies every entry of `from` missing in `into` (the Container defaulting steps).
fn fill(item: &mut Map<String, Value>, into: &str, from: &str) {
    let source = item.get(from).and_then(Value::as_object).cloned();
    let target = item
        .entry(into)
        .or_insert_with(|| Value::Object(Map::new()));
    if let (Some(source), Some(target)) = (source, target.as_object_mut()) {
        for (k, v) in source {
            target.entry(k).or_insert(v);
        }
    }
}

fn quantities(item: &Value, key: &str) -> BTreeMap<String, Quantity> {
    item.m(key)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| quantity_of(v).map(|q| (k.clone(), q)))
                .collect()
        })
        .unwrap_or_default()
}

fn validate_item(item: &Value, path: &Path, errs: &mut ErrorList) {
    let ty = item.s("type");
    let mut keys: BTreeSet<String> = BTreeSet::new();
    let mut names = |key: &str, errs: &mut ErrorList| {
        let list = quantities(item, key);
        for k in list.keys() {
            errs.extend(validate_resource(ty, k, &path.child(key).key(k)));
            keys.insert(k.clone());
        }
        list
    };
    let max = names("max", errs);
    let min = names("min", errs);
    let (mut defaults, mut default_requests) = (BTreeMap::new(), BTreeMap::new());
    if ty == "Pod" {
        if item.m("default").is_some_and(|m| !m.is_empty()) {
            errs.push(FieldError::forbidden(
                &path.child("default"),
                "may not be specified when `type` is 'Pod'",
            ));
        }
        if item.m("defaultRequest").is_some_and(|m| !m.is_empty()) {
            errs.push(FieldError::forbidden(
                &path.child("defaultRequest"),
                "may not be specified when `type` is 'Pod'",
            ));
        }
    } else {
        defaults = names("default", errs);
        default_requests = names("defaultRequest", errs);
    }
    if ty == "PersistentVolumeClaim" && !min.contains_key("storage") && !max.contains_key("storage")
    {
        errs.push(FieldError::required(
            &path.child("limits"),
            "either minimum or maximum storage value is required, but neither was provided",
        ));
    }
    let ratios = names("maxLimitRequestRatio", errs);
    let one = Quantity::from_i64(1, k1s_apimachinery::quantity::Format::DecimalSI);
    for k in &keys {
        let (mn, mx, df, dr, ratio) = (
            min.get(k),
            max.get(k),
            defaults.get(k),
            default_requests.get(k),
            ratios.get(k),
        );
        if let (Some(mn), Some(mx)) = (mn, mx)
            && mn > mx
        {
            errs.push(FieldError::invalid(
                &path.child("min").key(k),
                quantity_bad_value(mn),
                format!("min value {mn} is greater than max value {mx}"),
            ));
        }
        if let (Some(dr), Some(mn)) = (dr, mn)
            && mn > dr
        {
            errs.push(FieldError::invalid(
                &path.child("defaultRequest").key(k),
                quantity_bad_value(dr),
                format!("min value {mn} is greater than default request value {dr}"),
            ));
        }
        if let (Some(dr), Some(mx)) = (dr, mx)
            && dr > mx
        {
            errs.push(FieldError::invalid(
                &path.child("defaultRequest").key(k),
                quantity_bad_value(dr),
                format!("default request value {dr} is greater than max value {mx}"),
            ));
        }
        if let (Some(dr), Some(df)) = (dr, df)
            && dr > df
        {
            errs.push(FieldError::invalid(
                &path.child("defaultRequest").key(k),
                quantity_bad_value(dr),
                format!("default request value {dr} is greater than default limit value {df}"),
            ));
        }
        if let (Some(df), Some(mn)) = (df, mn)
            && mn > df
        {
            errs.push(FieldError::invalid(
                &path.child("default").key(k),
                quantity_bad_value(mn),
                format!("min value {mn} is greater than default value {df}"),
            ));
        }
        if let (Some(df), Some(mx)) = (df, mx)
            && df > mx
        {
            errs.push(FieldError::invalid(
                &path.child("default").key(k),
                quantity_bad_value(mx),
                format!("default value {df} is greater than max value {mx}"),
            ));
        }
        if let Some(r) = ratio
            && *r < one
        {
            errs.push(FieldError::invalid(
                &path.child("maxLimitRequestRatio").key(k),
                quantity_bad_value(r),
                format!("ratio {r} is less than 1"),
            ));
        }
        if let (Some(r), Some(mn), Some(mx)) = (ratio, mn, mx) {
            // Upstream compares in thousandths when that cannot overflow.
            const MAX_MILLI: i64 = i64::MAX / 1000;
            let (ratio_value, min_value, max_value) =
                if r.value() < MAX_MILLI && mn.value() < MAX_MILLI && mx.value() < MAX_MILLI {
                    (
                        r.milli_value() as f64 / 1000.0,
                        mn.milli_value(),
                        mx.milli_value(),
                    )
                } else {
                    (r.value() as f64, mn.value(), mx.value())
                };
            let limit = max_value as f64 / min_value as f64;
            if ratio_value > limit {
                errs.push(FieldError::invalid(
                    &path.child("maxLimitRequestRatio").key(k),
                    quantity_bad_value(r),
                    format!("ratio {r} is greater than max/min = {limit:.6}"),
                ));
            }
        }
        if let (Some(df), Some(dr)) = (df, dr)
            && !is_overcommit_allowed(k)
            && df != dr
        {
            errs.push(FieldError::invalid(
                &path.child("defaultRequest").key(k),
                quantity_bad_value(dr),
                format!("default value {df} must equal to defaultRequest value {dr} in {k}"),
            ));
        }
    }
}

impl Strategy for LimitRangeStrategy {
    fn default(&self, obj: &mut Value) {
        // SetDefaults_LimitRangeItem: Container limits default from max, requests from
        // the default limit, then from min.
        let Some(items) = obj
            .get_mut("spec")
            .and_then(|s| s.get_mut("limits"))
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        for item in items {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            if item.get("type").and_then(Value::as_str) != Some("Container") {
                continue;
            }
            fill(item, "default", "max");
            fill(item, "defaultRequest", "default");
            fill(item, "defaultRequest", "min");
        }
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = ErrorList::new();
        let path = Path::new("spec").child("limits");
        let mut types: HashSet<&str> = HashSet::new();
        for (i, item) in obj.f("spec").a("limits").iter().enumerate() {
            let p = path.index(i);
            let ty = item.s("type");
            errs.extend(validate_type_name(ty, &p.child("type")));
            if !types.insert(ty) {
                errs.push(FieldError::duplicate(&p.child("type"), ty));
            }
            validate_item(item, &p, &mut errs);
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn container_defaults_come_from_max_default_and_min() {
        let mut lr = json!({"spec": {"limits": [{"type": "Container",
            "max": {"cpu": "800m"}, "min": {"cpu": "200m", "memory": "100Mi"}}]}});
        LimitRangeStrategy.default(&mut lr);
        let item = &lr["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "800m"}));
        assert_eq!(
            item["defaultRequest"],
            json!({"cpu": "800m", "memory": "100Mi"})
        );
        assert!(LimitRangeStrategy.validate(&lr).is_empty());
    }

    #[test]
    fn docs_limit_ranges_pass_and_inverted_bounds_fail() {
        let s = LimitRangeStrategy;
        // "Configure Default Memory Requests and Limits for a Namespace" and the storage
        // limit example.
        for mut lr in [
            json!({"spec": {"limits": [{"default": {"memory": "512Mi"}, "defaultRequest": {"memory": "256Mi"}, "type": "Container"}]}}),
            json!({"spec": {"limits": [{"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}, "min": {"storage": "1Gi"}}]}}),
            json!({"spec": {"limits": [{"type": "Pod", "max": {"cpu": "2"}, "maxLimitRequestRatio": {"memory": "2"}}]}}),
        ] {
            s.default(&mut lr);
            assert!(s.validate(&lr).is_empty(), "{lr}: {:?}", s.validate(&lr));
        }
        let bad = json!({"spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}},
            {"type": "PersistentVolumeClaim"}, {"type": "Pod", "default": {"cpu": "1"}}]}});
        let t: Vec<String> = s.validate(&bad).iter().map(ToString::to_string).collect();
        assert!(t.contains(&"spec.limits[0].min[cpu]: Invalid value: 2: min value 2 is greater than max value 1".to_string()), "{t:?}");
        assert!(t.contains(&"spec.limits[1].limits: Required value: either minimum or maximum storage value is required, but neither was provided".to_string()), "{t:?}");
        assert!(
            t.contains(
                &"spec.limits[2].default: Forbidden: may not be specified when `type` is 'Pod'"
                    .to_string()
            ),
            "{t:?}"
        );
    }
}

//! ResourceQuotas (upstream `ValidateResourceQuota*` and `pkg/registry/core/resourcequota`);
//! the resource-name and quantity rules they share with other kinds are in
//! `kinds::validation::resources`.

use k1s_apimachinery::meta::FIELD_IMMUTABLE_ERROR_MSG;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::validation::Fields;
use crate::kinds::validation::resources::{
    is_quota_huge_page_resource_name, resource_list, validate_resource_name,
    validate_resource_quantity_value,
};
use crate::registry::Strategy;

/// The ResourceQuota strategy.
pub struct ResourceQuotaStrategy;

/// Resources the quota system tracks (`standardQuotaResources`).
const STANDARD_QUOTA_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

fn is_standard_quota_resource_name(name: &str) -> bool {
    STANDARD_QUOTA_RESOURCES.contains(&name) || is_quota_huge_page_resource_name(name)
}

/// Upstream's `ValidateResourceQuotaResourceName`.
pub fn validate_quota_resource_name(name: &str, path: &Path) -> ErrorList {
    let mut errs = validate_resource_name(name, path);
    if !name.contains('/') && !is_standard_quota_resource_name(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource for quota",
        ));
    }
    errs
}

// === scopes ===

const STANDARD_SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
    "VolumeAttributesClass",
];

fn scope_valid_for_resource(scope: &str, resource: &str) -> bool {
    let pod_count = resource == "pods";
    let pod_compute = [
        "cpu",
        "memory",
        "limits.cpu",
        "limits.memory",
        "requests.cpu",
        "requests.memory",
    ]
    .contains(&resource);
    match scope {
        "Terminating"
        | "NotTerminating"
        | "NotBestEffort"
        | "PriorityClass"
        | "CrossNamespacePodAffinity" => pod_count || pod_compute,
        "BestEffort" => pod_count,
        "VolumeAttributesClass" => {
            resource == "persistentvolumeclaims" || resource == "requests.storage"
        }
        _ => true,
    }
}

fn conflicting(scopes: &[&str]) -> usize {
    [
        ("BestEffort", "NotBestEffort"),
        ("Terminating", "NotTerminating"),
    ]
    .iter()
    .filter(|(a, b)| scopes.contains(a) && scopes.contains(b))
    .count()
}

fn validate_scopes(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let scopes_value = spec.f("scopes");
    let scopes: Vec<&str> = spec.a("scopes").iter().filter_map(Value::as_str).collect();
    if scopes.is_empty() {
        return errs;
    }
    let mut hard: Vec<&str> = spec
        .m("hard")
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    hard.sort_unstable();
    let p = path.child("scopes");
    for scope in &scopes {
        if !STANDARD_SCOPES.contains(scope) {
            errs.push(FieldError::invalid(
                &p,
                scopes_value.clone(),
                "unsupported scope",
            ));
        }
        for k in &hard {
            if is_standard_quota_resource_name(k) && !scope_valid_for_resource(scope, k) {
                errs.push(FieldError::invalid(
                    &p,
                    scopes_value.clone(),
                    "unsupported scope applied to resource",
                ));
            }
        }
    }
    for _ in 0..conflicting(&scopes) {
        errs.push(FieldError::invalid(
            &p,
            scopes_value.clone(),
            "conflicting scopes",
        ));
    }
    errs
}

fn validate_scope_selector(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let selector = spec.f("scopeSelector");
    if !spec.has("scopeSelector") {
        return errs;
    }
    let mut hard: Vec<&str> = spec
        .m("hard")
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    hard.sort_unstable();
    let p = path.child("scopeSelector").child("matchExpressions");
    let mut seen: Vec<&str> = Vec::new();
    for req in selector.a("matchExpressions") {
        let scope = req.s("scopeName");
        let op = req.s("operator");
        if !STANDARD_SCOPES.contains(&scope) {
            errs.push(FieldError::invalid(
                &p.child("scopeName"),
                scope,
                "unsupported scope",
            ));
        }
        for k in &hard {
            if is_standard_quota_resource_name(k) && !scope_valid_for_resource(scope, k) {
                errs.push(FieldError::invalid(
                    &p,
                    selector.clone(),
                    "unsupported scope applied to resource",
                ));
            }
        }
        if matches!(
            scope,
            "BestEffort"
                | "NotBestEffort"
                | "Terminating"
                | "NotTerminating"
                | "CrossNamespacePodAffinity"
        ) && op != "Exists"
        {
            errs.push(FieldError::invalid(
                &p.child("operator"),
                op,
                "must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
            ));
        }
        let values = req.a("values");
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        &p.child("values"),
                        "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("values"),
                        req.f("values").clone(),
                        "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                &p.child("operator"),
                op,
                "not a valid selector operator",
            )),
        }
        seen.push(scope);
    }
    for _ in 0..conflicting(&seen) {
        // Upstream reports the (unrelated) `scopes` list here.
        errs.push(FieldError::invalid(
            &p,
            spec.f("scopes").clone(),
            "conflicting scopes",
        ));
    }
    errs
}

fn validate_hard(list: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (k, q) in resource_list(list) {
        let p = path.key(k);
        errs.extend(validate_quota_resource_name(k, &p));
        errs.extend(validate_resource_quantity_value(k, &q, &p));
    }
    errs
}

/// Upstream's `ValidateResourceQuotaSpec`.
fn validate_spec(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = validate_hard(spec.f("hard"), &path.child("hard"));
    errs.extend(validate_scopes(spec, path));
    errs.extend(validate_scope_selector(spec, path));
    errs
}

/// Upstream's `ValidateResourceQuotaStatus` (also the status update's checks).
fn validate_status(status: &Value, path: &Path) -> ErrorList {
    let mut errs = validate_hard(status.f("hard"), &path.child("hard"));
    errs.extend(validate_hard(status.f("used"), &path.child("used")));
    errs
}

fn sorted_scopes(obj: &Value) -> Vec<String> {
    let mut s: Vec<String> = obj
        .f("spec")
        .a("scopes")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    s.sort();
    s.dedup();
    s
}

impl Strategy for ResourceQuotaStrategy {
    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        // Upstream resets the status; the quota controller fills it in.
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = validate_spec(obj.f("spec"), &Path::new("spec"));
        errs.extend(validate_status(obj.f("status"), &Path::new("status")));
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = validate_spec(new.f("spec"), &Path::new("spec"));
        // Scopes are compared as sets.
        if sorted_scopes(new) != sorted_scopes(old) {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("scopes"),
                new.f("spec").f("scopes").clone(),
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> ErrorList {
        validate_status(new.f("status"), &Path::new("status"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kinds::validation::resources::{
        is_extended_resource_name, is_integer_resource_name, is_overcommit_allowed,
    };
    use crate::test_util::texts;

    #[test]
    fn resource_names_follow_the_helper_sets() {
        assert!(is_extended_resource_name("nvidia.com/gpu"));
        assert!(!is_extended_resource_name("requests.nvidia.com/gpu"));
        assert!(!is_extended_resource_name("kubernetes.io/foo"));
        assert!(is_integer_resource_name("pods") && is_integer_resource_name("nvidia.com/gpu"));
        assert!(!is_overcommit_allowed("hugepages-2Mi") && is_overcommit_allowed("cpu"));
        let p = Path::new("x");
        assert!(validate_quota_resource_name("count/deployments.apps", &p).is_empty());
        assert!(validate_quota_resource_name("requests.nvidia.com/gpu", &p).is_empty());
        assert_eq!(
            texts(validate_quota_resource_name("storage", &p)),
            vec!["x: Invalid value: \"storage\": must be a standard resource for quota"]
        );
    }

    #[test]
    fn docs_quotas_pass_and_bad_scopes_fail() {
        let s = ResourceQuotaStrategy;
        // From the "Resource Quotas" and "quota per priority class" docs.
        let compute = json!({"spec": {"hard": {"requests.cpu": "1", "requests.memory": "1Gi",
            "limits.cpu": "2", "limits.memory": "2Gi", "requests.nvidia.com/gpu": 4}}});
        assert!(
            s.validate(&compute).is_empty(),
            "{:?}",
            s.validate(&compute)
        );
        let objects = json!({"spec": {"hard": {"configmaps": "10", "persistentvolumeclaims": "4",
            "pods": "4", "replicationcontrollers": "20", "secrets": "10", "services": "10",
            "services.loadbalancers": "2", "count/deployments.apps": "2"}}});
        assert!(
            s.validate(&objects).is_empty(),
            "{:?}",
            s.validate(&objects)
        );
        let priority = json!({"spec": {"hard": {"cpu": "1000", "memory": "200Gi", "pods": "10"},
            "scopeSelector": {"matchExpressions": [{"operator": "In", "scopeName": "PriorityClass", "values": ["high"]}]}}});
        assert!(
            s.validate(&priority).is_empty(),
            "{:?}",
            s.validate(&priority)
        );
        let bad = json!({"spec": {"hard": {"pods": "1.5", "services": "1"}, "scopes": ["BestEffort", "NotBestEffort"]}});
        let t = texts(s.validate(&bad));
        assert!(
            t.contains(
                &"spec.hard[pods]: Invalid value: \"1500m\": must be an integer".to_string()
            ),
            "{t:?}"
        );
        assert!(t.iter().any(|e| e.ends_with("conflicting scopes")), "{t:?}");
        assert!(
            t.iter()
                .any(|e| e.ends_with("unsupported scope applied to resource")),
            "{t:?}"
        );
    }
}

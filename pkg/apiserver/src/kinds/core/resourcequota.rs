//! ResourceQuotas (upstream `ValidateResourceQuota*` and `pkg/registry/core/resourcequota`),
//! and the resource-name and quantity rules of `pkg/apis/core/helper` that LimitRanges,
//! PersistentVolumes, PersistentVolumeClaims and Nodes share with quotas.

use k1s_apimachinery::meta::{FIELD_IMMUTABLE_ERROR_MSG, IS_NEGATIVE_ERROR_MSG};
use k1s_apimachinery::validation::is_qualified_name;
use k1s_apimachinery::{ErrorList, FieldError, Path, Quantity};
use serde_json::{Value, json};

use crate::kinds::validation::Fields;
use crate::registry::Strategy;

/// The ResourceQuota strategy.
pub struct ResourceQuotaStrategy;

// === resource names (pkg/apis/core/helper) ===

/// Resources every kind knows (`standardResources`).
const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

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

/// Resources counted in whole units (`integerResources`).
const INTEGER_RESOURCES: &[&str] = &[
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

/// Whether `name` is a huge page size (`hugepages-2Mi`).
pub fn is_huge_page_resource_name(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_quota_huge_page_resource_name(name: &str) -> bool {
    name.starts_with("hugepages-") || name.starts_with("requests.hugepages-")
}

/// Whether `name` is in the `kubernetes.io/` namespace (an unprefixed name is).
pub fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Whether `name` is an extended resource (`example.com/gpu`): not native, not a quota
/// `requests.` name, and a qualified name once prefixed with `requests.`.
pub fn is_extended_resource_name(name: &str) -> bool {
    if is_native_resource(name) || name.starts_with("requests.") {
        return false;
    }
    is_qualified_name(&format!("requests.{name}")).is_empty()
}

/// Whether requests of `name` may be below its limit (native, not huge pages).
pub fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_huge_page_resource_name(name)
}

/// Whether `name` is measured in whole units.
pub fn is_integer_resource_name(name: &str) -> bool {
    INTEGER_RESOURCES.contains(&name) || is_extended_resource_name(name)
}

fn is_standard_resource_name(name: &str) -> bool {
    STANDARD_RESOURCES.contains(&name) || is_quota_huge_page_resource_name(name)
}

fn is_standard_quota_resource_name(name: &str) -> bool {
    STANDARD_QUOTA_RESOURCES.contains(&name) || is_quota_huge_page_resource_name(name)
}

fn is_standard_container_resource_name(name: &str) -> bool {
    ["cpu", "memory", "ephemeral-storage"].contains(&name) || is_huge_page_resource_name(name)
}

/// Upstream's `validateResourceName`: a qualified name, and a standard resource unless it
/// has a domain.
pub fn validate_resource_name(name: &str, path: &Path) -> ErrorList {
    let errs: ErrorList = is_qualified_name(name)
        .into_iter()
        .map(|m| FieldError::invalid(path, name, m))
        .collect();
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') && !is_standard_resource_name(name) {
        return vec![FieldError::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        )];
    }
    errs
}

/// Upstream's `validateContainerResourceName`: what a container (or a Pod/Container
/// LimitRange) may name.
pub fn validate_container_resource_name(name: &str, path: &Path) -> ErrorList {
    let mut errs = validate_resource_name(name, path);
    if !name.contains('/') {
        if !is_standard_container_resource_name(name) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) && !is_extended_resource_name(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
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

// === quantities ===

/// A quantity field's value: quantities arrive as strings, or as JSON numbers, which
/// upstream's decoder also accepts.
pub fn quantity_of(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s).ok(),
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

/// How a `resource.Quantity` bad value prints: through its `String()`, which is bare
/// (`1500m`, not `"1500m"`). JSON can only carry that bare when it is a number, so
/// whole values print as numbers and the others as quoted strings.
pub fn quantity_bad_value(q: &Quantity) -> Value {
    let s = q.to_string();
    match s.parse::<i64>() {
        Ok(n) => json!(n),
        Err(_) => json!(s),
    }
}

/// Upstream's `ValidateResourceQuantityValue`: not negative, and whole for integer
/// resources.
pub fn validate_resource_quantity_value(name: &str, q: &Quantity, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if q.signum() < 0 {
        errs.push(FieldError::invalid(
            path,
            q.to_string(),
            IS_NEGATIVE_ERROR_MSG,
        ));
    }
    if is_integer_resource_name(name) && q.milli_value() % 1000 != 0 {
        errs.push(FieldError::invalid(
            path,
            quantity_bad_value(q),
            "must be an integer",
        ));
    }
    errs
}

/// Upstream's `validateBasicResource`: the whole-unit value may not be negative.
pub fn validate_basic_resource(q: &Quantity, path: &Path) -> ErrorList {
    if q.value() < 0 {
        return vec![FieldError::invalid(
            path,
            q.value(),
            "must be a valid resource quantity",
        )];
    }
    ErrorList::new()
}

/// The entries of a resource list whose values parse as quantities (the decoder already
/// refused those that do not).
pub fn resource_list(v: &Value) -> Vec<(&str, Quantity)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, q)| quantity_of(q).map(|q| (k.as_str(), q)))
                .collect()
        })
        .unwrap_or_default()
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
    use super::*;

    fn texts(errs: &ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

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
            texts(&validate_quota_resource_name("storage", &p)),
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
        let t = texts(&s.validate(&bad));
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

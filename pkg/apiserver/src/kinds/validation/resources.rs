//! Resource names and quantities (`pkg/apis/core/helper` and the resource checks of core
//! validation): what containers, pods, quotas, limit ranges, volumes, claims, nodes and
//! RuntimeClass overheads may name, and how their quantities are checked and printed.

use k1s_apimachinery::meta::IS_NEGATIVE_ERROR_MSG;
use k1s_apimachinery::validation::is_qualified_name;
use k1s_apimachinery::{ErrorList, FieldError, Path, Quantity};
use serde_json::{Value, json};

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

/// Whether `name` is a huge page size as a quota names it (`requests.hugepages-2Mi` too).
pub fn is_quota_huge_page_resource_name(name: &str) -> bool {
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

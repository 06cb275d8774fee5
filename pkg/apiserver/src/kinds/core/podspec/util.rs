//! Small checks the pod spec validation repeats: name formats reported at a path, file
//! paths that must stay inside a volume, quantities read from JSON, and the few format
//! checks of `k8s.io/apimachinery/pkg/util/validation` the shared toolkit lacks
//! (relaxed environment variable names, user and group IDs, DNS names with `_`).

use k1s_apimachinery::validation::{is_dns1123_label, is_dns1123_subdomain};
use k1s_apimachinery::{ErrorList, FieldError, Path, Quantity};
use serde_json::Value;

pub(crate) use crate::kinds::validation::{invalid_each, validate_qualified_name};

/// `ValidateDNS1123Label`.
pub(crate) fn dns_label(value: &str, path: &Path) -> ErrorList {
    invalid_each(value, path, is_dns1123_label(value))
}

/// `ValidateDNS1123Subdomain`.
pub(crate) fn dns_subdomain(value: &str, path: &Path) -> ErrorList {
    invalid_each(value, path, is_dns1123_subdomain(value))
}

/// Go's `path.IsAbs`.
fn is_abs(p: &str) -> bool {
    p.starts_with('/')
}

pub(crate) use crate::kinds::core::volumesource::path_no_backsteps;

/// `validateLocalDescendingPath`: relative and without `..` elements.
pub(crate) fn local_descending_path(target: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if is_abs(target) {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    errs.extend(path_no_backsteps(target, path));
    errs
}

/// `ValidateLocalNonReservedPath`: a local descending path that does not start with `..`.
pub(crate) fn local_non_reserved_path(target: &str, path: &Path) -> ErrorList {
    let mut errs = local_descending_path(target, path);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(
            path,
            target,
            "must not start with '..'",
        ));
    }
    errs
}

pub(crate) use crate::kinds::validation::resources::quantity_of;

/// The text a quantity prints as in messages (upstream's `Quantity.String()`).
pub(crate) fn quantity_text(q: &Quantity) -> String {
    q.to_string()
}

/// `validation.IsRelaxedEnvVarName`: printable ASCII other than `=`.
pub(crate) fn is_relaxed_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.is_empty() {
        errs.push("environment variable name must be non-empty".to_string());
    }
    if value.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push(
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
                .to_string(),
        );
    }
    errs
}

/// `validation.IsValidUserID` and `IsValidGroupID`: 0 to 2147483647.
pub(crate) fn is_valid_id(id: i64) -> Vec<String> {
    if (0..=i64::from(i32::MAX)).contains(&id) {
        return Vec::new();
    }
    vec![format!("must be between 0 and {}, inclusive", i32::MAX)]
}

/// `validation.IsDNS1123SubdomainWithUnderscore` (DNS search domains).
pub(crate) fn is_dns1123_subdomain_with_underscore(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    let label_ok = |l: &str| {
        let l = l.strip_prefix('_').unwrap_or(l);
        let b = l.as_bytes();
        let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(f), Some(e)) => {
                alnum(f) && alnum(e) && b.iter().all(|c| alnum(c) || *c == b'-' || *c == b'_')
            }
            _ => false,
        }
    };
    if !value.split('.').all(label_ok) {
        errs.push("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string());
    }
    errs
}

/// `fileModeErrorMsg` check of a `mode`/`defaultMode` field: 0 to 0777.
pub(crate) fn file_mode(mode: Option<i64>, path: &Path) -> ErrorList {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => vec![FieldError::invalid(
            path,
            m,
            "must be a number between 0 and 0777 (octal), both inclusive",
        )],
        _ => ErrorList::new(),
    }
}

/// Whether a JSON value is Go's zero value for its field (absent, null, false, 0, "",
/// an empty list, or an object whose fields are all zero): what `validateFieldAllowList`
/// and `reflect.DeepEqual(x, zero)` see as "not set".
pub(crate) fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_a_volume() {
        let p = Path::new("x");
        assert!(local_non_reserved_path("a/b", &p).is_empty());
        assert_eq!(local_non_reserved_path("/a", &p).len(), 1);
        assert_eq!(local_non_reserved_path("a/../b", &p).len(), 1);
        assert_eq!(
            local_non_reserved_path("..a", &p)[0].to_string(),
            "x: Invalid value: \"..a\": must not start with '..'"
        );
    }

    #[test]
    fn relaxed_env_names_allow_printable_ascii() {
        assert!(is_relaxed_env_var_name("1abc").is_empty());
        assert!(is_relaxed_env_var_name("with space").is_empty());
        assert_eq!(is_relaxed_env_var_name("a=b").len(), 1);
        assert_eq!(is_relaxed_env_var_name("é").len(), 1);
    }

    #[test]
    fn search_domains_may_have_underscores() {
        assert!(is_dns1123_subdomain_with_underscore("_srv.example.com").is_empty());
        assert!(is_dns1123_subdomain_with_underscore("my_svc.local").is_empty());
        assert_eq!(is_dns1123_subdomain_with_underscore("Bad").len(), 1);
    }
}

//! Small upstream validators the admission kinds need and the shared toolkit lacks:
//! `IsFullyQualifiedName`, core's `ValidateQualifiedName`, and the admission `Rule`s
//! shared by webhooks and policies.

use std::collections::HashSet;

use k1s_apimachinery::validation::is_dns1123_subdomain;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::validation::{Fields, strings};

/// Upstream's `IsFullyQualifiedName`: a DNS subdomain of at least three labels
/// (`webhook.cert-manager.io`).
pub fn is_fully_qualified_name(path: &Path, name: &str) -> ErrorList {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let errs = is_dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![FieldError::invalid(path, name, errs.join(","))];
    }
    if name.split('.').count() < 3 {
        return vec![FieldError::invalid(
            path,
            name,
            "should be a domain with at least three segments separated by dots",
        )];
    }
    ErrorList::new()
}

fn has_wildcard(list: &[&str]) -> bool {
    list.contains(&"*")
}

/// `resources` of a rule that may name subresources (`pods/status`, `*/scale`).
fn validate_resources(resources: &[&str], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if resources.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    let mut with_wildcard_sub: HashSet<&str> = HashSet::new();
    let mut sub_with_wildcard_res: HashSet<&str> = HashSet::new();
    let mut double_wildcard = false;
    let mut single_wildcard = false;
    let mut without_sub = false;
    for (i, &res_sub) in resources.iter().enumerate() {
        if res_sub.is_empty() {
            errs.push(FieldError::required(&path.index(i), ""));
            continue;
        }
        if res_sub == "*/*" {
            double_wildcard = true;
        }
        if res_sub == "*" {
            single_wildcard = true;
        }
        let Some((res, sub)) = res_sub.split_once('/') else {
            // Upstream keeps only the last plain entry's verdict here.
            without_sub = res_sub != "*";
            continue;
        };
        if with_wildcard_sub.contains(res) {
            errs.push(FieldError::invalid(
                &path.index(i),
                res_sub,
                format!("if '{res}/*' is present, must not specify {res_sub}"),
            ));
        }
        if sub_with_wildcard_res.contains(sub) {
            errs.push(FieldError::invalid(
                &path.index(i),
                res_sub,
                format!("if '*/{sub}' is present, must not specify {res_sub}"),
            ));
        }
        if sub == "*" {
            with_wildcard_sub.insert(res);
        }
        if res == "*" {
            sub_with_wildcard_res.insert(sub);
        }
    }
    if resources.len() > 1 && double_wildcard {
        errs.push(FieldError::invalid(
            path,
            resources.to_vec(),
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if single_wildcard && without_sub {
        errs.push(FieldError::invalid(
            path,
            resources.to_vec(),
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
    errs
}

/// Upstream's `validateRule` with subresources allowed: API groups, versions,
/// resources and scope of an admission rule.
pub fn validate_rule(rule: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let groups = strings(rule.f("apiGroups"));
    if groups.is_empty() {
        errs.push(FieldError::required(&path.child("apiGroups"), ""));
    }
    if groups.len() > 1 && has_wildcard(&groups) {
        errs.push(FieldError::invalid(
            &path.child("apiGroups"),
            groups.clone(),
            "if '*' is present, must not specify other API groups",
        ));
    }
    let versions = strings(rule.f("apiVersions"));
    if versions.is_empty() {
        errs.push(FieldError::required(&path.child("apiVersions"), ""));
    }
    if versions.len() > 1 && has_wildcard(&versions) {
        errs.push(FieldError::invalid(
            &path.child("apiVersions"),
            versions.clone(),
            "if '*' is present, must not specify other API versions",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if v.is_empty() {
            errs.push(FieldError::required(
                &path.child("apiVersions").index(i),
                "",
            ));
        }
    }
    errs.extend(validate_resources(
        &strings(rule.f("resources")),
        &path.child("resources"),
    ));
    if let Some(scope) = rule.get("scope").and_then(Value::as_str)
        && !matches!(scope, "*" | "Cluster" | "Namespaced")
    {
        errs.push(FieldError::not_supported(
            &path.child("scope"),
            scope,
            &["*", "Cluster", "Namespaced"],
        ));
    }
    errs
}

/// Upstream's `validateRuleWithOperations`: the operations, then the rule.
pub fn validate_rule_with_operations(rule: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let ops = strings(rule.f("operations"));
    if ops.is_empty() {
        errs.push(FieldError::required(&path.child("operations"), ""));
    }
    if ops.len() > 1 && has_wildcard(&ops) {
        errs.push(FieldError::invalid(
            &path.child("operations"),
            ops.clone(),
            "if '*' is present, must not specify other operations",
        ));
    }
    for (i, &op) in ops.iter().enumerate() {
        if !matches!(op, "*" | "CREATE" | "UPDATE" | "DELETE" | "CONNECT") {
            errs.push(FieldError::not_supported(
                &path.child("operations").index(i),
                op,
                &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"],
            ));
        }
    }
    errs.extend(validate_rule(rule, path));
    errs
}

/// Sets the rule defaults of `rules` (`scope: "*"`).
pub fn default_rules(rules: Option<&mut Value>) {
    if let Some(Value::Array(list)) = rules {
        for r in list {
            if let Some(o) = r.as_object_mut() {
                o.entry("scope").or_insert_with(|| Value::from("*"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_util::texts;

    #[test]
    fn fully_qualified_names_need_three_labels() {
        let p = Path::new("name");
        assert!(is_fully_qualified_name(&p, "webhook.cert-manager.io").is_empty());
        assert_eq!(
            texts(is_fully_qualified_name(&p, "cert-manager.io")),
            [
                "name: Invalid value: \"cert-manager.io\": should be a domain with at least three segments separated by dots"
            ]
        );
        assert_eq!(
            texts(is_fully_qualified_name(&p, "")),
            ["name: Required value"]
        );
    }

    #[test]
    fn resource_wildcards_follow_upstream() {
        let p = Path::new("r");
        let check = |rs: &[&str]| texts(validate_resources(rs, &p));
        assert!(check(&["*"]).is_empty());
        assert!(check(&["*/*"]).is_empty());
        assert!(check(&["pods", "pods/status"]).is_empty());
        assert!(check(&["*", "pods/status"]).is_empty());
        assert_eq!(
            check(&["*", "pods"]),
            [
                "r: Invalid value: [\"*\",\"pods\"]: if '*' is present, must not specify other resources without subresources"
            ]
        );
        assert_eq!(
            check(&["pods/*", "pods/status"]),
            [
                "r[1]: Invalid value: \"pods/status\": if 'pods/*' is present, must not specify pods/status"
            ]
        );
    }

    #[test]
    fn a_rule_with_operations_may_name_any_scope() {
        assert!(
            validate_rule_with_operations(
                &json!({"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "*"}),
                &Path::new("rules").index(0)
            )
            .is_empty()
        );
    }
}

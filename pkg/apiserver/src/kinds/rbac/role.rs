//! Roles and ClusterRoles (upstream `ValidateRole`, `ValidateClusterRole`,
//! `ValidatePolicyRule`): every rule has verbs, and either non-resource URLs (cluster
//! roles only) or API groups and resources; an aggregation rule has selectors.

use k1s_apimachinery::goformat::{go_strings, invalid_go};
use k1s_apimachinery::meta::{label_selector_has_errors, validate_label_selector_with};
use k1s_apimachinery::{ErrorList, FieldError, Path, Selector};
use serde_json::Value;

use super::validate_rbac_name;
use crate::kinds::validation::Fields;
use crate::kinds::validation::list_of;
use crate::registry::Strategy;

/// The Role strategy.
pub struct RoleStrategy;

/// The ClusterRole strategy.
pub struct ClusterRoleStrategy;

/// `ValidatePolicyRule`.
pub fn validate_policy_rule(rule: &Value, namespaced: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if rule.a("verbs").is_empty() {
        errs.push(FieldError::required(
            &path.child("verbs"),
            "verbs must contain at least one value",
        ));
    }
    if !rule.a("nonResourceURLs").is_empty() {
        let shown = || go_strings("string", list_of(rule, "nonResourceURLs"));
        if namespaced {
            errs.push(invalid_go(
                &path.child("nonResourceURLs"),
                shown(),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !rule.a("apiGroups").is_empty()
            || !rule.a("resources").is_empty()
            || !rule.a("resourceNames").is_empty()
        {
            errs.push(invalid_go(
                &path.child("nonResourceURLs"),
                shown(),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if rule.a("apiGroups").is_empty() {
        errs.push(FieldError::required(
            &path.child("apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if rule.a("resources").is_empty() {
        errs.push(FieldError::required(
            &path.child("resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

fn validate_rules(obj: &Value, namespaced: bool) -> ErrorList {
    obj.a("rules")
        .iter()
        .enumerate()
        .flat_map(|(i, r)| validate_policy_rule(r, namespaced, &Path::new("rules").index(i)))
        .collect()
}

/// `ValidateClusterRole` with `AllowInvalidLabelValueInSelector` = `allow_values`.
fn validate_cluster_role(obj: &Value, allow_values: bool) -> ErrorList {
    let mut errs = validate_rules(obj, false);
    if obj.has("aggregationRule") {
        let path = Path::new("aggregationRule").child("clusterRoleSelectors");
        let selectors = obj.f("aggregationRule").a("clusterRoleSelectors");
        if selectors.is_empty() {
            errs.push(FieldError::required(
                &path,
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, sel) in selectors.iter().enumerate() {
            let p = path.index(i);
            errs.extend(validate_label_selector_with(Some(sel), allow_values, &p));
            // Upstream also converts the selector and, when that fails, shows the nil
            // selector it got back.
            if Selector::from_label_selector(sel).is_err() {
                errs.push(invalid_go(&p, "null".into(), "invalid label selector."));
            }
        }
    }
    errs
}

/// Whether the stored cluster role has a selector upstream would now refuse (which
/// allows invalid label values on update).
fn stored_selectors_invalid(old: &Value) -> bool {
    old.f("aggregationRule")
        .a("clusterRoleSelectors")
        .iter()
        .any(|s| label_selector_has_errors(Some(s)))
}

impl Strategy for RoleStrategy {
    fn validate_name(&self, name: &str, prefix: bool) -> Vec<String> {
        validate_rbac_name(name, prefix)
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_rules(obj, true)
    }
}

impl Strategy for ClusterRoleStrategy {
    fn validate_name(&self, name: &str, prefix: bool) -> Vec<String> {
        validate_rbac_name(name, prefix)
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_cluster_role(obj, false)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        validate_cluster_role(new, stored_selectors_invalid(old))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_util::texts;

    /// ingress-nginx's ClusterRole (abridged) and an aggregated cert-manager role.
    #[test]
    fn chart_roles_are_valid() {
        let nginx = json!({"metadata": {"name": "ingress-nginx"}, "rules": [
            {"apiGroups": [""], "resources": ["configmaps", "endpoints", "nodes", "pods", "secrets", "namespaces"], "verbs": ["list", "watch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["list", "watch"]},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses/status"], "verbs": ["update"]},
            {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}
        ]});
        assert!(ClusterRoleStrategy.validate(&nginx).is_empty());
        let aggregated = json!({"metadata": {"name": "cert-manager-view"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]}});
        assert!(ClusterRoleStrategy.validate(&aggregated).is_empty());
        let role = json!({"metadata": {"name": "cert-manager:leaderelection"}, "rules": [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["cert-manager-controller"], "verbs": ["get", "update", "patch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]}
        ]});
        assert!(RoleStrategy.validate(&role).is_empty());
        assert!(
            RoleStrategy
                .validate_name("cert-manager:leaderelection", false)
                .is_empty()
        );
    }

    #[test]
    fn rules_need_verbs_and_resources() {
        let role =
            json!({"rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}, {"verbs": []}]});
        assert_eq!(
            texts(RoleStrategy.validate(&role)),
            vec![
                "rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
                "rules[1].verbs: Required value: verbs must contain at least one value",
                "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[1].resources: Required value: resource rules must supply at least one resource",
            ]
        );
        let agg = json!({"aggregationRule": {}});
        assert_eq!(
            texts(ClusterRoleStrategy.validate(&agg)),
            vec![
                "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil"
            ]
        );
    }
}

//! RoleBindings and ClusterRoleBindings (upstream `ValidateRoleBinding`,
//! `ValidateClusterRoleBinding`, their updates, `ValidateRoleBindingSubject` and the v1
//! defaults): a role reference that never changes, and well-formed subjects.

use k1s_apimachinery::goformat::invalid_go;
use k1s_apimachinery::goformat::quote;
use k1s_apimachinery::meta::name_is_dns_subdomain;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::validate_rbac_name;
use crate::kinds::validation::Fields;
use crate::registry::Strategy;

/// The RoleBinding strategy.
pub struct RoleBindingStrategy;

/// The ClusterRoleBinding strategy.
pub struct ClusterRoleBindingStrategy;

const GROUP: &str = "rbac.authorization.k8s.io";
const SUBJECT_KINDS: &[&str] = &["ServiceAccount", "User", "Group"];

/// `SetDefaults_RoleBinding`/`_ClusterRoleBinding` and `SetDefaults_Subject`: the role
/// reference's group, and the group of User and Group subjects.
fn default_binding(obj: &mut Value) {
    if let Some(o) = obj.as_object_mut() {
        let role_ref = o.entry("roleRef").or_insert_with(|| json!({}));
        if let Some(r) = role_ref.as_object_mut()
            && r.get("apiGroup")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
        {
            r.insert("apiGroup".into(), json!(GROUP));
        }
    }
    if let Some(subjects) = obj.get_mut("subjects").and_then(Value::as_array_mut) {
        for s in subjects.iter_mut().filter_map(Value::as_object_mut) {
            let empty = s
                .get("apiGroup")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty();
            let kind = s.get("kind").and_then(Value::as_str).unwrap_or("");
            if empty && matches!(kind, "User" | "Group") {
                s.insert("apiGroup".into(), json!(GROUP));
            }
        }
    }
}

/// `ValidateRoleBindingSubject`.
fn validate_subject(s: &Value, namespaced: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = s.s("name");
    let group = s.s("apiGroup");
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    match s.s("kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                for msg in name_is_dns_subdomain(name, false) {
                    errs.push(FieldError::invalid(&path.child("name"), name, msg));
                }
            }
            if !group.is_empty() {
                errs.push(FieldError::not_supported(
                    &path.child("apiGroup"),
                    group,
                    &[""],
                ));
            }
            if !namespaced && s.s("namespace").is_empty() {
                errs.push(FieldError::required(&path.child("namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != GROUP {
                errs.push(FieldError::not_supported(
                    &path.child("apiGroup"),
                    group,
                    &[GROUP],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &path.child("kind"),
            other,
            SUBJECT_KINDS,
        )),
    }
    errs
}

/// `ValidateRoleBinding` (`role_kinds` = Role and ClusterRole, subjects namespaced) or
/// `ValidateClusterRoleBinding` (ClusterRole only).
fn validate_binding(obj: &Value, role_kinds: &[&str], namespaced: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let r = obj.f("roleRef");
    let path = Path::new("roleRef");
    let group = r.s("apiGroup");
    if group != GROUP {
        errs.push(FieldError::not_supported(
            &path.child("apiGroup"),
            group,
            &[GROUP],
        ));
    }
    let kind = r.s("kind");
    if !role_kinds.contains(&kind) {
        errs.push(FieldError::not_supported(
            &path.child("kind"),
            kind,
            role_kinds,
        ));
    }
    let name = r.s("name");
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        for msg in validate_rbac_name(name, false) {
            errs.push(FieldError::invalid(&path.child("name"), name, msg));
        }
    }
    for (i, s) in obj.a("subjects").iter().enumerate() {
        errs.extend(validate_subject(
            s,
            namespaced,
            &Path::new("subjects").index(i),
        ));
    }
    errs
}

/// `cannot change roleRef`, showing the new reference as upstream's `%#v` does.
fn role_ref_unchanged(new: &Value, old: &Value) -> ErrorList {
    let (n, o) = (new.f("roleRef"), old.f("roleRef"));
    let same = ["apiGroup", "kind", "name"]
        .iter()
        .all(|k| n.s(k) == o.s(k));
    if same {
        return ErrorList::new();
    }
    vec![invalid_go(
        &Path::new("roleRef"),
        format!(
            "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
            quote(n.s("apiGroup")),
            quote(n.s("kind")),
            quote(n.s("name"))
        ),
        "cannot change roleRef",
    )]
}

impl Strategy for RoleBindingStrategy {
    fn default(&self, obj: &mut Value) {
        default_binding(obj);
    }

    fn validate_name(&self, name: &str, prefix: bool) -> Vec<String> {
        validate_rbac_name(name, prefix)
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_binding(obj, &["Role", "ClusterRole"], true)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(role_ref_unchanged(new, old));
        errs
    }
}

impl Strategy for ClusterRoleBindingStrategy {
    fn default(&self, obj: &mut Value) {
        default_binding(obj);
    }

    fn validate_name(&self, name: &str, prefix: bool) -> Vec<String> {
        validate_rbac_name(name, prefix)
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_binding(obj, &["ClusterRole"], false)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(role_ref_unchanged(new, old));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    #[test]
    fn a_binding_with_only_a_name_is_refused_like_upstream() {
        let mut obj = json!({"metadata": {"name": "x"}});
        ClusterRoleBindingStrategy.default(&mut obj);
        assert_eq!(
            texts(ClusterRoleBindingStrategy.validate(&obj)),
            vec![
                "roleRef.kind: Unsupported value: \"\": supported values: \"ClusterRole\"",
                "roleRef.name: Required value",
            ]
        );
    }

    #[test]
    fn chart_bindings_are_valid_after_defaulting() {
        let mut crb = json!({"metadata": {"name": "cert-manager-controller-issuers"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cert-manager-controller-issuers"},
            "subjects": [{"kind": "ServiceAccount", "name": "cert-manager", "namespace": "cert-manager"},
                         {"kind": "Group", "name": "system:authenticated"}]});
        ClusterRoleBindingStrategy.default(&mut crb);
        assert_eq!(crb["subjects"][1]["apiGroup"], json!(GROUP));
        assert!(texts(ClusterRoleBindingStrategy.validate(&crb)).is_empty());
        let mut rb = json!({"metadata": {"name": "ingress-nginx"},
            "roleRef": {"kind": "Role", "name": "ingress-nginx"},
            "subjects": [{"kind": "ServiceAccount", "name": "ingress-nginx"}]});
        RoleBindingStrategy.default(&mut rb);
        assert!(texts(RoleBindingStrategy.validate(&rb)).is_empty());
    }

    #[test]
    fn the_role_reference_never_changes() {
        let old = json!({"roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "view"}});
        let new = json!({"roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "edit"}});
        assert_eq!(
            texts(ClusterRoleBindingStrategy.validate_update(&new, &old)),
            vec![
                "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"
            ]
        );
        let sa = json!({"roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "x", "apiGroup": "v1"}, {"kind": "Robot", "name": "r"}]});
        assert_eq!(
            texts(ClusterRoleBindingStrategy.validate(&sa)),
            vec![
                "subjects[0].apiGroup: Unsupported value: \"v1\": supported values: \"\"",
                "subjects[0].namespace: Required value",
                "subjects[1].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
            ]
        );
    }
}

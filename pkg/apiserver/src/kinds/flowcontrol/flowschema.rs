//! FlowSchemas (upstream's `ValidateFlowSchema` and `ValidateFlowSchemaStatusUpdate`).

use k1s_apimachinery::meta::{name_is_dns_label, name_is_dns_subdomain};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::{CATCH_ALL, EXEMPT, spec_eq, validate_status_conditions};
use crate::kinds::validation::{Fields, strings};
use crate::meta;
use crate::registry::Strategy;

/// The largest matchingPrecedence.
const MAX_MATCHING_PRECEDENCE: i64 = 10000;
/// The default matchingPrecedence.
const DEFAULT_MATCHING_PRECEDENCE: i64 = 1000;
/// Verbs a rule may name besides `*` (sorted, as upstream lists them).
const SUPPORTED_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "proxy",
    "update",
    "watch",
];
const NS_ERR_INTRO: &str = "each member of this list must be '*' or a DNS-1123 label; ";

/// The fixed spec of a mandatory FlowSchema, after defaulting.
fn mandatory_spec(name: &str) -> Option<Value> {
    let all_rules = |subjects: Value| {
        json!([{
            "subjects": subjects,
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"], "clusterScope": true}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
        }])
    };
    match name {
        EXEMPT => Some(json!({
            "priorityLevelConfiguration": {"name": EXEMPT},
            "matchingPrecedence": 1,
            "rules": all_rules(json!([{"kind": "Group", "group": {"name": "system:masters"}}])),
        })),
        CATCH_ALL => Some(json!({
            "priorityLevelConfiguration": {"name": CATCH_ALL},
            "matchingPrecedence": 10000,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": all_rules(json!([
                {"kind": "Group", "group": {"name": "system:unauthenticated"}},
                {"kind": "Group", "group": {"name": "system:authenticated"}}
            ])),
        })),
        _ => None,
    }
}

fn has_wildcard(list: &[&str]) -> bool {
    list.contains(&"*")
}

fn validate_verbs(rule: &Value, path: &Path) -> ErrorList {
    let verbs = strings(rule.f("verbs"));
    let p = path.child("verbs");
    if verbs.is_empty() {
        vec![FieldError::required(
            &p,
            "verbs must contain at least one value",
        )]
    } else if has_wildcard(&verbs) {
        if verbs.len() > 1 {
            vec![FieldError::invalid(
                &p,
                verbs,
                "if '*' is present, must not specify other verbs",
            )]
        } else {
            ErrorList::new()
        }
    } else if verbs.iter().any(|v| !SUPPORTED_VERBS.contains(v)) {
        vec![FieldError::not_supported(&p, verbs, SUPPORTED_VERBS)]
    } else {
        ErrorList::new()
    }
}

/// Upstream's `ValidateNonResourceURLPath`.
fn validate_non_resource_url(url: &str, path: &Path) -> Option<FieldError> {
    let invalid = |msg: &str| Some(FieldError::invalid(path, url, msg));
    if url.is_empty() {
        return invalid("must not be empty");
    }
    if url == "/" {
        return None;
    }
    if !url.starts_with('/') {
        return invalid("must start with slash");
    }
    if url.contains(' ') {
        return invalid("must not contain white-space");
    }
    if url.contains("//") {
        return invalid("must not contain double slash");
    }
    let wildcards = url.matches('*').count();
    if wildcards > 1 || (wildcards == 1 && !url.ends_with("/*")) {
        return invalid("wildcard can only do suffix matching");
    }
    None
}

fn validate_resource_rule(rule: &Value, path: &Path) -> ErrorList {
    let mut errs = validate_verbs(rule, path);
    let groups = strings(rule.f("apiGroups"));
    if groups.is_empty() {
        errs.push(FieldError::required(
            &path.child("apiGroups"),
            "resource rules must supply at least one api group",
        ));
    } else if groups.len() > 1 && has_wildcard(&groups) {
        errs.push(FieldError::invalid(
            &path.child("apiGroups"),
            groups,
            "if '*' is present, must not specify other api groups",
        ));
    }
    let resources = strings(rule.f("resources"));
    if resources.is_empty() {
        errs.push(FieldError::required(
            &path.child("resources"),
            "resource rules must supply at least one resource",
        ));
    } else if resources.len() > 1 && has_wildcard(&resources) {
        errs.push(FieldError::invalid(
            &path.child("resources"),
            resources,
            "if '*' is present, must not specify other resources",
        ));
    }
    let namespaces = strings(rule.f("namespaces"));
    let np = path.child("namespaces");
    if namespaces.is_empty() && !rule.b("clusterScope") {
        errs.push(FieldError::required(
            &np,
            "resource rules that are not cluster scoped must supply at least one namespace",
        ));
    } else if has_wildcard(&namespaces) {
        if namespaces.len() > 1 {
            errs.push(FieldError::invalid(
                &np,
                namespaces,
                "if '*' is present, must not specify other namespaces",
            ));
        }
    } else {
        for (i, &ns) in namespaces.iter().enumerate() {
            for msg in name_is_dns_label(ns, false) {
                errs.push(FieldError::invalid(
                    &np.index(i),
                    ns,
                    format!("{NS_ERR_INTRO}{msg}"),
                ));
            }
        }
    }
    errs
}

fn validate_non_resource_rule(rule: &Value, path: &Path) -> ErrorList {
    let mut errs = validate_verbs(rule, path);
    let urls = strings(rule.f("nonResourceURLs"));
    let up = path.child("nonResourceURLs");
    if urls.is_empty() {
        errs.push(FieldError::required(
            &up,
            "nonResourceURLs must contain at least one value",
        ));
    } else if has_wildcard(&urls) {
        if urls.len() > 1 {
            errs.push(FieldError::invalid(
                &up,
                urls,
                "if '*' is present, must not specify other non-resource URLs",
            ));
        }
    } else {
        for (i, url) in urls.iter().enumerate() {
            errs.extend(validate_non_resource_url(url, &up.index(i)));
        }
    }
    errs
}

fn validate_subject(subject: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let forbid = |errs: &mut ErrorList, key: &str, kind: &str| {
        if subject.get(key).is_some() {
            errs.push(FieldError::forbidden(
                &path.child(key),
                format!("{key} is forbidden when subject kind is not '{kind}'"),
            ));
        }
    };
    match subject.s("kind") {
        "ServiceAccount" => {
            let p = path.child("serviceAccount");
            match subject.get("serviceAccount") {
                None => errs.push(FieldError::required(
                    &p,
                    "serviceAccount is required when subject kind is 'ServiceAccount'",
                )),
                Some(sa) => {
                    let name = sa.s("name");
                    if name.is_empty() {
                        errs.push(FieldError::required(&p.child("name"), ""));
                    } else if name != "*" {
                        for msg in name_is_dns_subdomain(name, false) {
                            errs.push(FieldError::invalid(&p.child("name"), name, msg));
                        }
                    }
                    let ns = sa.s("namespace");
                    if ns.is_empty() {
                        errs.push(FieldError::required(
                            &p.child("namespace"),
                            "must specify namespace for service account",
                        ));
                    } else {
                        for msg in name_is_dns_label(ns, false) {
                            errs.push(FieldError::invalid(&p.child("namespace"), ns, msg));
                        }
                    }
                }
            }
            forbid(&mut errs, "user", "User");
            forbid(&mut errs, "group", "Group");
        }
        "User" => {
            errs.extend(named_subject(subject, "user", "User", path));
            forbid(&mut errs, "serviceAccount", "ServiceAccount");
            forbid(&mut errs, "group", "Group");
        }
        "Group" => {
            errs.extend(named_subject(subject, "group", "Group", path));
            forbid(&mut errs, "serviceAccount", "ServiceAccount");
            forbid(&mut errs, "user", "User");
        }
        other => errs.push(FieldError::not_supported(
            &path.child("kind"),
            other,
            &["Group", "ServiceAccount", "User"],
        )),
    }
    errs
}

/// A `user` or `group` subject: present, with a name.
fn named_subject(subject: &Value, key: &str, kind: &str, path: &Path) -> ErrorList {
    match subject.get(key) {
        None => vec![FieldError::required(
            &path.child(key),
            format!("{key} is required when subject kind is '{kind}'"),
        )],
        Some(s) if s.s("name").is_empty() => {
            vec![FieldError::required(&path.child(key).child("name"), "")]
        }
        Some(_) => ErrorList::new(),
    }
}

fn validate_spec(name: &str, spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let precedence = spec.i("matchingPrecedence").unwrap_or(0);
    let mp = path.child("matchingPrecedence");
    if precedence <= 0 {
        errs.push(FieldError::invalid(
            &mp,
            precedence,
            "must be a positive value",
        ));
    }
    if precedence > MAX_MATCHING_PRECEDENCE {
        errs.push(FieldError::invalid(
            &mp,
            precedence,
            format!("must not be greater than {MAX_MATCHING_PRECEDENCE}"),
        ));
    }
    if precedence == 1 && name != EXEMPT {
        errs.push(FieldError::invalid(
            &mp,
            precedence,
            "only the schema named 'exempt' may have matchingPrecedence 1",
        ));
    }
    if let Some(dm) = spec.get("distinguisherMethod")
        && !matches!(dm.s("type"), "ByNamespace" | "ByUser")
    {
        // Upstream shows the whole distinguisherMethod as the bad value.
        errs.push(FieldError::not_supported(
            &path.child("distinguisherMethod").child("type"),
            dm.clone(),
            &["ByNamespace", "ByUser"],
        ));
    }
    let plc = spec.f("priorityLevelConfiguration").s("name");
    let pp = path.child("priorityLevelConfiguration").child("name");
    if plc.is_empty() {
        errs.push(FieldError::required(&pp, "must reference a priority level"));
    } else {
        for msg in name_is_dns_subdomain(plc, false) {
            errs.push(FieldError::invalid(&pp, plc, msg));
        }
    }
    for (i, rule) in spec.a("rules").iter().enumerate() {
        let rp = path.child("rules").index(i);
        let subjects = rule.a("subjects");
        if subjects.is_empty() {
            errs.push(FieldError::required(
                &rp.child("subjects"),
                "subjects must contain at least one value",
            ));
        }
        for (j, s) in subjects.iter().enumerate() {
            errs.extend(validate_subject(s, &rp.child("subjects").index(j)));
        }
        if rule.a("resourceRules").is_empty() && rule.a("nonResourceRules").is_empty() {
            errs.push(FieldError::required(
                &rp,
                "at least one of resourceRules and nonResourceRules has to be non-empty",
            ));
        }
        for (j, r) in rule.a("resourceRules").iter().enumerate() {
            errs.extend(validate_resource_rule(
                r,
                &rp.child("resourceRules").index(j),
            ));
        }
        for (j, r) in rule.a("nonResourceRules").iter().enumerate() {
            errs.extend(validate_non_resource_rule(
                r,
                &rp.child("nonResourceRules").index(j),
            ));
        }
    }
    errs
}

fn validate_flow_schema(obj: &Value) -> ErrorList {
    let name = meta::name(obj);
    let spec = obj.f("spec");
    let mut errs = validate_spec(name, spec, &Path::new("spec"));
    if let Some(fixed) = mandatory_spec(name)
        && !spec_eq(spec, &fixed)
    {
        errs.push(FieldError::invalid(
            &Path::new("spec"),
            spec.clone(),
            format!("spec of '{name}' must equal the fixed value"),
        ));
    }
    errs.extend(validate_status_conditions(obj));
    errs
}

/// The FlowSchema strategy.
pub struct FlowSchemaStrategy;

impl Strategy for FlowSchemaStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
            && spec
                .get("matchingPrecedence")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                == 0
        {
            spec.insert(
                "matchingPrecedence".into(),
                json!(DEFAULT_MATCHING_PRECEDENCE),
            );
        }
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_flow_schema(obj)
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> ErrorList {
        validate_status_conditions(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    #[test]
    fn suggested_schemas_are_valid() {
        let mut fs = json!({"metadata": {"name": "system-leader-election"}, "spec": {
            "priorityLevelConfiguration": {"name": "leader-election"},
            "matchingPrecedence": 100,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{
                "subjects": [
                    {"kind": "User", "user": {"name": "system:kube-controller-manager"}},
                    {"kind": "ServiceAccount", "serviceAccount": {"name": "*", "namespace": "kube-system"}}
                ],
                "resourceRules": [{"verbs": ["get", "create", "update"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "namespaces": ["*"]}]
            }]
        }});
        FlowSchemaStrategy.default(&mut fs);
        assert_eq!(
            texts(FlowSchemaStrategy.validate(&fs)),
            Vec::<String>::new()
        );
        let mut exempt = json!({"metadata": {"name": "exempt"}, "spec": mandatory_spec(EXEMPT)});
        FlowSchemaStrategy.default(&mut exempt);
        assert_eq!(
            texts(FlowSchemaStrategy.validate(&exempt)),
            Vec::<String>::new()
        );
        let mut defaulted = json!({"metadata": {"name": "x"}, "spec": {"priorityLevelConfiguration": {"name": "global-default"}}});
        FlowSchemaStrategy.default(&mut defaulted);
        assert_eq!(defaulted["spec"]["matchingPrecedence"], 1000);
    }

    #[test]
    fn bad_schemas_report_upstream_texts() {
        let fs = json!({"metadata": {"name": "x"}, "spec": {
            "priorityLevelConfiguration": {"name": ""},
            "matchingPrecedence": 1,
            "rules": [{
                "subjects": [{"kind": "User"}, {"kind": "Robot"}],
                "nonResourceRules": [{"verbs": ["get", "*"], "nonResourceURLs": ["/a*"]}]
            }]
        }});
        assert_eq!(
            texts(FlowSchemaStrategy.validate(&fs)),
            [
                "spec.matchingPrecedence: Invalid value: 1: only the schema named 'exempt' may have matchingPrecedence 1",
                "spec.priorityLevelConfiguration.name: Required value: must reference a priority level",
                "spec.rules[0].subjects[0].user: Required value: user is required when subject kind is 'User'",
                "spec.rules[0].subjects[1].kind: Unsupported value: \"Robot\": supported values: \"Group\", \"ServiceAccount\", \"User\"",
                "spec.rules[0].nonResourceRules[0].verbs: Invalid value: [\"get\",\"*\"]: if '*' is present, must not specify other verbs",
                "spec.rules[0].nonResourceRules[0].nonResourceURLs[0]: Invalid value: \"/a*\": wildcard can only do suffix matching",
            ]
        );
        let mut catch_all =
            json!({"metadata": {"name": "catch-all"}, "spec": mandatory_spec(CATCH_ALL)});
        catch_all["spec"]["matchingPrecedence"] = json!(9999);
        let got = texts(FlowSchemaStrategy.validate(&catch_all));
        assert_eq!(got.len(), 1);
        assert!(
            got[0].ends_with("spec of 'catch-all' must equal the fixed value"),
            "{got:?}"
        );
    }
}

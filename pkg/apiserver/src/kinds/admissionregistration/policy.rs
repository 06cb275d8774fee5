//! ValidatingAdmissionPolicies and their bindings (upstream's
//! `validateValidatingAdmissionPolicy`, `validateValidatingAdmissionPolicyBinding`,
//! their v1 defaults and the strategies' generation and status handling). The
//! strategies' authorization checks of paramKind/paramRef need the requesting user,
//! which strategies are not given, and are not done.

use std::collections::HashSet;

use k1s_apimachinery::meta::{name_is_dns_subdomain, validate_label_selector};
use k1s_apimachinery::validation::{
    is_dns1035_label, is_dns1123_subdomain, validate_path_segment_name,
};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::cel::{self, Vars, is_cel_identifier};
use super::common::{default_rules, validate_rule_with_operations};
use super::webhook::{enum_field, validate_match_conditions};
use crate::kinds::validation::Fields;
use crate::kinds::validation::strings as list_strings;
use crate::kinds::validation::validate_qualified_name;
use crate::registry::Strategy;
use k1s_apimachinery::meta::validate_conditions;

/// At most this many audit annotations per policy.
const MAX_AUDIT_ANNOTATIONS: usize = 20;
/// The longest audit annotation valueExpression, in bytes.
const MAX_AUDIT_ANNOTATION_VALUE_EXPRESSION_LENGTH: usize = 5 * 1024;

/// `SetDefaults_MatchResources` and the rules' scope.
fn default_match_resources(mr: Option<&mut Value>) {
    let Some(m) = mr.and_then(Value::as_object_mut) else {
        return;
    };
    m.entry("matchPolicy")
        .or_insert_with(|| json!("Equivalent"));
    m.entry("namespaceSelector").or_insert_with(|| json!({}));
    m.entry("objectSelector").or_insert_with(|| json!({}));
    default_rules(m.get_mut("resourceRules"));
    default_rules(m.get_mut("excludeResourceRules"));
}

/// Go's `parseGroupVersion` as the paramKind check uses it.
fn parse_group_version(gv: &str) -> Result<(&str, &str), String> {
    if gv.is_empty() || gv == "/" {
        return Ok(("", ""));
    }
    match gv.matches('/').count() {
        0 => Ok(("", gv)),
        1 => Ok(gv.split_once('/').unwrap_or(("", gv))),
        _ => Err(format!("unexpected GroupVersion string: {gv}")),
    }
}

fn validate_param_kind(pk: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let api_version = pk.s("apiVersion");
    let ap = path.child("apiVersion");
    if api_version.is_empty() {
        errs.push(FieldError::required(&ap, ""));
    } else {
        match parse_group_version(api_version) {
            Err(e) => errs.push(FieldError::invalid(&ap, api_version, e)),
            Ok((group, version)) => {
                if !group.is_empty() {
                    let problems = is_dns1123_subdomain(group);
                    if !problems.is_empty() {
                        errs.push(FieldError::invalid(&ap, group, problems.join(",")));
                    }
                }
                if version.is_empty() {
                    errs.push(FieldError::invalid(
                        &ap,
                        api_version,
                        "version must be specified",
                    ));
                } else {
                    let problems = is_dns1035_label(version);
                    if !problems.is_empty() {
                        errs.push(FieldError::invalid(&ap, version, problems.join(",")));
                    }
                }
            }
        }
    }
    let kind = pk.s("kind");
    if kind.is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    } else {
        let problems = is_dns1035_label(&kind.to_lowercase());
        if !problems.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("kind"),
                kind,
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    problems.join(",")
                ),
            ));
        }
    }
    errs
}

fn validate_named_rule(rule: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, name) in list_strings(rule.f("resourceNames"))
        .into_iter()
        .enumerate()
    {
        let p = path.child("resourceNames").index(i);
        for msg in validate_path_segment_name(name, false) {
            errs.push(FieldError::invalid(&p, name, msg));
        }
        if !seen.insert(name) {
            errs.push(FieldError::duplicate(&p, name));
        }
    }
    errs.extend(validate_rule_with_operations(rule, path));
    errs
}

/// Upstream's `validateMatchResources` (selectors are checked strictly).
fn validate_match_resources(mc: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    match mc.get("matchPolicy").and_then(Value::as_str) {
        None => errs.push(FieldError::required(&path.child("matchPolicy"), "")),
        Some(_) => errs.extend(enum_field(
            mc,
            "matchPolicy",
            &["Equivalent", "Exact"],
            path,
        )),
    }
    for key in ["namespaceSelector", "objectSelector"] {
        match mc.get(key) {
            None => errs.push(FieldError::required(&path.child(key), "")),
            sel => errs.extend(validate_label_selector(sel, &path.child(key))),
        }
    }
    for key in ["resourceRules", "excludeResourceRules"] {
        for (i, rule) in mc.a(key).iter().enumerate() {
            errs.extend(validate_named_rule(rule, &path.child(key).index(i)));
        }
    }
    errs
}

fn has_newlines(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

/// Whether the policy-level options for an update are upstream's
/// `ignoreValidatingAdmissionPolicyMatchConditions` (paramKind and matchConditions
/// unchanged: stored match conditions are not recompiled).
fn ignore_match_conditions(new: &Value, old: &Value) -> bool {
    let (n, o) = (new.f("spec"), old.f("spec"));
    n.get("paramKind") == o.get("paramKind") && n.get("matchConditions") == o.get("matchConditions")
}

fn validate_policy(obj: &Value, ignore_conditions: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = obj.f("spec");
    let sp = Path::new("spec");
    match spec.get("failurePolicy").and_then(Value::as_str) {
        None => errs.push(FieldError::required(&sp.child("failurePolicy"), "")),
        Some(_) => errs.extend(enum_field(spec, "failurePolicy", &["Fail", "Ignore"], &sp)),
    }
    let has_params = spec.has("paramKind");
    if has_params {
        errs.extend(validate_param_kind(
            spec.f("paramKind"),
            &sp.child("paramKind"),
        ));
    }
    let mcp = sp.child("matchConstraints");
    match spec.get("matchConstraints") {
        None => errs.push(FieldError::required(&mcp, "")),
        Some(mc) => {
            errs.extend(validate_match_resources(mc, &mcp));
            // Type information comes from the resource rules: one is needed.
            if mc.a("resourceRules").is_empty() {
                errs.push(FieldError::required(&mcp.child("resourceRules"), ""));
            }
        }
    }
    if !ignore_conditions {
        let vars = Vars {
            params: has_params,
            authorizer: true,
            variables: false,
        };
        errs.extend(validate_match_conditions(
            spec.a("matchConditions"),
            vars,
            &sp.child("matchConditions"),
        ));
    }
    let has_variables = !spec.a("variables").is_empty();
    let expr_vars = Vars {
        params: has_params,
        authorizer: true,
        variables: has_variables,
    };
    for (i, v) in spec.a("variables").iter().enumerate() {
        let p = sp.child("variables").index(i);
        let name = v.s("name");
        if name.trim().is_empty() {
            errs.push(FieldError::required(
                &p.child("name"),
                "name is not specified",
            ));
        } else if !is_cel_identifier(name) {
            errs.push(FieldError::invalid(
                &p.child("name"),
                name,
                "name is not a valid CEL identifier",
            ));
        }
        let expression = v.s("expression");
        if expression.trim().is_empty() {
            errs.push(FieldError::required(
                &p.child("expression"),
                "expression is not specified",
            ));
        } else {
            errs.extend(cel::check(
                expression,
                expression,
                expr_vars,
                &p.child("expression"),
            ));
        }
    }
    let validations = spec.a("validations");
    let audits = spec.a("auditAnnotations");
    if validations.is_empty() && audits.is_empty() {
        for key in ["validations", "auditAnnotations"] {
            errs.push(FieldError::required(
                &sp.child(key),
                "validations or auditAnnotations must contain at least one item",
            ));
        }
        return errs;
    }
    for (i, v) in validations.iter().enumerate() {
        errs.extend(validate_validation(
            v,
            has_params,
            has_variables,
            &sp.child("validations").index(i),
        ));
    }
    if spec.get("auditAnnotations").is_some() {
        let ap = sp.child("auditAnnotations");
        if audits.len() > MAX_AUDIT_ANNOTATIONS {
            errs.push(FieldError::invalid(
                &ap,
                spec.f("auditAnnotations").clone(),
                format!("must not have more than {MAX_AUDIT_ANNOTATIONS} auditAnnotations"),
            ));
        }
        let name = obj.f("metadata").s("name");
        let mut keys: HashSet<&str> = HashSet::new();
        for (i, a) in audits.iter().enumerate() {
            let p = ap.index(i);
            let key = a.s("key");
            if name.is_empty() {
                errs.push(FieldError::invalid(
                    &p.child("key"),
                    key,
                    "requires metadata.name be non-empty",
                ));
            } else {
                errs.extend(validate_qualified_name(
                    &format!("{name}/{key}"),
                    &p.child("key"),
                ));
            }
            let value_expression = a.s("valueExpression");
            let trimmed = value_expression.trim();
            let vp = p.child("valueExpression");
            if trimmed.is_empty() {
                errs.push(FieldError::required(
                    &vp,
                    "valueExpression is not specified",
                ));
            } else if trimmed.len() > MAX_AUDIT_ANNOTATION_VALUE_EXPRESSION_LENGTH {
                errs.push(FieldError::required(
                    &vp,
                    format!(
                        "must not exceed {MAX_AUDIT_ANNOTATION_VALUE_EXPRESSION_LENGTH} bytes in length"
                    ),
                ));
            } else {
                errs.extend(cel::check(trimmed, value_expression, expr_vars, &vp));
            }
            if !keys.insert(key) {
                errs.push(FieldError::duplicate(&p.child("key"), key));
            }
        }
    }
    errs
}

/// One entry of `spec.validations` (upstream's `validateValidation`).
fn validate_validation(v: &Value, has_params: bool, has_variables: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let expression = v.s("expression");
    if expression.trim().is_empty() {
        errs.push(FieldError::required(
            &path.child("expression"),
            "expression is not specified",
        ));
    } else {
        let vars = Vars {
            params: has_params,
            authorizer: true,
            variables: has_variables,
        };
        errs.extend(cel::check(
            expression,
            expression,
            vars,
            &path.child("expression"),
        ));
    }
    let message_expression = v.s("messageExpression");
    if !message_expression.is_empty() && message_expression.trim().is_empty() {
        errs.push(FieldError::invalid(
            &path.child("messageExpression"),
            message_expression,
            "must be non-empty if specified",
        ));
    } else if !message_expression.trim().is_empty() {
        let vars = Vars {
            params: has_params,
            authorizer: false,
            variables: has_variables,
        };
        // The untrimmed text is compiled so that error columns match the input.
        errs.extend(cel::check(
            message_expression,
            message_expression,
            vars,
            &path.child("messageExpression"),
        ));
    }
    let message = v.s("message");
    if !message.is_empty() && message.trim().is_empty() {
        errs.push(FieldError::invalid(
            &path.child("message"),
            message,
            "message must be non-empty if specified",
        ));
    } else if has_newlines(message.trim()) {
        errs.push(FieldError::invalid(
            &path.child("message"),
            message,
            "message must not contain line breaks",
        ));
    }
    if let Some(reason) = v.get("reason").and_then(Value::as_str)
        && !matches!(reason, "Forbidden" | "Invalid" | "RequestEntityTooLarge")
    {
        errs.push(FieldError::not_supported(
            &path.child("reason"),
            reason,
            &["Forbidden", "Invalid", "RequestEntityTooLarge"],
        ));
    }
    errs
}

/// Upstream's `validateValidatingAdmissionPolicyStatus`.
fn validate_policy_status(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let status = obj.f("status");
    let sp = Path::new("status");
    if let Some(tc) = status.get("typeChecking") {
        for (i, w) in tc.a("expressionWarnings").iter().enumerate() {
            let p = sp
                .child("typeChecking")
                .child("expressionWarnings")
                .index(i);
            if w.s("warning").is_empty() {
                errs.push(FieldError::required(&p.child("warning"), ""));
            }
            if w.s("fieldRef").trim().is_empty() {
                errs.push(FieldError::required(&p.child("fieldRef"), ""));
            }
        }
    }
    errs.extend(validate_conditions(
        status.a("conditions"),
        &sp.child("conditions"),
    ));
    errs
}

/// The ValidatingAdmissionPolicy strategy.
pub struct ValidatingAdmissionPolicyStrategy;

impl Strategy for ValidatingAdmissionPolicyStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        spec.entry("failurePolicy").or_insert_with(|| json!("Fail"));
        default_match_resources(spec.get_mut("matchConstraints"));
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn allow_unconditional_update(&self) -> bool {
        false
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        cel::on_parse_stack(|| validate_policy(obj, false))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let ignore_conditions = ignore_match_conditions(new, old);
        cel::on_parse_stack(|| validate_policy(new, ignore_conditions))
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> ErrorList {
        validate_policy_status(new)
    }
}

fn validate_param_ref(pr: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = pr.s("name");
    let has_selector = pr.has("selector");
    const EXCLUSIVE: &str = "name and selector are mutually exclusive";
    if !name.is_empty() {
        for msg in validate_path_segment_name(name, false) {
            errs.push(FieldError::invalid(&path.child("name"), name, msg));
        }
        if has_selector {
            errs.push(FieldError::forbidden(&path.child("name"), EXCLUSIVE));
        }
    }
    if has_selector {
        errs.extend(validate_label_selector(
            pr.get("selector"),
            &path.child("selector"),
        ));
        if !name.is_empty() {
            errs.push(FieldError::forbidden(&path.child("selector"), EXCLUSIVE));
        }
    }
    if name.is_empty() && !has_selector {
        errs.push(FieldError::required(
            path,
            "one of name or selector must be specified",
        ));
    }
    let action = pr.s("parameterNotFoundAction");
    if action.is_empty() {
        errs.push(FieldError::required(
            &path.child("parameterNotFoundAction"),
            "",
        ));
    } else if !matches!(action, "Deny" | "Allow") {
        errs.push(FieldError::not_supported(
            &path.child("parameterNotFoundAction"),
            action,
            &["Deny", "Allow"],
        ));
    }
    errs
}

fn validate_validation_actions(actions: &[&str], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, &a) in actions.iter().enumerate() {
        if !matches!(a, "Deny" | "Warn" | "Audit") {
            errs.push(FieldError::not_supported(
                &path.index(i),
                a,
                &["Audit", "Deny", "Warn"],
            ));
        }
        if !seen.insert(a) {
            errs.push(FieldError::duplicate(&path.index(i), a));
        }
    }
    if seen.contains("Deny") && seen.contains("Warn") {
        errs.push(FieldError::invalid(
            path,
            actions.to_vec(),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
    if seen.is_empty() {
        errs.push(FieldError::required(
            path,
            "at least one validation action is required",
        ));
    }
    errs
}

fn validate_binding(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = obj.f("spec");
    let sp = Path::new("spec");
    let policy = spec.s("policyName");
    if policy.is_empty() {
        errs.push(FieldError::required(&sp.child("policyName"), ""));
    } else {
        for msg in name_is_dns_subdomain(policy, false) {
            errs.push(FieldError::invalid(&sp.child("policyName"), policy, msg));
        }
    }
    if let Some(pr) = spec.get("paramRef") {
        errs.extend(validate_param_ref(pr, &sp.child("paramRef")));
    }
    if let Some(mr) = spec.get("matchResources") {
        // Upstream misspells this path, and clients see it that way.
        errs.extend(validate_match_resources(mr, &sp.child("matchResouces")));
    }
    errs.extend(validate_validation_actions(
        &list_strings(spec.f("validationActions")),
        &sp.child("validationActions"),
    ));
    errs
}

/// The ValidatingAdmissionPolicyBinding strategy.
pub struct ValidatingAdmissionPolicyBindingStrategy;

impl Strategy for ValidatingAdmissionPolicyBindingStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            default_match_resources(spec.get_mut("matchResources"));
        }
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn allow_unconditional_update(&self) -> bool {
        false
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_binding(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    /// The policy and binding of the Kubernetes docs' ValidatingAdmissionPolicy page.
    fn docs_policy() -> Value {
        json!({"metadata": {"name": "demo-policy.example.com"}, "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
            "validations": [{"expression": "object.spec.replicas <= 5"}]
        }})
    }

    #[test]
    fn the_docs_policy_and_binding_are_accepted_and_defaulted() {
        let mut p = docs_policy();
        ValidatingAdmissionPolicyStrategy.default(&mut p);
        assert_eq!(
            texts(ValidatingAdmissionPolicyStrategy.validate(&p)),
            Vec::<String>::new()
        );
        assert_eq!(p["spec"]["matchConstraints"]["matchPolicy"], "Equivalent");
        assert_eq!(
            p["spec"]["matchConstraints"]["resourceRules"][0]["scope"],
            "*"
        );
        let mut b = json!({"metadata": {"name": "demo-binding-test.example.com"}, "spec": {
            "policyName": "demo-policy.example.com",
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"environment": "test"}}}
        }});
        ValidatingAdmissionPolicyBindingStrategy.default(&mut b);
        assert_eq!(
            texts(ValidatingAdmissionPolicyBindingStrategy.validate(&b)),
            Vec::<String>::new()
        );
        assert_eq!(b["spec"]["matchResources"]["objectSelector"], json!({}));
    }

    #[test]
    fn policies_with_params_and_variables() {
        let mut p = docs_policy();
        p["spec"]["paramKind"] =
            json!({"apiVersion": "rules.example.com/v1", "kind": "ReplicaLimit"});
        p["spec"]["variables"] =
            json!([{"name": "replicas", "expression": "object.spec.replicas"}]);
        p["spec"]["validations"] = json!([{"expression": "variables.replicas <= params.maxReplicas", "messageExpression": "'too many: ' + string(variables.replicas)", "reason": "Invalid"}]);
        p["spec"]["auditAnnotations"] = json!([{"key": "high-replica-count", "valueExpression": "'Deployment spec.replicas set to ' + string(object.spec.replicas)"}]);
        ValidatingAdmissionPolicyStrategy.default(&mut p);
        assert_eq!(
            texts(ValidatingAdmissionPolicyStrategy.validate(&p)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn bad_policies_report_upstream_texts() {
        let mut p = docs_policy();
        p["spec"]["validations"] =
            json!([{"expression": "self.replicas <= 5", "message": "a\nb", "reason": "Teapot"}]);
        p["spec"]["paramKind"] = json!({"apiVersion": "a/b/c", "kind": "Bad_Kind"});
        ValidatingAdmissionPolicyStrategy.default(&mut p);
        let got = texts(ValidatingAdmissionPolicyStrategy.validate(&p));
        assert_eq!(got.len(), 5, "{got:#?}");
        assert_eq!(
            got[0],
            "spec.paramKind.apiVersion: Invalid value: \"a/b/c\": unexpected GroupVersion string: a/b/c"
        );
        assert!(got[1].starts_with("spec.paramKind.kind: Invalid value: \"Bad_Kind\": may have mixed case, but should otherwise match: a DNS-1035 label"));
        assert!(got[2].starts_with("spec.validations[0].expression: Invalid value: \"self.replicas <= 5\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'self'"));
        assert_eq!(
            got[3],
            "spec.validations[0].message: Invalid value: \"a\\nb\": message must not contain line breaks"
        );
        assert_eq!(
            got[4],
            "spec.validations[0].reason: Unsupported value: \"Teapot\": supported values: \"Forbidden\", \"Invalid\", \"RequestEntityTooLarge\""
        );
    }

    #[test]
    fn bad_bindings_report_upstream_texts() {
        let mut b = json!({"metadata": {"name": "b"}, "spec": {
            "validationActions": ["Deny", "Warn", "Deny"],
            "paramRef": {"name": "x", "selector": {}},
            "matchResources": {"matchPolicy": "Sometimes"}
        }});
        ValidatingAdmissionPolicyBindingStrategy.default(&mut b);
        let got = texts(ValidatingAdmissionPolicyBindingStrategy.validate(&b));
        assert_eq!(
            got,
            [
                "spec.policyName: Required value",
                "spec.paramRef.name: Forbidden: name and selector are mutually exclusive",
                "spec.paramRef.selector: Forbidden: name and selector are mutually exclusive",
                "spec.paramRef.parameterNotFoundAction: Required value",
                "spec.matchResouces.matchPolicy: Unsupported value: \"Sometimes\": supported values: \"Equivalent\", \"Exact\"",
                "spec.validationActions[2]: Duplicate value: \"Deny\"",
                "spec.validationActions: Invalid value: [\"Deny\",\"Warn\",\"Deny\"]: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
            ]
        );
    }
}

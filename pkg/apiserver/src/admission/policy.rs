//! ValidatingAdmissionPolicy admission: every ValidatingAdmissionPolicyBinding whose
//! policy matches a write has the policy's CEL validations evaluated against the request
//! (`object`, `oldObject`, `request`, `params`, `namespaceObject`, `variables`,
//! `authorizer`), and its
//! validationActions decide what a failure does: Deny refuses the write with upstream's
//! status, Warn adds a `Warning` header, Audit records the failure in the request's audit
//! event (`validation.policy.admission.k8s.io/validation_failure`). A policy's
//! `auditAnnotations` are recorded there as `<policy>/<key>`. Policies and bindings are
//! read from the store on each write; their compiled expressions are cached by uid and
//! resourceVersion.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use k1s_apimachinery::status::{StatusCause, StatusDetails};
use k1s_apimachinery::{Selector, Status};
use k1s_cel::{EvalError, PER_CALL_LIMIT, Program, Value as CelValue};
use parking_lot::Mutex;
use serde_json::Value;

use crate::auth::UserInfo;
use crate::registry::generic::GenericStore;
use crate::registry::{Resource, ResourceInfo};

/// The group of the policy kinds.
const GROUP: &str = "admissionregistration.k8s.io";

/// One write, as admission sees it.
#[derive(Debug)]
pub struct Request<'a> {
    /// The resource written.
    pub info: &'a ResourceInfo,
    /// The subresource (`status`), if any.
    pub subresource: Option<&'a str>,
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub operation: &'static str,
    /// The namespace, for namespaced resources.
    pub namespace: Option<&'a str>,
    /// The object's name.
    pub name: &'a str,
    /// The object after the write (none for a delete).
    pub object: Option<&'a Value>,
    /// The object before the write (none for a create).
    pub old_object: Option<&'a Value>,
    /// Who writes.
    pub user: &'a UserInfo,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// A compiled expression with its source (for messages).
#[derive(Debug)]
struct Expr {
    source: String,
    program: Result<Program, String>,
}

impl Expr {
    fn new(source: &str) -> Expr {
        let source = source.trim().to_string();
        let program = k1s_cel::compile(&source);
        Expr { source, program }
    }

    /// Evaluates the expression; a compile error is an evaluation error.
    fn eval(&self, vars: &[(&str, &CelValue)]) -> Result<CelValue, EvalError> {
        match &self.program {
            Ok(p) => p.eval(vars, PER_CALL_LIMIT).map(|(v, _)| v),
            Err(e) => Err(EvalError::Failed(format!("compilation failed: {e}"))),
        }
    }
}

/// One validation of a policy.
#[derive(Debug)]
struct Validation {
    expr: Expr,
    message: String,
    message_expression: Option<Expr>,
    reason: String,
}

/// A policy with its expressions compiled.
#[derive(Debug)]
struct Compiled {
    variables: Vec<(String, Expr)>,
    match_conditions: Vec<(String, Expr)>,
    validations: Vec<Validation>,
    /// `auditAnnotations`: key and valueExpression.
    audit_annotations: Vec<(String, Expr)>,
}

impl Compiled {
    fn of(policy: &Value) -> Compiled {
        let spec = &policy["spec"];
        let list = |k: &str| {
            spec.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Compiled {
            variables: list("variables")
                .iter()
                .map(|v| (s(v, "name"), Expr::new(&s(v, "expression"))))
                .collect(),
            match_conditions: list("matchConditions")
                .iter()
                .map(|v| (s(v, "name"), Expr::new(&s(v, "expression"))))
                .collect(),
            validations: list("validations")
                .iter()
                .map(|v| Validation {
                    expr: Expr::new(&s(v, "expression")),
                    message: s(v, "message").trim().to_string(),
                    message_expression: Some(s(v, "messageExpression"))
                        .filter(|m| !m.trim().is_empty())
                        .map(|m| Expr::new(&m)),
                    reason: s(v, "reason"),
                })
                .collect(),
            audit_annotations: list("auditAnnotations")
                .iter()
                .map(|v| (s(v, "key"), Expr::new(&s(v, "valueExpression"))))
                .collect(),
        }
    }
}

/// Compiled policies by uid and resourceVersion.
static CACHE: LazyLock<Mutex<HashMap<String, Arc<Compiled>>>> = LazyLock::new(Default::default);

/// The compiled form of `policy` (compiled on a deep stack the first time).
fn compiled(policy: &Value) -> Arc<Compiled> {
    let key = format!(
        "{}/{}",
        crate::meta::meta_str(policy, "uid"),
        crate::meta::meta_str(policy, "resourceVersion")
    );
    if let Some(c) = CACHE.lock().get(&key) {
        return Arc::clone(c);
    }
    let c = Arc::new(
        k1s_cel::with_deep_stack(|| Compiled::of(policy)).unwrap_or(Compiled {
            variables: Vec::new(),
            match_conditions: Vec::new(),
            validations: vec![Validation {
                expr: Expr {
                    source: String::new(),
                    program: Err("the policy could not be compiled".into()),
                },
                message: String::new(),
                message_expression: None,
                reason: String::new(),
            }],
            audit_annotations: Vec::new(),
        }),
    );
    let mut cache = CACHE.lock();
    // Old versions are never asked for again: start over rather than grow.
    if cache.len() > 512 {
        cache.clear();
    }
    cache.insert(key, Arc::clone(&c));
    c
}

/// Whether a list of strings holds `want` or `*`.
fn has(list: Option<&Value>, want: &str) -> bool {
    list.and_then(Value::as_array).is_some_and(|l| {
        l.iter()
            .filter_map(Value::as_str)
            .any(|s| s == "*" || s == want)
    })
}

/// Whether one resource rule (`NamedRuleWithOperations`) matches the request.
fn rule_matches(rule: &Value, req: &Request<'_>) -> bool {
    let info = req.info;
    if !has(rule.get("operations"), req.operation)
        || !has(rule.get("apiGroups"), &info.group)
        || !has(rule.get("apiVersions"), &info.version)
    {
        return false;
    }
    let resources = rule.get("resources").and_then(Value::as_array);
    let resource_ok = resources.is_some_and(|rs| {
        rs.iter().filter_map(Value::as_str).any(|r| {
            let (res, sub) = r.split_once('/').unwrap_or((r, ""));
            let res_ok = res == "*" || res == info.plural;
            let sub_ok = match req.subresource {
                None => sub.is_empty(),
                Some(s) => sub == "*" || sub == s,
            };
            res_ok && sub_ok
        })
    });
    if !resource_ok {
        return false;
    }
    let scope_ok = match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Cluster" => !info.namespaced,
        "Namespaced" => info.namespaced,
        _ => true,
    };
    let names = rule
        .get("resourceNames")
        .and_then(Value::as_array)
        .filter(|n| !n.is_empty());
    scope_ok && names.is_none_or(|n| n.iter().filter_map(Value::as_str).any(|x| x == req.name))
}

/// Whether a label selector (absent: everything) matches `labels_of`.
fn selector_matches(selector: Option<&Value>, obj: &Value) -> Result<bool, String> {
    match selector.filter(|s| s.as_object().is_some_and(|m| !m.is_empty())) {
        None => Ok(true),
        Some(s) => Selector::from_label_selector(s)
            .map(|sel| sel.matches_object(obj))
            .map_err(|e| e.to_string()),
    }
}

/// Whether `MatchResources` (a policy's matchConstraints or a binding's matchResources)
/// matches the request. `namespace` is the request's namespace object.
fn resources_match(
    mr: &Value,
    req: &Request<'_>,
    namespace: Option<&Value>,
    binding: bool,
) -> Result<bool, String> {
    // namespaceSelector applies to namespaced objects (by their namespace's labels) and
    // to Namespaces themselves; other cluster-scoped objects always match it.
    let ns_sel = mr.get("namespaceSelector");
    let ns_ok = if req.info.group.is_empty() && req.info.plural == "namespaces" {
        selector_matches(
            ns_sel,
            req.object.or(req.old_object).unwrap_or(&Value::Null),
        )?
    } else if req.info.namespaced {
        selector_matches(ns_sel, namespace.unwrap_or(&Value::Null))?
    } else {
        true
    };
    if !ns_ok {
        return Ok(false);
    }
    let obj_sel = mr.get("objectSelector");
    let obj_ok = req
        .object
        .map(|o| selector_matches(obj_sel, o))
        .transpose()?
        .unwrap_or(false)
        || req
            .old_object
            .map(|o| selector_matches(obj_sel, o))
            .transpose()?
            .unwrap_or(false);
    if !obj_ok {
        return Ok(false);
    }
    let any = |k: &str| {
        mr.get(k)
            .and_then(Value::as_array)
            .is_some_and(|rules| rules.iter().any(|r| rule_matches(r, req)))
    };
    // A binding without resourceRules does not narrow what its policy matches.
    let unconstrained = binding
        && mr
            .get("resourceRules")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
    Ok((unconstrained || any("resourceRules")) && !any("excludeResourceRules"))
}

/// Upstream does not let policies intercept the admission configuration kinds, so a bad
/// policy can always be fixed.
fn exempt(info: &ResourceInfo) -> bool {
    info.group == GROUP
        && matches!(
            info.plural.as_str(),
            "validatingwebhookconfigurations"
                | "mutatingwebhookconfigurations"
                | "validatingadmissionpolicies"
                | "validatingadmissionpolicybindings"
                | "mutatingadmissionpolicies"
                | "mutatingadmissionpolicybindings"
        )
}

/// The decoded objects under `res`'s collection (in `namespace`, or all), from the watch
/// cache as upstream's policy plugin reads its informers: a consistent list would cost
/// every admitted write a datastore round trip on etcd.
fn list(gs: &GenericStore, res: &Resource, namespace: Option<&str>) -> Vec<Value> {
    let prefix = res.info.collection_prefix(namespace);
    let (listed, _, _) = gs.store().cache().list(&prefix, None, 0);
    listed
        .iter()
        .filter_map(|kv| gs.decode_stored(res, kv).ok())
        .collect()
}

/// What a binding evaluates with: its policy, and the params found for it (or why none
/// could be found).
struct Work {
    policy: Value,
    binding: Value,
    params: Result<Vec<Option<Value>>, Failure>,
}

/// Why a binding could not be evaluated: a message, and whether it is a denial whatever
/// the failurePolicy (`parameterNotFoundAction: Deny`).
struct Failure {
    message: String,
    always_deny: bool,
}

/// The params objects of a binding for `req`.
async fn params_for(
    gs: &GenericStore,
    policy: &Value,
    binding: &Value,
    req: &Request<'_>,
) -> Result<Vec<Option<Value>>, Failure> {
    let fail = |message: String| Failure {
        message,
        always_deny: false,
    };
    let Some(pk) = policy.pointer("/spec/paramKind").filter(|p| p.is_object()) else {
        return Ok(vec![None]);
    };
    let Some(pr) = binding.pointer("/spec/paramRef").filter(|p| p.is_object()) else {
        return Err(fail(
            "failed to configure binding: no paramRef specified".into(),
        ));
    };
    let api_version = pk.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = pk.get("kind").and_then(Value::as_str).unwrap_or("");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let snapshot = gs.registry().snapshot();
    let Some(res) = snapshot
        .all()
        .find(|r| r.info.group == group && r.info.version == version && r.info.kind == kind)
        .cloned()
    else {
        return Err(fail(format!(
            "failed to configure policy: failed to find resource referenced by paramKind: '{}'",
            if group.is_empty() {
                format!("{version}, Kind={kind}")
            } else {
                format!("{group}/{version}, Kind={kind}")
            }
        )));
    };
    let ref_ns = pr
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let namespace = if res.info.namespaced {
        match ref_ns.or(req.namespace) {
            Some(ns) => Some(ns),
            None => {
                return Err(fail(
                    "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources"
                        .into(),
                ));
            }
        }
    } else {
        None
    };
    let found: Vec<Value> = match pr
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        Some(name) => gs
            .store()
            .get(&res.info.key(namespace, name))
            .and_then(|kv| gs.decode_stored(&res, &kv).ok())
            .into_iter()
            .collect(),
        None => {
            let all = list(gs, &res, namespace);
            let mut out = Vec::new();
            for o in all {
                if selector_matches(pr.get("selector").or(Some(&Value::Null)), &o).map_err(fail)? {
                    out.push(o);
                }
            }
            out
        }
    };
    if found.is_empty() {
        let deny = pr.get("parameterNotFoundAction").and_then(Value::as_str) == Some("Deny");
        if deny {
            return Err(Failure {
                message: "no params found for policy binding with `Deny` parameterNotFoundAction"
                    .into(),
                always_deny: true,
            });
        }
        return Ok(Vec::new());
    }
    Ok(found.into_iter().map(Some).collect())
}

/// The `request` variable.
fn request_value(req: &Request<'_>) -> Value {
    let info = req.info;
    let gvk = if req.subresource == Some("scale") {
        serde_json::json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
    } else {
        serde_json::json!({"group": info.group, "version": info.version, "kind": info.kind})
    };
    let gvr =
        serde_json::json!({"group": info.group, "version": info.version, "resource": info.plural});
    let user = req.user;
    serde_json::json!({
        "kind": gvk,
        "resource": gvr,
        "subResource": req.subresource.unwrap_or(""),
        "requestKind": gvk,
        "requestResource": gvr,
        "requestSubResource": req.subresource.unwrap_or(""),
        "name": req.name,
        "namespace": req.namespace.unwrap_or(""),
        "operation": req.operation,
        "userInfo": {
            "username": user.name,
            "uid": user.uid,
            "groups": user.groups,
            "extra": user.extra,
        },
        "dryRun": req.dry_run,
    })
}

/// Upstream's HTTP code for a validation's reason.
fn reason_code(reason: &str) -> u16 {
    match reason {
        "Unauthorized" => 401,
        "Forbidden" => 403,
        "RequestEntityTooLarge" => 413,
        _ => 422,
    }
}

/// A validation failure of one binding: its message, reason and the index of the
/// validation that failed.
struct Violation {
    message: String,
    reason: String,
    index: usize,
}

/// What evaluating a policy for one params object gave.
#[derive(Default)]
struct Outcome {
    /// Failed validations, and errors when failurePolicy is Fail.
    violations: Vec<Violation>,
    /// `auditAnnotations` to publish: key and value.
    annotations: Vec<(String, String)>,
    /// `auditAnnotations` that failed: these deny whatever the validationActions.
    annotation_errors: Vec<String>,
}

/// The longest audit annotation value upstream records.
const MAX_AUDIT_ANNOTATION_VALUE: usize = 10 * 1024;

/// The audit annotation key of failed validations under an `Audit` action.
const VALIDATION_FAILURE_KEY: &str = "validation.policy.admission.k8s.io/validation_failure";

/// The value of `validation_failure`, in upstream's field order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ValidationFailure<'a> {
    message: &'a str,
    policy: &'a str,
    binding: &'a str,
    expression_index: usize,
    validation_actions: &'a [&'a str],
}

/// Evaluates a policy for one params object; nothing when match conditions exclude it.
fn evaluate(c: &Compiled, vars: &mut Vec<(&'static str, CelValue)>, fail_closed: bool) -> Outcome {
    let mut outcome = Outcome::default();
    let out = &mut outcome.violations;
    let error = |out: &mut Vec<Violation>, message: String| {
        if fail_closed {
            out.push(Violation {
                message,
                reason: String::new(),
                index: 0,
            });
        }
    };
    // Variables, in order, each seeing the ones before it.
    let mut variables: Vec<(String, CelValue)> = Vec::new();
    for (name, expr) in &c.variables {
        vars.retain(|(n, _)| *n != "variables");
        vars.push(("variables", k1s_cel::map_of(variables.clone())));
        let bound: Vec<(&str, &CelValue)> = vars.iter().map(|(n, v)| (*n, v)).collect();
        // A variable that fails is left out: an expression that uses it fails then.
        if let Ok(v) = expr.eval(&bound) {
            variables.push((name.clone(), v));
        }
    }
    vars.retain(|(n, _)| *n != "variables");
    vars.push(("variables", k1s_cel::map_of(variables)));
    let bound: Vec<(&str, &CelValue)> = vars.iter().map(|(n, v)| (*n, v)).collect();
    for (name, cond) in &c.match_conditions {
        match cond.eval(&bound) {
            Ok(CelValue::Bool(true)) => {}
            Ok(CelValue::Bool(false)) => return Outcome::default(),
            Ok(_) => {
                error(
                    out,
                    format!("matchCondition '{name}' did not evaluate to a bool"),
                );
                return outcome;
            }
            Err(e) => {
                error(
                    out,
                    format!("failed to evaluate matchCondition '{name}': {e}"),
                );
                return outcome;
            }
        }
    }
    for (index, v) in c.validations.iter().enumerate() {
        match v.expr.eval(&bound) {
            Ok(CelValue::Bool(true)) => {}
            Ok(CelValue::Bool(false)) => {
                let from_expression =
                    v.message_expression
                        .as_ref()
                        .and_then(|m| match m.eval(&bound) {
                            Ok(CelValue::String(s)) => Some(s.trim().to_string())
                                .filter(|s| !s.is_empty() && !s.contains('\n')),
                            _ => None,
                        });
                let message = from_expression.unwrap_or_else(|| {
                    if v.message.is_empty() {
                        format!("failed expression: {}", v.expr.source)
                    } else {
                        v.message.clone()
                    }
                });
                out.push(Violation {
                    message,
                    reason: v.reason.clone(),
                    index,
                });
            }
            Ok(_) => error(
                out,
                format!(
                    "expression '{}' resulted in error: validation expression must evaluate to bool",
                    v.expr.source
                ),
            ),
            Err(e) => error(
                out,
                format!("expression '{}' resulted in error: {e}", v.expr.source),
            ),
        }
    }
    for (key, expr) in &c.audit_annotations {
        match expr.eval(&bound) {
            Ok(CelValue::String(value)) => {
                let mut value = value.to_string();
                if value.len() > MAX_AUDIT_ANNOTATION_VALUE {
                    let mut end = MAX_AUDIT_ANNOTATION_VALUE;
                    while !value.is_char_boundary(end) {
                        end -= 1;
                    }
                    value.truncate(end);
                }
                outcome.annotations.push((key.clone(), value));
            }
            Ok(CelValue::Null) => {}
            Ok(other) => outcome.annotation_errors.push(format!(
                "valueExpression '{}' resulted in unsupported return type: {}. Return type must be either string or null.",
                expr.source,
                other.type_of()
            )),
            Err(e) if fail_closed => outcome.annotation_errors.push(format!(
                "valueExpression '{}' resulted in error: {e}",
                expr.source
            )),
            Err(_) => {}
        }
    }
    outcome
}

/// Runs the ValidatingAdmissionPolicies bound to this write. Returns the warnings of
/// `Warn` bindings, or the denial of the first `Deny` binding that fails.
pub async fn admit(gs: &GenericStore, req: &Request<'_>) -> Result<Vec<String>, Status> {
    if exempt(req.info) {
        return Ok(Vec::new());
    }
    let snapshot = gs.registry().snapshot();
    let (Some(policies_res), Some(bindings_res)) = (
        snapshot
            .get(GROUP, "v1", "validatingadmissionpolicies")
            .cloned(),
        snapshot
            .get(GROUP, "v1", "validatingadmissionpolicybindings")
            .cloned(),
    ) else {
        return Ok(Vec::new());
    };
    let bindings = list(gs, &bindings_res, None);
    if bindings.is_empty() {
        return Ok(Vec::new());
    }
    let namespace_obj = match req.namespace.filter(|_| req.info.namespaced) {
        Some(ns) => gs
            .store()
            .get(&format!("/registry/namespaces/{ns}"))
            .and_then(|kv| serde_json::from_slice::<Value>(&kv.value).ok()),
        None => None,
    };
    // Gather what each matching binding needs (params are read from the store) before
    // evaluating anything.
    let mut work = Vec::new();
    for binding in bindings {
        let policy_name = binding
            .pointer("/spec/policyName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(policy) = gs
            .store()
            .get(&policies_res.info.key(None, policy_name))
            .and_then(|kv| gs.decode_stored(&policies_res, &kv).ok())
        else {
            continue;
        };
        let fail_closed = policy
            .pointer("/spec/failurePolicy")
            .and_then(Value::as_str)
            != Some("Ignore");
        let matched = resources_match(
            policy
                .pointer("/spec/matchConstraints")
                .unwrap_or(&Value::Null),
            req,
            namespace_obj.as_ref(),
            false,
        )
        .and_then(|m| {
            match binding
                .pointer("/spec/matchResources")
                .filter(|m| m.is_object())
            {
                Some(mr) if m => resources_match(mr, req, namespace_obj.as_ref(), true),
                _ => Ok(m),
            }
        });
        let params = match matched {
            Ok(false) => continue,
            Ok(true) => params_for(gs, &policy, &binding, req).await,
            Err(e) if fail_closed => Err(Failure {
                message: format!("failed to match: {e}"),
                always_deny: false,
            }),
            Err(_) => continue,
        };
        work.push(Work {
            policy,
            binding,
            params,
        });
    }
    if work.is_empty() {
        return Ok(Vec::new());
    }
    let object = req.object.map(k1s_cel::from_json).unwrap_or(CelValue::Null);
    let old_object = req
        .old_object
        .map(k1s_cel::from_json)
        .unwrap_or(CelValue::Null);
    let request = k1s_cel::from_json(&request_value(req));
    let authorizer = gs.admission().cel_authorizer(
        req.user,
        Some(k1s_cel::AuthzQuery {
            group: req.info.group.clone(),
            resource: req.info.plural.clone(),
            subresource: req.subresource.unwrap_or("").to_string(),
            namespace: req.namespace.unwrap_or("").to_string(),
            name: req.name.to_string(),
            ..Default::default()
        }),
    );
    let namespace_value = namespace_obj
        .as_ref()
        .map(k1s_cel::from_json)
        .unwrap_or(CelValue::Null);
    let evaluated = k1s_cel::with_deep_stack(|| {
        let mut warnings = Vec::new();
        // Upstream evaluates every binding, then refuses with the first denial; audit
        // annotations of every policy are recorded either way.
        let mut denied: Option<(String, String, Violation)> = None;
        let mut annotations: Vec<(String, String)> = Vec::new();
        for w in &work {
            let policy_name = crate::meta::name(&w.policy);
            let binding_name = crate::meta::name(&w.binding);
            let actions: Vec<&str> = w
                .binding
                .pointer("/spec/validationActions")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let fail_closed = w
                .policy
                .pointer("/spec/failurePolicy")
                .and_then(Value::as_str)
                != Some("Ignore");
            let mut policy_annotations: Vec<(String, Vec<String>)> = Vec::new();
            let violations: Vec<Violation> = match &w.params {
                Err(f) if f.always_deny || fail_closed => vec![Violation {
                    message: f.message.clone(),
                    reason: String::new(),
                    index: 0,
                }],
                Err(_) => Vec::new(),
                Ok(params) => {
                    let c = compiled(&w.policy);
                    let mut out = Vec::new();
                    for p in params {
                        let mut vars: Vec<(&'static str, CelValue)> = vec![
                            ("object", object.clone()),
                            ("oldObject", old_object.clone()),
                            ("request", request.clone()),
                            ("namespaceObject", namespace_value.clone()),
                            ("authorizer", authorizer.clone()),
                            (
                                "params",
                                p.as_ref().map(k1s_cel::from_json).unwrap_or(CelValue::Null),
                            ),
                        ];
                        let outcome = evaluate(&c, &mut vars, fail_closed);
                        out.extend(outcome.violations);
                        for message in outcome.annotation_errors {
                            denied.get_or_insert_with(|| {
                                (
                                    policy_name.to_string(),
                                    binding_name.to_string(),
                                    Violation {
                                        message,
                                        reason: String::new(),
                                        index: 0,
                                    },
                                )
                            });
                        }
                        // Distinct values of one key (params differ) are joined.
                        for (key, value) in outcome.annotations {
                            match policy_annotations.iter_mut().find(|(k, _)| *k == key) {
                                Some((_, values)) if values.contains(&value) => {}
                                Some((_, values)) => values.push(value),
                                None => policy_annotations.push((key, vec![value])),
                            }
                        }
                    }
                    out
                }
            };
            for v in violations {
                for action in &actions {
                    match *action {
                        "Deny" if denied.is_none() => {
                            denied = Some((
                                policy_name.to_string(),
                                binding_name.to_string(),
                                Violation {
                                    message: v.message.clone(),
                                    reason: v.reason.clone(),
                                    index: v.index,
                                },
                            ));
                        }
                        "Audit" => {
                            let failure = [ValidationFailure {
                                message: &v.message,
                                policy: policy_name,
                                binding: binding_name,
                                expression_index: v.index,
                                validation_actions: &actions,
                            }];
                            if let Ok(value) = serde_json::to_string(&failure) {
                                annotations.push((VALIDATION_FAILURE_KEY.to_string(), value));
                            }
                        }
                        "Warn" => warnings.push(format!(
                            "Validation failed for ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}': {}",
                            v.message
                        )),
                        _ => {}
                    }
                }
            }
            for (key, values) in policy_annotations {
                annotations.push((format!("{policy_name}/{key}"), values.join(", ")));
            }
        }
        (warnings, annotations, denied)
    });
    let Some((warnings, annotations, denied)) = evaluated else {
        return Err(Status::internal_error(
            "ValidatingAdmissionPolicy evaluation could not run",
        ));
    };
    // Published here: the evaluation may run on a thread of its own.
    for (key, value) in &annotations {
        crate::audit::add_annotation(key, value);
    }
    match denied {
        Some((policy, binding, v)) => Err(denial(req, &policy, &binding, &v)),
        None => Ok(warnings),
    }
}

/// Upstream's denial: `admission.NewForbidden` with the validation's reason and code,
/// and the message as the one cause.
fn denial(req: &Request<'_>, policy: &str, binding: &str, v: &Violation) -> Status {
    let message = format!(
        "ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: {}",
        v.message
    );
    let mut status = Status::forbidden(&req.info.group_resource(), req.name, &message);
    let reason = if v.reason.is_empty() {
        "Invalid"
    } else {
        v.reason.as_str()
    };
    status.reason = reason.to_string();
    status.code = i32::from(reason_code(reason));
    let details = status.details.get_or_insert_with(StatusDetails::default);
    details.causes.push(StatusCause {
        reason: String::new(),
        message,
        field: String::new(),
    });
    status
}

#[cfg(test)]
mod tests;

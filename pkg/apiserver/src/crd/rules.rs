//! CEL validation rules of CRD schemas (`x-kubernetes-validations`): checked when the
//! CRD is written ([`check_schema`]), compiled once per served version ([`Rules`]) and
//! evaluated on every write of a custom object, with `self` bound to the value of the
//! node the rule sits on and, for transition rules, `oldSelf` to its old value. As
//! upstream (CRD validation ratcheting), rules are not evaluated on a value an update
//! left unchanged, so an object that became invalid when a rule was added can still be
//! updated elsewhere.

use k1s_apimachinery::{ErrorList, ErrorType, FieldError, Path};
use k1s_cel::{EvalError, PER_CALL_LIMIT, Program, Value as CelValue};
use serde_json::Value;

use crate::kinds::admissionregistration::cel::rule_compile_error;

/// Upstream's CEL budget for validating one object (`RuntimeCELCostBudget`).
const OBJECT_BUDGET: u64 = 10_000_000;

/// One compiled rule.
#[derive(Debug)]
struct Rule {
    /// The rule as written (trimmed), for default messages.
    source: String,
    program: Program,
    message: String,
    message_expression: Option<Program>,
    field_path: String,
    reason: String,
    /// Whether the rule refers to `oldSelf` (a transition rule).
    transition: bool,
}

/// The rules of one schema node and of the nodes below it that have any.
#[derive(Debug, Default)]
struct Node {
    /// The schema type, shown as the invalid value (`"object"`).
    ty: String,
    rules: Vec<Rule>,
    properties: Vec<(String, Node)>,
    items: Option<Box<Node>>,
    additional: Option<Box<Node>>,
    /// `x-kubernetes-list-map-keys` of a `map` list: how old items correlate.
    map_keys: Option<Vec<String>>,
}

/// The compiled rules of one CRD version's schema.
#[derive(Debug, Default)]
pub struct Rules {
    root: Option<Node>,
}

/// Whether `source` refers to `oldSelf`: the identifier, not a longer name.
fn mentions_old_self(source: &str) -> bool {
    source.match_indices("oldSelf").any(|(i, _)| {
        let before = source[..i].chars().next_back();
        let after = source[i + "oldSelf".len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after) && before != Some('.')
    })
}

/// The string at `key` of a rule, trimmed.
fn text(rule: &Value, key: &str) -> String {
    rule.get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string()
}

impl Rules {
    /// Compiles the rules of `schema` (a version's `openAPIV3Schema`). Rules that do not
    /// compile were refused when the CRD was written; any left (a CRD stored before) are
    /// skipped.
    pub fn compile(schema: Option<&Value>) -> Rules {
        let Some(schema) = schema else {
            return Rules::default();
        };
        let root = k1s_cel::with_deep_stack(|| Node::compile(schema)).flatten();
        Rules { root }
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// The errors of the rules on `obj` (with `old`, its previous version, on updates).
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> ErrorList {
        let Some(root) = &self.root else {
            return ErrorList::new();
        };
        // At the root, `self.metadata` holds only the name and generateName.
        let trim = |o: &Value| {
            let mut o = o.clone();
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                m.retain(|k, _| k == "name" || k == "generateName");
            }
            o
        };
        let obj = trim(obj);
        let old = old.map(trim);
        k1s_cel::with_deep_stack(|| {
            let mut errs = ErrorList::new();
            let mut budget = OBJECT_BUDGET;
            root.validate(&obj, old.as_ref(), &Path::root(), &mut budget, &mut errs);
            errs
        })
        .unwrap_or_else(|| {
            vec![FieldError::internal(
                &Path::root(),
                "validation rules could not be evaluated",
            )]
        })
    }
}

impl Node {
    /// The node for `schema`, or `None` when neither it nor anything below it has rules.
    fn compile(schema: &Value) -> Option<Node> {
        let map = schema.as_object()?;
        let mut node = Node {
            ty: map
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            ..Node::default()
        };
        if map
            .get("x-kubernetes-int-or-string")
            .and_then(Value::as_bool)
            == Some(true)
        {
            node.ty = "integer-or-string".into();
        }
        for rule in map
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // optionalOldSelf rules need `oldSelf` as an optional value, which the
            // evaluator cannot bind yet: they are left out (see the README).
            if rule.get("optionalOldSelf").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let source = text(rule, "rule");
            let Ok(program) = k1s_cel::compile(&source) else {
                tracing::warn!(rule = %source, "skipping a CRD validation rule that does not compile");
                continue;
            };
            let message_expression = Some(text(rule, "messageExpression"))
                .filter(|m| !m.is_empty())
                .and_then(|m| k1s_cel::compile(&m).ok());
            node.rules.push(Rule {
                transition: mentions_old_self(&source),
                source,
                program,
                message: text(rule, "message"),
                message_expression,
                field_path: text(rule, "fieldPath"),
                reason: text(rule, "reason"),
            });
        }
        if let Some(props) = map.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                if let Some(child) = Node::compile(prop) {
                    node.properties.push((name.clone(), child));
                }
            }
        }
        node.items = map.get("items").and_then(Node::compile).map(Box::new);
        node.additional = map
            .get("additionalProperties")
            .and_then(Node::compile)
            .map(Box::new);
        if map.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
            node.map_keys = map
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                });
        }
        let empty = node.rules.is_empty()
            && node.properties.is_empty()
            && node.items.is_none()
            && node.additional.is_none();
        (!empty).then_some(node)
    }

    /// Evaluates this node's rules on `v` and recurses into its children; `old` is the
    /// correlated old value, if any. A value equal to its old one is skipped whole
    /// (ratcheting).
    fn validate(
        &self,
        v: &Value,
        old: Option<&Value>,
        path: &Path,
        budget: &mut u64,
        errs: &mut ErrorList,
    ) {
        if v.is_null() || old == Some(v) || *budget == 0 {
            return;
        }
        if !self.rules.is_empty() {
            let this = k1s_cel::from_json(v);
            let previous = old.map(k1s_cel::from_json);
            for rule in &self.rules {
                if *budget == 0 {
                    return;
                }
                if rule.transition && previous.is_none() {
                    continue;
                }
                self.evaluate(rule, &this, previous.as_ref(), path, budget, errs);
            }
        }
        if let Some(obj) = v.as_object() {
            for (name, child) in &self.properties {
                if let Some(cv) = obj.get(name) {
                    let ov = old.and_then(|o| o.get(name));
                    child.validate(cv, ov, &path.child(name), budget, errs);
                }
            }
            if let Some(child) = &self.additional {
                for (k, cv) in obj {
                    let ov = old.and_then(|o| o.get(k));
                    child.validate(cv, ov, &path.key(k), budget, errs);
                }
            }
        }
        if let (Some(items), Some(list)) = (&self.items, v.as_array()) {
            for (i, item) in list.iter().enumerate() {
                let ov = self.correlate(item, old.and_then(Value::as_array));
                items.validate(item, ov, &path.index(i), budget, errs);
            }
        }
    }

    /// The old item of a `map` list with the same keys as `item`; items of other lists
    /// do not correlate.
    fn correlate<'a>(&self, item: &Value, old: Option<&'a Vec<Value>>) -> Option<&'a Value> {
        let keys = self.map_keys.as_ref()?;
        old?.iter()
            .find(|o| keys.iter().all(|k| o.get(k) == item.get(k)))
    }

    /// Evaluates one rule and records its error, if any.
    fn evaluate(
        &self,
        rule: &Rule,
        this: &CelValue,
        old: Option<&CelValue>,
        path: &Path,
        budget: &mut u64,
        errs: &mut ErrorList,
    ) {
        let mut vars = vec![("self", this)];
        if let Some(old) = old {
            vars.push(("oldSelf", old));
        }
        let shown = || {
            if rule.message.is_empty() {
                rule.source.clone()
            } else {
                rule.message.clone()
            }
        };
        let limit = PER_CALL_LIMIT.min(*budget);
        match rule.program.eval(&vars, limit) {
            Ok((CelValue::Bool(true), cost)) => *budget = budget.saturating_sub(cost),
            Ok((CelValue::Bool(false), cost)) => {
                *budget = budget.saturating_sub(cost);
                let message = rule
                    .message_expression
                    .as_ref()
                    .and_then(|m| match m.eval(&vars, PER_CALL_LIMIT.min(*budget)) {
                        Ok((CelValue::String(s), cost)) => {
                            *budget = budget.saturating_sub(cost);
                            Some(s.trim().to_string()).filter(|s| !s.is_empty())
                        }
                        _ => None,
                    })
                    .unwrap_or_else(|| {
                        if rule.message.is_empty() {
                            format!("failed rule: {}", shown())
                        } else {
                            rule.message.clone()
                        }
                    });
                errs.push(self.failure(rule, path, message));
            }
            Ok((_, cost)) => {
                *budget = budget.saturating_sub(cost);
                errs.push(FieldError::invalid(
                    path,
                    self.ty.as_str(),
                    format!("rule did not evaluate to a bool: {}", shown()),
                ));
            }
            Err(EvalError::CostExceeded) => {
                *budget = 0;
                errs.push(FieldError::invalid(
                    path,
                    self.ty.as_str(),
                    format!(
                        "'{}': no further validation rules will be run due to call cost exceeds limit for rule: {}",
                        EvalError::CostExceeded,
                        shown()
                    ),
                ));
            }
            Err(EvalError::Failed(e)) => errs.push(FieldError::invalid(
                path,
                self.ty.as_str(),
                format!("{e} evaluating rule: {}", shown()),
            )),
        }
    }

    /// The error of a failed rule: at its fieldPath, of its reason.
    fn failure(&self, rule: &Rule, path: &Path, message: String) -> FieldError {
        let path = append_field_path(path, &rule.field_path);
        match ErrorType::from_reason(&rule.reason) {
            Some(ErrorType::Forbidden) => FieldError::forbidden(&path, message),
            Some(ErrorType::Required) => FieldError::required(&path, message),
            Some(ErrorType::Duplicate) => FieldError::duplicate(&path, self.ty.as_str()),
            _ => FieldError::invalid(&path, self.ty.as_str(), message),
        }
    }
}

/// `path` with a rule's `fieldPath` (`.spec.x`, `.map['key']`, `.list[0]`) appended.
fn append_field_path(path: &Path, field_path: &str) -> Path {
    let mut out = path.clone();
    let mut rest = field_path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            out = out.child(&r[..end]);
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("['") {
            let Some(end) = r.find("']") else { break };
            out = out.key(&r[..end]);
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            match r[..end].parse::<usize>() {
                Ok(i) => out = out.index(i),
                Err(_) => out = out.key(&r[..end]),
            }
            rest = &r[end + 1..];
        } else {
            break;
        }
    }
    out
}

/// Go's `%#v` of a rule as upstream shows it when the rule is refused.
fn rule_shown(rule: &Value) -> String {
    let q = |k: &str| {
        k1s_apimachinery::goformat::quote(rule.get(k).and_then(Value::as_str).unwrap_or(""))
    };
    let reason = match rule.get("reason").and_then(Value::as_str) {
        // Go prints the pointer's address, which means nothing to a reader.
        Some(_) => "(*apiextensions.FieldValueErrorReason)(0xc000000000)".to_string(),
        None => "(*apiextensions.FieldValueErrorReason)(nil)".to_string(),
    };
    let old_self = match rule.get("optionalOldSelf").and_then(Value::as_bool) {
        Some(_) => "(*bool)(0xc000000000)",
        None => "(*bool)(nil)",
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{reason}, FieldPath:{}, OptionalOldSelf:{old_self}}}",
        q("rule"),
        q("message"),
        q("messageExpression"),
        q("fieldPath"),
    )
}

/// An `Invalid value` whose value is shown as written (not quoted).
fn invalid_raw(path: &Path, shown: &str, detail: &str) -> FieldError {
    FieldError {
        error_type: ErrorType::Invalid,
        field: path.to_string(),
        bad_value: None,
        detail: format!("{shown}: {detail}"),
    }
}

/// The write-time checks of the rules in `schema` (at `path`): each rule and
/// messageExpression must compile against the schema, reasons must be known, and
/// transition rules may not sit where there is no old value to compare with.
pub fn check_schema(schema: &Value, path: &Path) -> ErrorList {
    k1s_cel::with_deep_stack(|| {
        let mut errs = ErrorList::new();
        check_node(schema, path, true, true, &mut errs);
        errs
    })
    .unwrap_or_default()
}

/// Checks one node's rules and recurses; `correlatable` is false below lists whose
/// items have no identity (no old value to compare with).
fn check_node(node: &Value, path: &Path, root: bool, correlatable: bool, errs: &mut ErrorList) {
    let Some(map) = node.as_object() else {
        return;
    };
    if let Some(rules) = map
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        for (i, rule) in rules.iter().enumerate() {
            let rp = path.child("x-kubernetes-validations").index(i);
            let source = text(rule, "rule");
            if source.is_empty() {
                errs.push(FieldError::required(
                    &rp.child("rule"),
                    "rule is not specified",
                ));
                continue;
            }
            if let Some(detail) = rule_compile_error(&source, node, root) {
                errs.push(invalid_raw(&rp.child("rule"), &rule_shown(rule), &detail));
            } else if mentions_old_self(&source) && !correlatable {
                errs.push(invalid_raw(
                    &rp.child("rule"),
                    &rule_shown(rule),
                    &format!(
                        "oldSelf cannot be used on the uncorrelatable portion of the schema within {path}"
                    ),
                ));
            }
            let me = text(rule, "messageExpression");
            if !me.is_empty()
                && let Some(detail) = rule_compile_error(&me, node, root)
            {
                errs.push(invalid_raw(
                    &rp.child("messageExpression"),
                    &rule_shown(rule),
                    &format!("messageExpression {detail}"),
                ));
            }
            let msg = rule.get("message").and_then(Value::as_str).unwrap_or("");
            if msg.contains('\n') {
                errs.push(FieldError::invalid(
                    &rp.child("message"),
                    msg,
                    "message must not contain line breaks",
                ));
            }
            if let Some(reason) = rule.get("reason").and_then(Value::as_str)
                && !matches!(
                    reason,
                    "FieldValueInvalid"
                        | "FieldValueForbidden"
                        | "FieldValueRequired"
                        | "FieldValueDuplicate"
                )
            {
                errs.push(FieldError::not_supported(
                    &rp.child("reason"),
                    reason,
                    &[
                        "FieldValueDuplicate",
                        "FieldValueForbidden",
                        "FieldValueInvalid",
                        "FieldValueRequired",
                    ],
                ));
            }
        }
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            check_node(
                prop,
                &path.child("properties").key(name),
                false,
                correlatable,
                errs,
            );
        }
    }
    if let Some(items) = map.get("items") {
        let keyed = map.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map");
        check_node(
            items,
            &path.child("items"),
            false,
            correlatable && keyed,
            errs,
        );
    }
    if let Some(extra) = map.get("additionalProperties") {
        check_node(
            extra,
            &path.child("additionalProperties"),
            false,
            correlatable,
            errs,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "x-kubernetes-validations": [
                        {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
                        {"rule": "self.image.startsWith('registry.local/')", "messageExpression": "'image ' + self.image + ' is not from registry.local'", "fieldPath": ".image", "reason": "FieldValueForbidden"},
                        {"rule": "!has(oldSelf.mode) || self.mode == oldSelf.mode", "message": "mode is immutable"}
                    ],
                    "properties": {
                        "minReplicas": {"type": "integer"},
                        "maxReplicas": {"type": "integer"},
                        "image": {"type": "string"},
                        "mode": {"type": "string"},
                        "ports": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name"],
                            "items": {
                                "type": "object",
                                "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                                "x-kubernetes-validations": [{"rule": "self.port > 1024"}]
                            }
                        }
                    }
                }
            }
        })
    }

    fn obj(min: i64, max: i64, image: &str, mode: &str, port: i64) -> Value {
        json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "uid": "u"},
               "spec": {"minReplicas": min, "maxReplicas": max, "image": image, "mode": mode,
                        "ports": [{"name": "http", "port": port}]}})
    }

    fn texts(errs: &ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn rules_report_upstream_texts() {
        let rules = Rules::compile(Some(&schema()));
        assert!(texts(&rules.validate(&obj(1, 2, "registry.local/a", "x", 8080), None)).is_empty());
        assert_eq!(
            texts(&rules.validate(&obj(3, 2, "docker.io/a", "x", 80), None)),
            vec![
                "spec: Invalid value: \"object\": minReplicas must not exceed maxReplicas",
                "spec.image: Forbidden: image docker.io/a is not from registry.local",
                "spec.ports[0]: Invalid value: \"object\": failed rule: self.port > 1024",
            ]
        );
    }

    #[test]
    fn transition_rules_and_ratcheting() {
        let rules = Rules::compile(Some(&schema()));
        let old = obj(1, 2, "registry.local/a", "x", 8080);
        assert_eq!(
            texts(&rules.validate(&obj(1, 2, "registry.local/a", "y", 8080), Some(&old))),
            vec!["spec: Invalid value: \"object\": mode is immutable"]
        );
        // An old object that breaks the port rule (written before the rule existed)
        // may still be updated elsewhere, but not have its bad port changed to another
        // bad one.
        let bad = obj(1, 2, "registry.local/a", "x", 80);
        let mut label = bad.clone();
        label["metadata"]["labels"] = json!({"a": "b"});
        assert!(rules.validate(&label, Some(&bad)).is_empty());
        assert_eq!(
            texts(&rules.validate(&obj(1, 2, "registry.local/a", "x", 81), Some(&bad))),
            vec!["spec.ports[0]: Invalid value: \"object\": failed rule: self.port > 1024"]
        );
    }

    #[test]
    fn bad_rules_are_refused_with_upstream_texts() {
        let bad = json!({
            "type": "object",
            "properties": {"spec": {"type": "object",
                "properties": {"x": {"type": "integer"}},
                "x-kubernetes-validations": [
                    {"rule": "self.x >"},
                    {"rule": "self.y == 1"},
                    {"rule": "self.x.foo() == 1"},
                    {"rule": "self.x == 1", "reason": "Nope"}
                ]}}
        });
        let errs = texts(&check_schema(
            &bad,
            &Path::new("spec")
                .child("versions")
                .index(0)
                .child("schema")
                .child("openAPIV3Schema"),
        ));
        let prefix =
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations";
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs[0].starts_with(&format!("{prefix}[0].rule: Invalid value: apiextensions.ValidationRule{{Rule:\"self.x >\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}: compilation failed: ERROR: <input>:1:")), "{}", errs[0]);
        assert!(errs[1].contains("undefined field 'y'"), "{}", errs[1]);
        assert!(
            errs[2].contains("undeclared reference to 'foo' (in container '')"),
            "{}",
            errs[2]
        );
        assert!(
            errs[3].starts_with(&format!("{prefix}[3].reason: Unsupported value: \"Nope\"")),
            "{}",
            errs[3]
        );
    }

    #[test]
    fn field_paths() {
        let p = append_field_path(&Path::new("spec"), ".a['b.c'].d[2]");
        assert_eq!(p.to_string(), "spec.a[b.c].d[2]");
    }
}

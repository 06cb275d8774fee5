//! Where a workload may run, as core validation checks it for pods, PersistentVolumes,
//! RuntimeClasses and StorageClasses: node selectors and their terms, tolerations, and
//! topology selector terms.

use std::collections::HashSet;

use k1s_apimachinery::goformat::invalid_go;
use k1s_apimachinery::goformat::quote;
use k1s_apimachinery::meta::{name_is_dns_subdomain, validate_label_name};
use k1s_apimachinery::validation::is_valid_label_value;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use super::{Fields, invalid_each, strings};

/// `ValidateNodeSelectorRequirement`.
fn node_selector_requirement(rq: &Value, allow_invalid_values: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = strings(rq.f("values"));
    match rq.s("operator") {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(FieldError::forbidden(
                    &path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        op => errs.push(FieldError::invalid(
            &path.child("operator"),
            op,
            "not a valid selector operator",
        )),
    }
    errs.extend(validate_label_name(rq.s("key"), &path.child("key")));
    if !allow_invalid_values {
        for (i, v) in values.iter().enumerate() {
            errs.extend(invalid_each(
                v,
                &path.child("values").index(i),
                is_valid_label_value(v),
            ));
        }
    }
    errs
}

/// `ValidateNodeFieldSelectorRequirement`.
fn node_field_selector_requirement(rq: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = strings(rq.f("values"));
    match rq.s("operator") {
        "In" | "NotIn" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        }
        op => errs.push(FieldError::invalid(
            &path.child("operator"),
            op,
            "not a valid selector operator",
        )),
    }
    if rq.s("key") != "metadata.name" {
        errs.push(FieldError::invalid(
            &path.child("key"),
            rq.s("key"),
            "not a valid field selector key",
        ));
    } else {
        for (i, v) in values.iter().enumerate() {
            errs.extend(invalid_each(
                v,
                &path.child("values").index(i),
                name_is_dns_subdomain(v, false),
            ));
        }
    }
    errs
}

/// `ValidateNodeSelectorTerm`; `allow_invalid_values` skips the label-value check of
/// `matchExpressions` values (preferred terms, and updates of required terms that already
/// had such values).
pub fn validate_node_selector_term(
    term: &Value,
    allow_invalid_values: bool,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    for (j, rq) in term.a("matchExpressions").iter().enumerate() {
        errs.extend(node_selector_requirement(
            rq,
            allow_invalid_values,
            &path.child("matchExpressions").index(j),
        ));
    }
    for (j, rq) in term.a("matchFields").iter().enumerate() {
        errs.extend(node_field_selector_requirement(
            rq,
            &path.child("matchFields").index(j),
        ));
    }
    errs
}

/// `ValidateNodeSelector`: a required node selector has at least one term.
pub fn validate_node_selector(
    selector: &Value,
    allow_invalid_values: bool,
    path: &Path,
) -> ErrorList {
    let terms_path = path.child("nodeSelectorTerms");
    let terms = selector.a("nodeSelectorTerms");
    if terms.is_empty() {
        return vec![FieldError::required(
            &terms_path,
            "must have at least one node selector term",
        )];
    }
    terms
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            validate_node_selector_term(t, allow_invalid_values, &terms_path.index(i))
        })
        .collect()
}

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// `%#v` of a `core.Toleration` (upstream shows the whole toleration when an `Exists`
/// one has a value).
fn go_toleration(t: &Value) -> String {
    let seconds = match t.i("tolerationSeconds") {
        // A set pointer prints as an address upstream; the value is the useful part.
        Some(s) => format!("(*int64)({s})"),
        None => "(*int64)(nil)".to_string(),
    };
    format!(
        "core.Toleration{{Key:{}, Operator:{}, Value:{}, Effect:{}, TolerationSeconds:{seconds}}}",
        quote(t.s("key")),
        quote(t.s("operator")),
        quote(t.s("value")),
        quote(t.s("effect"))
    )
}

/// `ValidateTolerations` (pods, RuntimeClass scheduling), without the alpha Lt/Gt
/// comparisons.
pub fn validate_tolerations(tolerations: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = path.index(i);
        let key = t.s("key");
        let op = t.s("operator");
        let effect = t.s("effect");
        let value = t.s("value");
        if !key.is_empty() {
            errs.extend(validate_label_name(key, &p.child("key")));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                &p.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.has("tolerationSeconds") && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    // Upstream shows the whole toleration here, with `%#v`.
                    errs.push(invalid_go(
                        &p.child("operator"),
                        go_toleration(t),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            // Numeric comparisons are an alpha feature in 1.35.
            "Lt" | "Gt" => errs.push(FieldError::not_supported(
                &p.child("operator"),
                op,
                &["Equal", "Exists", "Lt", "Gt"],
            )),
            other => errs.push(FieldError::not_supported(
                &p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(
                &p.child("effect"),
                effect,
                TAINT_EFFECTS,
            ));
        }
    }
    errs
}

/// Core's `ValidateTopologySelectorTerm`: each requirement has values (no duplicates)
/// and a label-name key, and no key repeats. Returns the term's key → values map too.
pub fn validate_topology_selector_term(
    term: &Value,
    path: &Path,
) -> (Vec<(String, Vec<String>)>, ErrorList) {
    let mut errs = ErrorList::new();
    let mut exprs: Vec<(String, Vec<String>)> = Vec::new();
    let mut keys: HashSet<&str> = HashSet::new();
    let exprs_path = path.child("matchLabelExpressions");
    for (i, req) in term.a("matchLabelExpressions").iter().enumerate() {
        let idx = exprs_path.index(i);
        let values_path = idx.child("values");
        let values = req.a("values");
        if values.is_empty() {
            errs.push(FieldError::required(&values_path, ""));
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let mut set: Vec<String> = Vec::new();
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or_default();
            if seen.insert(v) {
                set.push(v.to_string());
            } else {
                errs.push(FieldError::duplicate(&values_path.index(j), v));
            }
        }
        let key = req.s("key");
        errs.extend(validate_label_name(key, &idx.child("key")));
        if !keys.insert(key) {
            errs.push(FieldError::duplicate(&idx.child("key"), key));
        } else {
            set.sort();
            exprs.push((key.to_string(), set));
        }
    }
    exprs.sort();
    (exprs, errs)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_util::texts;

    #[test]
    fn tolerations_read_the_same_for_pods_and_runtime_classes() {
        // An Exists toleration with a value shows the whole toleration (upstream passes
        // the struct); Lt and Gt are known operators whose feature is off.
        let t = [
            json!({"key": "k", "operator": "Exists", "value": "v"}),
            json!({"key": "k", "operator": "Lt", "value": "1"}),
        ];
        assert_eq!(
            texts(validate_tolerations(&t, &Path::new("t"))),
            vec![
                "t[0].operator: Invalid value: core.Toleration{Key:\"k\", Operator:\"Exists\", Value:\"v\", Effect:\"\", TolerationSeconds:(*int64)(nil)}: value must be empty when `operator` is 'Exists'",
                "t[1].operator: Unsupported value: \"Lt\": supported values: \"Equal\", \"Exists\", \"Lt\", \"Gt\"",
            ]
        );
    }

    #[test]
    fn a_required_node_selector_needs_a_term() {
        assert_eq!(
            texts(validate_node_selector(&json!({}), false, &Path::new("r"))),
            vec!["r.nodeSelectorTerms: Required value: must have at least one node selector term"]
        );
        let term = json!({"matchExpressions": [{"key": "k", "operator": "In", "values": ["-"]}]});
        assert_eq!(
            validate_node_selector_term(&term, false, &Path::new("t")).len(),
            1
        );
        assert!(validate_node_selector_term(&term, true, &Path::new("t")).is_empty());
    }
}

//! What every pod-template workload shares: template defaults, the selector/labels rule,
//! an immutable selector.

use k1s_apimachinery::{ErrorList, FieldError, Path, Selector};
use serde_json::{Value, json};

use crate::kinds::core::podspec::{default_pod_spec, validate_pod_spec};
use crate::meta::get_path;

/// Defaults the pod template at `template` (a path of keys to the PodTemplateSpec).
pub fn default_template(obj: &mut Value, template: &[&str]) {
    let mut cur = Some(obj);
    for k in template {
        cur = cur.and_then(|v| v.get_mut(*k));
    }
    if let Some(spec) = cur.and_then(|t| t.get_mut("spec")) {
        default_pod_spec(spec);
    }
}

/// Go's `%#v` rendering of a label map, as upstream's messages show it.
pub fn go_map(labels: &Value) -> String {
    let mut pairs: Vec<String> = labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{:?}:{:?}", k, v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    format!("map[string]string{{{}}}", pairs.join(", "))
}

/// Validates replicas, the selector, that it selects the template's labels, and the
/// template's pod spec; `allowed_restart` lists the template restart policies.
pub fn validate_workload(obj: &Value, template: &[&str], allowed_restart: &[&str]) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = Path::new("spec");
    if let Some(r) = get_path(obj, &["spec", "replicas"]).and_then(Value::as_i64)
        && r < 0
    {
        errs.push(FieldError::invalid(
            &spec.child("replicas"),
            json!(r),
            "must be greater than or equal to 0",
        ));
    }
    let tpath = template.iter().fold(Path::root(), |p, k| p.child(k));
    let labels = get_path(obj, &[template, &["metadata", "labels"]].concat())
        .cloned()
        .unwrap_or(json!({}));
    match get_path(obj, &["spec", "selector"]) {
        None | Some(Value::Null) => errs.push(FieldError::required(&spec.child("selector"), "")),
        Some(sel) => match Selector::from_label_selector(sel) {
            Err(e) => errs.push(FieldError::invalid(
                &spec.child("selector"),
                sel.clone(),
                e.to_string(),
            )),
            Ok(selector) => {
                if selector.is_empty() {
                    errs.push(FieldError::invalid(
                        &spec.child("selector"),
                        sel.clone(),
                        "empty selector is invalid for deployment",
                    ));
                } else if !selector.matches(labels.as_object().unwrap_or(&serde_json::Map::new())) {
                    errs.push(FieldError::invalid(
                        &tpath.child("metadata").child("labels"),
                        json!(go_map(&labels)),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        },
    }
    match get_path(obj, &[template, &["spec"]].concat()) {
        None => errs.push(FieldError::required(
            &tpath.child("spec").child("containers"),
            "",
        )),
        Some(ps) => {
            errs.extend(validate_pod_spec(ps, &tpath.child("spec")));
            let rp = ps
                .get("restartPolicy")
                .and_then(Value::as_str)
                .unwrap_or("Always");
            if !allowed_restart.contains(&rp) {
                errs.push(FieldError::not_supported(
                    &tpath.child("spec").child("restartPolicy"),
                    json!(rp),
                    allowed_restart,
                ));
            }
        }
    }
    errs
}

/// The selector may not change after creation (apps/v1).
pub fn validate_selector_immutable(new: &Value, old: &Value) -> ErrorList {
    let (n, o) = (
        get_path(new, &["spec", "selector"]),
        get_path(old, &["spec", "selector"]),
    );
    if n != o {
        return vec![FieldError::invalid(
            &Path::new("spec").child("selector"),
            n.cloned().unwrap_or(Value::Null),
            "field is immutable",
        )];
    }
    ErrorList::new()
}

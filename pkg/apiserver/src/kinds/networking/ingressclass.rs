//! IngressClasses (upstream `ValidateIngressClass`, `ValidateIngressClassUpdate`,
//! `SetDefaults_IngressClass`): a domain-prefixed controller that never changes, and the
//! parameters reference.

use k1s_apimachinery::meta::name_is_dns_label;
use k1s_apimachinery::validation::{
    is_dns1123_subdomain, is_domain_prefixed_path, validate_path_segment_name,
};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use crate::kinds::validation::{Fields, immutable_field};
use crate::registry::Strategy;

/// The IngressClass strategy.
pub struct IngressClassStrategy;

const MAX_CONTROLLER_LEN: usize = 250;
/// `validateIngressClassParametersReference`.
fn validate_parameters(params: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(group) = params.get("apiGroup").and_then(Value::as_str) {
        for msg in is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid(&path.child("apiGroup"), group, msg));
        }
    }
    for key in ["kind", "name"] {
        let v = params.s(key);
        if v.is_empty() {
            errs.push(FieldError::required(&path.child(key), ""));
        } else {
            for msg in validate_path_segment_name(v, false) {
                errs.push(FieldError::invalid(&path.child(key), v, msg));
            }
        }
    }
    let Some(scope) = params.get("scope").and_then(Value::as_str) else {
        errs.push(FieldError::required(&path.child("scope"), ""));
        return errs;
    };
    let namespace = params.get("namespace").and_then(Value::as_str);
    match scope {
        "Namespace" => match namespace {
            None => errs.push(FieldError::required(
                &path.child("namespace"),
                "`parameters.scope` is set to 'Namespace'",
            )),
            Some(ns) => {
                for msg in name_is_dns_label(ns, false) {
                    errs.push(FieldError::invalid(&path.child("namespace"), ns, msg));
                }
            }
        },
        "Cluster" => {
            if namespace.is_some() {
                errs.push(FieldError::forbidden(
                    &path.child("namespace"),
                    "`parameters.scope` is set to 'Cluster'",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &path.child("scope"),
            other,
            &["Cluster", "Namespace"],
        )),
    }
    errs
}

fn validate_spec(obj: &Value) -> ErrorList {
    let spec = obj.f("spec");
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    let controller = spec.s("controller");
    if controller.is_empty() {
        errs.push(FieldError::required(&path.child("controller"), ""));
    } else {
        if controller.len() > MAX_CONTROLLER_LEN {
            errs.push(FieldError::too_long(
                &path.child("controller"),
                "",
                MAX_CONTROLLER_LEN as i64,
            ));
        }
        errs.extend(is_domain_prefixed_path(
            &path.child("controller"),
            controller,
        ));
    }
    if spec.has("parameters") {
        errs.extend(validate_parameters(
            spec.f("parameters"),
            &path.child("parameters"),
        ));
    }
    errs
}

impl Strategy for IngressClassStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(params) = obj
            .get_mut("spec")
            .and_then(|s| s.get_mut("parameters"))
            .and_then(Value::as_object_mut)
            && !params.contains_key("scope")
        {
            params.insert("scope".into(), json!("Cluster"));
        }
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = immutable_field(
            new.f("spec"),
            old.f("spec"),
            "controller",
            &Path::new("spec"),
        );
        errs.extend(validate_spec(new));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_are_domain_prefixed_paths() {
        let p = Path::new("spec").child("controller");
        assert!(is_domain_prefixed_path(&p, "k8s.io/ingress-nginx").is_empty());
        assert_eq!(
            is_domain_prefixed_path(&p, "nginx")[0].to_string(),
            "spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")"
        );
        assert_eq!(
            is_domain_prefixed_path(&p, "k8s.io/a b")[0].to_string(),
            "spec.controller: Invalid value: \"a b\": Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')"
        );
    }

    #[test]
    fn parameters_default_to_cluster_scope() {
        let mut obj = json!({"spec": {"controller": "example.com/c", "parameters": {"kind": "K", "name": "n"}}});
        IngressClassStrategy.default(&mut obj);
        assert_eq!(obj["spec"]["parameters"]["scope"], json!("Cluster"));
        assert!(IngressClassStrategy.validate(&obj).is_empty());
    }
}

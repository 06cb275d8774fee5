//! StorageClasses (upstream `ValidateStorageClass`, `ValidateStorageClassUpdate`,
//! `SetDefaults_StorageClass`): a provisioner, parameters, reclaim policy and binding
//! mode that never change, and allowed topologies.

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::{validate_parameters, validate_provisioner};
use crate::kinds::validation::scheduling::validate_topology_selector_term;
use crate::kinds::validation::{Fields, immutable_field, semantic_eq};
use crate::meta::default_path;
use crate::registry::Strategy;

/// The StorageClass strategy.
pub struct StorageClassStrategy;

const RECLAIM_POLICIES: &[&str] = &["Delete", "Retain"];
const BINDING_MODES: &[&str] = &["Immediate", "WaitForFirstConsumer"];

/// `validateAllowedTopologies`. Upstream compares each term with a list that starts with
/// one empty entry per term, so an empty term is always reported as a duplicate.
fn validate_allowed_topologies(terms: &[Value]) -> ErrorList {
    let path = Path::new("allowedTopologies");
    let mut errs = ErrorList::new();
    let mut seen: Vec<Vec<(String, Vec<String>)>> = vec![Vec::new(); terms.len()];
    for (i, term) in terms.iter().enumerate() {
        let (exprs, term_errs) = validate_topology_selector_term(term, &path.index(i));
        errs.extend(term_errs);
        for s in &seen {
            if *s == exprs {
                errs.push(FieldError::duplicate(
                    &path.index(i).child("matchLabelExpressions"),
                    "",
                ));
            }
        }
        seen.push(exprs);
    }
    errs
}

fn validate_class(obj: &Value) -> ErrorList {
    let mut errs = validate_provisioner(obj.s("provisioner"), &Path::new("provisioner"));
    errs.extend(validate_parameters(
        obj.m("parameters"),
        true,
        &Path::new("parameters"),
    ));
    let reclaim = obj.s("reclaimPolicy");
    if !reclaim.is_empty() && !RECLAIM_POLICIES.contains(&reclaim) {
        errs.push(FieldError::not_supported(
            &Path::new("reclaimPolicy"),
            reclaim,
            RECLAIM_POLICIES,
        ));
    }
    match obj.get("volumeBindingMode").and_then(Value::as_str) {
        None => errs.push(FieldError::required(&Path::new("volumeBindingMode"), "")),
        Some(mode) if !BINDING_MODES.contains(&mode) => errs.push(FieldError::not_supported(
            &Path::new("volumeBindingMode"),
            mode,
            BINDING_MODES,
        )),
        Some(_) => {}
    }
    let terms = obj.a("allowedTopologies");
    if !terms.is_empty() {
        errs.extend(validate_allowed_topologies(terms));
    }
    errs
}

impl Strategy for StorageClassStrategy {
    fn default(&self, obj: &mut Value) {
        default_path(obj, &["reclaimPolicy"], json!("Delete"));
        default_path(obj, &["volumeBindingMode"], json!("Immediate"));
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_class(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = validate_class(new);
        if !semantic_eq(new.f("parameters"), old.f("parameters")) {
            errs.push(FieldError::forbidden(
                &Path::new("parameters"),
                "updates to parameters are forbidden.",
            ));
        }
        if new.s("provisioner") != old.s("provisioner") {
            errs.push(FieldError::forbidden(
                &Path::new("provisioner"),
                "updates to provisioner are forbidden.",
            ));
        }
        if new.s("reclaimPolicy") != old.s("reclaimPolicy") {
            errs.push(FieldError::forbidden(
                &Path::new("reclaimPolicy"),
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        errs.extend(immutable_field(
            new,
            old,
            "volumeBindingMode",
            &Path::root(),
        ));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    #[test]
    fn local_path_class_is_valid() {
        let mut sc = json!({"metadata": {"name": "local-path", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
        StorageClassStrategy.default(&mut sc);
        assert_eq!(sc["reclaimPolicy"], json!("Delete"));
        assert!(texts(StorageClassStrategy.validate(&sc)).is_empty());
        let mut changed = sc.clone();
        changed["reclaimPolicy"] = json!("Retain");
        assert_eq!(
            texts(StorageClassStrategy.validate_update(&changed, &sc)),
            vec!["reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden."]
        );
    }

    #[test]
    fn topologies() {
        let sc = json!({"provisioner": "ebs.csi.aws.com", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
        "allowedTopologies": [
            {"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["a", "b"]}]},
            {"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["b", "a"]}]},
            {"matchLabelExpressions": [{"key": "k", "values": []}]}
        ]});
        assert_eq!(
            texts(StorageClassStrategy.validate(&sc)),
            vec![
                "allowedTopologies[1].matchLabelExpressions: Duplicate value: \"\"",
                "allowedTopologies[2].matchLabelExpressions[0].values: Required value",
            ]
        );
    }
}

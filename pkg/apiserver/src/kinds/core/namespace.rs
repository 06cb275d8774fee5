//! Namespaces: DNS-1123 label names, the `kubernetes` finalizer, Active/Terminating phase
//! (upstream's `ValidateNamespace*` and `pkg/registry/core/namespace`).

use k1s_apimachinery::validation::is_qualified_name;
use k1s_apimachinery::{ErrorList, FieldError, GroupResource, Path, Status};
use serde_json::{Value, json};

use crate::kinds::validation::Fields;
use crate::meta;
use crate::registry::Strategy;

/// The Namespace strategy.
pub struct NamespaceStrategy;

/// Namespaces no one may delete (upstream's NamespaceLifecycle admission): everything
/// else in the cluster assumes them.
pub const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// The finalizer the namespace controller removes once a namespace is empty.
pub const NAMESPACE_FINALIZER: &str = "kubernetes";

const STANDARD_FINALIZERS: &[&str] = &[NAMESPACE_FINALIZER, "orphan", "foregroundDeletion"];

/// Upstream's `validateFinalizerName`: a qualified name, and a standard one unless it
/// has a domain.
pub fn validate_finalizer_name(name: &str, path: &Path) -> ErrorList {
    let mut errs: ErrorList = is_qualified_name(name)
        .into_iter()
        .map(|m| FieldError::invalid(path, name, m))
        .collect();
    if !name.contains('/') && !STANDARD_FINALIZERS.contains(&name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
    errs
}

/// `spec.finalizers` checks. Create and update report every entry at the list's path;
/// `/finalize` at each entry's index (as upstream does).
fn validate_spec_finalizers(obj: &Value, indexed: bool) -> ErrorList {
    let path = Path::new("spec").child("finalizers");
    let mut errs = ErrorList::new();
    for (i, f) in obj.f("spec").a("finalizers").iter().enumerate() {
        let p = if indexed { path.index(i) } else { path.clone() };
        errs.extend(validate_finalizer_name(f.as_str().unwrap_or(""), &p));
    }
    errs
}

impl Strategy for NamespaceStrategy {
    fn default(&self, obj: &mut Value) {
        // Upstream labels every namespace with its own name, for selectors.
        let name = meta::name(obj).to_string();
        if !name.is_empty() {
            let m = meta::metadata_mut(obj);
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        meta::default_path(obj, &["status", "phase"], json!("Active"));
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        obj["status"] = json!({"phase": "Active"});
        // The `kubernetes` finalizer is required on create, after any the user set.
        if !obj.get("spec").is_some_and(Value::is_object) {
            obj["spec"] = json!({});
        }
        let finalizers = obj["spec"]
            .as_object_mut()
            .map(|s| s.entry("finalizers").or_insert_with(|| json!([])));
        if let Some(Value::Array(list)) = finalizers
            && !list.iter().any(|f| f == NAMESPACE_FINALIZER)
        {
            list.push(json!(NAMESPACE_FINALIZER));
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value, _has_status: bool) {
        // spec.finalizers change only through /finalize; status only through /status.
        let finalizers = old.f("spec").get("finalizers").cloned();
        if !new.get("spec").is_some_and(Value::is_object) {
            new["spec"] = json!({});
        }
        if let Some(spec) = new["spec"].as_object_mut() {
            match finalizers {
                Some(f) => {
                    spec.insert("finalizers".into(), f);
                }
                None => {
                    spec.remove("finalizers");
                }
            }
        }
        new["status"] = old.get("status").cloned().unwrap_or(json!({}));
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec_finalizers(obj, false)
    }

    fn validate_update(&self, new: &Value, _old: &Value) -> ErrorList {
        // Also the /finalize subresource's validation, which reports each index.
        validate_spec_finalizers(new, true)
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> ErrorList {
        let phase = new.f("status").s("phase");
        // Upstream capitalises `Phase` here.
        let path = Path::new("status").child("Phase");
        if meta::is_deleting(new) {
            if phase != "Terminating" {
                return vec![FieldError::invalid(
                    &path,
                    phase,
                    "may only be 'Terminating' if `deletionTimestamp` is not empty",
                )];
            }
        } else if phase != "Active" {
            return vec![FieldError::invalid(
                &path,
                phase,
                "may only be 'Active' if `deletionTimestamp` is empty",
            )];
        }
        ErrorList::new()
    }

    fn validate_name(&self, name: &str, prefix: bool) -> Vec<String> {
        k1s_apimachinery::meta::name_is_dns_label(name, prefix)
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let phase = meta::get_path(obj, &["status", "phase"])
            .and_then(Value::as_str)
            .unwrap_or("");
        vec![("status.phase", phase.to_string())]
    }

    fn admit_delete(&self, obj: &Value) -> Result<(), Status> {
        let name = meta::name(obj);
        if IMMORTAL_NAMESPACES.contains(&name) {
            return Err(Status::forbidden(
                &GroupResource::new("", "namespaces"),
                name,
                "this namespace may not be deleted",
            ));
        }
        Ok(())
    }

    fn prepare_for_delete(&self, obj: &mut Value) {
        obj["status"]["phase"] = json!("Terminating");
    }

    fn deletion_blocked(&self, obj: &Value) -> bool {
        meta::get_path(obj, &["spec", "finalizers"])
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    #[test]
    fn the_kubernetes_finalizer_is_added_after_the_users() {
        let mut ns =
            json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["example.com/cleanup"]}});
        NamespaceStrategy.prepare_for_create(&mut ns, true);
        assert_eq!(
            ns["spec"]["finalizers"],
            json!(["example.com/cleanup", "kubernetes"])
        );
        let mut plain = json!({"metadata": {"name": "b"}});
        NamespaceStrategy.prepare_for_create(&mut plain, true);
        assert_eq!(plain["spec"]["finalizers"], json!(["kubernetes"]));
    }

    #[test]
    fn finalizer_names_must_be_standard_or_qualified() {
        let ns = json!({"spec": {"finalizers": ["kubernetes", "custom"]}});
        assert_eq!(
            texts(NamespaceStrategy.validate(&ns)),
            vec![
                "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
        assert_eq!(
            texts(NamespaceStrategy.validate_update(&ns, &ns)),
            vec![
                "spec.finalizers[1]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
    }

    #[test]
    fn the_phase_follows_the_deletion_timestamp() {
        let ns = json!({"metadata": {}, "status": {"phase": "Terminating"}});
        assert_eq!(
            texts(NamespaceStrategy.validate_status_update(&ns, &ns)),
            vec![
                "status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"
            ]
        );
    }
}

//! Namespaces: DNS-1123 label names, the `kubernetes` finalizer, Active/Terminating phase.

use k1s_apimachinery::{GroupResource, Status};
use serde_json::{Value, json};

use crate::meta;
use crate::registry::Strategy;

/// The Namespace strategy.
pub struct NamespaceStrategy;

/// Namespaces no one may delete (upstream's NamespaceLifecycle admission): everything
/// else in the cluster assumes them.
pub const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// The finalizer the namespace controller removes once a namespace is empty.
pub const NAMESPACE_FINALIZER: &str = "kubernetes";

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
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        obj["status"] = json!({"phase": "Active"});
        obj["spec"] = json!({"finalizers": [NAMESPACE_FINALIZER]});
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value, _has_status: bool) {
        // spec.finalizers change only through /finalize; status only through /status.
        new["spec"] = old.get("spec").cloned().unwrap_or(json!({}));
        new["status"] = old.get("status").cloned().unwrap_or(json!({}));
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

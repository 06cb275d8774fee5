//! What makes one kind different from another. Every method has a default, so a kind
//! implements only what upstream's `pkg/registry/<group>/<kind>/strategy.go` does for it.

use k1s_apimachinery::{ErrorList, Status};
use serde_json::Value;

use super::Subresource;
use super::generic::DecodeFailure;
use super::table::TablePrinter;
use crate::schema::decode::{self, Decoded};
use crate::schema::model::{Definitions, Schema};

/// Paths of the replica fields behind a `/scale` subresource.
#[derive(Debug, Clone)]
pub struct ScaleSpec {
    /// Desired replicas (`spec.replicas`).
    pub spec_replicas: Vec<String>,
    /// Observed replicas (`status.replicas`).
    pub status_replicas: Vec<String>,
    /// Label selector: a LabelSelector object (`spec.selector`) for apps kinds, a plain
    /// map for ReplicationControllers, a selector string for custom resources.
    pub selector: Option<Vec<String>>,
    /// How the selector is written.
    pub selector_form: SelectorForm,
    /// Replicas when the field is absent.
    pub default_replicas: i64,
}

/// How a scale selector is stored in the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorForm {
    /// A `metav1.LabelSelector` object.
    LabelSelector,
    /// A plain `map[string]string`.
    Map,
    /// Already a selector string (custom resources' `labelSelectorPath`).
    String,
}

fn path(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

impl ScaleSpec {
    /// The ScaleSpec of apps kinds.
    pub fn apps() -> Self {
        Self {
            spec_replicas: path(&["spec", "replicas"]),
            status_replicas: path(&["status", "replicas"]),
            selector: Some(path(&["spec", "selector"])),
            selector_form: SelectorForm::LabelSelector,
            default_replicas: 1,
        }
    }

    /// The ScaleSpec of ReplicationControllers.
    pub fn replication_controller() -> Self {
        Self {
            selector_form: SelectorForm::Map,
            ..Self::apps()
        }
    }
}

/// Kind-specific behaviour of a resource. Objects are JSON values of the kind's stored
/// version.
pub trait Strategy: Send + Sync + 'static {
    /// Checks a request body against the kind's schema and drops unknown fields (the
    /// default is upstream's strict decoder for built-in kinds).
    fn decode(
        &self,
        obj: &mut Value,
        schema: &Schema,
        defs: &Definitions,
    ) -> Result<Decoded, DecodeFailure> {
        Ok(decode::decode(obj, schema, defs)?)
    }

    /// Sets defaults (upstream `SetDefaults_*`), on every write.
    fn default(&self, _obj: &mut Value) {}

    /// Defaults an object as it is read from storage (upstream's storage decoder for
    /// custom resources): a default added to a schema later shows on objects stored
    /// before it. Built-in kinds default on write only: their stored bytes are served as
    /// they are (`GenericStore::served_json`), so a built-in strategy must not default here.
    fn default_on_read(&self, _obj: &mut Value) {}

    /// Whether `metadata.generation` is maintained (bumped on spec changes).
    fn tracks_generation(&self) -> bool {
        false
    }

    /// Clears what a create may not set. The default clears `.status` for kinds that
    /// have a status subresource (the registry passes that flag).
    fn prepare_for_create(&self, obj: &mut Value, has_status: bool) {
        if has_status && let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
    }

    /// Carries over from `old` what an update of the main resource may not change: the
    /// default keeps `.status` for kinds with a status subresource.
    fn prepare_for_update(&self, new: &mut Value, old: &Value, has_status: bool) {
        if has_status && let Some(o) = new.as_object_mut() {
            match old.get("status") {
                Some(s) => {
                    o.insert("status".into(), s.clone());
                }
                None => {
                    o.remove("status");
                }
            }
        }
    }

    /// Whether a write through `/status` keeps its metadata changes (labels,
    /// annotations): upstream's status strategies of some kinds (Job, CronJob) only carry
    /// the spec over, where the default, like a custom resource's, keeps the old object
    /// whole but for its status.
    fn status_update_keeps_metadata(&self) -> bool {
        false
    }

    /// Carries over from `old` what a write through a kind-specific subresource
    /// (`certificatesigningrequests/approval`, `pods/ephemeralcontainers`) may not
    /// change. Only kinds that serve one override it.
    fn prepare_for_subresource_update(&self, _sub: Subresource, _new: &mut Value, _old: &Value) {}

    /// Validates a write through a kind-specific subresource.
    fn validate_subresource_update(
        &self,
        _sub: Subresource,
        new: &Value,
        old: &Value,
    ) -> ErrorList {
        self.validate_update(new, old)
    }

    /// Validates a new object (metadata is validated by the registry).
    fn validate(&self, _obj: &Value) -> ErrorList {
        ErrorList::new()
    }

    /// Validates an update; the default validates the new object.
    fn validate_update(&self, new: &Value, _old: &Value) -> ErrorList {
        self.validate(new)
    }

    /// Validates a status update; the default validates the new object.
    fn validate_status_update(&self, new: &Value, old: &Value) -> ErrorList {
        self.validate_update(new, old)
    }

    /// Validates an object name (or, with `prefix`, a generateName); upstream's default is
    /// a DNS-1123 subdomain.
    fn validate_name(&self, name: &str, prefix: bool) -> Vec<String> {
        k1s_apimachinery::meta::name_is_dns_subdomain(name, prefix)
    }

    /// Field selector labels beyond `metadata.name` and `metadata.namespace`, with the
    /// object's values.
    fn field_labels(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Whether an update (PUT, patch) of a missing object creates it.
    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// Whether an update without `metadata.resourceVersion` is allowed.
    fn allow_unconditional_update(&self) -> bool {
        true
    }

    /// The `/scale` mapping, if any.
    fn scale(&self) -> Option<ScaleSpec> {
        None
    }

    /// Grace period for deleting this object (pods); `None` deletes at once.
    fn graceful_delete(&self, _obj: &Value, _requested: Option<i64>) -> Option<i64> {
        None
    }

    /// Allocation or admission on create (after defaulting and validation, before
    /// storing): e.g. a Service's cluster IP. Returns an error Status to refuse.
    fn admit_create(&self, _obj: &mut Value) -> Result<(), Status> {
        Ok(())
    }

    /// Like [`Strategy::admit_create`] for updates.
    fn admit_update(&self, _new: &mut Value, _old: &Value) -> Result<(), Status> {
        Ok(())
    }

    /// Undoes what `admit_create`/`admit_update` allocated when the write failed.
    fn release(&self, _obj: &Value, _old: Option<&Value>) {}

    /// Called after an object is gone from the store (frees allocations).
    fn after_delete(&self, _obj: &Value) {}

    /// Rebuilds in-memory state from stored objects at start (allocator repair). Objects
    /// are decoded as the iterator is drawn, so kinds that keep no state cost nothing.
    fn restore(&self, _objects: &mut dyn Iterator<Item = Value>) {}

    /// Refuses a delete before anything changes (upstream's admission on DELETE: the
    /// immortal namespaces). Runs for dry runs too.
    fn admit_delete(&self, _obj: &Value) -> Result<(), Status> {
        Ok(())
    }

    /// Marks an object whose deletion begins (a namespace turns Terminating).
    fn prepare_for_delete(&self, _obj: &mut Value) {}

    /// Whether something besides `metadata.finalizers` must finish before a deleted
    /// object is removed (a namespace's `spec.finalizers`).
    fn deletion_blocked(&self, _obj: &Value) -> bool {
        false
    }

    /// Table columns and cells; the default uses the printers by group and kind.
    fn table(&self, group: &str, kind: &str) -> TablePrinter {
        TablePrinter::builtin(group, kind)
    }
}

/// A kind with no behaviour beyond the generic one.
pub struct Plain;

impl Strategy for Plain {}

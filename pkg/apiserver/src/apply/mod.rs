//! Server-side apply and field management (`metadata.managedFields`).
//!
//! A Rust rendering of kubernetes-sigs/structured-merge-diff (field sets, typed merge,
//! comparison, ownership and conflicts) and of the field manager of
//! `k8s.io/apimachinery/pkg/util/managedfields`, working on JSON objects described by the
//! k1s schema model:
//!
//! * [`apply`] merges an applied configuration (`kubectl apply --server-side`) into the
//!   live object and updates ownership, or reports conflicts as upstream does;
//! * [`update`] records who changed what for every other write (create, update, patch);
//! * [`field_set_of`] is upstream's `ToFieldSet`; [`FieldSet`] is its field set with the
//!   `FieldsV1` encoding written into `metadata.managedFields`.
//!
//! The wrappers upstream stacks around the merge are reproduced in upstream's order:
//! version check, the client-side-apply upgrade and last-applied annotation sync (for the
//! `kubectl` manager), tracking from the first apply (`before-first-apply`), the cap of ten
//! update managers (`ancient-changes`), manager identifiers, entry times, and stripping of
//! the metadata nobody owns (`apiVersion`, `kind`, `metadata.name`, … see [`STRIPPED_FIELDS`]).

mod fieldpath;
mod managed;
mod merge;
mod typed;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::{Map, Value};

pub use fieldpath::{
    FieldPath, FieldSet, FieldsV1Error, PathElement, compare_values, value_to_string, values_equal,
};
pub use managed::{
    FIELD_MANAGER_MAX_LENGTH, FieldErrorKind, ManagedFieldsEntry, ManagedFieldsError,
    ManagedFieldsFieldError, ManagedFieldsOperation, decode_managed_fields, encode_managed_fields,
    format_rfc3339, parse_rfc3339, set_managed_fields, validate_field_manager,
    validate_managed_fields,
};
pub use typed::{ValidationError, ValidationErrors};

use crate::schema::model::{Definitions, Schema};
use managed::{Managed, ManagerId, manager_id, strip_managed_fields};
use merge::{ManagedSets, Updater};
use typed::{Check, Ty, Types};

/// The annotation client-side `kubectl apply` keeps its last configuration in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// upstream's `DefaultMaxUpdateManagers`.
pub const DEFAULT_MAX_UPDATE_MANAGERS: usize = 10;

/// The most bytes all annotations of an object may take (`TotalAnnotationSizeLimitB`).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Fields never recorded as owned (upstream's `stripMeta`). `metadata` itself is stripped
/// only as a member: the labels, annotations, … below it stay owned.
pub const STRIPPED_FIELDS: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "creationTimestamp"],
    &["metadata", "selfLink"],
    &["metadata", "uid"],
    &["metadata", "clusterName"],
    &["metadata", "generation"],
    &["metadata", "managedFields"],
    &["metadata", "resourceVersion"],
];

/// The manager upstream records fields under that existed before an object's first apply.
pub const BEFORE_FIRST_APPLY_MANAGER: &str = "before-first-apply";

/// Everything the field manager needs to know about the endpoint being written.
#[derive(Debug, Clone)]
pub struct ApplyContext<'a> {
    /// The schema of the kind (usually a reference node such as
    /// `Schema::reference("io.k8s.api.apps.v1.Deployment")`).
    pub schema: &'a Schema,
    /// The definitions references resolve against.
    pub defs: &'a Definitions,
    /// The group version of the endpoint (`apps/v1`, `v1`).
    pub api_version: &'a str,
    /// The kind; when given, an applied object of another kind is refused as upstream does.
    pub kind: Option<&'a str>,
    /// The current time, RFC 3339 (`2024-05-01T10:00:00Z`); written into changed entries.
    pub now: String,
    /// The subresource written through (`status`, `scale`), if any.
    pub subresource: Option<&'a str>,
    /// Fields of this endpoint whose changes nobody owns and whose applied values are
    /// ignored: `status` for a main resource, everything but `status` for `/status`
    /// (upstream's reset fields).
    pub reset_fields: FieldSet,
    /// The kind's empty object as upstream's field manager sees a newly constructed Go
    /// value: fields without `omitempty` present as `null`, non-pointer structs as objects
    /// (for a Deployment `{"metadata":{"creationTimestamp":null},"spec":{"selector":null,
    /// "strategy":{},"template":{"metadata":{"creationTimestamp":null},"spec":{"containers":
    /// null}}},"status":{}}`). It is the old object of a create; which struct fields it has
    /// decides whether they are marked as members (`.`) in the creator's fields. `None`:
    /// just `apiVersion` and `kind`, which is what custom resources get.
    pub zero: Option<&'a Value>,
    /// The cap on update entries ([`DEFAULT_MAX_UPDATE_MANAGERS`]).
    pub max_update_managers: usize,
}

impl<'a> ApplyContext<'a> {
    /// A context for the main resource with no reset fields.
    pub fn new(
        schema: &'a Schema,
        defs: &'a Definitions,
        api_version: &'a str,
        now: String,
    ) -> Self {
        Self {
            schema,
            defs,
            api_version,
            kind: None,
            now,
            subresource: None,
            reset_fields: FieldSet::new(),
            zero: None,
            max_update_managers: DEFAULT_MAX_UPDATE_MANAGERS,
        }
    }

    fn types(&self) -> Types<'a> {
        Types { defs: self.defs }
    }

    fn ty(&self) -> Ty<'a> {
        Ty::Node {
            node: self.schema,
            preserve: false,
        }
    }

    fn subresource(&self) -> &str {
        self.subresource.unwrap_or("")
    }

    fn now(&self) -> String {
        parse_rfc3339(&self.now)
            .map(format_rfc3339)
            .unwrap_or_else(|| self.now.clone())
    }

    fn updater<'s>(&'s self) -> Updater<'s> {
        Updater {
            types: self.types(),
            ty: self.ty(),
            ignored: &self.reset_fields,
        }
    }
}

/// One conflict of an apply: a field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// How it wrote the field.
    pub operation: ManagedFieldsOperation,
    /// The API version it wrote in (upstream names it for updaters only; empty otherwise).
    pub api_version: String,
    /// The subresource it wrote through (empty for the main resource).
    pub subresource: String,
    /// The field.
    pub path: FieldPath,
    id: String,
}

impl Conflict {
    fn from_raw(id: String, path: FieldPath) -> Self {
        let parts = ManagerId::parse(&id);
        let operation = if parts.operation == "Apply" {
            ManagedFieldsOperation::Apply
        } else {
            ManagedFieldsOperation::Update
        };
        Self {
            manager: parts.manager,
            operation,
            api_version: parts.api_version,
            subresource: parts.subresource,
            path,
            id,
        }
    }

    /// The field as upstream prints it (`.spec.replicas`,
    /// `.spec.template.spec.containers[name="nginx"].image`).
    pub fn field_path_string(&self) -> String {
        self.path.to_string()
    }

    /// The manager as upstream names it in messages: `"kubectl"`, or `"kubectl-edit" using
    /// apps/v1` for an updater, with `with subresource "status"` where one applies.
    pub fn manager_description(&self) -> String {
        ManagerId::parse(&self.id).display()
    }

    /// The message of the conflict's status cause (`conflict with "kubectl-edit" using
    /// apps/v1`).
    pub fn message(&self) -> String {
        format!("conflict with {}", self.manager_description())
    }

    /// The status cause of the conflict.
    pub fn cause(&self) -> StatusCause {
        StatusCause {
            reason: "FieldManagerConflict".into(),
            message: self.message(),
            field: self.field_path_string(),
        }
    }
}

/// A `metav1.StatusCause`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCause {
    /// `reason` (`FieldManagerConflict`).
    pub reason: String,
    /// `message`.
    pub message: String,
    /// `field`.
    pub field: String,
}

/// upstream's `getConflictMessage`.
fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager_description(),
            c.path
        );
    }
    let mut ids: Vec<&str> = conflicts.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut lines = Vec::new();
    for id in ids {
        lines.push(format!(
            "conflicts with {}:",
            ManagerId::parse(id).display()
        ));
        for c in conflicts.iter().filter(|c| c.id == id) {
            lines.push(format!("- {}", c.path));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Why an apply failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApplyError {
    /// Other managers own fields the configuration changes (409 Conflict). The message is
    /// upstream's, capital letter included.
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The applied object is of another kind or version (400).
    #[error("invalid object type: {0}")]
    InvalidObjectType(String),
    /// The applied object's version is not the endpoint's (400); upstream's message.
    #[error(
        "Incorrect version specified in apply patch. Specified patch version: {patch}, expected: {expected}"
    )]
    IncorrectVersion {
        /// The applied object's group version.
        patch: String,
        /// The endpoint's.
        expected: String,
    },
    /// The applied object has `metadata.managedFields` (400).
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsInConfig,
    /// The applied object does not fit the schema (500, as upstream).
    #[error("failed to create typed patch object ({object}): {errors}")]
    InvalidConfig {
        /// `namespace/name; group/version, Kind=kind` of the applied object.
        object: String,
        /// What is wrong.
        errors: ValidationErrors,
    },
    /// The live object does not fit the schema (500).
    #[error("failed to create typed live object ({object}): {errors}")]
    InvalidLive {
        /// `namespace/name; group/version, Kind=kind` of the live object.
        object: String,
        /// What is wrong.
        errors: ValidationErrors,
    },
    /// Recording the fields of an object first applied to failed (500).
    #[error("failed to create manager for existing fields: {0}")]
    ExistingFields(String),
}

impl ApplyError {
    /// The HTTP status code upstream answers with.
    pub fn code(&self) -> u16 {
        match self {
            Self::Conflicts(_) => 409,
            Self::InvalidObjectType(_)
            | Self::IncorrectVersion { .. }
            | Self::ManagedFieldsInConfig => 400,
            Self::InvalidConfig { .. } | Self::InvalidLive { .. } | Self::ExistingFields(_) => 500,
        }
    }

    /// The `reason` of the Status upstream answers with (empty for unknown).
    pub fn reason(&self) -> &'static str {
        match self.code() {
            409 => "Conflict",
            400 => "BadRequest",
            _ => "",
        }
    }

    /// The status causes: one `FieldManagerConflict` per conflict, in upstream's order.
    pub fn causes(&self) -> Vec<StatusCause> {
        match self {
            Self::Conflicts(cs) => cs.iter().map(Conflict::cause).collect(),
            _ => Vec::new(),
        }
    }
}

/// Why recording an update's fields failed; upstream then keeps the live object's entries.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpdateError {
    /// The new object does not fit the schema.
    #[error("failed to convert new object ({object}) to smd typed: {errors}")]
    InvalidNew {
        /// `namespace/name; group/version, Kind=kind`.
        object: String,
        /// What is wrong.
        errors: ValidationErrors,
    },
    /// The old object does not fit the schema.
    #[error("failed to convert live object ({object}) to smd typed: {errors}")]
    InvalidOld {
        /// `namespace/name; group/version, Kind=kind`.
        object: String,
        /// What is wrong.
        errors: ValidationErrors,
    },
}

/// The set of fields of an object (upstream's `ToFieldSet`): every leaf, list and map
/// element markers, atomic lists and maps as single fields.
pub fn field_set_of(obj: &Value, schema: &Schema, defs: &Definitions) -> FieldSet {
    Types { defs }.field_set(
        obj,
        Ty::Node {
            node: schema,
            preserve: false,
        },
    )
}

/// Validates an object against the schema as upstream's typed conversion does.
pub fn validate_object(
    obj: &Value,
    schema: &Schema,
    defs: &Definitions,
    allow_duplicates: bool,
) -> ValidationErrors {
    Types { defs }.validate(
        obj,
        Ty::Node {
            node: schema,
            preserve: false,
        },
        Check {
            allow_duplicates,
            typed: true,
        },
    )
}

fn gv_parse(api_version: &str) -> Option<(&str, &str)> {
    if api_version.is_empty() || api_version == "/" {
        return Some(("", ""));
    }
    match api_version.matches('/').count() {
        0 => Some(("", api_version)),
        1 => api_version.split_once('/'),
        _ => None,
    }
}

fn gv_string(api_version: &str) -> String {
    match gv_parse(api_version) {
        Some(("", v)) => v.to_string(),
        Some((g, v)) => format!("{g}/{v}"),
        None => String::new(),
    }
}

fn str_at<'v>(obj: &'v Value, pointer: &str) -> &'v str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// `GroupVersionKind.String()` of an object.
fn gvk_string(obj: &Value) -> String {
    let (g, v) = gv_parse(str_at(obj, "/apiVersion")).unwrap_or(("", ""));
    format!("{g}/{v}, Kind={}", str_at(obj, "/kind"))
}

/// upstream's `objectGVKNN`: `namespace/name; group/version, Kind=kind`.
fn object_gvknn(obj: &Value) -> String {
    format!(
        "{}/{}; {}",
        str_at(obj, "/metadata/namespace"),
        str_at(obj, "/metadata/name"),
        gvk_string(obj)
    )
}

fn zero_object(ctx: &ApplyContext<'_>, like: &Value) -> Value {
    if let Some(z) = ctx.zero {
        return z.clone();
    }
    let mut m = Map::new();
    for k in ["apiVersion", "kind"] {
        if let Some(v) = like.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    Value::Object(m)
}

/// [`STRIPPED_FIELDS`] as a set, built once.
fn stripped_set() -> &'static FieldSet {
    static SET: std::sync::LazyLock<FieldSet> = std::sync::LazyLock::new(|| {
        FieldSet::from_paths(STRIPPED_FIELDS.iter().map(|p| FieldPath::fields(p)))
    });
    &SET
}

/// upstream's `stripMeta`: the manager never owns the server-managed metadata.
fn strip_meta(sets: &mut ManagedSets, id: &str) {
    if let Some(vs) = sets.get_mut(id) {
        vs.set.subtract(stripped_set());
        if vs.set.is_empty() {
            sets.remove(id);
        }
    }
}

fn manager_name(manager: &str) -> &str {
    if manager.is_empty() {
        "unknown"
    } else {
        manager
    }
}

/// The manager of a request: the `fieldManager` parameter, else the user agent up to its
/// first `/`, printable characters only, at most 128 bytes (upstream's
/// `managerOrUserAgent`).
pub fn manager_or_user_agent(manager: &str, user_agent: &str) -> String {
    if !manager.is_empty() {
        return manager.to_string();
    }
    let prefix = user_agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in prefix.chars() {
        if !k1s_apimachinery::goformat::is_print(c) {
            continue;
        }
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

/// Whether a request's managedFields ask to reset them: an empty list, or a list of one
/// empty entry (upstream's `isResetManagedFields`).
fn is_reset_managed_fields(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Array(items)) if items.is_empty() => true,
        Some(Value::Array(items)) if items.len() == 1 => match &items[0] {
            Value::Object(o) => o.iter().all(|(k, v)| match v {
                Value::Null => true,
                Value::String(s) => s.is_empty() && k != "fieldsV1",
                _ => false,
            }),
            _ => false,
        },
        _ => false,
    }
}

/// The entries an update starts from (upstream's `decodeLiveOrNew`): the live object's for
/// a subresource; none when the request resets them; the request's when it carries valid
/// ones; the live object's otherwise (undecodable entries count as none).
pub fn managed_fields_for_update(
    live: Option<&Value>,
    new: &Value,
    is_subresource: bool,
) -> Vec<ManagedFieldsEntry> {
    let decode = |v: Option<&Value>| -> Vec<ManagedFieldsEntry> {
        v.and_then(|v| decode_managed_fields(v).ok())
            .unwrap_or_default()
    };
    let live_mf = live.and_then(|l| l.pointer("/metadata/managedFields"));
    if is_subresource {
        return decode(live_mf);
    }
    let new_mf = new.pointer("/metadata/managedFields");
    if is_reset_managed_fields(new_mf) {
        return Vec::new();
    }
    match new_mf.map(decode_managed_fields) {
        Some(Ok(entries)) if !entries.is_empty() => entries,
        _ => decode(live_mf),
    }
}

/// Records the fields of a non-apply write (create, update, patch): what changed between
/// `old` (`None` for a create) and `new` becomes owned by `manager`'s update entry and is
/// taken from everybody else, removed fields are removed from everybody, empty entries are
/// dropped, the entry's time is set when it gained fields, and beyond
/// [`ApplyContext::max_update_managers`] update entries the oldest are merged into
/// `ancient-changes`. An existing object without entries stays untracked. `managed` comes
/// from [`managed_fields_for_update`]; the result is sorted as upstream writes it and
/// replaces `metadata.managedFields` (none: remove the field).
pub fn update(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    managed: &[ManagedFieldsEntry],
    ctx: &ApplyContext<'_>,
) -> Vec<ManagedFieldsEntry> {
    // upstream's UpdateNoErrors keeps what was there.
    try_update(old, new, manager, managed, ctx).unwrap_or_else(|_| managed.to_vec())
}

/// [`update`], reporting an object that does not fit the schema instead of keeping the
/// entries unchanged.
pub fn try_update(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    managed: &[ManagedFieldsEntry],
    ctx: &ApplyContext<'_>,
) -> Result<Vec<ManagedFieldsEntry>, UpdateError> {
    let unmanaged = |v: &Value| {
        let mut v = v.clone();
        strip_managed_fields(&mut v);
        v
    };
    let old_obj = old.map(unmanaged);
    try_update_unmanaged(
        old_obj.as_ref(),
        &unmanaged(new),
        manager,
        managed.to_vec(),
        ctx,
    )
    .map_err(|(e, _)| e)
}

/// [`update`] of objects without `metadata.managedFields` (taken out by the caller, which
/// then need not copy the objects): `managed` are the entries the update starts from.
///
/// The entries are taken rather than borrowed: their field sets become the new entries'
/// without a copy (an object that does not fit the schema gets them back unchanged).
pub fn update_unmanaged(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    managed: Vec<ManagedFieldsEntry>,
    ctx: &ApplyContext<'_>,
) -> Vec<ManagedFieldsEntry> {
    // As `update` does.
    try_update_unmanaged(old, new, manager, managed, ctx).unwrap_or_else(|(_, managed)| managed)
}

/// [`try_update`] of objects without managedFields: skipNonApplied, then
/// [`record_update`] from `old` (`None`: the zero object of a create) to `new`. On an
/// error the entries come back as they were.
fn try_update_unmanaged(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    managed: Vec<ManagedFieldsEntry>,
    ctx: &ApplyContext<'_>,
) -> Result<Vec<ManagedFieldsEntry>, (UpdateError, Vec<ManagedFieldsEntry>)> {
    // skipNonApplied: an existing object nobody tracks stays untracked.
    if managed.is_empty() && old.is_some() {
        return Ok(Vec::new());
    }
    let zero;
    let old = match old {
        Some(o) => o,
        None => {
            zero = zero_object(ctx, new);
            &zero
        }
    };
    if let Err(e) = validate_pair(old, new, ctx) {
        return Err((e, managed));
    }
    let m = Managed::from_owned_entries(managed);
    Ok(record_update(old, new, manager, m, ctx).to_entries())
}

/// The objects of an update checked against the schema (upstream converts both to typed
/// values first).
fn validate_pair(old: &Value, new: &Value, ctx: &ApplyContext<'_>) -> Result<(), UpdateError> {
    let types = ctx.types();
    let errs = types.validate(new, ctx.ty(), Check::OBJECT);
    if !errs.0.is_empty() {
        return Err(UpdateError::InvalidNew {
            object: object_gvknn(new),
            errors: errs,
        });
    }
    let errs = types.validate(old, ctx.ty(), Check::OBJECT);
    if !errs.0.is_empty() {
        return Err(UpdateError::InvalidOld {
            object: object_gvknn(old),
            errors: errs,
        });
    }
    Ok(())
}

/// The update chain below `skipNonApplied`: capManagers, buildManagerInfo,
/// managedFieldsUpdater, stripMeta, structuredMerge, of objects [`validate_pair`] accepted.
fn record_update(
    old: &Value,
    new: &Value,
    manager: &str,
    mut managed: Managed,
    ctx: &ApplyContext<'_>,
) -> Managed {
    const CURRENT: &str = "current-operation";
    let id = manager_id(
        manager_name(manager),
        "Update",
        ctx.api_version,
        ctx.subresource(),
    );
    managed.sets = ctx
        .updater()
        .update(old, new, ctx.api_version, managed.sets, CURRENT);
    strip_meta(&mut managed.sets, CURRENT);
    if let Some(mut merged) = managed.sets.remove(CURRENT) {
        if let Some(prev) = managed.sets.get(&id) {
            merged.set.union_with(&prev.set);
        }
        managed.sets.insert(id.clone(), merged);
        managed.times.insert(id, Some(ctx.now()));
    }
    managed.cap_update_managers(ctx.max_update_managers);
    managed
}

/// Server-side apply: merges `config` into `live` (`None`: the object does not exist and
/// is created) per the schema's list and map types, makes `manager` own exactly the fields
/// of `config`, removes the fields it applied before and no longer applies unless somebody
/// else owns them, and fails with [`ApplyError::Conflicts`] when `config` changes a value
/// another manager owns, unless `force`, which takes the field over.
///
/// `managed` are the live object's decoded entries. The result is the new object, with
/// `metadata.managedFields` set, and its entries. When nothing changed the object is the
/// live one and the applier's time is left alone. The object still needs what upstream
/// does after the field manager: defaulting, and the strategy's handling of server-set
/// metadata (the applied `resourceVersion`, `uid`, … are merged like any field; only their
/// ownership is never recorded). Fields of [`ApplyContext::reset_fields`] keep their live
/// values (are dropped on create).
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    managed: &[ManagedFieldsEntry],
    ctx: &ApplyContext<'_>,
) -> Result<(Value, Vec<ManagedFieldsEntry>), ApplyError> {
    // versionCheck
    if let Some(kind) = ctx.kind
        && (gv_string(str_at(config, "/apiVersion")) != gv_string(ctx.api_version)
            || str_at(config, "/kind") != kind)
    {
        return Err(ApplyError::InvalidObjectType(gvk_string(config)));
    }
    let live = live.map(|l| {
        let mut l = l.clone();
        strip_managed_fields(&mut l);
        l
    });
    let managed = Managed::from_entries(managed);
    // lastAppliedManager, then lastAppliedUpdater.
    let (mut obj, managed) =
        apply_upgrading_client_side(live.as_ref(), config, manager, force, managed, ctx)?;
    if manager == "kubectl" && has_last_applied(&obj) {
        set_last_applied(&mut obj, &build_last_applied(config));
    }
    restore_reset_fields(&mut obj, live.as_ref(), &ctx.reset_fields);
    let entries = managed.to_entries();
    set_managed_fields(&mut obj, &entries);
    Ok((obj, entries))
}

/// upstream's `lastAppliedManager`: for `kubectl`, conflicts on fields whose values the
/// client-side apply annotation recorded (and that still have them) are forced.
fn apply_upgrading_client_side(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    managed: Managed,
    ctx: &ApplyContext<'_>,
) -> Result<(Value, Managed), ApplyError> {
    let first = apply_tracked(live, config, manager, force, managed.clone(), ctx);
    if manager != "kubectl" {
        return first;
    }
    let Err(ApplyError::Conflicts(conflicts)) = &first else {
        return first;
    };
    let Some(allowed) = live.and_then(|l| allowed_conflicts_from_last_applied(l, ctx)) else {
        return first;
    };
    let conflict_set = FieldSet::from_paths(conflicts.iter().map(|c| c.path.clone()));
    if !conflict_set.difference(&allowed).is_empty() {
        let remaining = conflicts
            .iter()
            .filter(|c| !allowed.has(&c.path.0))
            .cloned()
            .collect();
        return Err(ApplyError::Conflicts(remaining));
    }
    apply_tracked(live, config, manager, true, managed, ctx)
}

/// The fields client-side apply set and that still have the values it set.
fn allowed_conflicts_from_last_applied(live: &Value, ctx: &ApplyContext<'_>) -> Option<FieldSet> {
    let annotation = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())?;
    let last: Value = serde_json::from_str(annotation).ok()?;
    if !last.is_object() || gv_string(str_at(&last, "/apiVersion")) != gv_string(ctx.api_version) {
        return None;
    }
    if ctx.kind.is_some_and(|k| str_at(&last, "/kind") != k) {
        return None;
    }
    let types = ctx.types();
    if !types.validate(&last, ctx.ty(), Check::CONFIG).0.is_empty() {
        return None;
    }
    let set = types.field_set(&last, ctx.ty());
    let cmp = types.compare(&last, live, ctx.ty());
    Some(
        set.difference(&cmp.modified)
            .difference(&cmp.added)
            .difference(&cmp.removed),
    )
}

/// skipNonApplied, capManagers, buildManagerInfo, managedFieldsUpdater, stripMeta and
/// structuredMerge, for an apply.
fn apply_tracked(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    mut managed: Managed,
    ctx: &ApplyContext<'_>,
) -> Result<(Value, Managed), ApplyError> {
    let live_obj = match live {
        Some(l) => l.clone(),
        None => Value::Object(Map::new()),
    };
    // skipNonApplied: fields of an object nobody tracked yet go to before-first-apply.
    if managed.sets.is_empty()
        && let Some(l) = live
    {
        let zero = zero_object(ctx, l);
        validate_pair(&zero, l, ctx).map_err(|e| ApplyError::ExistingFields(e.to_string()))?;
        managed = record_update(&zero, l, BEFORE_FIRST_APPLY_MANAGER, managed, ctx);
    }
    let id = manager_id(
        manager_name(manager),
        "Apply",
        ctx.api_version,
        ctx.subresource(),
    );

    // structuredMerge.Apply
    let patch_gv = gv_string(str_at(config, "/apiVersion"));
    let expected = gv_string(ctx.api_version);
    if patch_gv != expected {
        return Err(ApplyError::IncorrectVersion {
            patch: patch_gv,
            expected,
        });
    }
    if matches!(
        config.pointer("/metadata/managedFields"),
        Some(Value::Array(_))
    ) {
        return Err(ApplyError::ManagedFieldsInConfig);
    }
    let types = ctx.types();
    let errs = types.validate(config, ctx.ty(), Check::CONFIG);
    if !errs.0.is_empty() {
        return Err(ApplyError::InvalidConfig {
            object: object_gvknn(config),
            errors: errs,
        });
    }
    let errs = types.validate(&live_obj, ctx.ty(), Check::OBJECT);
    if !errs.0.is_empty() {
        return Err(ApplyError::InvalidLive {
            object: object_gvknn(&live_obj),
            errors: errs,
        });
    }
    let (obj, sets) = ctx
        .updater()
        .apply(&live_obj, config, ctx.api_version, managed.sets, &id, force)
        .map_err(|raw| {
            ApplyError::Conflicts(
                raw.into_iter()
                    .map(|(m, p)| Conflict::from_raw(m, p))
                    .collect(),
            )
        })?;
    managed.sets = sets;
    strip_meta(&mut managed.sets, &id);
    // managedFieldsUpdater: the applier's time changes only when the object does.
    let obj = match obj {
        Some(o) => {
            managed.times.insert(id, Some(ctx.now()));
            o
        }
        None => live_obj,
    };
    Ok((obj, managed))
}

fn has_last_applied(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

/// The annotation value upstream writes for an applied object: the object without the
/// annotation, as Go's `encoding/json` writes a map (sorted keys), with a newline.
pub fn build_last_applied(config: &Value) -> String {
    let mut obj = config.clone();
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        match meta.get_mut("annotations") {
            Some(Value::Object(a)) if a.values().all(Value::is_string) => {
                a.shift_remove(LAST_APPLIED_ANNOTATION);
            }
            Some(_) => {
                // Not a string map: upstream reads it as none and removes it.
                meta.shift_remove("annotations");
            }
            None => {}
        }
    }
    let mut s =
        k1s_apimachinery::goformat::to_json(&obj, k1s_apimachinery::goformat::JsonStyle::GO);
    s.push('\n');
    s
}

/// upstream's `SetLastApplied`: dropped when the annotations would exceed their size limit.
fn set_last_applied(obj: &mut Value, value: &str) {
    let Some(Value::Object(meta)) = obj.get_mut("metadata") else {
        return;
    };
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(a) = annotations else {
        return;
    };
    a.insert(
        LAST_APPLIED_ANNOTATION.into(),
        Value::String(value.to_string()),
    );
    let total: usize = a
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        a.shift_remove(LAST_APPLIED_ANNOTATION);
    }
}

/// Puts back the live values of the reset fields (removes them when there is no live
/// object), as the strategy does after upstream's field manager. Only paths of field names
/// are handled.
fn restore_reset_fields(obj: &mut Value, live: Option<&Value>, reset: &FieldSet) {
    for path in reset.paths() {
        let names: Option<Vec<&str>> = path
            .0
            .iter()
            .map(|pe| match pe {
                PathElement::Field(n) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        let Some(names) = names else { continue };
        let Some((last, parents)) = names.split_last() else {
            continue;
        };
        let live_value = live
            .and_then(|l| parents.iter().try_fold(l, |v, n| v.get(*n)))
            .and_then(|p| p.get(*last));
        set_at(obj, parents, last, live_value);
    }
}

/// Sets (or, with no value, removes) `obj[parents…][last]`, creating parents only to set.
fn set_at(obj: &mut Value, parents: &[&str], last: &str, value: Option<&Value>) {
    let Value::Object(m) = obj else { return };
    match parents.split_first() {
        None => match value {
            Some(v) => {
                m.insert(last.to_string(), v.clone());
            }
            None => {
                m.shift_remove(last);
            }
        },
        Some((first, rest)) => {
            if value.is_none() && !m.contains_key(*first) {
                return;
            }
            let child = m
                .entry(first.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            set_at(child, rest, last, value);
        }
    }
}

impl AsRef<[PathElement]> for FieldPath {
    fn as_ref(&self) -> &[PathElement] {
        &self.0
    }
}

impl fmt::Display for StatusCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.reason, self.message, self.field)
    }
}

//! Validation of object metadata (`k8s.io/apimachinery/pkg/api/validation/objectmeta.go`
//! and the label helpers of `apis/meta/v1/validation`), on the `metadata` JSON object.
//!
//! The generic registry runs these on every create and update; the paths
//! (`metadata.labels`, …), error types and messages are upstream's (Kubernetes 1.35).
//! Maps are walked in their JSON order (upstream walks Go maps, in random order).

use crate::field::{ErrorList, FieldError, Path};
use crate::goformat;
use crate::validation::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_label_value,
};
use serde_json::{Map, Value};

/// Upstream's message for a changed immutable field.
pub const FIELD_IMMUTABLE_ERROR_MSG: &str = "field is immutable";
/// Upstream's limit on the total size of all annotation keys and values (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_LIMIT_B: usize = 256 * 1024;
/// Upstream's message for a negative count.
pub const IS_NEGATIVE_ERROR_MSG: &str = "must be greater than or equal to 0";
/// Finalizer that orphans dependents on delete.
pub const FINALIZER_ORPHAN_DEPENDENTS: &str = "orphan";
/// Finalizer that deletes dependents in the foreground.
pub const FINALIZER_DELETE_DEPENDENTS: &str = "foregroundDeletion";

const FIELD_MANAGER_MAX_LENGTH: usize = 128;
const MAX_SUBRESOURCE_NAME_LENGTH: usize = 256;

/// A name check: `(name, is_generate_name_prefix) -> messages` (upstream's
/// `ValidateNameFunc`).
pub type NameValidator<'a> = &'a dyn Fn(&str, bool) -> Vec<String>;

// === name validators ===

/// Upstream's trick for prefixes: a `generateName` may end in `-`, which a full name may
/// not, so the last two bytes are replaced by `a` before checking.
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        let mut b = name.as_bytes()[..name.len() - 2].to_vec();
        b.push(b'a');
        return String::from_utf8_lossy(&b).into_owned();
    }
    name.to_string()
}

/// Names that must be DNS-1123 subdomains (the default for most kinds).
pub fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    let name = if prefix {
        mask_trailing_dash(name)
    } else {
        name.to_string()
    };
    is_dns1123_subdomain(&name)
}

/// Names that must be DNS-1123 labels (namespaces, services' DNS names, …).
pub fn name_is_dns_label(name: &str, prefix: bool) -> Vec<String> {
    let name = if prefix {
        mask_trailing_dash(name)
    } else {
        name.to_string()
    };
    is_dns1123_label(&name)
}

/// Names that must be DNS-1035 labels (services).
pub fn name_is_dns1035_label(name: &str, prefix: bool) -> Vec<String> {
    let name = if prefix {
        mask_trailing_dash(name)
    } else {
        name.to_string()
    };
    is_dns1035_label(&name)
}

// === field access ===

fn str_of<'a>(meta: &'a Value, key: &str) -> &'a str {
    meta.get(key).and_then(Value::as_str).unwrap_or("")
}

fn i64_of(meta: &Value, key: &str) -> i64 {
    meta.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn strings_of(meta: &Value, key: &str) -> Vec<String> {
    meta.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A member as Go would see it after decoding: absent and `null` are the same.
fn value_of(meta: &Value, key: &str) -> Value {
    meta.get(key).cloned().unwrap_or(Value::Null)
}

fn map_pairs(map: Option<&Value>) -> Vec<(&str, &str)> {
    map.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default()
}

// === create ===

/// Validates `metadata` of an object being created (upstream's
/// `ValidateObjectMetaAccessor`): generateName and name through `name_fn`, namespace
/// presence by scope, generation, labels, annotations, owner references, finalizers and
/// managed fields. `path` is normally `Path::new("metadata")`.
///
/// The apiserver calls this after the kind's own validation, with
/// [`validate_path_segment_name`](crate::validation::validate_path_segment_name) as
/// `name_fn`; kinds use it with their own name rule (default [`name_is_dns_subdomain`]).
pub fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    name_fn: NameValidator<'_>,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let generate_name = str_of(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in name_fn(generate_name, true) {
            errs.push(FieldError::invalid(
                &path.child("generateName"),
                generate_name,
                msg,
            ));
        }
    }
    let name = str_of(meta, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_fn(name, false) {
            errs.push(FieldError::invalid(&path.child("name"), name, msg));
        }
    }
    let namespace = str_of(meta, "namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(&path.child("namespace"), ""));
        } else {
            for msg in name_is_dns_label(namespace, false) {
                errs.push(FieldError::invalid(
                    &path.child("namespace"),
                    namespace,
                    msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("namespace"),
            "not allowed on this type",
        ));
    }
    let generation = i64_of(meta, "generation");
    if generation < 0 {
        errs.push(FieldError::invalid(
            &path.child("generation"),
            generation,
            IS_NEGATIVE_ERROR_MSG,
        ));
    }
    errs.extend(validate_labels(meta.get("labels"), &path.child("labels")));
    errs.extend(validate_annotations(
        meta.get("annotations"),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        meta.get("ownerReferences"),
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_finalizers(
        &strings_of(meta, "finalizers"),
        &path.child("finalizers"),
    ));
    errs.extend(validate_managed_fields(
        meta.get("managedFields"),
        &path.child("managedFields"),
    ));
    errs
}

// === update ===

/// Validates `metadata` of an update against the stored object's (upstream's
/// `ValidateObjectMetaAccessorUpdate`): resourceVersion present, generation not
/// decremented, no new finalizers while deleting, immutable identity fields, and labels,
/// annotations, owner references and managed fields of the new object.
///
/// Upstream's `BeforeUpdate` first copies the server-owned fields from the old object
/// ([`prepare_for_update`]) and also checks the name with `validate_object_meta`'s name
/// rule; do both before calling this.
pub fn validate_object_meta_update(new: &Value, old: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if !value_of(old, "deletionTimestamp").is_null() {
        let old_finalizers = strings_of(old, "finalizers");
        let mut extra: Vec<String> = strings_of(new, "finalizers")
            .into_iter()
            .filter(|f| !old_finalizers.contains(f))
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            let list: Vec<String> = extra.iter().map(|f| goformat::quote(f)).collect();
            errs.push(FieldError::forbidden(
                &path.child("finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    list.join(", ")
                ),
            ));
        }
    }
    let rv = str_of(new, "resourceVersion");
    if rv.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("resourceVersion"),
            rv,
            "must be specified for an update",
        ));
    }
    let (new_gen, old_gen) = (i64_of(new, "generation"), i64_of(old, "generation"));
    if new_gen < old_gen {
        errs.push(FieldError::invalid(
            &path.child("generation"),
            new_gen,
            "must not be decremented",
        ));
    }
    for key in ["name", "namespace", "uid"] {
        let (n, o) = (str_of(new, key), str_of(old, key));
        if n != o {
            errs.push(FieldError::invalid(
                &path.child(key),
                n,
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
    }
    for key in [
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        errs.extend(validate_immutable_field(
            &value_of(new, key),
            &value_of(old, key),
            &path.child(key),
        ));
    }
    errs.extend(validate_labels(new.get("labels"), &path.child("labels")));
    errs.extend(validate_annotations(
        new.get("annotations"),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        new.get("ownerReferences"),
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_managed_fields(
        new.get("managedFields"),
        &path.child("managedFields"),
    ));
    errs
}

/// Copies what an update may not change from the stored metadata into the new one, as
/// upstream's `BeforeUpdate` does before validating: an empty `uid` takes the old one, the
/// old `creationTimestamp` and `deletionTimestamp` always win when set, and a missing
/// `deletionGracePeriodSeconds` keeps the old one.
pub fn prepare_for_update(new: &mut Map<String, Value>, old: &Value) {
    let uid_empty = new
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty();
    if uid_empty && let Some(uid) = old.get("uid").filter(|v| !v.is_null()) {
        new.insert("uid".to_string(), uid.clone());
    }
    for key in ["creationTimestamp", "deletionTimestamp"] {
        if let Some(v) = old.get(key).filter(|v| !v.is_null()) {
            new.insert(key.to_string(), v.clone());
        }
    }
    let missing = new
        .get("deletionGracePeriodSeconds")
        .is_none_or(Value::is_null);
    if missing
        && let Some(v) = old
            .get("deletionGracePeriodSeconds")
            .filter(|v| !v.is_null())
    {
        new.insert("deletionGracePeriodSeconds".to_string(), v.clone());
    }
}

/// `field is immutable` at `path` when `new` differs from `old`.
pub fn validate_immutable_field(new: &Value, old: &Value, path: &Path) -> ErrorList {
    if new == old {
        return ErrorList::new();
    }
    vec![FieldError::invalid(
        path,
        new.clone(),
        FIELD_IMMUTABLE_ERROR_MSG,
    )]
}

// === labels, annotations, finalizers, owner references ===

/// Validates a labels object: keys are qualified names, values label values; errors are
/// reported at `path` itself (not per key), like upstream.
pub fn validate_labels(labels: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (k, v) in map_pairs(labels) {
        errs.extend(validate_label_name(k, path));
        for msg in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v, msg));
        }
    }
    errs
}

/// Validates one label key at `path`.
pub fn validate_label_name(key: &str, path: &Path) -> ErrorList {
    is_qualified_name(key)
        .into_iter()
        .map(|msg| FieldError::invalid(path, key, msg))
        .collect()
}

/// Validates an annotations object: keys are qualified names (case-insensitively), and
/// all keys and values together stay within 256 KiB.
pub fn validate_annotations(annotations: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let pairs = map_pairs(annotations);
    for (k, _) in &pairs {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, *k, msg));
        }
    }
    let total: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_B {
        errs.push(FieldError::too_long(
            path,
            "",
            TOTAL_ANNOTATION_SIZE_LIMIT_B as i64,
        ));
    }
    errs
}

/// Validates finalizer names (qualified names) and that `orphan` and
/// `foregroundDeletion` are not both set.
pub fn validate_finalizers(finalizers: &[String], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for f in finalizers {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(path, f.as_str(), msg));
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has(FINALIZER_ORPHAN_DEPENDENTS) && has(FINALIZER_DELETE_DEPENDENTS) {
        errs.push(FieldError::invalid(
            path,
            Value::from(finalizers.to_vec()),
            format!(
                "finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set"
            ),
        ));
    }
    errs
}

/// An owner reference as Go serializes it: fields in declaration order, unset optional
/// booleans left out. Bad values in messages are printed this way.
fn owner_reference_json(r: &Value) -> Value {
    let mut m = Map::new();
    for key in ["apiVersion", "kind", "name", "uid"] {
        m.insert(key.to_string(), Value::from(str_of(r, key)));
    }
    for key in ["controller", "blockOwnerDeletion"] {
        if let Some(b) = r.get(key).and_then(Value::as_bool) {
            m.insert(key.to_string(), Value::from(b));
        }
    }
    Value::Object(m)
}

/// Validates `ownerReferences`: apiVersion (with a version), kind, name and uid set, no
/// Event owners, and at most one controller. Like 1.35, per-reference errors carry no
/// index (`metadata.ownerReferences.uid`).
pub fn validate_owner_references(refs: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let refs: &[Value] = refs
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut first_controller: Option<String> = None;
    for r in refs {
        let api_version = str_of(r, "apiVersion");
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let kind = str_of(r, "kind");
        if version.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("kind"),
                kind,
                "must not be empty",
            ));
        }
        for key in ["name", "uid"] {
            let v = str_of(r, key);
            if v.is_empty() {
                errs.push(FieldError::invalid(
                    &path.child(key),
                    v,
                    "must not be empty",
                ));
            }
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                owner_reference_json(r),
                format!("{group}/{version}, Kind={kind} is disallowed from being an owner"),
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{kind}/{}", str_of(r, "name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    Value::Array(refs.iter().map(owner_reference_json).collect()),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// Validates `managedFields` entries: operation `Apply`/`Update`, fieldsType `FieldsV1`,
/// a printable manager of at most 128 bytes, a subresource of at most 256 bytes.
pub fn validate_managed_fields(entries: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let entries: &[Value] = entries
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, e) in entries.iter().enumerate() {
        let p = path.index(i);
        let op = str_of(e, "operation");
        if op != "Apply" && op != "Update" {
            errs.push(FieldError::invalid(
                &p.child("operation"),
                op,
                "must be `Apply` or `Update`",
            ));
        }
        let fields_type = str_of(e, "fieldsType");
        if !fields_type.is_empty() && fields_type != "FieldsV1" {
            errs.push(FieldError::invalid(
                &p.child("fieldsType"),
                fields_type,
                "must be `FieldsV1`",
            ));
        }
        let manager = str_of(e, "manager");
        if manager.len() > FIELD_MANAGER_MAX_LENGTH {
            errs.push(FieldError::too_long(
                &p.child("manager"),
                "",
                FIELD_MANAGER_MAX_LENGTH as i64,
            ));
        }
        for (pos, c) in manager.char_indices() {
            if !goformat::is_print(c) {
                errs.push(FieldError::invalid(
                    &p.child("manager"),
                    manager,
                    format!("invalid character U+{:04X} (at position {pos})", c as u32),
                ));
            }
        }
        if str_of(e, "subresource").len() > MAX_SUBRESOURCE_NAME_LENGTH {
            errs.push(FieldError::too_long(
                &p.child("subresource"),
                "",
                MAX_SUBRESOURCE_NAME_LENGTH as i64,
            ));
        }
    }
    errs
}

/// Validates a `metav1.LabelSelector` JSON (upstream's `ValidateLabelSelector` with
/// default options): matchLabels as labels, and each matchExpressions entry's operator,
/// key and values.
pub fn validate_label_selector(selector: Option<&Value>, path: &Path) -> ErrorList {
    validate_label_selector_with(selector, false, path)
}

/// Whether [`validate_label_selector`] finds anything wrong (an update then allows the
/// invalid values the old object had).
pub fn label_selector_has_errors(selector: Option<&Value>) -> bool {
    !validate_label_selector(selector, &Path::root()).is_empty()
}

/// [`validate_label_selector`] with `AllowInvalidLabelValueInSelector`: when
/// `allow_invalid_values`, the values of `matchExpressions` are not checked (objects stored
/// before the check existed stay updatable).
pub fn validate_label_selector_with(
    selector: Option<&Value>,
    allow_invalid_values: bool,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(sel) = selector.filter(|v| !v.is_null()) else {
        return errs;
    };
    errs.extend(validate_labels(
        sel.get("matchLabels"),
        &path.child("matchLabels"),
    ));
    let exprs: &[Value] = sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, e) in exprs.iter().enumerate() {
        let p = path.child("matchExpressions").index(i);
        let values = strings_of(e, "values");
        match str_of(e, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        &p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        &p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => errs.push(FieldError::invalid(
                &p.child("operator"),
                op,
                "not a valid selector operator",
            )),
        }
        errs.extend(validate_label_name(str_of(e, "key"), &p.child("key")));
        if allow_invalid_values {
            continue;
        }
        for (j, v) in values.iter().enumerate() {
            for msg in is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    &p.child("values").index(j),
                    v.as_str(),
                    msg,
                ));
            }
        }
    }
    errs
}

const CONDITION_REASON_FMT: &str = "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?";
const CONDITION_REASON_MSG: &str = "a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'";
const MAX_REASON_LEN: i64 = 1024;
const MAX_MESSAGE_LEN: i64 = 32 * 1024;

fn is_condition_reason(s: &str) -> bool {
    let b = s.as_bytes();
    let Some((first, rest)) = b.split_first() else {
        return false;
    };
    if !first.is_ascii_alphabetic() {
        return false;
    }
    match rest.split_last() {
        None => true,
        Some((last, middle)) => {
            (last.is_ascii_alphanumeric() || *last == b'_')
                && middle
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b',' | b':'))
        }
    }
}

/// metav1's `ValidateConditions` (conditions of type `metav1.Condition`): unique types
/// that are label names, a known status, a set transition time and a well-formed reason.
pub fn validate_conditions(conditions: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for (i, c) in conditions.iter().enumerate() {
        let p = path.index(i);
        let ty = str_of(c, "type");
        if !seen.insert(ty) {
            errs.push(FieldError::duplicate(&p.child("type"), ty));
        }
        errs.extend(validate_label_name(ty, &p.child("type")));
        let status = str_of(c, "status");
        if !matches!(status, "True" | "False" | "Unknown") {
            errs.push(FieldError::not_supported(
                &p.child("status"),
                status,
                &["False", "True", "Unknown"],
            ));
        }
        if let Some(g) = c.get("observedGeneration").and_then(Value::as_i64)
            && g < 0
        {
            errs.push(FieldError::invalid(
                &p.child("observedGeneration"),
                g,
                "must be greater than or equal to zero",
            ));
        }
        if str_of(c, "lastTransitionTime").is_empty() {
            errs.push(FieldError::required(
                &p.child("lastTransitionTime"),
                "must be set",
            ));
        }
        let reason = str_of(c, "reason");
        if reason.is_empty() {
            errs.push(FieldError::required(&p.child("reason"), "must be set"));
        } else {
            if !is_condition_reason(reason) {
                errs.push(FieldError::invalid(
                    &p.child("reason"),
                    reason,
                    format!(
                        "{CONDITION_REASON_MSG} (e.g. 'my_name',  or 'MY_NAME',  or 'MyName',  or 'ReasonA,ReasonB',  or 'ReasonA:ReasonB', regex used for validation is '{CONDITION_REASON_FMT}')"
                    ),
                ));
            }
            if reason.len() as i64 > MAX_REASON_LEN {
                errs.push(FieldError::too_long(&p.child("reason"), "", MAX_REASON_LEN));
            }
        }
        if str_of(c, "message").len() as i64 > MAX_MESSAGE_LEN {
            errs.push(FieldError::too_long(
                &p.child("message"),
                "",
                MAX_MESSAGE_LEN,
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_are_checked_like_metav1() {
        let errs = validate_conditions(
            &[
                json!({"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z", "reason": "Ok"}),
                json!({"type": "Ready", "status": "Maybe", "reason": "1bad"}),
            ],
            &Path::new("status").child("conditions"),
        )
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert_eq!(
            errs[0],
            "status.conditions[1].type: Duplicate value: \"Ready\""
        );
        assert!(errs[1].starts_with("status.conditions[1].status: Unsupported value: \"Maybe\""));
        assert_eq!(
            errs[2],
            "status.conditions[1].lastTransitionTime: Required value: must be set"
        );
        assert!(errs[3].contains("a condition reason must start with alphabetic character"));
    }

    #[test]
    fn invalid_selector_values_may_be_allowed() {
        let sel = json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["-bad-"]},
                                              {"key": "b", "operator": "Near"}]});
        let p = Path::new("s");
        assert_eq!(validate_label_selector(Some(&sel), &p).len(), 2);
        let allowed = validate_label_selector_with(Some(&sel), true, &p);
        assert_eq!(allowed.len(), 1);
        assert_eq!(allowed[0].field, "s.matchExpressions[1].operator");
        assert!(label_selector_has_errors(Some(&sel)));
    }

    fn md() -> Path {
        Path::new("metadata")
    }

    fn create(meta: Value, namespaced: bool) -> Vec<String> {
        validate_object_meta(&meta, namespaced, &name_is_dns_subdomain, &md())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn update(new: Value, old: Value) -> Vec<String> {
        validate_object_meta_update(&new, &old, &md())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn valid_namespaced_metadata_has_no_errors() {
        let errs = create(
            json!({"name": "web", "namespace": "default", "labels": {"app": "web"},
                   "annotations": {"example.com/Note": "x"}, "finalizers": ["example.com/f"],
                   "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": true}]}),
            true,
        );
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn missing_name_requires_name_or_generate_name() {
        assert_eq!(
            create(json!({"namespace": "default"}), true),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
    }

    #[test]
    fn bad_name_reports_the_name_validator_message() {
        let errs = create(json!({"name": "Web_1", "namespace": "default"}), true);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with(
                "metadata.name: Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain"
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn generate_name_prefix_may_end_with_a_dash() {
        assert!(
            create(
                json!({"name": "web-abcde", "generateName": "web-", "namespace": "ns"}),
                true
            )
            .is_empty()
        );
        let errs = create(
            json!({"name": "x", "generateName": "Web-", "namespace": "ns"}),
            true,
        );
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("metadata.generateName: Invalid value: \"Web-\""),
            "{errs:?}"
        );
    }

    #[test]
    fn namespace_is_required_or_forbidden_by_scope() {
        assert_eq!(
            create(json!({"name": "a"}), true),
            vec!["metadata.namespace: Required value"]
        );
        assert_eq!(
            create(json!({"name": "a", "namespace": "x"}), false),
            vec!["metadata.namespace: Forbidden: not allowed on this type"]
        );
        let errs = create(json!({"name": "a", "namespace": "a.b"}), true);
        assert_eq!(
            errs,
            vec!["metadata.namespace: Invalid value: \"a.b\": must not contain dots"]
        );
    }

    #[test]
    fn negative_generation_is_invalid() {
        assert_eq!(
            create(json!({"name": "a", "generation": -1}), false),
            vec!["metadata.generation: Invalid value: -1: must be greater than or equal to 0"]
        );
    }

    #[test]
    fn labels_report_key_and_value_at_the_labels_path() {
        let errs = create(json!({"name": "a", "labels": {"a b": "c d"}}), false);
        assert_eq!(errs.len(), 2);
        assert!(
            errs[0].starts_with("metadata.labels: Invalid value: \"a b\": name part must consist"),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("metadata.labels: Invalid value: \"c d\": a valid label must be"),
            "{errs:?}"
        );
    }

    #[test]
    fn annotation_keys_are_checked_lowercased_and_total_size_limited() {
        assert!(
            create(
                json!({"name": "a", "annotations": {"Example.COM/Key": "v"}}),
                false
            )
            .is_empty()
        );
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B);
        assert_eq!(
            create(json!({"name": "a", "annotations": {"k": big}}), false),
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
        let errs = create(json!({"name": "a", "annotations": {"/x": "v"}}), false);
        assert_eq!(
            errs,
            vec!["metadata.annotations: Invalid value: \"/x\": prefix part must be non-empty"]
        );
    }

    #[test]
    fn finalizers_must_be_qualified_and_not_both_orphan_and_foreground() {
        let errs = create(
            json!({"name": "a", "finalizers": ["orphan", "foregroundDeletion"]}),
            false,
        );
        assert_eq!(
            errs,
            vec![
                "metadata.finalizers: Invalid value: [\"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion cannot be both set"
            ]
        );
        let errs = create(json!({"name": "a", "finalizers": ["a/b/c"]}), false);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("metadata.finalizers: Invalid value: \"a/b/c\": a valid label key"),
            "{errs:?}"
        );
    }

    #[test]
    fn owner_references_need_identity_fields() {
        let errs = create(
            json!({"name": "a", "ownerReferences": [{"apiVersion": "apps/"}]}),
            false,
        );
        assert_eq!(
            errs,
            vec![
                "metadata.ownerReferences.apiVersion: Invalid value: \"apps/\": version must not be empty",
                "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty",
                "metadata.ownerReferences.name: Invalid value: \"\": must not be empty",
                "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty",
            ]
        );
    }

    #[test]
    fn only_one_owner_reference_may_be_controller() {
        let errs = create(
            json!({"name": "a", "ownerReferences": [
                {"uid": "1", "name": "x", "kind": "ReplicaSet", "apiVersion": "apps/v1", "controller": true},
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "y", "uid": "2", "controller": true}
            ]}),
            false,
        );
        assert_eq!(
            errs,
            vec![concat!(
                "metadata.ownerReferences: Invalid value: [",
                "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"x\",\"uid\":\"1\",\"controller\":true},",
                "{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"name\":\"y\",\"uid\":\"2\",\"controller\":true}",
                "]: Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/x and StatefulSet/y"
            )]
        );
    }

    #[test]
    fn events_cannot_be_owners() {
        let errs = create(
            json!({"name": "a", "ownerReferences": [{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"}]}),
            false,
        );
        assert_eq!(
            errs,
            vec![
                "metadata.ownerReferences: Invalid value: {\"apiVersion\":\"v1\",\"kind\":\"Event\",\"name\":\"e\",\"uid\":\"u\"}: /v1, Kind=Event is disallowed from being an owner"
            ]
        );
    }

    #[test]
    fn managed_fields_entries_are_checked() {
        let errs = create(
            json!({"name": "a", "managedFields": [{"manager": "kube\u{7}ctl", "operation": "Patch", "fieldsType": "FieldsV2"}]}),
            false,
        );
        assert_eq!(
            errs,
            vec![
                "metadata.managedFields[0].operation: Invalid value: \"Patch\": must be `Apply` or `Update`",
                "metadata.managedFields[0].fieldsType: Invalid value: \"FieldsV2\": must be `FieldsV1`",
                "metadata.managedFields[0].manager: Invalid value: \"kube\\actl\": invalid character U+0007 (at position 4)",
            ]
        );
    }

    #[test]
    fn update_rejects_changed_identity_fields_as_immutable() {
        let old = json!({"name": "a", "namespace": "ns", "uid": "1", "resourceVersion": "5",
                         "creationTimestamp": "2024-01-01T00:00:00Z"});
        let new = json!({"name": "b", "namespace": "ns2", "uid": "2", "resourceVersion": "5",
                         "creationTimestamp": "2025-01-01T00:00:00Z", "deletionGracePeriodSeconds": 30});
        assert_eq!(
            update(new, old),
            vec![
                "metadata.name: Invalid value: \"b\": field is immutable",
                "metadata.namespace: Invalid value: \"ns2\": field is immutable",
                "metadata.uid: Invalid value: \"2\": field is immutable",
                "metadata.creationTimestamp: Invalid value: \"2025-01-01T00:00:00Z\": field is immutable",
                "metadata.deletionGracePeriodSeconds: Invalid value: 30: field is immutable",
            ]
        );
    }

    #[test]
    fn update_requires_resource_version_and_non_decreasing_generation() {
        let old = json!({"name": "a", "generation": 3});
        let new = json!({"name": "a", "generation": 2});
        assert_eq!(
            update(new, old),
            vec![
                "metadata.resourceVersion: Invalid value: \"\": must be specified for an update",
                "metadata.generation: Invalid value: 2: must not be decremented",
            ]
        );
    }

    #[test]
    fn update_of_deleting_object_cannot_add_finalizers() {
        let old = json!({"name": "a", "resourceVersion": "1", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["x/a"]});
        let new = json!({"name": "a", "resourceVersion": "1", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["x/c", "x/a", "x/b"]});
        assert_eq!(
            update(new, old),
            vec![
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"x/b\", \"x/c\"}"
            ]
        );
    }

    #[test]
    fn removing_deletion_timestamp_is_immutable_null() {
        let old = json!({"name": "a", "resourceVersion": "1", "deletionTimestamp": "2024-01-01T00:00:00Z"});
        let new = json!({"name": "a", "resourceVersion": "1"});
        assert_eq!(
            update(new, old),
            vec!["metadata.deletionTimestamp: Invalid value: null: field is immutable"]
        );
    }

    #[test]
    fn prepare_for_update_carries_server_owned_fields() {
        let old = json!({"uid": "u1", "creationTimestamp": "t0", "deletionTimestamp": "t1", "deletionGracePeriodSeconds": 30});
        let mut new = json!({"name": "a", "creationTimestamp": "changed"});
        prepare_for_update(new.as_object_mut().unwrap(), &old);
        assert_eq!(
            new,
            json!({"name": "a", "creationTimestamp": "t0", "uid": "u1", "deletionTimestamp": "t1", "deletionGracePeriodSeconds": 30})
        );
    }

    #[test]
    fn name_validators_mask_a_trailing_dash_for_prefixes() {
        assert!(name_is_dns_subdomain("abc-", true).is_empty());
        assert!(!name_is_dns_subdomain("abc-", false).is_empty());
        assert!(name_is_dns_label("ns-", true).is_empty());
        assert!(name_is_dns1035_label("svc-", true).is_empty());
        assert!(!name_is_dns1035_label("1svc", false).is_empty());
    }

    #[test]
    fn label_selector_validation_reports_operator_and_values() {
        let errs: Vec<String> = validate_label_selector(
            Some(&json!({"matchExpressions": [
                {"key": "a", "operator": "In"},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "c", "operator": "Gt", "values": ["1"]}
            ]})),
            &Path::new("spec").child("selector"),
        )
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            errs,
            vec![
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                "spec.selector.matchExpressions[2].operator: Invalid value: \"Gt\": not a valid selector operator",
            ]
        );
    }
}

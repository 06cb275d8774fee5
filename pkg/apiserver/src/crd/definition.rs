//! The CustomResourceDefinition kind: defaults, validation (upstream's
//! `ValidateCustomResourceDefinition`, the parts that matter to users), and what a delete
//! does (the cleanup finalizer that removes the custom objects first).

use k1s_apimachinery::validation::{is_dns1035_label, is_dns1123_subdomain};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use regex::Regex;
use serde_json::{Value, json};

use crate::meta;
use crate::registry::Strategy;

/// The finalizer the CRD controller removes once every custom object is gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Column types a printer column may have.
const COLUMN_TYPES: &[&str] = &["integer", "number", "string", "boolean", "date"];

/// The CustomResourceDefinition strategy.
pub struct CrdStrategy;

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    meta::get_path(v, path)
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl Strategy for CrdStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
            let kind = names
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !kind.is_empty() {
                if names.get("singular").and_then(Value::as_str).is_none() {
                    names.insert("singular".into(), json!(kind.to_lowercase()));
                }
                if names.get("listKind").and_then(Value::as_str).is_none() {
                    names.insert("listKind".into(), json!(format!("{kind}List")));
                }
            }
        }
        if spec.get("conversion").is_none_or(Value::is_null) {
            spec.insert("conversion".into(), json!({"strategy": "None"}));
        }
        // v1 defaults a conversion webhook's service port to 443.
        if let Some(service) = spec
            .get_mut("conversion")
            .and_then(|c| c.pointer_mut("/webhook/clientConfig/service"))
            .and_then(Value::as_object_mut)
            && service.get("port").is_none_or(Value::is_null)
        {
            service.insert("port".into(), json!(443));
        }
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        // As upstream's strategy: a fresh status naming the storage version, so the
        // create answer (and a GET before the controller runs) already carries
        // `acceptedNames` and `storedVersions`.
        let storage: Vec<Value> = meta::get_path(obj, &["spec", "versions"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .filter_map(|v| v.get("name").cloned())
            .take(1)
            .collect();
        if let Some(o) = obj.as_object_mut() {
            o.insert(
                "status".into(),
                json!({
                    "conditions": null,
                    "acceptedNames": {"plural": "", "kind": ""},
                    "storedVersions": storage,
                }),
            );
        }
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_crd(obj, None)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = validate_crd(new, Some(old));
        // Scope and kind shape the stored objects: fixed once the definition is
        // Established. Group and plural make up the name: always fixed.
        let established = meta::get_path(old, &["status", "conditions"])
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Established")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            });
        let mut fixed: Vec<(&[&str], &str)> = Vec::new();
        if established {
            fixed.push((&["spec", "scope"], "spec.scope"));
            fixed.push((&["spec", "names", "kind"], "spec.names.kind"));
        }
        fixed.push((&["spec", "group"], "spec.group"));
        fixed.push((&["spec", "names", "plural"], "spec.names.plural"));
        for (field, p) in fixed {
            let (n, o) = (str_at(new, field), str_at(old, field));
            if n != o {
                errs.push(FieldError::invalid(&Path::new(p), n, "field is immutable"));
            }
        }
        errs.extend(validate_stored_versions(new));
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> ErrorList {
        validate_stored_versions(new)
    }

    fn prepare_for_delete(&self, obj: &mut Value) {
        // Custom objects are removed before the definition goes: the CRD controller
        // deletes them and then drops this finalizer.
        let mut finalizers = meta::finalizers(obj);
        if !finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
            finalizers.push(CLEANUP_FINALIZER.into());
            meta::set_meta(obj, "finalizers", Some(json!(finalizers)));
        }
        set_condition(
            obj,
            "Terminating",
            "True",
            "InstanceDeletionPending",
            "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
        );
    }
}

/// Sets one status condition, keeping its transition time when the status is unchanged.
pub fn set_condition(obj: &mut Value, ty: &str, status: &str, reason: &str, message: &str) {
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({});
    }
    // A fresh definition's status has `conditions: null`, as upstream's.
    let conditions = obj["status"].as_object_mut().map(|s| {
        let c = s.entry("conditions").or_insert_with(|| json!([]));
        if c.is_null() {
            *c = json!([]);
        }
        c
    });
    let Some(Value::Array(list)) = conditions else {
        return;
    };
    let now = meta::now_rfc3339();
    match list
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
    {
        Some(c) => {
            if c.get("status").and_then(Value::as_str) != Some(status) {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        None => list.push(json!({
            "type": ty, "status": status, "lastTransitionTime": now,
            "reason": reason, "message": message,
        })),
    }
}

fn validate_stored_versions(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let versions: Vec<&str> = meta::get_path(obj, &["spec", "versions"])
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .map(|v| v.get("name").and_then(Value::as_str).unwrap_or(""))
                .collect()
        })
        .unwrap_or_default();
    if let Some(stored) =
        meta::get_path(obj, &["status", "storedVersions"]).and_then(Value::as_array)
    {
        for (i, s) in stored.iter().enumerate() {
            let name = s.as_str().unwrap_or("");
            if !versions.contains(&name) {
                errs.push(FieldError::invalid(
                    &Path::new("status").child("storedVersions").index(i),
                    name,
                    "must appear in spec.versions",
                ));
            }
        }
    }
    errs
}

fn label_errors(errs: &mut ErrorList, path: &Path, value: &str) {
    if value.is_empty() {
        return;
    }
    let problems = is_dns1035_label(value);
    if !problems.is_empty() {
        errs.push(FieldError::invalid(path, value, problems.join(",")));
    }
}

fn validate_crd(obj: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec_path = Path::new("spec");
    let group = str_at(obj, &["spec", "group"]);
    let plural = str_at(obj, &["spec", "names", "plural"]);
    let name = meta::name(obj);
    if name != format!("{plural}.{group}") {
        errs.push(FieldError::invalid(
            &Path::new("metadata").child("name"),
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let gp = spec_path.child("group");
    if group.is_empty() {
        errs.push(FieldError::required(&gp, ""));
    } else {
        let problems = is_dns1123_subdomain(group);
        if !problems.is_empty() {
            errs.push(FieldError::invalid(&gp, group, problems.join(",")));
        } else if !group.contains('.') {
            errs.push(FieldError::invalid(
                &gp,
                group,
                "should be a domain with at least one dot",
            ));
        }
    }
    let scope = str_at(obj, &["spec", "scope"]);
    let sp = spec_path.child("scope");
    if scope.is_empty() {
        errs.push(FieldError::required(&sp, ""));
    } else if !matches!(scope, "Cluster" | "Namespaced") {
        errs.push(FieldError::not_supported(
            &sp,
            scope,
            &["Cluster", "Namespaced"],
        ));
    }
    errs.extend(validate_versions(obj, &spec_path.child("versions")));
    errs.extend(validate_names(obj, &spec_path.child("names")));
    errs.extend(validate_conversion(
        obj,
        old,
        &spec_path.child("conversion"),
    ));
    errs
}

/// The ConversionReview versions this server (and the one before it) understands.
const ACCEPTED_REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];

/// Upstream's `validateCustomResourceConversion` (with the preserveUnknownFields rule).
/// Paths are upstream's internal ones (`webhookClientConfig`, `conversionReviewVersions`
/// directly under `conversion`), as its messages show them.
fn validate_conversion(obj: &Value, old: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(conversion) = meta::get_path(obj, &["spec", "conversion"]).filter(|c| c.is_object())
    else {
        return errs;
    };
    let strategy = conversion
        .get("strategy")
        .and_then(Value::as_str)
        .unwrap_or("");
    let preserve = meta::get_path(obj, &["spec", "preserveUnknownFields"])
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if strategy != "None" && preserve {
        errs.push(FieldError::invalid(
            &path.child("strategy"),
            strategy,
            "must be None if spec.preserveUnknownFields is true",
        ));
    }
    if strategy.is_empty() {
        errs.push(FieldError::required(&path.child("strategy"), ""));
    } else if !matches!(strategy, "None" | "Webhook") {
        errs.push(FieldError::not_supported(
            &path.child("strategy"),
            strategy,
            &["None", "Webhook"],
        ));
    }
    let webhook = conversion.get("webhook").filter(|w| !w.is_null());
    let client = webhook
        .and_then(|w| w.get("clientConfig"))
        .filter(|c| !c.is_null());
    let versions: Vec<&str> = webhook
        .and_then(|w| w.get("conversionReviewVersions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap_or(""))
        .collect();
    let client_path = path.child("webhookClientConfig");
    let versions_path = path.child("conversionReviewVersions");
    if strategy != "Webhook" {
        if client.is_some() {
            errs.push(FieldError::forbidden(
                &client_path,
                "should not be set when strategy is not set to Webhook",
            ));
        }
        if !versions.is_empty() {
            errs.push(FieldError::forbidden(
                &versions_path,
                "should not be set when strategy is not set to Webhook",
            ));
        }
        return errs;
    }
    match client {
        None => errs.push(FieldError::required(
            &client_path,
            "required when strategy is set to Webhook",
        )),
        Some(cc) => {
            let url = cc.get("url").and_then(Value::as_str);
            let service = cc.get("service").filter(|s| !s.is_null());
            match (url, service) {
                (Some(u), None) => errs.extend(
                    crate::kinds::admissionregistration::webhook::validate_webhook_url(
                        &client_path.child("url"),
                        u,
                        true,
                    ),
                ),
                (None, Some(svc)) => errs.extend(
                    crate::kinds::admissionregistration::webhook::validate_webhook_service(
                        &client_path.child("service"),
                        svc,
                    ),
                ),
                _ => errs.push(FieldError::required(
                    &client_path,
                    "exactly one of url or service is required",
                )),
            }
            let bundle = cc.get("caBundle").and_then(Value::as_str).unwrap_or("");
            if !bundle.is_empty()
                && !allow_invalid_ca_bundle(old)
                && let Some(why) = ca_bundle_error(bundle)
            {
                errs.push(FieldError::invalid(
                    &client_path.child("caBundle"),
                    bundle,
                    why,
                ));
            }
        }
    }
    // An update may keep a list without a recognized version that it already had.
    let require_recognized = old.is_none_or(|o| {
        let old_versions: Vec<&str> = meta::get_path(
            o,
            &["spec", "conversion", "webhook", "conversionReviewVersions"],
        )
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
        old_versions.is_empty()
            || old_versions
                .iter()
                .any(|v| ACCEPTED_REVIEW_VERSIONS.contains(v))
    });
    if versions.is_empty() {
        errs.push(FieldError::required(&versions_path, ""));
        return errs;
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, v) in versions.iter().enumerate() {
        if !seen.insert(*v) {
            errs.push(FieldError::invalid(
                &versions_path.index(i),
                *v,
                "duplicate version",
            ));
            continue;
        }
        for problem in is_dns1035_label(v) {
            errs.push(FieldError::invalid(&versions_path.index(i), *v, problem));
        }
    }
    if require_recognized
        && !versions
            .iter()
            .any(|v| ACCEPTED_REVIEW_VERSIONS.contains(v))
    {
        errs.push(FieldError::invalid(
            &versions_path,
            Value::from(versions.clone()),
            "must include at least one of v1, v1beta1",
        ));
    }
    errs
}

/// Whether an update may keep an invalid caBundle: the CRD is not Established yet, or its
/// caBundle was invalid already.
fn allow_invalid_ca_bundle(old: Option<&Value>) -> bool {
    let Some(old) = old else {
        return false;
    };
    if !is_established(old) {
        return true;
    }
    let bundle = str_at(
        old,
        &["spec", "conversion", "webhook", "clientConfig", "caBundle"],
    );
    !bundle.is_empty() && ca_bundle_error(bundle).is_some()
}

/// Why a (base64) caBundle holds no usable certificate, as Go's PEM parser says it.
fn ca_bundle_error(bundle: &str) -> Option<String> {
    use base64::Engine;
    const NONE: &str = "data does not contain any valid RSA or ECDSA certificates";
    let Ok(pem) = base64::engine::general_purpose::STANDARD.decode(bundle) else {
        return Some(NONE.into());
    };
    let mut found = false;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        match cert {
            Ok(_) => found = true,
            Err(e) => return Some(e.to_string()),
        }
    }
    (!found).then(|| NONE.to_string())
}

fn is_established(crd: &Value) -> bool {
    meta::get_path(crd, &["status", "conditions"])
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Established")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn validate_names(obj: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let names = meta::get_path(obj, &["spec", "names"])
        .cloned()
        .unwrap_or(json!({}));
    let get = |k: &str| {
        names
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    for field in ["plural", "singular", "kind", "listKind"] {
        if get(field).is_empty() {
            errs.push(FieldError::required(&path.child(field), ""));
        }
    }
    label_errors(&mut errs, &path.child("plural"), &get("plural"));
    label_errors(&mut errs, &path.child("singular"), &get("singular"));
    let kind = get("kind");
    let problems = is_dns1035_label(&kind.to_lowercase());
    if !kind.is_empty() && !problems.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("kind"),
            kind.as_str(),
            format!(
                "may have mixed case, but should otherwise match: {}",
                problems.join(",")
            ),
        ));
    }
    let list_kind = get("listKind");
    let problems = is_dns1035_label(&list_kind.to_lowercase());
    if !list_kind.is_empty() && !problems.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("listKind"),
            list_kind.as_str(),
            format!(
                "may have mixed case, but should otherwise match: {}",
                problems.join(",")
            ),
        ));
    }
    if !kind.is_empty() && kind == list_kind {
        errs.push(FieldError::invalid(
            &path.child("listKind"),
            list_kind.as_str(),
            "kind and listKind may not be the same",
        ));
    }
    for (field, list) in [("shortNames", "shortNames"), ("categories", "categories")] {
        if let Some(items) = names.get(list).and_then(Value::as_array) {
            for (i, item) in items.iter().enumerate() {
                label_errors(
                    &mut errs,
                    &path.child(field).index(i),
                    item.as_str().unwrap_or(""),
                );
            }
        }
    }
    errs
}

fn validate_versions(obj: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let versions = meta::get_path(obj, &["spec", "versions"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut storage = 0;
    let mut seen: Vec<&str> = Vec::new();
    let mut unique = true;
    for (i, v) in versions.iter().enumerate() {
        let vp = path.index(i);
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        if seen.contains(&name) {
            unique = false;
        }
        seen.push(name);
        let problems = is_dns1035_label(name);
        if !problems.is_empty() {
            errs.push(FieldError::invalid(
                &vp.child("name"),
                name,
                problems.join(","),
            ));
        }
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage += 1;
        }
        let schema_path = vp.child("schema").child("openAPIV3Schema");
        match v.pointer("/schema/openAPIV3Schema") {
            None | Some(Value::Null) => {
                errs.push(FieldError::required(&schema_path, "schemas are required"));
            }
            Some(schema) => {
                if schema.get("type").and_then(Value::as_str) != Some("object") {
                    match schema.get("type").and_then(Value::as_str) {
                        None | Some("") => errs.push(FieldError::required(
                            &schema_path.child("type"),
                            "must not be empty at the root",
                        )),
                        Some(other) => errs.push(FieldError::invalid(
                            &schema_path.child("type"),
                            other,
                            "must be object at the root",
                        )),
                    }
                }
                validate_schema_node(schema, &schema_path, &mut errs);
                errs.extend(super::rules::check_schema(schema, &schema_path));
            }
        }
        if let Some(scale) = v.pointer("/subresources/scale").filter(|s| s.is_object()) {
            let sp = vp.child("subresources").child("scale");
            let spec_path = scale
                .get("specReplicasPath")
                .and_then(Value::as_str)
                .unwrap_or("");
            if spec_path.is_empty() {
                errs.push(FieldError::required(&sp.child("specReplicasPath"), ""));
            } else if !spec_path.starts_with(".spec.") {
                errs.push(FieldError::invalid(
                    &sp.child("specReplicasPath"),
                    spec_path,
                    "should be a json path under .spec",
                ));
            }
            let status_path = scale
                .get("statusReplicasPath")
                .and_then(Value::as_str)
                .unwrap_or("");
            if status_path.is_empty() {
                errs.push(FieldError::required(&sp.child("statusReplicasPath"), ""));
            } else if !status_path.starts_with(".status.") {
                errs.push(FieldError::invalid(
                    &sp.child("statusReplicasPath"),
                    status_path,
                    "should be a json path under .status",
                ));
            }
            if let Some(sel) = scale.get("labelSelectorPath").and_then(Value::as_str)
                && !sel.starts_with(".spec.")
                && !sel.starts_with(".status.")
            {
                errs.push(FieldError::invalid(
                    &sp.child("labelSelectorPath"),
                    sel,
                    "should be a json path under either .spec or .status",
                ));
            }
        }
        if let Some(cols) = v.get("additionalPrinterColumns").and_then(Value::as_array) {
            for (j, c) in cols.iter().enumerate() {
                let cp = vp.child("additionalPrinterColumns").index(j);
                if c.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    errs.push(FieldError::required(&cp.child("name"), ""));
                }
                let ty = c.get("type").and_then(Value::as_str).unwrap_or("");
                if ty.is_empty() {
                    errs.push(FieldError::required(&cp.child("type"), ""));
                } else if !COLUMN_TYPES.contains(&ty) {
                    errs.push(FieldError::not_supported(
                        &cp.child("type"),
                        ty,
                        COLUMN_TYPES,
                    ));
                }
                if c.get("jsonPath")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    errs.push(FieldError::required(&cp.child("jsonPath"), ""));
                }
            }
        }
    }
    if !unique {
        errs.push(FieldError::invalid(
            path,
            "",
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        errs.push(FieldError::invalid(
            path,
            "",
            "must have exactly one version marked as storage version",
        ));
    }
    errs
}

/// Whether a schema node says what its value is: a `type`, or one of the two extensions
/// that stand in for it.
fn has_type(node: &Value) -> bool {
    let flag = |k: &str| node.get(k).and_then(Value::as_bool) == Some(true);
    node.get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
        || flag("x-kubernetes-int-or-string")
        || flag("x-kubernetes-preserve-unknown-fields")
}

/// Structural checks of one schema node and its children: typed fields, compilable
/// patterns, defaults only where pruning keeps them.
fn validate_schema_node(node: &Value, path: &Path, errs: &mut ErrorList) {
    let Some(map) = node.as_object() else {
        return;
    };
    if let Some(p) = map.get("pattern").and_then(Value::as_str)
        && let Err(e) = Regex::new(p)
    {
        errs.push(FieldError::invalid(
            &path.child("pattern"),
            p,
            format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let pp = path.child("properties").key(name);
            if !has_type(prop) {
                errs.push(FieldError::required(
                    &pp.child("type"),
                    "must not be empty for specified object fields",
                ));
            }
            validate_schema_node(prop, &pp, errs);
        }
    }
    if let Some(items) = map.get("items") {
        if items.is_object() && !has_type(items) {
            errs.push(FieldError::required(
                &path.child("items").child("type"),
                "must not be empty for specified array items",
            ));
        }
        validate_schema_node(items, &path.child("items"), errs);
    }
    if let Some(extra) = map.get("additionalProperties").filter(|a| a.is_object()) {
        validate_schema_node(extra, &path.child("additionalProperties"), errs);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = map.get(key).and_then(Value::as_array) {
            for (i, sub) in list.iter().enumerate() {
                validate_schema_node(sub, &path.child(key).index(i), errs);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {
                "group": "stable.example.com",
                "scope": "Namespaced",
                "names": {"plural": "crontabs", "kind": "CronTab"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}}}],
            }
        })
    }

    fn messages(obj: &Value) -> Vec<String> {
        validate_crd(obj, None)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn with_conversion(conversion: Value) -> Value {
        let mut obj = crd();
        obj["spec"]["conversion"] = conversion;
        CrdStrategy.default(&mut obj);
        obj
    }

    #[test]
    fn webhook_conversion_is_validated_like_upstream() {
        let ok = with_conversion(json!({"strategy": "Webhook", "webhook": {
            "clientConfig": {"service": {"namespace": "ns", "name": "conv", "path": "/convert"}},
            "conversionReviewVersions": ["v1", "v1beta1"]}}));
        assert!(messages(&ok).is_empty(), "{:?}", messages(&ok));
        // v1 defaults the service port.
        assert_eq!(
            ok["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"],
            json!(443)
        );

        let none = with_conversion(json!({"strategy": "Webhook"}));
        assert_eq!(
            messages(&none),
            [
                "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
                "spec.conversion.conversionReviewVersions: Required value",
            ]
        );

        let mut both = with_conversion(json!({"strategy": "Webhook", "webhook": {
            "clientConfig": {"url": "https://a.example.com/c", "service": {"namespace": "ns", "name": "conv"}},
            "conversionReviewVersions": ["v2", "v2"]}}));
        both["spec"]["preserveUnknownFields"] = json!(true);
        let got = messages(&both);
        for want in [
            "spec.conversion.strategy: Invalid value: \"Webhook\": must be None if spec.preserveUnknownFields is true",
            "spec.conversion.webhookClientConfig: Required value: exactly one of url or service is required",
            "spec.conversion.conversionReviewVersions[1]: Invalid value: \"v2\": duplicate version",
        ] {
            assert!(got.iter().any(|m| m == want), "missing {want:?} in {got:?}");
        }
        assert!(
            got.iter().any(|m| m
                .starts_with("spec.conversion.conversionReviewVersions: Invalid value")
                && m.ends_with("must include at least one of v1, v1beta1")),
            "{got:?}"
        );

        let bad_ca = with_conversion(json!({"strategy": "Webhook", "webhook": {
            "clientConfig": {"url": "https://a.example.com/c", "caBundle": "bm90IGEgY2VydA=="},
            "conversionReviewVersions": ["v1"]}}));
        let got = messages(&bad_ca);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("spec.conversion.webhookClientConfig.caBundle: Invalid value")
                && got[0].ends_with("data does not contain any valid RSA or ECDSA certificates"),
            "{got:?}"
        );
        // An update of a CRD not yet Established may keep an invalid caBundle.
        assert!(validate_crd(&bad_ca, Some(&bad_ca)).is_empty());

        let stray = with_conversion(json!({"strategy": "None", "webhook": {
            "clientConfig": {"url": "https://a.example.com/c"}, "conversionReviewVersions": ["v1"]}}));
        assert_eq!(
            messages(&stray),
            [
                "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook",
                "spec.conversion.conversionReviewVersions: Forbidden: should not be set when strategy is not set to Webhook",
            ]
        );
        let unknown = with_conversion(json!({"strategy": "Magic"}));
        assert_eq!(
            messages(&unknown),
            [
                "spec.conversion.strategy: Unsupported value: \"Magic\": supported values: \"None\", \"Webhook\""
            ]
        );
    }

    #[test]
    fn valid_definition_passes_after_defaults() {
        let mut obj = crd();
        CrdStrategy.default(&mut obj);
        assert_eq!(obj["spec"]["names"]["singular"], json!("crontab"));
        assert_eq!(obj["spec"]["names"]["listKind"], json!("CronTabList"));
        assert!(messages(&obj).is_empty(), "{:?}", messages(&obj));
    }

    #[test]
    fn wrong_name_and_storage_count_are_reported_like_upstream() {
        let mut obj = crd();
        CrdStrategy.default(&mut obj);
        obj["metadata"]["name"] = json!("crontab.stable.example.com");
        obj["spec"]["versions"][0]["storage"] = json!(false);
        obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["x"] = json!({});
        let got = messages(&obj);
        assert!(got.contains(&"metadata.name: Invalid value: \"crontab.stable.example.com\": must be spec.names.plural+\".\"+spec.group".to_string()), "{got:?}");
        assert!(got.contains(&"spec.versions: Invalid value: \"\": must have exactly one version marked as storage version".to_string()), "{got:?}");
        assert!(got.contains(&"spec.versions[0].schema.openAPIV3Schema.properties[x].type: Required value: must not be empty for specified object fields".to_string()), "{got:?}");
    }

    #[test]
    fn delete_adds_the_cleanup_finalizer_once() {
        let mut obj = crd();
        CrdStrategy.prepare_for_delete(&mut obj);
        CrdStrategy.prepare_for_delete(&mut obj);
        assert_eq!(meta::finalizers(&obj), vec![CLEANUP_FINALIZER.to_string()]);
        assert_eq!(obj["status"]["conditions"][0]["type"], json!("Terminating"));
    }
}

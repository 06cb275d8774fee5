//! Events: core/v1 is stored; events.k8s.io/v1 is the same object with other field names.
//!
//! Validation is upstream's `ValidateEventCreate`/`ValidateEventUpdate`: every Event
//! passes the legacy checks, and those written through events.k8s.io/v1 also the strict
//! ones (eventTime required, deprecated fields unset, most fields immutable). Both
//! versions share one storage and so one strategy; the request's version is read from
//! `apiVersion`, which the decoder sets to the version requested and the
//! events.k8s.io/v1 conversion keeps. Field paths are upstream's internal names
//! (`involvedObject`, `reportingController`), whichever version was used.

use k1s_apimachinery::meta::name_is_dns_subdomain;
use k1s_apimachinery::validation::{is_dns1123_subdomain, is_qualified_name};
use k1s_apimachinery::{ErrorList, FieldError, Path, Status};
use serde_json::{Map, Value, json};

use crate::kinds::validation::{Fields, immutable, semantic_eq};
use crate::meta;
use crate::registry::generic::GenericStore;
use crate::registry::{Conversion, Strategy};

/// The Event strategy (both versions).
pub struct EventStrategy;

/// The API version whose writes get the strict checks.
const EVENTS_V1: &str = "events.k8s.io/v1";

/// Length limits of events.k8s.io fields.
const REPORTING_INSTANCE_LIMIT: usize = 128;
const ACTION_LIMIT: usize = 128;
const REASON_LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

fn is_strict(obj: &Value) -> bool {
    obj.s("apiVersion") == EVENTS_V1
}

fn unset(v: &Value, key: &str) -> bool {
    match v.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_i64() == Some(0),
        Some(_) => false,
    }
}

/// Upstream's `legacyValidateEvent` (on the stored core/v1 field names).
fn legacy_validate(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let ns = meta::namespace(obj);
    let involved_ns = obj.f("involvedObject").s("namespace");
    let mismatch = || {
        FieldError::invalid(
            &Path::new("involvedObject").child("namespace"),
            involved_ns,
            "does not match event.namespace",
        )
    };
    if unset(obj, "eventTime") {
        if involved_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                errs.push(mismatch());
            }
        } else if ns != involved_ns {
            errs.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(mismatch());
        }
        let controller = obj.s("reportingComponent");
        if controller.is_empty() {
            errs.push(FieldError::required(&Path::new("reportingController"), ""));
        }
        for msg in is_qualified_name(controller) {
            errs.push(FieldError::invalid(
                &Path::new("reportingController"),
                controller,
                msg,
            ));
        }
        for (key, limit) in [
            ("reportingInstance", REPORTING_INSTANCE_LIMIT),
            ("action", ACTION_LIMIT),
            ("reason", REASON_LIMIT),
        ] {
            let v = obj.s(key);
            if v.is_empty() {
                errs.push(FieldError::required(&Path::new(key), ""));
            }
            if v.len() > limit {
                errs.push(FieldError::invalid(
                    &Path::new(key),
                    "",
                    format!("can have at most {limit} characters"),
                ));
            }
        }
        if obj.s("message").len() > NOTE_LIMIT {
            errs.push(FieldError::invalid(
                &Path::new("message"),
                "",
                format!("can have at most {NOTE_LIMIT} characters"),
            ));
        }
    }
    for msg in is_dns1123_subdomain(ns) {
        errs.push(FieldError::invalid(&Path::new("namespace"), ns, msg));
    }
    errs
}

/// Upstream's `validateV1EventSeries` (its paths are written with a dot).
fn validate_series(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    if obj.has("series") {
        let series = obj.f("series");
        if series.i("count").unwrap_or(0) < 2 {
            errs.push(FieldError::invalid(
                &Path::new("series.count"),
                "",
                "should be at least 2",
            ));
        }
        if unset(series, "lastObservedTime") {
            errs.push(FieldError::required(
                &Path::new("series.lastObservedTime"),
                "",
            ));
        }
    }
    errs
}

/// The strict part of `ValidateEventCreate` for events.k8s.io/v1.
fn strict_validate(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = meta::name(obj);
    for msg in name_is_dns_subdomain(name, false) {
        errs.push(FieldError::invalid(
            &Path::new("metadata").child("name"),
            name,
            msg,
        ));
    }
    errs.extend(validate_series(obj));
    if unset(obj, "eventTime") {
        errs.push(FieldError::required(&Path::new("eventTime"), ""));
    }
    let ty = obj.s("type");
    if ty != "Normal" && ty != "Warning" {
        errs.push(FieldError::invalid(
            &Path::new("type"),
            "",
            format!("has invalid value: {ty}"),
        ));
    }
    for key in ["firstTimestamp", "lastTimestamp", "count"] {
        if !unset(obj, key) {
            errs.push(FieldError::invalid(
                &Path::new(key),
                "",
                "needs to be unset",
            ));
        }
    }
    let source = obj.f("source");
    if !source.s("component").is_empty() || !source.s("host").is_empty() {
        errs.push(FieldError::invalid(
            &Path::new("source"),
            "",
            "needs to be unset",
        ));
    }
    errs
}

/// Fields events.k8s.io/v1 keeps immutable: (upstream's path, stored core/v1 field).
const IMMUTABLE: &[(&str, &str)] = &[
    ("involvedObject", "involvedObject"),
    ("reason", "reason"),
    ("message", "message"),
    ("source", "source"),
    ("firstTimestamp", "firstTimestamp"),
    ("lastTimestamp", "lastTimestamp"),
    ("count", "count"),
    ("type", "type"),
    ("eventTime", "eventTime"),
    ("action", "action"),
    ("related", "related"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
];

impl Strategy for EventStrategy {
    fn validate_name(&self, name: &str, prefix: bool) -> Vec<String> {
        k1s_apimachinery::validation::validate_path_segment_name(name, prefix)
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = legacy_validate(obj);
        if is_strict(obj) {
            errs.extend(strict_validate(obj));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = legacy_validate(new);
        if !is_strict(new) {
            return errs;
        }
        if !semantic_eq(new.f("series"), old.f("series")) {
            errs.extend(validate_series(new));
        }
        for (path, key) in IMMUTABLE {
            errs.extend(immutable(new.f(key), old.f(key), &Path::new(path)));
        }
        errs
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let s = |path: &[&str]| {
            meta::get_path(obj, path)
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default()
        };
        vec![
            ("involvedObject.kind", s(&["involvedObject", "kind"])),
            (
                "involvedObject.namespace",
                s(&["involvedObject", "namespace"]),
            ),
            ("involvedObject.name", s(&["involvedObject", "name"])),
            ("involvedObject.uid", s(&["involvedObject", "uid"])),
            (
                "involvedObject.apiVersion",
                s(&["involvedObject", "apiVersion"]),
            ),
            (
                "involvedObject.resourceVersion",
                s(&["involvedObject", "resourceVersion"]),
            ),
            (
                "involvedObject.fieldPath",
                s(&["involvedObject", "fieldPath"]),
            ),
            ("reason", s(&["reason"])),
            ("reportingComponent", s(&["reportingComponent"])),
            ("source", s(&["source", "component"])),
            ("type", s(&["type"])),
        ]
    }
}

/// Field names: (events.k8s.io/v1, core/v1).
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(obj: Value, to_core: bool) -> Value {
    let Value::Object(o) = obj else { return obj };
    let out: Map<String, Value> = o
        .into_iter()
        .map(|(k, v)| {
            let renamed = RENAMES.iter().find_map(|(new, old)| {
                if to_core && k == *new {
                    Some(old.to_string())
                } else if !to_core && k == *old {
                    Some(new.to_string())
                } else {
                    None
                }
            });
            (renamed.unwrap_or(k), v)
        })
        .collect();
    Value::Object(out)
}

/// Converts events.k8s.io/v1 Events to and from the stored core/v1 form.
pub struct EventsV1Conversion;

impl Conversion for EventsV1Conversion {
    fn stored_form(&self, _: &GenericStore, obj: Value) -> Result<Value, Status> {
        // The strategy tells the versions apart by apiVersion: keep it.
        let mut obj = rename(obj, true);
        if let Some(o) = obj.as_object_mut() {
            o.insert("apiVersion".into(), json!(EVENTS_V1));
        }
        Ok(obj)
    }

    fn served_form(&self, _: &GenericStore, obj: Value) -> Result<Value, Status> {
        Ok(rename(obj, false))
    }
}

//! Kinds of the `resource.k8s.io` group, dynamic resource allocation (upstream
//! `pkg/apis/resource/validation`, `pkg/apis/resource/v1/defaults.go`,
//! `pkg/registry/resource/*`): DeviceClasses, ResourceClaims, ResourceClaimTemplates
//! and ResourceSlices of `resource.k8s.io/v1`, the version 1.35 serves by default.
//!
//! What is shared here: the device claim (requests, constraints, configuration) of
//! claims and templates, device selectors (CEL expressions, compiled to catch syntax
//! errors and undeclared references), opaque configurations and tolerations.

mod deviceclass;
mod resourceclaim;
mod resourceclaimtemplate;
mod resourceslice;

pub use deviceclass::DeviceClassStrategy;
pub use resourceclaim::ResourceClaimStrategy;
pub use resourceclaimtemplate::ResourceClaimTemplateStrategy;
pub use resourceslice::ResourceSliceStrategy;

use std::collections::{HashMap, HashSet};

use k1s_apimachinery::validation::{is_c_identifier, is_dns1123_label, is_dns1123_subdomain};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::admissionregistration::cel::device_selector_compile_error;
use crate::kinds::core::volumesource::csi_driver_name;
use crate::kinds::validation::{Fields, invalid_each, required_name};

/// Upstream's `DeviceRequestsMaxSize` (= `AllocationResultsMaxSize`).
const DEVICE_REQUESTS_MAX: usize = 32;
/// `DeviceConstraintsMaxSize`.
const DEVICE_CONSTRAINTS_MAX: usize = 32;
/// `DeviceConfigMaxSize`.
const DEVICE_CONFIG_MAX: usize = 32;
/// `DeviceSelectorsMaxSize`.
const DEVICE_SELECTORS_MAX: usize = 32;
/// `FirstAvailableDeviceRequestMaxSize`.
const FIRST_AVAILABLE_MAX: usize = 8;
/// `DeviceTolerationsMaxLength`.
const TOLERATIONS_MAX: usize = 16;
/// `CELSelectorExpressionMaxLength`.
const CEL_MAX_LENGTH: usize = 10 * 1024;
/// `OpaqueParametersMaxLength`.
const OPAQUE_PARAMETERS_MAX: usize = 10 * 1024;
/// `DeviceMaxDomainLength`.
const DOMAIN_MAX: usize = 63;
/// `DeviceMaxIDLength`.
const ID_MAX: usize = 32;

/// `SetDefaults_ExactDeviceRequest` / `SetDefaults_DeviceSubRequest`: `ExactCount` of
/// one device unless said otherwise; tolerations' operator defaults to `Equal`.
fn default_request(req: &mut Value) {
    let Some(r) = req.as_object_mut() else {
        return;
    };
    let mode = r
        .get("allocationMode")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if mode.is_empty() {
        r.insert("allocationMode".into(), "ExactCount".into());
    }
    if (mode.is_empty() || mode == "ExactCount")
        && r.get("count").and_then(Value::as_i64).unwrap_or(0) == 0
    {
        r.insert("count".into(), 1.into());
    }
    if let Some(tols) = r.get_mut("tolerations").and_then(Value::as_array_mut) {
        for t in tols {
            if let Some(t) = t.as_object_mut()
                && t.get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
            {
                t.insert("operator".into(), "Equal".into());
            }
        }
    }
}

/// Defaults of a `ResourceClaimSpec` (claims and templates' `spec.spec`).
pub(crate) fn default_claim_spec(spec: &mut Value) {
    let Some(requests) = spec
        .get_mut("devices")
        .and_then(|d| d.get_mut("requests"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for req in requests {
        if let Some(exactly) = req.get_mut("exactly").filter(|e| e.is_object()) {
            default_request(exactly);
        }
        if let Some(subs) = req.get_mut("firstAvailable").and_then(Value::as_array_mut) {
            for sub in subs {
                default_request(sub);
            }
        }
    }
}

/// Request names of a claim: each request with the names of its subrequests.
struct RequestNames(HashMap<String, HashSet<String>>);

impl RequestNames {
    fn of(devices: &Value) -> Self {
        let mut names = HashMap::new();
        for r in devices.a("requests") {
            let subs = r
                .a("firstAvailable")
                .iter()
                .map(|s| s.s("name").to_string())
                .collect();
            names.insert(r.s("name").to_string(), subs);
        }
        RequestNames(names)
    }

    /// Whether `reference` names a request, or a request and one of its subrequests
    /// (`req/sub`).
    fn has(&self, reference: &str) -> bool {
        let mut parts = reference.split('/');
        let (Some(req), sub, None) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        match (self.0.get(req), sub) {
            (Some(_), None) => true,
            (Some(subs), Some(sub)) => subs.contains(sub),
            (None, _) => false,
        }
    }
}

/// `Too many` when a list has more than `max` items.
fn too_many(items: &[Value], max: usize, path: &Path) -> ErrorList {
    if items.len() > max {
        vec![FieldError::too_many(path, items.len() as i64, max as i64)]
    } else {
        ErrorList::new()
    }
}

/// `Duplicate value` for each repeated key of a list that is a set keyed by `key`.
fn duplicates<'a>(
    keys: impl Iterator<Item = &'a str>,
    path: &Path,
    field: Option<&str>,
) -> ErrorList {
    let mut seen = HashSet::new();
    let mut errs = ErrorList::new();
    for (i, k) in keys.enumerate() {
        if !seen.insert(k) {
            let p = path.index(i);
            let p = match field {
                Some(f) => p.child(f),
                None => p,
            };
            errs.push(FieldError::duplicate(&p, k));
        }
    }
    errs
}

/// `validateDeviceClaim`: the requests, constraints and configuration of a claim.
pub(crate) fn validate_device_claim(devices: &Value, path: &Path) -> ErrorList {
    let names = RequestNames::of(devices);
    let requests = devices.a("requests");
    let rpath = path.child("requests");
    let mut errs = too_many(requests, DEVICE_REQUESTS_MAX, &rpath);
    for (i, r) in requests.iter().enumerate() {
        errs.extend(validate_device_request(r, &rpath.index(i)));
    }
    errs.extend(duplicates(
        requests.iter().map(|r| r.s("name")),
        &rpath,
        Some("name"),
    ));
    let constraints = devices.a("constraints");
    let cpath = path.child("constraints");
    errs.extend(too_many(constraints, DEVICE_CONSTRAINTS_MAX, &cpath));
    for (i, c) in constraints.iter().enumerate() {
        errs.extend(validate_constraint(c, &cpath.index(i), &names));
    }
    let configs = devices.a("config");
    let fpath = path.child("config");
    errs.extend(too_many(configs, DEVICE_CONFIG_MAX, &fpath));
    for (i, c) in configs.iter().enumerate() {
        let p = fpath.index(i);
        errs.extend(validate_request_refs(
            c.a("requests"),
            &p.child("requests"),
            &names,
        ));
        errs.extend(validate_device_configuration(c, &p));
    }
    errs
}

/// `validateDeviceRequest`: a DNS-label name and exactly one of `exactly` and
/// `firstAvailable`.
fn validate_device_request(r: &Value, path: &Path) -> ErrorList {
    let mut errs = required_name(r.s("name"), &path.child("name"), is_dns1123_label);
    let first = r.a("firstAvailable");
    let has_exactly = r.has("exactly");
    match (has_exactly, first.is_empty()) {
        (false, true) => errs.push(FieldError::required(
            path,
            "exactly one of `exactly` or `firstAvailable` is required",
        )),
        (true, false) => errs.push(FieldError::invalid(
            path,
            Value::Null,
            "exactly one of `exactly` or `firstAvailable` is required, but multiple fields are set",
        )),
        (false, false) => {
            let fpath = path.child("firstAvailable");
            errs.extend(too_many(first, FIRST_AVAILABLE_MAX, &fpath));
            for (i, s) in first.iter().enumerate() {
                let p = fpath.index(i);
                errs.extend(required_name(
                    s.s("name"),
                    &p.child("name"),
                    is_dns1123_label,
                ));
                errs.extend(validate_exact_request(s, &p));
            }
            errs.extend(duplicates(
                first.iter().map(|s| s.s("name")),
                &fpath,
                Some("name"),
            ));
        }
        (true, true) => errs.extend(validate_exact_request(
            r.f("exactly"),
            &path.child("exactly"),
        )),
    }
    errs
}

/// `validateExactDeviceRequest` (and the same fields of a subrequest): the class, the
/// selectors, the allocation mode with its count, the tolerations.
fn validate_exact_request(r: &Value, path: &Path) -> ErrorList {
    let mut errs = required_name(
        r.s("deviceClassName"),
        &path.child("deviceClassName"),
        is_dns1123_subdomain,
    );
    errs.extend(validate_selectors(
        r.a("selectors"),
        &path.child("selectors"),
    ));
    let count = r.i("count").unwrap_or(0);
    match r.s("allocationMode") {
        "All" if count != 0 => errs.push(FieldError::invalid(
            &path.child("count"),
            count,
            "must not be specified when allocationMode is 'All'",
        )),
        "All" => {}
        "ExactCount" if count <= 0 => errs.push(FieldError::invalid(
            &path.child("count"),
            count,
            "must be greater than zero",
        )),
        "ExactCount" => {}
        other => errs.push(FieldError::not_supported(
            &path.child("allocationMode"),
            other,
            &["All", "ExactCount"],
        )),
    }
    let tols = r.a("tolerations");
    let tpath = path.child("tolerations");
    errs.extend(too_many(tols, TOLERATIONS_MAX, &tpath));
    for (i, t) in tols.iter().enumerate() {
        errs.extend(validate_toleration(t, &tpath.index(i)));
    }
    errs
}

/// `validateSelectorSlice`: at most 32 selectors, each a CEL expression.
pub(crate) fn validate_selectors(selectors: &[Value], path: &Path) -> ErrorList {
    let mut errs = too_many(selectors, DEVICE_SELECTORS_MAX, path);
    for (i, s) in selectors.iter().enumerate() {
        let p = path.index(i);
        if !s.has("cel") {
            errs.push(FieldError::required(&p.child("cel"), ""));
            continue;
        }
        errs.extend(validate_cel(
            s.f("cel").s("expression"),
            &p.child("cel").child("expression"),
        ));
    }
    errs
}

/// `validateCELExpression`: at most 10 KiB, and an expression that compiles in the
/// device environment (only `device` is declared).
fn validate_cel(expression: &str, path: &Path) -> ErrorList {
    if expression.len() > CEL_MAX_LENGTH {
        return vec![FieldError::too_long(path, "", CEL_MAX_LENGTH as i64)];
    }
    match device_selector_compile_error(expression) {
        Some(detail) => vec![FieldError::invalid(path, expression, detail)],
        None => ErrorList::new(),
    }
}

/// `validateDeviceToleration`: an optional qualified key, the operator and its value,
/// the effect.
fn validate_toleration(t: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if !t.s("key").is_empty() {
        errs.extend(validate_label_name(t.s("key"), &path.child("key")));
    }
    match t.s("operator") {
        "Exists" if !t.s("value").is_empty() => errs.push(FieldError::invalid(
            &path.child("value"),
            t.s("value"),
            "must be empty for operator `Exists`",
        )),
        "Exists" | "" => {}
        "Equal" => errs.extend(invalid_each(
            t.s("value"),
            &path.child("value"),
            k1s_apimachinery::validation::is_valid_label_value(t.s("value")),
        )),
        other => errs.push(FieldError::not_supported(
            &path.child("operator"),
            other,
            &["Equal", "Exists"],
        )),
    }
    match t.s("effect") {
        "" | "NoSchedule" | "NoExecute" => {}
        other => errs.push(FieldError::not_supported(
            &path.child("effect"),
            other,
            &["NoExecute", "NoSchedule"],
        )),
    }
    errs
}

/// A label key (`metav1validation.ValidateLabelName`).
fn validate_label_name(key: &str, path: &Path) -> ErrorList {
    invalid_each(
        key,
        path,
        k1s_apimachinery::validation::is_qualified_name(key),
    )
}

/// `validateDeviceConstraint`: its request references, and `matchAttribute` (the one
/// kind of constraint 1.35 serves by default).
fn validate_constraint(c: &Value, path: &Path, names: &RequestNames) -> ErrorList {
    let mut errs = validate_request_refs(c.a("requests"), &path.child("requests"), names);
    if c.has("matchAttribute") {
        errs.extend(validate_fully_qualified_name(
            c.s("matchAttribute"),
            &path.child("matchAttribute"),
        ));
    } else if c.has("distinctAttribute") {
        errs.extend(validate_fully_qualified_name(
            c.s("distinctAttribute"),
            &path.child("distinctAttribute"),
        ));
    } else {
        errs.push(FieldError::required(&path.child("matchAttribute"), ""));
    }
    errs
}

/// `validateRequestNameRef` over a set of references.
fn validate_request_refs(refs: &[Value], path: &Path, names: &RequestNames) -> ErrorList {
    let mut errs = too_many(refs, DEVICE_REQUESTS_MAX, path);
    for (i, r) in refs.iter().enumerate() {
        let name = r.as_str().unwrap_or("");
        let p = path.index(i);
        let segments: Vec<&str> = name.split('/').collect();
        const MSG: &str = "must be the name of a request in the claim or the name of a request and a subrequest separated by '/'";
        if segments.len() > 2 {
            errs.push(FieldError::invalid(&p, name, MSG));
            continue;
        }
        for s in &segments {
            errs.extend(required_name(s, &p, is_dns1123_label));
        }
        if !names.has(name) {
            errs.push(FieldError::invalid(&p, name, MSG));
        }
    }
    errs.extend(duplicates(
        refs.iter().map(|r| r.as_str().unwrap_or("")),
        path,
        None,
    ));
    errs
}

/// `validateFullyQualifiedName`: `<domain>/<identifier>`, the domain a DNS subdomain of at
/// most 63 characters, the identifier a C identifier of at most 32.
fn validate_fully_qualified_name(name: &str, path: &Path) -> ErrorList {
    let mut errs = validate_qualified_name(name, path);
    if !name.contains('/') {
        errs.push(FieldError::invalid(
            path,
            name,
            "a fully qualified name must be a domain and a name separated by a slash",
        ));
    }
    errs
}

/// DRA's `validateQualifiedName`: an optional domain and a C identifier.
fn validate_qualified_name(name: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if name.is_empty() {
        errs.push(FieldError::required(path, "name required"));
        return errs;
    }
    let (domain, id) = match name.split_once('/') {
        Some((d, i)) => (Some(d), i),
        None => (None, name),
    };
    if let Some(domain) = domain {
        if domain.is_empty() {
            errs.push(FieldError::required(path, "the domain must not be empty"));
        } else {
            if domain.len() > DOMAIN_MAX {
                errs.push(FieldError::too_long(path, "", DOMAIN_MAX as i64));
            }
            errs.extend(invalid_each(domain, path, is_dns1123_subdomain(domain)));
        }
    }
    if id.is_empty() {
        errs.push(FieldError::required(path, "the name must not be empty"));
    } else {
        if id.len() > ID_MAX {
            errs.push(FieldError::too_long(path, "", ID_MAX as i64));
        }
        errs.extend(invalid_each(id, path, is_c_identifier(id)));
    }
    errs
}

/// `validateDeviceConfiguration`: an opaque configuration with a driver name and
/// parameters of at most 10 KiB.
pub(crate) fn validate_device_configuration(config: &Value, path: &Path) -> ErrorList {
    let opath = path.child("opaque");
    if !config.has("opaque") {
        return vec![FieldError::required(&opath, "")];
    }
    let opaque = config.f("opaque");
    let mut errs = csi_driver_name(opaque.s("driver"), &opath.child("driver"));
    let ppath = opath.child("parameters");
    match opaque.get("parameters") {
        None | Some(Value::Null) => errs.push(FieldError::required(&ppath, "")),
        Some(p) => {
            let raw = p.to_string();
            if raw.len() > OPAQUE_PARAMETERS_MAX {
                errs.push(FieldError::too_long(
                    &ppath,
                    "",
                    OPAQUE_PARAMETERS_MAX as i64,
                ));
            } else if !p.is_object() {
                errs.push(FieldError::invalid(
                    &ppath,
                    "<value omitted>",
                    "parameters must be a valid JSON object",
                ));
            }
        }
    }
    errs
}

/// Upstream's `ValidateImmutableField` on `spec` for claims and templates, whose specs
/// never change.
pub(crate) fn immutable_spec(new: &Value, old: &Value, path: &Path) -> ErrorList {
    crate::kinds::validation::immutable(new.f("spec"), old.f("spec"), path)
}

#[cfg(test)]
mod tests;

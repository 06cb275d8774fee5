//! APIServices (upstream's `kube-aggregator` `ValidateAPIService`, its defaults and its
//! strategy): the name is `<version>.<group>`, a local APIService (no service) has no CA
//! bundle and no `insecureSkipTLSVerify`, a remote one names its Service, and the two
//! priorities stay in upstream's ranges. Status is written only through `/status`.

use base64::Engine;
use k1s_apimachinery::validation::{
    is_dns1035_label, is_dns1123_subdomain, validate_path_segment_name,
};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use crate::kinds::validation::Fields;
use crate::meta;
use crate::registry::Strategy;

/// The APIService strategy.
pub struct ApiServiceStrategy;

/// Upstream's `ValidateAPIService`, less the object metadata the registry checks.
pub fn validate_api_service(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = obj.f("spec");
    let group = spec.s("group");
    let version = spec.s("version");
    let name = meta::name(obj);
    let required = format!("{version}.{group}");
    // The name checks run inside upstream's object-meta validation; the registry checks
    // only the path-segment rules (validate_name), so the name must match here.
    if !name.is_empty() && validate_path_segment_name(name, false).is_empty() && name != required {
        errs.push(FieldError::invalid(
            &Path::new("metadata").child("name"),
            name,
            format!("must be `spec.version+\".\"+spec.group`: {required:?}"),
        ));
    }
    let spec_path = Path::new("spec");
    if group.is_empty() && version != "v1" {
        errs.push(FieldError::required(
            &spec_path.child("group"),
            "only v1 may have an empty group and it better be legacy kube",
        ));
    }
    if !group.is_empty() {
        for e in is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid(&spec_path.child("group"), group, e));
        }
    }
    for e in is_dns1035_label(version) {
        errs.push(FieldError::invalid(&spec_path.child("version"), version, e));
    }
    let group_priority = spec.i("groupPriorityMinimum").unwrap_or(0);
    if group_priority <= 0 || group_priority > 20000 {
        errs.push(FieldError::invalid(
            &spec_path.child("groupPriorityMinimum"),
            group_priority,
            "must be positive and less than 20000",
        ));
    }
    let version_priority = spec.i("versionPriority").unwrap_or(0);
    if version_priority <= 0 || version_priority > 1000 {
        errs.push(FieldError::invalid(
            &spec_path.child("versionPriority"),
            version_priority,
            "must be positive and less than 1000",
        ));
    }
    let ca_len = ca_bundle(spec).map_or(0, |b| b.len());
    let insecure = spec.b("insecureSkipTLSVerify");
    let service = spec.f("service");
    if service.is_null() {
        if ca_len != 0 {
            errs.push(FieldError::invalid(
                &spec_path.child("caBundle"),
                format!("{ca_len} bytes"),
                "local APIServices may not have a caBundle",
            ));
        }
        if insecure {
            errs.push(FieldError::invalid(
                &spec_path.child("insecureSkipTLSVerify"),
                true,
                "local APIServices may not have insecureSkipTLSVerify",
            ));
        }
        return errs;
    }
    let service_path = spec_path.child("service");
    if service.s("namespace").is_empty() {
        errs.push(FieldError::required(&service_path.child("namespace"), ""));
    }
    if service.s("name").is_empty() {
        errs.push(FieldError::required(&service_path.child("name"), ""));
    }
    if insecure && ca_len > 0 {
        errs.push(FieldError::invalid(
            &spec_path.child("insecureSkipTLSVerify"),
            true,
            "may not be true if caBundle is present",
        ));
    }
    errs
}

/// The decoded `spec.caBundle`, if set (the schema decoder already checked it is base64).
pub fn ca_bundle(spec: &Value) -> Option<Vec<u8>> {
    let text = spec.get("caBundle").and_then(Value::as_str)?;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Upstream's `ValidateAPIServiceStatus`: condition statuses are True, False or Unknown.
fn validate_status(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let path = Path::new("status").child("conditions");
    for (i, c) in obj.f("status").a("conditions").iter().enumerate() {
        let status = c.s("status");
        if !matches!(status, "True" | "False" | "Unknown") {
            errs.push(FieldError::not_supported(
                &path.index(i).child("status"),
                status,
                &["True", "False", "Unknown"],
            ));
        }
    }
    errs
}

impl Strategy for ApiServiceStrategy {
    fn default(&self, obj: &mut Value) {
        // v1's SetDefaults_ServiceReference.
        if obj.pointer("/spec/service").is_some_and(Value::is_object) {
            meta::default_path(obj, &["spec", "service", "port"], json!(443));
        }
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_api_service(obj)
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> ErrorList {
        validate_status(new)
    }

    fn validate_name(&self, name: &str, prefix: bool) -> Vec<String> {
        validate_path_segment_name(name, prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, spec: Value) -> Value {
        json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": name}, "spec": spec})
    }

    fn messages(errs: &ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_remote_and_a_local_api_service_are_valid() {
        let remote = svc(
            "v1alpha1.wardle.example.com",
            json!({"group": "wardle.example.com", "version": "v1alpha1",
                "service": {"namespace": "default", "name": "api", "port": 443},
                "caBundle": "Zm9v", "groupPriorityMinimum": 1000, "versionPriority": 15}),
        );
        assert!(validate_api_service(&remote).is_empty());
        let local = svc(
            "v1.",
            json!({"version": "v1", "groupPriorityMinimum": 18000, "versionPriority": 1}),
        );
        assert!(validate_api_service(&local).is_empty());
    }

    #[test]
    fn bad_input_reads_as_upstreams_errors() {
        let bad = svc(
            "v1.wrong",
            json!({"group": "Bad_Group", "version": "1x", "groupPriorityMinimum": 0,
                "versionPriority": 1001, "caBundle": "Zm9v", "insecureSkipTLSVerify": true}),
        );
        let got = messages(&validate_api_service(&bad));
        assert!(
            got[0].starts_with(
                "metadata.name: Invalid value: \"v1.wrong\": must be `spec.version+\".\"+spec.group`: \"1x.Bad_Group\""
            ),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|m| m.starts_with("spec.group: Invalid value: \"Bad_Group\""))
        );
        assert!(
            got.iter()
                .any(|m| m.starts_with("spec.version: Invalid value: \"1x\""))
        );
        assert!(got.contains(
            &"spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000"
                .to_string()
        ));
        assert!(
            got.contains(
                &"spec.versionPriority: Invalid value: 1001: must be positive and less than 1000"
                    .to_string()
            )
        );
        assert!(got.contains(
            &"spec.caBundle: Invalid value: \"3 bytes\": local APIServices may not have a caBundle"
                .to_string()
        ));
        assert!(got.contains(&"spec.insecureSkipTLSVerify: Invalid value: true: local APIServices may not have insecureSkipTLSVerify".to_string()));

        let remote = svc(
            "v1.x.io",
            json!({"group": "x.io", "version": "v1", "groupPriorityMinimum": 1,
                "versionPriority": 1, "caBundle": "Zm9v", "insecureSkipTLSVerify": true,
                "service": {}}),
        );
        let got = messages(&validate_api_service(&remote));
        assert_eq!(
            got,
            [
                "spec.service.namespace: Required value",
                "spec.service.name: Required value",
                "spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is present",
            ]
        );
        let core = svc(
            "v2.",
            json!({"version": "v2", "groupPriorityMinimum": 1, "versionPriority": 1}),
        );
        assert_eq!(
            messages(&validate_api_service(&core)),
            [
                "spec.group: Required value: only v1 may have an empty group and it better be legacy kube"
            ]
        );
    }

    #[test]
    fn status_conditions_must_be_true_false_or_unknown() {
        let mut obj = svc("v1.", json!({}));
        obj["status"] = json!({"conditions": [{"type": "Available", "status": "Maybe"}]});
        assert_eq!(
            messages(&validate_status(&obj)),
            [
                "status.conditions[0].status: Unsupported value: \"Maybe\": supported values: \"True\", \"False\", \"Unknown\""
            ]
        );
    }

    #[test]
    fn a_service_port_defaults_to_443() {
        let mut obj = svc(
            "v1.x.io",
            json!({"service": {"namespace": "a", "name": "b"}}),
        );
        ApiServiceStrategy.default(&mut obj);
        assert_eq!(obj.pointer("/spec/service/port"), Some(&json!(443)));
    }
}

//! Parity rows of `apiregistration.k8s.io`: APIServices (upstream's `ValidateAPIService`).

use serde_json::{Value, json};

use super::Case;

/// The rows of this group.
pub fn cases() -> Vec<Case> {
    vec![api_service()]
}

/// An APIService named `v1.<token>.example.com` for group `<token>.example.com`, then
/// edited (an edit of the name or group wins).
fn api_service_named(valid: &Value, token: &str, edit: &dyn Fn(&mut Value)) -> Value {
    let mut o = valid.clone();
    let group = format!("{token}.example.com");
    o["metadata"]["name"] = json!(format!("v1.{group}"));
    o["spec"]["group"] = json!(group);
    edit(&mut o);
    o
}

fn api_service() -> Case {
    Case::new(
        "/apis/apiregistration.k8s.io/v1/apiservices",
        json!({"metadata": {"name": "x"}, "spec": {
            "group": "x", "version": "v1",
            "service": {"namespace": "default", "name": "api", "port": 443},
            "insecureSkipTLSVerify": true,
            "groupPriorityMinimum": 1000, "versionPriority": 15
        }}),
    )
    .built_by(api_service_named)
    .required("/spec/version", "spec.version: Invalid value: \"\": a DNS-1035 label must consist of lower case alphanumeric characters or '-'")
    .required("/spec/groupPriorityMinimum", "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000")
    .required("/spec/versionPriority", "spec.versionPriority: Invalid value: 0: must be positive and less than 1000")
    .required("/spec/service/namespace", "spec.service.namespace: Required value")
    .required("/spec/service/name", "spec.service.name: Required value")
    .invalid("/metadata/name", json!("v2.other.example.com"), "metadata.name: Invalid value: \"v2.other.example.com\": must be `spec.version+\".\"+spec.group`")
    .invalid("/spec/versionPriority", json!(1001), "spec.versionPriority: Invalid value: 1001: must be positive and less than 1000")
    .invalid("/spec/groupPriorityMinimum", json!(20001), "spec.groupPriorityMinimum: Invalid value: 20001: must be positive and less than 20000")
    .invalid("/spec/caBundle", json!("Zm9v"), "spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is present")
    .invalid("/spec/service", Value::Null, "spec.insecureSkipTLSVerify: Invalid value: true: local APIServices may not have insecureSkipTLSVerify")
}

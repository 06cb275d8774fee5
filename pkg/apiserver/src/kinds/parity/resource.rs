//! Parity rows of `resource.k8s.io/v1` (dynamic resource allocation).

use serde_json::json;

use super::Case;

/// The DRA kinds' rows.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "/apis/resource.k8s.io/v1/deviceclasses",
            json!({"metadata": {"name": "x"}, "spec": {"selectors": [
                {"cel": {"expression": "device.driver == \"gpu.example.com\""}}]}}),
        )
        .required("/spec/selectors/0/cel", "spec.selectors[0].cel: Required value")
        .invalid("/spec/selectors/0/cel/expression", json!("device.driver =="),
            "spec.selectors[0].cel.expression: Invalid value: \"device.driver ==\": compilation failed: ERROR: <input>:1:17: Syntax error:")
        .invalid("/spec/config", json!([{"opaque": {"driver": "gpu.example.com"}}]),
            "spec.config[0].opaque.parameters: Required value"),
        Case::new(
            "/apis/resource.k8s.io/v1/namespaces/parity/resourceclaims",
            json!({"metadata": {"name": "x"}, "spec": {"devices": {"requests": [
                {"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com"}}]}}}),
        )
        .required("/spec/devices/requests/0/exactly/deviceClassName",
            "spec.devices.requests[0].exactly.deviceClassName: Required value")
        .required("/spec/devices/requests/0/exactly",
            "spec.devices.requests[0]: Required value: exactly one of `exactly` or `firstAvailable` is required")
        .invalid("/spec/devices/requests/0/exactly/allocationMode", json!("Most"),
            "spec.devices.requests[0].exactly.allocationMode: Unsupported value: \"Most\": supported values: \"All\", \"ExactCount\"")
        .invalid("/spec/devices/requests/0/exactly/count", json!(-1),
            "spec.devices.requests[0].exactly.count: Invalid value: -1: must be greater than zero")
        .immutable("/spec/devices/requests/0/exactly/deviceClassName", json!("other"), ": field is immutable"),
        Case::new(
            "/apis/resource.k8s.io/v1/namespaces/parity/resourceclaimtemplates",
            json!({"metadata": {"name": "x"}, "spec": {"spec": {"devices": {"requests": [
                {"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com"}}]}}}}),
        )
        .required("/spec/spec/devices/requests/0/name", "spec.spec.devices.requests[0].name: Required value")
        .immutable("/spec/spec/devices/requests/0/name", json!("other"), ": field is immutable"),
        Case::new(
            "/apis/resource.k8s.io/v1/resourceslices",
            json!({"metadata": {"name": "x"}, "spec": {"driver": "gpu.example.com", "nodeName": "node-1",
                   "pool": {"name": "node-1", "generation": 1, "resourceSliceCount": 1},
                   "devices": [{"name": "gpu-0", "attributes": {"model": {"string": "a100"}}}]}}),
        )
        .required("/spec/driver", "spec.driver: Required value")
        .required("/spec/pool/name", "spec.pool.name: Required value")
        .required("/spec/nodeName", "spec: Required value: exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required")
        .invalid("/spec/allNodes", json!(true), "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required, but multiple fields are set")
        .immutable("/spec/driver", json!("other.example.com"), "spec.driver: Invalid value: \"other.example.com\": field is immutable")
        .immutable("/spec/nodeName", json!("node-2"), "spec.nodeName: Invalid value: \"node-2\": field is immutable"),
    ]
}

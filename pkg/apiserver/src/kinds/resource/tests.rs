//! Validation and defaulting of the `resource.k8s.io` kinds against upstream's texts.

use serde_json::{Value, json};

use super::*;
use crate::registry::Strategy;

fn texts(errs: &ErrorList) -> Vec<String> {
    crate::test_util::texts(errs)
}

fn claim(requests: Value) -> Value {
    json!({"metadata": {"name": "c", "namespace": "default"},
           "spec": {"devices": {"requests": requests}}})
}

#[test]
fn requests_default_to_one_device_of_exact_count() {
    let mut c = claim(
        json!([{"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com",
        "tolerations": [{"key": "k", "effect": "NoSchedule"}]}},
        {"name": "any", "firstAvailable": [{"name": "a", "deviceClassName": "x", "allocationMode": "All"}]}]),
    );
    ResourceClaimStrategy.default(&mut c);
    let e = &c["spec"]["devices"]["requests"][0]["exactly"];
    assert_eq!(e["allocationMode"], "ExactCount");
    assert_eq!(e["count"], 1);
    assert_eq!(e["tolerations"][0]["operator"], "Equal");
    let sub = &c["spec"]["devices"]["requests"][1]["firstAvailable"][0];
    assert_eq!(sub["allocationMode"], "All");
    assert!(sub.get("count").is_none());
    assert!(
        ResourceClaimStrategy.validate(&c).is_empty(),
        "{:?}",
        texts(&ResourceClaimStrategy.validate(&c))
    );
}

#[test]
fn a_request_needs_exactly_one_form_and_a_class() {
    let c = claim(
        json!([{"name": "gpu"}, {"name": "Bad_Name", "exactly": {"allocationMode": "ExactCount", "count": 0}},
        {"name": "gpu", "exactly": {"deviceClassName": "x", "allocationMode": "Some"}}]),
    );
    let t = texts(&ResourceClaimStrategy.validate(&c));
    assert!(t.contains(&"spec.devices.requests[0]: Required value: exactly one of `exactly` or `firstAvailable` is required".to_string()), "{t:?}");
    assert!(
        t.iter().any(|m| m.starts_with(
            "spec.devices.requests[1].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label"
        )),
        "{t:?}"
    );
    assert!(
        t.contains(&"spec.devices.requests[1].exactly.deviceClassName: Required value".to_string()),
        "{t:?}"
    );
    assert!(
        t.contains(
            &"spec.devices.requests[1].exactly.count: Invalid value: 0: must be greater than zero"
                .to_string()
        ),
        "{t:?}"
    );
    assert!(t.contains(&"spec.devices.requests[2].exactly.allocationMode: Unsupported value: \"Some\": supported values: \"All\", \"ExactCount\"".to_string()), "{t:?}");
    assert!(
        t.contains(&"spec.devices.requests[2].name: Duplicate value: \"gpu\"".to_string()),
        "{t:?}"
    );
}

#[test]
fn selectors_are_compiled_in_the_device_environment() {
    let c = claim(
        json!([{"name": "gpu", "exactly": {"deviceClassName": "x", "allocationMode": "ExactCount", "count": 1,
        "selectors": [{"cel": {"expression": "device.driver == \"gpu.example.com\""}},
                      {"cel": {"expression": "object.driver == 1"}},
                      {"cel": {"expression": "device.driver =="}},
                      {}]}}]),
    );
    let t = texts(&ResourceClaimStrategy.validate(&c));
    assert_eq!(t.len(), 3, "{t:?}");
    assert!(t[0].starts_with("spec.devices.requests[0].exactly.selectors[1].cel.expression: Invalid value: \"object.driver == 1\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'object'"), "{t:?}");
    assert!(
        t[1].contains("compilation failed: ERROR: <input>:1:"),
        "{t:?}"
    );
    assert_eq!(
        t[2],
        "spec.devices.requests[0].exactly.selectors[3].cel: Required value"
    );
}

#[test]
fn constraints_and_config_name_requests_of_the_claim() {
    let mut c = claim(json!([{"name": "gpu", "exactly": {"deviceClassName": "x"}}]));
    c["spec"]["devices"]["constraints"] =
        json!([{"requests": ["gpu", "nic"], "matchAttribute": "nodomain"}, {}]);
    c["spec"]["devices"]["config"] =
        json!([{"requests": ["gpu"], "opaque": {"driver": "", "parameters": {"a": 1}}}, {}]);
    ResourceClaimStrategy.default(&mut c);
    let t = texts(&ResourceClaimStrategy.validate(&c));
    assert!(t.contains(&"spec.devices.constraints[0].requests[1]: Invalid value: \"nic\": must be the name of a request in the claim or the name of a request and a subrequest separated by '/'".to_string()), "{t:?}");
    assert!(t.contains(&"spec.devices.constraints[0].matchAttribute: Invalid value: \"nodomain\": a fully qualified name must be a domain and a name separated by a slash".to_string()), "{t:?}");
    assert!(
        t.contains(&"spec.devices.constraints[1].matchAttribute: Required value".to_string()),
        "{t:?}"
    );
    assert!(
        t.contains(&"spec.devices.config[0].opaque.driver: Required value".to_string()),
        "{t:?}"
    );
    assert!(
        t.contains(&"spec.devices.config[1].opaque: Required value".to_string()),
        "{t:?}"
    );
}

#[test]
fn claim_specs_are_immutable_and_status_rules_hold() {
    let mut old = claim(json!([{"name": "gpu", "exactly": {"deviceClassName": "x"}}]));
    ResourceClaimStrategy.default(&mut old);
    let mut new = old.clone();
    new["spec"]["devices"]["requests"][0]["exactly"]["deviceClassName"] = json!("y");
    let t = texts(&ResourceClaimStrategy.validate_update(&new, &old));
    assert_eq!(t.len(), 1);
    assert!(
        t[0].starts_with("spec: Invalid value:") && t[0].ends_with("field is immutable"),
        "{t:?}"
    );
    let mut reserved = old.clone();
    reserved["status"] = json!({"reservedFor": [{"resource": "pods", "name": "p", "uid": "1"}]});
    assert_eq!(
        texts(&ResourceClaimStrategy.validate_status_update(&reserved, &old)),
        ["status.reservedFor: Forbidden: may not be specified when `allocated` is not set"]
    );
    let mut allocated = old.clone();
    allocated["status"] = json!({"allocation": {"devices": {"results": [
        {"request": "gpu", "driver": "gpu.example.com", "pool": "node-1", "device": "gpu-0"}]}},
        "reservedFor": [{"resource": "pods", "name": "p", "uid": "1"}]});
    assert!(
        ResourceClaimStrategy
            .validate_status_update(&allocated, &old)
            .is_empty()
    );
    let mut changed = allocated.clone();
    changed["status"]["allocation"]["devices"]["results"][0]["device"] = json!("gpu-1");
    let t = texts(&ResourceClaimStrategy.validate_status_update(&changed, &allocated));
    assert!(
        t.len() == 1 && t[0].starts_with("status.allocation: Invalid value:"),
        "{t:?}"
    );
}

#[test]
fn templates_validate_the_inner_claim() {
    let mut t = json!({"metadata": {"name": "t"}, "spec": {"spec": {"devices": {"requests": [{"name": "gpu", "exactly": {}}]}}}});
    ResourceClaimTemplateStrategy.default(&mut t);
    assert_eq!(
        t["spec"]["spec"]["devices"]["requests"][0]["exactly"]["count"],
        1
    );
    assert_eq!(
        texts(&ResourceClaimTemplateStrategy.validate(&t)),
        ["spec.spec.devices.requests[0].exactly.deviceClassName: Required value"]
    );
}

#[test]
fn device_classes_compile_selectors_and_drop_alpha_fields() {
    let mut c = json!({"metadata": {"name": "gpu.example.com"}, "spec": {
        "selectors": [{"cel": {"expression": "device.driver == 'gpu.example.com'"}}],
        "extendedResourceName": "example.com/gpu"}});
    DeviceClassStrategy.prepare_for_create(&mut c, false);
    assert!(c["spec"].get("extendedResourceName").is_none());
    assert!(DeviceClassStrategy.validate(&c).is_empty());
    c["spec"]["selectors"][0]["cel"]["expression"] = json!("foo(");
    let t = texts(&DeviceClassStrategy.validate(&c));
    assert!(t.len() == 1 && t[0].starts_with("spec.selectors[0].cel.expression: Invalid value: \"foo(\": compilation failed: ERROR: <input>:1:"), "{t:?}");
    assert!(DeviceClassStrategy.tracks_generation());
}

#[test]
fn slices_name_exactly_one_node_choice() {
    let slice = |extra: Value| {
        let mut s = json!({"metadata": {"name": "s"}, "spec": {"driver": "gpu.example.com",
            "pool": {"name": "node-1", "generation": 1, "resourceSliceCount": 1},
            "devices": [{"name": "gpu-0", "attributes": {"model": {"string": "a100"}}, "capacity": {"memory": {"value": "40Gi"}}}]}});
        if let (Some(spec), Some(extra)) = (s["spec"].as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        s
    };
    let ok = slice(json!({"nodeName": "node-1"}));
    assert!(
        ResourceSliceStrategy.validate(&ok).is_empty(),
        "{:?}",
        texts(&ResourceSliceStrategy.validate(&ok))
    );
    assert_eq!(
        texts(&ResourceSliceStrategy.validate(&slice(json!({})))),
        [
            "spec: Required value: exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required"
        ]
    );
    assert_eq!(
        texts(&ResourceSliceStrategy.validate(&slice(json!({"nodeName": "n", "allNodes": true})))),
        [
            "spec: Invalid value: \"{`nodeName`, `allNodes`}\": exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required, but multiple fields are set"
        ]
    );
    let mut moved = ok.clone();
    moved["spec"]["nodeName"] = json!("node-2");
    assert_eq!(
        texts(&ResourceSliceStrategy.validate_update(&moved, &ok)),
        ["spec.nodeName: Invalid value: \"node-2\": field is immutable"]
    );
    let mut bad = slice(json!({"allNodes": true}));
    bad["spec"]["devices"] = json!([{"name": "a", "attributes": {"x": {}}}, {"name": "a"}]);
    bad["spec"]["pool"]["resourceSliceCount"] = json!(0);
    let t = texts(&ResourceSliceStrategy.validate(&bad));
    assert!(
        t.contains(
            &"spec.pool.resourceSliceCount: Invalid value: 0: must be greater than zero"
                .to_string()
        ),
        "{t:?}"
    );
    assert!(
        t.contains(
            &"spec.devices[0].attributes[x]: Required value: exactly one value must be specified"
                .to_string()
        ),
        "{t:?}"
    );
    assert!(
        t.contains(&"spec.devices[1].name: Duplicate value: \"a\"".to_string()),
        "{t:?}"
    );
    let labels = ResourceSliceStrategy.field_labels(&ok);
    assert!(labels.contains(&("spec.nodeName", "node-1".to_string())));
    assert!(labels.contains(&("spec.driver", "gpu.example.com".to_string())));
}

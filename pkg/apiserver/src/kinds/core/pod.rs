//! Pods: defaults, validation, field selectors and graceful deletion.

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::podspec::{default_pod_spec, validate_pod_spec};
use crate::meta::get_path;
use crate::registry::Strategy;

/// The Pod strategy (upstream `pkg/registry/core/pod/strategy.go`).
pub struct PodStrategy;

fn str_at(obj: &Value, path: &[&str]) -> String {
    get_path(obj, path)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

impl Strategy for PodStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec") {
            default_pod_spec(spec);
        }
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        // A new pod is Pending with its QoS class; the kubelet writes the rest.
        let qos = qos_class(obj);
        obj["status"] = json!({"phase": "Pending", "qosClass": qos});
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        match obj.get("spec") {
            Some(spec) => validate_pod_spec(spec, &Path::new("spec")),
            None => vec![FieldError::required(
                &Path::new("spec").child("containers"),
                "",
            )],
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        // Most of a pod's spec is immutable; upstream lists what may change.
        let strip = |v: &Value| {
            let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
            for list in ["containers", "initContainers"] {
                if let Some(Value::Array(cs)) = s.get_mut(list) {
                    for c in cs {
                        if let Some(o) = c.as_object_mut() {
                            o.remove("image");
                            o.remove("resources");
                        }
                    }
                }
            }
            if let Some(o) = s.as_object_mut() {
                o.remove("activeDeadlineSeconds");
                o.remove("tolerations");
                o.remove("terminationGracePeriodSeconds");
                o.remove("schedulingGates");
            }
            s
        };
        if strip(new) != strip(old) {
            errs.push(FieldError::forbidden(
                &Path::new("spec"),
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ));
        }
        errs
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let host_network = get_path(obj, &["spec", "hostNetwork"])
            .and_then(Value::as_bool)
            .unwrap_or(false);
        vec![
            ("spec.nodeName", str_at(obj, &["spec", "nodeName"])),
            (
                "spec.restartPolicy",
                str_at(obj, &["spec", "restartPolicy"]),
            ),
            (
                "spec.schedulerName",
                str_at(obj, &["spec", "schedulerName"]),
            ),
            (
                "spec.serviceAccountName",
                str_at(obj, &["spec", "serviceAccountName"]),
            ),
            ("spec.hostNetwork", host_network.to_string()),
            ("status.phase", str_at(obj, &["status", "phase"])),
            ("status.podIP", str_at(obj, &["status", "podIP"])),
            (
                "status.nominatedNodeName",
                str_at(obj, &["status", "nominatedNodeName"]),
            ),
        ]
    }

    fn graceful_delete(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        // Unscheduled and finished pods have no kubelet to wait for.
        let node = str_at(obj, &["spec", "nodeName"]);
        let phase = str_at(obj, &["status", "phase"]);
        if node.is_empty() || phase == "Failed" || phase == "Succeeded" {
            return Some(0);
        }
        let default = get_path(obj, &["spec", "terminationGracePeriodSeconds"])
            .and_then(Value::as_i64)
            .unwrap_or(30);
        Some(requested.unwrap_or(default).max(0))
    }
}

/// Upstream's QoS class from container requests and limits.
pub fn qos_class(pod: &Value) -> &'static str {
    let containers = get_path(pod, &["spec", "containers"]).and_then(Value::as_array);
    let Some(containers) = containers else {
        return "BestEffort";
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let req = get_path(c, &["resources", "requests"]).and_then(Value::as_object);
        let lim = get_path(c, &["resources", "limits"]).and_then(Value::as_object);
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(res));
            let r = req.and_then(|r| r.get(res)).or(l);
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_classes_follow_requests_and_limits() {
        let pod = |res: Value| json!({"spec": {"containers": [{"name": "a", "resources": res}]}});
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&pod(json!({"requests": {"cpu": "1"}}))),
            "Burstable"
        );
    }

    #[test]
    fn unscheduled_pods_delete_at_once_and_bound_pods_gracefully() {
        let s = PodStrategy;
        assert_eq!(s.graceful_delete(&json!({"spec": {}}), None), Some(0));
        let bound = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30}, "status": {"phase": "Running"}});
        assert_eq!(s.graceful_delete(&bound, None), Some(30));
        assert_eq!(s.graceful_delete(&bound, Some(0)), Some(0));
    }
}

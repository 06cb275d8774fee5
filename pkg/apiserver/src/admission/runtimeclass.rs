//! Upstream's RuntimeClass admission plugin for pods being created: a pod naming a
//! RuntimeClass gets the class's `overhead` and its `scheduling` (node selector and
//! tolerations); a pod naming a class that does not exist, or setting an overhead the
//! class does not define, is refused (403).

use serde_json::{Map, Value, json};

use crate::kinds::validation::quantity_eq;

/// The RuntimeClass a pod names, if it names one.
pub fn class_name(pod: &Value) -> Option<&str> {
    pod.pointer("/spec/runtimeClassName")
        .and_then(Value::as_str)
}

/// Why a pod naming `name` is refused when no such RuntimeClass exists.
pub fn not_found(name: &str) -> String {
    format!("pod rejected: RuntimeClass \"{name}\" not found")
}

const OVERHEAD_MISMATCH: &str =
    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead";

/// The mutating half: sets the pod's overhead and merges the class's scheduling into
/// the pod. `class` is the RuntimeClass the pod names (None: it names none). The error
/// is the reason of a 403.
pub fn admit(pod: &mut Value, class: Option<&Value>) -> Result<(), String> {
    let Some(class) = class else {
        return Ok(());
    };
    if let Some(overhead) = class
        .pointer("/overhead/podFixed")
        .filter(|o| o.is_object())
    {
        match pod.pointer("/spec/overhead") {
            Some(have) if !have.is_null() && !same_resources(have, overhead) => {
                return Err(OVERHEAD_MISMATCH.into());
            }
            _ => pod["spec"]["overhead"] = overhead.clone(),
        }
    }
    let Some(scheduling) = class.get("scheduling").filter(|s| s.is_object()) else {
        return Ok(());
    };
    if let Some(selector) = scheduling.get("nodeSelector").and_then(Value::as_object) {
        let mut merged = pod
            .pointer("/spec/nodeSelector")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (key, want) in selector {
            let want = want.as_str().unwrap_or_default();
            match merged.get(key).and_then(Value::as_str) {
                Some(have) if have != want => {
                    return Err(format!(
                        "conflict: runtimeClass.scheduling.nodeSelector[{key}] = {want}; pod.spec.nodeSelector[{key}] = {have}"
                    ));
                }
                _ => {
                    merged.insert(key.clone(), json!(want));
                }
            }
        }
        if !merged.is_empty() {
            pod["spec"]["nodeSelector"] = Value::Object(merged);
        }
    }
    if let Some(extra) = scheduling.get("tolerations").and_then(Value::as_array) {
        let mut tolerations = pod
            .pointer("/spec/tolerations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for t in extra {
            if !tolerations.iter().any(|have| covers(have, t)) {
                tolerations.push(t.clone());
            }
        }
        if !tolerations.is_empty() {
            pod["spec"]["tolerations"] = Value::Array(tolerations);
        }
    }
    Ok(())
}

/// The validating half (after the mutating webhooks): the pod's overhead must be the
/// class's, and a pod whose class defines none may not set one.
pub fn validate(pod: &Value, class: Option<&Value>) -> Result<(), String> {
    let have = pod.pointer("/spec/overhead").filter(|o| !o.is_null());
    match class.and_then(|c| c.pointer("/overhead/podFixed").filter(|o| o.is_object())) {
        Some(want) => match have {
            Some(h) if same_resources(h, want) => Ok(()),
            _ => Err(OVERHEAD_MISMATCH.into()),
        },
        None if have.is_some() => Err(
            "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"
                .into(),
        ),
        None => Ok(()),
    }
}

/// Whether two resource lists hold the same quantities (`1000m` equals `1`).
fn same_resources(a: &Value, b: &Value) -> bool {
    let empty = Map::new();
    let a = a.as_object().unwrap_or(&empty);
    let b = b.as_object().unwrap_or(&empty);
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.get(k).is_some_and(|w| {
                quantity_eq(
                    v.as_str().unwrap_or_default(),
                    w.as_str().unwrap_or_default(),
                )
            })
        })
}

/// Whether toleration `t` already tolerates everything `u` does (upstream keeps only the
/// wider of two such tolerations when it merges a class's into a pod's).
fn covers(t: &Value, u: &Value) -> bool {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    if t == u {
        return true;
    }
    let effect = s(t, "effect");
    if !effect.is_empty() && effect != s(u, "effect") {
        return false;
    }
    if effect == "NoExecute"
        && let Some(limit) = t.get("tolerationSeconds").and_then(Value::as_i64)
    {
        match u.get("tolerationSeconds").and_then(Value::as_i64) {
            Some(other) if other <= limit => {}
            _ => return false,
        }
    }
    match s(t, "operator").as_str() {
        "Exists" => s(t, "key").is_empty() || s(t, "key") == s(u, "key"),
        _ => {
            s(u, "operator") != "Exists"
                && s(t, "key") == s(u, "key")
                && s(t, "value") == s(u, "value")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class() -> Value {
        json!({"handler": "runc", "overhead": {"podFixed": {"cpu": "250m", "memory": "120Mi"}},
            "scheduling": {"nodeSelector": {"runtime": "gvisor"},
                "tolerations": [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}]}})
    }

    #[test]
    fn a_pod_gets_the_class_overhead_and_scheduling() {
        let mut pod = json!({"spec": {"runtimeClassName": "g", "nodeSelector": {"zone": "a"},
            "tolerations": [{"key": "other", "operator": "Exists"}]}});
        admit(&mut pod, Some(&class())).unwrap();
        assert_eq!(
            pod["spec"]["overhead"],
            json!({"cpu": "250m", "memory": "120Mi"})
        );
        assert_eq!(
            pod["spec"]["nodeSelector"],
            json!({"zone": "a", "runtime": "gvisor"})
        );
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(validate(&pod, Some(&class())), Ok(()));
        // Merged again, nothing doubles.
        admit(&mut pod, Some(&class())).unwrap();
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn pods_are_admitted_against_their_runtime_class() {
        let t = crate::test_util::TestApiServer::new().await;
        let api = t.api();
        let pods = "/api/v1/namespaces/default/pods";
        let pod = |name: &str, class: &str| {
            json!({"metadata": {"name": name}, "spec": {"runtimeClassName": class,
                "containers": [{"name": "c", "image": "busybox"}]}})
        };
        let (code, v) = api.call("POST", pods, &pod("p1", "missing")).await;
        assert_eq!(code, 403, "{v}");
        assert_eq!(
            v["message"],
            "pods \"p1\" is forbidden: pod rejected: RuntimeClass \"missing\" not found"
        );
        let mut rc = class();
        rc["metadata"] = json!({"name": "gvisor"});
        api.create("/apis/node.k8s.io/v1/runtimeclasses", rc).await;
        let created = api.create(pods, pod("p2", "gvisor")).await;
        assert_eq!(created["spec"]["overhead"]["cpu"], "250m", "{created}");
        assert_eq!(created["spec"]["nodeSelector"]["runtime"], "gvisor");
    }

    #[test]
    fn conflicts_and_foreign_overheads_are_refused() {
        let mut pod = json!({"spec": {"nodeSelector": {"runtime": "kata"}}});
        assert_eq!(
            admit(&mut pod, Some(&class())).unwrap_err(),
            "conflict: runtimeClass.scheduling.nodeSelector[runtime] = gvisor; pod.spec.nodeSelector[runtime] = kata"
        );
        let mut pod = json!({"spec": {"overhead": {"cpu": "1"}}});
        assert_eq!(
            admit(&mut pod, Some(&class())).unwrap_err(),
            OVERHEAD_MISMATCH
        );
        // The same overhead written another way is the class's.
        let same = json!({"spec": {"overhead": {"cpu": "0.25", "memory": "120Mi"}}});
        assert_eq!(validate(&same, Some(&class())), Ok(()));
        let plain = json!({"handler": "runc"});
        assert!(
            validate(&same, Some(&plain))
                .unwrap_err()
                .contains("without corresponding RuntimeClass")
        );
        assert_eq!(not_found("x"), "pod rejected: RuntimeClass \"x\" not found");
    }
}

//! `pods/resize` (InPlacePodVerticalScaling, GA in 1.35; upstream's `ResizeStrategy`,
//! `dropNonResizeUpdates` and `ValidatePodResize`): a write through it changes only the
//! containers' resources and resize policies; everything else comes from the stored pod.
//! The QoS class must stay, requests and limits may not be removed, only cpu and memory
//! change, and a node whose kubelet does not report container resources (one without
//! resize support, as k1s's is) refuses the resize of a running pod.

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use super::podspec::qos_class;
use crate::kinds::validation::{Fields, semantic_eq};

const MIRROR_POD: &str = "kubernetes.io/config.mirror";

/// `dropNonResizeUpdates`: the stored pod with the new resources and resize policies of
/// the containers the new pod names (a container renamed or reordered is left as it
/// was, and validation reports nothing for it).
pub(crate) fn drop_non_resize_updates(new: &mut Value, old: &Value) {
    let mut pod = old.clone();
    for list in ["containers", "initContainers"] {
        let incoming = new.f("spec").a(list).to_vec();
        let Some(stored) = pod
            .get_mut("spec")
            .and_then(|s| s.get_mut(list))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in stored.iter_mut() {
            let name = c.s("name").to_string();
            let Some(n) = incoming.iter().find(|n| n.s("name") == name) else {
                continue;
            };
            let Some(c) = c.as_object_mut() else {
                continue;
            };
            for key in ["resources", "resizePolicy"] {
                match n.get(key) {
                    Some(v) => {
                        c.insert(key.into(), v.clone());
                    }
                    None => {
                        c.remove(key);
                    }
                }
            }
        }
    }
    // What the request may set on the object's metadata stays its own: the registry
    // checks the resourceVersion precondition and records managedFields.
    for key in ["resourceVersion", "managedFields"] {
        crate::meta::set_meta(&mut pod, key, new.f("metadata").get(key).cloned());
    }
    *new = pod;
}

/// `isPodResizeRequestSupported`: a running container whose status has no `resources`
/// means the node's kubelet does not resize in place.
fn node_supports_resize(pod: &Value) -> bool {
    pod.f("status")
        .a("containerStatuses")
        .iter()
        .find(|s| s.f("state").has("running"))
        .is_none_or(|s| s.has("resources"))
}

/// Whether a resource list lost an entry.
fn removed(new: &Value, old: &Value) -> bool {
    let new = new.as_object();
    old.as_object()
        .into_iter()
        .flatten()
        .any(|(k, _)| !new.is_some_and(|n| n.contains_key(k)))
}

/// A container with its cpu and memory put back to the stored values (and its resize
/// policy, which a resize may change): what must then equal the stored container.
fn without_cpu_memory(new: &Value, old: &Value) -> Value {
    let mut c = new.clone();
    let Some(obj) = c.as_object_mut() else {
        return c;
    };
    let mut resources = serde_json::Map::new();
    for list in ["limits", "requests"] {
        let n = new.f("resources").f(list);
        let o = old.f("resources").f(list);
        if n.is_null() && o.is_null() {
            continue;
        }
        let mut m = n.as_object().cloned().unwrap_or_default();
        for r in ["cpu", "memory"] {
            m.remove(r);
            if let Some(v) = o.get(r) {
                m.insert(r.into(), v.clone());
            }
        }
        resources.insert(list.into(), Value::Object(m));
    }
    if let Some(claims) = new.f("resources").get("claims") {
        resources.insert("claims".into(), claims.clone());
    }
    obj.insert("resources".into(), Value::Object(resources));
    match old.get("resizePolicy") {
        Some(p) => {
            obj.insert("resizePolicy".into(), p.clone());
        }
        None => {
            obj.remove("resizePolicy");
        }
    }
    c
}

/// The checks of `ValidatePodResize` beyond the pod's own validation (which the caller
/// runs): `new` is the stored pod with the new container resources.
pub(crate) fn validate_resize(new: &Value, old: &Value) -> ErrorList {
    if old.f("metadata").f("annotations").get(MIRROR_POD).is_some() {
        return vec![FieldError::forbidden(
            &Path::root(),
            "static pods cannot be resized",
        )];
    }
    if old.f("spec").f("os").s("name") == "windows" {
        return vec![FieldError::forbidden(
            &Path::root(),
            "windows pods cannot be resized",
        )];
    }
    let spec_path = Path::new("spec");
    let mut errs = ErrorList::new();
    let old_qos = match old.f("status").s("qosClass") {
        "" => qos_class(old),
        q => q,
    };
    if old_qos != qos_class(new) {
        errs.push(FieldError::invalid(
            &spec_path,
            new.f("status").s("qosClass"),
            "Pod QOS Class may not change as a result of resizing",
        ));
    }
    if !node_supports_resize(old) {
        errs.push(FieldError::forbidden(
            &spec_path,
            "Pod running on node without support for resize",
        ));
    }
    let mut other_changes = false;
    for list in ["initContainers", "containers"] {
        let news = new.f("spec").a(list);
        let olds = old.f("spec").a(list);
        for (i, (n, o)) in news.iter().zip(olds).enumerate() {
            let p = spec_path.child(list).index(i).child("resources");
            if removed(
                n.f("resources").f("requests"),
                o.f("resources").f("requests"),
            ) {
                errs.push(FieldError::forbidden(
                    &p.child("requests"),
                    "resource requests cannot be removed",
                ));
            }
            if removed(n.f("resources").f("limits"), o.f("resources").f("limits")) {
                errs.push(FieldError::forbidden(
                    &p.child("limits"),
                    "resource limits cannot be removed",
                ));
            }
            let rest = without_cpu_memory(n, o);
            if list == "containers" {
                other_changes |= !semantic_eq(&rest, o);
                continue;
            }
            let cpath = spec_path.child(list).index(i);
            if !semantic_eq(&rest, o) {
                errs.push(FieldError::forbidden(
                    &cpath,
                    "only cpu and memory resources for init or sidecar containers are mutable",
                ));
            }
            let sidecar = n.s("restartPolicy") == "Always";
            let restarts = n
                .a("resizePolicy")
                .iter()
                .any(|p| p.s("restartPolicy") == "RestartContainer");
            if !sidecar && restarts && !semantic_eq(n, o) {
                errs.push(FieldError::forbidden(
                    &cpath,
                    "non-sidecar init containers with a resize policy of RestartContainer cannot be resized",
                ));
            }
        }
    }
    if other_changes {
        errs.push(FieldError::forbidden(
            &spec_path,
            "only cpu and memory resources are mutable",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_util::texts;

    fn pod(resources: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "default", "resourceVersion": "5"},
               "spec": {"containers": [{"name": "c", "image": "nginx", "resources": resources}]},
               "status": {"phase": "Pending", "qosClass": "Burstable"}})
    }

    #[test]
    fn only_resources_and_resize_policies_come_through() {
        let old = pod(json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}}));
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("busybox");
        new["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("150m");
        new["spec"]["containers"][0]["resizePolicy"] =
            json!([{"resourceName": "cpu", "restartPolicy": "NotRequired"}]);
        new["spec"]["nodeName"] = json!("elsewhere");
        new["metadata"]["resourceVersion"] = json!("6");
        drop_non_resize_updates(&mut new, &old);
        assert_eq!(new["spec"]["containers"][0]["image"], "nginx");
        assert_eq!(
            new["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "150m"
        );
        assert_eq!(
            new["spec"]["containers"][0]["resizePolicy"][0]["resourceName"],
            "cpu"
        );
        assert!(new["spec"].get("nodeName").is_none());
        assert_eq!(new["metadata"]["resourceVersion"], "6");
        assert!(validate_resize(&new, &old).is_empty());
    }

    #[test]
    fn the_qos_class_stays_and_nothing_is_removed() {
        let old = pod(json!({"requests": {"cpu": "100m", "memory": "64Mi"},
                             "limits": {"cpu": "200m", "memory": "128Mi"}}));
        let mut guaranteed = old.clone();
        guaranteed["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}});
        assert_eq!(
            texts(validate_resize(&guaranteed, &old)),
            [
                "spec: Invalid value: \"Burstable\": Pod QOS Class may not change as a result of resizing"
            ]
        );
        let mut no_limit = old.clone();
        no_limit["spec"]["containers"][0]["resources"]["limits"] = json!({"cpu": "200m"});
        assert_eq!(
            texts(validate_resize(&no_limit, &old)),
            ["spec.containers[0].resources.limits: Forbidden: resource limits cannot be removed"]
        );
        let mut storage = old.clone();
        storage["spec"]["containers"][0]["resources"]["requests"]["ephemeral-storage"] =
            json!("1Gi");
        assert_eq!(
            texts(validate_resize(&storage, &old)),
            ["spec: Forbidden: only cpu and memory resources are mutable"]
        );
    }

    #[test]
    fn running_pods_on_nodes_without_resize_support_are_refused() {
        let mut old = pod(json!({"requests": {"cpu": "100m"}}));
        old["status"]["containerStatuses"] = json!([{"name": "c", "state": {"running": {}}}]);
        let mut new = old.clone();
        new["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("150m");
        assert_eq!(
            texts(validate_resize(&new, &old)),
            ["spec: Forbidden: Pod running on node without support for resize"]
        );
        old["status"]["containerStatuses"][0]["resources"] = json!({"requests": {"cpu": "100m"}});
        assert!(validate_resize(&new, &old).is_empty());
        old["metadata"]["annotations"] = json!({MIRROR_POD: "x"});
        let t = texts(validate_resize(&new, &old));
        assert!(
            t.len() == 1 && t[0].ends_with("Forbidden: static pods cannot be resized"),
            "{t:?}"
        );
    }
}

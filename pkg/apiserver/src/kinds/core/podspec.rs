//! Defaults and validation of a PodSpec, shared by Pods and every pod template.

use k1s_apimachinery::validation::{is_dns1123_label, is_valid_port_num};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use crate::meta::default_path;

/// Upstream's `SetDefaults_PodSpec` and the container defaults.
pub fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default_path(spec, &["restartPolicy"], json!("Always"));
    default_path(spec, &["dnsPolicy"], json!("ClusterFirst"));
    default_path(spec, &["schedulerName"], json!("default-scheduler"));
    default_path(spec, &["terminationGracePeriodSeconds"], json!(30));
    default_path(spec, &["securityContext"], json!({}));
    if spec.get("enableServiceLinks").is_none() {
        spec["enableServiceLinks"] = json!(true);
    }
    if spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
        && spec.get("serviceAccount").is_none()
    {
        spec["serviceAccount"] = spec["serviceAccountName"].clone();
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(Value::Array(cs)) = spec.get_mut(list) {
            for c in cs {
                default_container(c);
            }
        }
    }
    if let Some(Value::Array(vols)) = spec.get_mut("volumes") {
        for v in vols {
            default_volume(v);
        }
    }
}

/// Whether an image reference names no tag or `latest` (pulled Always by default).
fn is_latest(image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or(image);
    if image.contains('@') {
        return false;
    }
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        None => true,
        Some((_, tag)) => tag == "latest",
    }
}

fn default_container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    default_path(
        c,
        &["terminationMessagePath"],
        json!("/dev/termination-log"),
    );
    default_path(c, &["terminationMessagePolicy"], json!("File"));
    if c.get("imagePullPolicy").is_none() {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        let policy = if is_latest(image) {
            "Always"
        } else {
            "IfNotPresent"
        };
        c["imagePullPolicy"] = json!(policy);
    }
    default_path(c, &["resources"], json!({}));
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports {
            default_path(p, &["protocol"], json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) {
            default_path(p, &["timeoutSeconds"], json!(1));
            default_path(p, &["periodSeconds"], json!(10));
            default_path(p, &["successThreshold"], json!(1));
            default_path(p, &["failureThreshold"], json!(3));
            if let Some(h) = p.get_mut("httpGet").filter(|h| h.is_object()) {
                default_path(h, &["path"], json!("/"));
                default_path(h, &["scheme"], json!("HTTP"));
            }
        }
    }
}

fn default_volume(v: &mut Value) {
    let Some(o) = v.as_object() else { return };
    let sources = [
        "secret",
        "configMap",
        "emptyDir",
        "hostPath",
        "projected",
        "downwardAPI",
        "persistentVolumeClaim",
        "nfs",
        "csi",
        "ephemeral",
        "image",
    ];
    if !sources.iter().any(|s| o.contains_key(*s)) {
        v["emptyDir"] = json!({});
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(source).filter(|s| s.is_object()) {
            default_path(s, &["defaultMode"], json!(420));
        }
    }
    if let Some(h) = v.get_mut("hostPath").filter(|h| h.is_object()) {
        default_path(h, &["type"], json!(""));
    }
}

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// Validates a PodSpec at `path` (upstream `ValidatePodSpec`, its common checks).
pub fn validate_pod_spec(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let containers = spec.get("containers").and_then(Value::as_array);
    match containers {
        None => errs.push(FieldError::required(&path.child("containers"), "")),
        Some(cs) if cs.is_empty() => errs.push(FieldError::required(&path.child("containers"), "")),
        Some(_) => {}
    }
    let mut names: Vec<String> = Vec::new();
    let mut volume_names: Vec<String> = Vec::new();
    if let Some(vols) = spec.get("volumes").and_then(Value::as_array) {
        for (i, v) in vols.iter().enumerate() {
            let p = path.child("volumes").index(i);
            let name = v.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                errs.push(FieldError::required(&p.child("name"), ""));
            } else {
                for msg in is_dns1123_label(name) {
                    errs.push(FieldError::invalid(&p.child("name"), json!(name), msg));
                }
                if volume_names.iter().any(|n| n == name) {
                    errs.push(FieldError::duplicate(&p.child("name"), json!(name)));
                }
                volume_names.push(name.to_string());
            }
        }
    }
    for list in ["initContainers", "containers"] {
        let Some(cs) = spec.get(list).and_then(Value::as_array) else {
            continue;
        };
        for (i, c) in cs.iter().enumerate() {
            let p = path.child(list).index(i);
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                errs.push(FieldError::required(&p.child("name"), ""));
            } else {
                for msg in is_dns1123_label(name) {
                    errs.push(FieldError::invalid(&p.child("name"), json!(name), msg));
                }
                if names.iter().any(|n| n == name) {
                    errs.push(FieldError::duplicate(&p.child("name"), json!(name)));
                }
                names.push(name.to_string());
            }
            if c.get("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .is_empty()
            {
                errs.push(FieldError::required(&p.child("image"), ""));
            }
            if let Some(pp) = c.get("imagePullPolicy").and_then(Value::as_str)
                && !PULL_POLICIES.contains(&pp)
            {
                errs.push(FieldError::not_supported(
                    &p.child("imagePullPolicy"),
                    json!(pp),
                    PULL_POLICIES,
                ));
            }
            if let Some(ports) = c.get("ports").and_then(Value::as_array) {
                for (j, port) in ports.iter().enumerate() {
                    let pp = p.child("ports").index(j);
                    match port.get("containerPort").and_then(Value::as_i64) {
                        None => errs.push(FieldError::required(&pp.child("containerPort"), "")),
                        Some(n) => {
                            for msg in is_valid_port_num(n) {
                                errs.push(FieldError::invalid(
                                    &pp.child("containerPort"),
                                    json!(n),
                                    msg,
                                ));
                            }
                        }
                    }
                    if let Some(proto) = port.get("protocol").and_then(Value::as_str)
                        && !PROTOCOLS.contains(&proto)
                    {
                        errs.push(FieldError::not_supported(
                            &pp.child("protocol"),
                            json!(proto),
                            PROTOCOLS,
                        ));
                    }
                }
            }
            if let Some(mounts) = c.get("volumeMounts").and_then(Value::as_array) {
                for (j, m) in mounts.iter().enumerate() {
                    let mp = p.child("volumeMounts").index(j);
                    let vname = m.get("name").and_then(Value::as_str).unwrap_or("");
                    if vname.is_empty() {
                        errs.push(FieldError::required(&mp.child("name"), ""));
                    } else if !volume_names.iter().any(|n| n == vname) {
                        errs.push(FieldError::not_found(&mp.child("name"), json!(vname)));
                    }
                    if m.get("mountPath")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
                    {
                        errs.push(FieldError::required(&mp.child("mountPath"), ""));
                    }
                }
            }
        }
    }
    if let Some(rp) = spec.get("restartPolicy").and_then(Value::as_str)
        && !RESTART_POLICIES.contains(&rp)
    {
        errs.push(FieldError::not_supported(
            &path.child("restartPolicy"),
            json!(rp),
            RESTART_POLICIES,
        ));
    }
    if let Some(dp) = spec.get("dnsPolicy").and_then(Value::as_str)
        && !DNS_POLICIES.contains(&dp)
    {
        errs.push(FieldError::not_supported(
            &path.child("dnsPolicy"),
            json!(dp),
            DNS_POLICIES,
        ));
    }
    if let Some(g) = spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        && g < 0
    {
        errs.push(FieldError::invalid(
            &path.child("terminationGracePeriodSeconds"),
            json!(g),
            "must be greater than or equal to 0",
        ));
    }
    errs
}

/// Validates a PodTemplateSpec at `path` (upstream `ValidatePodTemplateSpec`): the
/// template's labels and annotations, and its pod spec. Every kind that embeds a pod
/// template (ReplicationController, PodTemplate, the apps and batch workloads) calls
/// this.
pub fn validate_pod_template_spec(template: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let meta = template.get("metadata").unwrap_or(&Value::Null);
    errs.extend(k1s_apimachinery::meta::validate_labels(
        meta.get("labels"),
        &path.child("labels"),
    ));
    errs.extend(k1s_apimachinery::meta::validate_annotations(
        meta.get("annotations"),
        &path.child("annotations"),
    ));
    let spec = template.get("spec").unwrap_or(&Value::Null);
    errs.extend(validate_pod_spec(spec, &path.child("spec")));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_and_untagged_images_pull_always() {
        // Upstream: no tag or :latest → Always, anything else → IfNotPresent.
        for (image, policy) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.25", "IfNotPresent"),
            ("registry:5000/nginx", "Always"),
            ("registry:5000/nginx:1", "IfNotPresent"),
            ("nginx@sha256:abc", "IfNotPresent"),
        ] {
            let mut c = json!({"name": "c", "image": image});
            default_container(&mut c);
            assert_eq!(c["imagePullPolicy"], json!(policy), "{image}");
        }
    }

    #[test]
    fn missing_image_and_duplicate_names_are_reported() {
        let spec = json!({"containers": [{"name": "a"}, {"name": "a", "image": "x"}]});
        let errs = validate_pod_spec(&spec, &Path::new("spec"));
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            text.contains(&"spec.containers[0].image: Required value".to_string()),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("spec.containers[1].name: Duplicate value")),
            "{text:?}"
        );
    }
}

//! Defaults of a PodSpec (upstream `SetDefaults_PodSpec` and the defaulters of everything
//! inside it), the Pod-only ones (`SetDefaults_Pod`), and the label-key merge a Pod
//! create applies to its affinity terms and spread constraints.

use serde_json::{Value, json};

use super::resources::{
    aggregate_containers, is_huge_page_resource_name, is_overcommit_allowed, resource_list,
};
use super::volume::SOURCES;
use crate::kinds::validation::Fields;
use crate::meta::default_path;

/// Sets a plain (non-pointer) field to its default when it is absent or holds Go's zero
/// value (`""`, `0`): upstream's defaulters test `== ""`/`== 0`, so an explicit empty
/// value (a Helm template's `imagePullPolicy: ""`) is defaulted too.
fn default_zero(obj: &mut Value, key: &str, value: Value) {
    let Some(o) = obj.as_object_mut() else { return };
    let zero = match o.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    };
    if zero {
        o.insert(key.to_string(), value);
    }
}

/// Upstream's `SetDefaults_PodSpec` and the defaults of the containers, probes, volumes
/// and field selectors inside it (what a pod template gets).
pub fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default_zero(spec, "restartPolicy", json!("Always"));
    default_zero(spec, "dnsPolicy", json!("ClusterFirst"));
    default_zero(spec, "schedulerName", json!("default-scheduler"));
    default_path(spec, &["terminationGracePeriodSeconds"], json!(30));
    default_path(spec, &["securityContext"], json!({}));
    // The deprecated `serviceAccount` and `serviceAccountName` convert into each other.
    let sa_name = spec.s("serviceAccountName").to_string();
    let sa = spec.s("serviceAccount").to_string();
    if sa_name.is_empty() && !sa.is_empty() {
        spec["serviceAccountName"] = json!(sa);
    } else if !sa_name.is_empty() && spec.get("serviceAccount").is_none() {
        spec["serviceAccount"] = json!(sa_name);
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

/// `SetDefaults_Pod`: what a Pod gets beyond its spec's defaults (templates keep these
/// unset so that controllers' copies stay comparable).
pub(crate) fn default_pod(pod: &mut Value) {
    if !pod.is_object() {
        return;
    }
    if !pod.get("spec").is_some_and(Value::is_object) {
        pod["spec"] = json!({});
    }
    let spec = &mut pod["spec"];
    default_pod_spec(spec);
    // Requests default to limits, container by container.
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(cs)) = spec.get_mut(list) {
            for c in cs {
                let limits = c.f("resources").f("limits").clone();
                let Some(limits) = limits.as_object().filter(|l| !l.is_empty()) else {
                    continue;
                };
                let requests = &mut c["resources"]["requests"];
                if !requests.is_object() {
                    *requests = json!({});
                }
                for (k, v) in limits {
                    if requests.get(k).is_none() {
                        requests[k] = v.clone();
                    }
                }
            }
        }
    }
    default_pod_level_requests(spec);
    if spec.get("enableServiceLinks").is_none() {
        spec["enableServiceLinks"] = json!(true);
    }
    // A Pod's negative grace period converts to 1 (`Convert_v1_Pod_To_core_Pod`).
    if spec
        .i("terminationGracePeriodSeconds")
        .is_some_and(|g| g < 0)
    {
        spec["terminationGracePeriodSeconds"] = json!(1);
    }
    // With host networking every container port is a host port.
    if spec.b("hostNetwork") {
        for list in ["containers", "initContainers"] {
            if let Some(Value::Array(cs)) = spec.get_mut(list) {
                for c in cs {
                    if let Some(Value::Array(ports)) = c.get_mut("ports") {
                        for p in ports {
                            if p.i("hostPort").unwrap_or(0) == 0
                                && let Some(cp) = p.i("containerPort")
                            {
                                p["hostPort"] = json!(cp);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `defaultPodRequests`: with pod-level limits, pod-level requests default to the
/// containers' aggregate requests, or to the limits.
fn default_pod_level_requests(spec: &mut Value) {
    let limits = resource_list(spec.f("resources").f("limits"));
    if limits.is_empty() {
        return;
    }
    let aggregate = aggregate_containers(spec, "requests");
    let mut requests = spec
        .f("resources")
        .f("requests")
        .as_object()
        .cloned()
        .unwrap_or_default();
    let supported = |k: &str| k == "cpu" || k == "memory" || is_huge_page_resource_name(k);
    for (k, q) in &aggregate {
        if !requests.contains_key(k) && supported(k) && is_overcommit_allowed(k) {
            requests.insert(k.clone(), json!(q.to_string()));
        }
    }
    if let Some(pod_limits) = spec.f("resources").f("limits").as_object() {
        for (k, v) in pod_limits {
            if !requests.contains_key(k) && supported(k) {
                requests.insert(k.clone(), v.clone());
            }
        }
    }
    if !requests.is_empty() {
        spec["resources"]["requests"] = Value::Object(requests);
    }
}

/// Whether an image reference names no tag or `latest` (pulled Always by default).
pub(crate) fn is_latest(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => true,
        Some((_, tag)) => tag == "latest",
    }
}

fn default_http_get(h: &mut Value) {
    if let Some(h) = h.get_mut("httpGet").filter(|h| h.is_object()) {
        default_zero(h, "path", json!("/"));
        default_zero(h, "scheme", json!("HTTP"));
    }
}

fn default_field_ref(holder: &mut Value) {
    if let Some(f) = holder.get_mut("fieldRef").filter(|f| f.is_object()) {
        default_zero(f, "apiVersion", json!("v1"));
    }
}

/// The v1 defaults of one container (init, regular or ephemeral): termination message,
/// pull policy by image tag, resources, port protocols, probe and lifecycle handlers,
/// and the apiVersion of env fieldRefs.
pub(super) fn default_container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    default_zero(c, "terminationMessagePath", json!("/dev/termination-log"));
    default_zero(c, "terminationMessagePolicy", json!("File"));
    if c.s("imagePullPolicy").is_empty() {
        let policy = if is_latest(c.s("image")) {
            "Always"
        } else {
            "IfNotPresent"
        };
        c["imagePullPolicy"] = json!(policy);
    }
    default_path(c, &["resources"], json!({}));
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports {
            default_zero(p, "protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) {
            default_zero(p, "timeoutSeconds", json!(1));
            default_zero(p, "periodSeconds", json!(10));
            default_zero(p, "successThreshold", json!(1));
            default_zero(p, "failureThreshold", json!(3));
            default_http_get(p);
        }
    }
    if let Some(l) = c.get_mut("lifecycle").filter(|l| l.is_object()) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = l.get_mut(hook).filter(|h| h.is_object()) {
                default_http_get(h);
            }
        }
    }
    if let Some(Value::Array(env)) = c.get_mut("env") {
        for e in env {
            if let Some(from) = e.get_mut("valueFrom").filter(|f| f.is_object()) {
                default_field_ref(from);
            }
        }
    }
}

fn default_downward_items(source: &mut Value) {
    if let Some(Value::Array(items)) = source.get_mut("items") {
        for item in items {
            default_field_ref(item);
        }
    }
}

fn default_volume(v: &mut Value) {
    let Some(o) = v.as_object() else { return };
    if !SOURCES
        .iter()
        .any(|(s, _)| o.get(*s).is_some_and(|x| !x.is_null()))
    {
        v["emptyDir"] = json!({});
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(source).filter(|s| s.is_object()) {
            default_path(s, &["defaultMode"], json!(420));
        }
    }
    if let Some(d) = v.get_mut("downwardAPI").filter(|s| s.is_object()) {
        default_downward_items(d);
    }
    if let Some(Value::Array(sources)) = v.get_mut("projected").and_then(|p| p.get_mut("sources")) {
        for s in sources {
            if let Some(d) = s.get_mut("downwardAPI").filter(|d| d.is_object()) {
                default_downward_items(d);
            }
            if let Some(t) = s.get_mut("serviceAccountToken").filter(|t| t.is_object()) {
                default_path(t, &["expirationSeconds"], json!(3600));
            }
        }
    }
    if let Some(h) = v.get_mut("hostPath").filter(|h| h.is_object()) {
        default_path(h, &["type"], json!(""));
    }
    if let Some(i) = v.get_mut("image").filter(|i| i.is_object())
        && i.s("pullPolicy").is_empty()
    {
        let policy = if is_latest(i.s("reference")) {
            "Always"
        } else {
            "IfNotPresent"
        };
        i["pullPolicy"] = json!(policy);
    }
    if let Some(spec) = v
        .get_mut("ephemeral")
        .and_then(|e| e.get_mut("volumeClaimTemplate"))
        .and_then(|t| t.get_mut("spec"))
        .filter(|s| s.is_object())
    {
        default_path(spec, &["volumeMode"], json!("Filesystem"));
    }
    if let Some(d) = v.get_mut("azureDisk").filter(|d| d.is_object()) {
        default_path(d, &["cachingMode"], json!("ReadWrite"));
        default_path(d, &["fsType"], json!("ext4"));
        default_path(d, &["readOnly"], json!(false));
        default_path(d, &["kind"], json!("Shared"));
    }
    if let Some(i) = v.get_mut("iscsi").filter(|i| i.is_object()) {
        default_zero(i, "iscsiInterface", json!("default"));
    }
    if let Some(r) = v.get_mut("rbd").filter(|r| r.is_object()) {
        default_zero(r, "pool", json!("rbd"));
        default_zero(r, "user", json!("admin"));
        default_zero(r, "keyring", json!("/etc/ceph/keyring"));
    }
    if let Some(s) = v.get_mut("scaleIO").filter(|s| s.is_object()) {
        default_zero(s, "storageMode", json!("ThinProvisioned"));
        default_zero(s, "fsType", json!("xfs"));
    }
}

/// Adds `key In (value)` (or `NotIn` for mismatch keys) to `selector` for each key the
/// pod's labels carry (`applyLabelKeysToLabelSelector`).
fn apply_label_keys(selector: &mut Value, keys: &[Value], op: &str, labels: &Value) {
    for key in keys.iter().filter_map(Value::as_str) {
        let Some(value) = labels.get(key).and_then(Value::as_str) else {
            continue;
        };
        if !selector["matchExpressions"].is_array() {
            selector["matchExpressions"] = json!([]);
        }
        if let Some(exprs) = selector["matchExpressions"].as_array_mut() {
            exprs.push(json!({"key": key, "operator": op, "values": [value]}));
        }
    }
}

fn merge_term(term: &mut Value, labels: &Value) {
    let keys = term.a("matchLabelKeys").to_vec();
    let mismatch = term.a("mismatchLabelKeys").to_vec();
    if (keys.is_empty() && mismatch.is_empty()) || !term.f("labelSelector").is_object() {
        return;
    }
    apply_label_keys(&mut term["labelSelector"], &keys, "In", labels);
    apply_label_keys(&mut term["labelSelector"], &mismatch, "NotIn", labels);
}

/// What a Pod create does with `matchLabelKeys`/`mismatchLabelKeys`
/// (`mutatePodAffinity`, `mutateTopologySpreadConstraints`): the pod's own label values
/// join the selectors.
pub(crate) fn merge_label_keys(pod: &mut Value) {
    let labels = pod.f("metadata").f("labels").clone();
    let spec = &mut pod["spec"];
    for kind in ["podAffinity", "podAntiAffinity"] {
        let Some(a) = spec
            .get_mut("affinity")
            .and_then(|a| a.get_mut(kind))
            .filter(|a| a.is_object())
        else {
            continue;
        };
        if let Some(Value::Array(terms)) =
            a.get_mut("requiredDuringSchedulingIgnoredDuringExecution")
        {
            for t in terms {
                merge_term(t, &labels);
            }
        }
        if let Some(Value::Array(terms)) =
            a.get_mut("preferredDuringSchedulingIgnoredDuringExecution")
        {
            for t in terms {
                if let Some(term) = t.get_mut("podAffinityTerm").filter(|t| t.is_object()) {
                    merge_term(term, &labels);
                }
            }
        }
    }
    if let Some(Value::Array(constraints)) = spec.get_mut("topologySpreadConstraints") {
        for c in constraints {
            let keys = c.a("matchLabelKeys").to_vec();
            if !keys.is_empty() && c.f("labelSelector").is_object() {
                apply_label_keys(&mut c["labelSelector"], &keys, "In", &labels);
            }
        }
    }
}

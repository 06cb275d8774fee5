//! Pods: defaults, validation of create, update and status updates, field selectors and
//! graceful deletion (upstream `pkg/registry/core/pod/strategy.go` and `ValidatePodCreate`,
//! `ValidatePodUpdate`, `ValidatePodStatusUpdate`).

use std::collections::BTreeSet;

use k1s_apimachinery::meta::{FIELD_IMMUTABLE_ERROR_MSG, name_is_dns_subdomain};
use k1s_apimachinery::{ErrorList, FieldError, Path, Status};
use serde_json::{Value, json};

use super::podspec::{
    PodOpts, container_should_restart, default_pod, image_whitespace, is_apparmor_annotation,
    merge_label_keys, qos_class, validate_annotations_match_fields, validate_pod_annotations,
    validate_pod_spec_with, validate_tolerations,
};
use crate::kinds::validation::ip::validate_legacy_ip;
use crate::kinds::validation::{Fields, semantic_eq};
use crate::meta::{self, get_path};
use crate::registry::{Strategy, Subresource};

/// The Pod strategy (upstream `pkg/registry/core/pod/strategy.go`).
pub struct PodStrategy;

fn str_at(obj: &Value, path: &[&str]) -> String {
    get_path(obj, path)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

const MIRROR_POD: &str = "kubernetes.io/config.mirror";

/// The fields a Pod update may change, as upstream's message lists them.
const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `validatePodMetadataAndSpec`: the pod's annotations, its spec as a Pod's, and the
/// image whitespace rule only Pods have.
fn validate_metadata_and_spec(pod: &Value, opts: &PodOpts) -> ErrorList {
    let meta = pod.f("metadata");
    let spec = pod.f("spec");
    let spec_path = Path::new("spec");
    let mut errs = validate_pod_annotations(
        meta.m("annotations"),
        spec,
        &Path::new("metadata").child("annotations"),
        opts,
    );
    errs.extend(validate_pod_spec_with(spec, Some(meta), &spec_path, opts));
    for list in ["containers", "initContainers"] {
        for (i, c) in spec.a(list).iter().enumerate() {
            errs.extend(image_whitespace(c, &spec_path.child(list).index(i)));
        }
    }
    errs
}

/// `ValidatePodCreate`.
fn validate_create(pod: &Value) -> ErrorList {
    let opts = PodOpts {
        resource_is_pod: true,
        ..PodOpts::default()
    };
    let mut errs = validate_metadata_and_spec(pod, &opts);
    let spec = pod.f("spec");
    let path = Path::new("spec");
    if !spec.a("ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("ephemeralContainers"),
            "cannot be set on create",
        ));
    }
    if !spec.s("nodeName").is_empty() && !spec.a("schedulingGates").is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("nodeName"),
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs.extend(validate_annotations_match_fields(
        pod.f("metadata"),
        spec,
        &path,
    ));
    errs
}

/// `ValidatePodSpecificAnnotationUpdates`: AppArmor and mirror-pod annotations are fixed.
fn validate_annotation_updates(new: &Value, old: &Value) -> ErrorList {
    let path = Path::new("metadata").child("annotations");
    let mut errs = ErrorList::new();
    let empty = serde_json::Map::new();
    let new_a = new.f("metadata").m("annotations").unwrap_or(&empty);
    let old_a = old.f("metadata").m("annotations").unwrap_or(&empty);
    for (k, v) in old_a {
        if new_a.get(k) == Some(v) {
            continue;
        }
        if is_apparmor_annotation(k) {
            errs.push(FieldError::forbidden(
                &path.key(k),
                "may not remove or update AppArmor annotations",
            ));
        }
        if k == MIRROR_POD {
            errs.push(FieldError::forbidden(
                &path.key(k),
                "may not remove or update mirror pod annotation",
            ));
        }
    }
    for k in new_a.keys().filter(|k| !old_a.contains_key(*k)) {
        if is_apparmor_annotation(k) {
            errs.push(FieldError::forbidden(
                &path.key(k),
                "may not add AppArmor annotations",
            ));
        }
        if k == MIRROR_POD {
            errs.push(FieldError::forbidden(
                &path.key(k),
                "may not add mirror pod annotation",
            ));
        }
    }
    errs
}

/// `ValidateContainerUpdates`: the same number of containers, each with an image.
/// Returns true when validation must stop.
fn container_updates(new: &[Value], old: &[Value], path: &Path, errs: &mut ErrorList) -> bool {
    if new.len() != old.len() {
        errs.push(FieldError::forbidden(
            path,
            "pod updates may not add or remove containers",
        ));
        return true;
    }
    for (i, c) in new.iter().enumerate() {
        let image = c.s("image");
        if image.is_empty() {
            errs.push(FieldError::required(&path.index(i).child("image"), ""));
        }
        if image.trim().len() != image.len() {
            errs.push(FieldError::invalid(
                &path.index(i).child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    false
}

/// `validateOnlyAddedTolerations`: every old toleration is still there (its
/// `tolerationSeconds` may change).
fn only_added_tolerations(new: &[Value], old: &[Value], path: &Path) -> ErrorList {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(o) = t.as_object_mut() {
            o.remove("tolerationSeconds");
        }
        t
    };
    for o in old {
        if !new.iter().any(|n| semantic_eq(&strip(n), &strip(o))) {
            return vec![FieldError::forbidden(
                path,
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    validate_tolerations(new, path)
}

/// `validateOnlyDeletedSchedulingGates`.
fn only_deleted_gates(new: &[Value], old: &[Value], path: &Path) -> ErrorList {
    let old_names: BTreeSet<&str> = old.iter().map(|g| g.s("name")).collect();
    let mut added: Vec<(usize, &str)> = Vec::new();
    for (i, g) in new.iter().enumerate() {
        let name = g.s("name");
        added.retain(|(_, n)| *n != name);
        if !old_names.contains(name) {
            added.push((i, name));
        }
    }
    added
        .into_iter()
        .map(|(i, name)| {
            FieldError::forbidden(
                &path.index(i).child("name"),
                format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            )
        })
        .collect()
}

/// Whether `new` only appends to `old`'s list at `key` (a node selector term of a gated
/// pod may only gain requirements).
fn only_additions(new: &Value, old: &Value, key: &str) -> bool {
    let (n, o) = (new.a(key), old.a(key));
    n.len() >= o.len() && n[..o.len()].iter().zip(o).all(|(a, b)| semantic_eq(a, b))
}

/// The changes a gated pod may make to its node affinity (`validateNodeAffinityMutation`).
fn node_affinity_mutation(new: &Value, old: &Value, path: &Path) -> ErrorList {
    let req = |a: &Value| {
        a.f("requiredDuringSchedulingIgnoredDuringExecution")
            .a("nodeSelectorTerms")
            .to_vec()
    };
    if !old
        .f("requiredDuringSchedulingIgnoredDuringExecution")
        .is_object()
    {
        return ErrorList::new();
    }
    let (old_terms, new_terms) = (req(old), req(new));
    let tp = path
        .child("requiredDuringSchedulingIgnoredDuringExecution")
        .child("nodeSelectorTerms");
    if !old_terms.is_empty() && old_terms.len() != new_terms.len() {
        return vec![FieldError::invalid(
            &tp,
            Value::Array(new_terms),
            "no additions/deletions to non-empty NodeSelectorTerms list are allowed",
        )];
    }
    let mut errs = ErrorList::new();
    for (i, (o, n)) in old_terms.iter().zip(&new_terms).enumerate() {
        let o_empty = o.a("matchExpressions").is_empty() && o.a("matchFields").is_empty();
        let n_empty = n.a("matchExpressions").is_empty() && n.a("matchFields").is_empty();
        let ok = (n_empty || !o_empty)
            && only_additions(n, o, "matchExpressions")
            && only_additions(n, o, "matchFields");
        if !ok {
            errs.push(FieldError::invalid(
                &tp.index(i),
                n.clone(),
                "only additions are allowed (no mutations or deletions)",
            ));
        }
    }
    errs
}

/// A short account of how two specs differ, one line per changed field (upstream shows
/// a diff of its internal structs here; the fields it names are the same).
fn spec_diff(old: &Value, new: &Value) -> String {
    fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
        if semantic_eq(old, new) {
            return;
        }
        match (old, new) {
            (Value::Object(a), Value::Object(b)) => {
                let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for k in keys {
                    let o = a.get(k).unwrap_or(&Value::Null);
                    let n = b.get(k).unwrap_or(&Value::Null);
                    walk(&format!("{path}.{k}"), o, n, out);
                }
            }
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                for (i, (o, n)) in a.iter().zip(b).enumerate() {
                    walk(&format!("{path}[{i}]"), o, n, out);
                }
            }
            _ => {
                out.push(format!("- \t{path}: {old}"));
                out.push(format!("+ \t{path}: {new}"));
            }
        }
    }
    let mut lines = Vec::new();
    walk("spec", old, new, &mut lines);
    format!("  core.PodSpec{{\n{}\n  }}\n", lines.join("\n"))
}

/// `ValidatePodUpdate`.
/// `ValidatePodEphemeralContainersUpdate`: the pod as a whole, and ephemeral containers
/// only added (an existing one is neither removed nor changed), never on a static pod.
fn validate_ephemeral_containers_update(new: &Value, old: &Value) -> ErrorList {
    let opts = PodOpts {
        resource_is_pod: true,
        ..PodOpts::for_update(old.f("spec"), old.f("metadata"))
    };
    let mut errs = validate_metadata_and_spec(new, &opts);
    errs.extend(validate_annotation_updates(new, old));
    if old
        .f("metadata")
        .m("annotations")
        .is_some_and(|a| a.contains_key(MIRROR_POD))
    {
        return vec![FieldError::forbidden(
            &Path::new(""),
            "static pods do not support ephemeral containers",
        )];
    }
    let path = Path::new("spec").child("ephemeralContainers");
    let new_list = new.f("spec").a("ephemeralContainers");
    for o in old.f("spec").a("ephemeralContainers") {
        let name = o.s("name");
        match new_list.iter().find(|n| n.s("name") == name) {
            None => errs.push(FieldError::forbidden(
                &path,
                format!(
                    "existing ephemeral containers {} may not be removed\n",
                    k1s_apimachinery::goformat::quote(name)
                ),
            )),
            // Upstream appends go-cmp's diff of the two containers here.
            Some(n) if !semantic_eq(o, n) => errs.push(FieldError::forbidden(
                &path.child(name),
                format!(
                    "existing ephemeral containers {} may not be changed\n",
                    k1s_apimachinery::goformat::quote(name)
                ),
            )),
            Some(_) => {}
        }
    }
    errs
}

/// `ValidatePodResize`: the resized pod as a pod (requests within limits), then what a
/// resize may change.
fn validate_resize(new: &Value, old: &Value) -> ErrorList {
    let opts = PodOpts {
        resource_is_pod: true,
        ..PodOpts::for_update(old.f("spec"), old.f("metadata"))
    };
    let mut errs = validate_metadata_and_spec(new, &opts);
    errs.extend(super::pod_resize::validate_resize(new, old));
    errs
}

fn validate_update(new: &Value, old: &Value) -> ErrorList {
    let opts = PodOpts {
        resource_is_pod: true,
        ..PodOpts::for_update(old.f("spec"), old.f("metadata"))
    };
    let mut errs = validate_metadata_and_spec(new, &opts);
    errs.extend(validate_annotation_updates(new, old));
    let path = Path::new("spec");
    let (new_spec, old_spec) = (canonical_spec(new.f("spec")), canonical_spec(old.f("spec")));
    let (ns, os) = (&new_spec, &old_spec);
    for list in ["containers", "initContainers"] {
        if container_updates(ns.a(list), os.a(list), &path.child(list), &mut errs) {
            return errs;
        }
    }
    let adp = path.child("activeDeadlineSeconds");
    match (ns.i("activeDeadlineSeconds"), os.i("activeDeadlineSeconds")) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(FieldError::invalid(
                &adp,
                n,
                format!("must be between 0 and {}, inclusive", i32::MAX),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                &adp,
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &adp,
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    errs.extend(only_added_tolerations(
        ns.a("tolerations"),
        os.a("tolerations"),
        &path.child("tolerations"),
    ));
    errs.extend(only_deleted_gates(
        ns.a("schedulingGates"),
        os.a("schedulingGates"),
        &path.child("schedulingGates"),
    ));
    if semantic_eq(ns, os) {
        return errs;
    }
    // Copy what may change from the old spec, then compare what is left.
    let mut munged = ns.clone();
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(cs)) = munged.get_mut(list) {
            for (c, o) in cs.iter_mut().zip(os.a(list)) {
                c["image"] = o.f("image").clone();
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for field in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match os.get(field) {
                Some(v) => {
                    m.insert(field.to_string(), v.clone());
                }
                None => {
                    m.remove(field);
                }
            }
        }
    }
    if os.i("terminationGracePeriodSeconds").is_some_and(|g| g < 0)
        && munged.i("terminationGracePeriodSeconds") == Some(1)
    {
        munged["terminationGracePeriodSeconds"] = os.f("terminationGracePeriodSeconds").clone();
    }
    if !os.a("schedulingGates").is_empty() {
        // A gated pod may add node selector entries and node affinity requirements.
        let (new_sel, old_sel) = (munged.f("nodeSelector").clone(), os.f("nodeSelector"));
        if !semantic_eq(&new_sel, old_sel) {
            let kept = old_sel
                .as_object()
                .into_iter()
                .flatten()
                .all(|(k, v)| new_sel.get(k) == Some(v));
            if !kept {
                errs.push(FieldError::invalid(
                    &path.child("nodeSelector"),
                    new_sel.clone(),
                    "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                ));
            }
            set_or_remove(&mut munged, "nodeSelector", os.get("nodeSelector"));
        }
        let old_na = os.f("affinity").f("nodeAffinity").clone();
        let new_na = munged.f("affinity").f("nodeAffinity").clone();
        if !semantic_eq(&old_na, &new_na) {
            errs.extend(node_affinity_mutation(
                &new_na,
                &old_na,
                &path.child("affinity").child("nodeAffinity"),
            ));
            if munged.f("affinity").is_object() {
                set_or_remove(
                    &mut munged["affinity"],
                    "nodeAffinity",
                    os.f("affinity").get("nodeAffinity"),
                );
                if !os.has("affinity")
                    && munged
                        .f("affinity")
                        .as_object()
                        .is_some_and(|a| a.is_empty())
                {
                    set_or_remove(&mut munged, "affinity", None);
                }
            } else if old_na.is_object() {
                munged["affinity"] = json!({"nodeAffinity": old_na});
            }
        }
    }
    if !semantic_eq(&munged, os) {
        errs.push(FieldError::forbidden(
            &path,
            format!(
                "pod updates may not change fields other than {UPDATABLE}\n{}",
                spec_diff(os, &munged)
            ),
        ));
    }
    errs
}

/// Rewrites a quantity string in canonical form (`0.1` → `100m`), as upstream's decoding
/// does before specs are compared.
fn canonical_quantity(v: &mut Value) {
    if let Some(q) = v
        .as_str()
        .and_then(|s| k1s_apimachinery::Quantity::parse(s).ok())
    {
        *v = json!(q.canonical());
    }
}

fn canonical_list(list: Option<&mut Value>) {
    if let Some(Value::Object(m)) = list {
        m.values_mut().for_each(canonical_quantity);
    }
}

/// A copy of a pod spec with its quantities in canonical form, so that a change of
/// spelling (`1000m` for `1`) is not a change.
fn canonical_spec(spec: &Value) -> Value {
    let mut spec = spec.clone();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(Value::Array(cs)) = spec.get_mut(list) {
            for c in cs {
                if let Some(r) = c.get_mut("resources") {
                    canonical_list(r.get_mut("requests"));
                    canonical_list(r.get_mut("limits"));
                }
                if let Some(Value::Array(env)) = c.get_mut("env") {
                    for e in env {
                        if let Some(d) = e.pointer_mut("/valueFrom/resourceFieldRef/divisor") {
                            canonical_quantity(d);
                        }
                    }
                }
            }
        }
    }
    canonical_list(spec.get_mut("overhead"));
    if let Some(r) = spec.get_mut("resources") {
        canonical_list(r.get_mut("requests"));
        canonical_list(r.get_mut("limits"));
    }
    if let Some(Value::Array(vols)) = spec.get_mut("volumes") {
        for v in vols {
            if let Some(q) = v.pointer_mut("/emptyDir/sizeLimit") {
                canonical_quantity(q);
            }
        }
    }
    spec
}

fn set_or_remove(obj: &mut Value, key: &str, value: Option<&Value>) {
    let Some(o) = obj.as_object_mut() else { return };
    match value {
        Some(v) => {
            o.insert(key.to_string(), v.clone());
        }
        None => {
            o.remove(key);
        }
    }
}

/// `ValidateContainerStateTransition` (with container restart rules): a terminated
/// container stays terminated unless its rules or restart policy restart it.
fn state_transitions(
    new: &[Value],
    old: &[Value],
    path: &Path,
    containers: &[Value],
    pod_restart_policy: &str,
) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, o) in old.iter().enumerate() {
        let terminated = o.f("state").f("terminated");
        if !terminated.is_object() {
            continue;
        }
        let Some(n) = new.iter().find(|n| n.s("name") == o.s("name")) else {
            continue;
        };
        if n.f("state").f("terminated").is_object() {
            continue;
        }
        let exit_code = terminated.i("exitCode").unwrap_or(0);
        let allowed = containers
            .iter()
            .find(|c| c.s("name") == o.s("name"))
            .is_some_and(|c| container_should_restart(c, pod_restart_policy, exit_code));
        if !allowed {
            errs.push(FieldError::forbidden(
                &path.index(i).child("state"),
                "may not be transitioned to non-terminated state",
            ));
        }
    }
    errs
}

/// `validatePodIPs` / `validateHostIPs`: valid (old spellings kept), at most one per
/// family.
fn pod_ips(ips: &[Value], old: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ip) in ips.iter().enumerate() {
        let v = ip.s("ip");
        if !old.iter().any(|o| o.s("ip") == v) {
            errs.extend(validate_legacy_ip(v, &path.index(i)));
        }
    }
    if ips.len() > 1 {
        let v4 = ips.iter().filter(|ip| !ip.s("ip").contains(':')).count();
        if ips.len() > 2 || v4 != 1 {
            errs.push(FieldError::invalid(
                path,
                Value::Array(ips.to_vec()),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    errs
}

/// `ValidatePodStatusUpdate`.
fn validate_status_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_annotation_updates(new, old);
    let (ns, os) = (new.f("status"), old.f("status"));
    let sp = Path::new("status");
    for (i, c) in ns.a("conditions").iter().enumerate() {
        let cp = sp.child("conditions").index(i);
        if let Some(g) = c.i("observedGeneration")
            && g < 0
        {
            errs.push(FieldError::invalid(
                &cp.child("observedGeneration"),
                g,
                "must be a non-negative integer",
            ));
        }
        let t = c.s("type");
        if !["PodScheduled", "Ready", "Initialized"].contains(&t) {
            for msg in k1s_apimachinery::validation::is_qualified_name(t) {
                errs.push(FieldError::invalid(&cp.child("Type"), t, msg));
            }
        }
    }
    if new.f("spec").s("nodeName") != old.f("spec").s("nodeName") {
        errs.push(FieldError::forbidden(
            &sp.child("nodeName"),
            "may not be changed directly",
        ));
    }
    let nominated = ns.s("nominatedNodeName");
    if nominated != os.s("nominatedNodeName") && !nominated.is_empty() {
        for msg in name_is_dns_subdomain(nominated, false) {
            errs.push(FieldError::invalid(
                &sp.child("nominatedNodeName"),
                nominated,
                msg,
            ));
        }
        if !old.f("spec").s("nodeName").is_empty() {
            errs.push(FieldError::forbidden(
                &sp.child("nominatedNodeName"),
                "may not be set on pods that are already bound to a node",
            ));
        }
    }
    if let Some(g) = ns.i("observedGeneration")
        && g < 0
    {
        errs.push(FieldError::invalid(
            &sp.child("observedGeneration"),
            g,
            "must be a non-negative integer",
        ));
    }
    // An empty QoS class is filled in from the old status upstream, so only a change
    // to another class is refused.
    let qos = ns.s("qosClass");
    if !qos.is_empty() && qos != os.s("qosClass") {
        errs.push(FieldError::invalid(
            &sp.child("qosClass"),
            qos,
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    let spec = old.f("spec");
    let restart = spec.s("restartPolicy");
    errs.extend(state_transitions(
        ns.a("containerStatuses"),
        os.a("containerStatuses"),
        &sp.child("containerStatuses"),
        spec.a("containers"),
        restart,
    ));
    errs.extend(state_transitions(
        ns.a("initContainerStatuses"),
        os.a("initContainerStatuses"),
        &sp.child("initContainerStatuses"),
        spec.a("initContainers"),
        restart,
    ));
    // Ephemeral containers never restart.
    errs.extend(state_transitions(
        ns.a("ephemeralContainerStatuses"),
        os.a("ephemeralContainerStatuses"),
        &sp.child("ephemeralContainerStatuses"),
        &[],
        "Never",
    ));
    errs.extend(pod_ips(ns.a("podIPs"), os.a("podIPs"), &sp.child("podIPs")));
    let host_ips = ns.a("hostIPs");
    if let Some(first) = host_ips.first()
        && first.s("ip") != ns.s("hostIP")
    {
        errs.push(FieldError::invalid(
            &sp.child("hostIPs").index(0).child("ip"),
            first.s("ip"),
            "must be equal to `hostIP`",
        ));
    }
    errs.extend(pod_ips(host_ips, os.a("hostIPs"), &sp.child("hostIPs")));
    errs
}

/// `applySchedulingGatedCondition`: a gated pod says why it is not scheduled.
fn scheduling_gated_condition(pod: &mut Value) {
    if pod.f("spec").a("schedulingGates").is_empty() {
        return;
    }
    let status = &mut pod["status"];
    if status
        .a("conditions")
        .iter()
        .any(|c| c.s("type") == "PodScheduled")
    {
        return;
    }
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    if let Some(conds) = status["conditions"].as_array_mut() {
        conds.push(json!({
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": null,
            "lastTransitionTime": crate::meta::now_rfc3339(),
            "reason": "SchedulingGated",
            "message": "Scheduling is blocked due to non-empty scheduling gates",
        }));
    }
}

/// Upstream's `DefaultTolerationSeconds` admission plugin: a pod that does not already
/// tolerate the `not-ready` / `unreachable` NoExecute taints tolerates each for 300 s
/// (`--default-not-ready-toleration-seconds`, `--default-unreachable-toleration-seconds`),
/// so the taint eviction controller evicts it five minutes after its node fails.
fn default_toleration_seconds(pod: &mut Value) {
    const NOT_READY: &str = "node.kubernetes.io/not-ready";
    const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
    let tolerations = pod.f("spec").a("tolerations");
    let covers = |key: &str| {
        tolerations.iter().any(|t| {
            (t.s("key") == key || t.s("key").is_empty())
                && (t.s("effect") == "NoExecute" || t.s("effect").is_empty())
        })
    };
    let missing: Vec<&str> = [NOT_READY, UNREACHABLE]
        .into_iter()
        .filter(|k| !covers(k))
        .collect();
    if missing.is_empty() || !pod["spec"].is_object() {
        return;
    }
    if !pod["spec"]["tolerations"].is_array() {
        pod["spec"]["tolerations"] = json!([]);
    }
    if let Some(list) = pod["spec"]["tolerations"].as_array_mut() {
        for key in missing {
            list.push(
                json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": 300}),
            );
        }
    }
}

impl Strategy for PodStrategy {
    fn default(&self, obj: &mut Value) {
        default_pod(obj);
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        // A new pod is Pending with its QoS class; the kubelet writes the rest.
        let qos = qos_class(obj);
        obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        scheduling_gated_condition(obj);
        merge_label_keys(obj);
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_create(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        validate_update(new, old)
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> ErrorList {
        validate_status_update(new, old)
    }

    fn prepare_for_subresource_update(&self, sub: Subresource, new: &mut Value, old: &Value) {
        if sub == Subresource::Resize {
            super::pod_resize::drop_non_resize_updates(new, old);
            return;
        }
        if sub != Subresource::EphemeralContainers {
            return;
        }
        // Upstream's `dropNonEphemeralContainerUpdates`: the stored pod with the new
        // ephemeral containers.
        let ephemeral = new.f("spec").get("ephemeralContainers").cloned();
        let rv = new.f("metadata").get("resourceVersion").cloned();
        let managed = new.f("metadata").get("managedFields").cloned();
        *new = old.clone();
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            match ephemeral {
                Some(e) => {
                    spec.insert("ephemeralContainers".into(), e);
                }
                None => {
                    spec.remove("ephemeralContainers");
                }
            }
        }
        meta::set_meta(new, "resourceVersion", rv);
        meta::set_meta(new, "managedFields", managed);
    }

    fn validate_subresource_update(&self, sub: Subresource, new: &Value, old: &Value) -> ErrorList {
        match sub {
            Subresource::EphemeralContainers => validate_ephemeral_containers_update(new, old),
            Subresource::Resize => validate_resize(new, old),
            _ => validate_update(new, old),
        }
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

    fn admit_create(&self, obj: &mut Value) -> Result<(), Status> {
        default_toleration_seconds(obj);
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    fn pod(spec: Value) -> Value {
        let mut p = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec});
        PodStrategy.default(&mut p);
        p
    }

    #[test]
    fn pods_tolerate_not_ready_and_unreachable_for_300_seconds_by_default() {
        let mut p = pod(json!({"containers": [{"name": "c", "image": "i"}]}));
        default_toleration_seconds(&mut p);
        assert_eq!(
            p["spec"]["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ])
        );
        let mut own = pod(json!({"containers": [], "tolerations": [
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}));
        default_toleration_seconds(&mut own);
        assert_eq!(own["spec"]["tolerations"].as_array().map(Vec::len), Some(2));
        let mut all = pod(json!({"containers": [], "tolerations": [{"operator": "Exists"}]}));
        default_toleration_seconds(&mut all);
        assert_eq!(all["spec"]["tolerations"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn unscheduled_pods_delete_at_once_and_bound_pods_gracefully() {
        let s = PodStrategy;
        assert_eq!(s.graceful_delete(&json!({"spec": {}}), None), Some(0));
        let bound = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30}, "status": {"phase": "Running"}});
        assert_eq!(s.graceful_delete(&bound, None), Some(30));
        assert_eq!(s.graceful_delete(&bound, Some(0)), Some(0));
    }

    #[test]
    fn limits_become_requests_and_make_a_guaranteed_pod() {
        let mut p = pod(json!({"containers": [{"name": "a", "image": "nginx:1.27",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}));
        assert_eq!(
            p["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "1"
        );
        PodStrategy.prepare_for_create(&mut p, true);
        assert_eq!(p["status"]["qosClass"], "Guaranteed");
        assert_eq!(p["spec"]["enableServiceLinks"], true);
        assert!(PodStrategy.validate(&p).is_empty());
    }

    #[test]
    fn host_network_ports_default_to_the_container_port() {
        let p = pod(
            json!({"hostNetwork": true, "containers": [{"name": "a", "image": "x",
            "ports": [{"containerPort": 8080}]}]}),
        );
        assert_eq!(p["spec"]["containers"][0]["ports"][0]["hostPort"], 8080);
        assert!(PodStrategy.validate(&p).is_empty());
        let mut bad = p.clone();
        bad["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(9090);
        assert_eq!(
            texts(PodStrategy.validate(&bad)),
            vec![
                "spec.containers[0].ports[0].hostPort: Invalid value: 9090: must match `containerPort` when `hostNetwork` is true"
            ]
        );
    }

    #[test]
    fn updates_may_change_images_and_add_tolerations_only() {
        let old = pod(json!({"containers": [{"name": "a", "image": "nginx:1"}],
            "tolerations": [{"key": "k", "operator": "Exists"}]}));
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:2");
        new["spec"]["tolerations"] =
            json!([{"key": "k", "operator": "Exists"}, {"key": "j", "operator": "Exists"}]);
        new["spec"]["activeDeadlineSeconds"] = json!(60);
        assert!(
            validate_update(&new, &old).is_empty(),
            "{:?}",
            texts(validate_update(&new, &old))
        );

        let mut changed = old.clone();
        changed["spec"]["restartPolicy"] = json!("Never");
        let errs = texts(validate_update(&changed, &old));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with(&format!(
                "spec: Forbidden: pod updates may not change fields other than {UPDATABLE}\n"
            )),
            "{errs:?}"
        );
        assert!(errs[0].contains("spec.restartPolicy"), "{errs:?}");

        let mut fewer = old.clone();
        fewer["spec"]["tolerations"] = json!([]);
        assert_eq!(
            texts(validate_update(&fewer, &old)),
            vec![
                "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
            ]
        );

        let mut more = old.clone();
        more["spec"]["containers"] =
            json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]);
        PodStrategy.default(&mut more);
        assert_eq!(
            texts(validate_update(&more, &old)),
            vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
    }

    #[test]
    fn a_new_spelling_of_a_quantity_is_no_change() {
        let old = pod(json!({"containers": [{"name": "a", "image": "x",
            "resources": {"requests": {"cpu": "1", "memory": "0.5Gi"}}}]}));
        let mut new = old.clone();
        new["spec"]["containers"][0]["resources"]["requests"] =
            json!({"cpu": "1000m", "memory": "512Mi"});
        assert!(
            validate_update(&new, &old).is_empty(),
            "{:?}",
            texts(validate_update(&new, &old))
        );
    }

    #[test]
    fn gated_pods_may_add_node_selectors_and_drop_gates() {
        let old = pod(json!({"containers": [{"name": "a", "image": "x"}],
            "schedulingGates": [{"name": "example.com/wait"}], "nodeSelector": {"a": "1"}}));
        let mut new = old.clone();
        new["spec"]["schedulingGates"] = json!([]);
        new["spec"]["nodeSelector"] = json!({"a": "1", "b": "2"});
        assert!(
            validate_update(&new, &old).is_empty(),
            "{:?}",
            texts(validate_update(&new, &old))
        );
        let mut added = old.clone();
        added["spec"]["schedulingGates"] =
            json!([{"name": "example.com/wait"}, {"name": "example.com/other"}]);
        assert_eq!(
            texts(validate_update(&added, &old)),
            vec![
                "spec.schedulingGates[1].name: Forbidden: only deletion is allowed, but found new scheduling gate 'example.com/other'"
            ]
        );
    }

    #[test]
    fn create_refuses_ephemeral_containers_and_gated_bound_pods() {
        let p = pod(json!({"nodeName": "n1", "schedulingGates": [{"name": "g"}],
            "containers": [{"name": "a", "image": "x"}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}]}));
        assert_eq!(
            texts(PodStrategy.validate(&p)),
            vec![
                "spec.ephemeralContainers: Forbidden: cannot be set on create",
                "spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared",
            ]
        );
    }

    #[test]
    fn gated_pods_get_a_scheduling_condition_and_label_keys_merge() {
        let mut p = pod(json!({"containers": [{"name": "a", "image": "x"}],
            "schedulingGates": [{"name": "g"}],
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}},
                 "matchLabelKeys": ["pod-template-hash"]}]}}}));
        p["metadata"]["labels"] = json!({"app": "web", "pod-template-hash": "abc"});
        PodStrategy.prepare_for_create(&mut p, true);
        assert_eq!(p["status"]["conditions"][0]["reason"], "SchedulingGated");
        assert_eq!(
            p["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                [0]["labelSelector"]["matchExpressions"],
            json!([{"key": "pod-template-hash", "operator": "In", "values": ["abc"]}])
        );
        assert!(
            PodStrategy.validate(&p).is_empty(),
            "{:?}",
            texts(PodStrategy.validate(&p))
        );
    }

    #[test]
    fn status_updates_keep_the_qos_class_and_terminated_containers() {
        let mut old =
            pod(json!({"restartPolicy": "Never", "containers": [{"name": "a", "image": "x"}]}));
        old["status"] = json!({"qosClass": "BestEffort", "containerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 0}}}]});
        let mut new = old.clone();
        new["status"]["qosClass"] = json!("Guaranteed");
        new["status"]["containerStatuses"][0]["state"] = json!({"running": {}});
        assert_eq!(
            texts(validate_status_update(&new, &old)),
            vec![
                "status.qosClass: Invalid value: \"Guaranteed\": field is immutable",
                "status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state",
            ]
        );
    }
}

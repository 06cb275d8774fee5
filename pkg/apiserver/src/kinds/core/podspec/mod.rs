//! Defaults and validation of a PodSpec, shared by Pods and every pod template
//! (upstream `SetDefaults_PodSpec` and friends, `ValidatePodSpec`,
//! `ValidatePodTemplateSpec`).
//!
//! The checks are split by subject: [`container`] (containers of every kind, env, ports,
//! mounts, probes), [`volume`] (volumes and their sources), [`resources`] (requests and
//! limits, QoS), [`security`] (security contexts, seccomp, AppArmor, sysctls, per-OS
//! rules) and [`scheduling`] (affinity, tolerations, spread, DNS). This module holds the
//! pod-wide checks and the entry points.

mod container;
mod defaults;
mod resources;
mod scheduling;
mod security;
mod util;
mod volume;

use std::collections::BTreeSet;

use k1s_apimachinery::meta::{name_is_dns_subdomain, validate_annotations, validate_labels};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Map, Value};

pub(crate) use container::{container_should_restart, image_whitespace};
pub use defaults::default_pod_spec;
pub(crate) use defaults::{default_pod, merge_label_keys};
pub use resources::qos_class;
pub(crate) use scheduling::validate_tolerations;
pub(crate) use security::is_apparmor_annotation;

use crate::kinds::validation::Fields;
use container::{
    Ctx, validate_containers, validate_ephemeral_containers, validate_init_containers,
};
use util::{dns_label, invalid_each};

/// Upstream's `PodValidationOptions` as far as k1s needs them: what a Pod (rather than a
/// template) must satisfy, and the leniencies an update keeps for values the old object
/// already had. [`PodOpts::default`] is a new object under 1.35's default features.
#[derive(Debug, Clone)]
pub(crate) struct PodOpts {
    /// The spec belongs to a Pod, not a template.
    pub resource_is_pod: bool,
    /// `RelaxedEnvironmentVariableValidation` (GA): env names are any printable ASCII but `=`.
    pub relaxed_env_names: bool,
    /// Sidecars may carry a resize policy (`InPlacePodVerticalScaling`).
    pub allow_sidecar_resize_policy: bool,
    /// The old object had a non-sidecar init container with a `RestartContainer` resize
    /// policy.
    pub allow_restart_container_for_init_containers: bool,
    /// The old object had hugepages that are not a multiple of the page size.
    pub allow_indivisible_hugepages: bool,
    /// The old object had a projected token outside the volume.
    pub allow_non_local_projected_token_path: bool,
    /// The old object had namespaced sysctls next to host namespaces.
    pub allow_namespaced_sysctls_for_host_net_and_ipc: bool,
    /// The old object had invalid label values in its required node affinity.
    pub allow_invalid_label_value_in_required_node_affinity: bool,
    /// The old object had an invalid spread constraint selector.
    pub allow_invalid_topology_spread_selector: bool,
    /// `SELinuxMount` is off: only `Recursive` unless the old object had a policy.
    pub only_recursive_selinux_change_policy: bool,
    /// The old object had an unparsable pod-deletion-cost annotation.
    pub allow_invalid_pod_deletion_cost: bool,
}

impl Default for PodOpts {
    fn default() -> Self {
        Self {
            resource_is_pod: false,
            relaxed_env_names: true,
            allow_sidecar_resize_policy: true,
            allow_restart_container_for_init_containers: false,
            allow_indivisible_hugepages: false,
            allow_non_local_projected_token_path: false,
            allow_namespaced_sysctls_for_host_net_and_ipc: false,
            allow_invalid_label_value_in_required_node_affinity: false,
            allow_invalid_topology_spread_selector: false,
            only_recursive_selinux_change_policy: true,
            allow_invalid_pod_deletion_cost: false,
        }
    }
}

impl PodOpts {
    /// The options of an update (`GetValidationOptionsFromPodSpecAndMeta`): what the old
    /// spec and metadata already used stays allowed.
    pub(crate) fn for_update(old_spec: &Value, old_meta: &Value) -> Self {
        let path = Path::new("spec");
        let strict = Self::default();
        let mut hugepages = false;
        security::visit_containers(old_spec, &path, |c, p| {
            hugepages |= resources::validate_requirements(
                c.f("resources"),
                &BTreeSet::new(),
                &p,
                resources::Level::Container,
                &strict,
            )
            .iter()
            .any(|e| e.detail.contains("is not positive integer multiple"));
        });
        let token_path = old_spec.a("volumes").iter().any(|v| {
            v.f("projected").a("sources").iter().any(|s| {
                let t = s.f("serviceAccountToken");
                t.is_object() && !util::local_non_reserved_path(t.s("path"), &path).is_empty()
            })
        });
        let sysctls = security::validate_pod_security_context(old_spec, &path, &strict)
            .iter()
            .any(|e| e.detail.starts_with("may not be specified when 'host"));
        let node_affinity = old_spec
            .f("affinity")
            .f("nodeAffinity")
            .f("requiredDuringSchedulingIgnoredDuringExecution")
            .a("nodeSelectorTerms")
            .iter()
            .flat_map(|t| t.a("matchExpressions"))
            .flat_map(|e| e.a("values"))
            .any(|v| {
                !k1s_apimachinery::validation::is_valid_label_value(v.as_str().unwrap_or(""))
                    .is_empty()
            });
        let spread = old_spec
            .a("topologySpreadConstraints")
            .iter()
            .any(|c| k1s_apimachinery::meta::label_selector_has_errors(c.get("labelSelector")));
        let selinux = old_spec.f("securityContext").has("seLinuxChangePolicy");
        let init_restart = old_spec.a("initContainers").iter().any(|c| {
            c.s("restartPolicy") != "Always"
                && c.a("resizePolicy")
                    .iter()
                    .any(|p| p.s("restartPolicy") == "RestartContainer")
        });
        let deletion_cost = old_meta
            .f("annotations")
            .get(DELETION_COST)
            .and_then(Value::as_str)
            .is_some_and(|v| v.parse::<i32>().is_err());
        Self {
            allow_indivisible_hugepages: hugepages,
            allow_non_local_projected_token_path: token_path,
            allow_namespaced_sysctls_for_host_net_and_ipc: sysctls,
            allow_invalid_label_value_in_required_node_affinity: node_affinity,
            allow_invalid_topology_spread_selector: spread,
            only_recursive_selinux_change_policy: !selinux,
            allow_restart_container_for_init_containers: init_restart,
            allow_invalid_pod_deletion_cost: deletion_cost,
            ..strict
        }
    }
}

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const MIRROR_POD: &str = "kubernetes.io/config.mirror";
const TOLERATIONS_ANNOTATION: &str = "scheduler.alpha.kubernetes.io/tolerations";
const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// Validates a PodSpec of a pod template at `path` (upstream `ValidatePodSpec` with the
/// options of a template). Workload kinds that check a template's spec without its
/// metadata call this.
pub fn validate_pod_spec(spec: &Value, path: &Path) -> ErrorList {
    validate_pod_spec_with(spec, None, path, &PodOpts::default())
}

/// `ValidatePodSpec`: `pod_meta` is the Pod's own metadata (its name names the claims of
/// generic ephemeral volumes), `None` for templates.
pub(crate) fn validate_pod_spec_with(
    spec: &Value,
    pod_meta: Option<&Value>,
    path: &Path,
    opts: &PodOpts,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let pod_name = pod_meta.map(|m| m.s("name"));
    let grace = spec.i("terminationGracePeriodSeconds");
    if grace.is_none() {
        errs.push(FieldError::required(
            &path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let host_users = spec.get("hostUsers") != Some(&Value::Bool(false));
    let (volumes, verrs) =
        volume::validate_volumes(spec.a("volumes"), pod_name, &path.child("volumes"), opts);
    errs.extend(verrs);
    let claim_names: BTreeSet<String> = spec
        .a("resourceClaims")
        .iter()
        .map(|c| c.s("name"))
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    errs.extend(validate_resource_claims(
        spec.a("resourceClaims"),
        &path.child("resourceClaims"),
    ));
    let restart_policy = spec.s("restartPolicy");
    let ctx = Ctx {
        volumes: &volumes,
        claim_names: &claim_names,
        grace_period: grace,
        restart_policy,
        host_users,
        opts,
    };
    errs.extend(validate_containers(
        spec.a("containers"),
        &path.child("containers"),
        &ctx,
    ));
    errs.extend(validate_init_containers(
        spec.a("initContainers"),
        spec.a("containers"),
        &path.child("initContainers"),
        &ctx,
    ));
    errs.extend(validate_ephemeral_containers(
        spec,
        &path.child("ephemeralContainers"),
        &ctx,
    ));
    errs.extend(resources::validate_pod_resources(
        spec,
        &claim_names,
        &path.child("resources"),
        opts,
    ));
    errs.extend(host_network_ports(spec, path, opts));
    match restart_policy {
        "" => errs.push(FieldError::required(&path.child("restartPolicy"), "")),
        rp if !RESTART_POLICIES.contains(&rp) => errs.push(FieldError::not_supported(
            &path.child("restartPolicy"),
            rp,
            RESTART_POLICIES,
        )),
        _ => {}
    }
    match spec.s("dnsPolicy") {
        "" => errs.push(FieldError::required(&path.child("dnsPolicy"), "")),
        dp if !DNS_POLICIES.contains(&dp) => errs.push(FieldError::not_supported(
            &path.child("dnsPolicy"),
            dp,
            DNS_POLICIES,
        )),
        _ => {}
    }
    errs.extend(validate_labels(
        spec.get("nodeSelector"),
        &path.child("nodeSelector"),
    ));
    errs.extend(security::validate_pod_security_context(spec, path, opts));
    errs.extend(scheduling::validate_affinity(
        spec.f("affinity"),
        &path.child("affinity"),
        opts,
    ));
    errs.extend(scheduling::validate_dns_config(
        spec,
        &path.child("dnsConfig"),
    ));
    errs.extend(scheduling::validate_readiness_gates(
        spec.a("readinessGates"),
        &path.child("readinessGates"),
    ));
    errs.extend(scheduling::validate_scheduling_gates(
        spec.a("schedulingGates"),
        &path.child("schedulingGates"),
    ));
    errs.extend(scheduling::validate_topology_spread(
        spec.a("topologySpreadConstraints"),
        &path.child("topologySpreadConstraints"),
        opts,
    ));
    errs.extend(security::validate_host_process(spec, path));
    errs.extend(security::validate_host_users(spec, path));
    errs.extend(validate_hostname_override(spec, path));
    for (field, check) in [
        (
            "serviceAccountName",
            name_is_dns_subdomain as fn(&str, bool) -> Vec<String>,
        ),
        ("nodeName", name_is_dns_subdomain),
    ] {
        let v = spec.s(field);
        if !v.is_empty() {
            errs.extend(invalid_each(v, &path.child(field), check(v, false)));
        }
    }
    if let Some(d) = spec.i("activeDeadlineSeconds")
        && !(1..=i64::from(i32::MAX)).contains(&d)
    {
        errs.push(FieldError::invalid(
            &path.child("activeDeadlineSeconds"),
            d,
            format!("must be between 1 and {}, inclusive", i32::MAX),
        ));
    }
    for field in ["hostname", "subdomain"] {
        let v = spec.s(field);
        if !v.is_empty() {
            errs.extend(dns_label(v, &path.child(field)));
        }
    }
    errs.extend(validate_tolerations(
        spec.a("tolerations"),
        &path.child("tolerations"),
    ));
    errs.extend(scheduling::validate_host_aliases(
        spec.a("hostAliases"),
        &path.child("hostAliases"),
    ));
    let pc = spec.s("priorityClassName");
    if !pc.is_empty() {
        errs.extend(invalid_each(
            pc,
            &path.child("priorityClassName"),
            name_is_dns_subdomain(pc, false),
        ));
    }
    if let Some(rc) = spec.get("runtimeClassName").and_then(Value::as_str) {
        errs.extend(invalid_each(
            rc,
            &path.child("runtimeClassName"),
            name_is_dns_subdomain(rc, false),
        ));
    }
    if spec.has("preemptionPolicy") {
        match spec.s("preemptionPolicy") {
            "PreemptLowerPriority" | "Never" => {}
            "" => errs.push(FieldError::required(&path.child("preemptionPolicy"), "")),
            other => errs.push(FieldError::not_supported(
                &path.child("preemptionPolicy"),
                other,
                &["PreemptLowerPriority", "Never"],
            )),
        }
    }
    if spec.has("overhead") {
        let overhead = serde_json::json!({"limits": spec.f("overhead")});
        errs.extend(resources::validate_requirements(
            &overhead,
            &BTreeSet::new(),
            &path.child("overhead"),
            resources::Level::Container,
            opts,
        ));
    }
    let os = spec.f("os");
    if os.is_object() {
        let name = os.s("name");
        if name.is_empty() {
            errs.push(FieldError::required(
                &path.child("os").child("name"),
                "cannot be empty",
            ));
        } else if !["linux", "windows"].contains(&name) {
            errs.push(FieldError::not_supported(
                &path.child("os"),
                name,
                &["linux", "windows"],
            ));
        } else if name == "linux" {
            errs.extend(security::validate_linux(spec, path));
        } else {
            errs.extend(security::validate_windows(spec, path));
        }
    }
    errs.extend(file_key_ref_volumes(spec, path));
    errs
}

/// `validatePodHostName`: the `hostnameOverride` (beta in 1.35).
fn validate_hostname_override(spec: &Value, path: &Path) -> ErrorList {
    let Some(name) = spec.get("hostnameOverride").and_then(Value::as_str) else {
        return ErrorList::new();
    };
    let p = path.child("hostnameOverride");
    let mut errs = ErrorList::new();
    if spec.b("setHostnameAsFQDN") {
        errs.push(FieldError::forbidden(
            &p,
            "may not be specified when setHostnameAsFQDN is true",
        ));
    }
    if spec.b("hostNetwork") {
        errs.push(FieldError::forbidden(
            &p,
            "may not be specified when hostNetwork is true",
        ));
    }
    if name.len() > 64 {
        errs.push(FieldError::too_long(&p, "", 64));
    }
    errs.extend(util::dns_subdomain(name, &p));
    errs
}

/// `validateFileKeyRefVolumes`: an env file lives in an emptyDir volume of the pod.
fn file_key_ref_volumes(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    security::visit_containers(spec, path, |c, cp| {
        for (j, env) in c.a("env").iter().enumerate() {
            let r = env.f("valueFrom").f("fileKeyRef");
            if !r.is_object() {
                continue;
            }
            let name = r.s("volumeName");
            let np = cp
                .child("env")
                .index(j)
                .child("valueFrom")
                .child("fileKeyRef")
                .child("volumeName");
            match spec.a("volumes").iter().find(|v| v.s("name") == name) {
                None => errs.push(FieldError::not_found(&np, name)),
                Some(v) if !v.has("emptyDir") => errs.push(FieldError::invalid(
                    &np,
                    name,
                    "referenced volume must be of type emptyDir",
                )),
                Some(_) => {}
            }
        }
    });
    errs
}

/// `validatePodResourceClaims`.
fn validate_resource_claims(claims: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, c) in claims.iter().enumerate() {
        let p = path.index(i);
        let name = c.s("name");
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else if names.contains(name) {
            errs.push(FieldError::duplicate(&p.child("name"), name));
        } else {
            errs.extend(dns_label(name, &p.child("name")));
            names.insert(name);
        }
        let by_name = c.get("resourceClaimName").and_then(Value::as_str);
        let by_template = c.get("resourceClaimTemplateName").and_then(Value::as_str);
        match (by_name, by_template) {
            (Some(_), Some(_)) => errs.push(FieldError::invalid(
                &p,
                c.clone(),
                "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified",
            )),
            (None, None) => errs.push(FieldError::invalid(
                &p,
                c.clone(),
                "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`",
            )),
            _ => {}
        }
        for (field, v) in [
            ("resourceClaimName", by_name),
            ("resourceClaimTemplateName", by_template),
        ] {
            if let Some(v) = v {
                errs.extend(invalid_each(
                    v,
                    &p.child(field),
                    name_is_dns_subdomain(v, false),
                ));
            }
        }
    }
    errs
}

/// `validatePodHostNetworkDeps`: with host networking a host port equals its container
/// port (a template may leave it 0, the Pod's defaults fill it in).
fn host_network_ports(spec: &Value, path: &Path, opts: &PodOpts) -> ErrorList {
    let mut errs = ErrorList::new();
    if !spec.b("hostNetwork") {
        return errs;
    }
    for (i, c) in spec.a("containers").iter().enumerate() {
        for (j, port) in c.a("ports").iter().enumerate() {
            let hp = port.i("hostPort").unwrap_or(0);
            let cp = port.i("containerPort").unwrap_or(0);
            if (opts.resource_is_pod || hp != 0) && hp != cp {
                errs.push(FieldError::invalid(
                    &path
                        .child("containers")
                        .index(i)
                        .child("ports")
                        .index(j)
                        .child("hostPort"),
                    hp,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
    }
    errs
}

/// `ValidatePodSpecificAnnotations`: the annotations of a pod or pod template that mean
/// something to Kubernetes.
pub(crate) fn validate_pod_annotations(
    annotations: Option<&Map<String, Value>>,
    spec: &Value,
    path: &Path,
    opts: &PodOpts,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let empty = Map::new();
    let annotations = annotations.unwrap_or(&empty);
    let get = |k: &str| annotations.get(k).and_then(Value::as_str);
    if let Some(v) = get(MIRROR_POD)
        && spec.s("nodeName").is_empty()
    {
        errs.push(FieldError::invalid(
            &path.key(MIRROR_POD),
            v,
            "must set spec.nodeName if mirror pod annotation is set",
        ));
    }
    if let Some(v) = get(TOLERATIONS_ANNOTATION).filter(|v| !v.is_empty()) {
        match serde_json::from_str::<Vec<Value>>(v) {
            Ok(tolerations) => errs.extend(validate_tolerations(
                &tolerations,
                &path.child(TOLERATIONS_ANNOTATION),
            )),
            Err(e) => errs.push(FieldError::invalid(
                path,
                TOLERATIONS_ANNOTATION,
                e.to_string(),
            )),
        }
    }
    if !opts.allow_invalid_pod_deletion_cost
        && let Some(v) = get(DELETION_COST)
        && v.parse::<i32>().is_err()
    {
        errs.push(FieldError::invalid(
            &path.key(DELETION_COST),
            v,
            "must be a 32bit integer",
        ));
    }
    errs.extend(security::validate_security_annotations(
        annotations,
        spec,
        path,
    ));
    errs
}

/// Validates a PodTemplateSpec at `path` (upstream `ValidatePodTemplateSpec`): the
/// template's labels and annotations, and its pod spec. Every kind that embeds a pod
/// template (ReplicationController, PodTemplate, the apps and batch workloads) calls
/// this.
pub fn validate_pod_template_spec(template: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let meta = template.f("metadata");
    errs.extend(validate_labels(meta.get("labels"), &path.child("labels")));
    errs.extend(validate_annotations(
        meta.get("annotations"),
        &path.child("annotations"),
    ));
    let spec = template.f("spec");
    let spec_path = path.child("spec");
    let opts = PodOpts::default();
    errs.extend(validate_pod_annotations(
        meta.m("annotations"),
        spec,
        &path.child("annotations"),
        &opts,
    ));
    errs.extend(validate_pod_spec_with(spec, None, &spec_path, &opts));
    let empty = Map::new();
    errs.extend(security::validate_annotations_match_fields(
        meta.m("annotations").unwrap_or(&empty),
        spec,
        &spec_path,
    ));
    if !spec.a("ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            &spec_path.child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// The seccomp/AppArmor annotation-versus-field agreement a Pod create checks.
pub(crate) fn validate_annotations_match_fields(
    meta: &Value,
    spec: &Value,
    path: &Path,
) -> ErrorList {
    let empty = Map::new();
    security::validate_annotations_match_fields(meta.m("annotations").unwrap_or(&empty), spec, path)
}

#[cfg(test)]
mod tests;

//! Containers: regular, init (including sidecars, `restartPolicy: Always`) and ephemeral
//! ones, with their ports, environment, mounts, probes and lifecycle hooks (upstream
//! `validateContainers`, `validateInitContainers`, `validateEphemeralContainers`,
//! `validateContainerCommon` and what they call).

use std::collections::{BTreeMap, BTreeSet};

use k1s_apimachinery::validation::{
    is_config_map_key, is_env_var_name, is_http_header_name, is_valid_port_name, is_valid_port_num,
};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use super::PodOpts;
use super::resources::{Level, validate_requirements};
use super::security::validate_security_context;
use super::util::{
    dns_label, invalid_each, is_relaxed_env_var_name, is_zero, local_descending_path,
    path_no_backsteps, quantity_of, validate_qualified_name,
};
use crate::kinds::validation::Fields;

/// Volumes by name, as `ValidateVolumes` returns the valid ones.
pub(crate) type Volumes<'a> = BTreeMap<String, &'a Value>;

/// What every container check needs to know about the pod around it.
pub(crate) struct Ctx<'a> {
    pub volumes: &'a Volumes<'a>,
    pub claim_names: &'a BTreeSet<String>,
    pub grace_period: Option<i64>,
    pub restart_policy: &'a str,
    pub host_users: bool,
    pub opts: &'a PodOpts,
}

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];

/// `validateContainers`: the regular containers.
pub(crate) fn validate_containers(containers: &[Value], path: &Path, ctx: &Ctx) -> ErrorList {
    if containers.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = ErrorList::new();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(container_common(c, &p, ctx));
        let name = c.s("name");
        if !names.insert(name) {
            errs.push(FieldError::duplicate(&p.child("name"), name));
        }
        errs.extend(lifecycle_and_probes(c, &p, ctx));
        // Container restart rules (beta, on in 1.35) let regular containers choose
        // their own restart policy.
        errs.extend(container_restart_policy(c, &p));
    }
    errs.extend(host_port_conflicts(containers, path));
    errs
}

fn lifecycle_and_probes(c: &Value, p: &Path, ctx: &Ctx) -> ErrorList {
    let mut errs = ErrorList::new();
    if c.has("lifecycle") {
        errs.extend(validate_lifecycle(
            c.f("lifecycle"),
            &p.child("lifecycle"),
            ctx,
        ));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if c.has(probe) {
            errs.extend(validate_probe(probe, c.f(probe), &p.child(probe), ctx));
        }
    }
    errs
}

/// `validateInitContainers`.
pub(crate) fn validate_init_containers(
    inits: &[Value],
    regular: &[Value],
    path: &Path,
    ctx: &Ctx,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| c.s("name")).collect();
    for (i, c) in inits.iter().enumerate() {
        let p = path.index(i);
        errs.extend(container_common(c, &p, ctx));
        errs.extend(init_restart_policy(c, &p));
        let restart_always = c.s("restartPolicy") == "Always";
        let name = c.s("name");
        if names.contains(name) {
            errs.push(FieldError::duplicate(&p.child("name"), name));
        } else if !name.is_empty() {
            names.insert(name);
        }
        // Init containers run one by one, so their host ports are checked one by one.
        errs.extend(host_port_conflicts(std::slice::from_ref(c), path));
        if restart_always {
            errs.extend(lifecycle_and_probes(c, &p, ctx));
        } else {
            for f in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if c.has(f) {
                    errs.push(FieldError::forbidden(
                        &p.child(f),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
        if !ctx.opts.allow_sidecar_resize_policy && !c.a("resizePolicy").is_empty() {
            errs.push(FieldError::invalid(
                &p.child("resizePolicy"),
                c.f("resizePolicy").clone(),
                "must not be set for init containers",
            ));
        }
        if !restart_always && !ctx.opts.allow_restart_container_for_init_containers {
            for (j, rp) in c.a("resizePolicy").iter().enumerate() {
                if rp.s("restartPolicy") == "RestartContainer" {
                    errs.push(FieldError::invalid(
                        &p.child("resizePolicy").index(j).child("restartPolicy"),
                        "RestartContainer",
                        "must not be set to 'RestartContainer' for non-sidecar initContainers",
                    ));
                }
            }
        }
    }
    errs
}

const CONTAINER_RESTART_POLICIES: &[&str] = &["Always", "Never", "OnFailure"];

/// `validateContainerRestartPolicy`: a container's own restart policy and its rules.
fn container_restart_policy(c: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let rules = c.a("restartPolicyRules");
    let rpp = p.child("restartPolicy");
    if !c.has("restartPolicy") {
        if rules.is_empty() {
            return errs;
        }
        errs.push(FieldError::required(
            &rpp,
            "must specify restartPolicy when restart rules are used",
        ));
    } else if !CONTAINER_RESTART_POLICIES.contains(&c.s("restartPolicy")) {
        errs.push(FieldError::not_supported(
            &rpp,
            c.s("restartPolicy"),
            CONTAINER_RESTART_POLICIES,
        ));
    }
    let rules_path = p.child("restartPolicyRules");
    if rules.len() > 20 {
        errs.push(FieldError::too_many(&rules_path, rules.len() as i64, 20));
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = rules_path.index(i);
        if rule.s("action") != "Restart" {
            errs.push(FieldError::not_supported(
                &rp.child("action"),
                rule.s("action"),
                &["Restart"],
            ));
        }
        let codes = rule.f("exitCodes");
        if codes.is_object() {
            let op = codes.s("operator");
            if !["In", "NotIn"].contains(&op) {
                errs.push(FieldError::not_supported(
                    &rp.child("exitCodes").child("operator"),
                    op,
                    &["In", "NotIn"],
                ));
            }
            let n = codes.a("values").len();
            if n > 255 {
                errs.push(FieldError::too_many(
                    &rp.child("exitCodes").child("values"),
                    n as i64,
                    255,
                ));
            }
        } else {
            errs.push(FieldError::required(
                &rp.child("exitCodes"),
                "must be specified",
            ));
        }
    }
    errs
}

/// `validateInitContainerRestartPolicy`: a sidecar (`Always`) takes no rules; other
/// init containers follow the regular containers' rules.
fn init_restart_policy(c: &Value, p: &Path) -> ErrorList {
    if !c.has("restartPolicy") {
        if !c.a("restartPolicyRules").is_empty() {
            return vec![FieldError::required(
                &p.child("restartPolicy"),
                "must specify restartPolicy when restart rules are used",
            )];
        }
        return ErrorList::new();
    }
    if c.s("restartPolicy") == "Always" {
        if !c.a("restartPolicyRules").is_empty() {
            return vec![FieldError::forbidden(
                &p.child("restartPolicyRules"),
                "restartPolicyRules are not allowed for init containers with restart policy Always",
            )];
        }
        return ErrorList::new();
    }
    container_restart_policy(c, p)
}

/// Whether a terminated container may start again (`podutil.ContainerShouldRestart`): its
/// restart rules first, then its own restart policy, then the pod's.
pub(crate) fn container_should_restart(
    c: &Value,
    pod_restart_policy: &str,
    exit_code: i64,
) -> bool {
    if c.has("restartPolicy") {
        for rule in c.a("restartPolicyRules") {
            let codes = rule.f("exitCodes");
            let listed = codes
                .a("values")
                .iter()
                .any(|v| v.as_i64() == Some(exit_code));
            let matches = match codes.s("operator") {
                "In" => listed,
                "NotIn" => !listed,
                _ => false,
            };
            if matches && rule.s("action") == "Restart" {
                return true;
            }
        }
    }
    let policy = if c.has("restartPolicy") {
        c.s("restartPolicy")
    } else {
        pod_restart_policy
    };
    match policy {
        "Always" => true,
        "OnFailure" => exit_code != 0,
        _ => false,
    }
}

/// Fields of `EphemeralContainerCommon` in declaration order, and whether an ephemeral
/// container may set them.
const EPHEMERAL_FIELDS: &[(&str, bool)] = &[
    ("name", true),
    ("image", true),
    ("command", true),
    ("args", true),
    ("workingDir", true),
    ("ports", false),
    ("envFrom", true),
    ("env", true),
    ("resources", false),
    ("resizePolicy", false),
    ("restartPolicy", false),
    ("restartPolicyRules", false),
    ("volumeMounts", true),
    ("volumeDevices", true),
    ("livenessProbe", false),
    ("readinessProbe", false),
    ("startupProbe", false),
    ("lifecycle", false),
    ("terminationMessagePath", true),
    ("terminationMessagePolicy", true),
    ("imagePullPolicy", true),
    ("securityContext", true),
    ("stdin", true),
    ("stdinOnce", true),
    ("tty", true),
];

/// `validateEphemeralContainers`.
pub(crate) fn validate_ephemeral_containers(spec: &Value, path: &Path, ctx: &Ctx) -> ErrorList {
    let ephemeral = spec.a("ephemeralContainers");
    if ephemeral.is_empty() {
        return ErrorList::new();
    }
    let mut errs = ErrorList::new();
    let others: BTreeSet<&str> = spec
        .a("containers")
        .iter()
        .chain(spec.a("initContainers"))
        .map(|c| c.s("name"))
        .collect();
    let mut all = others.clone();
    for (i, c) in ephemeral.iter().enumerate() {
        let p = path.index(i);
        errs.extend(container_common(c, &p, ctx));
        errs.extend(image_whitespace(c, &p));
        let name = c.s("name");
        if !all.insert(name) {
            errs.push(FieldError::duplicate(&p.child("name"), name));
        }
        let target = c.s("targetContainerName");
        if !target.is_empty() && !others.contains(target) {
            errs.push(FieldError::not_found(
                &p.child("targetContainerName"),
                target,
            ));
        }
        for (field, allowed) in EPHEMERAL_FIELDS {
            if !allowed && !is_zero(c.f(field)) {
                errs.push(FieldError::forbidden(
                    &p.child(field),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        for (j, m) in c.a("volumeMounts").iter().enumerate() {
            for f in ["subPath", "subPathExpr"] {
                if !m.s(f).is_empty() {
                    errs.push(FieldError::forbidden(
                        &p.child("volumeMounts").index(j).child(f),
                        "cannot be set for an Ephemeral Container",
                    ));
                }
            }
        }
    }
    errs
}

/// `validateContainerOnlyForPod`: a pod's image has no surrounding whitespace.
pub(crate) fn image_whitespace(c: &Value, p: &Path) -> ErrorList {
    let image = c.s("image");
    if image.len() != image.trim().len() {
        return vec![FieldError::invalid(
            &p.child("image"),
            image,
            "must not have leading or trailing whitespace",
        )];
    }
    ErrorList::new()
}

/// `validateContainerCommon`: what every kind of container shares.
fn container_common(c: &Value, p: &Path, ctx: &Ctx) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = c.s("name");
    if name.is_empty() {
        errs.push(FieldError::required(&p.child("name"), ""));
    } else {
        errs.extend(dns_label(name, &p.child("name")));
    }
    // Whitespace-only images are a token some tools put in templates; only pods refuse
    // them (see image_whitespace).
    if c.s("image").is_empty() {
        errs.push(FieldError::required(&p.child("image"), ""));
    }
    match c.s("terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            &p.child("terminationMessagePolicy"),
            "",
        )),
        other => errs.push(FieldError::not_supported(
            &p.child("terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    let mounts: BTreeMap<&str, &str> = c
        .a("volumeMounts")
        .iter()
        .map(|m| (m.s("name"), m.s("mountPath")))
        .collect();
    let devices: BTreeMap<&str, &str> = c
        .a("volumeDevices")
        .iter()
        .map(|d| (d.s("name"), d.s("devicePath")))
        .collect();
    errs.extend(validate_ports(c.a("ports"), &p.child("ports")));
    errs.extend(validate_env(c.a("env"), &p.child("env"), ctx));
    errs.extend(validate_env_from(c.a("envFrom"), &p.child("envFrom"), ctx));
    errs.extend(validate_mounts(c, &devices, &p.child("volumeMounts"), ctx));
    errs.extend(validate_devices(
        c.a("volumeDevices"),
        &mounts,
        &p.child("volumeDevices"),
        ctx,
    ));
    errs.extend(pull_policy(
        c.s("imagePullPolicy"),
        &p.child("imagePullPolicy"),
    ));
    errs.extend(validate_requirements(
        c.f("resources"),
        ctx.claim_names,
        &p.child("resources"),
        Level::Container,
        ctx.opts,
    ));
    errs.extend(resize_policy(
        c.a("resizePolicy"),
        &p.child("resizePolicy"),
        ctx.restart_policy,
    ));
    errs.extend(validate_security_context(
        c.f("securityContext"),
        &p.child("securityContext"),
        ctx.host_users,
    ));
    errs
}

/// `validatePullPolicy`.
pub(crate) fn pull_policy(policy: &str, path: &Path) -> ErrorList {
    match policy {
        "Always" | "IfNotPresent" | "Never" => ErrorList::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(path, other, PULL_POLICIES)],
    }
}

/// `validateResizePolicy`.
fn resize_policy(policies: &[Value], path: &Path, pod_restart_policy: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (i, p) in policies.iter().enumerate() {
        let resource = p.s("resourceName");
        if !seen.insert(resource) {
            errs.push(FieldError::duplicate(&path.index(i), resource));
        }
        match resource {
            "cpu" | "memory" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(path, other, &["cpu", "memory"])),
        }
        let restart = p.s("restartPolicy");
        match restart {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(
                path,
                other,
                &["NotRequired", "RestartContainer"],
            )),
        }
        if pod_restart_policy == "Never" && restart != "NotRequired" {
            errs.push(FieldError::invalid(
                path,
                restart,
                "must be 'NotRequired' when pod `restartPolicy` is 'Never'",
            ));
        }
    }
    errs
}

/// `validateContainerPorts`.
fn validate_ports(ports: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        let name = port.s("name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                errs.extend(invalid_each(name, &p.child("name"), msgs));
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
        }
        match port.i("containerPort").unwrap_or(0) {
            0 => errs.push(FieldError::required(&p.child("containerPort"), "")),
            n => {
                for msg in is_valid_port_num(n) {
                    errs.push(FieldError::invalid(&p.child("containerPort"), n, msg));
                }
            }
        }
        let host = port.i("hostPort").unwrap_or(0);
        if host != 0 {
            for msg in is_valid_port_num(host) {
                errs.push(FieldError::invalid(&p.child("hostPort"), host, msg));
            }
        }
        match port.s("protocol") {
            "" => errs.push(FieldError::required(&p.child("protocol"), "")),
            proto if !PROTOCOLS.contains(&proto) => {
                errs.push(FieldError::not_supported(
                    &p.child("protocol"),
                    proto,
                    PROTOCOLS,
                ));
            }
            _ => {}
        }
    }
    errs
}

/// `AccumulateUniqueHostPorts`: a protocol/hostIP/hostPort triple is used once.
fn host_port_conflicts(containers: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in c.a("ports").iter().enumerate() {
            let host = port.i("hostPort").unwrap_or(0);
            if host == 0 {
                continue;
            }
            let key = format!("{}/{}/{}", port.s("protocol"), port.s("hostIP"), host);
            if seen.contains(&key) {
                errs.push(FieldError::duplicate(
                    &path.index(ci).child("ports").index(pi).child("hostPort"),
                    key.as_str(),
                ));
            } else {
                seen.insert(key);
            }
        }
    }
    errs
}

fn env_name(name: &str, path: &Path, ctx: &Ctx) -> ErrorList {
    let msgs = if ctx.opts.relaxed_env_names {
        is_relaxed_env_var_name(name)
    } else {
        is_env_var_name(name)
    };
    invalid_each(name, path, msgs)
}

/// `ValidateEnv`.
fn validate_env(vars: &[Value], path: &Path, ctx: &Ctx) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = path.index(i);
        let name = ev.s("name");
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else {
            errs.extend(env_name(name, &p.child("name"), ctx));
        }
        errs.extend(env_value_from(ev, &p.child("valueFrom")));
    }
    errs
}

const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// The pod fields a downward API volume file may name in its `fieldRef` (upstream's
/// `validVolumeDownwardAPIFieldPathExpressions`; environment variables may name more).
pub(super) const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

const RESOURCE_FIELD_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

fn env_value_from(ev: &Value, path: &Path) -> ErrorList {
    let from = ev.f("valueFrom");
    if !from.is_object() {
        return ErrorList::new();
    }
    let mut errs = ErrorList::new();
    let mut sources = 0;
    if from.has("fieldRef") {
        sources += 1;
        errs.extend(object_field_selector(
            from.f("fieldRef"),
            ENV_FIELD_PATHS,
            &path.child("fieldRef"),
        ));
    }
    if from.has("resourceFieldRef") {
        sources += 1;
        errs.extend(resource_field_selector(
            from.f("resourceFieldRef"),
            &path.child("resourceFieldRef"),
            false,
        ));
    }
    for (key, p) in [
        ("configMapKeyRef", "configMapKeyRef"),
        ("secretKeyRef", "secretKeyRef"),
    ] {
        if from.has(key) {
            sources += 1;
            errs.extend(key_selector(from.f(key), &path.child(p)));
        }
    }
    if from.has("fileKeyRef") {
        sources += 1;
        errs.extend(file_key_selector(
            from.f("fileKeyRef"),
            &path.child("fileKeyRef"),
        ));
    }
    if sources == 0 {
        errs.push(FieldError::invalid(
            path,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`",
        ));
    } else if !ev.s("value").is_empty() {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not be specified when `value` is not empty",
        ));
    } else if sources > 1 {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not have more than one field specified at a time",
        ));
    }
    errs
}

/// `validateFileKeySelector` (`EnvFiles`, beta in 1.35): a key, a volume and a path.
fn file_key_selector(s: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let key = s.s("key");
    if key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    } else {
        errs.extend(invalid_each(
            key,
            &path.child("key"),
            is_relaxed_env_var_name(key),
        ));
    }
    let volume = s.s("volumeName");
    if volume.is_empty() {
        errs.push(FieldError::required(&path.child("volumeName"), ""));
    } else {
        errs.extend(dns_label(volume, &path.child("volumeName")));
    }
    let file = s.s("path");
    if file.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    } else {
        errs.extend(path_no_backsteps(file, &path.child("path")));
    }
    errs
}

/// `fieldpath.SplitMaybeSubscriptedPath`: `metadata.labels['key']` → (`metadata.labels`,
/// `key`).
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let s = path.strip_suffix("']")?;
    let (base, key) = s.split_once("['")?;
    (!base.is_empty()).then_some((base, key))
}

/// `validateObjectFieldSelector`.
pub(crate) fn object_field_selector(fs: &Value, valid: &[&str], path: &Path) -> ErrorList {
    let api_version = fs.s("apiVersion");
    let field_path = fs.s("fieldPath");
    if api_version.is_empty() {
        return vec![FieldError::required(&path.child("apiVersion"), "")];
    }
    if field_path.is_empty() {
        return vec![FieldError::required(&path.child("fieldPath"), "")];
    }
    if api_version != "v1" {
        return vec![FieldError::invalid(
            &path.child("fieldPath"),
            field_path,
            format!("error converting fieldPath: unsupported pod version: {api_version}"),
        )];
    }
    if let Some((base, key)) = split_subscript(field_path) {
        return match base {
            "metadata.annotations" => validate_qualified_name(&key.to_lowercase(), path),
            "metadata.labels" => validate_qualified_name(key, path),
            _ => vec![FieldError::invalid(
                &path.child("fieldPath"),
                field_path,
                format!(
                    "error converting fieldPath: field label does not support subscript: {field_path}"
                ),
            )],
        };
    }
    // What the conversion knows (`spec.host` is an old spelling of `spec.nodeName`).
    let known = [
        "metadata.annotations",
        "metadata.labels",
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.serviceAccountName",
        "spec.schedulerName",
        "status.phase",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
        "spec.host",
    ];
    if !known.contains(&field_path) {
        return vec![FieldError::invalid(
            &path.child("fieldPath"),
            field_path,
            format!("error converting fieldPath: field label not supported: {field_path}"),
        )];
    }
    let field_path = if field_path == "spec.host" {
        "spec.nodeName"
    } else {
        field_path
    };
    if !valid.contains(&field_path) {
        return vec![FieldError::not_supported(
            &path.child("fieldPath"),
            field_path,
            valid,
        )];
    }
    ErrorList::new()
}

/// `validateContainerResourceFieldSelector` with its divisor check.
pub(crate) fn resource_field_selector(fs: &Value, path: &Path, volume: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let resource = fs.s("resource");
    if volume && fs.s("containerName").is_empty() {
        errs.push(FieldError::required(&path.child("containerName"), ""));
    } else if resource.is_empty() {
        errs.push(FieldError::required(&path.child("resource"), ""));
    } else if !RESOURCE_FIELD_PATHS.contains(&resource)
        && !resource.starts_with("requests.hugepages-")
        && !resource.starts_with("limits.hugepages-")
    {
        errs.push(FieldError::not_supported(
            &path.child("resource"),
            resource,
            RESOURCE_FIELD_PATHS,
        ));
    }
    let divisor = fs.f("divisor");
    let Some(d) = quantity_of(divisor) else {
        return errs;
    };
    if d.is_zero() {
        return errs;
    }
    let text = d.to_string();
    let bytes = [
        "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
    ];
    let bytes_list = "1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei";
    let msg = match resource {
        "limits.cpu" | "requests.cpu" if !["1m", "1"].contains(&text.as_str()) => {
            Some("only divisor's values 1m and 1 are supported with the cpu resource".to_string())
        }
        "limits.memory" | "requests.memory" if !bytes.contains(&text.as_str()) => Some(format!(
            "only divisor's values {bytes_list} are supported with the memory resource"
        )),
        "limits.ephemeral-storage" | "requests.ephemeral-storage"
            if !bytes.contains(&text.as_str()) =>
        {
            Some(format!(
                "only divisor's values {bytes_list} are supported with the local ephemeral storage resource"
            ))
        }
        _ => None,
    };
    if let Some(msg) = msg {
        errs.push(FieldError::invalid(&path.child("divisor"), resource, msg));
    }
    if (resource.starts_with("requests.hugepages-") || resource.starts_with("limits.hugepages-"))
        && !bytes.contains(&text.as_str())
    {
        errs.push(FieldError::invalid(
            &path.child("divisor"),
            resource,
            format!("only divisor's values {bytes_list} are supported with the hugepages resource"),
        ));
    }
    errs
}

/// `validateConfigMapKeySelector` / `validateSecretKeySelector`.
fn key_selector(s: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = s.s("name");
    errs.extend(invalid_each(
        name,
        &path.child("name"),
        k1s_apimachinery::meta::name_is_dns_subdomain(name, false),
    ));
    let key = s.s("key");
    if key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    } else {
        errs.extend(invalid_each(
            key,
            &path.child("key"),
            is_config_map_key(key),
        ));
    }
    errs
}

/// `ValidateEnvFrom`.
fn validate_env_from(sources: &[Value], path: &Path, ctx: &Ctx) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ev) in sources.iter().enumerate() {
        let p = path.index(i);
        let prefix = ev.s("prefix");
        if !prefix.is_empty() {
            errs.extend(env_name(prefix, &p.child("prefix"), ctx));
        }
        let mut n = 0;
        for key in ["configMapRef", "secretRef"] {
            if ev.has(key) {
                n += 1;
                let name = ev.f(key).s("name");
                let np = p.child(key).child("name");
                if name.is_empty() {
                    errs.push(FieldError::required(&np, ""));
                } else {
                    errs.extend(invalid_each(
                        name,
                        &np,
                        k1s_apimachinery::meta::name_is_dns_subdomain(name, true),
                    ));
                }
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

/// `ValidateVolumeMounts`.
fn validate_mounts(c: &Value, devices: &BTreeMap<&str, &str>, path: &Path, ctx: &Ctx) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut mount_points: BTreeSet<&str> = BTreeSet::new();
    let privileged = c.f("securityContext").b("privileged");
    for (i, m) in c.a("volumeMounts").iter().enumerate() {
        let p = path.index(i);
        let name = m.s("name");
        let mount_path = m.s("mountPath");
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if !ctx.volumes.contains_key(name) {
            errs.push(FieldError::not_found(&p.child("name"), name));
        }
        if mount_path.is_empty() {
            errs.push(FieldError::required(&p.child("mountPath"), ""));
        }
        if !mount_points.insert(mount_path) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        if devices.contains_key(name) {
            errs.push(FieldError::invalid(
                &p.child("name"),
                name,
                "must not already exist in volumeDevices",
            ));
        }
        if devices.values().any(|d| *d == mount_path) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                mount_path,
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub_path = m.s("subPath");
        let sub_path_expr = m.s("subPathExpr");
        // Upstream reports these two at the list's path, not the item's.
        if !sub_path.is_empty() {
            errs.extend(local_descending_path(sub_path, &path.child("subPath")));
        }
        if !sub_path_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    &p.child("subPathExpr"),
                    sub_path_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(local_descending_path(
                sub_path_expr,
                &path.child("subPathExpr"),
            ));
        }
        let propagation = m.s("mountPropagation");
        if m.has("mountPropagation") {
            let pp = path.child("mountPropagation");
            let supported = ["Bidirectional", "HostToContainer", "None"];
            if !supported.contains(&propagation) {
                errs.push(FieldError::not_supported(&pp, propagation, &supported));
            }
            if propagation == "Bidirectional" && !privileged {
                errs.push(FieldError::forbidden(
                    &pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
        if m.has("recursiveReadOnly") {
            let rp = path.child("recursiveReadOnly");
            match m.s("recursiveReadOnly") {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if !m.b("readOnly") {
                        errs.push(FieldError::forbidden(
                            &rp,
                            "may only be specified when readOnly is true",
                        ));
                    }
                    if m.has("mountPropagation") && propagation != "None" {
                        errs.push(FieldError::forbidden(
                            &rp,
                            "may only be specified when mountPropagation is None or not specified",
                        ));
                    }
                }
                other => errs.push(FieldError::not_supported(
                    &rp,
                    other,
                    &["Disabled", "Enabled", "IfPossible"],
                )),
            }
        }
    }
    errs
}

/// `ValidateVolumeDevices`.
fn validate_devices(
    devices: &[Value],
    mounts: &BTreeMap<&str, &str>,
    path: &Path,
    ctx: &Ctx,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut paths: BTreeSet<&str> = BTreeSet::new();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, d) in devices.iter().enumerate() {
        let p = path.index(i);
        let name = d.s("name");
        let dev_path = d.s("devicePath");
        let volume = ctx.volumes.get(name);
        let is_pvc = volume.is_some_and(|v| v.has("persistentVolumeClaim") || v.has("ephemeral"));
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if names.contains(name) {
            errs.push(FieldError::invalid(
                &p.child("name"),
                name,
                "must be unique",
            ));
        }
        if volume.is_some() && !is_pvc {
            errs.push(FieldError::invalid(
                &p.child("name"),
                name,
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            ));
        }
        if volume.is_none() {
            errs.push(FieldError::not_found(&p.child("name"), name));
        }
        if dev_path.is_empty() {
            errs.push(FieldError::required(&p.child("devicePath"), ""));
        }
        if paths.contains(dev_path) {
            errs.push(FieldError::invalid(
                &p.child("devicePath"),
                dev_path,
                "must be unique",
            ));
        }
        if !dev_path.is_empty() && !path_no_backsteps(dev_path, &p).is_empty() {
            errs.push(FieldError::invalid(
                &p.child("devicePath"),
                dev_path,
                "can not contain backsteps ('..')",
            ));
        } else {
            paths.insert(dev_path);
        }
        if mounts.contains_key(name) {
            errs.push(FieldError::invalid(
                &p.child("name"),
                name,
                "must not already exist in volumeMounts",
            ));
        }
        if mounts.values().any(|m| *m == dev_path) {
            errs.push(FieldError::invalid(
                &p.child("devicePath"),
                dev_path,
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !name.is_empty() {
            names.insert(name);
        }
    }
    errs
}

/// `validateLivenessProbe`, `validateReadinessProbe`, `validateStartupProbe`.
fn validate_probe(kind: &str, probe: &Value, path: &Path, ctx: &Ctx) -> ErrorList {
    let mut errs = validate_handler(probe, false, path, ctx);
    for f in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        if let Some(v) = probe.i(f)
            && v < 0
        {
            errs.push(FieldError::invalid(
                &path.child(f),
                v,
                "must be greater than or equal to 0",
            ));
        }
    }
    if let Some(g) = probe.i("terminationGracePeriodSeconds")
        && g <= 0
    {
        errs.push(FieldError::invalid(
            &path.child("terminationGracePeriodSeconds"),
            g,
            "must be greater than 0",
        ));
    }
    match kind {
        "readinessProbe" => {
            if let Some(g) = probe.i("terminationGracePeriodSeconds") {
                errs.push(FieldError::invalid(
                    &path.child("terminationGracePeriodSeconds"),
                    g,
                    "must not be set for readinessProbes",
                ));
            }
        }
        _ => {
            let st = probe.i("successThreshold").unwrap_or(0);
            if st != 1 {
                errs.push(FieldError::invalid(
                    &path.child("successThreshold"),
                    st,
                    "must be 1",
                ));
            }
        }
    }
    errs
}

/// `validateLifecycle`.
fn validate_lifecycle(lifecycle: &Value, path: &Path, ctx: &Ctx) -> ErrorList {
    let mut errs = ErrorList::new();
    for hook in ["postStart", "preStop"] {
        if lifecycle.has(hook) {
            errs.extend(validate_handler(
                lifecycle.f(hook),
                true,
                &path.child(hook),
                ctx,
            ));
        }
    }
    errs
}

/// `ValidatePortNumOrName` of an int-or-string port.
fn port_num_or_name(port: &Value, path: &Path) -> ErrorList {
    match port {
        Value::String(s) => invalid_each(s, path, is_valid_port_name(s)),
        other => {
            let n = other.as_i64().unwrap_or(0);
            is_valid_port_num(n)
                .into_iter()
                .map(|m| FieldError::invalid(path, n, m))
                .collect()
        }
    }
}

/// `validateHandler`: exactly one handler of a probe (exec, httpGet, tcpSocket, grpc) or a
/// lifecycle hook (exec, httpGet, tcpSocket, sleep).
fn validate_handler(h: &Value, lifecycle: bool, path: &Path, ctx: &Ctx) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut n = 0;
    let kinds: &[&str] = if lifecycle {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    } else {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    };
    for kind in kinds {
        if !h.has(kind) {
            continue;
        }
        let p = path.child(kind);
        if n > 0 {
            errs.push(FieldError::forbidden(
                &p,
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        n += 1;
        let v = h.f(kind);
        match *kind {
            "exec" if v.a("command").is_empty() => {
                errs.push(FieldError::required(&p.child("command"), ""));
            }
            "httpGet" => {
                if v.s("path").is_empty() {
                    errs.push(FieldError::required(&p.child("path"), ""));
                }
                errs.extend(port_num_or_name(v.f("port"), &p.child("port")));
                let scheme = v.s("scheme");
                if !["HTTP", "HTTPS"].contains(&scheme) {
                    errs.push(FieldError::not_supported(
                        &p.child("scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
                for header in v.a("httpHeaders") {
                    let name = header.s("name");
                    errs.extend(invalid_each(
                        name,
                        &p.child("httpHeaders"),
                        is_http_header_name(name),
                    ));
                }
            }
            "tcpSocket" => errs.extend(port_num_or_name(v.f("port"), &p.child("port"))),
            "grpc" => {
                let port = v.i("port").unwrap_or(0);
                for msg in is_valid_port_num(port) {
                    errs.push(FieldError::invalid(&p.child("port"), port, msg));
                }
            }
            "sleep" => {
                let seconds = v.i("seconds").unwrap_or(0);
                if let Some(grace) = ctx.grace_period
                    && (seconds < 0 || seconds > grace)
                {
                    errs.push(FieldError::invalid(
                        &p,
                        seconds,
                        format!(
                            "must be non-negative and less than terminationGracePeriodSeconds ({grace})"
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

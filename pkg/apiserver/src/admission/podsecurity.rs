//! PodSecurity admission: the Pod Security Standards (privileged, baseline, restricted)
//! chosen per namespace by the `pod-security.kubernetes.io/{enforce,audit,warn}[-version]`
//! labels. `enforce` refuses pods, `warn` answers with Warning headers; workloads get
//! warnings for their pod templates; changing a namespace's enforce level warns about
//! its existing pods. No exemptions are configured (upstream's default).

use k1s_apimachinery::{FieldError, GroupKind, GroupResource, Path, Status};
use serde_json::Value;

use super::{Attributes, Operation};
use crate::registry::generic::GenericStore;

const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// No restrictions.
    Privileged,
    /// Known privilege escalations prevented.
    Baseline,
    /// Hardening best practices.
    Restricted,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// A level at a version (`restricted:latest`, `baseline:v1.30`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The level.
    pub level: Level,
    /// `latest` or `v1.N`.
    pub version: String,
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.level.as_str(), self.version)
    }
}

fn valid_version(v: &str) -> bool {
    v == "latest"
        || v.strip_prefix("v1.")
            .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
}

/// The policies of a namespace's labels (upstream's `PolicyToEvaluate`), with the
/// labels that do not parse. Absent labels mean privileged at latest. An invalid enforce
/// level means restricted; invalid audit and warn levels mean privileged (fail open); an
/// invalid version means latest.
pub fn policies(labels: Option<&serde_json::Map<String, Value>>) -> (Policies, Vec<FieldError>) {
    let mut errs = Vec::new();
    let mut get = |mode: &str, fail_open: bool| {
        let label = |suffix: &str| format!("{LABEL_PREFIX}{mode}{suffix}");
        let value = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        let path = Path::new("metadata").child("labels");
        let level = match value(&label("")) {
            None => Level::Privileged,
            Some(l) => Level::parse(l).unwrap_or_else(|| {
                errs.push(FieldError::invalid(
                    &path.key(&label("")),
                    l,
                    "must be one of privileged, baseline, restricted",
                ));
                if fail_open {
                    Level::Privileged
                } else {
                    Level::Restricted
                }
            }),
        };
        let version = match value(&label("-version")) {
            None => "latest".to_string(),
            Some(v) if valid_version(v) => v.to_string(),
            Some(v) => {
                errs.push(FieldError::invalid(
                    &path.key(&label("-version")),
                    v,
                    "must be \"latest\" or \"v1.x\"",
                ));
                "latest".to_string()
            }
        };
        Policy { level, version }
    };
    let enforce = get("enforce", false);
    let audit = get("audit", true);
    let warn = get("warn", true);
    (
        Policies {
            enforce,
            audit,
            warn,
        },
        errs,
    )
}

/// The three policies of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies {
    /// Refuses pods.
    pub enforce: Policy,
    /// Would annotate audit events (there is no audit log yet).
    pub audit: Policy,
    /// Answers with warnings.
    pub warn: Policy,
}

/// The policy of one mode (`enforce`, `audit`, `warn`) from a namespace's labels.
pub fn policy(labels: Option<&serde_json::Map<String, Value>>, mode: &str) -> Policy {
    let (p, _) = policies(labels);
    match mode {
        "enforce" => p.enforce,
        "audit" => p.audit,
        _ => p.warn,
    }
}

/// Where a kind keeps its pod template, for the workload kinds upstream checks.
fn template_path(group: &str, plural: &str) -> Option<&'static str> {
    match (group, plural) {
        ("", "replicationcontrollers") => Some("/spec/template"),
        ("", "podtemplates") => Some("/template"),
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets") => {
            Some("/spec/template")
        }
        ("batch", "jobs") => Some("/spec/template"),
        ("batch", "cronjobs") => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// Whether PodSecurity looks at this request at all.
pub fn applies(attrs: &Attributes<'_>) -> bool {
    let info = attrs.info;
    if !attrs.subresource.is_empty() || attrs.operation == Operation::Delete {
        return false;
    }
    applies_to(&info.group, &info.plural)
}

/// Whether pod security checks objects of a resource (pods, namespaces and the kinds
/// with pod templates), on their create and update.
pub fn applies_to(group: &str, plural: &str) -> bool {
    (group.is_empty() && matches!(plural, "pods" | "namespaces"))
        || template_path(group, plural).is_some()
}

fn namespace_labels(generic: &GenericStore, ns: &str) -> Option<serde_json::Map<String, Value>> {
    let kv = generic
        .store()
        .cache()
        .get(&format!("/registry/namespaces/{ns}"))?;
    let obj: Value = serde_json::from_slice(&kv.value).ok()?;
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
}

/// Admits a pod, workload or namespace (objects in the request's version): an error for
/// a pod the enforce level forbids, else the warnings to return.
pub fn admit(
    generic: &GenericStore,
    attrs: &Attributes<'_>,
    object: &Value,
) -> Result<Vec<String>, Status> {
    if !applies(attrs) {
        return Ok(Vec::new());
    }
    let info = attrs.info;
    if info.group.is_empty() && info.plural == "namespaces" {
        return namespace(generic, attrs, object);
    }
    let labels = namespace_labels(generic, attrs.namespace);
    let (p, _) = policies(labels.as_ref());
    let is_pod = info.group.is_empty() && info.plural == "pods";
    // Pods are refused by enforce and warned by warn; workloads are only warned about.
    if p.warn.level == Level::Privileged && (!is_pod || p.enforce.level == Level::Privileged) {
        return Ok(Vec::new());
    }
    let (meta, spec) = if is_pod {
        // Updates that leave the pod spec alone (labels, annotations) are not checked.
        if attrs.operation == Operation::Update
            && attrs.old_object.and_then(|o| o.get("spec")) == object.get("spec")
        {
            return Ok(Vec::new());
        }
        (object.get("metadata"), object.get("spec"))
    } else {
        let Some(path) = template_path(&info.group, &info.plural) else {
            return Ok(Vec::new());
        };
        let Some(template) = object.pointer(path).filter(|t| !t.is_null()) else {
            return Ok(Vec::new());
        };
        (template.get("metadata"), template.get("spec"))
    };
    let null = Value::Null;
    let (meta, spec) = (meta.unwrap_or(&null), spec.unwrap_or(&null));
    if is_pod {
        let violations = check(p.enforce.level, meta, spec);
        if !violations.is_empty() {
            return Err(Status::forbidden(
                &GroupResource::new("", "pods"),
                attrs.name,
                &format!(
                    "violates PodSecurity {:?}: {}",
                    p.enforce.to_string(),
                    join(&violations)
                ),
            ));
        }
        if p.warn == p.enforce {
            return Ok(Vec::new());
        }
    }
    let violations = check(p.warn.level, meta, spec);
    if violations.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![format!(
        "would violate PodSecurity {:?}: {}",
        p.warn.to_string(),
        join(&violations)
    )])
}

/// A namespace: its labels must parse (on create, and on update when they changed: 422);
/// an update that sets or tightens the enforce level warns about the pods already there
/// that the new level forbids (they keep running, as upstream).
fn namespace(
    generic: &GenericStore,
    attrs: &Attributes<'_>,
    object: &Value,
) -> Result<Vec<String>, Status> {
    let labels = |o: Option<&Value>| {
        o.and_then(|o| o.pointer("/metadata/labels"))
            .and_then(Value::as_object)
            .cloned()
    };
    let (new, new_errs) = policies(labels(Some(object)).as_ref());
    let invalid =
        |errs: &[FieldError]| Status::invalid(&GroupKind::new("", "Namespace"), attrs.name, errs);
    if attrs.operation == Operation::Create {
        return if new_errs.is_empty() {
            Ok(Vec::new())
        } else {
            Err(invalid(&new_errs))
        };
    }
    let (old, old_errs) = policies(labels(attrs.old_object).as_ref());
    if !new_errs.is_empty() && new_errs != old_errs {
        return Err(invalid(&new_errs));
    }
    let (new, old) = (new.enforce, old.enforce);
    if new == old
        || new.level == Level::Privileged
        || new.version == old.version && new.level <= old.level
    {
        return Ok(Vec::new());
    }
    Ok(namespace_warnings(generic, crate::meta::name(object), &new))
}

/// Upstream's warnings for the pods of `ns` that `enforce` forbids: a headline, then one
/// line per set of reasons naming the first pod (by name) and how many others share them.
fn namespace_warnings(generic: &GenericStore, ns: &str, enforce: &Policy) -> Vec<String> {
    let snapshot = generic.registry().snapshot();
    let Some(pods) = snapshot.get("", "v1", "pods") else {
        return Vec::new();
    };
    let (items, _, _) =
        generic
            .store()
            .cache()
            .list(&pods.info.collection_prefix(Some(ns)), None, 0);
    // reasons -> (first pod name, count)
    let mut groups: Vec<(String, String, usize)> = Vec::new();
    for kv in items {
        let Ok(pod) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        let null = Value::Null;
        let violations = check(
            enforce.level,
            pod.get("metadata").unwrap_or(&null),
            pod.get("spec").unwrap_or(&null),
        );
        if violations.is_empty() {
            continue;
        }
        let reasons = violations
            .iter()
            .map(|(r, _)| r.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let name = crate::meta::name(&pod).to_string();
        match groups.iter_mut().find(|(r, _, _)| *r == reasons) {
            Some((_, first, count)) => {
                *count += 1;
                if name < *first {
                    *first = name;
                }
            }
            None => groups.push((reasons, name, 1)),
        }
    }
    if groups.is_empty() {
        return Vec::new();
    }
    let mut lines: Vec<String> = groups
        .into_iter()
        .map(|(reasons, first, count)| match count {
            1 => format!("{first}: {reasons}"),
            2 => format!("{first} (and 1 other pod): {reasons}"),
            n => format!("{first} (and {} other pods): {reasons}", n - 1),
        })
        .collect();
    lines.sort();
    let mut out = vec![format!(
        "existing pods in namespace {ns:?} violate the new PodSecurity enforce level {:?}",
        enforce.to_string()
    )];
    out.extend(lines);
    out
}

fn join(violations: &[(&'static str, String)]) -> String {
    violations
        .iter()
        .map(|(reason, detail)| {
            if detail.is_empty() {
                reason.to_string()
            } else {
                format!("{reason} ({detail})")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `container "a"` or `containers "a", "b"`.
fn containers_phrase(prefix: &str, names: &[String]) -> String {
    let quoted = names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() == 1 {
        format!("{prefix}container {quoted}")
    } else {
        format!("{prefix}containers {quoted}")
    }
}

/// The containers of a pod spec, in upstream's visiting order.
fn containers(spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect()
}

fn cname(c: &Value) -> String {
    c.get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn sc<'a>(c: &'a Value, field: &str) -> Option<&'a Value> {
    c.get("securityContext")
        .and_then(|s| s.get(field))
        .filter(|v| !v.is_null())
}

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

fn caps<'a>(c: &'a Value, list: &str) -> Vec<&'a str> {
    sc(c, "capabilities")
        .and_then(|cap| cap.get(list))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a pod (metadata and spec) against `level`: the forbidden reasons with their
/// details, in upstream's check order.
pub fn check(level: Level, _meta: &Value, spec: &Value) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if level == Level::Privileged {
        return out;
    }
    let restricted = level == Level::Restricted;
    let windows = spec.pointer("/os/name").and_then(Value::as_str) == Some("windows");
    let all = containers(spec);
    // allowPrivilegeEscalation
    if restricted && !windows {
        let bad: Vec<String> = all
            .iter()
            .filter(|c| sc(c, "allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false))
            .map(|c| cname(c))
            .collect();
        if !bad.is_empty() {
            out.push((
                "allowPrivilegeEscalation != false",
                format!(
                    "{} must set securityContext.allowPrivilegeEscalation=false",
                    containers_phrase("", &bad)
                ),
            ));
        }
    }
    // capabilities_baseline / capabilities_restricted
    if restricted {
        if !windows {
            let mut details = Vec::new();
            let no_drop: Vec<String> = all
                .iter()
                .filter(|c| !caps(c, "drop").contains(&"ALL"))
                .map(|c| cname(c))
                .collect();
            if !no_drop.is_empty() {
                details.push(format!(
                    "{} must set securityContext.capabilities.drop=[\"ALL\"]",
                    containers_phrase("", &no_drop)
                ));
            }
            let (names, added) = added_caps(&all, &["NET_BIND_SERVICE"]);
            if !names.is_empty() {
                details.push(format!(
                    "{} must not include {} in securityContext.capabilities.add",
                    containers_phrase("", &names),
                    quoted_list(&added)
                ));
            }
            if !details.is_empty() {
                out.push(("unrestricted capabilities", details.join("; ")));
            }
        }
    } else {
        let (names, added) = added_caps(&all, BASELINE_CAPABILITIES);
        if !names.is_empty() {
            out.push((
                "non-default capabilities",
                format!(
                    "{} must not include {} in securityContext.capabilities.add",
                    containers_phrase("", &names),
                    quoted_list(&added)
                ),
            ));
        }
    }
    // hostNamespaces
    let host: Vec<&str> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|f| spec.get(*f).and_then(Value::as_bool) == Some(true))
        .collect();
    if !host.is_empty() {
        out.push((
            "host namespaces",
            host.iter()
                .map(|h| format!("{h}=true"))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    let volumes: Vec<&Value> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    // hostPathVolumes
    let host_paths: Vec<String> = volumes
        .iter()
        .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(|v| cname(v))
        .collect();
    if !host_paths.is_empty() {
        let noun = if host_paths.len() == 1 {
            "volume"
        } else {
            "volumes"
        };
        out.push((
            "hostPath volumes",
            format!("{noun} {}", quoted_list(&host_paths)),
        ));
    }
    // hostPorts
    let mut port_users = Vec::new();
    let mut ports = Vec::new();
    for c in &all {
        let mut uses = false;
        for p in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(hp) = p
                .get("hostPort")
                .and_then(Value::as_i64)
                .filter(|hp| *hp != 0)
            {
                uses = true;
                if !ports.contains(&hp) {
                    ports.push(hp);
                }
            }
        }
        if uses {
            port_users.push(cname(c));
        }
    }
    if !port_users.is_empty() {
        let list = ports
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let (verb, noun) = if port_users.len() == 1 {
            ("uses", "hostPort")
        } else {
            ("use", "hostPorts")
        };
        let noun = if ports.len() > 1 { "hostPorts" } else { noun };
        out.push((
            "hostPort",
            format!(
                "{} {verb} {noun} {list}",
                containers_phrase("", &port_users)
            ),
        ));
    }
    // privileged
    let privileged: Vec<String> = all
        .iter()
        .filter(|c| sc(c, "privileged").and_then(Value::as_bool) == Some(true))
        .map(|c| cname(c))
        .collect();
    if !privileged.is_empty() {
        out.push((
            "privileged",
            format!(
                "{} must not set securityContext.privileged=true",
                containers_phrase("", &privileged)
            ),
        ));
    }
    // procMount
    let unmasked: Vec<String> = all
        .iter()
        .filter(|c| {
            sc(c, "procMount")
                .and_then(Value::as_str)
                .is_some_and(|m| m != "Default")
        })
        .map(|c| cname(c))
        .collect();
    if !unmasked.is_empty() {
        out.push((
            "procMount",
            format!(
                "{} must not set securityContext.procMount to \"Unmasked\"",
                containers_phrase("", &unmasked)
            ),
        ));
    }
    // restrictedVolumes
    if restricted {
        let mut names = Vec::new();
        let mut types = Vec::new();
        for v in &volumes {
            let Some(obj) = v.as_object() else { continue };
            for (k, val) in obj {
                if k == "name" || val.is_null() || RESTRICTED_VOLUMES.contains(&k.as_str()) {
                    continue;
                }
                names.push(cname(v));
                if !types.contains(k) {
                    types.push(k.clone());
                }
            }
        }
        if !names.is_empty() {
            let (noun, verb) = if names.len() == 1 {
                ("volume", "uses")
            } else {
                ("volumes", "use")
            };
            let tnoun = if types.len() == 1 { "type" } else { "types" };
            out.push((
                "restricted volume types",
                format!(
                    "{noun} {} {verb} restricted volume {tnoun} {}",
                    quoted_list(&names),
                    quoted_list(&types)
                ),
            ));
        }
    }
    let pod_sc = |f: &str| {
        spec.get("securityContext")
            .and_then(|s| s.get(f))
            .filter(|v| !v.is_null())
    };
    // runAsNonRoot
    if restricted && !windows {
        let mut details = Vec::new();
        let pod_value = pod_sc("runAsNonRoot").and_then(Value::as_bool);
        if pod_value == Some(false) {
            details.push("pod must not set securityContext.runAsNonRoot=false".to_string());
        }
        let explicit_false: Vec<String> = all
            .iter()
            .filter(|c| sc(c, "runAsNonRoot").and_then(Value::as_bool) == Some(false))
            .map(|c| cname(c))
            .collect();
        if !explicit_false.is_empty() {
            details.push(format!(
                "{} must not set securityContext.runAsNonRoot=false",
                containers_phrase("", &explicit_false)
            ));
        }
        if pod_value.is_none() {
            let unset: Vec<String> = all
                .iter()
                .filter(|c| sc(c, "runAsNonRoot").is_none())
                .map(|c| cname(c))
                .collect();
            if !unset.is_empty() {
                details.push(format!(
                    "{} must set securityContext.runAsNonRoot=true",
                    containers_phrase("pod or ", &unset)
                ));
            }
        }
        if !details.is_empty() {
            out.push(("runAsNonRoot != true", details.join("; ")));
        }
    }
    // runAsUser
    if restricted && !windows {
        let mut details = Vec::new();
        if pod_sc("runAsUser").and_then(Value::as_i64) == Some(0) {
            details.push("pod must not set runAsUser=0".to_string());
        }
        let root: Vec<String> = all
            .iter()
            .filter(|c| sc(c, "runAsUser").and_then(Value::as_i64) == Some(0))
            .map(|c| cname(c))
            .collect();
        if !root.is_empty() {
            details.push(format!(
                "{} must not set runAsUser=0",
                containers_phrase("", &root)
            ));
        }
        if !details.is_empty() {
            out.push(("runAsUser=0", details.join("; ")));
        }
    }
    // seccompProfile (baseline, or restricted which also requires one)
    let seccomp_type = |v: Option<&Value>| {
        v.and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let pod_type = seccomp_type(pod_sc("seccompProfile"));
    let mut details = Vec::new();
    if pod_type.as_deref() == Some("Unconfined")
        || restricted
            && pod_type
                .as_deref()
                .is_some_and(|t| t != "RuntimeDefault" && t != "Localhost")
    {
        details.push(format!(
            "pod must not set securityContext.seccompProfile.type to {:?}",
            pod_type.clone().unwrap_or_default()
        ));
    }
    let mut bad_types = Vec::new();
    let bad: Vec<String> = all
        .iter()
        .filter(|c| {
            let t = seccomp_type(sc(c, "seccompProfile"));
            let bad = match t.as_deref() {
                Some("Unconfined") => true,
                Some("RuntimeDefault" | "Localhost") | None => false,
                Some(_) => restricted,
            };
            if bad
                && let Some(t) = t
                && !bad_types.contains(&t)
            {
                bad_types.push(t);
            }
            bad
        })
        .map(|c| cname(c))
        .collect();
    if !bad.is_empty() {
        details.push(format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            containers_phrase("", &bad),
            quoted_list(&bad_types)
        ));
    }
    if restricted && !windows && pod_type.is_none() {
        let unset: Vec<String> = all
            .iter()
            .filter(|c| seccomp_type(sc(c, "seccompProfile")).is_none())
            .map(|c| cname(c))
            .collect();
        if !unset.is_empty() {
            details.push(format!(
                "{} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase("pod or ", &unset)
            ));
        }
    }
    if !details.is_empty() {
        out.push(("seccompProfile", details.join("; ")));
    }
    // sysctls
    let sysctls: Vec<String> = pod_sc("sysctls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .filter(|n| !SAFE_SYSCTLS.contains(n))
        .map(str::to_string)
        .collect();
    if !sysctls.is_empty() {
        out.push(("forbidden sysctls", sysctls.join(", ")));
    }
    out
}

/// Containers adding capabilities outside `allowed`, and those capabilities.
fn added_caps(all: &[&Value], allowed: &[&str]) -> (Vec<String>, Vec<String>) {
    let mut names = Vec::new();
    let mut added = Vec::new();
    for c in all {
        let extra: Vec<&str> = caps(c, "add")
            .into_iter()
            .filter(|cap| !allowed.contains(cap))
            .collect();
        if extra.is_empty() {
            continue;
        }
        names.push(cname(c));
        for cap in extra {
            if !added.iter().any(|a: &String| a == cap) {
                added.push(cap.to_string());
            }
        }
    }
    (names, added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn restricted_names_what_a_plain_pod_lacks_in_upstream_order() {
        let spec = json!({"containers": [{"name": "nginx", "image": "nginx"}]});
        let got = join(&check(Level::Restricted, &json!({}), &spec));
        assert_eq!(
            got,
            "allowPrivilegeEscalation != false (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false), \
unrestricted capabilities (container \"nginx\" must set securityContext.capabilities.drop=[\"ALL\"]), \
runAsNonRoot != true (pod or container \"nginx\" must set securityContext.runAsNonRoot=true), \
seccompProfile (pod or container \"nginx\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert!(check(Level::Baseline, &json!({}), &spec).is_empty());
    }

    #[test]
    fn baseline_refuses_privileged_host_namespaces_and_host_paths() {
        let spec = json!({
            "hostNetwork": true, "hostPID": true,
            "containers": [
                {"name": "c", "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN", "CHOWN"]}},
                 "ports": [{"containerPort": 80, "hostPort": 80}]}
            ],
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}]
        });
        assert_eq!(
            join(&check(Level::Baseline, &json!({}), &spec)),
            "non-default capabilities (container \"c\" must not include \"NET_ADMIN\" in securityContext.capabilities.add), \
host namespaces (hostNetwork=true, hostPID=true), hostPath volumes (volume \"root\"), \
hostPort (container \"c\" uses hostPort 80), privileged (container \"c\" must not set securityContext.privileged=true)"
        );
    }

    #[test]
    fn a_hardened_pod_passes_restricted() {
        let spec = json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
            "volumes": [{"name": "v", "emptyDir": {}}]
        });
        assert!(check(Level::Restricted, &json!({}), &spec).is_empty());
    }

    #[test]
    fn labels_choose_the_policy() {
        let labels = json!({"pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/enforce-version": "v1.30",
            "pod-security.kubernetes.io/warn": "bogus"});
        let l = labels.as_object();
        assert_eq!(policy(l, "enforce").to_string(), "baseline:v1.30");
        // An invalid warn level fails open.
        assert_eq!(policy(l, "warn").to_string(), "privileged:latest");
        assert_eq!(policy(l, "audit").to_string(), "privileged:latest");
        let bad = json!({"pod-security.kubernetes.io/enforce": "strict"});
        let (p, errs) = policies(bad.as_object());
        assert_eq!(p.enforce.to_string(), "restricted:latest");
        assert_eq!(errs.len(), 1);
    }
}

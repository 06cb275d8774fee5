//! Security settings: a container's `securityContext`, the pod's `securityContext` and host
//! namespaces, seccomp and AppArmor profiles (fields and the deprecated annotations),
//! sysctls, Windows options and the per-OS restrictions (upstream `ValidateSecurityContext`,
//! `validatePodSpecSecurityContext`, `validateSysctls`, `validateLinux`, `validateWindows`,
//! `validateWindowsHostProcessPod`, `validateHostUsers`).

use k1s_apimachinery::goformat::quote;
use k1s_apimachinery::validation::is_dns1123_subdomain;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use super::PodOpts;
use super::util::{is_valid_id, local_descending_path};
use crate::kinds::validation::Fields;

/// Calls `f` with each container of every kind and its path (`VisitContainersWithPath`).
pub(crate) fn visit_containers<'a>(
    spec: &'a Value,
    path: &Path,
    mut f: impl FnMut(&'a Value, Path),
) {
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, c) in spec.a(list).iter().enumerate() {
            f(c, path.child(list).index(i));
        }
    }
}

fn ids(sc: &Value, fields: &[&str], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for f in fields {
        if let Some(id) = sc.i(f) {
            for msg in is_valid_id(id) {
                errs.push(FieldError::invalid(&path.child(f), id, msg));
            }
        }
    }
    errs
}

/// `ValidateSecurityContext`: a container's security context.
pub(crate) fn validate_security_context(sc: &Value, path: &Path, host_users: bool) -> ErrorList {
    if !sc.is_object() {
        return ErrorList::new();
    }
    let mut errs = ids(sc, &["runAsUser", "runAsGroup"], path);
    if sc.has("procMount") {
        let pm = sc.s("procMount");
        if !["Default", "Unmasked"].contains(&pm) {
            errs.push(FieldError::not_supported(
                &path.child("procMount"),
                pm,
                &["Default", "Unmasked"],
            ));
        }
        if host_users && pm == "Unmasked" {
            errs.push(FieldError::invalid(
                &path.child("procMount"),
                pm,
                "`hostUsers` must be false to use `Unmasked`",
            ));
        }
    }
    errs.extend(seccomp_profile(
        sc.f("seccompProfile"),
        &path.child("seccompProfile"),
    ));
    if sc.get("allowPrivilegeEscalation") == Some(&Value::Bool(false)) {
        if sc.b("privileged") {
            errs.push(FieldError::invalid(
                path,
                sc.clone(),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        for cap in sc.f("capabilities").a("add") {
            if cap.as_str() == Some("CAP_SYS_ADMIN") {
                errs.push(FieldError::invalid(
                    path,
                    sc.clone(),
                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
                ));
            }
        }
    }
    errs.extend(windows_options(
        sc.f("windowsOptions"),
        &path.child("windowsOptions"),
    ));
    errs.extend(apparmor_profile(
        sc.f("appArmorProfile"),
        &path.child("appArmorProfile"),
    ));
    errs
}

/// `validateSeccompProfileField`.
fn seccomp_profile(sp: &Value, path: &Path) -> ErrorList {
    if !sp.is_object() {
        return ErrorList::new();
    }
    let mut errs = ErrorList::new();
    let kind = sp.s("type");
    let supported = ["Localhost", "RuntimeDefault", "Unconfined"];
    if kind.is_empty() {
        errs.push(FieldError::required(
            &path.child("type"),
            "type is required when seccompProfile is set",
        ));
    } else if !supported.contains(&kind) {
        errs.push(FieldError::not_supported(
            &path.child("type"),
            kind,
            &supported,
        ));
    }
    if kind == "Localhost" {
        match sp.get("localhostProfile").and_then(Value::as_str) {
            None => errs.push(FieldError::required(
                &path.child("localhostProfile"),
                "must be set when seccomp type is Localhost",
            )),
            Some(p) => errs.extend(local_descending_path(p, &path.child("localhostProfile"))),
        }
    } else if sp.has("localhostProfile") {
        errs.push(FieldError::invalid(
            &path.child("localhostProfile"),
            sp.clone(),
            "can only be set when seccomp type is Localhost",
        ));
    }
    errs
}

/// `ValidateAppArmorProfileField`.
fn apparmor_profile(profile: &Value, path: &Path) -> ErrorList {
    if !profile.is_object() {
        return ErrorList::new();
    }
    let mut errs = ErrorList::new();
    let lp = path.child("localhostProfile");
    match profile.s("type") {
        "Localhost" => match profile.get("localhostProfile").and_then(Value::as_str) {
            None => errs.push(FieldError::required(
                &lp,
                "must be set when AppArmor type is Localhost",
            )),
            Some(p) => {
                if p.trim() != p {
                    errs.push(FieldError::invalid(
                        &lp,
                        p,
                        "must not be padded with whitespace",
                    ));
                } else if p.is_empty() {
                    errs.push(FieldError::required(
                        &lp,
                        "must be set when AppArmor type is Localhost",
                    ));
                }
                if p.len() > 4095 {
                    errs.push(FieldError::too_long(&lp, "", 4095));
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if let Some(p) = profile.get("localhostProfile").and_then(Value::as_str) {
                errs.push(FieldError::invalid(
                    &lp,
                    p,
                    "can only be set when AppArmor type is Localhost",
                ));
            }
        }
        "" => errs.push(FieldError::required(
            &path.child("type"),
            "type is required when appArmorProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    errs
}

/// `validateWindowsSecurityContextOptions`.
fn windows_options(w: &Value, path: &Path) -> ErrorList {
    if !w.is_object() {
        return ErrorList::new();
    }
    let mut errs = ErrorList::new();
    if let Some(name) = w.get("gmsaCredentialSpecName").and_then(Value::as_str) {
        for msg in is_dns1123_subdomain(name) {
            errs.push(FieldError::invalid(
                &path.child("gmsaCredentialSpecName"),
                name,
                msg,
            ));
        }
    }
    if let Some(spec) = w.get("gmsaCredentialSpec").and_then(Value::as_str) {
        let p = path.child("gmsaCredentialSpec");
        if spec.is_empty() {
            errs.push(FieldError::invalid(
                &p,
                spec,
                "gmsaCredentialSpec cannot be an empty string",
            ));
        } else if spec.len() > 64 * 1024 {
            errs.push(FieldError::invalid(
                &p,
                spec,
                "gmsaCredentialSpec size must be under 64 KiB",
            ));
        }
    }
    if let Some(user) = w.get("runAsUserName").and_then(Value::as_str) {
        let p = path.child("runAsUserName");
        let mut bad = |msg: &str| errs.push(FieldError::invalid(&p, user, msg.to_string()));
        let parts: Vec<&str> = user.split('\\').collect();
        if user.is_empty() {
            bad("runAsUserName cannot be an empty string");
        } else if user.chars().any(char::is_control) {
            bad("runAsUserName cannot contain control characters");
        } else if parts.len() > 2 {
            bad("runAsUserName cannot contain more than one backslash");
        } else {
            let (domain, name) = match parts.as_slice() {
                [d, u] => (Some(*d), *u),
                _ => (None, user),
            };
            if let Some(d) = domain {
                if d.len() >= 256 {
                    bad("runAsUserName's Domain length must be under 256 characters");
                }
                if !(netbios_domain(d) || dns_domain(d)) {
                    bad("runAsUserName's Domain doesn't match the NetBios nor the DNS format");
                }
            }
            if name.is_empty() {
                bad("runAsUserName's User cannot be empty");
            } else if name.len() > 104 {
                bad("runAsUserName's User length must not be longer than 104 characters");
            }
            if !name.is_empty() && name.chars().all(|c| c == '.' || c == ' ') {
                bad("runAsUserName's User cannot contain only periods or spaces");
            }
            if name.chars().any(|c| "\"/\\:;|=,+*?<>@[]".contains(c)) {
                bad(
                    "runAsUserName's User cannot contain the following characters: \"/\\:;|=,+*?<>@[]",
                );
            }
        }
    }
    errs
}

fn netbios_domain(d: &str) -> bool {
    let bad = |c: char| "\\/:*?\"<>|".contains(c);
    let mut chars = d.chars();
    match chars.next() {
        Some(f) if !bad(f) && f != '.' => {}
        _ => return false,
    }
    d.chars().count() <= 15 && !d.chars().skip(1).any(bad)
}

fn dns_domain(d: &str) -> bool {
    d.split('.').all(|l| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    })
}

const SYSCTL_REGEX: &str =
    "^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$";

/// `IsValidSysctlName`.
fn is_valid_sysctl_name(name: &str) -> bool {
    if name.len() > 253 {
        return false;
    }
    let segment = |s: &str| {
        let b = s.as_bytes();
        let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => {
                ok(f) && ok(l) && b.iter().all(|c| ok(c) || *c == b'-' || *c == b'_')
            }
            _ => false,
        }
    };
    name.split(['.', '/']).all(segment)
}

/// The kernel namespace a sysctl belongs to (`utilsysctl.GetNamespace`), after turning a
/// slash-separated name into the dotted form.
fn sysctl_namespace(name: &str) -> Option<&'static str> {
    let normalized: String = match name.find(['.', '/']) {
        Some(i) if name.as_bytes()[i] == b'/' => name
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect(),
        _ => name.to_string(),
    };
    if normalized == "kernel.sem" {
        return Some("ipc");
    }
    for prefix in ["kernel.shm", "kernel.msg", "fs.mqueue."] {
        if normalized.starts_with(prefix) {
            return Some("ipc");
        }
    }
    normalized.starts_with("net.").then_some("net")
}

/// `validatePodSpecSecurityContext`: the pod's security context and host namespaces.
pub(crate) fn validate_pod_security_context(
    spec: &Value,
    path: &Path,
    opts: &PodOpts,
) -> ErrorList {
    let sc = spec.f("securityContext");
    let p = path.child("securityContext");
    let mut errs = ErrorList::new();
    if sc.is_object() {
        errs.extend(ids(sc, &["fsGroup", "runAsUser", "runAsGroup"], &p));
        for (i, g) in sc.a("supplementalGroups").iter().enumerate() {
            let g = g.as_i64().unwrap_or(0);
            for msg in is_valid_id(g) {
                errs.push(FieldError::invalid(
                    &p.child("supplementalGroups").index(i),
                    g,
                    msg,
                ));
            }
        }
    }
    // The host namespaces live in the pod spec in v1 but in the security context
    // internally, so they are checked whether or not a security context was given.
    if spec.b("hostPID") && spec.b("shareProcessNamespace") {
        errs.push(FieldError::invalid(
            &p.child("shareProcessNamespace"),
            true,
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    if !sc.is_object() {
        return errs;
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, s) in sc.a("sysctls").iter().enumerate() {
        let np = p.child("sysctls").index(i).child("name");
        let name = s.s("name");
        if name.is_empty() {
            errs.push(FieldError::required(&np, ""));
        } else if !is_valid_sysctl_name(name) {
            errs.push(FieldError::invalid(
                &np,
                name,
                format!("must have at most 253 characters and match regex {SYSCTL_REGEX}"),
            ));
        } else if names.contains(name) {
            errs.push(FieldError::duplicate(&np, name));
        }
        if !opts.allow_namespaced_sysctls_for_host_net_and_ipc {
            match sysctl_namespace(name) {
                Some("net") if spec.b("hostNetwork") => errs.push(FieldError::invalid(
                    &np,
                    name,
                    "may not be specified when 'hostNetwork' is true",
                )),
                Some("ipc") if spec.b("hostIPC") => errs.push(FieldError::invalid(
                    &np,
                    name,
                    "may not be specified when 'hostIPC' is true",
                )),
                _ => {}
            }
        }
        names.insert(name);
    }
    if sc.has("fsGroupChangePolicy") {
        let v = sc.s("fsGroupChangePolicy");
        if !["Always", "OnRootMismatch"].contains(&v) {
            errs.push(FieldError::not_supported(
                &p.child("fsGroupChangePolicy"),
                v,
                &["Always", "OnRootMismatch"],
            ));
        }
    }
    errs.extend(seccomp_profile(
        sc.f("seccompProfile"),
        &p.child("seccompProfile"),
    ));
    errs.extend(windows_options(
        sc.f("windowsOptions"),
        &p.child("windowsOptions"),
    ));
    errs.extend(apparmor_profile(
        sc.f("appArmorProfile"),
        &p.child("appArmorProfile"),
    ));
    if sc.has("supplementalGroupsPolicy") {
        let v = sc.s("supplementalGroupsPolicy");
        if !["Merge", "Strict"].contains(&v) {
            errs.push(FieldError::not_supported(
                &p.child("supplementalGroupsPolicy"),
                v,
                &["Merge", "Strict"],
            ));
        }
    }
    if sc.has("seLinuxChangePolicy") {
        let v = sc.s("seLinuxChangePolicy");
        let valid: &[&str] = if opts.only_recursive_selinux_change_policy {
            &["Recursive"]
        } else {
            &["MountOption", "Recursive"]
        };
        if !valid.contains(&v) {
            errs.push(FieldError::not_supported(
                &p.child("seLinuxChangePolicy"),
                v,
                valid,
            ));
        }
    }
    errs
}

/// `validateHostUsers`: a pod in its own user namespace shares no host namespace.
pub(crate) fn validate_host_users(spec: &Value, path: &Path) -> ErrorList {
    if spec.get("hostUsers") != Some(&Value::Bool(false)) {
        return ErrorList::new();
    }
    let mut errs = ErrorList::new();
    for (field, name) in [
        ("hostNetwork", "hostNetwork"),
        ("hostPID", "HostPID"),
        ("hostIPC", "HostIPC"),
    ] {
        if spec.b(field) {
            errs.push(FieldError::forbidden(
                &path.child(name),
                "when `pod.Spec.HostUsers` is false",
            ));
        }
    }
    errs
}

/// `validateWindowsHostProcessPod`.
pub(crate) fn validate_host_process(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let pod_hp = spec
        .f("securityContext")
        .f("windowsOptions")
        .get("hostProcess")
        .and_then(Value::as_bool);
    let (mut count, mut hp_count) = (0, 0);
    visit_containers(spec, path, |c, cp| {
        count += 1;
        let c_hp = c
            .f("securityContext")
            .f("windowsOptions")
            .get("hostProcess")
            .and_then(Value::as_bool);
        if let (Some(p), Some(c)) = (pod_hp, c_hp)
            && p != c
        {
            errs.push(FieldError::invalid(
                &cp.child("securityContext")
                    .child("windowsOptions")
                    .child("hostProcess"),
                c,
                format!("pod hostProcess value must be identical if both are specified, was {p}"),
            ));
        }
        if c_hp == Some(true) || (c_hp.is_none() && pod_hp == Some(true)) {
            hp_count += 1;
        }
    });
    if hp_count > 0 {
        if hp_count != count {
            errs.push(FieldError::invalid(
                path,
                "",
                "If pod contains any hostProcess containers then all containers must be HostProcess containers",
            ));
        }
        if !spec.b("hostNetwork") {
            errs.push(FieldError::invalid(
                &path.child("hostNetwork"),
                false,
                "hostNetwork must be true if pod contains any hostProcess containers",
            ));
        }
    }
    errs
}

/// `validateLinux`: no Windows options in a Linux pod.
pub(crate) fn validate_linux(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let forbid = "windows options cannot be set for a linux pod";
    if spec.f("securityContext").has("windowsOptions") {
        errs.push(FieldError::forbidden(
            &path.child("securityContext").child("windowsOptions"),
            forbid,
        ));
    }
    visit_containers(spec, path, |c, cp| {
        if c.f("securityContext").has("windowsOptions") {
            errs.push(FieldError::forbidden(
                &cp.child("securityContext").child("windowsOptions"),
                forbid,
            ));
        }
    });
    errs
}

/// `validateWindows`: no Linux-only settings in a Windows pod.
pub(crate) fn validate_windows(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let msg = "cannot be set for a windows pod";
    let sc = spec.f("securityContext");
    let scp = path.child("securityContext");
    if sc.has("appArmorProfile") {
        errs.push(FieldError::forbidden(&scp.child("appArmorProfile"), msg));
    }
    if sc.has("seLinuxOptions") {
        errs.push(FieldError::forbidden(&scp.child("seLinuxOptions"), msg));
    }
    if spec.has("hostUsers") {
        errs.push(FieldError::forbidden(&path.child("hostUsers"), msg));
    }
    if spec.b("hostPID") {
        errs.push(FieldError::forbidden(&path.child("hostPID"), msg));
    }
    if spec.b("hostIPC") {
        errs.push(FieldError::forbidden(&path.child("hostIPC"), msg));
    }
    for f in ["seccompProfile", "fsGroup", "fsGroupChangePolicy"] {
        if sc.has(f) {
            errs.push(FieldError::forbidden(&scp.child(f), msg));
        }
    }
    if !sc.a("sysctls").is_empty() {
        errs.push(FieldError::forbidden(&scp.child("sysctls"), msg));
    }
    if spec.has("shareProcessNamespace") {
        errs.push(FieldError::forbidden(
            &path.child("shareProcessNamespace"),
            msg,
        ));
    }
    for f in [
        "runAsUser",
        "runAsGroup",
        "supplementalGroups",
        "supplementalGroupsPolicy",
        "seLinuxChangePolicy",
    ] {
        if sc.has(f) {
            errs.push(FieldError::forbidden(&scp.child(f), msg));
        }
    }
    visit_containers(spec, path, |c, cp| {
        let sc = c.f("securityContext");
        if !sc.is_object() {
            return;
        }
        let p = cp.child("securityContext");
        for f in [
            "appArmorProfile",
            "seLinuxOptions",
            "seccompProfile",
            "capabilities",
            "readOnlyRootFilesystem",
            "privileged",
            "allowPrivilegeEscalation",
            "procMount",
            "runAsUser",
            "runAsGroup",
        ] {
            if sc.has(f) {
                errs.push(FieldError::forbidden(&p.child(f), msg));
            }
        }
    });
    errs
}

/// `ValidateSeccompProfile` of a deprecated seccomp annotation's value.
fn seccomp_annotation(value: &str, path: &Path) -> ErrorList {
    match value {
        "runtime/default" | "docker/default" | "unconfined" => ErrorList::new(),
        v => match v.strip_prefix("localhost/") {
            Some(rest) => local_descending_path(rest, path),
            None => vec![FieldError::invalid(
                path,
                v,
                "must be a valid seccomp profile",
            )],
        },
    }
}

const APPARMOR_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
const SECCOMP_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// The seccomp and AppArmor parts of `ValidatePodSpecificAnnotations`.
pub(crate) fn validate_security_annotations(
    annotations: &serde_json::Map<String, Value>,
    spec: &Value,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(v) = annotations.get(SECCOMP_POD).and_then(Value::as_str) {
        errs.extend(seccomp_annotation(v, &path.child(SECCOMP_POD)));
    }
    for (k, v) in annotations {
        let v = v.as_str().unwrap_or("");
        if k.starts_with(SECCOMP_CONTAINER_PREFIX) {
            errs.extend(seccomp_annotation(v, &path.child(k)));
        }
    }
    for (k, v) in annotations {
        let Some(container) = k.strip_prefix(APPARMOR_PREFIX) else {
            continue;
        };
        let v = v.as_str().unwrap_or("");
        let mut found = false;
        visit_containers(spec, &Path::new("spec"), |c, _| {
            found |= c.s("name") == container
        });
        if !found {
            errs.push(FieldError::invalid(
                &path.key(k),
                container,
                "container not found",
            ));
        }
        let valid = v.is_empty()
            || v == "runtime/default"
            || v == "unconfined"
            || v.starts_with("localhost/");
        if !valid {
            errs.push(FieldError::invalid(
                &path.key(k),
                v,
                format!("invalid AppArmor profile name: {}", quote(v)),
            ));
        }
    }
    errs
}

/// `validateSeccompAnnotationsAndFields` and `validateAppArmorAnnotationsAndFieldsMatchOnCreate`:
/// where both the deprecated annotation and the field are set, they agree.
pub(crate) fn validate_annotations_match_fields(
    annotations: &serde_json::Map<String, Value>,
    spec: &Value,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let ann = |k: &str| annotations.get(k).and_then(Value::as_str);
    let pod_sc = spec.f("securityContext");
    if pod_sc.has("seccompProfile")
        && let Some(a) = ann(SECCOMP_POD)
    {
        errs.extend(seccomp_match(
            a,
            pod_sc.f("seccompProfile"),
            &path.child("securityContext").child("seccompProfile"),
        ));
    }
    visit_containers(spec, path, |c, cp| {
        let field = c.f("securityContext").f("seccompProfile");
        if field.is_object()
            && let Some(a) = ann(&format!("{SECCOMP_CONTAINER_PREFIX}{}", c.s("name")))
        {
            errs.extend(seccomp_match(
                a,
                field,
                &cp.child("securityContext").child("seccompProfile"),
            ));
        }
    });
    if spec.f("os").s("name") == "windows" {
        return errs;
    }
    let pod_profile = pod_sc.f("appArmorProfile");
    visit_containers(spec, path, |c, cp| {
        let own = c.f("securityContext").f("appArmorProfile");
        let profile = if own.is_object() { own } else { pod_profile };
        if !profile.is_object() {
            return;
        }
        let Some(a) = ann(&format!("{APPARMOR_PREFIX}{}", c.s("name"))) else {
            return;
        };
        let p = cp.child("securityContext").child("appArmorProfile");
        let type_mismatch = || {
            FieldError::forbidden(
                &p.child("type"),
                "apparmor type in annotation and field must match",
            )
        };
        match profile.s("type") {
            "Unconfined" if a != "unconfined" => errs.push(type_mismatch()),
            "RuntimeDefault" if a != "runtime/default" => errs.push(type_mismatch()),
            "Localhost" => match a.strip_prefix("localhost/") {
                None => errs.push(type_mismatch()),
                Some(rest) => {
                    if profile.get("localhostProfile").and_then(Value::as_str) != Some(rest) {
                        errs.push(FieldError::forbidden(
                            &p.child("localhostProfile"),
                            "apparmor profile in annotation and field must match",
                        ));
                    }
                }
            },
            _ => {}
        }
    });
    errs
}

fn seccomp_match(annotation: &str, field: &Value, path: &Path) -> ErrorList {
    let mismatch = || {
        vec![FieldError::forbidden(
            &path.child("type"),
            "seccomp type in annotation and field must match",
        )]
    };
    match field.s("type") {
        "Unconfined" if annotation != "unconfined" => mismatch(),
        "RuntimeDefault" if annotation != "runtime/default" && annotation != "docker/default" => {
            mismatch()
        }
        "Localhost" => match annotation.strip_prefix("localhost/") {
            None => mismatch(),
            Some(rest) if field.get("localhostProfile").and_then(Value::as_str) != Some(rest) => {
                vec![FieldError::forbidden(
                    &path.child("localhostProfile"),
                    "seccomp profile in annotation and field must match",
                )]
            }
            Some(_) => ErrorList::new(),
        },
        _ => ErrorList::new(),
    }
}

/// Whether an annotation key is a deprecated AppArmor one (which may not change on update).
pub(crate) fn is_apparmor_annotation(key: &str) -> bool {
    key.starts_with(APPARMOR_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_names_and_namespaces() {
        assert!(is_valid_sysctl_name("net.ipv4.ip_forward"));
        assert!(is_valid_sysctl_name("kernel/shm_rmid_forced"));
        assert!(!is_valid_sysctl_name("Net.ipv4"));
        assert_eq!(sysctl_namespace("net.core.somaxconn"), Some("net"));
        assert_eq!(sysctl_namespace("kernel/shm_rmid_forced"), Some("ipc"));
        assert_eq!(sysctl_namespace("vm.max_map_count"), None);
    }

    #[test]
    fn privileged_without_escalation_is_refused() {
        let sc = serde_json::json!({"privileged": true, "allowPrivilegeEscalation": false});
        let errs = validate_security_context(&sc, &Path::new("c"), true);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].detail.contains("`privileged` to true"));
    }
}

//! The volume sources a pod volume and a PersistentVolume have in common. Upstream
//! validates each twice (`validateXVolumeSource` for pods, `validateXPersistentVolumeSource`
//! for PVs) with the same checks; they live here once, and where the PV variant checks
//! more, its caller adds that (or passes `pv`).

use k1s_apimachinery::validation::{is_dns1123_label, is_dns1123_subdomain};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::validation::{Fields, invalid_each};

/// `Required value` at `path.field` when the string field is empty.
pub(crate) fn required(s: &Value, field: &str, path: &Path) -> ErrorList {
    if s.s(field).is_empty() {
        return vec![FieldError::required(&path.child(field), "")];
    }
    ErrorList::new()
}

/// `validatePathNoBacksteps`: no `..` element. Upstream splits `filepath.ToSlash(p)`,
/// which on the Linux API server leaves a backslash as it is.
pub(crate) fn path_no_backsteps(target: &str, path: &Path) -> ErrorList {
    if target.split('/').any(|part| part == "..") {
        return vec![FieldError::invalid(path, target, "must not contain '..'")];
    }
    ErrorList::new()
}

/// The `type`s a hostPath volume may have.
pub(crate) const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

/// `validateHostPathVolumeSource`.
pub(crate) fn host_path(s: &Value, path: &Path) -> ErrorList {
    let p = s.s("path");
    if p.is_empty() {
        return vec![FieldError::required(&path.child("path"), "")];
    }
    let mut errs = path_no_backsteps(p, &path.child("path"));
    if s.has("type") && !HOST_PATH_TYPES.contains(&s.s("type")) {
        errs.push(FieldError::not_supported(
            &path.child("type"),
            s.s("type"),
            HOST_PATH_TYPES,
        ));
    }
    errs
}

/// `validateGCEPersistentDiskVolumeSource` and `validateAWSElasticBlockStoreVolumeSource`:
/// the disk's `id` field and a partition.
pub(crate) fn partitioned_disk(s: &Value, id: &str, path: &Path) -> ErrorList {
    let mut errs = required(s, id, path);
    let part = s.i("partition").unwrap_or(0);
    if !(0..=255).contains(&part) {
        errs.push(FieldError::invalid(
            &path.child("partition"),
            part,
            "must be between 1 and 255, inclusive",
        ));
    }
    errs
}

/// `validateNFSVolumeSource`.
pub(crate) fn nfs(s: &Value, path: &Path) -> ErrorList {
    let mut errs = required(s, "server", path);
    errs.extend(required(s, "path", path));
    if !s.s("path").starts_with('/') {
        errs.push(FieldError::invalid(
            &path.child("path"),
            s.s("path"),
            "must be an absolute path",
        ));
    }
    errs
}

/// `validateRBDVolumeSource`.
pub(crate) fn rbd(s: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if s.a("monitors").is_empty() {
        errs.push(FieldError::required(&path.child("monitors"), ""));
    }
    errs.extend(required(s, "image", path));
    errs
}

/// `validateCephFSVolumeSource`.
pub(crate) fn cephfs(s: &Value, path: &Path) -> ErrorList {
    if s.a("monitors").is_empty() {
        return vec![FieldError::required(&path.child("monitors"), "")];
    }
    ErrorList::new()
}

/// `validateGlusterfsVolumeSource` (the PV variant adds `endpointsNamespace`).
pub(crate) fn glusterfs(s: &Value, path: &Path) -> ErrorList {
    let mut errs = required(s, "endpoints", path);
    errs.extend(required(s, "path", path));
    errs
}

/// `validateFlockerVolumeSource`.
pub(crate) fn flocker(s: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let (name, uuid) = (s.s("datasetName"), s.s("datasetUUID"));
    if name.is_empty() && uuid.is_empty() {
        errs.push(FieldError::required(
            path,
            "one of datasetName and datasetUUID is required",
        ));
    }
    if !name.is_empty() && !uuid.is_empty() {
        errs.push(FieldError::invalid(
            path,
            "resource",
            "datasetName and datasetUUID can not be specified simultaneously",
        ));
    }
    if name.contains('/') {
        errs.push(FieldError::invalid(
            &path.child("datasetName"),
            name,
            "must not contain '/'",
        ));
    }
    errs
}

/// Whether Go's `net.SplitHostPort` accepts `hostport`: a last `:` before the port, and
/// a host without `:` unless it is bracketed (`[::1]:80`).
fn split_host_port_ok(hostport: &str) -> bool {
    let Some(colon) = hostport.rfind(':') else {
        return false;
    };
    let (mut j, mut k) = (0, 0);
    if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return false;
        };
        // The closing bracket must be followed by the port's colon.
        if end + 1 != colon {
            return false;
        }
        (j, k) = (1, end + 1);
    } else if hostport[..colon].contains(':') {
        return false;
    }
    !hostport[j..].contains('[') && !hostport[k..].contains(']')
}

/// `validateQuobyteVolumeSource`.
pub(crate) fn quobyte(s: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let registry = s.s("registry");
    let msg = "must be a host:port pair or multiple pairs separated by commas";
    if registry.is_empty() {
        errs.push(FieldError::required(&path.child("registry"), msg));
    } else if s.s("tenant").len() >= 65 {
        errs.push(FieldError::required(
            &path.child("tenant"),
            "must be a UUID and may not exceed a length of 64 characters",
        ));
    } else {
        for pair in registry.split(',') {
            if !split_host_port_ok(pair) {
                errs.push(FieldError::invalid(&path.child("registry"), registry, msg));
            }
        }
    }
    errs.extend(required(s, "volume", path));
    errs
}

/// Whether an iSCSI name starts as upstream's three formats do.
fn iscsi_prefixed(v: &str) -> bool {
    v.starts_with("iqn") || v.starts_with("eui") || v.starts_with("naa")
}

/// Upstream's `iscsiInitiator{Iqn,Eui,Naa}Regex` for a name with one of the prefixes:
/// `iqn\.\d{4}-\d{2}\.([[:alnum:]-.]+)(:[^,;*&$|\s]+)$`, `^eui.[[:alnum:]]{16}$` and
/// `^naa.[[:alnum:]]{32}$`.
fn iscsi_format_ok(v: &str) -> bool {
    if let Some(rest) = v.strip_prefix("iqn.") {
        let b = rest.as_bytes();
        if b.len() < 8
            || !b[..4].iter().all(u8::is_ascii_digit)
            || b[4] != b'-'
            || !b[5..7].iter().all(u8::is_ascii_digit)
            || b[7] != b'.'
        {
            return false;
        }
        let Some((domain, name)) = rest[8..].split_once(':') else {
            return false;
        };
        return !domain.is_empty()
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            && !name.is_empty()
            && !name
                .chars()
                .any(|c| ",;*&$|".contains(c) || c.is_whitespace());
    }
    // `.` is any one character but a newline, then exactly `n` ASCII alphanumerics.
    let any_then_alnum = |rest: &str, n: usize| {
        let mut chars = rest.chars();
        chars.next().is_some_and(|c| c != '\n')
            && chars.as_str().len() == n
            && chars.as_str().bytes().all(|c| c.is_ascii_alphanumeric())
    };
    if let Some(rest) = v.strip_prefix("eui") {
        return any_then_alnum(rest, 16);
    }
    if let Some(rest) = v.strip_prefix("naa") {
        return any_then_alnum(rest, 32);
    }
    false
}

/// `validateISCSIVolumeSource`, or with `pv_name` `validateISCSIPersistentVolumeSource`,
/// which also limits `<pv name>:<targetPortal>` when an initiator is named, requires the
/// secret's name, and says only "must be valid format" of a name without a known prefix.
pub(crate) fn iscsi(s: &Value, pv_name: Option<&str>, path: &Path) -> ErrorList {
    let mut errs = required(s, "targetPortal", path);
    let portal = s.s("targetPortal");
    if let Some(pv) = pv_name
        && s.has("initiatorName")
        && pv.len() + 1 + portal.len() > 64
    {
        errs.push(FieldError::invalid(
            &path.child("targetportal"),
            portal,
            "Total length of <volume name>:<iscsi.targetPortal> must be under 64 characters if iscsi.initiatorName is specified.",
        ));
    }
    let unprefixed = if pv_name.is_some() {
        "must be valid format"
    } else {
        "must be valid format starting with iqn, eui, or naa"
    };
    let iqn = s.s("iqn");
    if iqn.is_empty() {
        errs.push(FieldError::required(&path.child("iqn"), ""));
    } else if !iscsi_prefixed(iqn) {
        errs.push(FieldError::invalid(&path.child("iqn"), iqn, unprefixed));
    } else if !iscsi_format_ok(iqn) {
        errs.push(FieldError::invalid(
            &path.child("iqn"),
            iqn,
            "must be valid format",
        ));
    }
    let lun = s.i("lun").unwrap_or(0);
    if !(0..=255).contains(&lun) {
        errs.push(FieldError::invalid(
            &path.child("lun"),
            lun,
            "must be between 0 and 255, inclusive",
        ));
    }
    if (s.b("chapAuthDiscovery") || s.b("chapAuthSession")) && !s.has("secretRef") {
        errs.push(FieldError::required(&path.child("secretRef"), ""));
    }
    if pv_name.is_some() && s.has("secretRef") && s.f("secretRef").s("name").is_empty() {
        errs.push(FieldError::required(
            &path.child("secretRef").child("name"),
            "",
        ));
    }
    if let Some(init) = s.get("initiatorName").and_then(Value::as_str) {
        let p = path.child("initiatorname");
        if !iscsi_prefixed(init) {
            errs.push(FieldError::invalid(&p, init, unprefixed));
        } else if !iscsi_format_ok(init) {
            errs.push(FieldError::invalid(&p, init, "must be valid format"));
        }
    }
    errs
}

/// `validateFCVolumeSource`.
pub(crate) fn fc(s: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let (wwns, wwids) = (s.a("targetWWNs"), s.a("wwids"));
    if wwns.is_empty() && wwids.is_empty() {
        errs.push(FieldError::required(
            &path.child("targetWWNs"),
            "must specify either targetWWNs or wwids, but not both",
        ));
    }
    if !wwns.is_empty() && !wwids.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("targetWWNs"),
            s.f("targetWWNs").clone(),
            "targetWWNs and wwids can not be specified simultaneously",
        ));
    }
    if !wwns.is_empty() {
        match s.i("lun") {
            None => errs.push(FieldError::required(
                &path.child("lun"),
                "lun is required if targetWWNs is specified",
            )),
            Some(l) if !(0..=255).contains(&l) => errs.push(FieldError::invalid(
                &path.child("lun"),
                l,
                "must be between 0 and 255, inclusive",
            )),
            _ => {}
        }
    }
    errs
}

/// `validateFlexVolumeSource`: a driver, and no options in the kubernetes namespaces.
pub(crate) fn flex(s: &Value, path: &Path) -> ErrorList {
    let mut errs = required(s, "driver", path);
    for k in s.m("options").map(|m| m.keys()).into_iter().flatten() {
        let ns = k.split_once('/').map_or(k.as_str(), |(ns, _)| ns);
        let normalized = format!(".{}", ns.to_lowercase());
        if normalized.ends_with(".kubernetes.io") || normalized.ends_with(".k8s.io") {
            errs.push(FieldError::invalid(
                &path.child("options").key(k),
                k.as_str(),
                "kubernetes.io and k8s.io namespaces are reserved",
            ));
        }
    }
    errs
}

/// `validateAzureFile` (the PV variant adds `secretNamespace`).
pub(crate) fn azure_file(s: &Value, path: &Path) -> ErrorList {
    let mut errs = required(s, "secretName", path);
    errs.extend(required(s, "shareName", path));
    errs
}

/// `validateAzureDisk`.
pub(crate) fn azure_disk(s: &Value, path: &Path) -> ErrorList {
    let mut errs = required(s, "diskName", path);
    errs.extend(required(s, "diskURI", path));
    if s.has("cachingMode") {
        let m = s.s("cachingMode");
        let modes = ["None", "ReadOnly", "ReadWrite"];
        if !modes.contains(&m) {
            errs.push(FieldError::not_supported(
                &path.child("cachingMode"),
                m,
                &modes,
            ));
        }
    }
    if s.has("kind") {
        let kind = s.s("kind");
        let kinds = ["Dedicated", "Managed", "Shared"];
        if !kinds.contains(&kind) {
            errs.push(FieldError::not_supported(&path.child("kind"), kind, &kinds));
        }
        let uri = s.s("diskURI");
        if kind == "Managed" && !uri.starts_with("/subscriptions/") {
            errs.push(FieldError::not_supported(
                &path.child("diskURI"),
                uri,
                &["/subscriptions/{sub-id}/resourcegroups/{group-name}/providers/microsoft.compute/disks/{disk-id}"],
            ));
        }
        if kind != "Managed" && !uri.starts_with("https://") {
            errs.push(FieldError::not_supported(
                &path.child("diskURI"),
                uri,
                &["https://{account-name}.blob.core.windows.net/{container-name}/{disk-name}.vhd"],
            ));
        }
    }
    errs
}

/// `validateScaleIOVolumeSource`.
pub(crate) fn scale_io(s: &Value, path: &Path) -> ErrorList {
    ["gateway", "system", "volumeName"]
        .into_iter()
        .flat_map(|f| required(s, f, path))
        .collect()
}

/// A set `secretRef` needs a name, and in a PV (a `SecretReference`) a namespace too.
fn secret_ref(s: &Value, pv: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if !s.has("secretRef") {
        return errs;
    }
    let (r, p) = (s.f("secretRef"), path.child("secretRef"));
    errs.extend(required(r, "name", &p));
    if pv {
        errs.extend(required(r, "namespace", &p));
    }
    errs
}

/// `validateCinderVolumeSource`, or `validateCinderPersistentVolumeSource` with `pv`.
pub(crate) fn cinder(s: &Value, pv: bool, path: &Path) -> ErrorList {
    let mut errs = required(s, "volumeID", path);
    errs.extend(secret_ref(s, pv, path));
    errs
}

/// `validateStorageOSVolumeSource`, or `validateStorageOSPersistentVolumeSource` with `pv`.
pub(crate) fn storageos(s: &Value, pv: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = s.s("volumeName");
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("volumeName"), ""));
    } else {
        errs.extend(invalid_each(
            name,
            &path.child("volumeName"),
            is_dns1123_label(name),
        ));
    }
    let ns = s.s("volumeNamespace");
    if !ns.is_empty() {
        errs.extend(invalid_each(
            ns,
            &path.child("volumeNamespace"),
            is_dns1123_label(ns),
        ));
    }
    errs.extend(secret_ref(s, pv, path));
    errs
}

/// `ValidateCSIDriverName`: required, at most 63 bytes, a DNS subdomain once lowercased
/// (CSI volumes, CSINode drivers, VolumeAttachments).
pub(crate) fn csi_driver_name(driver: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if driver.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    if driver.len() > 63 {
        errs.push(FieldError::too_long(path, "", 63));
    }
    errs.extend(invalid_each(
        driver,
        path,
        is_dns1123_subdomain(&driver.to_lowercase()),
    ));
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_util::texts;

    #[test]
    fn iscsi_names() {
        assert!(iscsi_format_ok(
            "iqn.2001-04.com.example:storage.disk2.sys1.xyz"
        ));
        assert!(iscsi_format_ok("eui.02004567A425678D"));
        assert!(!iscsi_format_ok("iqn.2001-04.com.example"));
        assert!(!iscsi_format_ok("foo"));
        // The regexes' `.` is one character, however many bytes it takes.
        assert!(iscsi_format_ok("euié02004567A425678D"));
        assert!(!iscsi_format_ok("euié2004567A425678D"));
    }

    #[test]
    fn an_unprefixed_iscsi_name_is_worded_per_variant() {
        let s = json!({"targetPortal": "1.2.3.4:3260", "iqn": "foo", "initiatorName": "bar"});
        let p = Path::new("iscsi");
        assert_eq!(
            texts(iscsi(&s, None, &p)),
            vec![
                "iscsi.iqn: Invalid value: \"foo\": must be valid format starting with iqn, eui, or naa",
                "iscsi.initiatorname: Invalid value: \"bar\": must be valid format starting with iqn, eui, or naa",
            ]
        );
        assert_eq!(
            texts(iscsi(&s, Some("pv"), &p)),
            vec![
                "iscsi.iqn: Invalid value: \"foo\": must be valid format",
                "iscsi.initiatorname: Invalid value: \"bar\": must be valid format",
            ]
        );
    }

    #[test]
    fn quobyte_registries_split_as_go_does() {
        for ok in ["host:7861", "[::1]:7861", ":7861"] {
            assert!(split_host_port_ok(ok), "{ok}");
        }
        for bad in ["host", "a:b:7861", "[::1]", "[a]:b:7861", "a]:1"] {
            assert!(!split_host_port_ok(bad), "{bad}");
        }
        let s = json!({"registry": "a:b:7861", "volume": "v"});
        assert_eq!(
            texts(quobyte(&s, &Path::new("quobyte"))),
            vec![
                "quobyte.registry: Invalid value: \"a:b:7861\": must be a host:port pair or multiple pairs separated by commas"
            ]
        );
    }

    #[test]
    fn a_backslash_is_not_a_path_separator() {
        let p = Path::new("path");
        assert!(path_no_backsteps("C:\\..\\x", &p).is_empty());
        assert_eq!(path_no_backsteps("/a/../b", &p).len(), 1);
    }
}

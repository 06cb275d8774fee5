//! Pod volumes and each volume source (upstream `ValidateVolumes`, `validateVolumeSource`
//! and the per-source checks, `ValidatePersistentVolumeClaimTemplate` for generic ephemeral
//! volumes).

use std::collections::BTreeSet;

use k1s_apimachinery::meta::{name_is_dns_subdomain, validate_label_selector};
use k1s_apimachinery::validation::is_dns1123_subdomain;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use super::PodOpts;
use super::container::{
    VOLUME_FIELD_PATHS, Volumes, object_field_selector, pull_policy, resource_field_selector,
};
use super::resources::validate_quantity_value;
use super::util::{
    dns_label, file_mode, invalid_each, local_descending_path, local_non_reserved_path,
    path_no_backsteps, quantity, quantity_text,
};
use crate::kinds::validation::Fields;

/// Every volume source of a v1 `VolumeSource`, in upstream's checking order, with the
/// path segment upstream reports "more than 1 volume type" at (a few differ from the
/// JSON name).
pub(crate) const SOURCES: &[(&str, &str)] = &[
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

/// `ValidateVolumes`: the valid volumes by name, and the errors.
pub(crate) fn validate_volumes<'a>(
    volumes: &'a [Value],
    pod_name: Option<&str>,
    path: &Path,
    opts: &PodOpts,
) -> (Volumes<'a>, ErrorList) {
    let mut errs = ErrorList::new();
    let mut valid = Volumes::new();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    let created_pvcs: BTreeSet<String> = match pod_name {
        Some(pod) if !pod.is_empty() => volumes
            .iter()
            .filter(|v| v.has("ephemeral"))
            .map(|v| format!("{pod}-{}", v.s("name")))
            .collect(),
        _ => BTreeSet::new(),
    };
    for (i, vol) in volumes.iter().enumerate() {
        let p = path.index(i);
        let name = vol.s("name");
        let mut el = validate_source(vol, &p, name, pod_name, opts);
        if name.is_empty() {
            el.push(FieldError::required(&p.child("name"), ""));
        } else {
            el.extend(dns_label(name, &p.child("name")));
        }
        if names.contains(name) {
            el.push(FieldError::duplicate(&p.child("name"), name));
        }
        if el.is_empty() {
            names.insert(name);
            valid.insert(name.to_string(), vol);
        } else {
            errs.extend(el);
        }
        let claim = vol.f("persistentVolumeClaim");
        if claim.is_object() && created_pvcs.contains(claim.s("claimName")) {
            errs.push(FieldError::invalid(
                &p.child("persistentVolumeClaim").child("claimName"),
                claim.s("claimName"),
                "must not reference a PVC that gets created for an ephemeral volume",
            ));
        }
    }
    (valid, errs)
}

/// `validateVolumeSource`: exactly one source, each checked.
fn validate_source(
    vol: &Value,
    path: &Path,
    name: &str,
    pod_name: Option<&str>,
    opts: &PodOpts,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut n = 0;
    for (key, forbid_at) in SOURCES {
        if !vol.has(key) {
            continue;
        }
        if n > 0 {
            errs.push(FieldError::forbidden(
                &path.child(forbid_at),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        n += 1;
        let s = vol.f(key);
        match *key {
            "emptyDir" => {
                if let Some(q) = quantity(s.f("sizeLimit"))
                    && q.signum() < 0
                {
                    errs.push(FieldError::forbidden(
                        &path.child("emptyDir").child("sizeLimit"),
                        "SizeLimit field must be a valid resource quantity",
                    ));
                }
            }
            "hostPath" => errs.extend(host_path(s, &path.child("hostPath"))),
            "gitRepo" => {
                let p = path.child("gitRepo");
                errs.extend(required(s, "repository", &p));
                errs.extend(local_descending_path(
                    s.s("directory"),
                    &p.child("directory"),
                ));
            }
            "gcePersistentDisk" => {
                let p = path.child("persistentDisk");
                errs.extend(required(s, "pdName", &p));
                errs.extend(partition(s, &p));
            }
            "awsElasticBlockStore" => {
                let p = path.child("awsElasticBlockStore");
                errs.extend(required(s, "volumeID", &p));
                errs.extend(partition(s, &p));
            }
            "secret" => {
                let p = path.child("secret");
                errs.extend(required(s, "secretName", &p));
                errs.extend(file_mode(s.i("defaultMode"), &p.child("defaultMode")));
                for (j, kp) in s.a("items").iter().enumerate() {
                    errs.extend(key_to_path(kp, &p.child("items").index(j)));
                }
            }
            "configMap" => {
                let p = path.child("configMap");
                errs.extend(required(s, "name", &p));
                errs.extend(file_mode(s.i("defaultMode"), &p.child("defaultMode")));
                for (j, kp) in s.a("items").iter().enumerate() {
                    errs.extend(key_to_path(kp, &p.child("items").index(j)));
                }
            }
            "nfs" => {
                let p = path.child("nfs");
                errs.extend(required(s, "server", &p));
                errs.extend(required(s, "path", &p));
                if !s.s("path").starts_with('/') {
                    errs.push(FieldError::invalid(
                        &p.child("path"),
                        s.s("path"),
                        "must be an absolute path",
                    ));
                }
            }
            "iscsi" => {
                errs.extend(iscsi(s, &path.child("iscsi")));
                if s.has("initiatorName") && name.len() + 1 + s.s("targetPortal").len() > 64 {
                    errs.push(FieldError::invalid(
                        &path.child("name"),
                        name,
                        "Total length of <volume name>:<iscsi.targetPortal> must be under 64 characters if iscsi.initiatorName is specified.",
                    ));
                }
            }
            "glusterfs" => {
                let p = path.child("glusterfs");
                errs.extend(required(s, "endpoints", &p));
                errs.extend(required(s, "path", &p));
            }
            "flocker" => {
                let p = path.child("flocker");
                let (dn, du) = (s.s("datasetName"), s.s("datasetUUID"));
                if dn.is_empty() && du.is_empty() {
                    errs.push(FieldError::required(
                        &p,
                        "one of datasetName and datasetUUID is required",
                    ));
                }
                if !dn.is_empty() && !du.is_empty() {
                    errs.push(FieldError::invalid(
                        &p,
                        "resource",
                        "datasetName and datasetUUID can not be specified simultaneously",
                    ));
                }
                if dn.contains('/') {
                    errs.push(FieldError::invalid(
                        &p.child("datasetName"),
                        dn,
                        "must not contain '/'",
                    ));
                }
            }
            "persistentVolumeClaim" => {
                errs.extend(required(
                    s,
                    "claimName",
                    &path.child("persistentVolumeClaim"),
                ));
            }
            "rbd" => {
                let p = path.child("rbd");
                if s.a("monitors").is_empty() {
                    errs.push(FieldError::required(&p.child("monitors"), ""));
                }
                errs.extend(required(s, "image", &p));
            }
            "cinder" => {
                let p = path.child("cinder");
                errs.extend(required(s, "volumeID", &p));
                errs.extend(secret_ref_name(s, &p));
            }
            "cephfs" if s.a("monitors").is_empty() => {
                errs.push(FieldError::required(
                    &path.child("cephfs").child("monitors"),
                    "",
                ));
            }
            "quobyte" => errs.extend(quobyte(s, &path.child("quobyte"))),
            "downwardAPI" => {
                let p = path.child("downwardAPI");
                errs.extend(file_mode(s.i("defaultMode"), &p.child("defaultMode")));
                for item in s.a("items") {
                    errs.extend(downward_api_file(item, &p));
                }
            }
            "fc" => errs.extend(fc(s, &path.child("fc"))),
            "flexVolume" => errs.extend(flex(s, &path.child("flexVolume"))),
            "azureFile" => {
                let p = path.child("azureFile");
                errs.extend(required(s, "secretName", &p));
                errs.extend(required(s, "shareName", &p));
            }
            "vsphereVolume" => errs.extend(required(s, "volumePath", &path.child("vsphereVolume"))),
            "photonPersistentDisk" => {
                errs.extend(required(s, "pdID", &path.child("photonPersistentDisk")));
            }
            "portworxVolume" => errs.extend(required(s, "volumeID", &path.child("portworxVolume"))),
            "azureDisk" => errs.extend(azure_disk(s, &path.child("azureDisk"))),
            "storageos" => {
                let p = path.child("storageos");
                let vn = s.s("volumeName");
                if vn.is_empty() {
                    errs.push(FieldError::required(&p.child("volumeName"), ""));
                } else {
                    errs.extend(dns_label(vn, &p.child("volumeName")));
                }
                let ns = s.s("volumeNamespace");
                if !ns.is_empty() {
                    errs.extend(dns_label(ns, &p.child("volumeNamespace")));
                }
                errs.extend(secret_ref_name(s, &p));
            }
            "projected" => errs.extend(projected(s, &path.child("projected"), opts)),
            "scaleIO" => {
                let p = path.child("scaleIO");
                for f in ["gateway", "system", "volumeName"] {
                    errs.extend(required(s, f, &p));
                }
            }
            "csi" => errs.extend(csi(s, &path.child("csi"))),
            "ephemeral" => {
                let p = path.child("ephemeral");
                if !s.f("volumeClaimTemplate").is_object() {
                    errs.push(FieldError::required(&p.child("volumeClaimTemplate"), ""));
                } else {
                    errs.extend(pvc_template(
                        s.f("volumeClaimTemplate"),
                        &p.child("volumeClaimTemplate"),
                    ));
                    if let Some(pod) = pod_name.filter(|p| !p.is_empty())
                        && !name.is_empty()
                    {
                        let pvc = format!("{pod}-{name}");
                        for msg in name_is_dns_subdomain(&pvc, false) {
                            errs.push(FieldError::invalid(
                                &path.child("name"),
                                name,
                                format!("PVC name {}: {msg}", super::util::go_quote(&pvc)),
                            ));
                        }
                    }
                }
            }
            "image" => {
                let p = path.child("image");
                if opts.resource_is_pod && s.s("reference").is_empty() {
                    errs.push(FieldError::required(&p.child("reference"), ""));
                }
                errs.extend(pull_policy(s.s("pullPolicy"), &p.child("pullPolicy")));
            }
            _ => {}
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

fn required(s: &Value, field: &str, path: &Path) -> ErrorList {
    if s.s(field).is_empty() {
        return vec![FieldError::required(&path.child(field), "")];
    }
    ErrorList::new()
}

fn secret_ref_name(s: &Value, path: &Path) -> ErrorList {
    if s.f("secretRef").is_object() && s.f("secretRef").s("name").is_empty() {
        return vec![FieldError::required(
            &path.child("secretRef").child("name"),
            "",
        )];
    }
    ErrorList::new()
}

fn partition(s: &Value, path: &Path) -> ErrorList {
    let part = s.i("partition").unwrap_or(0);
    if !(0..=255).contains(&part) {
        return vec![FieldError::invalid(
            &path.child("partition"),
            part,
            "must be between 1 and 255, inclusive",
        )];
    }
    ErrorList::new()
}

const HOST_PATH_TYPES: &[&str] = &[
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
fn host_path(s: &Value, path: &Path) -> ErrorList {
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

/// `validateKeyToPath`.
fn key_to_path(kp: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if kp.s("key").is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    }
    if kp.s("path").is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(local_non_reserved_path(kp.s("path"), &path.child("path")));
    errs.extend(file_mode(kp.i("mode"), &path.child("mode")));
    errs
}

/// `validateDownwardAPIVolumeFile`.
fn downward_api_file(file: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let fp = file.s("path");
    if fp.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(local_non_reserved_path(fp, &path.child("path")));
    if file.has("fieldRef") {
        errs.extend(object_field_selector(
            file.f("fieldRef"),
            VOLUME_FIELD_PATHS,
            &path.child("fieldRef"),
        ));
        if file.has("resourceFieldRef") {
            errs.push(FieldError::invalid(
                path,
                "resource",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ));
        }
    } else if file.has("resourceFieldRef") {
        errs.extend(resource_field_selector(
            file.f("resourceFieldRef"),
            &path.child("resourceFieldRef"),
            true,
        ));
    } else {
        errs.push(FieldError::required(
            path,
            "one of fieldRef and resourceFieldRef is required",
        ));
    }
    errs.extend(file_mode(file.i("mode"), &path.child("mode")));
    errs
}

fn iqn_format_ok(v: &str) -> bool {
    if let Some(rest) = v.strip_prefix("iqn.") {
        // iqn\.\d{4}-\d{2}\.([[:alnum:]-.]+)(:[^,;*&$|\s]+)$
        let b = rest.as_bytes();
        if b.len() < 8
            || !b[..4].iter().all(u8::is_ascii_digit)
            || b[4] != b'-'
            || !b[5..7].iter().all(u8::is_ascii_digit)
            || b[7] != b'.'
        {
            return false;
        }
        let tail = &rest[8..];
        let Some((domain, name)) = tail.split_once(':') else {
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
    if v.starts_with("iqn") {
        return false;
    }
    let hex_tail = |rest: &str, n: usize| {
        rest.len() == n + 1 && rest[1..].chars().all(|c| c.is_ascii_alphanumeric())
    };
    if let Some(rest) = v.strip_prefix("eui") {
        return hex_tail(rest, 16);
    }
    if let Some(rest) = v.strip_prefix("naa") {
        return hex_tail(rest, 32);
    }
    true
}

/// `validateISCSIVolumeSource`.
fn iscsi(s: &Value, path: &Path) -> ErrorList {
    let mut errs = required(s, "targetPortal", path);
    let iqn = s.s("iqn");
    let prefixed = |v: &str| v.starts_with("iqn") || v.starts_with("eui") || v.starts_with("naa");
    if iqn.is_empty() {
        errs.push(FieldError::required(&path.child("iqn"), ""));
    } else if !prefixed(iqn) {
        errs.push(FieldError::invalid(
            &path.child("iqn"),
            iqn,
            "must be valid format starting with iqn, eui, or naa",
        ));
    } else if !iqn_format_ok(iqn) {
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
    if let Some(init) = s.get("initiatorName").and_then(Value::as_str) {
        let p = path.child("initiatorname");
        if !prefixed(init) {
            errs.push(FieldError::invalid(
                &p,
                init,
                "must be valid format starting with iqn, eui, or naa",
            ));
        }
        if prefixed(init) && !iqn_format_ok(init) {
            errs.push(FieldError::invalid(&p, init, "must be valid format"));
        }
    }
    errs
}

/// `validateQuobyteVolumeSource`.
fn quobyte(s: &Value, path: &Path) -> ErrorList {
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
            if pair.rsplit_once(':').is_none() {
                errs.push(FieldError::invalid(&path.child("registry"), registry, msg));
            }
        }
    }
    errs.extend(required(s, "volume", path));
    errs
}

/// `validateFCVolumeSource`.
fn fc(s: &Value, path: &Path) -> ErrorList {
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

/// `validateFlexVolumeSource`.
fn flex(s: &Value, path: &Path) -> ErrorList {
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

/// `validateAzureDisk`.
fn azure_disk(s: &Value, path: &Path) -> ErrorList {
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

/// `validateCSIVolumeSource`.
fn csi(s: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let driver = s.s("driver");
    let dp = path.child("driver");
    if driver.is_empty() {
        errs.push(FieldError::required(&dp, ""));
    }
    if driver.len() > 63 {
        errs.push(FieldError::too_long(&dp, "", 63));
    }
    errs.extend(invalid_each(
        driver,
        &dp,
        is_dns1123_subdomain(&driver.to_lowercase()),
    ));
    let secret = s.f("nodePublishSecretRef");
    if secret.is_object() {
        let name = secret.s("name");
        if name.is_empty() {
            errs.push(FieldError::required(
                &path.child("nodePublishSecretRef").child("name"),
                "",
            ));
        } else {
            errs.extend(invalid_each(
                name,
                &path.child("name"),
                name_is_dns_subdomain(name, false),
            ));
        }
    }
    errs
}

/// `validateProjectedVolumeSource` and `validateProjectionSources`.
fn projected(s: &Value, path: &Path, opts: &PodOpts) -> ErrorList {
    let mut errs = file_mode(s.i("defaultMode"), &path.child("defaultMode"));
    let mut all_paths: BTreeSet<String> = BTreeSet::new();
    let mut note_path = |errs: &mut ErrorList, p: &str, bad: Value| {
        if !all_paths.insert(p.to_string()) {
            errs.push(FieldError::invalid(
                path,
                bad,
                "conflicting duplicate paths",
            ));
        }
    };
    for (i, source) in s.a("sources").iter().enumerate() {
        let sp = path.child("sources").index(i);
        let mut n = 0;
        for kind in ["secret", "configMap"] {
            let src = source.f(kind);
            if !src.is_object() {
                continue;
            }
            n += 1;
            let p = sp.child(kind);
            if src.s("name").is_empty() {
                errs.push(FieldError::required(&p.child("name"), ""));
            }
            for (j, kp) in src.a("items").iter().enumerate() {
                errs.extend(key_to_path(kp, &p.child("items").index(j)));
                if !kp.s("path").is_empty() {
                    note_path(&mut errs, kp.s("path"), Value::from(src.s("name")));
                }
            }
        }
        let dapi = source.f("downwardAPI");
        if dapi.is_object() {
            n += 1;
            let p = sp.child("downwardAPI");
            for item in dapi.a("items") {
                errs.extend(downward_api_file(item, &p));
                if !item.s("path").is_empty() {
                    note_path(&mut errs, item.s("path"), Value::from(item.s("path")));
                }
            }
        }
        let token = source.f("serviceAccountToken");
        if token.is_object() {
            n += 1;
            let p = sp.child("serviceAccountToken");
            let exp = token.i("expirationSeconds").unwrap_or(0);
            if exp < 600 {
                errs.push(FieldError::invalid(
                    &p.child("expirationSeconds"),
                    exp,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                errs.push(FieldError::invalid(
                    &p.child("expirationSeconds"),
                    exp,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            // Upstream reports the token path at the projected volume's own `path`.
            let tp = token.s("path");
            if tp.is_empty() {
                errs.push(FieldError::required(&path.child("path"), ""));
            } else if !opts.allow_non_local_projected_token_path {
                errs.extend(local_non_reserved_path(tp, &path.child("path")));
            }
        }
        let ctb = source.f("clusterTrustBundle");
        if ctb.is_object() {
            n += 1;
            errs.extend(cluster_trust_bundle(ctb, &sp.child("clusterTrustBundle")));
            note_path(&mut errs, ctb.s("path"), Value::from(ctb.s("path")));
        }
        if source.has("podCertificate") {
            n += 1;
        }
        if n > 1 {
            errs.push(FieldError::forbidden(
                &sp,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
    errs
}

fn cluster_trust_bundle(ctb: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = ctb.get("name").and_then(Value::as_str);
    let signer = ctb.get("signerName").and_then(Value::as_str);
    match (name, signer) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            ctb.clone(),
            "only one of name and signerName may be used",
        )),
        (Some(n), None) => {
            if n.is_empty() {
                errs.push(FieldError::required(
                    &path.child("name"),
                    "must be a valid object name",
                ));
            }
            if ctb.has("labelSelector") {
                errs.push(FieldError::invalid(
                    &path.child("labelSelector"),
                    ctb.f("labelSelector").clone(),
                    "labelSelector must be unset if name is specified",
                ));
            }
        }
        (None, Some(s)) => {
            if s.is_empty() {
                errs.push(FieldError::required(
                    &path.child("signerName"),
                    "must be a valid signer name",
                ));
            }
            errs.extend(validate_label_selector(
                ctb.get("labelSelector"),
                &path.child("labelSelector"),
            ));
        }
        (None, None) => errs.push(FieldError::required(
            path,
            "either name or signerName must be specified",
        )),
    }
    if ctb.s("path").is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(local_non_reserved_path(ctb.s("path"), &path.child("path")));
    errs
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// `ValidatePersistentVolumeClaimTemplate`: only labels and annotations in the metadata,
/// and a valid claim spec.
fn pvc_template(t: &Value, path: &Path) -> ErrorList {
    let meta = t.f("metadata");
    let mp = path.child("metadata");
    let mut errs = k1s_apimachinery::meta::validate_annotations(
        meta.get("annotations"),
        &mp.child("annotations"),
    );
    errs.extend(k1s_apimachinery::meta::validate_labels(
        meta.get("labels"),
        &mp.child("labels"),
    ));
    // ObjectMeta's Go field names, lower-cased at the first letter, as upstream reports them.
    for (json, go) in [
        ("name", "name"),
        ("generateName", "generateName"),
        ("namespace", "namespace"),
        ("selfLink", "selfLink"),
        ("uid", "uID"),
        ("resourceVersion", "resourceVersion"),
        ("generation", "generation"),
        ("creationTimestamp", "creationTimestamp"),
        ("deletionTimestamp", "deletionTimestamp"),
        ("deletionGracePeriodSeconds", "deletionGracePeriodSeconds"),
        ("ownerReferences", "ownerReferences"),
        ("finalizers", "finalizers"),
        ("managedFields", "managedFields"),
    ] {
        if !super::util::is_zero(meta.f(json)) {
            errs.push(FieldError::forbidden(&mp.child(go), "cannot be set"));
        }
    }
    errs.extend(pvc_spec(t.f("spec"), &path.child("spec")));
    errs
}

/// `ValidatePersistentVolumeClaimSpec`.
pub(crate) fn pvc_spec(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let modes = spec.a("accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required(
            &path.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if spec.has("selector") {
        errs.extend(validate_label_selector(
            spec.get("selector"),
            &path.child("selector"),
        ));
    }
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            errs.push(FieldError::not_supported(
                &path.child("accessModes"),
                m,
                ACCESS_MODES,
            ));
        } else if m == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(
            &path.child("accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    let sp = path.child("resources").key("storage");
    match spec
        .f("resources")
        .f("requests")
        .get("storage")
        .and_then(quantity)
    {
        None if !spec.f("resources").f("requests").has("storage") => {
            errs.push(FieldError::required(&sp, ""));
        }
        None => {}
        Some(q) => {
            if q.signum() <= 0 {
                errs.push(FieldError::invalid(
                    &sp,
                    quantity_text(&q),
                    "must be greater than zero",
                ));
            } else {
                errs.extend(validate_quantity_value("storage", &q, &sp));
            }
        }
    }
    for field in ["storageClassName", "volumeAttributesClassName"] {
        let v = spec.s(field);
        if !v.is_empty() {
            errs.extend(invalid_each(
                v,
                &path.child(field),
                name_is_dns_subdomain(v, false),
            ));
        }
    }
    if spec.has("volumeMode") {
        let m = spec.s("volumeMode");
        if !["Block", "Filesystem"].contains(&m) {
            errs.push(FieldError::not_supported(
                &path.child("volumeMode"),
                m,
                &["Block", "Filesystem"],
            ));
        }
    }
    let ds = spec.f("dataSource");
    let dsr = spec.f("dataSourceRef");
    if ds.is_object() {
        errs.extend(data_source(ds, &path.child("dataSource")));
    }
    if dsr.is_object() {
        errs.extend(data_source(dsr, &path.child("dataSourceRef")));
        let ns = dsr.s("namespace");
        if !ns.is_empty() {
            errs.extend(invalid_each(
                ns,
                &path.child("dataSourceRef").child("namespace"),
                k1s_apimachinery::validation::is_dns1123_label(ns),
            ));
        }
    }
    if dsr.is_object() && !dsr.s("namespace").is_empty() {
        if ds.is_object() {
            errs.push(FieldError::invalid(
                path,
                path.child("dataSource").to_string(),
                "may not be specified when dataSourceRef.namespace is specified",
            ));
        }
    } else if ds.is_object()
        && dsr.is_object()
        && (ds.get("apiGroup") != dsr.get("apiGroup")
            || ds.s("kind") != dsr.s("kind")
            || ds.s("name") != dsr.s("name"))
    {
        errs.push(FieldError::invalid(
            path,
            path.child("dataSource").to_string(),
            "must match dataSourceRef",
        ));
    }
    errs
}

fn data_source(ds: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if ds.s("name").is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    if ds.s("kind").is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    }
    let group = ds.s("apiGroup");
    if group.is_empty() && ds.s("kind") != "PersistentVolumeClaim" {
        errs.push(FieldError::invalid(
            path,
            ds.s("kind"),
            "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
        ));
    }
    if !group.is_empty() {
        errs.extend(invalid_each(
            group,
            &path.child("apiGroup"),
            is_dns1123_subdomain(group),
        ));
    }
    errs
}

//! Pod volumes and each volume source (upstream `ValidateVolumes`, `validateVolumeSource`
//! and the per-source checks, `ValidatePersistentVolumeClaimTemplate` for generic ephemeral
//! volumes).

use std::collections::BTreeSet;

use k1s_apimachinery::goformat::quote;
use k1s_apimachinery::meta::{name_is_dns_subdomain, validate_label_selector};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use super::PodOpts;
use super::container::{
    VOLUME_FIELD_PATHS, Volumes, object_field_selector, pull_policy, resource_field_selector,
};
use super::util::{
    dns_label, file_mode, invalid_each, local_descending_path, local_non_reserved_path, quantity_of,
};
use crate::kinds::core::persistentvolumeclaim::validate_pvc_spec;
use crate::kinds::core::volumesource as vs;
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
                if let Some(q) = quantity_of(s.f("sizeLimit"))
                    && q.signum() < 0
                {
                    errs.push(FieldError::forbidden(
                        &path.child("emptyDir").child("sizeLimit"),
                        "SizeLimit field must be a valid resource quantity",
                    ));
                }
            }
            "hostPath" => errs.extend(vs::host_path(s, &path.child("hostPath"))),
            "gitRepo" => {
                let p = path.child("gitRepo");
                errs.extend(vs::required(s, "repository", &p));
                errs.extend(local_descending_path(
                    s.s("directory"),
                    &p.child("directory"),
                ));
            }
            // Upstream reports a GCE disk under `persistentDisk`.
            "gcePersistentDisk" => errs.extend(vs::partitioned_disk(
                s,
                "pdName",
                &path.child("persistentDisk"),
            )),
            "awsElasticBlockStore" => errs.extend(vs::partitioned_disk(
                s,
                "volumeID",
                &path.child("awsElasticBlockStore"),
            )),
            "secret" => {
                let p = path.child("secret");
                errs.extend(vs::required(s, "secretName", &p));
                errs.extend(file_mode(s.i("defaultMode"), &p.child("defaultMode")));
                for (j, kp) in s.a("items").iter().enumerate() {
                    errs.extend(key_to_path(kp, &p.child("items").index(j)));
                }
            }
            "configMap" => {
                let p = path.child("configMap");
                errs.extend(vs::required(s, "name", &p));
                errs.extend(file_mode(s.i("defaultMode"), &p.child("defaultMode")));
                for (j, kp) in s.a("items").iter().enumerate() {
                    errs.extend(key_to_path(kp, &p.child("items").index(j)));
                }
            }
            "nfs" => errs.extend(vs::nfs(s, &path.child("nfs"))),
            "iscsi" => {
                errs.extend(vs::iscsi(s, None, &path.child("iscsi")));
                if s.has("initiatorName") && name.len() + 1 + s.s("targetPortal").len() > 64 {
                    errs.push(FieldError::invalid(
                        &path.child("name"),
                        name,
                        "Total length of <volume name>:<iscsi.targetPortal> must be under 64 characters if iscsi.initiatorName is specified.",
                    ));
                }
            }
            "glusterfs" => errs.extend(vs::glusterfs(s, &path.child("glusterfs"))),
            "flocker" => errs.extend(vs::flocker(s, &path.child("flocker"))),
            "persistentVolumeClaim" => {
                errs.extend(vs::required(
                    s,
                    "claimName",
                    &path.child("persistentVolumeClaim"),
                ));
            }
            "rbd" => errs.extend(vs::rbd(s, &path.child("rbd"))),
            "cinder" => errs.extend(vs::cinder(s, false, &path.child("cinder"))),
            "cephfs" => errs.extend(vs::cephfs(s, &path.child("cephfs"))),
            "quobyte" => errs.extend(vs::quobyte(s, &path.child("quobyte"))),
            "downwardAPI" => {
                let p = path.child("downwardAPI");
                errs.extend(file_mode(s.i("defaultMode"), &p.child("defaultMode")));
                for item in s.a("items") {
                    errs.extend(downward_api_file(item, &p));
                }
            }
            "fc" => errs.extend(vs::fc(s, &path.child("fc"))),
            "flexVolume" => errs.extend(vs::flex(s, &path.child("flexVolume"))),
            "azureFile" => errs.extend(vs::azure_file(s, &path.child("azureFile"))),
            "vsphereVolume" => {
                errs.extend(vs::required(s, "volumePath", &path.child("vsphereVolume")))
            }
            "photonPersistentDisk" => {
                errs.extend(vs::required(s, "pdID", &path.child("photonPersistentDisk")));
            }
            "portworxVolume" => {
                errs.extend(vs::required(s, "volumeID", &path.child("portworxVolume")))
            }
            "azureDisk" => errs.extend(vs::azure_disk(s, &path.child("azureDisk"))),
            "storageos" => errs.extend(vs::storageos(s, false, &path.child("storageos"))),
            "projected" => errs.extend(projected(s, &path.child("projected"), opts)),
            "scaleIO" => errs.extend(vs::scale_io(s, &path.child("scaleIO"))),
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
                                format!("PVC name {}: {msg}", quote(&pvc)),
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

/// `validateCSIVolumeSource`.
fn csi(s: &Value, path: &Path) -> ErrorList {
    let mut errs = vs::csi_driver_name(s.s("driver"), &path.child("driver"));
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
    errs.extend(validate_pvc_spec(t.f("spec"), &path.child("spec")));
    errs
}

//! PersistentVolumes: upstream's `SetDefaults_PersistentVolume`,
//! `ValidatePersistentVolume(Update)` with every volume source's own checks, the
//! mount-options annotation rule of `pkg/volume/validation`, and the strategy's status
//! handling (Pending on create, status kept on spec updates).

use k1s_apimachinery::meta::{FIELD_IMMUTABLE_ERROR_MSG, name_is_dns_label, name_is_dns_subdomain};
use k1s_apimachinery::validation::{is_dns1123_label, is_dns1123_subdomain};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Map, Value, json};

use super::volumesource as vs;
use crate::kinds::validation::invalid_each;
use crate::kinds::validation::resources::{quantity_of, validate_basic_resource};
use crate::kinds::validation::scheduling::validate_node_selector;
use crate::kinds::validation::{Fields, immutable, semantic_eq};
use crate::meta::default_path;
use crate::registry::Strategy;

/// The PersistentVolume strategy.
pub struct PersistentVolumeStrategy;

/// Access modes, sorted as upstream lists them.
pub const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// Volume modes, sorted as upstream lists them.
pub const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];

const RECLAIM_POLICIES: &[&str] = &["Delete", "Recycle", "Retain"];

/// The `PersistentVolumeSource` members of a PV spec, in upstream's checking order.
pub const PV_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

/// Volume types whose plugins take mount options (`pkg/volume/validation`).
const MOUNT_OPTION_SOURCES: &[&str] = &[
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "nfs",
    "rbd",
    "quobyte",
    "iscsi",
    "cinder",
    "cephfs",
    "azureFile",
    "vsphereVolume",
    "azureDisk",
    "photonPersistentDisk",
    "flocker",
    "scaleIO",
    "fc",
    "portworxVolume",
];

const MOUNT_OPTION_ANNOTATION: &str = "volume.beta.kubernetes.io/mount-options";

fn validate_secret_reference(v: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = v.s("name");
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        errs.extend(invalid_each(
            name,
            &path.child("name"),
            is_dns1123_subdomain(name),
        ));
    }
    let ns = v.s("namespace");
    if ns.is_empty() {
        errs.push(FieldError::required(&path.child("namespace"), ""));
    } else {
        errs.extend(invalid_each(
            ns,
            &path.child("namespace"),
            is_dns1123_label(ns),
        ));
    }
    errs
}

fn validate_csi(v: &Value, path: &Path) -> ErrorList {
    let mut errs = vs::csi_driver_name(v.s("driver"), &path.child("driver"));
    errs.extend(vs::required(v, "volumeHandle", path));
    for r in [
        "controllerPublishSecretRef",
        "controllerExpandSecretRef",
        "nodePublishSecretRef",
        "nodeExpandSecretRef",
    ] {
        if v.has(r) {
            errs.extend(validate_secret_reference(v.f(r), &path.child(r)));
        }
    }
    errs
}

/// `validateGlusterfsPersistentVolumeSource`: the pod volume's checks and the endpoints'
/// namespace.
fn validate_glusterfs(v: &Value, path: &Path) -> ErrorList {
    let mut errs = vs::glusterfs(v, path);
    if let Some(ns) = v.get("endpointsNamespace").and_then(Value::as_str) {
        if ns.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("endpointsNamespace"),
                ns,
                "if the endpointnamespace is set, it must be a valid namespace name",
            ));
        } else {
            errs.extend(invalid_each(
                ns,
                &path.child("endpointsNamespace"),
                name_is_dns_label(ns, false),
            ));
        }
    }
    errs
}

/// The checks of one volume source of a PV (`validate*PersistentVolumeSource`). `spec` is
/// the PV spec's path; upstream does not always report a source at its field's name.
fn validate_source(key: &str, v: &Value, pv_name: &str, spec: &Path) -> ErrorList {
    let p = spec.child(key);
    match key {
        "hostPath" => vs::host_path(v, &p),
        // Upstream reports a GCE disk under `persistentDisk`.
        "gcePersistentDisk" => vs::partitioned_disk(v, "pdName", &spec.child("persistentDisk")),
        "awsElasticBlockStore" => vs::partitioned_disk(v, "volumeID", &p),
        "glusterfs" => validate_glusterfs(v, &p),
        "flocker" => vs::flocker(v, &p),
        "nfs" => vs::nfs(v, &p),
        "rbd" => vs::rbd(v, &p),
        "quobyte" => vs::quobyte(v, &p),
        "cephfs" => vs::cephfs(v, &p),
        "iscsi" => vs::iscsi(v, Some(pv_name), &p),
        "cinder" => vs::cinder(v, true, &p),
        "fc" => vs::fc(v, &p),
        "flexVolume" => vs::flex(v, &p),
        "azureFile" => {
            let mut errs = vs::azure_file(v, &p);
            if v.get("secretNamespace").and_then(Value::as_str) == Some("") {
                errs.push(FieldError::required(&p.child("secretNamespace"), ""));
            }
            errs
        }
        "vsphereVolume" => vs::required(v, "volumePath", &p),
        "photonPersistentDisk" => vs::required(v, "pdID", &p),
        "portworxVolume" => vs::required(v, "volumeID", &p),
        "azureDisk" => vs::azure_disk(v, &p),
        "scaleIO" => vs::scale_io(v, &p),
        // `validateLocalVolumeSource`.
        "local" => {
            let target = v.s("path");
            if target.is_empty() {
                vec![FieldError::required(&p.child("path"), "")]
            } else {
                vs::path_no_backsteps(target, &p.child("path"))
            }
        }
        "storageos" => vs::storageos(v, true, &p),
        "csi" => validate_csi(v, &p),
        _ => ErrorList::new(),
    }
}

/// Upstream's `validateAccessModes` part of PV and PVC specs.
pub fn validate_access_modes(spec: &Value, path: &Path, required_detail: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    if spec.a("accessModes").is_empty() {
        errs.push(FieldError::required(
            &path.child("accessModes"),
            required_detail,
        ));
    }
    errs.extend(validate_access_mode_values(spec, path));
    errs
}

/// Each access mode supported, and ReadWriteOncePod alone (a PVC spec checks its selector
/// between the required check and this one).
pub fn validate_access_mode_values(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let (mut rwop, mut other) = (false, false);
    for m in spec.a("accessModes") {
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
    errs
}

/// Upstream's `ValidatePersistentVolumeSpec` for a standalone PV.
fn validate_spec(obj: &Value) -> ErrorList {
    let spec = obj.f("spec");
    let path = Path::new("spec");
    let mut errs = validate_access_modes(spec, &path, "");
    let capacity = spec.m("capacity");
    if capacity.is_none_or(Map::is_empty) {
        errs.push(FieldError::required(&path.child("capacity"), ""));
    }
    if capacity.is_none_or(|c| !c.contains_key("storage") || c.len() > 1) {
        errs.push(FieldError::not_supported(
            &path.child("capacity"),
            spec.f("capacity").clone(),
            &["storage"],
        ));
    }
    for (k, v) in capacity.into_iter().flatten() {
        let p = path.child("capacity").key(k);
        if let Some(q) = quantity_of(v) {
            errs.extend(validate_basic_resource(&q, &p));
            if q.signum() <= 0 {
                errs.push(FieldError::invalid(
                    &p,
                    q.to_string(),
                    "must be greater than zero",
                ));
            }
        }
    }
    let reclaim = spec.s("persistentVolumeReclaimPolicy");
    if !reclaim.is_empty() && !RECLAIM_POLICIES.contains(&reclaim) {
        errs.push(FieldError::not_supported(
            &path.child("persistentVolumeReclaimPolicy"),
            reclaim,
            RECLAIM_POLICIES,
        ));
    }
    let mut affinity_set = false;
    if spec.has("nodeAffinity") {
        affinity_set = true;
        let p = path.child("nodeAffinity");
        match spec.f("nodeAffinity").get("required") {
            Some(r) if !r.is_null() => {
                errs.extend(validate_node_selector(r, false, &p.child("required")));
            }
            _ => errs.push(FieldError::required(
                &p.child("required"),
                "must specify required node constraints",
            )),
        }
    }
    let pv_name = obj.f("metadata").s("name");
    let mut count = 0;
    for key in PV_SOURCES {
        let Some(v) = spec.get(*key).filter(|v| !v.is_null()) else {
            continue;
        };
        // Upstream never counts a second flexVolume as "more than 1".
        if count > 0 && *key != "flexVolume" {
            errs.push(FieldError::forbidden(
                &path.child(key),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        count += 1;
        errs.extend(validate_source(key, v, pv_name, &path));
        if *key == "local" && !affinity_set {
            errs.push(FieldError::required(
                &path.child("nodeAffinity"),
                "Local volume requires node affinity",
            ));
        }
    }
    if count == 0 {
        errs.push(FieldError::required(&path, "must specify a volume type"));
    }
    if spec.has("hostPath") && clean_is_root(spec.f("hostPath").s("path")) && reclaim == "Recycle" {
        errs.push(FieldError::forbidden(
            &path.child("persistentVolumeReclaimPolicy"),
            "may not be 'recycle' for a hostPath mount of '/'",
        ));
    }
    let class = spec.s("storageClassName");
    if !class.is_empty() {
        errs.extend(invalid_each(
            class,
            &path.child("storageClassName"),
            name_is_dns_subdomain(class, false),
        ));
    }
    if let Some(mode) = spec.get("volumeMode").and_then(Value::as_str)
        && !VOLUME_MODES.contains(&mode)
    {
        errs.push(FieldError::not_supported(
            &path.child("volumeMode"),
            mode,
            VOLUME_MODES,
        ));
    }
    if let Some(vac) = spec
        .get("volumeAttributesClassName")
        .and_then(Value::as_str)
    {
        if vac.is_empty() {
            errs.push(FieldError::required(
                &path.child("volumeAttributesClassName"),
                "an empty string is disallowed",
            ));
        } else {
            errs.extend(invalid_each(
                vac,
                &path.child("volumeAttributesClassName"),
                name_is_dns_subdomain(vac, false),
            ));
        }
        if !spec.has("csi") {
            errs.push(FieldError::required(
                &path.child("csi"),
                "has to be specified when using volumeAttributesClassName",
            ));
        }
    }
    errs
}

/// Whether Go's `path.Clean(p)` is `/`.
fn clean_is_root(p: &str) -> bool {
    if !p.starts_with('/') {
        return false;
    }
    let mut depth: i32 = 0;
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => depth = (depth - 1).max(0),
            _ => depth += 1,
        }
    }
    depth == 0
}

/// The mount-options annotation is only for plugins that take mount options.
fn validate_mount_options(obj: &Value) -> ErrorList {
    let spec = obj.f("spec");
    if MOUNT_OPTION_SOURCES.iter().any(|k| spec.has(k)) {
        return ErrorList::new();
    }
    if obj
        .f("metadata")
        .m("annotations")
        .is_some_and(|a| a.contains_key(MOUNT_OPTION_ANNOTATION))
    {
        return vec![FieldError::forbidden(
            &Path::new("metadata")
                .child("annotations")
                .child(MOUNT_OPTION_ANNOTATION),
            "may not specify mount options for this volume type",
        )];
    }
    ErrorList::new()
}

/// The volume source members of a PV spec.
fn source_of(spec: &Value) -> Value {
    let mut m = Map::new();
    for k in PV_SOURCES {
        if let Some(v) = spec.get(*k) {
            m.insert(k.to_string(), v.clone());
        }
    }
    Value::Object(m)
}

/// A rendering of what changed between two JSON values, one line per changed leaf, in the
/// spirit of the `cmp.Diff` upstream appends to some messages.
pub fn diff(old: &Value, new: &Value) -> String {
    fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
        if semantic_eq(old, new) {
            return;
        }
        match (old, new) {
            (Value::Object(a), Value::Object(b)) => {
                let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let (x, y) = (
                        a.get(k).unwrap_or(&Value::Null),
                        b.get(k).unwrap_or(&Value::Null),
                    );
                    walk(&format!("{path}.{k}"), x, y, out);
                }
            }
            _ => {
                out.push(format!("-\t{path}: {old}"));
                out.push(format!("+\t{path}: {new}"));
            }
        }
    }
    let mut out = Vec::new();
    walk("", old, new, &mut out);
    out.join("\n")
}

/// Beta topology labels PV node affinity may move to their GA names.
const BETA_TO_GA: &[(&str, &str)] = &[
    (
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/zone",
    ),
    (
        "failure-domain.beta.kubernetes.io/region",
        "topology.kubernetes.io/region",
    ),
    ("beta.kubernetes.io/os", "kubernetes.io/os"),
    ("beta.kubernetes.io/arch", "kubernetes.io/arch"),
    (
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
    ),
];

/// `old` with each beta key renamed where `new` has the GA key at the same place.
fn mask_beta_keys(new: &Value, old: &Value) -> Value {
    match (new, old) {
        (Value::Object(n), Value::Object(o)) => {
            let mut out = o.clone();
            if let (Some(nk), Some(ok)) = (
                n.get("key").and_then(Value::as_str),
                o.get("key").and_then(Value::as_str),
            ) && BETA_TO_GA.iter().any(|(b, g)| *b == ok && *g == nk)
            {
                out.insert("key".into(), json!(nk));
            }
            for (k, ov) in o {
                if k != "key"
                    && let Some(nv) = n.get(k)
                {
                    out.insert(k.clone(), mask_beta_keys(nv, ov));
                }
            }
            Value::Object(out)
        }
        (Value::Array(n), Value::Array(o)) => Value::Array(
            o.iter()
                .enumerate()
                .map(|(i, ov)| n.get(i).map_or(ov.clone(), |nv| mask_beta_keys(nv, ov)))
                .collect(),
        ),
        _ => old.clone(),
    }
}

impl Strategy for PersistentVolumeStrategy {
    fn default(&self, obj: &mut Value) {
        if !obj.get("spec").is_some_and(Value::is_object) {
            obj["spec"] = json!({});
        }
        let spec = &mut obj["spec"];
        default_path(spec, &["persistentVolumeReclaimPolicy"], json!("Retain"));
        default_path(spec, &["volumeMode"], json!("Filesystem"));
        if let Some(hp) = spec.get_mut("hostPath").filter(|h| h.is_object()) {
            default_path(hp, &["type"], json!(""));
        }
        default_path(obj, &["status", "phase"], json!("Pending"));
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        // A new volume is Pending since now, whatever the request said.
        obj["status"] = json!({
            "phase": "Pending",
            "lastPhaseTransitionTime": crate::meta::now_rfc3339(),
        });
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = validate_spec(obj);
        errs.extend(validate_mount_options(obj));
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        let (ns, os) = (new.f("spec"), old.f("spec"));
        let mut new_source = source_of(ns);
        // A CSI volume may gain a controllerExpandSecretRef.
        if !os.f("csi").has("controllerExpandSecretRef")
            && os.has("csi")
            && let Some(csi) = new_source.get_mut("csi").and_then(Value::as_object_mut)
        {
            csi.remove("controllerExpandSecretRef");
        }
        let old_source = source_of(os);
        if !semantic_eq(&new_source, &old_source) {
            errs.push(FieldError::forbidden(
                &Path::new("spec").child("persistentvolumesource"),
                format!(
                    "spec.persistentvolumesource is immutable after creation\n{}",
                    diff(&old_source, &new_source)
                ),
            ));
        }
        // Upstream names these two without `spec`.
        errs.extend(immutable(
            ns.f("volumeMode"),
            os.f("volumeMode"),
            &Path::new("volumeMode"),
        ));
        if os.has("nodeAffinity") {
            let masked = mask_beta_keys(ns.f("nodeAffinity"), os.f("nodeAffinity"));
            if !semantic_eq(ns.f("nodeAffinity"), &masked) {
                errs.push(FieldError::invalid(
                    &Path::new("nodeAffinity"),
                    ns.f("nodeAffinity").clone(),
                    format!(
                        "{FIELD_IMMUTABLE_ERROR_MSG}, except for updating from beta label to GA"
                    ),
                ));
            }
        }
        if os.has("volumeAttributesClassName") && !ns.has("volumeAttributesClassName") {
            errs.push(FieldError::forbidden(
                &Path::new("spec").child("volumeAttributesClassName"),
                "update from non-nil value to nil is forbidden",
            ));
        }
        errs
    }

    fn validate_status_update(&self, _new: &Value, _old: &Value) -> ErrorList {
        // Upstream checks only the metadata (and a resourceVersion, always set here).
        ErrorList::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    fn pv(spec: Value) -> Value {
        let mut o = json!({"metadata": {"name": "pv1"}, "spec": spec});
        PersistentVolumeStrategy.default(&mut o);
        o
    }

    #[test]
    fn common_volumes_pass() {
        for spec in [
            json!({"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/mnt/data"}, "storageClassName": "manual"}),
            json!({"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteMany"], "nfs": {"server": "nfs.example.com", "path": "/exports"}, "mountOptions": ["hard", "nfsvers=4.1"]}),
            json!({"capacity": {"storage": "100Gi"}, "accessModes": ["ReadWriteOnce"], "local": {"path": "/mnt/disks/ssd1"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}]}]}}}),
            json!({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOncePod"], "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-1", "fsType": "ext4"}}),
        ] {
            let o = pv(spec);
            assert!(
                PersistentVolumeStrategy.validate(&o).is_empty(),
                "{o}: {:?}",
                texts(PersistentVolumeStrategy.validate(&o))
            );
        }
    }

    #[test]
    fn required_fields_and_one_source() {
        let t = texts(PersistentVolumeStrategy.validate(&pv(json!({}))));
        assert!(
            t.contains(&"spec.accessModes: Required value".to_string()),
            "{t:?}"
        );
        assert!(
            t.contains(&"spec.capacity: Required value".to_string()),
            "{t:?}"
        );
        assert!(
            t.contains(&"spec: Required value: must specify a volume type".to_string()),
            "{t:?}"
        );
        let t = texts(PersistentVolumeStrategy.validate(&pv(json!({"capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/a"}, "nfs": {"server": "s", "path": "/b"}}))));
        assert_eq!(
            t,
            vec!["spec.nfs: Forbidden: may not specify more than 1 volume type"]
        );
        let t = texts(
            PersistentVolumeStrategy.validate(&pv(json!({"capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"], "local": {"path": "/a"}}))),
        );
        assert_eq!(
            t,
            vec!["spec.nodeAffinity: Required value: Local volume requires node affinity"]
        );
    }

    #[test]
    fn a_backslash_in_a_host_path_is_no_separator() {
        // Upstream splits on `/` only: `filepath.ToSlash` changes nothing on Linux.
        let o = pv(
            json!({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "C:\\..\\x"}}),
        );
        assert!(PersistentVolumeStrategy.validate(&o).is_empty());
    }

    #[test]
    fn the_source_is_immutable_but_beta_labels_may_go_ga() {
        let old = pv(
            json!({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "local": {"path": "/a"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "failure-domain.beta.kubernetes.io/zone", "operator": "In", "values": ["z"]}]}]}}}),
        );
        let mut new = old.clone();
        new["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["key"] =
            json!("topology.kubernetes.io/zone");
        assert!(
            PersistentVolumeStrategy
                .validate_update(&new, &old)
                .is_empty()
        );
        new["spec"]["local"]["path"] = json!("/b");
        let t = texts(PersistentVolumeStrategy.validate_update(&new, &old));
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(t[0].starts_with("spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation\n"), "{t:?}");
    }
}

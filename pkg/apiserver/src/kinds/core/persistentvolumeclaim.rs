//! PersistentVolumeClaims: upstream's `SetDefaults_PersistentVolumeClaim(Spec)`,
//! `ValidatePersistentVolumeClaim(Update)` (a bound claim may only grow its storage
//! request and change its volume attributes class) and the status update's checks.

use k1s_apimachinery::meta::{name_is_dns_label, name_is_dns_subdomain, validate_label_selector};
use k1s_apimachinery::validation::is_dns1123_subdomain;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::persistentvolume::{VOLUME_MODES, diff, validate_access_mode_values};
use crate::kinds::validation::invalid_each;
use crate::kinds::validation::resources::{
    is_native_resource, quantity_of, validate_basic_resource, validate_resource_quantity_value,
};
use crate::kinds::validation::{Fields, immutable, semantic_eq};
use crate::meta::default_path;
use crate::registry::Strategy;

/// The PersistentVolumeClaim strategy.
pub struct PersistentVolumeClaimStrategy;

const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// Upstream's `validateDataSource` / `validateDataSourceRef`.
fn validate_data_source(source: &Value, path: &Path, is_ref: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    if source.s("name").is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    let kind = source.s("kind");
    if kind.is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    }
    let group = source.s("apiGroup");
    if group.is_empty() && kind != "PersistentVolumeClaim" {
        errs.push(FieldError::invalid(
            path,
            kind,
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
    let ns = source.s("namespace");
    if is_ref && !ns.is_empty() {
        errs.extend(invalid_each(
            ns,
            &path.child("namespace"),
            name_is_dns_label(ns, false),
        ));
    }
    errs
}

/// Upstream's `ValidatePersistentVolumeClaimSpec`, also used for claim templates.
pub fn validate_pvc_spec(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if spec.a("accessModes").is_empty() {
        errs.push(FieldError::required(
            &path.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if spec.has("selector") {
        errs.extend(validate_label_selector(
            Some(spec.f("selector")),
            &path.child("selector"),
        ));
    }
    errs.extend(validate_access_mode_values(spec, path));
    // Upstream reports the request under `resources[storage]`.
    let storage_path = path.child("resources").key("storage");
    match spec.f("resources").f("requests").get("storage") {
        None => errs.push(FieldError::required(&storage_path, "")),
        Some(v) => {
            if let Some(q) = quantity_of(v) {
                if q.signum() <= 0 {
                    errs.push(FieldError::invalid(
                        &storage_path,
                        q.to_string(),
                        "must be greater than zero",
                    ));
                } else {
                    errs.extend(validate_resource_quantity_value(
                        "storage",
                        &q,
                        &storage_path,
                    ));
                }
            }
        }
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
    let (ds, dsr) = (spec.f("dataSource"), spec.f("dataSourceRef"));
    if spec.has("dataSource") {
        errs.extend(validate_data_source(ds, &path.child("dataSource"), false));
    }
    if spec.has("dataSourceRef") {
        errs.extend(validate_data_source(
            dsr,
            &path.child("dataSourceRef"),
            true,
        ));
    }
    if spec.has("dataSourceRef") && !dsr.s("namespace").is_empty() {
        if spec.has("dataSource") {
            errs.push(FieldError::invalid(
                path,
                path.child("dataSource").to_string(),
                "may not be specified when dataSourceRef.namespace is specified",
            ));
        }
    } else if spec.has("dataSource")
        && spec.has("dataSourceRef")
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
    let vac = spec.s("volumeAttributesClassName");
    if !vac.is_empty() {
        errs.extend(invalid_each(
            vac,
            &path.child("volumeAttributesClassName"),
            name_is_dns_subdomain(vac, false),
        ));
    }
    errs
}

fn storage_class_of(obj: &Value) -> Option<&Value> {
    obj.f("spec")
        .get("storageClassName")
        .filter(|v| !v.is_null())
}

fn beta_class(obj: &Value) -> Option<&str> {
    obj.f("metadata")
        .f("annotations")
        .get(BETA_STORAGE_CLASS)
        .and_then(Value::as_str)
}

fn storage_request(obj: &Value) -> Option<k1s_apimachinery::Quantity> {
    obj.f("spec")
        .f("resources")
        .f("requests")
        .get("storage")
        .and_then(quantity_of)
}

/// Upstream's `ValidatePersistentVolumeClaimUpdate` (without the new object's own checks).
fn validate_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut new_spec = new.f("spec").clone();
    let mut old_spec = old.f("spec").clone();
    // The volume controller binds a claim by setting volumeName, once.
    if old_spec.s("volumeName").is_empty() {
        old_spec["volumeName"] = new_spec.f("volumeName").clone();
    }
    let (old_class, new_class) = (storage_class_of(old), storage_class_of(new));
    let old_beta = beta_class(old);
    let upgrade_from_annotation = old_beta.is_some()
        && old_class.is_none()
        && new_class.and_then(Value::as_str) == old_beta
        && beta_class(new).is_none_or(|b| Some(b) == old_beta);
    if upgrade_from_annotation {
        if let Some(o) = new_spec.as_object_mut() {
            o.remove("storageClassName");
        }
    } else {
        let (n, o) = (beta_class(new).unwrap_or(""), old_beta.unwrap_or(""));
        if n != o {
            errs.push(FieldError::invalid(
                &Path::new("metadata")
                    .child("annotations")
                    .child(BETA_STORAGE_CLASS),
                n,
                k1s_apimachinery::meta::FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        // A class may be set on a claim that had none (matching a beta annotation).
        if new_class.is_some()
            && old_class.is_none()
            && old_beta.is_none_or(|b| new_class.and_then(Value::as_str) == Some(b))
            && let Some(o) = new_spec.as_object_mut()
        {
            o.remove("storageClassName");
        }
    }
    // A bound claim may resize and change its volume attributes class.
    let bound = new.f("status").s("phase") == "Bound";
    if bound {
        if new_spec.f("resources").has("requests") {
            new_spec["resources"]["requests"]["storage"] = old
                .f("spec")
                .f("resources")
                .f("requests")
                .get("storage")
                .cloned()
                .unwrap_or(Value::Null);
        }
        if new_spec.has("volumeAttributesClassName") {
            new_spec["volumeAttributesClassName"] = old_spec.f("volumeAttributesClassName").clone();
        }
    }
    if !semantic_eq(&new_spec, &old_spec) {
        errs.push(FieldError::forbidden(
            &Path::new("spec"),
            format!(
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                diff(&old_spec, &new_spec)
            ),
        ));
    }
    let zero =
        k1s_apimachinery::Quantity::from_i64(0, k1s_apimachinery::quantity::Format::DecimalSI);
    let old_size = storage_request(old).unwrap_or_else(|| zero.clone());
    let new_size = storage_request(new).unwrap_or_else(|| zero.clone());
    let status_size = old
        .f("status")
        .f("capacity")
        .get("storage")
        .and_then(quantity_of)
        .unwrap_or(zero);
    // RecoverVolumeExpansionFailure (GA): a request may shrink back, above the capacity.
    if new_size < old_size && new_size <= status_size {
        errs.push(FieldError::forbidden(
            &Path::new("spec")
                .child("resources")
                .child("requests")
                .child("storage"),
            "field can not be less than status.capacity",
        ));
    }
    // Upstream names this one without `spec`.
    errs.extend(immutable(
        new.f("spec").f("volumeMode"),
        old.f("spec").f("volumeMode"),
        &Path::new("volumeMode"),
    ));
    let (old_vac, new_vac) = (
        old.f("spec").get("volumeAttributesClassName"),
        new.f("spec").get("volumeAttributesClassName"),
    );
    if old_vac.is_some_and(|v| !v.is_null()) && old_vac != new_vac {
        let vac_path = Path::new("spec").child("volumeAttributesClassName");
        match new_vac.and_then(Value::as_str) {
            None => errs.push(FieldError::forbidden(
                &vac_path,
                "update from non-nil value to nil is forbidden",
            )),
            Some("") => errs.push(FieldError::forbidden(
                &vac_path,
                "update from non-nil value to an empty string is forbidden",
            )),
            Some(_) => {}
        }
    }
    errs
}

const RESIZE_STATUSES: &[&str] = &[
    "ControllerResizeInProgress",
    "ControllerResizeInfeasible",
    "NodeResizeInProgress",
    "NodeResizeInfeasible",
    "NodeResizePending",
];

/// Upstream's `validatePersistentVolumeClaimResourceKey`.
fn validate_resource_key(key: &str, path: &Path) -> ErrorList {
    let errs = invalid_each(
        key,
        path,
        k1s_apimachinery::validation::is_qualified_name(key),
    );
    if !errs.is_empty() {
        return errs;
    }
    if is_native_resource(key) && key != "storage" {
        return vec![FieldError::not_supported(path, key, &["storage"])];
    }
    errs
}

/// Upstream's `ValidatePersistentVolumeClaimStatusUpdate`.
fn validate_status_update(new: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    if new.f("spec").a("accessModes").is_empty() {
        // Upstream capitalises this path.
        errs.push(FieldError::required(
            &Path::new("Spec").child("accessModes"),
            "",
        ));
    }
    let status = new.f("status");
    let cap = Path::new("status").child("capacity");
    for (k, v) in status.m("capacity").into_iter().flatten() {
        if let Some(q) = quantity_of(v) {
            errs.extend(validate_basic_resource(&q, &cap.key(k)));
        }
    }
    let resize = Path::new("status").child("allocatedResourceStatus");
    for (k, v) in status.m("allocatedResourceStatuses").into_iter().flatten() {
        errs.extend(validate_resource_key(k, &resize));
        if !RESIZE_STATUSES.contains(&v.as_str().unwrap_or("")) {
            errs.push(FieldError::not_supported(
                &resize,
                k.as_str(),
                RESIZE_STATUSES,
            ));
        }
    }
    let alloc = Path::new("status").child("allocatedResources");
    for (k, v) in status.m("allocatedResources").into_iter().flatten() {
        let key_errs = validate_resource_key(k, &alloc);
        if !key_errs.is_empty() {
            errs.extend(key_errs);
            continue;
        }
        if let Some(q) = quantity_of(v) {
            let basic = validate_basic_resource(&q, &alloc.key(k));
            if basic.is_empty() {
                errs.extend(validate_resource_quantity_value(
                    "storage",
                    &q,
                    &alloc.key(k),
                ));
            } else {
                errs.extend(basic);
            }
        }
    }
    errs
}

impl Strategy for PersistentVolumeClaimStrategy {
    fn default(&self, obj: &mut Value) {
        if !obj.get("spec").is_some_and(Value::is_object) {
            obj["spec"] = json!({});
        }
        default_path(&mut obj["spec"], &["volumeMode"], json!("Filesystem"));
        default_path(obj, &["status", "phase"], json!("Pending"));
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        // Upstream resets the status; v1 then reads an empty phase as Pending.
        obj["status"] = json!({"phase": "Pending"});
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_pvc_spec(obj.f("spec"), &Path::new("spec"))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(validate_update(new, old));
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> ErrorList {
        validate_status_update(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    #[tokio::test]
    async fn a_claim_without_a_class_gets_the_newest_default_class() {
        let t = crate::test_util::TestApiServer::new().await;
        let api = t.api();
        let claim = |name: &str, extra: Value| {
            let mut c = json!({"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}}});
            if let (Some(spec), Some(more)) = (c["spec"].as_object_mut(), extra.as_object()) {
                spec.extend(more.clone());
            }
            c
        };
        let path = "/api/v1/namespaces/default/persistentvolumeclaims";
        let (code, body) = api.call("POST", path, &claim("none", json!({}))).await;
        assert_eq!(code, 201, "{body}");
        assert!(body["spec"].get("storageClassName").is_none(), "{body}");
        for name in ["local-path", "other"] {
            api.create(
                "/apis/storage.k8s.io/v1/storageclasses",
                json!({"metadata": {"name": name, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                       "provisioner": "rancher.io/local-path"}),
            )
            .await;
            // Creation times are in seconds: the second class must be newer.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
        let (_, body) = api.call("POST", path, &claim("a", json!({}))).await;
        assert_eq!(body["spec"]["storageClassName"], "other", "{body}");
        let (_, body) = api
            .call("POST", path, &claim("b", json!({"storageClassName": ""})))
            .await;
        assert_eq!(body["spec"]["storageClassName"], "", "{body}");
        let (_, body) = api
            .call(
                "POST",
                path,
                &claim("c", json!({"storageClassName": "local-path"})),
            )
            .await;
        assert_eq!(body["spec"]["storageClassName"], "local-path", "{body}");
    }

    #[tokio::test]
    async fn claims_and_volumes_are_created_protected() {
        let t = crate::test_util::TestApiServer::new().await;
        t.server.generic.set_storage_protection_admission(true);
        let api = t.api();
        let (code, body) = api
            .call(
                "POST",
                "/api/v1/namespaces/default/persistentvolumeclaims",
                &json!({"metadata": {"name": "data", "finalizers": ["example.com/mine"]},
                        "spec": {"accessModes": ["ReadWriteOnce"],
                                 "resources": {"requests": {"storage": "1Gi"}}}}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(
            body["metadata"]["finalizers"],
            json!(["example.com/mine", "kubernetes.io/pvc-protection"])
        );
        let (code, body) = api
            .call(
                "POST",
                "/api/v1/persistentvolumes",
                &json!({"metadata": {"name": "spare"},
                        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                 "hostPath": {"path": "/tmp/spare"}}}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(
            body["metadata"]["finalizers"],
            json!(["kubernetes.io/pv-protection"])
        );
    }

    fn pvc(spec: Value) -> Value {
        let mut o = json!({"metadata": {"name": "data"}, "spec": spec});
        PersistentVolumeClaimStrategy.default(&mut o);
        PersistentVolumeClaimStrategy.prepare_for_create(&mut o, true);
        o
    }

    #[test]
    fn claim_spec_errors_come_in_upstream_order() {
        // Selector before the modes' values, the attributes class last: the same for a
        // claim, a StatefulSet's claim template and an ephemeral volume's.
        let spec = json!({"accessModes": ["Sometimes"], "selector": {"matchLabels": {"a": "-"}},
            "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Raw",
            "volumeAttributesClassName": "A_B"});
        let fields: Vec<String> = validate_pvc_spec(&spec, &Path::new("spec"))
            .iter()
            .map(|e| e.field.clone())
            .collect();
        assert_eq!(
            fields,
            vec![
                "spec.selector.matchLabels",
                "spec.accessModes",
                "spec.volumeMode",
                "spec.volumeAttributesClassName",
            ]
        );
    }

    #[test]
    fn usual_claims_pass() {
        for spec in [
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Gi"}}, "storageClassName": "local-path"}),
            json!({"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "",
                "selector": {"matchLabels": {"release": "stable"}}}),
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}},
                "dataSource": {"name": "snap", "kind": "VolumeSnapshot", "apiGroup": "snapshot.storage.k8s.io"}}),
        ] {
            let o = pvc(spec);
            assert!(
                PersistentVolumeClaimStrategy.validate(&o).is_empty(),
                "{o}: {:?}",
                texts(PersistentVolumeClaimStrategy.validate(&o))
            );
        }
    }

    #[test]
    fn required_fields() {
        let t = texts(PersistentVolumeClaimStrategy.validate(&pvc(json!({}))));
        assert_eq!(
            t,
            vec![
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value",
            ]
        );
    }

    #[test]
    fn bound_claims_may_grow_and_pending_ones_may_not_change() {
        let mut old = pvc(
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "fast"}),
        );
        let mut new = old.clone();
        new["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        let t = texts(PersistentVolumeClaimStrategy.validate_update(&new, &old));
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(t[0].starts_with("spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"), "{t:?}");
        // The volume controller binds it: volumeName once, and the phase.
        let mut bound = old.clone();
        bound["spec"]["volumeName"] = json!("pv-1");
        assert!(
            PersistentVolumeClaimStrategy
                .validate_update(&bound, &old)
                .is_empty()
        );
        bound["status"] = json!({"phase": "Bound", "capacity": {"storage": "1Gi"}});
        old = bound.clone();
        new = bound.clone();
        new["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(
            PersistentVolumeClaimStrategy
                .validate_update(&new, &old)
                .is_empty()
        );
        new["spec"]["resources"]["requests"]["storage"] = json!("1Gi");
        let mut grown = old.clone();
        grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert_eq!(
            texts(PersistentVolumeClaimStrategy.validate_update(&new, &grown)),
            vec![
                "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
            ]
        );
        new["spec"]["storageClassName"] = json!("slow");
        assert_eq!(
            texts(PersistentVolumeClaimStrategy.validate_update(&new, &old)).len(),
            1
        );
    }
}

//! StatefulSets (upstream `ValidateStatefulSet*` and `pkg/registry/apps/statefulset`).

use k1s_apimachinery::meta::{name_is_dns_label, validate_annotations, validate_labels};
use k1s_apimachinery::validation::is_dns1123_label;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::workload::{
    as_selector, default_template, int_or_percent_value, not_more_than_100_percent,
    validate_collision_count, validate_int_or_percent, validate_required_selector,
    validate_selector_matches_template, validate_status_counts, validate_template_runs_forever,
};
use crate::kinds::core::persistentvolumeclaim::validate_pvc_spec;
use crate::kinds::core::podspec::validate_pod_template_spec;
use crate::kinds::validation::{Fields, nonnegative, semantic_eq, without};
use crate::meta::{default_path, get_path};
use crate::registry::{ScaleSpec, Strategy};

/// The StatefulSet strategy.
pub struct StatefulSetStrategy;

/// What a StatefulSet update may change; everything else in the spec is fixed.
const MUTABLE: &[&str] = &[
    "replicas",
    "template",
    "updateStrategy",
    "minReadySeconds",
    "ordinals",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
];

/// Upstream's refusal of any other spec change, word for word.
pub const FORBIDDEN_UPDATE: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

/// Switches of `StatefulSetValidationOptions`: an update tolerates what older servers
/// stored (a bad serviceName, claim templates, a pod template that was never checked).
#[derive(Clone, Copy, Default)]
struct Options {
    allow_invalid_service_name: bool,
    skip_pod_template: bool,
    skip_claim_templates: bool,
}

/// `validateRollingUpdateStatefulSet`.
fn validate_rolling_update(ru: &Value, path: &Path) -> ErrorList {
    let mut errs = nonnegative(ru.i("partition"), &path.child("partition"));
    if ru.has("maxUnavailable") {
        let mu = ru.f("maxUnavailable");
        let p = path.child("maxUnavailable");
        errs.extend(validate_int_or_percent(mu, &p));
        if int_or_percent_value(mu) == 0 {
            errs.push(FieldError::invalid(&p, mu.clone(), "cannot be 0"));
        }
        errs.extend(not_more_than_100_percent(mu, &p));
    }
    errs
}

/// The template as upstream validates it: the controller overwrites hostname and
/// subdomain, and every claim template is a volume of the same name (first, in claim
/// order; a template volume of a claimed name is dropped).
fn template_to_validate(spec: &Value) -> Value {
    let mut template = spec.f("template").clone();
    let claims = spec.a("volumeClaimTemplates");
    let Some(pod) = template.get_mut("spec").and_then(Value::as_object_mut) else {
        return template;
    };
    pod.remove("hostname");
    pod.remove("subdomain");
    if claims.is_empty() {
        return template;
    }
    let mut names: Vec<&str> = Vec::new();
    for c in claims {
        let name = c.f("metadata").s("name");
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut volumes: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "persistentVolumeClaim": {"claimName": n}}))
        .collect();
    if let Some(Value::Array(own)) = pod.get("volumes") {
        volumes.extend(
            own.iter()
                .filter(|v| !names.contains(&v.s("name")))
                .cloned(),
        );
    }
    pod.insert("volumes".into(), Value::Array(volumes));
    template
}

/// `ValidateStatefulSetSpec`.
fn validate_spec(spec: &Value, path: &Path, opts: Options) -> ErrorList {
    let mut errs = ErrorList::new();
    match spec.s("podManagementPolicy") {
        "" => errs.push(FieldError::required(&path.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            &path.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = spec.f("updateStrategy");
    let sp = path.child("updateStrategy");
    match strategy.s("type") {
        "" => errs.push(FieldError::required(&sp, "")),
        "OnDelete" => {
            if strategy.has("rollingUpdate") {
                errs.push(FieldError::invalid(
                    &sp.child("rollingUpdate"),
                    strategy.f("rollingUpdate").clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if strategy.has("rollingUpdate") {
                errs.extend(validate_rolling_update(
                    strategy.f("rollingUpdate"),
                    &sp.child("rollingUpdate"),
                ));
            }
        }
        _ => errs.push(FieldError::invalid(
            &sp,
            strategy.clone(),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    let retention = spec.f("persistentVolumeClaimRetentionPolicy");
    if retention.is_object() {
        for f in ["whenDeleted", "whenScaled"] {
            let v = retention.s(f);
            if !["Retain", "Delete"].contains(&v) {
                errs.push(FieldError::not_supported(
                    &path.child("persistentVolumeClaimRetentionPolicy").child(f),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    if !opts.skip_claim_templates {
        for (i, claim) in spec.a("volumeClaimTemplates").iter().enumerate() {
            errs.extend(validate_pvc_spec(
                claim.f("spec"),
                &path.child("volumeClaimTemplates").index(i).child("spec"),
            ));
        }
    }
    errs.extend(nonnegative(spec.i("replicas"), &path.child("replicas")));
    errs.extend(nonnegative(
        spec.i("minReadySeconds"),
        &path.child("minReadySeconds"),
    ));
    if spec.has("ordinals") {
        errs.extend(nonnegative(
            spec.f("ordinals").i("start"),
            &path.child("ordinals.start"),
        ));
    }
    let service = spec.s("serviceName");
    if !opts.allow_invalid_service_name && !service.is_empty() {
        for msg in is_dns1123_label(service) {
            errs.push(FieldError::invalid(
                &path.child("serviceName"),
                service,
                msg,
            ));
        }
    }
    errs.extend(validate_required_selector(
        spec.f("selector"),
        &path.child("selector"),
        "statefulset",
    ));
    match as_selector(spec.f("selector")) {
        None => errs.push(FieldError::invalid(
            &path.child("selector"),
            spec.f("selector").clone(),
            "",
        )),
        Some(selector) => {
            let template = template_to_validate(spec);
            let tpath = path.child("template");
            errs.extend(validate_selector_matches_template(
                &selector, &template, &tpath,
            ));
            if opts.skip_pod_template {
                // Even then the template's labels and annotations are checked.
                let meta = template.f("metadata");
                errs.extend(validate_labels(meta.get("labels"), &tpath.child("labels")));
                errs.extend(validate_annotations(
                    meta.get("annotations"),
                    &tpath.child("annotations"),
                ));
            } else {
                errs.extend(validate_pod_template_spec(&template, &tpath));
            }
        }
    }
    errs.extend(validate_template_runs_forever(
        spec.f("template"),
        &path.child("template"),
        "StatefulSet",
    ));
    errs
}

/// The spec without the fields an update may change.
fn fixed_part(spec: &Value) -> Value {
    without(spec, MUTABLE)
}

impl Strategy for StatefulSetStrategy {
    fn default(&self, obj: &mut Value) {
        default_path(obj, &["spec", "replicas"], json!(1));
        default_path(obj, &["spec", "podManagementPolicy"], json!("OrderedReady"));
        default_path(
            obj,
            &["spec", "updateStrategy", "type"],
            json!("RollingUpdate"),
        );
        if get_path(obj, &["spec", "updateStrategy", "type"]).and_then(Value::as_str)
            == Some("RollingUpdate")
        {
            default_path(
                obj,
                &["spec", "updateStrategy", "rollingUpdate", "partition"],
                json!(0),
            );
        }
        default_path(obj, &["spec", "revisionHistoryLimit"], json!(10));
        default_path(
            obj,
            &[
                "spec",
                "persistentVolumeClaimRetentionPolicy",
                "whenDeleted",
            ],
            json!("Retain"),
        );
        default_path(
            obj,
            &["spec", "persistentVolumeClaimRetentionPolicy", "whenScaled"],
            json!("Retain"),
        );
        default_template(obj, &["spec", "template"]);
        if let Some(Value::Array(claims)) = obj
            .get_mut("spec")
            .and_then(|s| s.get_mut("volumeClaimTemplates"))
        {
            for c in claims {
                default_path(c, &["spec", "volumeMode"], json!("Filesystem"));
                default_path(c, &["apiVersion"], json!("v1"));
                default_path(c, &["kind"], json!("PersistentVolumeClaim"));
                // Upstream defaults each template as a PVC, whose phase reads Pending.
                default_path(c, &["status", "phase"], json!("Pending"));
            }
        }
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    /// StatefulSet names become pod hostnames, so they are DNS labels.
    fn validate_name(&self, name: &str, prefix: bool) -> Vec<String> {
        name_is_dns_label(name, prefix)
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec(obj.f("spec"), &Path::new("spec"), Options::default())
    }

    /// `ValidateStatefulSetUpdate`: the new spec is valid (tolerating what the old one
    /// already had), and only the mutable fields changed.
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut opts = Options {
            allow_invalid_service_name: true,
            skip_claim_templates: true,
            skip_pod_template: false,
        };
        if !validate_spec(old.f("spec"), &Path::new("spec"), opts).is_empty() {
            opts.skip_pod_template = true;
        }
        let mut errs = validate_spec(new.f("spec"), &Path::new("spec"), opts);
        if !semantic_eq(&fixed_part(new.f("spec")), &fixed_part(old.f("spec"))) {
            errs.push(FieldError::forbidden(&Path::new("spec"), FORBIDDEN_UPDATE));
        }
        errs
    }

    /// `ValidateStatefulSetStatusUpdate`.
    fn validate_status_update(&self, new: &Value, old: &Value) -> ErrorList {
        let msg = "cannot be greater than status.replicas";
        let mut errs = validate_status_counts(
            new.f("status"),
            &[
                "replicas",
                "readyReplicas",
                "currentReplicas",
                "updatedReplicas",
                "availableReplicas",
                "observedGeneration",
                "collisionCount",
            ],
            &[
                ("readyReplicas", "replicas", msg),
                ("currentReplicas", "replicas", msg),
                ("updatedReplicas", "replicas", msg),
                ("availableReplicas", "replicas", msg),
                (
                    "availableReplicas",
                    "readyReplicas",
                    "cannot be greater than status.readyReplicas",
                ),
            ],
        );
        errs.extend(validate_collision_count(new, old));
        errs
    }

    fn scale(&self) -> Option<ScaleSpec> {
        Some(ScaleSpec::apps())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    /// The `web` StatefulSet of the Kubernetes documentation's StatefulSet page.
    fn docs_web() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "nginx"}},
                "serviceName": "nginx",
                "replicas": 3,
                "minReadySeconds": 10,
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 10,
                        "containers": [{
                            "name": "nginx",
                            "image": "registry.k8s.io/nginx-slim:0.24",
                            "ports": [{"containerPort": 80, "name": "web"}],
                            "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]
                        }]
                    }
                },
                "volumeClaimTemplates": [{
                    "metadata": {"name": "www"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": "my-storage-class",
                        "resources": {"requests": {"storage": "1Gi"}}
                    }
                }]
            }
        })
    }

    fn defaulted(mut o: Value) -> Value {
        StatefulSetStrategy.default(&mut o);
        o
    }

    #[test]
    fn docs_web_statefulset_mounting_its_claim_template_is_accepted() {
        let e = texts(StatefulSetStrategy.validate(&defaulted(docs_web())));
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn a_mount_of_an_unknown_volume_is_still_refused() {
        let mut sts = docs_web();
        sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["name"] = json!("data");
        let e = texts(StatefulSetStrategy.validate(&defaulted(sts)));
        assert!(
            e.iter().any(|m| m
                .starts_with("spec.template.spec.containers[0].volumeMounts[0].name: Not found")),
            "{e:?}"
        );
    }

    #[test]
    fn claim_templates_need_access_modes_and_storage() {
        let mut sts = docs_web();
        sts["spec"]["volumeClaimTemplates"][0]["spec"] = json!({});
        let e = texts(StatefulSetStrategy.validate(&defaulted(sts)));
        assert!(e.contains(&"spec.volumeClaimTemplates[0].spec.accessModes: Required value: at least 1 access mode is required".to_string()), "{e:?}");
        assert!(
            e.contains(
                &"spec.volumeClaimTemplates[0].spec.resources[storage]: Required value".to_string()
            ),
            "{e:?}"
        );
    }

    #[test]
    fn only_the_mutable_fields_may_change() {
        let old = defaulted(docs_web());
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(5);
        new["spec"]["revisionHistoryLimit"] = json!(3);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert!(texts(StatefulSetStrategy.validate_update(&new, &old)).is_empty());
        new["spec"]["serviceName"] = json!("other");
        assert_eq!(
            texts(StatefulSetStrategy.validate_update(&new, &old)),
            vec![format!("spec: Forbidden: {FORBIDDEN_UPDATE}")]
        );
    }

    #[test]
    fn claim_templates_get_the_whole_claim_spec_check() {
        // Upstream's ValidatePersistentVolumeClaimSpec: an unknown mode is not an "other"
        // mode beside ReadWriteOncePod, and the selector is checked too.
        let mut o = defaulted(docs_web());
        o["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] =
            json!(["ReadWriteOncePod", "Sometimes"]);
        o["spec"]["volumeClaimTemplates"][0]["spec"]["selector"] =
            json!({"matchLabels": {"a": "-"}});
        let e = texts(StatefulSetStrategy.validate(&o));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with(
                "spec.volumeClaimTemplates[0].spec.selector.matchLabels: Invalid value: \"-\""
            ),
            "{e:?}"
        );
        assert!(
            e[1].starts_with(
                "spec.volumeClaimTemplates[0].spec.accessModes: Unsupported value: \"Sometimes\""
            ),
            "{e:?}"
        );
    }

    #[test]
    fn names_are_dns_labels() {
        assert!(!StatefulSetStrategy.validate_name("a.b", false).is_empty());
        assert!(StatefulSetStrategy.validate_name("web", false).is_empty());
    }
}

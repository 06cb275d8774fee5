//! Deployments (upstream `ValidateDeployment*` and `pkg/registry/apps/deployment`).

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::workload::{
    default_template, int_or_percent_value, not_more_than_100_percent, validate_collision_count,
    validate_int_or_percent, validate_replicated_spec, validate_selector_immutable,
    validate_status_counts,
};
use crate::kinds::validation::{Fields, nonnegative};
use crate::meta::default_path;
use crate::registry::{ScaleSpec, Strategy};

/// The Deployment strategy.
pub struct DeploymentStrategy;

const STRATEGY_TYPES: &[&str] = &["Recreate", "RollingUpdate"];

/// `ValidateRollingUpdateDeployment`.
fn validate_rolling_update(ru: &Value, path: &Path) -> ErrorList {
    let (unavailable, surge) = (ru.f("maxUnavailable"), ru.f("maxSurge"));
    let mut errs = validate_int_or_percent(unavailable, &path.child("maxUnavailable"));
    errs.extend(validate_int_or_percent(surge, &path.child("maxSurge")));
    if int_or_percent_value(unavailable) == 0 && int_or_percent_value(surge) == 0 {
        errs.push(FieldError::invalid(
            &path.child("maxUnavailable"),
            if unavailable.is_null() {
                json!(0)
            } else {
                unavailable.clone()
            },
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    errs.extend(not_more_than_100_percent(
        unavailable,
        &path.child("maxUnavailable"),
    ));
    errs
}

/// `ValidateDeploymentStrategy`.
fn validate_strategy(strategy: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    match strategy.s("type") {
        "Recreate" => {
            if strategy.has("rollingUpdate") {
                errs.push(FieldError::forbidden(
                    &path.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => {
            if strategy.has("rollingUpdate") {
                errs.extend(validate_rolling_update(
                    strategy.f("rollingUpdate"),
                    &path.child("rollingUpdate"),
                ));
            } else {
                errs.push(FieldError::required(
                    &path.child("rollingUpdate"),
                    "this should be defaulted and never be nil",
                ));
            }
        }
        _ => errs.push(FieldError::not_supported(
            path,
            strategy.clone(),
            STRATEGY_TYPES,
        )),
    }
    errs
}

/// `ValidateDeploymentSpec`.
fn validate_spec(spec: &Value) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = validate_replicated_spec(spec, &path, "Deployment");
    errs.extend(validate_strategy(
        spec.f("strategy"),
        &path.child("strategy"),
    ));
    errs.extend(nonnegative(
        spec.i("revisionHistoryLimit"),
        &path.child("revisionHistoryLimit"),
    ));
    if let Some(deadline) = spec.i("progressDeadlineSeconds") {
        errs.extend(nonnegative(
            Some(deadline),
            &path.child("progressDeadlineSeconds"),
        ));
        if deadline <= spec.i("minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                &path.child("progressDeadlineSeconds"),
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

impl Strategy for DeploymentStrategy {
    fn default(&self, obj: &mut Value) {
        default_path(obj, &["spec", "replicas"], json!(1));
        let strategy_type = crate::meta::get_path(obj, &["spec", "strategy", "type"])
            .and_then(Value::as_str)
            .unwrap_or("RollingUpdate")
            .to_string();
        default_path(obj, &["spec", "strategy", "type"], json!(strategy_type));
        if strategy_type == "RollingUpdate" {
            default_path(
                obj,
                &["spec", "strategy", "rollingUpdate", "maxUnavailable"],
                json!("25%"),
            );
            default_path(
                obj,
                &["spec", "strategy", "rollingUpdate", "maxSurge"],
                json!("25%"),
            );
        }
        default_path(obj, &["spec", "revisionHistoryLimit"], json!(10));
        default_path(obj, &["spec", "progressDeadlineSeconds"], json!(600));
        default_template(obj, &["spec", "template"]);
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec(obj.f("spec"))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = validate_spec(new.f("spec"));
        errs.extend(validate_selector_immutable(new, old));
        errs
    }

    /// `ValidateDeploymentStatusUpdate`.
    fn validate_status_update(&self, new: &Value, old: &Value) -> ErrorList {
        let status = new.f("status");
        let msg = "cannot be greater than status.replicas";
        let mut errs = validate_status_counts(
            status,
            &[
                "observedGeneration",
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
                "terminatingReplicas",
                "collisionCount",
            ],
            &[
                ("updatedReplicas", "replicas", msg),
                ("readyReplicas", "replicas", msg),
                ("availableReplicas", "replicas", msg),
                (
                    "availableReplicas",
                    "readyReplicas",
                    "cannot be greater than readyReplicas",
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

    fn deployment() -> Value {
        json!({
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
                }
            }
        })
    }

    fn errors(obj: &Value) -> Vec<String> {
        let mut o = obj.clone();
        DeploymentStrategy.default(&mut o);
        DeploymentStrategy
            .validate(&o)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn kubectl_create_deployment_is_accepted() {
        assert!(
            errors(&deployment()).is_empty(),
            "{:?}",
            errors(&deployment())
        );
    }

    #[test]
    fn rolling_update_may_not_be_all_zero_or_over_100_percent() {
        let mut d = deployment();
        d["spec"]["strategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}});
        assert!(
            errors(&d).contains(
                &"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
                    .to_string()
            ),
            "{:?}",
            errors(&d)
        );
        d["spec"]["strategy"]["rollingUpdate"] = json!({"maxSurge": 1, "maxUnavailable": "150%"});
        assert!(
            errors(&d).contains(
                &"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"150%\": must not be greater than 100%"
                    .to_string()
            ),
            "{:?}",
            errors(&d)
        );
    }

    #[test]
    fn progress_deadline_must_exceed_min_ready() {
        let mut d = deployment();
        d["spec"]["minReadySeconds"] = json!(600);
        assert!(errors(&d).contains(
            &"spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"
                .to_string()
        ));
    }
}

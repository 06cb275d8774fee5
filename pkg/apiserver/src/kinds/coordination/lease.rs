//! Leases (upstream `ValidateLease`, `ValidateLeaseUpdate` and the lease strategy): a
//! positive duration, non-negative transitions, and the coordinated-leader-election
//! fields, which the (off by default) CoordinatedLeaderElection gate drops unless the
//! stored Lease already has them. An update of a missing Lease creates it.

use k1s_apimachinery::validation::is_qualified_name;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::validation::Fields;
use crate::registry::Strategy;

/// The Lease strategy.
pub struct LeaseStrategy;

const STRATEGIES: &[&str] = &["OldestEmulationVersion"];

/// `ValidateCoordinatedLeaseStrategy`. Upstream appends `strategy` to a path that already
/// ends in it, so errors read `spec.strategy.strategy`.
fn validate_strategy(strategy: &str, path: &Path) -> ErrorList {
    let path = path.child("strategy");
    if strategy.split('/').count() == 1 {
        if !STRATEGIES.contains(&strategy) {
            return vec![FieldError::not_supported(&path, strategy, STRATEGIES)];
        }
        return ErrorList::new();
    }
    is_qualified_name(strategy)
        .into_iter()
        .map(|msg| FieldError::invalid(&path, strategy, msg))
        .collect()
}

/// `ValidateLeaseSpec`.
fn validate_spec(obj: &Value) -> ErrorList {
    let spec = obj.f("spec");
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    if let Some(d) = spec.i("leaseDurationSeconds")
        && d <= 0
    {
        errs.push(FieldError::invalid(
            &path.child("leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec.i("leaseTransitions")
        && t < 0
    {
        errs.push(FieldError::invalid(
            &path.child("leaseTransitions"),
            t,
            "must be greater than or equal to 0",
        ));
    }
    let strategy = spec.get("strategy").and_then(Value::as_str);
    if let Some(s) = strategy {
        errs.extend(validate_strategy(s, &path.child("strategy")));
    }
    if !spec.s("preferredHolder").is_empty() && strategy.unwrap_or("").is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

fn drop_fields(obj: &mut Value, keep_strategy: bool, keep_holder: bool) {
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if !keep_strategy {
            spec.remove("strategy");
        }
        if !keep_holder {
            spec.remove("preferredHolder");
        }
    }
}

impl Strategy for LeaseStrategy {
    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn allow_unconditional_update(&self) -> bool {
        false
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        drop_fields(obj, false, false);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value, _has_status: bool) {
        let spec = old.f("spec");
        drop_fields(new, spec.has("strategy"), spec.has("preferredHolder"));
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec(obj)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn node_leases_are_valid_and_gated_fields_dropped() {
        let mut lease = json!({"metadata": {"name": "node-1", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40, "renewTime": "2025-01-01T00:00:00.000000Z",
                     "strategy": "OldestEmulationVersion", "preferredHolder": "x"}});
        LeaseStrategy.prepare_for_create(&mut lease, false);
        assert!(lease["spec"].get("strategy").is_none());
        assert!(LeaseStrategy.validate(&lease).is_empty());
        lease["spec"]["leaseDurationSeconds"] = json!(0);
        assert_eq!(
            LeaseStrategy.validate(&lease)[0].to_string(),
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
        );
        let odd = json!({"spec": {"strategy": "Newest"}});
        assert_eq!(
            LeaseStrategy.validate(&odd)[0].to_string(),
            "spec.strategy.strategy: Unsupported value: \"Newest\": supported values: \"OldestEmulationVersion\""
        );
    }
}

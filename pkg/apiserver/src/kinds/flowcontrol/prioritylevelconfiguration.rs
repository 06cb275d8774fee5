//! PriorityLevelConfigurations (upstream's `ValidatePriorityLevelConfiguration` with
//! the strategy's options, which refuse a zero nominalConcurrencyShares for limited
//! levels, and `ValidatePriorityLevelConfigurationStatusUpdate`).

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::{CATCH_ALL, EXEMPT, spec_eq, validate_status_conditions};
use crate::kinds::validation::Fields;
use crate::meta;
use crate::registry::Strategy;

/// The most queues a priority level may have (10^7).
const MAX_QUEUES: i64 = 10_000_000;
/// Shuffle sharding hashes with this many bits.
const MAX_HASH_BITS: i64 = 60;

/// The fixed spec of a mandatory priority level, after defaulting (for `exempt`, all but
/// `spec.exempt`).
fn mandatory_spec(name: &str) -> Option<Value> {
    match name {
        EXEMPT => Some(json!({"type": "Exempt"})),
        CATCH_ALL => Some(json!({"type": "Limited", "limited": {
            "nominalConcurrencyShares": 5,
            "lendablePercent": 0,
            "limitResponse": {"type": "Reject"}
        }})),
        _ => None,
    }
}

/// Shuffle sharding's `RequiredEntropyBits`.
fn required_entropy_bits(deck_size: i64, hand_size: i64) -> i64 {
    ((deck_size as f64).log2() * hand_size as f64).ceil() as i64
}

fn validate_queuing(q: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let limit = q.i("queueLengthLimit").unwrap_or(0);
    if limit <= 0 {
        errs.push(FieldError::invalid(
            &path.child("queueLengthLimit"),
            limit,
            "must be positive",
        ));
    }
    let queues = q.i("queues").unwrap_or(0);
    if queues <= 0 {
        errs.push(FieldError::invalid(
            &path.child("queues"),
            queues,
            "must be positive",
        ));
    } else if queues > MAX_QUEUES {
        errs.push(FieldError::invalid(
            &path.child("queues"),
            queues,
            format!("must not be greater than {MAX_QUEUES}"),
        ));
    }
    let hand = q.i("handSize").unwrap_or(0);
    let hp = path.child("handSize");
    if hand <= 0 {
        errs.push(FieldError::invalid(&hp, hand, "must be positive"));
    } else if hand > queues {
        errs.push(FieldError::invalid(
            &hp,
            hand,
            format!("should not be greater than queues ({queues})"),
        ));
    } else if required_entropy_bits(queues, hand) > MAX_HASH_BITS {
        errs.push(FieldError::invalid(
            &hp,
            hand,
            format!(
                "required entropy bits of deckSize {queues} and handSize {hand} should not be greater than {MAX_HASH_BITS}"
            ),
        ));
    }
    errs
}

fn validate_limit_response(lr: &Value, path: &Path) -> ErrorList {
    let queuing = lr.get("queuing");
    match lr.s("type") {
        "Reject" if queuing.is_some() => vec![FieldError::forbidden(
            &path.child("queuing"),
            "must be nil if limited.limitResponse.type is not Limited",
        )],
        "Reject" => ErrorList::new(),
        "Queue" => match queuing {
            None => vec![FieldError::required(
                &path.child("queuing"),
                "must not be empty if limited.limitResponse.type is Limited",
            )],
            Some(q) => validate_queuing(q, &path.child("queuing")),
        },
        other => vec![FieldError::not_supported(
            &path.child("type"),
            other,
            &["Queue", "Reject"],
        )],
    }
}

fn validate_lendable(v: &Value, path: &Path) -> ErrorList {
    match v.i("lendablePercent") {
        Some(p) if !(0..=100).contains(&p) => vec![FieldError::invalid(
            &path.child("lendablePercent"),
            p,
            "must be between 0 and 100, inclusive",
        )],
        _ => ErrorList::new(),
    }
}

fn validate_limited(l: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let shares = l.i("nominalConcurrencyShares").unwrap_or(0);
    if shares <= 0 {
        errs.push(FieldError::invalid(
            &path.child("nominalConcurrencyShares"),
            shares,
            "must be positive",
        ));
    }
    errs.extend(validate_limit_response(
        l.f("limitResponse"),
        &path.child("limitResponse"),
    ));
    errs.extend(validate_lendable(l, path));
    if let Some(b) = l.i("borrowingLimitPercent")
        && b < 0
    {
        errs.push(FieldError::invalid(
            &path.child("borrowingLimitPercent"),
            b,
            "if specified, must be a non-negative integer",
        ));
    }
    errs
}

fn validate_exempt(e: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(n) = e.i("nominalConcurrencyShares")
        && n < 0
    {
        errs.push(FieldError::invalid(
            &path.child("nominalConcurrencyShares"),
            n,
            "must be a non-negative integer",
        ));
    }
    errs.extend(validate_lendable(e, path));
    errs
}

fn validate_spec(name: &str, spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let ty = spec.s("type");
    if (name == EXEMPT) != (ty == "Exempt") {
        errs.push(FieldError::invalid(
            &path.child("type"),
            ty,
            "type must be 'Exempt' if and only if name is 'exempt'",
        ));
    }
    match ty {
        "Exempt" => {
            if spec.get("limited").is_some() {
                errs.push(FieldError::forbidden(
                    &path.child("limited"),
                    "must be nil if the type is not Limited",
                ));
            }
            if let Some(e) = spec.get("exempt") {
                errs.extend(validate_exempt(e, &path.child("exempt")));
            }
        }
        "Limited" => {
            if spec.get("exempt").is_some() {
                errs.push(FieldError::forbidden(
                    &path.child("exempt"),
                    "must be nil if the type is Limited",
                ));
            }
            match spec.get("limited") {
                None => errs.push(FieldError::required(
                    &path.child("limited"),
                    "must not be empty when type is Limited",
                )),
                Some(l) => errs.extend(validate_limited(l, &path.child("limited"))),
            }
        }
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["Exempt", "Limited"],
        )),
    }
    errs
}

fn validate_priority_level(obj: &Value) -> ErrorList {
    let name = meta::name(obj);
    let spec = obj.f("spec");
    let sp = Path::new("spec");
    let mut errs = validate_spec(name, spec, &sp);
    if let Some(fixed) = mandatory_spec(name) {
        // The exempt level's `spec.exempt` is the admin's to tune.
        let mut have = spec.clone();
        if name == EXEMPT
            && let Some(o) = have.as_object_mut()
        {
            o.remove("exempt");
        }
        if !spec_eq(&have, &fixed) {
            let msg = if name == EXEMPT {
                format!(
                    "spec of '{name}' except the 'spec.exempt' field must equal the fixed value"
                )
            } else {
                format!("spec of '{name}' must equal the fixed value")
            };
            errs.push(FieldError::invalid(&sp, spec.clone(), msg));
        }
    }
    errs.extend(validate_status_conditions(obj));
    errs
}

/// The PriorityLevelConfiguration strategy.
pub struct PriorityLevelConfigurationStrategy;

impl Strategy for PriorityLevelConfigurationStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        if let Some(l) = spec.get_mut("limited").and_then(Value::as_object_mut) {
            l.entry("nominalConcurrencyShares")
                .or_insert_with(|| json!(30));
            l.entry("lendablePercent").or_insert_with(|| json!(0));
            if let Some(q) = l
                .get_mut("limitResponse")
                .and_then(|r| r.get_mut("queuing"))
                .and_then(Value::as_object_mut)
            {
                for (key, default) in [("handSize", 8), ("queues", 64), ("queueLengthLimit", 50)] {
                    if q.get(key).and_then(Value::as_i64).unwrap_or(0) == 0 {
                        q.insert(key.into(), json!(default));
                    }
                }
            }
        }
        if let Some(e) = spec.get_mut("exempt").and_then(Value::as_object_mut) {
            e.entry("nominalConcurrencyShares")
                .or_insert_with(|| json!(0));
            e.entry("lendablePercent").or_insert_with(|| json!(0));
        }
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_priority_level(obj)
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> ErrorList {
        validate_status_conditions(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    #[test]
    fn suggested_levels_are_valid_and_defaulted() {
        let mut pl = json!({"metadata": {"name": "workload-low"}, "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": 100, "lendablePercent": 90,
            "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}
        }}});
        PriorityLevelConfigurationStrategy.default(&mut pl);
        assert_eq!(
            texts(PriorityLevelConfigurationStrategy.validate(&pl)),
            Vec::<String>::new()
        );
        let mut bare = json!({"metadata": {"name": "x"}, "spec": {"type": "Limited", "limited": {"limitResponse": {"type": "Queue", "queuing": {}}}}});
        PriorityLevelConfigurationStrategy.default(&mut bare);
        assert_eq!(bare["spec"]["limited"]["nominalConcurrencyShares"], 30);
        assert_eq!(
            bare["spec"]["limited"]["limitResponse"]["queuing"],
            json!({"queues": 64, "handSize": 8, "queueLengthLimit": 50})
        );
        assert!(
            PriorityLevelConfigurationStrategy
                .validate(&bare)
                .is_empty()
        );
        let mut exempt = json!({"metadata": {"name": "exempt"}, "spec": {"type": "Exempt", "exempt": {"nominalConcurrencyShares": 10}}});
        PriorityLevelConfigurationStrategy.default(&mut exempt);
        assert!(
            PriorityLevelConfigurationStrategy
                .validate(&exempt)
                .is_empty()
        );
        let mut catch_all = json!({"metadata": {"name": "catch-all"}, "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 5, "limitResponse": {"type": "Reject"}}}});
        PriorityLevelConfigurationStrategy.default(&mut catch_all);
        assert!(
            PriorityLevelConfigurationStrategy
                .validate(&catch_all)
                .is_empty()
        );
    }

    #[test]
    fn bad_levels_report_upstream_texts() {
        let pl = json!({"metadata": {"name": "x"}, "spec": {"type": "Limited", "exempt": {}, "limited": {
            "nominalConcurrencyShares": 0, "lendablePercent": 101, "borrowingLimitPercent": -1,
            "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 129, "queueLengthLimit": 0}}
        }}});
        assert_eq!(
            texts(PriorityLevelConfigurationStrategy.validate(&pl)),
            [
                "spec.exempt: Forbidden: must be nil if the type is Limited",
                "spec.limited.nominalConcurrencyShares: Invalid value: 0: must be positive",
                "spec.limited.limitResponse.queuing.queueLengthLimit: Invalid value: 0: must be positive",
                "spec.limited.limitResponse.queuing.handSize: Invalid value: 129: should not be greater than queues (128)",
                "spec.limited.lendablePercent: Invalid value: 101: must be between 0 and 100, inclusive",
                "spec.limited.borrowingLimitPercent: Invalid value: -1: if specified, must be a non-negative integer",
            ]
        );
        let entropy = json!({"metadata": {"name": "x"}, "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 1,
            "limitResponse": {"type": "Queue", "queuing": {"queues": 10000000, "handSize": 100, "queueLengthLimit": 1}}}}});
        assert_eq!(
            texts(PriorityLevelConfigurationStrategy.validate(&entropy)),
            [
                "spec.limited.limitResponse.queuing.handSize: Invalid value: 100: required entropy bits of deckSize 10000000 and handSize 100 should not be greater than 60"
            ]
        );
        let exempt_limited = json!({"metadata": {"name": "exempt"}, "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 1, "limitResponse": {"type": "Reject"}}}});
        let got = texts(PriorityLevelConfigurationStrategy.validate(&exempt_limited));
        assert_eq!(
            got[0],
            "spec.type: Invalid value: \"Limited\": type must be 'Exempt' if and only if name is 'exempt'"
        );
        assert!(got[1].ends_with(
            "spec of 'exempt' except the 'spec.exempt' field must equal the fixed value"
        ));
    }
}

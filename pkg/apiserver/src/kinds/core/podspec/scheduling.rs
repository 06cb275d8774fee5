//! Where a pod may run and how it resolves names: affinity, tolerations, topology spread
//! constraints, DNS policy and config, host aliases, readiness and scheduling gates
//! (upstream `validateAffinity`, `ValidateTolerations`, `validateTopologySpreadConstraints`,
//! `validatePodDNSConfig`, `ValidateHostAliases`, `validateReadinessGates`,
//! `validateSchedulingGates`).

use std::collections::{BTreeMap, BTreeSet};

use k1s_apimachinery::meta::{
    name_is_dns_label, name_is_dns_subdomain, validate_label_name, validate_label_selector,
};
use k1s_apimachinery::validation::is_valid_label_value;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use super::PodOpts;
use super::util::{
    dns_subdomain, invalid_each, is_dns1123_subdomain_with_underscore, qualified_name, valid_ip,
};
use crate::kinds::validation::Fields;

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap_or("")).collect())
        .unwrap_or_default()
}

/// `ValidateNodeSelectorRequirement`.
fn node_selector_requirement(rq: &Value, allow_invalid_values: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = strings(rq.f("values"));
    match rq.s("operator") {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(FieldError::forbidden(
                    &path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        op => errs.push(FieldError::invalid(
            &path.child("operator"),
            op,
            "not a valid selector operator",
        )),
    }
    errs.extend(validate_label_name(rq.s("key"), &path.child("key")));
    if !allow_invalid_values {
        for (i, v) in values.iter().enumerate() {
            errs.extend(invalid_each(
                v,
                &path.child("values").index(i),
                is_valid_label_value(v),
            ));
        }
    }
    errs
}

/// `ValidateNodeFieldSelectorRequirement`.
fn node_field_selector_requirement(rq: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = strings(rq.f("values"));
    match rq.s("operator") {
        "In" | "NotIn" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        }
        op => errs.push(FieldError::invalid(
            &path.child("operator"),
            op,
            "not a valid selector operator",
        )),
    }
    if rq.s("key") != "metadata.name" {
        errs.push(FieldError::invalid(
            &path.child("key"),
            rq.s("key"),
            "not a valid field selector key",
        ));
    } else {
        for (i, v) in values.iter().enumerate() {
            errs.extend(invalid_each(
                v,
                &path.child("values").index(i),
                name_is_dns_subdomain(v, false),
            ));
        }
    }
    errs
}

/// `ValidateNodeSelectorTerm`.
fn node_selector_term(term: &Value, allow_invalid_values: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (j, rq) in term.a("matchExpressions").iter().enumerate() {
        errs.extend(node_selector_requirement(
            rq,
            allow_invalid_values,
            &path.child("matchExpressions").index(j),
        ));
    }
    for (j, rq) in term.a("matchFields").iter().enumerate() {
        errs.extend(node_field_selector_requirement(
            rq,
            &path.child("matchFields").index(j),
        ));
    }
    errs
}

fn weight(w: &Value, path: &Path) -> ErrorList {
    let w = w.i("weight").unwrap_or(0);
    if !(1..=100).contains(&w) {
        return vec![FieldError::invalid(
            &path.child("weight"),
            w,
            "must be in the range 1-100",
        )];
    }
    ErrorList::new()
}

/// `validateAffinity`.
pub(crate) fn validate_affinity(affinity: &Value, path: &Path, opts: &PodOpts) -> ErrorList {
    let mut errs = ErrorList::new();
    if !affinity.is_object() {
        return errs;
    }
    let na = affinity.f("nodeAffinity");
    if na.is_object() {
        let np = path.child("nodeAffinity");
        let req = na.f("requiredDuringSchedulingIgnoredDuringExecution");
        if req.is_object() {
            let rp = np
                .child("requiredDuringSchedulingIgnoredDuringExecution")
                .child("nodeSelectorTerms");
            let terms = req.a("nodeSelectorTerms");
            if terms.is_empty() {
                errs.push(FieldError::required(
                    &rp,
                    "must have at least one node selector term",
                ));
            }
            for (i, t) in terms.iter().enumerate() {
                errs.extend(node_selector_term(
                    t,
                    opts.allow_invalid_label_value_in_required_node_affinity,
                    &rp.index(i),
                ));
            }
        }
        let pp = np.child("preferredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in na
            .a("preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            errs.extend(weight(t, &pp.index(i)));
            // Preferred terms may name label values no node has yet.
            errs.extend(node_selector_term(
                t.f("preference"),
                true,
                &pp.index(i).child("preference"),
            ));
        }
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let pa = affinity.f(kind);
        if !pa.is_object() {
            continue;
        }
        let kp = path.child(kind);
        let rp = kp.child("requiredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in pa
            .a("requiredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            errs.extend(pod_affinity_term(t, &rp.index(i)));
        }
        let pp = kp.child("preferredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in pa
            .a("preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            errs.extend(weight(t, &pp.index(i)));
            errs.extend(pod_affinity_term(
                t.f("podAffinityTerm"),
                &pp.index(i).child("podAffinityTerm"),
            ));
        }
    }
    errs
}

/// `validatePodAffinityTerm`.
fn pod_affinity_term(term: &Value, path: &Path) -> ErrorList {
    let mut errs = validate_label_selector(term.get("labelSelector"), &path.child("labelSelector"));
    errs.extend(validate_label_selector(
        term.get("namespaceSelector"),
        &path.child("namespaceSelector"),
    ));
    for ns in strings(term.f("namespaces")) {
        errs.extend(invalid_each(
            ns,
            &path.child("namespace"),
            name_is_dns_label(ns, false),
        ));
    }
    errs.extend(match_label_keys(
        path,
        &strings(term.f("matchLabelKeys")),
        &strings(term.f("mismatchLabelKeys")),
        term.f("labelSelector"),
    ));
    let key = term.s("topologyKey");
    if key.is_empty() {
        errs.push(FieldError::required(
            &path.child("topologyKey"),
            "can not be empty",
        ));
    }
    errs.extend(validate_label_name(key, &path.child("topologyKey")));
    errs
}

/// `validateLabelKeys`: label keys valid, and only with a selector.
fn label_keys(path: &Path, keys: &[&str], selector: &Value) -> ErrorList {
    if keys.is_empty() {
        return ErrorList::new();
    }
    if !selector.is_object() {
        return vec![FieldError::forbidden(
            path,
            "must not be specified when labelSelector is not set",
        )];
    }
    keys.iter()
        .enumerate()
        .flat_map(|(i, k)| validate_label_name(k, &path.index(i)))
        .collect()
}

/// `ValidateMatchLabelKeysAndMismatchLabelKeys`: the keys are label names, a key merged
/// from `matchLabelKeys` does not meet the selector's own, and no key is in both lists.
fn match_label_keys(path: &Path, keys: &[&str], mismatch: &[&str], selector: &Value) -> ErrorList {
    let mut errs = label_keys(&path.child("matchLabelKeys"), keys, selector);
    errs.extend(label_keys(
        &path.child("mismatchLabelKeys"),
        mismatch,
        selector,
    ));
    if selector.is_object() {
        let positions: BTreeMap<&str, usize> =
            keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        let mut seen: BTreeSet<&str> = selector
            .m("matchLabels")
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        for e in selector.a("matchExpressions") {
            let key = e.s("key");
            if let Some(i) = positions.get(key)
                && seen.contains(key)
            {
                // Upstream reports this at the term's own path plus the index.
                errs.push(FieldError::invalid(
                    &path.index(*i),
                    key,
                    "exists in both matchLabelKeys and labelSelector",
                ));
            }
            seen.insert(key);
        }
    }
    for (i, k) in keys.iter().enumerate() {
        if mismatch.contains(k) {
            errs.push(FieldError::invalid(
                &path.child("matchLabelKeys").index(i),
                *k,
                "exists in both matchLabelKeys and mismatchLabelKeys",
            ));
        }
    }
    errs
}

/// `ValidateTolerations`.
pub(crate) fn validate_tolerations(tolerations: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = path.index(i);
        let key = t.s("key");
        let op = t.s("operator");
        let effect = t.s("effect");
        let value = t.s("value");
        if !key.is_empty() {
            errs.extend(validate_label_name(key, &p.child("key")));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                &p.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.has("tolerationSeconds") && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            // Numeric comparisons are an alpha feature in 1.35.
            "Lt" | "Gt" => errs.push(FieldError::not_supported(
                &p.child("operator"),
                op,
                &["Equal", "Exists", "Lt", "Gt"],
            )),
            other => errs.push(FieldError::not_supported(
                &p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect)
        {
            errs.push(FieldError::not_supported(
                &p.child("effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

/// `validateTopologySpreadConstraints`.
pub(crate) fn validate_topology_spread(
    constraints: &[Value],
    path: &Path,
    opts: &PodOpts,
) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, c) in constraints.iter().enumerate() {
        let p = path.index(i);
        let skew = c.i("maxSkew").unwrap_or(0);
        if skew <= 0 {
            errs.push(FieldError::invalid(
                &p.child("maxSkew"),
                skew,
                "must be greater than zero",
            ));
        }
        let key = c.s("topologyKey");
        if key.is_empty() {
            errs.push(FieldError::required(
                &p.child("topologyKey"),
                "can not be empty",
            ));
        }
        let action = c.s("whenUnsatisfiable");
        if !["DoNotSchedule", "ScheduleAnyway"].contains(&action) {
            errs.push(FieldError::not_supported(
                &p.child("whenUnsatisfiable"),
                action,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        if constraints[i + 1..]
            .iter()
            .any(|o| o.s("topologyKey") == key && o.s("whenUnsatisfiable") == action)
        {
            errs.push(FieldError::duplicate(
                &p.child("{topologyKey, whenUnsatisfiable}"),
                format!("{{{key}, {action}}}"),
            ));
        }
        if let Some(min) = c.i("minDomains") {
            let mp = p.child("minDomains");
            if min <= 0 {
                errs.push(FieldError::invalid(&mp, min, "must be greater than zero"));
            }
            if action != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    &mp,
                    min,
                    format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"
                    ),
                ));
            }
        }
        for policy in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if c.has(policy) && !["Honor", "Ignore"].contains(&c.s(policy)) {
                errs.push(FieldError::not_supported(
                    &p.child(policy),
                    c.s(policy),
                    &["Honor", "Ignore"],
                ));
            }
        }
        errs.extend(match_label_keys(
            &p,
            &strings(c.f("matchLabelKeys")),
            &[],
            c.f("labelSelector"),
        ));
        if !opts.allow_invalid_topology_spread_selector {
            errs.extend(validate_label_selector(
                c.get("labelSelector"),
                &p.child("labelSelector"),
            ));
        }
    }
    errs
}

/// `validatePodDNSConfig`.
pub(crate) fn validate_dns_config(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let config = spec.f("dnsConfig");
    if spec.s("dnsPolicy") == "None" {
        if !config.is_object() {
            return vec![FieldError::required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            )];
        }
        if config.a("nameservers").is_empty() {
            return vec![FieldError::required(
                &path.child("nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )];
        }
    }
    if !config.is_object() {
        return errs;
    }
    let nameservers = strings(config.f("nameservers"));
    if nameservers.len() > 3 {
        errs.push(FieldError::invalid(
            &path.child("nameservers"),
            config.f("nameservers").clone(),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        errs.extend(valid_ip(ns, &path.child("nameservers").index(i)));
    }
    let searches = strings(config.f("searches"));
    if searches.len() > 32 {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            config.f("searches").clone(),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            config.f("searches").clone(),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, s) in searches.iter().enumerate() {
        if *s != "." {
            let s = s.strip_suffix('.').unwrap_or(s);
            errs.extend(invalid_each(
                s,
                &path.child("searches").index(i),
                is_dns1123_subdomain_with_underscore(s),
            ));
        }
    }
    for (i, o) in config.a("options").iter().enumerate() {
        if o.s("name").is_empty() {
            errs.push(FieldError::required(
                &path.child("options").index(i),
                "must not be empty",
            ));
        }
    }
    errs
}

/// `ValidateHostAliases`.
pub(crate) fn validate_host_aliases(aliases: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, a) in aliases.iter().enumerate() {
        let p = path.index(i);
        errs.extend(valid_ip(a.s("ip"), &p.child("ip")));
        for (j, h) in strings(a.f("hostnames")).iter().enumerate() {
            errs.extend(dns_subdomain(h, &p.child("hostnames").index(j)));
        }
    }
    errs
}

/// `validateReadinessGates`.
pub(crate) fn validate_readiness_gates(gates: &[Value], path: &Path) -> ErrorList {
    gates
        .iter()
        .enumerate()
        .flat_map(|(i, g)| {
            qualified_name(g.s("conditionType"), &path.index(i).child("conditionType"))
        })
        .collect()
}

/// `validateSchedulingGates`.
pub(crate) fn validate_scheduling_gates(gates: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (i, g) in gates.iter().enumerate() {
        let name = g.s("name");
        errs.extend(qualified_name(name, &path.index(i)));
        if !seen.insert(name) {
            errs.push(FieldError::duplicate(&path.index(i), name));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn texts(errs: ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn tolerations() {
        let p = Path::new("t");
        assert!(validate_tolerations(
            &[json!({"operator": "Exists"}), json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})],
            &p
        )
        .is_empty());
        assert_eq!(
            texts(validate_tolerations(
                &[json!({"operator": "Equal", "value": "x"})],
                &p
            )),
            vec![
                "t[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\""
            ]
        );
        assert_eq!(
            texts(validate_tolerations(
                &[json!({"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5})],
                &p
            )),
            vec![
                "t[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set"
            ]
        );
    }

    #[test]
    fn spread_constraints_repeat_and_merged_keys() {
        let p = Path::new("c");
        let c = json!({"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                       "labelSelector": {"matchLabels": {"app": "a"}}});
        let errs = texts(validate_topology_spread(
            &[c.clone(), c],
            &p,
            &PodOpts::default(),
        ));
        assert_eq!(
            errs,
            vec![
                "c[0].{topologyKey, whenUnsatisfiable}: Duplicate value: \"{zone, DoNotSchedule}\""
            ]
        );
        // A key merged from matchLabelKeys is fine; one the user also names is not.
        let merged = json!({"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
            "matchLabelKeys": ["pod-template-hash"],
            "labelSelector": {"matchLabels": {"app": "a"},
                "matchExpressions": [{"key": "pod-template-hash", "operator": "In", "values": ["x"]}]}});
        assert!(validate_topology_spread(&[merged], &p, &PodOpts::default()).is_empty());
    }

    #[test]
    fn node_affinity_terms() {
        let a = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                                  {"key": "k", "operator": "Exists", "values": ["x"]}]}]}}});
        let errs = texts(validate_affinity(&a, &Path::new("a"), &PodOpts::default()));
        assert_eq!(
            errs,
            vec![
                "a.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            ]
        );
    }
}

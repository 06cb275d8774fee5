//! Where a pod may run and how it resolves names: affinity, tolerations, topology spread
//! constraints, DNS policy and config, host aliases, readiness and scheduling gates
//! (upstream `validateAffinity`, `ValidateTolerations`, `validateTopologySpreadConstraints`,
//! `validatePodDNSConfig`, `ValidateHostAliases`, `validateReadinessGates`,
//! `validateSchedulingGates`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k1s_apimachinery::meta::{name_is_dns_label, validate_label_name, validate_label_selector};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use super::PodOpts;
use super::util::{
    dns_subdomain, invalid_each, is_dns1123_subdomain_with_underscore, validate_qualified_name,
};
use crate::kinds::validation::ip::validate_legacy_ip;
pub(crate) use crate::kinds::validation::scheduling::validate_tolerations;
use crate::kinds::validation::scheduling::{validate_node_selector, validate_node_selector_term};
use crate::kinds::validation::{Fields, strings};

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
            errs.extend(validate_node_selector(
                req,
                opts.allow_invalid_label_value_in_required_node_affinity,
                &np.child("requiredDuringSchedulingIgnoredDuringExecution"),
            ));
        }
        let pp = np.child("preferredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in na
            .a("preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            errs.extend(weight(t, &pp.index(i)));
            // Preferred terms may name label values no node has yet.
            errs.extend(validate_node_selector_term(
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

/// `validateTopologySpreadConstraints`.
pub(crate) fn validate_topology_spread(
    constraints: &[Value],
    path: &Path,
    opts: &PodOpts,
) -> ErrorList {
    let mut errs = ErrorList::new();
    // Upstream reports a constraint whose pair recurs later in the list; the last index
    // of each pair tells that without comparing every constraint with every later one.
    let last: HashMap<(&str, &str), usize> = constraints
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.s("topologyKey"), c.s("whenUnsatisfiable")), i))
        .collect();
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
        if last.get(&(key, action)).is_some_and(|&j| j > i) {
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
        errs.extend(validate_legacy_ip(ns, &path.child("nameservers").index(i)));
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
        errs.extend(validate_legacy_ip(a.s("ip"), &p.child("ip")));
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
            validate_qualified_name(g.s("conditionType"), &path.index(i).child("conditionType"))
        })
        .collect()
}

/// `validateSchedulingGates`.
pub(crate) fn validate_scheduling_gates(gates: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (i, g) in gates.iter().enumerate() {
        let name = g.s("name");
        errs.extend(validate_qualified_name(name, &path.index(i)));
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
    use crate::test_util::texts;

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
            &[c.clone(), c.clone()],
            &p,
            &PodOpts::default(),
        ));
        assert_eq!(
            errs,
            vec![
                "c[0].{topologyKey, whenUnsatisfiable}: Duplicate value: \"{zone, DoNotSchedule}\""
            ]
        );
        // Each constraint whose pair comes again later is reported; the last is not.
        let other =
            json!({"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"});
        let errs = texts(validate_topology_spread(
            &[c.clone(), other, c.clone(), c.clone()],
            &p,
            &PodOpts::default(),
        ));
        assert_eq!(
            errs,
            vec![
                "c[0].{topologyKey, whenUnsatisfiable}: Duplicate value: \"{zone, DoNotSchedule}\"",
                "c[2].{topologyKey, whenUnsatisfiable}: Duplicate value: \"{zone, DoNotSchedule}\""
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

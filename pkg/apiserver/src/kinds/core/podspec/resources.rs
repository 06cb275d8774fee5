//! Resource requirements: container `resources`, the pod-level `spec.resources`, `overhead`,
//! and the QoS class derived from them (upstream `validateResourceRequirements`,
//! `validatePodResources`, `ValidateResourceQuantityValue` and `qos.ComputePodQOS`).

use std::collections::{BTreeMap, BTreeSet};

use k1s_apimachinery::{ErrorList, FieldError, Path, Quantity};
use serde_json::Value;

use super::PodOpts;
use super::util::{dns_label, quantity_of, quantity_text};
use crate::kinds::validation::Fields;
pub(crate) use crate::kinds::validation::resources::{
    is_huge_page_resource_name, is_overcommit_allowed,
};
use crate::kinds::validation::resources::{
    validate_container_resource_name, validate_resource_name, validate_resource_quantity_value,
};

const HUGEPAGES_PREFIX: &str = "hugepages-";

/// Resources a pod may name at pod level (`resourcehelper.IsSupportedPodLevelResource`).
fn is_supported_pod_level(name: &str) -> bool {
    name == "cpu" || name == "memory" || is_huge_page_resource_name(name)
}

/// `validatePodResourceName`.
fn validate_pod_resource_name(name: &str, path: &Path) -> ErrorList {
    let errs = validate_resource_name(name, path);
    if !errs.is_empty() {
        return errs;
    }
    if !is_supported_pod_level(name) {
        return vec![FieldError::not_supported(
            path,
            name,
            &["cpu", "hugepages-", "memory"],
        )];
    }
    ErrorList::new()
}

/// `helper.IsHugePageResourceValueDivisible`.
fn hugepage_value_divisible(name: &str, q: &Quantity) -> bool {
    let Some(size) = name
        .strip_prefix(HUGEPAGES_PREFIX)
        .and_then(|s| Quantity::parse(s).ok())
    else {
        return false;
    };
    if size.signum() <= 0 || size.milli_value() % 1000 != 0 {
        return false;
    }
    q.value() % size.value() == 0
}

fn hugepage_value(name: &str, q: &Quantity, path: &Path, opts: &PodOpts) -> ErrorList {
    if opts.allow_indivisible_hugepages || hugepage_value_divisible(name, q) {
        return ErrorList::new();
    }
    let text = quantity_text(q);
    vec![FieldError::invalid(
        path,
        text.clone(),
        format!("{text} is not positive integer multiple of {name}"),
    )]
}

/// A resource list as name → parsed quantity (unparsable entries are the decoder's
/// business and are skipped).
pub(crate) fn resource_list(v: &Value) -> BTreeMap<String, Quantity> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, q)| quantity_of(q).map(|q| (k.clone(), q)))
                .collect()
        })
        .unwrap_or_default()
}

/// Which resource-name rule applies.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Level {
    /// A container's `resources` (and `overhead`).
    Container,
    /// The pod-level `spec.resources`.
    Pod,
}

/// `validateResourceRequirements`.
pub(crate) fn validate_requirements(
    req: &Value,
    claim_names: &BTreeSet<String>,
    path: &Path,
    level: Level,
    opts: &PodOpts,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let name_check = |name: &str, p: &Path| match level {
        Level::Container => validate_container_resource_name(name, p),
        Level::Pod => validate_pod_resource_name(name, p),
    };
    let limits = resource_list(req.f("limits"));
    let requests = resource_list(req.f("requests"));
    let (mut lim_compute, mut req_compute, mut lim_huge, mut req_huge) =
        (false, false, false, false);
    for name in req.m("limits").map(|m| m.keys()).into_iter().flatten() {
        let p = lim_path.key(name);
        errs.extend(name_check(name, &p));
        if let Some(q) = limits.get(name) {
            errs.extend(validate_resource_quantity_value(name, q, &p));
            if is_huge_page_resource_name(name) {
                lim_huge = true;
                errs.extend(hugepage_value(name, q, &p, opts));
            }
        }
        if name == "cpu" || name == "memory" {
            lim_compute = true;
        }
    }
    for name in req.m("requests").map(|m| m.keys()).into_iter().flatten() {
        let p = req_path.key(name);
        errs.extend(name_check(name, &p));
        let q = requests.get(name);
        if let Some(q) = q {
            errs.extend(validate_resource_quantity_value(name, q, &p));
        }
        match (q, limits.get(name)) {
            (Some(q), Some(l)) => {
                if q != l && !is_overcommit_allowed(name) {
                    errs.push(FieldError::invalid(
                        &req_path,
                        quantity_text(q),
                        format!("must be equal to {name} limit of {}", quantity_text(l)),
                    ));
                } else if q > l {
                    errs.push(FieldError::invalid(
                        &req_path,
                        quantity_text(q),
                        format!(
                            "must be less than or equal to {name} limit of {}",
                            quantity_text(l)
                        ),
                    ));
                }
            }
            _ if !req.f("limits").has(name) && !is_overcommit_allowed(name) => {
                errs.push(FieldError::required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            _ => {}
        }
        if is_huge_page_resource_name(name) {
            req_huge = true;
            if let Some(q) = q {
                errs.extend(hugepage_value(name, q, &p, opts));
            }
        }
        if name == "cpu" || name == "memory" {
            req_compute = true;
        }
    }
    if !lim_compute && !req_compute && (req_huge || lim_huge) {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    errs.extend(validate_claim_refs(
        req.a("claims"),
        claim_names,
        &path.child("claims"),
    ));
    errs
}

/// `validateResourceClaimNames`: each `claims` entry names an entry of
/// `spec.resourceClaims`, at most once.
fn validate_claim_refs(claims: &[Value], pod_claims: &BTreeSet<String>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (i, c) in claims.iter().enumerate() {
        let p = path.index(i);
        let name = c.s("name");
        let request = c.s("request");
        if name.is_empty() {
            errs.push(FieldError::required(&p, ""));
            continue;
        }
        if seen.contains(name) {
            errs.push(FieldError::duplicate(&p, name));
        } else {
            let mut key = name.to_string();
            if !request.is_empty() {
                errs.extend(dns_label(request, &p.child("request")));
                key = format!("{name}/{request}");
            }
            if seen.contains(&key) {
                errs.push(FieldError::duplicate(&p, key.as_str()));
            } else if request.is_empty() {
                let prefix = format!("{name}/");
                for _ in seen.iter().filter(|k| k.starts_with(&prefix)) {
                    errs.push(FieldError::duplicate(&p, name));
                }
            }
            seen.insert(key);
        }
        if !pod_claims.contains(name) {
            let mut e = FieldError::not_found(&p, name);
            e.detail = if pod_claims.is_empty() {
                "must be one of the names in pod.spec.resourceClaims which is empty".to_string()
            } else {
                let names: Vec<&str> = pod_claims.iter().map(String::as_str).collect();
                format!(
                    "must be one of the names in pod.spec.resourceClaims: {}",
                    names.join(", ")
                )
            };
            errs.push(e);
        }
    }
    errs
}

fn is_sidecar(c: &Value) -> bool {
    c.s("restartPolicy") == "Always"
}

fn add_into(acc: &mut BTreeMap<String, Quantity>, list: &BTreeMap<String, Quantity>) {
    for (k, q) in list {
        let sum = match acc.get(k) {
            Some(cur) => cur.checked_add(q).unwrap_or_else(|| cur.clone()),
            None => q.clone(),
        };
        acc.insert(k.clone(), sum);
    }
}

fn max_into(acc: &mut BTreeMap<String, Quantity>, list: &BTreeMap<String, Quantity>) {
    for (k, q) in list {
        if acc.get(k).is_none_or(|cur| q > cur) {
            acc.insert(k.clone(), q.clone());
        }
    }
}

/// `resourcehelper.AggregateContainerRequests` (or limits): the sum over regular
/// containers and sidecars, raised to what any init container needs while it runs
/// beside the sidecars started before it.
pub(crate) fn aggregate_containers(spec: &Value, field: &str) -> BTreeMap<String, Quantity> {
    let of = |c: &Value| resource_list(c.f("resources").f(field));
    let mut total = BTreeMap::new();
    for c in spec.a("containers") {
        add_into(&mut total, &of(c));
    }
    let mut sidecars = BTreeMap::new();
    let mut init_peak = BTreeMap::new();
    for c in spec.a("initContainers") {
        let own = of(c);
        if is_sidecar(c) {
            add_into(&mut sidecars, &own);
            max_into(&mut init_peak, &sidecars);
        } else {
            let mut running = sidecars.clone();
            add_into(&mut running, &own);
            max_into(&mut init_peak, &running);
        }
    }
    add_into(&mut total, &sidecars);
    max_into(&mut total, &init_peak);
    total
}

/// `validatePodResources`: the pod-level `spec.resources`.
pub(crate) fn validate_pod_resources(
    spec: &Value,
    claim_names: &BTreeSet<String>,
    path: &Path,
    opts: &PodOpts,
) -> ErrorList {
    let res = spec.f("resources");
    if !res.is_object() {
        return ErrorList::new();
    }
    if spec.f("os").s("name") == "windows" {
        return vec![FieldError::forbidden(
            path,
            "may not be set for a windows pod",
        )];
    }
    let mut errs = ErrorList::new();
    if res.has("claims") {
        errs.push(FieldError::forbidden(
            &path.child("claims"),
            "claims may not be set for Resources at pod-level",
        ));
    }
    errs.extend(validate_requirements(
        res,
        claim_names,
        path,
        Level::Pod,
        opts,
    ));
    // validatePodResourceConsistency: pod-level requests cover the containers' sum, and
    // no container's limit exceeds the pod's.
    let pod_requests = resource_list(res.f("requests"));
    let pod_limits = resource_list(res.f("limits"));
    for (name, aggregate) in aggregate_containers(spec, "requests") {
        if let Some(requested) = pod_requests.get(&name)
            && aggregate > *requested
        {
            errs.push(FieldError::invalid(
                &path.child("requests").key(&name),
                quantity_text(requested),
                format!(
                    "must be greater than or equal to aggregate container requests of {}",
                    quantity_text(&aggregate)
                ),
            ));
        }
    }
    // Hugepages do not overcommit: the pod's limit covers the containers' together.
    for (name, aggregate) in aggregate_containers(spec, "limits") {
        if let Some(limit) = pod_limits.get(&name)
            && is_huge_page_resource_name(&name)
            && aggregate > *limit
        {
            errs.push(FieldError::invalid(
                &path.child("limits").key(&name),
                quantity_text(limit),
                format!(
                    "must be greater than or equal to aggregate container limits of {}",
                    quantity_text(&aggregate)
                ),
            ));
        }
    }
    for (i, c) in spec.a("containers").iter().enumerate() {
        for (name, limit) in resource_list(c.f("resources").f("limits")) {
            if let Some(pod_limit) = pod_limits.get(&name)
                && limit > *pod_limit
            {
                errs.push(FieldError::invalid(
                    &path.child("containers").index(i).key(&name).child("limits"),
                    quantity_text(&limit),
                    format!(
                        "must be less than or equal to pod limits of {}",
                        quantity_text(pod_limit)
                    ),
                ));
            }
        }
    }
    errs
}

/// Upstream's QoS class (`qos.ComputePodQOS`): BestEffort without cpu or memory
/// requests and limits, Guaranteed when every container limits both and requests equal
/// limits, Burstable otherwise. Pod-level resources, when set, decide alone.
pub fn qos_class(pod: &Value) -> &'static str {
    let spec = pod.f("spec");
    let mut requests: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut guaranteed = true;
    let compute = |list: &BTreeMap<String, Quantity>| -> BTreeMap<String, Quantity> {
        list.iter()
            .filter(|(k, q)| (k.as_str() == "cpu" || k.as_str() == "memory") && q.signum() > 0)
            .map(|(k, q)| (k.clone(), q.clone()))
            .collect()
    };
    let pod_level = spec.f("resources");
    let pod_level_set = !resource_list(pod_level.f("requests")).is_empty()
        || !resource_list(pod_level.f("limits")).is_empty();
    let mut account = |res: &Value| {
        add_into(&mut requests, &compute(&resource_list(res.f("requests"))));
        let lim = compute(&resource_list(res.f("limits")));
        if !(lim.contains_key("cpu") && lim.contains_key("memory")) {
            guaranteed = false;
        }
        add_into(&mut limits, &lim);
    };
    if pod_level_set {
        account(pod_level);
    } else {
        for c in spec.a("initContainers").iter().chain(spec.a("containers")) {
            account(c.f("resources"));
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.iter().all(|(k, q)| limits.get(k) == Some(q))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errs(res: Value) -> Vec<String> {
        validate_requirements(
            &res,
            &BTreeSet::new(),
            &Path::new("r"),
            Level::Container,
            &PodOpts::default(),
        )
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    #[test]
    fn requests_may_not_exceed_limits() {
        assert_eq!(
            errs(json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})),
            vec!["r.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"]
        );
        assert!(errs(json!({"requests": {"cpu": "500m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}})).is_empty());
    }

    #[test]
    fn resource_names_and_values() {
        assert_eq!(
            errs(json!({"requests": {"cpus": "1"}})),
            vec![
                "r.requests[cpus]: Invalid value: \"cpus\": must be a standard resource type or fully qualified",
                "r.requests[cpus]: Invalid value: \"cpus\": must be a standard resource for containers",
            ]
        );
        assert_eq!(
            errs(json!({"limits": {"memory": "-1"}})),
            vec!["r.limits[memory]: Invalid value: \"-1\": must be greater than or equal to 0"]
        );
        assert_eq!(
            errs(json!({"limits": {"example.com/gpu": "1"}, "requests": {"example.com/gpu": "1"}})),
            Vec::<String>::new()
        );
        assert_eq!(
            errs(json!({"requests": {"example.com/gpu": "1"}})),
            vec!["r.limits: Required value: Limit must be set for non overcommitable resources"]
        );
    }

    #[test]
    fn hugepages_need_cpu_or_memory() {
        assert_eq!(
            errs(json!({"limits": {"hugepages-2Mi": "4Mi"}, "requests": {"hugepages-2Mi": "4Mi"}})),
            vec!["r: Forbidden: HugePages require cpu or memory"]
        );
        assert_eq!(
            errs(json!({"limits": {"hugepages-2Mi": "3Mi", "memory": "1Gi"}, "requests": {"hugepages-2Mi": "3Mi"}})).len(),
            2
        );
    }

    #[test]
    fn qos_classes_follow_requests_and_limits() {
        let pod = |res: Value| json!({"spec": {"containers": [{"name": "a", "resources": res}]}});
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&pod(
                json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}})
            )),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&pod(json!({"requests": {"cpu": "1"}}))),
            "Burstable"
        );
        assert_eq!(
            qos_class(&pod(
                json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}})
            )),
            "Burstable"
        );
    }

    #[test]
    fn sidecars_add_to_the_aggregate_and_init_containers_peak() {
        let spec = json!({
            "initContainers": [
                {"name": "init", "resources": {"requests": {"cpu": "3"}}},
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}}
            ],
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]
        });
        let agg = aggregate_containers(&spec, "requests");
        assert_eq!(
            agg.get("cpu").map(ToString::to_string),
            Some("3".to_string())
        );
    }
}

//! ResourceQuota accounting shared by the API server's quota admission and the
//! resourcequota controller (upstream `pkg/quota/v1`): what an object charges, which
//! quotas it falls under (scopes), and the refusal when a quota would be exceeded.
//! Objects are JSON, so both sides use the same code.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::labels::{Operator, Requirement};
use crate::quantity::{Format, Quantity};

/// Resource names to quantities (`status.used`, `status.hard`).
pub type ResourceList = BTreeMap<String, Quantity>;

/// Names whose quota requires every container to state the matching request or limit
/// (upstream's backward-compatibility rule for cpu and memory).
const EXPLICIT: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// The object-count name of a resource: `count/pods`, `count/deployments.apps`.
pub fn object_count_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        format!("count/{resource}")
    } else {
        format!("count/{resource}.{group}")
    }
}

/// The pre-`count/` name some core resources are also counted under.
fn legacy_count_name(group: &str, resource: &str) -> Option<&'static str> {
    if !group.is_empty() {
        return None;
    }
    Some(match resource {
        "pods" => "pods",
        "services" => "services",
        "configmaps" => "configmaps",
        "secrets" => "secrets",
        "persistentvolumeclaims" => "persistentvolumeclaims",
        "replicationcontrollers" => "replicationcontrollers",
        "resourcequotas" => "resourcequotas",
        _ => return None,
    })
}

/// Whether objects of this resource can charge quota resource `name`.
pub fn charges(group: &str, resource: &str, name: &str) -> bool {
    if name == object_count_name(group, resource)
        || legacy_count_name(group, resource) == Some(name)
    {
        return true;
    }
    match (group, resource) {
        ("", "pods") => {
            matches!(name, "pods" | "cpu" | "memory" | "ephemeral-storage")
                || name.starts_with("requests.")
                || name.starts_with("limits.")
                || name.starts_with("hugepages-")
        }
        ("", "services") => matches!(name, "services.loadbalancers" | "services.nodeports"),
        ("", "persistentvolumeclaims") => {
            name == "requests.storage"
                || name.ends_with(".storageclass.storage.k8s.io/requests.storage")
                || name.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
        }
        _ => false,
    }
}

/// A list from a JSON map of quantities (unparseable entries are left out).
pub fn parse_list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let q = match v {
                        Value::String(s) => Quantity::parse(s).ok()?,
                        Value::Number(n) => Quantity::parse(&n.to_string()).ok()?,
                        _ => return None,
                    };
                    Some((k.clone(), q))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The list as JSON, quantities in canonical form.
pub fn to_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, v)| (k.clone(), json!(v.to_string())))
            .collect(),
    )
}

/// `a + b`, key by key.
pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, v) in b {
        let sum = match out.get(k) {
            Some(cur) => cur.checked_add(v).unwrap_or_else(|| cur.clone()),
            None => v.clone(),
        };
        out.insert(k.clone(), sum);
    }
    out
}

/// Upstream's `prettyPrint`: `name=quantity` pairs by name, comma-separated.
pub fn pretty(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn one() -> Quantity {
    Quantity::from_i64(1, Format::DecimalSI)
}

fn zero() -> Quantity {
    Quantity::from_i64(0, Format::DecimalSI)
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Containers' `resources.<which>` lists of one kind of container.
fn container_lists(pod: &Value, kind: &str, which: &str) -> Vec<(String, ResourceList)> {
    pod.pointer(&format!("/spec/{kind}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                    (
                        name.to_string(),
                        parse_list(c.pointer(&format!("/resources/{which}"))),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The pod's effective requests or limits: the larger of the containers' sum and any one
/// init container, plus the pod overhead.
fn pod_resources(pod: &Value, which: &str) -> ResourceList {
    let mut sum = ResourceList::new();
    for (_, l) in container_lists(pod, "containers", which) {
        sum = add(&sum, &l);
    }
    for (_, l) in container_lists(pod, "initContainers", which) {
        for (k, v) in l {
            if sum.get(&k).is_none_or(|cur| v > *cur) {
                sum.insert(k, v);
            }
        }
    }
    if which == "requests" || which == "limits" {
        sum = add(&sum, &parse_list(pod.pointer("/spec/overhead")));
    }
    sum
}

/// Upstream's `podComputeUsageHelper`: requests and limits under their quota names.
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), one());
    for (k, v) in requests {
        match k.as_str() {
            "cpu" | "memory" | "ephemeral-storage" => {
                out.insert(k.clone(), v.clone());
                out.insert(format!("requests.{k}"), v.clone());
            }
            _ if k.starts_with("hugepages-") => {
                out.insert(format!("requests.{k}"), v.clone());
            }
            // Extended resources are quota'd by their requests alone.
            _ if k.contains('/') => {
                out.insert(format!("requests.{k}"), v.clone());
            }
            _ => {}
        }
    }
    for (k, v) in limits {
        if matches!(k.as_str(), "cpu" | "memory" | "ephemeral-storage") {
            out.insert(format!("limits.{k}"), v.clone());
        }
    }
    out
}

/// Whether a pod is charged compute resources: it has not finished, and its deletion
/// grace has not run out (`deletion_overdue`, which the caller works out from the
/// clock).
pub fn pod_is_charged(pod: &Value, deletion_overdue: bool) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && !deletion_overdue
}

/// What one object charges. `deletion_overdue`: a pod whose deletion grace period has
/// passed (it is no longer charged compute resources).
pub fn usage(group: &str, resource: &str, obj: &Value, deletion_overdue: bool) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert(object_count_name(group, resource), one());
    if let Some(legacy) = legacy_count_name(group, resource)
        && legacy != "pods"
    {
        out.insert(legacy.into(), one());
    }
    match (group, resource) {
        ("", "pods") if pod_is_charged(obj, deletion_overdue) => {
            let usage = compute_usage(
                &pod_resources(obj, "requests"),
                &pod_resources(obj, "limits"),
            );
            out = add(&out, &usage);
        }
        ("", "services") => {
            let ty = obj
                .pointer("/spec/type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            let ports = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ports = Quantity::from_i64(i64::try_from(ports).unwrap_or(0), Format::DecimalSI);
            if ty == "LoadBalancer" {
                out.insert("services.loadbalancers".into(), one());
                let allocate = obj
                    .pointer("/spec/allocateLoadBalancerNodePorts")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                if allocate {
                    out.insert("services.nodeports".into(), ports);
                }
            } else if ty == "NodePort" {
                out.insert("services.nodeports".into(), ports);
            }
        }
        ("", "persistentvolumeclaims") => {
            let class = obj
                .pointer("/spec/storageClassName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !class.is_empty() {
                out.insert(
                    format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"),
                    one(),
                );
            }
            let request = parse_list(obj.pointer("/spec/resources/requests")).remove("storage");
            let allocated = parse_list(obj.pointer("/status/allocatedResources")).remove("storage");
            let storage = match (request, allocated) {
                (Some(r), Some(a)) => Some(r.max(a)),
                (r, a) => r.or(a),
            };
            if let Some(s) = storage {
                out.insert("requests.storage".into(), s.clone());
                if !class.is_empty() {
                    out.insert(
                        format!("{class}.storageclass.storage.k8s.io/requests.storage"),
                        s,
                    );
                }
            }
        }
        _ => {}
    }
    out
}

/// Whether the pod asks for no cpu or memory at all (QoS class BestEffort).
fn is_best_effort(pod: &Value) -> bool {
    ["containers", "initContainers"].iter().all(|kind| {
        ["requests", "limits"].iter().all(|which| {
            container_lists(pod, kind, which)
                .iter()
                .all(|(_, l)| !l.contains_key("cpu") && !l.contains_key("memory"))
        })
    })
}

fn is_terminating(pod: &Value) -> bool {
    pod.pointer("/spec/activeDeadlineSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|s| s >= 0)
}

/// One scope requirement of a quota: a scope name, an operator and values.
struct ScopeRequirement {
    scope: String,
    operator: String,
    values: Vec<String>,
}

fn scope_requirements(quota: &Value) -> Vec<ScopeRequirement> {
    let mut out: Vec<ScopeRequirement> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| ScopeRequirement {
            scope: s.to_string(),
            operator: "Exists".into(),
            values: Vec::new(),
        })
        .collect();
    for e in quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push(ScopeRequirement {
            scope: e
                .get("scopeName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            operator: e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            values: e
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| {
                    vs.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    out
}

/// Whether the quota's scopes (`spec.scopes`, `spec.scopeSelector`) take in the
/// object. Only pods match a scoped quota.
pub fn matches_scopes(quota: &Value, group: &str, resource: &str, obj: &Value) -> bool {
    let reqs = scope_requirements(quota);
    if reqs.is_empty() {
        return true;
    }
    if (group, resource) != ("", "pods") {
        return false;
    }
    reqs.iter().all(|r| match r.scope.as_str() {
        "Terminating" => is_terminating(obj),
        "NotTerminating" => !is_terminating(obj),
        "BestEffort" => is_best_effort(obj),
        "NotBestEffort" => !is_best_effort(obj),
        "PriorityClass" => {
            let class = obj
                .pointer("/spec/priorityClassName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if r.operator == "Exists" {
                return !class.is_empty();
            }
            let op = match r.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "DoesNotExist" => Operator::DoesNotExist,
                _ => return false,
            };
            let labels: BTreeMap<String, String> =
                BTreeMap::from([("PriorityClass".to_string(), class.to_string())]);
            Requirement::new("PriorityClass", op, r.values.clone())
                .is_ok_and(|req| req.matches(&labels))
        }
        _ => false,
    })
}

/// Upstream's pod `Constraints`: with cpu or memory under quota, every container must
/// state them. The message after `failed quota: <name>: `.
fn pod_constraints(restricted: &BTreeSet<String>, pod: &Value) -> Result<(), String> {
    let required: BTreeSet<&str> = EXPLICIT
        .iter()
        .copied()
        .filter(|n| restricted.contains(*n))
        .collect();
    if required.is_empty() {
        return Ok(());
    }
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for kind in ["containers", "initContainers"] {
        let requests = container_lists(pod, kind, "requests");
        let limits = container_lists(pod, kind, "limits");
        for ((name, req), (_, lim)) in requests.iter().zip(limits.iter()) {
            let has = compute_usage(req, lim);
            for r in &required {
                if !has.contains_key(*r) {
                    missing.entry(r).or_default().insert(name.clone());
                }
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            format!(
                "{r} for: {}",
                names.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Err(format!("must specify {}", parts.join("; ")))
}

/// Upstream's quota admission for one quota and one new object (or an update of `old`,
/// charged what it adds): `Ok(None)` when the
/// quota does not concern it, `Ok(Some(used))` with the quota's new `status.used` when
/// it fits, `Err(message)` (the text after `<resource> "<name>" is forbidden: `) when
/// it does not.
pub fn admit(
    quota: &Value,
    group: &str,
    resource: &str,
    obj: &Value,
    old: Option<&Value>,
) -> Result<Option<ResourceList>, String> {
    if !matches_scopes(quota, group, resource, obj) {
        return Ok(None);
    }
    let name = quota
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let hard = parse_list(quota.pointer("/status/hard"));
    let used = parse_list(quota.pointer("/status/used"));
    let restricted: BTreeSet<String> = hard
        .keys()
        .filter(|k| charges(group, resource, k))
        .cloned()
        .collect();
    if restricted.is_empty() {
        return Ok(None);
    }
    if (group, resource) == ("", "pods") && old.is_none() {
        pod_constraints(&restricted, obj).map_err(|e| format!("failed quota: {name}: {e}"))?;
    }
    if restricted.iter().any(|r| !used.contains_key(r)) {
        return Err(format!(
            "status unknown for quota: {name}, resources: {}",
            restricted.iter().cloned().collect::<Vec<_>>().join(",")
        ));
    }
    // An update is charged only what it adds (upstream's SubtractWithNonNegativeResult).
    let before = old
        .map(|o| usage(group, resource, o, false))
        .unwrap_or_default();
    let requested: ResourceList = usage(group, resource, obj, false)
        .into_iter()
        .filter(|(k, _)| hard.contains_key(k))
        .filter_map(|(k, v)| match before.get(&k) {
            None => Some((k, v)),
            Some(b) => v.checked_sub(b).filter(|d| d.signum() > 0).map(|d| (k, d)),
        })
        .collect();
    if requested.is_empty() {
        return Ok(None);
    }
    let new_used = add(&used, &requested);
    let exceeded: Vec<&String> = requested
        .keys()
        .filter(|k| match (new_used.get(*k), hard.get(*k)) {
            (Some(n), Some(h)) => n > h,
            _ => false,
        })
        .collect();
    if !exceeded.is_empty() {
        let mask = |l: &ResourceList| -> ResourceList {
            exceeded
                .iter()
                .map(|k| ((*k).clone(), l.get(*k).cloned().unwrap_or_else(zero)))
                .collect()
        };
        return Err(format!(
            "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
            pretty(&mask(&requested)),
            pretty(&mask(&used)),
            pretty(&mask(&hard))
        ));
    }
    Ok(Some(new_used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(hard: Value, used: Value) -> Value {
        json!({"metadata": {"name": "q"}, "spec": {"hard": hard},
               "status": {"hard": hard, "used": used}})
    }

    fn pod(cpu: Option<&str>) -> Value {
        let mut c = json!({"name": "c", "image": "i"});
        if let Some(cpu) = cpu {
            c["resources"] = json!({"requests": {"cpu": cpu}, "limits": {"cpu": cpu}});
        }
        json!({"metadata": {"name": "p"}, "spec": {"containers": [c]}})
    }

    #[test]
    fn pod_usage_counts_requests_and_limits() {
        let u = usage("", "pods", &pod(Some("500m")), false);
        assert_eq!(
            pretty(&u),
            "count/pods=1,cpu=500m,limits.cpu=500m,pods=1,requests.cpu=500m"
        );
        let mut done = pod(Some("1"));
        done["status"] = json!({"phase": "Succeeded"});
        assert_eq!(pretty(&usage("", "pods", &done, false)), "count/pods=1");
    }

    #[test]
    fn exceeding_a_count_is_refused_with_upstreams_message() {
        let q = quota(json!({"pods": "1"}), json!({"pods": "1"}));
        assert_eq!(
            admit(&q, "", "pods", &pod(None), None),
            Err("exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1".into())
        );
        let q = quota(json!({"pods": "2"}), json!({"pods": "1"}));
        let used = admit(&q, "", "pods", &pod(None), None)
            .expect("fits")
            .expect("charged");
        assert_eq!(pretty(&used), "pods=2");
        // A quota on something else does not concern the pod.
        let q = quota(json!({"configmaps": "0"}), json!({"configmaps": "0"}));
        assert_eq!(admit(&q, "", "pods", &pod(None), None), Ok(None));
    }

    #[test]
    fn compute_quota_needs_explicit_requests() {
        let q = quota(json!({"requests.cpu": "1"}), json!({"requests.cpu": "0"}));
        assert_eq!(
            admit(&q, "", "pods", &pod(None), None),
            Err("failed quota: q: must specify requests.cpu for: c".into())
        );
        assert!(admit(&q, "", "pods", &pod(Some("2")), None).is_err());
        assert!(
            admit(&q, "", "pods", &pod(Some("1")), None)
                .expect("fits")
                .is_some()
        );
    }

    #[test]
    fn unsynced_quota_status_is_refused() {
        let q = json!({"metadata": {"name": "q"}, "status": {"hard": {"pods": "3"}}});
        assert_eq!(
            admit(&q, "", "pods", &pod(None), None),
            Err("status unknown for quota: q, resources: pods".into())
        );
    }

    #[test]
    fn updates_are_charged_what_they_add() {
        let q = quota(
            json!({"services.loadbalancers": "1"}),
            json!({"services.loadbalancers": "1"}),
        );
        let cluster_ip = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}});
        let lb = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}});
        assert_eq!(
            admit(&q, "", "services", &lb, Some(&cluster_ip)),
            Err("exceeded quota: q, requested: services.loadbalancers=1, used: services.loadbalancers=1, limited: services.loadbalancers=1".into())
        );
        assert_eq!(admit(&q, "", "services", &lb, Some(&lb)), Ok(None));
    }

    #[test]
    fn scopes() {
        let mut q = quota(json!({"pods": "1"}), json!({"pods": "0"}));
        q["spec"]["scopes"] = json!(["BestEffort"]);
        assert!(matches_scopes(&q, "", "pods", &pod(None)));
        assert!(!matches_scopes(&q, "", "pods", &pod(Some("1"))));
        assert!(!matches_scopes(&q, "", "services", &json!({})));
        q["spec"]["scopes"] = json!([]);
        q["spec"]["scopeSelector"] = json!({"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]});
        let mut p = pod(None);
        assert!(!matches_scopes(&q, "", "pods", &p));
        p["spec"]["priorityClassName"] = json!("high");
        assert!(matches_scopes(&q, "", "pods", &p));
    }
}

//! LimitRanger admission: the LimitRanges of a namespace give containers of new pods
//! their default requests and limits (recorded in the `kubernetes.io/limit-ranger`
//! annotation), and refuse pods and claims outside their min, max and limit/request
//! ratio, with upstream's messages.

use k1s_apimachinery::quantity::Quantity;
use serde_json::{Map, Value, json};

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

fn items<'a>(ranges: &'a [Value], ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    ranges
        .iter()
        .flat_map(|r| {
            r.pointer("/spec/limits")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter(move |i| i.get("type").and_then(Value::as_str) == Some(ty))
}

fn quantities(v: Option<&Value>) -> Vec<(String, Quantity)> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, q)| Some((k.clone(), Quantity::parse(q.as_str()?).ok()?)))
        .collect()
}

/// Sets the default requests and limits of the Container items on a new pod's
/// containers and init containers.
pub fn default_pod(ranges: &[Value], pod: &mut Value) {
    let mut notes = Vec::new();
    for range in ranges {
        for item in items(std::slice::from_ref(range), "Container") {
            let limits = item.get("default").and_then(Value::as_object).cloned();
            let requests = item
                .get("defaultRequest")
                .and_then(Value::as_object)
                .cloned();
            for (list, kind) in [
                ("initContainers", "init container"),
                ("containers", "container"),
            ] {
                let Some(containers) = pod
                    .pointer_mut(&format!("/spec/{list}"))
                    .and_then(Value::as_array_mut)
                else {
                    continue;
                };
                for c in containers {
                    let name = c
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let mut set = |field: &str, defaults: &Option<Map<String, Value>>| {
                        let mut names = Vec::new();
                        let Some(defaults) = defaults else {
                            return names;
                        };
                        let Some(obj) = c.as_object_mut() else {
                            return names;
                        };
                        let resources = obj.entry("resources").or_insert_with(|| json!({}));
                        if !resources.is_object() {
                            *resources = json!({});
                        }
                        let Some(resources) = resources.as_object_mut() else {
                            return names;
                        };
                        let target = resources.entry(field).or_insert_with(|| json!({}));
                        if !target.is_object() {
                            *target = json!({});
                        }
                        let Some(target) = target.as_object_mut() else {
                            return names;
                        };
                        for (k, v) in defaults {
                            if !target.contains_key(k) {
                                target.insert(k.clone(), v.clone());
                                names.push(k.clone());
                            }
                        }
                        names.sort();
                        names
                    };
                    let limits_set = set("limits", &limits);
                    let requests_set = set("requests", &requests);
                    if !requests_set.is_empty() {
                        notes.push(format!(
                            "{} request for {kind} {name}",
                            requests_set.join(", ")
                        ));
                    }
                    if !limits_set.is_empty() {
                        notes.push(format!("{} limit for {kind} {name}", limits_set.join(", ")));
                    }
                }
            }
        }
    }
    if notes.is_empty() {
        return;
    }
    if let Some(meta) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        if let Some(a) = annotations.as_object_mut() {
            a.insert(
                ANNOTATION.into(),
                json!(format!("LimitRanger plugin set: {}", notes.join("; "))),
            );
        }
    }
}

/// Checks one set of requests and limits against an item's min, max and ratio.
fn constrain(
    item: &Value,
    limit_type: &str,
    requests: &[(String, Quantity)],
    limits: &[(String, Quantity)],
    errs: &mut Vec<String>,
) {
    let find = |list: &[(String, Quantity)], k: &str| {
        list.iter().find(|(n, _)| n == k).map(|(_, q)| q.clone())
    };
    for (res, min) in quantities(item.get("min")) {
        let (req, lim) = (find(requests, &res), find(limits, &res));
        match req {
            None => errs.push(format!(
                "minimum {res} usage per {limit_type} is {}.  No request is specified",
                min.canonical()
            )),
            Some(r) if r < min => errs.push(format!(
                "minimum {res} usage per {limit_type} is {}, but request is {}",
                min.canonical(),
                r.canonical()
            )),
            Some(_) => {
                if let Some(l) = lim.filter(|l| *l < min) {
                    errs.push(format!(
                        "minimum {res} usage per {limit_type} is {}, but limit is {}",
                        min.canonical(),
                        l.canonical()
                    ));
                }
            }
        }
    }
    for (res, max) in quantities(item.get("max")) {
        let (req, lim) = (find(requests, &res), find(limits, &res));
        match lim {
            None if limit_type != "PersistentVolumeClaim" => errs.push(format!(
                "maximum {res} usage per {limit_type} is {}.  No limit is specified",
                max.canonical()
            )),
            Some(l) if l > max => errs.push(format!(
                "maximum {res} usage per {limit_type} is {}, but limit is {}",
                max.canonical(),
                l.canonical()
            )),
            _ => {
                if let Some(r) = req.filter(|r| *r > max) {
                    errs.push(format!(
                        "maximum {res} usage per {limit_type} is {}, but request is {}",
                        max.canonical(),
                        r.canonical()
                    ));
                }
            }
        }
    }
    for (res, ratio) in quantities(item.get("maxLimitRequestRatio")) {
        let (req, lim) = (find(requests, &res), find(limits, &res));
        let Some(lim) = lim.filter(|l| !l.is_zero()) else {
            continue;
        };
        let req_milli = req.as_ref().map(Quantity::milli_value).unwrap_or(0);
        if req_milli <= 0 {
            errs.push(format!(
                "{res} max limit to request ratio per {limit_type} is {}, but no request is specified or request is 0",
                ratio.canonical()
            ));
            continue;
        }
        let observed = lim.milli_value() as f64 / req_milli as f64;
        if observed > ratio.as_f64() {
            errs.push(format!(
                "{res} max limit to request ratio per {limit_type} is {}, but provided ratio is {observed:.6}",
                ratio.canonical()
            ));
        }
    }
}

fn container_resources(c: &Value, field: &str) -> Vec<(String, Quantity)> {
    quantities(c.pointer(&format!("/resources/{field}")))
}

fn sum_into(total: &mut Vec<(String, Quantity)>, add: Vec<(String, Quantity)>, max_only: bool) {
    for (k, q) in add {
        match total.iter_mut().find(|(n, _)| *n == k) {
            Some((_, t)) if max_only => {
                if q > *t {
                    *t = q;
                }
            }
            Some((_, t)) => {
                if let Some(s) = t.checked_add(&q) {
                    *t = s;
                }
            }
            None => total.push((k, q)),
        }
    }
}

/// The refusals for a pod: Container items against each container, Pod items against
/// the pod's totals (containers summed, or the largest init container when larger).
pub fn validate_pod(ranges: &[Value], pod: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let list = |k: &str| {
        pod.pointer(&format!("/spec/{k}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (init, containers) = (list("initContainers"), list("containers"));
    for item in items(ranges, "Container") {
        for c in containers.iter().chain(&init) {
            constrain(
                item,
                "Container",
                &container_resources(c, "requests"),
                &container_resources(c, "limits"),
                &mut errs,
            );
        }
    }
    let pod_items: Vec<&Value> = items(ranges, "Pod").collect();
    if !pod_items.is_empty() {
        let total = |field: &str| {
            let mut sum = Vec::new();
            for c in &containers {
                sum_into(&mut sum, container_resources(c, field), false);
            }
            let mut init_max = Vec::new();
            for c in &init {
                sum_into(&mut init_max, container_resources(c, field), true);
            }
            sum_into(&mut sum, init_max, true);
            sum
        };
        let (requests, limits) = (total("requests"), total("limits"));
        for item in pod_items {
            constrain(item, "Pod", &requests, &limits, &mut errs);
        }
    }
    errs
}

/// The refusals for a claim: PersistentVolumeClaim items against its storage request.
pub fn validate_claim(ranges: &[Value], claim: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let requests = quantities(claim.pointer("/spec/resources/requests"));
    let limits = quantities(claim.pointer("/spec/resources/limits"));
    for item in items(ranges, "PersistentVolumeClaim") {
        constrain(item, "PersistentVolumeClaim", &requests, &limits, &mut errs);
    }
    errs
}

/// Upstream's aggregate error text: one error as it is, several in brackets.
pub fn aggregate(errs: &[String]) -> String {
    let mut seen: Vec<&String> = Vec::new();
    for e in errs {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    if seen.len() == 1 {
        seen[0].clone()
    } else {
        format!(
            "[{}]",
            seen.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(limits: Value) -> Vec<Value> {
        vec![json!({"spec": {"limits": limits}})]
    }

    #[test]
    fn defaults_are_set_and_annotated() {
        let r = range(
            json!([{"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"},
            "defaultRequest": {"cpu": "250m"}}]),
        );
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "resources": {"limits": {"memory": "64Mi"}}}]}});
        default_pod(&r, &mut pod);
        assert_eq!(
            pod.pointer("/spec/containers/0/resources/limits"),
            Some(&json!({"memory": "64Mi", "cpu": "500m"}))
        );
        assert_eq!(
            pod.pointer("/spec/containers/0/resources/requests"),
            Some(&json!({"cpu": "250m"}))
        );
        assert_eq!(
            pod.pointer("/metadata/annotations/kubernetes.io~1limit-ranger"),
            Some(&json!(
                "LimitRanger plugin set: cpu request for container c; cpu limit for container c"
            ))
        );
    }

    #[test]
    fn bounds_refuse_with_upstream_texts() {
        let r = range(
            json!([{"type": "Container", "max": {"cpu": "500m"}, "min": {"memory": "10Mi"}}]),
        );
        let pod = json!({"spec": {"containers": [{"name": "c", "resources": {
            "limits": {"cpu": "1"}, "requests": {"memory": "5Mi"}}}]}});
        assert_eq!(
            aggregate(&validate_pod(&r, &pod)),
            "[minimum memory usage per Container is 10Mi, but request is 5Mi, maximum cpu usage per Container is 500m, but limit is 1]"
        );
        let r = range(json!([{"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}}]));
        let claim = json!({"spec": {"resources": {"requests": {"storage": "5Gi"}}}});
        assert_eq!(
            aggregate(&validate_claim(&r, &claim)),
            "maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi"
        );
    }
}

//! Upstream's replica calculator for resource metrics (`replica_calculator.go`): from the
//! pods' usage (metrics.k8s.io) and requests, the replica count that brings the average
//! to the target, with the tolerance (0.1), the pods that are missing metrics, and the
//! unready pods that do not count for CPU.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Upstream's `--horizontal-pod-autoscaler-tolerance`.
pub const TOLERANCE: f64 = 0.1;
/// Upstream's `--horizontal-pod-autoscaler-cpu-initialization-period`.
const CPU_INITIALIZATION_PERIOD: SignedDuration = SignedDuration::from_secs(300);
/// Upstream's `--horizontal-pod-autoscaler-initial-readiness-delay`.
const INITIAL_READINESS_DELAY: SignedDuration = SignedDuration::from_secs(30);

/// One pod's usage of the resource (milli-units: millicores, millibytes), with when and
/// over which window it was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodMetric {
    /// The usage, in milli-units.
    pub value: i64,
    /// When it was measured.
    pub timestamp: Timestamp,
    /// Over how long.
    pub window: SignedDuration,
}

/// What the target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Percent of the pods' requests.
    Utilization(i32),
    /// Per pod, in milli-units.
    AverageValue(i64),
}

/// A proposal: the replicas, and the current value for the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    /// The replica count the metric asks for.
    pub replicas: i32,
    /// The pods' average utilization (percent of requests), for utilization targets.
    pub utilization: Option<i32>,
    /// The pods' average usage, in milli-units.
    pub average_value: i64,
}

/// How the pods are grouped before their metrics count.
struct Groups {
    ready: usize,
    unready: Vec<String>,
    missing: Vec<String>,
    ignored: Vec<String>,
}

fn group_pods(
    pods: &[Pod],
    metrics: &BTreeMap<String, PodMetric>,
    cpu: bool,
    now: Timestamp,
) -> Groups {
    let mut g = Groups {
        ready: 0,
        unready: Vec::new(),
        missing: Vec::new(),
        ignored: Vec::new(),
    };
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let phase = status.phase.as_deref().unwrap_or("");
        if pod.metadata.deletion_timestamp.is_some() || phase == "Failed" {
            g.ignored.push(name);
            continue;
        }
        if phase == "Pending" {
            g.unready.push(name);
            continue;
        }
        let Some(metric) = metrics.get(&name) else {
            g.missing.push(name);
            continue;
        };
        if cpu {
            let ready = status
                .conditions
                .as_ref()
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
            let unready = match (ready, &status.start_time) {
                (Some(c), Some(start)) => {
                    let changed = c.last_transition_time.as_ref().map(|t| t.0);
                    if start.0 + CPU_INITIALIZATION_PERIOD > now {
                        // Still starting: its CPU counts once it was ready for a whole window.
                        c.status == "False"
                            || changed.is_some_and(|t| metric.timestamp < t + metric.window)
                    } else {
                        c.status == "False"
                            && changed.is_some_and(|t| start.0 + INITIAL_READINESS_DELAY > t)
                    }
                }
                _ => true,
            };
            if unready {
                g.unready.push(name);
                continue;
            }
        }
        g.ready += 1;
    }
    g
}

/// Each pod's request of the resource (milli-units), the sum of its containers' (or of
/// the one container named); an error names the first container without one.
pub fn pod_requests(
    pods: &[Pod],
    resource: &str,
    container: Option<&str>,
) -> Result<BTreeMap<String, i64>, String> {
    let mut out = BTreeMap::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut total = 0i64;
        for c in pod.spec.iter().flat_map(|s| &s.containers) {
            if container.is_some_and(|n| n != c.name) {
                continue;
            }
            let request = c
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(resource))
                .and_then(|q| k1s_apimachinery::Quantity::parse(&q.0).ok());
            match request {
                Some(q) => total += q.milli_value(),
                None => {
                    return Err(format!(
                        "missing request for {resource} in container {} of Pod {name}",
                        c.name
                    ));
                }
            }
        }
        out.insert(name, total);
    }
    Ok(out)
}

/// The usage ratio to the target, and the utilization and average for the status.
fn usage_ratio(
    metrics: &BTreeMap<String, PodMetric>,
    requests: &BTreeMap<String, i64>,
    target: Target,
) -> Result<(f64, Option<i32>, i64), String> {
    match target {
        Target::Utilization(percent) => {
            let (mut used, mut requested, mut n) = (0i64, 0i64, 0i64);
            for (pod, m) in metrics {
                if let Some(r) = requests.get(pod) {
                    used += m.value;
                    requested += r;
                    n += 1;
                }
            }
            if requested == 0 {
                return Err("no metrics returned matched known pods".into());
            }
            let utilization = i32::try_from(used * 100 / requested).unwrap_or(i32::MAX);
            Ok((
                f64::from(utilization) / f64::from(percent.max(1)),
                Some(utilization),
                used / n.max(1),
            ))
        }
        Target::AverageValue(per_pod) => {
            let total: i64 = metrics.values().map(|m| m.value).sum();
            let n = i64::try_from(metrics.len()).unwrap_or(1).max(1);
            let average = total / n;
            Ok((average as f64 / per_pod.max(1) as f64, None, average))
        }
    }
}

/// The replicas a resource metric asks for (upstream's `GetResourceReplicas` for
/// utilization, `GetRawResourceReplicas` for an average value).
pub fn resource_replicas(
    current: i32,
    target: Target,
    mut metrics: BTreeMap<String, PodMetric>,
    pods: &[Pod],
    requests: &BTreeMap<String, i64>,
    cpu: bool,
    now: Timestamp,
) -> Result<Proposal, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let groups = group_pods(pods, &metrics, cpu, now);
    for p in groups.ignored.iter().chain(&groups.unready) {
        metrics.remove(p);
    }
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let (ratio, utilization, average_value) = usage_ratio(&metrics, requests, target)?;
    let proposal = |replicas| Proposal {
        replicas,
        utilization,
        average_value,
    };
    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if (1.0 - ratio).abs() <= TOLERANCE {
            return Ok(proposal(current));
        }
        let ready = i32::try_from(groups.ready).unwrap_or(i32::MAX);
        return Ok(proposal((ratio * f64::from(ready)).ceil() as i32));
    }
    // Missing pods count as using their request (or the target) when scaling down, and
    // nothing when scaling up; unready pods as nothing when scaling up.
    let now_metric = |value| PodMetric {
        value,
        timestamp: now,
        window: SignedDuration::ZERO,
    };
    for p in &groups.missing {
        let value = if ratio < 1.0 {
            match target {
                Target::Utilization(_) => requests.get(p).copied().unwrap_or(0),
                Target::AverageValue(v) => v,
            }
        } else {
            0
        };
        metrics.insert(p.clone(), now_metric(value));
    }
    if scale_up_with_unready {
        for p in &groups.unready {
            metrics.insert(p.clone(), now_metric(0));
        }
    }
    let (new_ratio, _, _) = usage_ratio(&metrics, requests, target)?;
    if (1.0 - new_ratio).abs() <= TOLERANCE
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(proposal(current));
    }
    let n = i32::try_from(metrics.len()).unwrap_or(i32::MAX);
    let replicas = (new_ratio * f64::from(n)).ceil() as i32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(proposal(current));
    }
    Ok(proposal(replicas))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(name: &str, phase: &str, ready: bool, started_secs_ago: i64, now: Timestamp) -> Pod {
        let start = now - SignedDuration::from_secs(started_secs_ago);
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.status = Some(PodStatus {
            phase: Some(phase.into()),
            start_time: Some(Time(start)),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                last_transition_time: Some(Time(start + SignedDuration::from_secs(5))),
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    fn metric(value: i64, now: Timestamp) -> PodMetric {
        PodMetric {
            value,
            timestamp: now,
            window: SignedDuration::from_secs(15),
        }
    }

    fn setup(
        usage: &[(&str, Option<i64>, bool)],
        now: Timestamp,
    ) -> (Vec<Pod>, BTreeMap<String, PodMetric>, BTreeMap<String, i64>) {
        let pods: Vec<Pod> = usage
            .iter()
            .map(|(n, _, ready)| pod(n, "Running", *ready, 600, now))
            .collect();
        let metrics = usage
            .iter()
            .filter_map(|(n, v, _)| v.map(|v| (n.to_string(), metric(v, now))))
            .collect();
        let requests = usage
            .iter()
            .map(|(n, _, _)| (n.to_string(), 1000))
            .collect();
        (pods, metrics, requests)
    }

    #[test]
    fn utilization_scales_to_bring_the_average_to_the_target() {
        let now = Timestamp::now();
        // 3 pods at 900m of 1000m requested, target 50%: ceil(1.8 * 3) = 6.
        let (pods, metrics, requests) = setup(
            &[
                ("a", Some(900), true),
                ("b", Some(900), true),
                ("c", Some(900), true),
            ],
            now,
        );
        let p = resource_replicas(
            3,
            Target::Utilization(50),
            metrics,
            &pods,
            &requests,
            true,
            now,
        )
        .expect("a proposal");
        assert_eq!(
            p,
            Proposal {
                replicas: 6,
                utilization: Some(90),
                average_value: 900
            }
        );
        // Within the tolerance: no change.
        let (pods, metrics, requests) =
            setup(&[("a", Some(520), true), ("b", Some(530), true)], now);
        let p = resource_replicas(
            2,
            Target::Utilization(50),
            metrics,
            &pods,
            &requests,
            true,
            now,
        )
        .expect("a proposal");
        assert_eq!(p.replicas, 2);
        // Scale down: 100m of 1000m at a 50% target over 4 pods: ceil(0.2 * 4) = 1.
        let (pods, metrics, requests) = setup(
            &[
                ("a", Some(100), true),
                ("b", Some(100), true),
                ("c", Some(100), true),
                ("d", Some(100), true),
            ],
            now,
        );
        let p = resource_replicas(
            4,
            Target::Utilization(50),
            metrics,
            &pods,
            &requests,
            false,
            now,
        )
        .expect("a proposal");
        assert_eq!(p.replicas, 1);
    }

    #[test]
    fn missing_and_unready_pods_damp_the_change() {
        let now = Timestamp::now();
        // Scaling down with a pod missing metrics: it counts as using its request, so
        // (100+100+1000)/3000 = 40% of a 50% target: ceil(0.8 * 3) = 3, no change.
        let (pods, metrics, requests) = setup(
            &[
                ("a", Some(100), true),
                ("b", Some(100), true),
                ("c", None, true),
            ],
            now,
        );
        let p = resource_replicas(
            3,
            Target::Utilization(50),
            metrics,
            &pods,
            &requests,
            false,
            now,
        )
        .expect("a proposal");
        assert_eq!(p.replicas, 3);
        // Scaling up on CPU with an unready pod: it counts as 0, (1000+1000+0)/3000 = 66%
        // of 50%: ceil(1.33 * 3) = 4.
        let (pods, metrics, requests) = setup(
            &[
                ("a", Some(1000), true),
                ("b", Some(1000), true),
                ("c", Some(1000), false),
            ],
            now,
        );
        let p = resource_replicas(
            3,
            Target::Utilization(50),
            metrics,
            &pods,
            &requests,
            true,
            now,
        )
        .expect("a proposal");
        assert_eq!(p.replicas, 4);
        // Memory ignores readiness: ceil(2 * 3) = 6.
        let (pods, metrics, requests) = setup(
            &[
                ("a", Some(1000), true),
                ("b", Some(1000), true),
                ("c", Some(1000), false),
            ],
            now,
        );
        let p = resource_replicas(
            3,
            Target::Utilization(50),
            metrics,
            &pods,
            &requests,
            false,
            now,
        )
        .expect("a proposal");
        assert_eq!(p.replicas, 6);
    }

    #[test]
    fn average_value_targets_and_errors() {
        let now = Timestamp::now();
        // 300m average over 2 pods against 100m a pod: 6.
        let (pods, metrics, requests) =
            setup(&[("a", Some(200), true), ("b", Some(400), true)], now);
        let p = resource_replicas(
            2,
            Target::AverageValue(100),
            metrics,
            &pods,
            &requests,
            false,
            now,
        )
        .expect("a proposal");
        assert_eq!(p.replicas, 6);
        assert_eq!(p.average_value, 300);
        let err = resource_replicas(
            1,
            Target::AverageValue(1),
            BTreeMap::new(),
            &[],
            &requests,
            true,
            now,
        );
        assert_eq!(
            err,
            Err("no pods returned by selector while calculating replica count".into())
        );
        let (pods, _, requests) = setup(&[("a", None, true)], now);
        let err = resource_replicas(
            1,
            Target::Utilization(50),
            BTreeMap::new(),
            &pods,
            &requests,
            true,
            now,
        );
        assert_eq!(
            err,
            Err("did not receive metrics for targeted pods (pods might be unready)".into())
        );
        let mut p = pod("x", "Running", true, 600, now);
        p.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            containers: vec![k8s_openapi::api::core::v1::Container {
                name: "c".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(
            pod_requests(&[p], "cpu", None),
            Err("missing request for cpu in container c of Pod x".into())
        );
    }
}

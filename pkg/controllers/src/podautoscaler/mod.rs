//! HorizontalPodAutoscaler controller (upstream `pkg/controller/podautoscaler`,
//! autoscaling/v2): reads the target's `/scale`, keeps its replicas within
//! `minReplicas`/`maxReplicas`, and reports why it cannot scale on metrics while k1s
//! serves no metrics API (`metrics.k8s.io`, `custom.metrics.k8s.io`,
//! `external.metrics.k8s.io`): the ScalingActive condition and the events say so in
//! upstream's words.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus,
    MetricSpec, MetricStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DynamicObject, ListParams, PostParams};
use kube::discovery::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};

use crate::workload::Recorder;
use kube::runtime::{Controller, watcher};
use kube::{Api, Resource, ResourceExt};

use crate::Shutdown;

/// Upstream's controller name.
pub const NAME: &str = "horizontal-pod-autoscaler-controller";

/// Upstream's `--horizontal-pod-autoscaler-sync-period`.
const SYNC_PERIOD: Duration = Duration::from_secs(15);

/// Why a sync did not finish.
#[derive(Debug, thiserror::Error)]
pub enum HpaError {
    /// An API call failed.
    #[error("{context}: {source}")]
    Api {
        /// What was attempted.
        context: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

struct Context {
    client: kube::Client,
    recorder: Recorder,
    /// When each autoscaler (by uid) was last synced, at which generation: like
    /// upstream's queue, a change of its own status does not bring the next sync
    /// forward, only a change of its spec does.
    last_sync: parking_lot::Mutex<HashMap<String, (Instant, Option<i64>)>>,
}

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown))
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown) {
    let hpas: Api<HorizontalPodAutoscaler> = Api::all(client.clone());
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: crate::workload::recorder(client, NAME),
        last_sync: Default::default(),
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        shutdown.wait().await;
        let _ = stop_tx.send(());
    });
    Controller::new(hpas, watcher::Config::default())
        .graceful_shutdown_on(async move {
            let _ = stop_rx.await;
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::trace!(hpa = %obj.name, "hpa synced"),
                Err(e) => tracing::debug!(error = %e, "hpa sync failed"),
            }
        })
        .await;
}

/// Upstream's `setCondition`: updates the condition of that type, moving its
/// transition time only when its status changes; new types are appended.
fn set_condition(
    status: &mut HorizontalPodAutoscalerStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: String,
) {
    let now = Time(Timestamp::now());
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != value {
                c.last_transition_time = Some(now);
            }
            c.status = value.into();
            c.reason = Some(reason.into());
            c.message = Some(message);
        }
        None => conditions.push(HorizontalPodAutoscalerCondition {
            type_: type_.into(),
            status: value.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: Some(now),
        }),
    }
}

/// What the replica bounds alone decide (upstream's checks before metrics are looked
/// at): the desired count and the reason, or None when metrics must decide.
pub fn bounds(current: i32, min: i32, max: i32) -> Option<(i32, Option<&'static str>)> {
    if current == 0 && min != 0 {
        // A target scaled to zero by hand is left alone.
        Some((0, None))
    } else if current > max {
        Some((
            max,
            Some("Current number of replicas above Spec.MaxReplicas"),
        ))
    } else if current < min {
        Some((
            min,
            Some("Current number of replicas below Spec.MinReplicas"),
        ))
    } else {
        None
    }
}

/// Why one metric could not be read: the condition reason, the message of its event
/// (also in the condition), and the error the metric's computation returns.
struct MetricFailure {
    reason: &'static str,
    event: String,
    error: String,
}

/// The resource metrics API's error for the pods of `selector`, in client-go's words.
async fn resource_metrics_error(client: &kube::Client, ns: &str, selector: &str) -> String {
    let api = ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    };
    let pods: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api);
    match pods.list(&ListParams::default().labels(selector)).await {
        Err(kube::Error::Api(s)) if s.code == 404 => {
            "the server could not find the requested resource (get pods.metrics.k8s.io)".into()
        }
        Err(kube::Error::Api(s)) => s.message,
        Err(e) => e.to_string(),
        // Served by someone, but this controller does not turn usage into replicas yet.
        Ok(_) => "resource metrics are not used by this controller yet".into(),
    }
}

async fn metric_failure(
    client: &kube::Client,
    ns: &str,
    selector: &str,
    spec: &MetricSpec,
) -> MetricFailure {
    const NO_CUSTOM: &str = "no custom metrics API (custom.metrics.k8s.io) registered";
    match spec.type_.as_str() {
        "Resource" | "ContainerResource" => {
            let (name, target, container) = match (&spec.resource, &spec.container_resource) {
                (Some(r), _) => (r.name.clone(), r.target.clone(), false),
                (None, Some(c)) => (c.name.clone(), c.target.clone(), true),
                (None, None) => (String::new(), Default::default(), false),
            };
            let what = if target.average_value.is_some() {
                "usage"
            } else {
                "utilization"
            };
            let api_err = resource_metrics_error(client, ns, selector).await;
            let event = format!(
                "failed to get {name} {what}: unable to get metrics for resource {name}: unable to fetch metrics from resource metrics API: {api_err}"
            );
            let (reason, kind) = if container {
                ("FailedGetContainerResourceMetric", "container")
            } else {
                ("FailedGetResourceMetric", "resource")
            };
            MetricFailure {
                reason,
                error: format!("failed to get {name} {kind} metric value: {event}"),
                event,
            }
        }
        "Pods" => {
            let name = spec
                .pods
                .as_ref()
                .map(|p| p.metric.name.clone())
                .unwrap_or_default();
            let event = format!(
                "unable to get metric {name}: unable to fetch metrics from custom metrics API: {NO_CUSTOM}"
            );
            MetricFailure {
                reason: "FailedGetPodsMetric",
                error: format!("failed to get pods metric value: {event}"),
                event,
            }
        }
        "Object" => {
            let name = spec
                .object
                .as_ref()
                .map(|o| o.metric.name.clone())
                .unwrap_or_default();
            let event = format!(
                "unable to get metric {name}: unable to fetch metrics from custom metrics API: {NO_CUSTOM}"
            );
            MetricFailure {
                reason: "FailedGetObjectMetric",
                error: format!("failed to get object metric value: {event}"),
                event,
            }
        }
        other => {
            let name = spec
                .external
                .as_ref()
                .map(|e| e.metric.name.clone())
                .unwrap_or_default();
            let event = if other == "External" {
                format!(
                    "unable to get external metric {ns}/{name}/nil: unable to fetch metrics from external metrics API: the server could not find the requested resource (get {name}.external.metrics.k8s.io)"
                )
            } else {
                format!("unknown metric source type {other:?}")
            };
            MetricFailure {
                reason: "FailedGetExternalMetric",
                error: format!("failed to get external metric value: {event}"),
                event,
            }
        }
    }
}

async fn event(
    ctx: &Context,
    hpa: &HorizontalPodAutoscaler,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &hpa.object_ref(&())).await {
        tracing::debug!(error = %e, reason, "cannot record event");
    }
}

/// The API resource of the scale target: the workloads k1s serves by name, anything
/// else through discovery.
async fn target_api(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
) -> Result<ApiResource, String> {
    let (group, version) = crate::discovery::parse_group_version(api_version)?;
    let known = match (group.as_str(), kind) {
        ("apps", "Deployment") => Some("deployments"),
        ("apps", "ReplicaSet") => Some("replicasets"),
        ("apps", "StatefulSet") => Some("statefulsets"),
        ("", "ReplicationController") => Some("replicationcontrollers"),
        _ => None,
    };
    if let Some(plural) = known {
        return Ok(ApiResource {
            group,
            version,
            api_version: api_version.into(),
            kind: kind.into(),
            plural: plural.into(),
        });
    }
    let found = crate::discovery::preferred_resources(client)
        .await
        .map_err(|e| e.to_string())?;
    found
        .resources
        .into_iter()
        .find(|d| d.api.group == group && d.api.kind == kind)
        .map(|d| ApiResource {
            version: version.clone(),
            api_version: api_version.into(),
            ..d.api
        })
        .ok_or_else(|| format!("no matches for kind \"{kind}\" in group \"{group}\""))
}

async fn write_status(
    ctx: &Context,
    hpa: &HorizontalPodAutoscaler,
    status: HorizontalPodAutoscalerStatus,
) -> Result<(), HpaError> {
    if hpa.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let mut next = hpa.clone();
    next.status = Some(status);
    let api: Api<HorizontalPodAutoscaler> =
        Api::namespaced(ctx.client.clone(), &hpa.namespace().unwrap_or_default());
    api.replace_status(&hpa.name_any(), &PostParams::default(), &next)
        .await
        .map(|_| ())
        .map_err(|source| HpaError::Api {
            context: format!("update status of {}", hpa.name_any()),
            source,
        })
}

async fn reconcile(
    hpa: Arc<HorizontalPodAutoscaler>,
    ctx: Arc<Context>,
) -> Result<Action, HpaError> {
    let uid = hpa.uid().unwrap_or_default();
    {
        let mut last = ctx.last_sync.lock();
        if let Some((at, generation)) = last.get(&uid)
            && *generation == hpa.metadata.generation
            && at.elapsed() < SYNC_PERIOD
        {
            return Ok(Action::requeue(SYNC_PERIOD.saturating_sub(at.elapsed())));
        }
        // Deleted autoscalers are forgotten once they would have synced many times.
        last.retain(|_, (at, _)| at.elapsed() < SYNC_PERIOD * 40);
        last.insert(uid, (Instant::now(), hpa.metadata.generation));
    }
    let ns = hpa.namespace().unwrap_or_default();
    let spec = hpa.spec.clone().unwrap_or_default();
    let target = &spec.scale_target_ref;
    let mut status = hpa.status.clone().unwrap_or_default();
    let requeue = Ok(Action::requeue(SYNC_PERIOD));

    let scale = match target_api(
        &ctx.client,
        target.api_version.as_deref().unwrap_or(""),
        &target.kind,
    )
    .await
    {
        Ok(api) => {
            let scales: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &api);
            scales.get_scale(&target.name).await.map_err(|e| match e {
                kube::Error::Api(s) => s.message,
                e => e.to_string(),
            })
        }
        Err(e) => Err(e),
    };
    let scale = match scale {
        Ok(s) => s,
        Err(e) => {
            event(&ctx, &hpa, EventType::Warning, "FailedGetScale", e.clone()).await;
            set_condition(
                &mut status,
                "AbleToScale",
                "False",
                "FailedGetScale",
                format!("the HPA controller was unable to get the target's current scale: {e}"),
            );
            write_status(&ctx, &hpa, status).await?;
            return requeue;
        }
    };
    set_condition(
        &mut status,
        "AbleToScale",
        "True",
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale".into(),
    );
    let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec.max_replicas;

    let (desired, reason, rescale, metrics) = match bounds(current, min, max) {
        Some((0, None)) => {
            set_condition(
                &mut status,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero".into(),
            );
            (current, None, false, None)
        }
        Some((desired, reason)) => (desired, reason, desired != current, None),
        None => {
            // Metrics decide; none can be read while no metrics API is served.
            let selector = scale
                .status
                .as_ref()
                .and_then(|s| s.selector.clone())
                .unwrap_or_default();
            let failure = if selector.is_empty() {
                event(
                    &ctx,
                    &hpa,
                    EventType::Warning,
                    "SelectorRequired",
                    "selector is required".into(),
                )
                .await;
                set_condition(
                    &mut status,
                    "ScalingActive",
                    "False",
                    "InvalidSelector",
                    "the HPA target's scale is missing a selector".into(),
                );
                "selector is required".to_string()
            } else {
                let specs = spec.metrics.clone().unwrap_or_default();
                let mut first: Option<MetricFailure> = None;
                for m in &specs {
                    let f = metric_failure(&ctx.client, &ns, &selector, m).await;
                    event(&ctx, &hpa, EventType::Warning, f.reason, f.event.clone()).await;
                    first.get_or_insert(f);
                }
                match first {
                    Some(f) => {
                        set_condition(
                            &mut status,
                            "ScalingActive",
                            "False",
                            f.reason,
                            format!(
                                "the HPA was unable to compute the replica count: {}",
                                f.event
                            ),
                        );
                        format!(
                            "invalid metrics ({n} invalid out of {n}), first error is: {}",
                            f.error,
                            n = specs.len()
                        )
                    }
                    None => "no metrics to compute replicas from".to_string(),
                }
            };
            // Upstream keeps the last desired count and reports the metrics it tried.
            let tried: Vec<MetricStatus> = spec
                .metrics
                .iter()
                .flatten()
                .map(|_| MetricStatus::default())
                .collect();
            status.current_replicas = Some(current);
            status.current_metrics = (!tried.is_empty()).then_some(tried);
            write_status(&ctx, &hpa, status).await?;
            event(
                &ctx,
                &hpa,
                EventType::Warning,
                "FailedComputeMetricsReplicas",
                failure,
            )
            .await;
            return requeue;
        }
    };

    if rescale {
        let reason = reason.unwrap_or_default();
        let api = target_api(
            &ctx.client,
            target.api_version.as_deref().unwrap_or(""),
            &target.kind,
        )
        .await;
        let mut next = scale.clone();
        next.spec.get_or_insert_with(Default::default).replicas = Some(desired);
        let written = match api {
            Ok(api) => {
                let scales: Api<DynamicObject> =
                    Api::namespaced_with(ctx.client.clone(), &ns, &api);
                scales
                    .replace_scale(&target.name, &PostParams::default(), &next)
                    .await
                    .map(|_| ())
                    .map_err(|e| match e {
                        kube::Error::Api(s) => s.message,
                        e => e.to_string(),
                    })
            }
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            event(
                &ctx,
                &hpa,
                EventType::Warning,
                "FailedRescale",
                format!("New size: {desired}; reason: {reason}; error: {e}"),
            )
            .await;
            set_condition(
                &mut status,
                "AbleToScale",
                "False",
                "FailedUpdateScale",
                format!("the HPA controller was unable to update the target scale: {e}"),
            );
            status.current_replicas = Some(current);
            status.current_metrics = metrics;
            write_status(&ctx, &hpa, status).await?;
            return requeue;
        }
        set_condition(
            &mut status,
            "AbleToScale",
            "True",
            "SucceededRescale",
            format!("the HPA controller was able to update the target scale to {desired}"),
        );
        event(
            &ctx,
            &hpa,
            EventType::Normal,
            "SuccessfulRescale",
            format!("New size: {desired}; reason: {reason}"),
        )
        .await;
        status.last_scale_time = Some(Time(Timestamp::now()));
    }
    status.current_replicas = Some(current);
    status.desired_replicas = desired;
    status.current_metrics = metrics;
    write_status(&ctx, &hpa, status).await?;
    requeue
}

fn error_policy(_hpa: Arc<HorizontalPodAutoscaler>, err: &HpaError, _ctx: Arc<Context>) -> Action {
    tracing::debug!(error = %err, "hpa sync failed");
    Action::requeue(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_upstream() {
        assert_eq!(bounds(0, 1, 5), Some((0, None)));
        assert_eq!(bounds(0, 0, 5), None);
        assert_eq!(bounds(7, 1, 5).map(|b| b.0), Some(5));
        assert_eq!(bounds(1, 2, 5).map(|b| b.0), Some(2));
        assert_eq!(bounds(3, 2, 5), None);
    }
}

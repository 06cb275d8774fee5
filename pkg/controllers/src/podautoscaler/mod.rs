//! HorizontalPodAutoscaler controller (upstream `pkg/controller/podautoscaler`,
//! autoscaling/v2): reads the target's `/scale`, keeps its replicas within
//! `minReplicas`/`maxReplicas`, and scales on resource metrics (`Resource` and
//! `ContainerResource`, utilization or average value) read from `metrics.k8s.io` with
//! upstream's replica calculator ([`replicas`]), its stabilization windows and its
//! default scale-up rate. `Pods`, `Object` and `External` metrics need APIs k1s does not
//! serve (`custom.metrics.k8s.io`, `external.metrics.k8s.io`): the ScalingActive
//! condition and the events say so in upstream's words.

pub mod replicas;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricStatus, HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition,
    HorizontalPodAutoscalerStatus, MetricSpec, MetricStatus, MetricValueStatus,
    ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
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
    /// Each autoscaler's recent recommendations (by uid), for the stabilization windows.
    recommendations: parking_lot::Mutex<HashMap<String, Vec<(Instant, i32)>>>,
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
        recommendations: Default::default(),
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
        Some((desired, reason)) => (
            desired,
            reason.map(str::to_string),
            desired != current,
            None,
        ),
        None => {
            // Metrics decide.
            let selector = scale
                .status
                .as_ref()
                .and_then(|s| s.selector.clone())
                .unwrap_or_default();
            let specs = spec.metrics.clone().unwrap_or_default();
            let computed = if selector.is_empty() {
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
                Err("selector is required".to_string())
            } else {
                let mut first: Option<MetricFailure> = None;
                let mut invalid = 0usize;
                let mut best: Option<(i32, String)> = None;
                let mut statuses = Vec::new();
                for m in &specs {
                    match compute_metric(&ctx.client, &ns, &selector, m, current).await {
                        Ok(c) => {
                            if best.as_ref().is_none_or(|(r, _)| c.replicas > *r) {
                                best = Some((c.replicas, c.name.clone()));
                            }
                            statuses.push(c.status);
                        }
                        Err(f) => {
                            event(&ctx, &hpa, EventType::Warning, f.reason, f.event.clone()).await;
                            invalid += 1;
                            statuses.push(MetricStatus::default());
                            first.get_or_insert(f);
                        }
                    }
                }
                match (best, first) {
                    // Upstream: every metric invalid, or some invalid while the valid
                    // ones would scale down, is an error.
                    (Some((replicas, name)), first)
                        if invalid == 0 || (invalid < specs.len() && replicas >= current) =>
                    {
                        let _ = first;
                        set_condition(
                            &mut status,
                            "ScalingActive",
                            "True",
                            "ValidMetricFound",
                            format!(
                                "the HPA was able to successfully calculate a replica count from {name}"
                            ),
                        );
                        Ok((replicas, name, statuses))
                    }
                    (_, Some(f)) => {
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
                        Err(format!(
                            "invalid metrics ({invalid} invalid out of {}), first error is: {}",
                            specs.len(),
                            f.error
                        ))
                    }
                    (_, None) => Err("no metrics to compute replicas from".to_string()),
                }
            };
            match computed {
                Ok((proposal, name, statuses)) => {
                    let (desired, reason) =
                        normalize(&ctx, &hpa, &mut status, current, proposal, min, max, &name);
                    (desired, reason, desired != current, Some(statuses))
                }
                Err(failure) => {
                    // Upstream keeps the last desired count and reports the metrics it tried.
                    let tried: Vec<MetricStatus> =
                        specs.iter().map(|_| MetricStatus::default()).collect();
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
            }
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

/// One metric's proposal: the replicas, the metric's name in upstream's messages, and
/// its status.
struct Computed {
    replicas: i32,
    name: String,
    status: MetricStatus,
}

/// A milli-unit amount as a quantity (`250m`, `64Mi` for memory in bytes).
fn milli_quantity(resource: &str, milli: i64) -> Quantity {
    let q = if resource == "memory" {
        k1s_apimachinery::Quantity::from_i64(
            milli / 1000,
            k1s_apimachinery::quantity::Format::BinarySI,
        )
    } else {
        k1s_apimachinery::Quantity::from_milli(milli, k1s_apimachinery::quantity::Format::DecimalSI)
    };
    Quantity(q.canonical())
}

/// The pods' usage of `resource` from `metrics.k8s.io` (milli-units), summed over their
/// containers (or the one named).
async fn pod_metrics(
    client: &kube::Client,
    ns: &str,
    selector: &str,
    resource: &str,
    container: Option<&str>,
) -> Result<std::collections::BTreeMap<String, replicas::PodMetric>, String> {
    let api = ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    };
    let pods: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api);
    let list = pods
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| {
            let msg = match e {
                kube::Error::Api(s) if s.code == 404 => {
                    "the server could not find the requested resource (get pods.metrics.k8s.io)"
                        .to_string()
                }
                kube::Error::Api(s) => s.message,
                e => e.to_string(),
            };
            format!(
                "unable to get metrics for resource {resource}: unable to fetch metrics from resource metrics API: {msg}"
            )
        })?;
    if list.items.is_empty() {
        return Err(format!(
            "unable to get metrics for resource {resource}: no metrics returned from resource metrics API"
        ));
    }
    let mut out = std::collections::BTreeMap::new();
    for item in list.items {
        let timestamp = item.data["timestamp"]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .unwrap_or_else(Timestamp::now);
        let window = item.data["window"]
            .as_str()
            .and_then(|w| w.parse::<k8s_openapi::jiff::SignedDuration>().ok())
            .unwrap_or_default();
        let mut value = 0i64;
        let mut found = false;
        for c in item.data["containers"].as_array().into_iter().flatten() {
            if container.is_some_and(|n| c["name"].as_str() != Some(n)) {
                continue;
            }
            if let Some(q) = c["usage"][resource]
                .as_str()
                .and_then(|q| k1s_apimachinery::Quantity::parse(q).ok())
            {
                value += q.milli_value();
                found = true;
            }
        }
        if found {
            out.insert(
                item.metadata.name.clone().unwrap_or_default(),
                replicas::PodMetric {
                    value,
                    timestamp,
                    window,
                },
            );
        }
    }
    Ok(out)
}

/// The replicas one metric asks for; `Pods`, `Object` and `External` metrics fail as
/// their APIs are not served.
async fn compute_metric(
    client: &kube::Client,
    ns: &str,
    selector: &str,
    spec: &MetricSpec,
    current: i32,
) -> Result<Computed, MetricFailure> {
    let (name, target, container) = match (
        spec.type_.as_str(),
        &spec.resource,
        &spec.container_resource,
    ) {
        ("Resource", Some(r), _) => (r.name.clone(), r.target.clone(), None),
        ("ContainerResource", _, Some(c)) => {
            (c.name.clone(), c.target.clone(), Some(c.container.clone()))
        }
        _ => return Err(metric_failure(client, ns, selector, spec).await),
    };
    let what = if target.average_value.is_some() {
        "usage"
    } else {
        "utilization"
    };
    let (reason, kind) = if container.is_some() {
        ("FailedGetContainerResourceMetric", "container")
    } else {
        ("FailedGetResourceMetric", "resource")
    };
    let fail = |detail: String| {
        let event = format!("failed to get {name} {what}: {detail}");
        MetricFailure {
            reason,
            error: format!("failed to get {name} {kind} metric value: {event}"),
            event,
        }
    };
    let metrics = pod_metrics(client, ns, selector, &name, container.as_deref())
        .await
        .map_err(&fail)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pods = pods
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| {
            fail(format!(
                "unable to get pods while calculating replica count: {e}"
            ))
        })?
        .items;
    let calc_target = match (&target.average_value, target.average_utilization) {
        (Some(v), _) => replicas::Target::AverageValue(
            k1s_apimachinery::Quantity::parse(&v.0)
                .map(|q| q.milli_value())
                .map_err(|e| fail(e.to_string()))?,
        ),
        (None, Some(u)) => replicas::Target::Utilization(u),
        (None, None) => return Err(fail("invalid resource metric source: neither a utilization target nor a value target was set".into())),
    };
    let requests = match calc_target {
        replicas::Target::Utilization(_) => {
            replicas::pod_requests(&pods, &name, container.as_deref()).map_err(&fail)?
        }
        replicas::Target::AverageValue(_) => Default::default(),
    };
    let proposal = replicas::resource_replicas(
        current,
        calc_target,
        metrics,
        &pods,
        &requests,
        name == "cpu",
        Timestamp::now(),
    )
    .map_err(&fail)?;
    let current_value = MetricValueStatus {
        average_utilization: proposal.utilization,
        average_value: Some(milli_quantity(&name, proposal.average_value)),
        value: None,
    };
    let utilization = matches!(calc_target, replicas::Target::Utilization(_));
    let (metric_name, status) = match container {
        Some(c) => (
            if utilization {
                format!("{name} container resource utilization (percentage of request)")
            } else {
                format!("{name} container resource")
            },
            MetricStatus {
                type_: "ContainerResource".into(),
                container_resource: Some(ContainerResourceMetricStatus {
                    container: c,
                    name: name.clone(),
                    current: current_value,
                }),
                ..Default::default()
            },
        ),
        None => (
            if utilization {
                format!("{name} resource utilization (percentage of request)")
            } else {
                format!("{name} resource")
            },
            MetricStatus {
                type_: "Resource".into(),
                resource: Some(ResourceMetricStatus {
                    name: name.clone(),
                    current: current_value,
                }),
                ..Default::default()
            },
        ),
    };
    Ok(Computed {
        replicas: proposal.replicas,
        name: metric_name,
        status,
    })
}

/// Upstream's `normalizeDesiredReplicasWithBehaviors`: the stabilization windows (scale
/// down: the highest recommendation of the last 300 s by default; scale up: the lowest of
/// its window, 0 s by default), the default scale-up rate (double, or 4 pods more,
/// whichever is more), then the replica bounds; sets AbleToScale and ScalingLimited.
#[allow(clippy::too_many_arguments)]
fn normalize(
    ctx: &Context,
    hpa: &HorizontalPodAutoscaler,
    status: &mut HorizontalPodAutoscalerStatus,
    current: i32,
    proposal: i32,
    min: i32,
    max: i32,
    metric_name: &str,
) -> (i32, Option<String>) {
    let behavior = hpa.spec.as_ref().and_then(|s| s.behavior.clone());
    let window = |rules: Option<&k8s_openapi::api::autoscaling::v2::HPAScalingRules>,
                  default: i32| {
        Duration::from_secs(
            u64::try_from(
                rules
                    .and_then(|r| r.stabilization_window_seconds)
                    .unwrap_or(default),
            )
            .unwrap_or(0),
        )
    };
    let down_window = window(behavior.as_ref().and_then(|b| b.scale_down.as_ref()), 300);
    let up_window = window(behavior.as_ref().and_then(|b| b.scale_up.as_ref()), 0);
    let stabilized = {
        let mut all = ctx.recommendations.lock();
        let history = all.entry(hpa.uid().unwrap_or_default()).or_default();
        let (mut up, mut down) = (proposal, proposal);
        for (at, r) in history.iter() {
            if at.elapsed() < up_window {
                up = up.min(*r);
            }
            if at.elapsed() < down_window {
                down = down.max(*r);
            }
        }
        history.retain(|(at, _)| at.elapsed() < down_window.max(up_window));
        history.push((Instant::now(), proposal));
        current.max(up).min(down)
    };
    if stabilized != proposal {
        let (reason, message) = if stabilized > proposal {
            (
                "ScaleDownStabilized",
                "recent recommendations were higher than current one, applying the highest recent recommendation",
            )
        } else {
            (
                "ScaleUpStabilized",
                "recent recommendations were lower than current one, applying the lowest recent recommendation",
            )
        };
        set_condition(status, "AbleToScale", "True", reason, message.into());
    } else {
        set_condition(
            status,
            "AbleToScale",
            "True",
            "ReadyForNewScale",
            "recommended size matches current size".into(),
        );
    }
    let rate_limit = (current.saturating_mul(2)).max(current.saturating_add(4));
    let (desired, limited) = if stabilized > rate_limit && rate_limit < max {
        (
            rate_limit,
            Some((
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
            )),
        )
    } else if stabilized > max {
        (
            max,
            Some((
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )),
        )
    } else if stabilized < min {
        (
            min,
            Some((
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )),
        )
    } else {
        (stabilized, None)
    };
    match limited {
        Some((reason, message)) => {
            set_condition(status, "ScalingLimited", "True", reason, message.into());
        }
        None => set_condition(
            status,
            "ScalingLimited",
            "False",
            "DesiredWithinRange",
            "the desired count is within the acceptable range".into(),
        ),
    }
    let reason = if desired > current {
        format!("{metric_name} above target")
    } else {
        "All metrics below target".to_string()
    };
    (desired, Some(reason))
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

//! The pods of simulated nodes: one watch of every bound pod (`spec.nodeName!=`), a
//! kube-runtime controller over it (deduplicated, bounded concurrency), and for each pod
//! on one of our nodes the status the kubelet would post, or its removal once deleted.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::events;
use crate::ipam::NodeIps;
use crate::nodes::fake_hex;
use crate::queue::Queue;
use crate::{
    Config, DEFAULT_JOB_RUN, EXIT_CODE_ANNOTATION, Error, MAX_GRACE, RUN_SECONDS_ANNOTATION,
    SimNode,
};

struct Ctx {
    client: kube::Client,
    nodes: Arc<HashMap<String, SimNode>>,
    ips: Mutex<HashMap<String, NodeIps>>,
    /// Whether kubelet events are posted.
    events: bool,
    /// Pods whose containers were announced as being stopped.
    killing: Mutex<std::collections::HashSet<String>>,
}

/// What to do with a pod next.
enum Action {
    /// Nothing until it changes.
    Wait,
    /// Look again after this long.
    Requeue(Duration),
}

impl Action {
    fn await_change() -> Self {
        Self::Wait
    }

    fn requeue(after: Duration) -> Self {
        Self::Requeue(after)
    }
}

/// Runs the pod loop until aborted: one watch of every bound pod into a cache, pods of
/// our nodes into a work queue, `concurrency` workers.
pub(crate) async fn run(
    client: kube::Client,
    config: Arc<Config>,
    nodes: Arc<HashMap<String, SimNode>>,
) {
    // The pods are read from the informer's own cache: the simulator keeps no copy.
    let informer = config
        .pods
        .clone()
        .unwrap_or_else(|| k1s_informer::Informer::pods(client.clone()));
    let ctx = Arc::new(Ctx {
        client,
        nodes: nodes.clone(),
        ips: Mutex::new(HashMap::new()),
        events: config.events,
        killing: Mutex::new(std::collections::HashSet::new()),
    });
    let queue = Arc::new(Queue::<ObjectRef<Pod>>::new());
    // Dropped (aborting the workers) when this loop is aborted.
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..config.concurrency.max(1) {
        workers.spawn(worker(ctx.clone(), informer.clone(), queue.clone()));
    }
    let ours = move |pod: &Pod| {
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some_and(|n| nodes.contains_key(n))
    };
    // Keys are queued once the cache holds their object: a (re)list reaches the cache
    // all at once at InitDone, so its pods are queued then, not one by one.
    let cache = informer.clone();
    informer
        .subscribe()
        .for_each(|event| {
            match event {
                watcher::Event::Apply(pod) if ours(&pod) => {
                    queue.push(ObjectRef::from_obj(&*pod));
                }
                watcher::Event::Delete(pod) => {
                    // Gone without us (a forced delete): its address is free again.
                    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
                    if let (Some(node), Some(uid)) = (node, pod.metadata.uid.as_deref())
                        && let Some(ips) = ctx.ips.lock().get_mut(&node)
                    {
                        ips.release(uid);
                    }
                }
                watcher::Event::InitDone => {
                    for pod in cache.state() {
                        if ours(&pod) {
                            queue.push(ObjectRef::from_obj(&*pod));
                        }
                    }
                }
                _ => {}
            }
            futures::future::ready(())
        })
        .await;
    workers.abort_all();
}

async fn worker(
    ctx: Arc<Ctx>,
    store: k1s_informer::Informer<Pod>,
    queue: Arc<Queue<ObjectRef<Pod>>>,
) {
    loop {
        let key = queue.pop().await;
        let ns = key.namespace.as_deref().unwrap_or("");
        if let Some(pod) = store.get(ns, &key.name) {
            let next = match reconcile(pod, ctx.clone()).await {
                Ok(Action::Wait) => None,
                Ok(Action::Requeue(after)) => Some(after),
                Err(error) => {
                    tracing::debug!(%error, pod = %key, "simulated pod write failed; retrying");
                    Some(Duration::from_secs(1))
                }
            };
            if let Some(after) = next {
                let (queue, key) = (queue.clone(), key.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    queue.push(key);
                });
            }
        }
        queue.done(&key);
    }
}

fn time_json(t: Timestamp) -> Value {
    serde_json::to_value(Time(t)).unwrap_or(Value::Null)
}

fn millis_until(t: Timestamp, now: Timestamp) -> Option<Duration> {
    let ms = t.as_millisecond() - now.as_millisecond();
    (ms > 0).then(|| Duration::from_millis(ms.unsigned_abs()))
}

fn is_job_pod(pod: &Pod) -> bool {
    pod.metadata.owner_references.as_ref().is_some_and(|refs| {
        refs.iter()
            .any(|r| r.controller == Some(true) && r.kind == "Job" && r.api_version == "batch/v1")
    })
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// How long the pod runs before it finishes, and with which exit code; `None` for pods
/// that run until deleted.
fn run_plan(pod: &Pod) -> Option<(Duration, i32)> {
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    if policy == "Always" {
        return None;
    }
    let exit_code = annotation(pod, EXIT_CODE_ANNOTATION)
        .and_then(|s| s.trim().parse::<i32>().ok())
        .unwrap_or(0);
    if policy == "OnFailure" && exit_code != 0 {
        // The kubelet would restart the containers forever; the pod stays Running.
        return None;
    }
    let run = match annotation(pod, RUN_SECONDS_ANNOTATION) {
        Some(s) => Duration::try_from_secs_f64(s.trim().parse::<f64>().ok()?).ok()?,
        None if is_job_pod(pod) => DEFAULT_JOB_RUN,
        None => return None,
    };
    Some((run, exit_code))
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn condition_status<'a>(pod: &'a Pod, ty: &str) -> Option<&'a str> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)
        .map(|c| c.status.as_str())
}

/// Why the readiness gates hold the pod back, in the kubelet's words; `None` when every
/// gate's condition is True.
fn gates_message(pod: &Pod) -> Option<String> {
    let gates = pod.spec.as_ref()?.readiness_gates.as_ref()?;
    for gate in gates {
        let ty = &gate.condition_type;
        match condition_status(pod, ty) {
            None => {
                return Some(format!(
                    "corresponding condition of pod readiness gate \"{ty}\" does not exist."
                ));
            }
            Some("True") => {}
            Some(other) => {
                return Some(format!(
                    "the status of pod readiness gate \"{ty}\" is not \"True\", but {other}"
                ));
            }
        }
    }
    None
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Whether the pod already shows what a simulated node posts for a running pod: Running,
/// an IP, every container running and ready, and Ready as its readiness gates say.
pub fn is_simulated_status_current(pod: &Pod) -> bool {
    let (Some(spec), Some(status)) = (pod.spec.as_ref(), pod.status.as_ref()) else {
        return false;
    };
    if phase(pod) != "Running" || status.pod_ip.as_deref().unwrap_or("").is_empty() {
        return false;
    }
    if pod.metadata.generation.is_some() && status.observed_generation != pod.metadata.generation {
        // The spec changed (a new image): post the status for this generation.
        return false;
    }
    let running = status.container_statuses.as_deref().unwrap_or_default();
    if running.len() != spec.containers.len() || running.iter().any(|c| !c.ready) {
        return false;
    }
    let inits = spec.init_containers.as_deref().unwrap_or_default();
    if status
        .init_container_statuses
        .as_deref()
        .unwrap_or_default()
        .len()
        != inits.len()
    {
        return false;
    }
    let want_ready = if gates_message(pod).is_none() {
        "True"
    } else {
        "False"
    };
    condition_status(pod, "Ready") == Some(want_ready)
}

fn container_id(pod: &Pod, name: &str) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    format!("simulated://{}", fake_hex(&format!("{uid}/{name}"), 64))
}

fn image_id(image: &str) -> String {
    let repo = image.split('@').next().unwrap_or(image);
    let repo = match repo.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => repo,
    };
    format!("{repo}@sha256:{}", fake_hex(image, 64))
}

/// The `startedAt` of a container that already runs, so a repost keeps it.
fn running_since(pod: &Pod, name: &str, init: bool) -> Option<Value> {
    let status = pod.status.as_ref()?;
    let list = if init {
        status.init_container_statuses.as_ref()
    } else {
        status.container_statuses.as_ref()
    }?;
    let started = list
        .iter()
        .find(|c| c.name == name)?
        .state
        .as_ref()?
        .running
        .as_ref()?
        .started_at
        .clone()?;
    serde_json::to_value(started).ok()
}

fn running_container(pod: &Pod, c: &Container, init: bool, now: &Value) -> Value {
    let since = running_since(pod, &c.name, init).unwrap_or_else(|| now.clone());
    json!({
        "name": c.name,
        "state": {"running": {"startedAt": since}},
        "lastState": {},
        "ready": true,
        "started": true,
        "restartCount": 0,
        "image": c.image.clone().unwrap_or_default(),
        "imageID": image_id(c.image.as_deref().unwrap_or_default()),
        "containerID": container_id(pod, &c.name),
    })
}

fn terminated_container(
    pod: &Pod,
    c: &Container,
    init: bool,
    exit_code: i32,
    now: &Value,
) -> Value {
    let since = running_since(pod, &c.name, init).unwrap_or_else(|| now.clone());
    let reason = if exit_code == 0 { "Completed" } else { "Error" };
    json!({
        "name": c.name,
        "state": {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": since,
                                 "finishedAt": now, "containerID": container_id(pod, &c.name)}},
        "lastState": {},
        "ready": false,
        "started": false,
        "restartCount": 0,
        "image": c.image.clone().unwrap_or_default(),
        "imageID": image_id(c.image.as_deref().unwrap_or_default()),
        "containerID": container_id(pod, &c.name),
    })
}

/// The kubelet's pod conditions in its order, `(type, status, reason, message)`, then the
/// conditions others own (readiness gates, DisruptionTarget …) as they are; transition
/// times are kept where the status did not change.
fn conditions(
    pod: &Pod,
    ours: &[(&str, &str, Option<&str>, Option<String>)],
    now: &Value,
) -> Value {
    let old = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut out: Vec<Value> = ours
        .iter()
        .map(|(ty, status, reason, message)| {
            let since = old
                .iter()
                .find(|c| c.type_ == *ty && c.status == *status)
                .and_then(|c| c.last_transition_time.clone())
                .and_then(|t| serde_json::to_value(t).ok())
                .unwrap_or_else(|| now.clone());
            let mut c = json!({"type": ty, "status": status, "lastProbeTime": null,
                               "lastTransitionTime": since});
            // PodObservedGenerationTracking: the kubelet says which spec it acted on.
            if let Some(g) = pod.metadata.generation {
                c["observedGeneration"] = json!(g);
            }
            if let Some(r) = reason {
                c["reason"] = json!(r);
            }
            if let Some(m) = message {
                c["message"] = json!(m);
            }
            c
        })
        .collect();
    for c in &old {
        if !ours.iter().any(|(ty, ..)| *ty == c.type_)
            && let Ok(v) = serde_json::to_value(c)
        {
            out.push(v);
        }
    }
    Value::Array(out)
}

/// The status a simulated node posts for a running pod: init containers completed, every
/// container running and ready, Ready when the readiness gates allow.
pub fn desired_status(pod: &Pod, host_ip: &str, pod_ip: &str, now: Timestamp) -> Value {
    let now = time_json(now);
    let spec = pod.spec.clone().unwrap_or_default();
    let start = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.clone())
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or_else(|| now.clone());
    let inits: Vec<Value> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            if is_sidecar(c) {
                running_container(pod, c, true, &start)
            } else {
                let mut v = terminated_container(pod, c, true, 0, &start);
                v["state"]["terminated"]["startedAt"] = start.clone();
                v["state"]["terminated"]["finishedAt"] = start.clone();
                v
            }
        })
        .collect();
    let containers: Vec<Value> = spec
        .containers
        .iter()
        .map(|c| running_container(pod, c, false, &now))
        .collect();
    let gates = gates_message(pod);
    let ready = if gates.is_none() { "True" } else { "False" };
    let ready_reason = gates.as_ref().map(|_| "ReadinessGatesNotReady");
    let conds = conditions(
        pod,
        &[
            ("PodReadyToStartContainers", "True", None, None),
            ("Initialized", "True", None, None),
            ("Ready", ready, ready_reason, gates),
            ("ContainersReady", "True", None, None),
            ("PodScheduled", "True", None, None),
        ],
        &now,
    );
    let mut status = json!({
        "phase": "Running",
        "conditions": conds,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start,
        "containerStatuses": containers,
    });
    if !inits.is_empty() {
        status["initContainerStatuses"] = Value::Array(inits);
    }
    if let Some(g) = pod.metadata.generation {
        status["observedGeneration"] = json!(g);
    }
    status
}

/// The status of a pod whose containers exited with `exit_code`.
fn finished_status(pod: &Pod, exit_code: i32, now: Timestamp) -> Value {
    let now = time_json(now);
    let spec = pod.spec.clone().unwrap_or_default();
    let containers: Vec<Value> = spec
        .containers
        .iter()
        .map(|c| terminated_container(pod, c, false, exit_code, &now))
        .collect();
    let phase = if exit_code == 0 {
        "Succeeded"
    } else {
        "Failed"
    };
    // The kubelet's reasons: PodCompleted for a pod that succeeded, PodFailed otherwise.
    let ended = if exit_code == 0 {
        "PodCompleted"
    } else {
        "PodFailed"
    };
    let completed = (exit_code == 0).then_some("PodCompleted");
    let conds = conditions(
        pod,
        &[
            ("PodReadyToStartContainers", "False", None, None),
            ("Initialized", "True", completed, None),
            ("Ready", "False", Some(ended), None),
            ("ContainersReady", "False", Some(ended), None),
            ("PodScheduled", "True", None, None),
        ],
        &now,
    );
    let mut status = json!({"phase": phase, "conditions": conds, "containerStatuses": containers});
    if let Some(g) = pod.metadata.generation {
        status["observedGeneration"] = json!(g);
    }
    status
}

/// Writes the status; `false` when a newer pod or none was there (nothing written).
async fn patch_status(ctx: &Ctx, pod: &Pod, status: Value) -> Result<bool, Error> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    // The resourceVersion makes this a compare-and-swap: conditions others wrote (a
    // readiness gate) are never overwritten with a stale list.
    let body = json!({
        "metadata": {"resourceVersion": pod.metadata.resource_version},
        "status": status,
    });
    // The pod the server answers with is skipped, not decoded: the new version comes
    // through the watch (one write per pod started; decoding the answer was a tenth of
    // the write's cost).
    let request = kube::core::Request::new(Pod::url_path(&(), Some(ns)))
        .patch_subresource("status", name, &PatchParams::default(), &Patch::Merge(body))
        .map_err(kube::Error::BuildRequest)?;
    match ctx.client.request::<serde::de::IgnoredAny>(request).await {
        Ok(_) => Ok(true),
        // A newer pod is on its way through the watch, or the pod is gone.
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn reconcile(pod: Arc<Pod>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let node_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    let Some(node) = ctx.nodes.get(&node_name) else {
        return Ok(Action::await_change());
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let now = Timestamp::now();
    if let Some(deleted) = &pod.metadata.deletion_timestamp {
        // The kubelet stops the containers within the grace period, then removes the pod.
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .unwrap_or(0)
            .max(0);
        if ctx.events && phase(&pod) == "Running" && ctx.killing.lock().insert(uid.clone()) {
            let spec = pod.spec.clone().unwrap_or_default();
            let mut stopping: Vec<events::ContainerEvent> = spec
                .containers
                .iter()
                .map(|c| events::killing("spec.containers", &c.name))
                .collect();
            stopping.extend(
                spec.init_containers
                    .iter()
                    .flatten()
                    .filter(|c| is_sidecar(c))
                    .map(|c| events::killing("spec.initContainers", &c.name)),
            );
            events::post(&ctx.client, &node_name, &pod, &stopping).await;
        }
        let requested_ms = deleted.0.as_millisecond() - grace * 1000;
        let wait_ms = (grace * 1000).min(MAX_GRACE.as_millis() as i64);
        let finish = Timestamp::from_millisecond(requested_ms + wait_ms).unwrap_or(now);
        if let Some(wait) = millis_until(finish, now) {
            return Ok(Action::requeue(wait));
        }
        let has_finalizers = pod
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| !f.is_empty());
        if has_finalizers && !matches!(phase(&pod), "Succeeded" | "Failed") {
            // The pod outlives the delete until its finalizers go (a Job's pod): like the
            // kubelet, leave it in a terminal phase, its containers killed (137).
            patch_status(&ctx, &pod, finished_status(&pod, 137, now)).await?;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api
            .delete(pod.metadata.name.as_deref().unwrap_or(""), &dp)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(ips) = ctx.ips.lock().get_mut(&node_name) {
            ips.release(&uid);
        }
        ctx.killing.lock().remove(&uid);
        return Ok(Action::await_change());
    }
    if matches!(phase(&pod), "Succeeded" | "Failed") {
        // Its sandbox is gone, and with it the address.
        if let Some(ips) = ctx.ips.lock().get_mut(&node_name) {
            ips.release(&uid);
        }
        return Ok(Action::await_change());
    }
    let plan = run_plan(&pod);
    if !is_simulated_status_current(&pod) {
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let ip = if host_network {
            // A host-network pod has the node's address, as on a real node.
            node.host_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
        } else {
            let mut all = ctx.ips.lock();
            let ips = all.entry(node_name.clone()).or_default();
            match pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .and_then(|s| s.parse::<Ipv4Addr>().ok())
            {
                Some(ip) => {
                    ips.adopt(&uid, ip);
                    ip
                }
                None => ips.assign(node.pod_cidr, &uid),
            }
        };
        let status = desired_status(&pod, &node.host_ip, &ip.to_string(), now);
        let starting = phase(&pod) != "Running";
        if patch_status(&ctx, &pod, status).await? && starting && ctx.events {
            let spec = pod.spec.clone().unwrap_or_default();
            let mut started = Vec::new();
            for c in spec.init_containers.iter().flatten() {
                let image = c.image.as_deref().unwrap_or_default();
                started.extend(events::started("spec.initContainers", &c.name, image));
            }
            for c in &spec.containers {
                let image = c.image.as_deref().unwrap_or_default();
                started.extend(events::started("spec.containers", &c.name, image));
            }
            events::post(&ctx.client, &node_name, &pod, &started).await;
        }
        // The next look comes with the written pod through the watch.
        return Ok(match plan {
            Some((run, _)) => Action::requeue(run),
            None => Action::await_change(),
        });
    }
    if let Some((run, exit_code)) = plan {
        let started = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0)
            .unwrap_or(now);
        let end_ms = started.as_millisecond() + run.as_millis() as i64;
        let end = Timestamp::from_millisecond(end_ms).unwrap_or(now);
        if let Some(wait) = millis_until(end, now) {
            return Ok(Action::requeue(wait));
        }
        let _written = patch_status(&ctx, &pod, finished_status(&pod, exit_code, now)).await?;
    }
    {
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|s| s.parse::<Ipv4Addr>().ok());
        if let Some(ip) = ip {
            ctx.ips.lock().entry(node_name).or_default().adopt(&uid, ip);
        }
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn a_running_pod_has_every_kubelet_field() {
        let p = pod(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"nodeName": "sim-node-0",
                     "initContainers": [{"name": "init", "image": "busybox"},
                                        {"name": "side", "image": "envoy", "restartPolicy": "Always"}],
                     "containers": [{"name": "web", "image": "nginx:1.27"}]},
            "status": {"phase": "Pending", "qosClass": "BestEffort"}
        }));
        let s = desired_status(&p, "172.16.0.1", "10.42.0.2", Timestamp::now());
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.42.0.2");
        assert_eq!(
            s["initContainerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        assert_eq!(
            s["initContainerStatuses"][0]["state"]["terminated"]["exitCode"],
            0
        );
        assert!(s["initContainerStatuses"][1]["state"]["running"].is_object());
        let web = &s["containerStatuses"][0];
        assert_eq!(web["ready"], true);
        assert_eq!(web["image"], "nginx:1.27");
        assert!(
            web["containerID"]
                .as_str()
                .is_some_and(|s| s.starts_with("simulated://"))
        );
        assert!(
            web["imageID"]
                .as_str()
                .is_some_and(|s| s.starts_with("nginx@sha256:"))
        );
        let types: Vec<&str> = s["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .filter_map(|c| c["type"].as_str())
            .collect();
        assert_eq!(
            types,
            [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled"
            ]
        );
        let mut running = p.clone();
        running.status = serde_json::from_value(s).ok();
        assert!(is_simulated_status_current(&running));
    }

    #[test]
    fn readiness_gates_hold_ready_until_their_condition_is_true() {
        let mut p = pod(json!({
            "metadata": {"name": "p", "uid": "u"},
            "spec": {"containers": [{"name": "c", "image": "x"}],
                     "readinessGates": [{"conditionType": "example.com/lb"}]},
        }));
        let s = desired_status(&p, "h", "10.0.0.2", Timestamp::now());
        assert_eq!(s["conditions"][2]["status"], "False");
        assert_eq!(s["conditions"][2]["reason"], "ReadinessGatesNotReady");
        assert_eq!(
            s["conditions"][2]["message"],
            "corresponding condition of pod readiness gate \"example.com/lb\" does not exist."
        );
        let mut s = s;
        s["conditions"]
            .as_array_mut()
            .expect("list")
            .push(json!({"type": "example.com/lb", "status": "True"}));
        p.status = serde_json::from_value(s).ok();
        assert!(!is_simulated_status_current(&p));
        let s = desired_status(&p, "h", "10.0.0.2", Timestamp::now());
        assert_eq!(s["conditions"][2]["status"], "True");
        assert_eq!(s["conditions"][5]["type"], "example.com/lb");
    }

    #[test]
    fn only_finite_pods_finish() {
        let job = pod(json!({
            "metadata": {"name": "p", "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                         "name": "j", "uid": "x", "controller": true}]},
            "spec": {"restartPolicy": "Never", "containers": []},
        }));
        assert_eq!(run_plan(&job), Some((DEFAULT_JOB_RUN, 0)));
        let failing = pod(json!({
            "metadata": {"name": "p", "annotations": {EXIT_CODE_ANNOTATION: "3", RUN_SECONDS_ANNOTATION: "2"}},
            "spec": {"restartPolicy": "Never", "containers": []},
        }));
        assert_eq!(run_plan(&failing), Some((Duration::from_secs(2), 3)));
        let server = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": []}}));
        assert_eq!(run_plan(&server), None);
        let bare = pod(
            json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "Never", "containers": []}}),
        );
        assert_eq!(run_plan(&bare), None);
        let s = finished_status(&failing, 3, Timestamp::now());
        assert_eq!(s["phase"], "Failed");
        assert_eq!(s["conditions"][2]["reason"], "PodFailed");
    }
}

//! The workloads part: a server with simulated nodes receives many Deployments at once;
//! the figures say how fast the control plane (Deployment and ReplicaSet controllers,
//! scheduler, simulated kubelets) turns them into running pods, and what that costs.
//!
//! Pod start latency is measured as upstream's SLO defines it, from the client's side:
//! from the moment the pod is first seen (its creation) to the moment it is first seen
//! Running, both on this process's clock.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use parking_lot::Mutex;

use crate::report::{Latencies, Report};
use crate::server::Server;
use crate::{Args, proc};

/// Namespace of the Deployments.
const NS_WORKLOADS: &str = "workloads";
/// Deployments created at once.
const CREATE_CONCURRENCY: usize = 16;

/// When the watch saw each pod reach each stage.
#[derive(Debug, Clone, Copy)]
struct PodTimes {
    seen: Instant,
    scheduled: Option<Instant>,
    running: Option<Instant>,
}

/// What the pod watch has seen, by pod uid.
type Seen = Arc<Mutex<HashMap<String, PodTimes>>>;

fn deployment(name: &str, replicas: i32) -> anyhow::Result<Deployment> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "app",
                    "image": "registry.k1s.test/pause:3.10",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
                }]}
            }
        }
    }))?)
}

/// Records every pod's stages as the watch delivers them.
fn watch_pods(client: kube::Client, seen: Seen) -> tokio::task::JoinHandle<()> {
    let pods: Api<Pod> = Api::namespaced(client, NS_WORKLOADS);
    tokio::spawn(async move {
        let stream = watcher(pods, watcher::Config::default()).applied_objects();
        futures::pin_mut!(stream);
        loop {
            match stream.try_next().await {
                Ok(Some(pod)) => {
                    let now = Instant::now();
                    let Some(uid) = pod.metadata.uid.clone() else {
                        continue;
                    };
                    let scheduled = pod.spec.as_ref().and_then(|s| s.node_name.as_ref());
                    let running =
                        pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                    let mut seen = seen.lock();
                    let t = seen.entry(uid).or_insert(PodTimes {
                        seen: now,
                        scheduled: None,
                        running: None,
                    });
                    if scheduled.is_some() && t.scheduled.is_none() {
                        t.scheduled = Some(now);
                    }
                    if running && t.running.is_none() {
                        t.running = Some(now);
                    }
                }
                Ok(None) => return,
                // The watcher re-lists after errors; a gap only delays what it sees.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
}

/// Samples the server's RSS every second; returns the peak seen.
fn sample_rss(pid: u32, stop: Arc<std::sync::atomic::AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(m) = proc::memory(pid) {
                peak = peak.max(m.rss);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        peak
    })
}

async fn wait_for_nodes(
    client: &kube::Client,
    want: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let start = Instant::now();
    loop {
        let list = nodes.list(&ListParams::default()).await?;
        let ready = list
            .items
            .iter()
            .filter(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        if ready >= want {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("only {ready} of {want} simulated nodes Ready after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How many Deployments report every replica available.
async fn available(api: &Api<Deployment>, replicas: i32) -> anyhow::Result<usize> {
    let list = api.list(&ListParams::default()).await?;
    Ok(list
        .items
        .iter()
        .filter(|d| {
            d.status
                .as_ref()
                .is_some_and(|s| s.available_replicas.unwrap_or(0) >= replicas)
        })
        .count())
}

/// Starts a server with `--simulate-nodes`, creates the Deployments and measures until
/// all of them are Available.
pub async fn workloads(args: &Args, dir: &Path, report: &mut Report) -> anyhow::Result<()> {
    let nodes = args.nodes;
    let (count, replicas) = (args.deployments, args.replicas);
    let pods_total = count * replicas as usize;
    eprintln!(
        "workloads: {nodes} simulated nodes, {count} Deployments of {replicas} replicas ({pods_total} pods)"
    );
    let mut server = Server::new(&args.k1s, dir.join("workloads"))?
        // The nodes' kubelet events (Pulled, Created, Started) are left out: the part
        // measures the control plane, not event writes.
        .with_args(&["--simulate-nodes", &nodes.to_string(), "--simulate-quiet"]);
    server.start().await?;
    let pid = server.pid()?;
    let client = server.client().await?;
    wait_for_nodes(&client, nodes, Duration::from_secs(300)).await?;
    crate::scenarios::ensure_namespace(&client, NS_WORKLOADS).await?;

    let seen: Seen = Arc::default();
    let watch = watch_pods(client.clone(), seen.clone());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rss = sample_rss(pid, stop.clone());
    let cpu_before = proc::cpu_time(pid)?;
    let started = Instant::now();

    let api: Api<Deployment> = Api::namespaced(client.clone(), NS_WORKLOADS);
    let objects = (0..count)
        .map(|i| deployment(&format!("app-{i:04}"), replicas))
        .collect::<anyhow::Result<Vec<_>>>()?;
    futures::stream::iter(objects)
        .map(|d| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &d).await }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .context("creating the Deployments")?;
    eprintln!(
        "workloads: {count} Deployments created in {:?}",
        started.elapsed()
    );

    let timeout = Duration::from_secs(args.workload_timeout);
    let mut last_report = Instant::now();
    loop {
        let done = available(&api, replicas).await?;
        if done == count {
            break;
        }
        if started.elapsed() > timeout {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            bail!("only {done} of {count} Deployments Available after {timeout:?}");
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            let running = seen.lock().values().filter(|t| t.running.is_some()).count();
            eprintln!(
                "workloads: {:.0} s: {done}/{count} Deployments Available, {running}/{pods_total} pods Running",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all_available = started.elapsed();
    let cpu_used = proc::cpu_time(pid)? - cpu_before;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak_rss = rss.await.unwrap_or(0);
    // Let the watch catch up with the last Running pods before reading its figures.
    tokio::time::sleep(Duration::from_secs(1)).await;
    watch.abort();

    let times: Vec<PodTimes> = seen.lock().values().copied().collect();
    let mut scheduled: Vec<Instant> = times.iter().filter_map(|t| t.scheduled).collect();
    scheduled.sort_unstable();
    let mut start_latency = Latencies::default();
    for t in &times {
        if let Some(r) = t.running {
            start_latency.push(r.saturating_duration_since(t.seen));
        }
    }
    let rate = match (scheduled.first(), scheduled.last()) {
        (Some(first), Some(last)) if last > first => {
            scheduled.len() as f64 / last.duration_since(*first).as_secs_f64()
        }
        _ => 0.0,
    };
    let section = "workloads";
    report.add(
        section,
        "workloads.pods",
        "pods created",
        times.len() as f64,
        "pods",
    );
    report.add(
        section,
        "workloads.scheduled_per_s",
        "pods scheduled per second (target ≥ 1000)",
        rate,
        "pods/s",
    );
    report.add(
        section,
        "workloads.all_available_s",
        "until every Deployment is Available",
        all_available.as_secs_f64(),
        "s",
    );
    report.add_ms(
        section,
        "workloads.start_p50_ms",
        "pod start latency p50",
        start_latency.quantile(0.5),
    );
    report.add_ms(
        section,
        "workloads.start_p99_ms",
        "pod start latency p99 (target ≤ 5000)",
        start_latency.quantile(0.99),
    );
    report.add_mib(
        section,
        "workloads.peak_rss_mib",
        "server RSS peak during (target ≤ 500)",
        peak_rss,
    );
    report.add(
        section,
        "workloads.cpu_pct",
        "server CPU during (% of one core)",
        cpu_used.as_secs_f64() / all_available.as_secs_f64() * 100.0,
        "%",
    );
    eprintln!(
        "workloads: idle for {} s with every pod running",
        args.idle_seconds
    );
    let cpu = proc::cpu_share(pid, Duration::from_secs(args.idle_seconds)).await?;
    let mem = proc::memory(pid)?;
    report.add_mib(
        section,
        "workloads.after_rss_mib",
        "server RSS after, every pod running",
        mem.rss,
    );
    report.add(
        section,
        "workloads.after_cpu_pct",
        "server CPU after, every pod running (% of one core)",
        cpu * 100.0,
        "%",
    );
    server.stop()?;
    Ok(())
}

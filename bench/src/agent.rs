//! The agent part: `k1s server` with its kubelet on the embedded containerd, running real
//! containers of the busybox test image (`sleep`, a pause-like process) on this machine.
//!
//! Figures: exec → the Node's Ready condition True as a watching client sees it; pod start
//! latency (first seen by a watch → first seen Running, and → Ready) for pods created one
//! at a time and for a Deployment's replicas (the ReplicaSet controller creates them in
//! its slow-start batches, as for a user's Deployment); RSS of the server, of its
//! containerd child and of the shims with a number of pods running.
//!
//! Needs root, containerd and runc (the agent makes network namespaces, a bridge, mounts
//! and containers); the names it makes (node, bridge, nftables table, pod CIDR, ports,
//! folders) are its own, so it does not meet a test's server or a real one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use parking_lot::Mutex;

use crate::report::{Latencies, Report};
use crate::server::{Server, client_from};
use crate::{Args, proc};

/// Namespace of the benchmark's pods.
const NS: &str = "agentbench";
/// The image the pods run, imported from the test images' busybox.tar.
const IMAGE: &str = "docker.io/library/busybox:latest";
/// k3s's published resource profile (docs.k3s.io, "Resource Profiling"), in MB.
const K3S_SERVER_WITH_WORKLOAD_MB: f64 = 1596.0;
/// k3s's published agent figure, in MB.
const K3S_AGENT_MB: f64 = 275.0;

/// When the watch saw each pod reach each stage.
#[derive(Debug, Clone)]
struct PodTimes {
    name: String,
    seen: Instant,
    scheduled: Option<Instant>,
    running: Option<Instant>,
    ready: Option<Instant>,
}

/// What the pod watch has seen, by pod uid.
type Seen = Arc<Mutex<HashMap<String, PodTimes>>>;

/// What the agent part cannot run without, each with how to get it; empty when ready.
pub fn missing() -> Vec<String> {
    let mut missing = Vec::new();
    let euid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .map(str::to_string)
        })
        .unwrap_or_default();
    if euid != "0" {
        missing.push("root (network namespaces, the pod bridge, mounts)".to_string());
    }
    for tool in ["containerd", "containerd-shim-runc-v2", "runc"] {
        if !on_path(tool) {
            let package = if tool == "runc" { "runc" } else { "containerd" };
            missing.push(format!("{tool} (apt-get install {package})"));
        }
    }
    missing
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
}

/// The folder with the test images (`busybox.tar`): `--test-images`, `$K1S_TEST_IMAGES`,
/// else the cache the e2e tests use, built by `scripts/build-test-images` when missing.
fn test_images(args: &Args) -> anyhow::Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-test-images");
    let dir = match args
        .test_images
        .clone()
        .or_else(|| std::env::var_os("K1S_TEST_IMAGES").map(PathBuf::from))
    {
        Some(d) => d,
        None => {
            // The same key as tests/src/lib.rs: a fingerprint of the script.
            let bytes = std::fs::read(&script).unwrap_or_default();
            let fp = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/k1s-images")
                .join(format!("out-{fp:016x}"))
        }
    };
    if dir.join("busybox.tar").exists() {
        return Ok(dir);
    }
    eprintln!("agent: building the test images into {}", dir.display());
    let out = Command::new(&script)
        .arg(&dir)
        .stdout(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "scripts/build-test-images failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(dir)
}

/// A pod spec running `sleep` in the busybox image: a pause-like container.
fn pod_spec() -> serde_json::Value {
    serde_json::json!({
        "containers": [{
            "name": "sleep",
            "image": IMAGE,
            "imagePullPolicy": "IfNotPresent",
            "command": ["sleep", "86400"],
        }],
        // sleep ignores SIGTERM as PID 1; the clean-up between phases need not wait 30 s.
        "terminationGracePeriodSeconds": 1,
    })
}

fn is_ready(conditions: Option<&Vec<k8s_openapi::api::core::v1::PodCondition>>) -> bool {
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Records every pod's stages as the watch delivers them.
fn watch_pods(client: kube::Client, seen: Seen) -> tokio::task::JoinHandle<()> {
    let pods: Api<Pod> = Api::namespaced(client, NS);
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
                    let status = pod.status.as_ref();
                    let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
                    let ready = is_ready(status.and_then(|s| s.conditions.as_ref()));
                    let scheduled = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
                    let mut seen = seen.lock();
                    let t = seen.entry(uid).or_insert(PodTimes {
                        name: pod.metadata.name.clone().unwrap_or_default(),
                        seen: now,
                        scheduled: None,
                        running: None,
                        ready: None,
                    });
                    if scheduled && t.scheduled.is_none() {
                        t.scheduled = Some(now);
                    }
                    if running && t.running.is_none() {
                        t.running = Some(now);
                    }
                    if ready && t.ready.is_none() {
                        t.ready = Some(now);
                    }
                }
                Ok(None) => return,
                // The watcher re-lists after errors; a gap only delays what it sees.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
}

/// Time from `t0` until a watch on the Nodes sees `node` with Ready True; it starts as
/// soon as the server has written its kubeconfig and retries until the API answers.
async fn node_ready(kubeconfig: PathBuf, node: String, t0: Instant) -> anyhow::Result<Duration> {
    let client = loop {
        if kubeconfig.exists()
            && let Ok(c) = client_from(&kubeconfig).await
        {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let nodes: Api<Node> = Api::all(client);
    let stream = watcher(nodes, watcher::Config::default()).applied_objects();
    futures::pin_mut!(stream);
    loop {
        match stream.try_next().await {
            Ok(Some(n)) => {
                let ready = n
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                if ready && n.metadata.name.as_deref() == Some(node.as_str()) {
                    return Ok(t0.elapsed());
                }
            }
            Ok(None) => bail!("the node watch ended"),
            // Not serving yet: the watcher lists again on the next poll.
            Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

/// Waits until `done` holds for what the watch has seen, or fails after `timeout`.
async fn wait_seen(
    seen: &Seen,
    timeout: Duration,
    what: &str,
    done: impl Fn(&HashMap<String, PodTimes>) -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    while !done(&seen.lock()) {
        if start.elapsed() > timeout {
            bail!("{what} not reached after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// Waits until the namespace holds exactly `want` pods, every one Running.
async fn wait_pods(api: &Api<Pod>, want: usize, timeout: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let list = api.list(&ListParams::default()).await?;
        let running = list
            .items
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            })
            .count();
        if list.items.len() == want && running == want {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!(
                "{} pods ({running} Running) instead of {want} Running after {timeout:?}",
                list.items.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The embedded containerd serving `data` and the shims it started: (containerd pids,
/// shim pids).
fn runtime_pids(data: &Path) -> (Vec<u32>, Vec<u32>) {
    let data = data.to_string_lossy().into_owned();
    let (mut containerd, mut shims) = (Vec::new(), Vec::new());
    for (pid, cmdline, _) in processes() {
        if !cmdline.contains(&data) {
            continue;
        }
        let program = cmdline.split(' ').next().unwrap_or_default();
        let program = program.rsplit('/').next().unwrap_or_default();
        if program == "containerd" {
            containerd.push(pid);
        } else if program.starts_with("containerd-shim") {
            shims.push(pid);
        }
    }
    (containerd, shims)
}

/// A `kB` field of /proc/PID/status, in bytes (0 when absent).
fn status_field(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// The summed RSS of `pids`.
fn rss(pids: &[u32]) -> u64 {
    pids.iter()
        .map(|p| proc::memory(*p).map_or(0, |m| m.rss))
        .sum()
}

/// CPU time of `pids` and of the children they reaped (containerd's shim starts, the
/// shims' runc runs), in seconds.
fn cpu_with_children(pids: &[u32]) -> f64 {
    let ticks = |pid: &u32| -> u64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return 0;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return 0;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime, stime, cutime, cstime: fields 14 to 17 of stat, 11 to 14 after the name.
        (11..=14)
            .map(|i| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
            .sum()
    };
    // Linux's USER_HZ is 100 on every architecture k1s builds for.
    pids.iter().map(ticks).sum::<u64>() as f64 / 100.0
}

/// Every process: pid, command line (spaces between arguments) and parent pid.
fn processes() -> Vec<(u32, String, u32)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let ppid = std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().nth(1).map(str::to_string))
            })
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        out.push((pid, cmdline, ppid));
    }
    out
}

/// What an agent leaves once its server is gone (containers keep running without it, as
/// k3s's do): containerd, shims and container processes of this data dir, the mounts
/// under it, the bridge and its nftables table.
fn clean_up(data: &Path, bridge: &str) {
    let prefix = data.to_string_lossy().into_owned();
    for (pid, cmdline, _) in processes() {
        let root = std::fs::read_link(format!("/proc/{pid}/root"))
            .is_ok_and(|r| r.to_string_lossy().starts_with(&prefix));
        let ours = root
            || (cmdline.contains(&prefix)
                && (cmdline.contains("containerd-shim") || cmdline.starts_with("containerd ")));
        if ours {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|mp| mp.starts_with(&prefix))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").args(["-l", p]).status();
        }
    }
    let _ = Command::new("ip")
        .args(["link", "del", bridge])
        .stderr(Stdio::null())
        .status();
    let _ = Command::new("nft")
        .args(["delete", "table", "ip", bridge])
        .stderr(Stdio::null())
        .status();
}

/// Runs the agent part; leaves nothing behind, whether it succeeds or not.
pub async fn agent(args: &Args, dir: &Path, report: &mut Report) -> anyhow::Result<()> {
    let missing = missing();
    if !missing.is_empty() {
        bail!(
            "the agent part needs {}; run it as root on a machine with them",
            missing.join(", ")
        );
    }
    let images = test_images(args)?;
    // Names of its own: a pid-based tag keeps a second bench or a test's server apart.
    let tag = format!("{:04x}", std::process::id() % 0x1_0000);
    let node = format!("k1s-bench-{tag}");
    let bridge = format!("k1sb{tag}");
    let cidr = format!("10.{}.0.0/16", 200 + std::process::id() % 50);
    let dns_port = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let work = dir.join("agent");
    let data = work.join("data");
    let airgap = data.join("agent").join("images");
    std::fs::create_dir_all(&airgap)?;
    std::fs::copy(images.join("busybox.tar"), airgap.join("busybox.tar"))
        .context("cannot copy the busybox test image into the airgap folder")?;
    let server = Server::new(&args.k1s, data.clone())?
        .with_agent()
        .with_args(&[
            "--node-name",
            &node,
            "--bridge-name",
            &bridge,
            "--cluster-cidr",
            &cidr,
            "--kubelet-port",
            "0",
            "--pod-log-dir",
            &work.join("pod-logs").to_string_lossy(),
            // The cluster DNS runs, on a port of its own rather than 10.43.0.10:53.
            "--dns-listen",
            &format!("127.0.0.1:{dns_port}"),
        ]);
    eprintln!(
        "agent: node {node}, bridge {bridge}, pods on {cidr}, data in {}",
        data.display()
    );
    let mut server = server;
    let result = measure(args, &mut server, &node, report).await;
    if let Err(e) = server.stop() {
        eprintln!("agent: {e}");
    }
    if let Some(to) = &args.agent_log
        && let Err(e) = std::fs::copy(data.join("server.log"), to)
    {
        eprintln!("agent: cannot copy the server log to {}: {e}", to.display());
    }
    if result.is_err()
        && let Ok(log) = std::fs::read_to_string(data.join("server.log"))
    {
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        eprintln!("agent: the server log ends:");
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
    }
    clean_up(&data, &bridge);
    result
}

async fn measure(
    args: &Args,
    server: &mut Server,
    node: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let section = "agent";
    let timeout = Duration::from_secs(args.agent_timeout);
    let t0 = Instant::now();
    let ready_watch = tokio::spawn(node_ready(server.kubeconfig(), node.to_string(), t0));
    let readyz = server.start().await?;
    let node_ready = tokio::time::timeout(timeout, ready_watch)
        .await
        .with_context(|| format!("node {node} not Ready after {timeout:?}"))???;
    report.add_ms(section, "agent.readyz_ms", "exec → /readyz", readyz);
    report.add_ms(
        section,
        "agent.node_ready_ms",
        "exec → node Ready, as a watch sees it (target ≤ 2000)",
        node_ready,
    );
    let pid = server.pid()?;
    let data = server.data_dir().to_path_buf();
    let client = server.client().await?;
    crate::scenarios::ensure_namespace(&client, NS).await?;
    // Pods are admitted once the namespace's default ServiceAccount exists.
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), NS);
    let asked = Instant::now();
    while accounts.get_opt("default").await?.is_none() {
        if asked.elapsed() > timeout {
            bail!("no default ServiceAccount in {NS} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    report.add_mib(
        section,
        "agent.idle_rss_mib",
        "server RSS, node Ready, no pods",
        proc::memory(pid)?.rss,
    );
    let seen: Seen = Arc::default();
    let watch = watch_pods(client.clone(), seen.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);

    // One pod at a time: the latency of a pod on an otherwise idle node.
    let mut serial = Latencies::default();
    for i in 0..args.agent_serial_pods {
        let name = format!("serial-{i}");
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name},
            "spec": pod_spec(),
        }))?;
        let created = pods.create(&PostParams::default(), &pod).await?;
        let uid = created.metadata.uid.unwrap_or_default();
        wait_seen(&seen, timeout, &format!("pod {name} Running"), |s| {
            s.get(&uid).is_some_and(|t| t.running.is_some())
        })
        .await?;
        if let Some(t) = seen.lock().get(&uid)
            && let Some(r) = t.running
        {
            serial.push(r.saturating_duration_since(t.seen));
        }
    }
    if args.agent_serial_pods > 0 {
        report.add_ms(
            section,
            "agent.serial_start_p50_ms",
            &format!(
                "pod start, one at a time, p50 of {}",
                args.agent_serial_pods
            ),
            serial.quantile(0.5),
        );
        report.add_ms(
            section,
            "agent.serial_start_p99_ms",
            &format!(
                "pod start, one at a time, p99 of {} (target ≤ 1000)",
                args.agent_serial_pods
            ),
            serial.quantile(0.99),
        );
        for i in 0..args.agent_serial_pods {
            pods.delete(&format!("serial-{i}"), &DeleteParams::default())
                .await?;
        }
        wait_pods(&pods, 0, timeout).await?;
    }

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);

    // Memory and idle CPU with the pods of a small node running (a Deployment of its own,
    // measured before the large one so no earlier peak is counted).
    let keep = args.agent_rss_pods;
    deployments
        .create(&PostParams::default(), &deployment("steady", keep)?)
        .await?;
    wait_pods(&pods, keep, timeout).await?;
    let settle = Duration::from_secs(args.idle_seconds);
    eprintln!(
        "agent: {keep} pods running; idle for {} s",
        settle.as_secs()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (containerd, shims) = runtime_pids(&data);
    // What an SD card sees at idle: the server's and containerd's writes (leases, node
    // status, events, SQLite's WAL) over the same window as the CPU share.
    let written = || {
        proc::disk_written(pid)
            + containerd
                .iter()
                .map(|p| proc::disk_written(*p))
                .sum::<u64>()
    };
    let (written_before, idle_start) = (written(), Instant::now());
    let cpu = proc::cpu_share(pid, settle).await?;
    let write_rate = written().saturating_sub(written_before) as f64
        / idle_start.elapsed().as_secs_f64().max(0.001);
    let server_rss = proc::memory(pid)?.rss;
    let containerd_rss = rss(&containerd);
    report.add_mib(
        section,
        "agent.rss_mib",
        &format!("server RSS, {keep} pods running (target ≤ 150)"),
        server_rss,
    );
    report.add_mib(
        section,
        "agent.rss_file_mib",
        "  of which file-backed (the binary's code and data read from disk)",
        status_field(pid, "RssFile:"),
    );
    report.add_mib(
        section,
        "agent.containerd_rss_mib",
        "containerd RSS (the embedded child)",
        containerd_rss,
    );
    report.add_mib(
        section,
        "agent.shims_rss_mib",
        &format!("shims RSS ({} containerd-shim-runc-v2)", shims.len()),
        rss(&shims),
    );
    report.add_mib(
        section,
        "agent.with_containerd_rss_mib",
        &format!(
            "server + containerd RSS (k3s, published: server with workload {K3S_SERVER_WITH_WORKLOAD_MB:.0} MB, agent {K3S_AGENT_MB:.0} MB)"
        ),
        server_rss + containerd_rss,
    );
    report.add(
        section,
        "agent.idle_cpu_pct",
        &format!("server CPU, {keep} pods running (% of one core)"),
        cpu * 100.0,
        "%",
    );
    report.add(
        section,
        "agent.idle_disk_kib_s",
        &format!("server + containerd disk writes, {keep} pods running, idle (target ≤ 16)"),
        write_rate / 1024.0,
        "KiB/s",
    );
    deployments
        .delete("steady", &DeleteParams::default())
        .await?;
    wait_pods(&pods, 0, timeout).await?;

    // A user's Deployment: the ReplicaSet controller creates its pods in slow-start
    // batches, the scheduler binds them, the kubelet starts them all at once.
    let n = args.agent_pods;
    let before: Vec<String> = seen.lock().keys().cloned().collect();
    let (containerd, _) = runtime_pids(&data);
    let server_cpu = proc::cpu_time(pid)?;
    let containerd_cpu = cpu_with_children(&containerd);
    let started = Instant::now();
    deployments
        .create(&PostParams::default(), &deployment("burst", n)?)
        .await?;
    let is_new = |uid: &String| !before.contains(uid);
    let count = |s: &HashMap<String, PodTimes>, f: fn(&PodTimes) -> bool| {
        s.iter()
            .filter(|(uid, t)| is_new(uid) && t.name.starts_with("burst-") && f(t))
            .count()
    };
    wait_seen(&seen, timeout, &format!("{n} pods Running"), |s| {
        count(s, |t| t.running.is_some()) >= n
    })
    .await?;
    let all_running = started.elapsed();
    let server_cpu = (proc::cpu_time(pid)? - server_cpu).as_secs_f64();
    let containerd_cpu = cpu_with_children(&containerd) - containerd_cpu;
    // The shims were all started in this phase; their runc runs are their reaped children.
    let shims_cpu = cpu_with_children(&runtime_pids(&data).1);
    // The last pods' Ready may trail Running by a status write.
    let _ = wait_seen(&seen, Duration::from_secs(10), "Ready", |s| {
        count(s, |t| t.ready.is_some()) >= n
    })
    .await;
    let mut to_scheduled = Latencies::default();
    let (mut to_running, mut to_ready) = (Latencies::default(), Latencies::default());
    for (uid, t) in seen.lock().iter() {
        if !is_new(uid) || !t.name.starts_with("burst-") {
            continue;
        }
        if let Some(r) = t.scheduled {
            to_scheduled.push(r.saturating_duration_since(t.seen));
        }
        if let Some(r) = t.running {
            to_running.push(r.saturating_duration_since(t.seen));
        }
        if let Some(r) = t.ready {
            to_ready.push(r.saturating_duration_since(t.seen));
        }
    }
    report.add_ms(
        section,
        "agent.scheduled_p99_ms",
        &format!("pod created → scheduled, Deployment of {n}, p99"),
        to_scheduled.quantile(0.99),
    );
    report.add_ms(
        section,
        "agent.start_p50_ms",
        &format!("pod start (created → Running), Deployment of {n}, p50"),
        to_running.quantile(0.5),
    );
    report.add_ms(
        section,
        "agent.start_p99_ms",
        &format!("pod start (created → Running), Deployment of {n}, p99 (target ≤ 1000)"),
        to_running.quantile(0.99),
    );
    report.add_ms(
        section,
        "agent.ready_p99_ms",
        &format!("pod created → Ready, Deployment of {n}, p99"),
        to_ready.quantile(0.99),
    );
    report.add(
        section,
        "agent.all_running_s",
        &format!("Deployment created → all {n} pods Running"),
        all_running.as_secs_f64(),
        "s",
    );
    let per_pod = |cpu: f64| cpu * 1000.0 / n.max(1) as f64;
    report.add(
        section,
        "agent.server_cpu_per_pod_ms",
        "server CPU per pod started",
        per_pod(server_cpu),
        "ms",
    );
    report.add(
        section,
        "agent.containerd_cpu_per_pod_ms",
        "containerd CPU per pod started",
        per_pod(containerd_cpu),
        "ms",
    );
    report.add(
        section,
        "agent.shim_cpu_per_pod_ms",
        "shim + runc CPU per pod started",
        per_pod(shims_cpu),
        "ms",
    );
    report.add_mib(
        section,
        "agent.peak_rss_mib",
        "server RSS peak (VmHWM)",
        proc::memory(pid)?.peak_rss,
    );
    // Leave the node empty so the server stops with nothing running.
    deployments
        .delete("burst", &DeleteParams::default())
        .await?;
    if let Err(e) = wait_pods(&pods, 0, timeout).await {
        eprintln!("agent: {e}");
    }
    watch.abort();
    Ok(())
}

/// A Deployment of `replicas` pause-like pods labelled `app: name`.
fn deployment(name: &str, replicas: usize) -> anyhow::Result<Deployment> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec()},
        },
    }))?)
}

/// A `k1s agent` process joined to a server, with its own data dir, bridge and log.
struct JoinedAgent {
    child: std::process::Child,
    data: PathBuf,
    bridge: String,
    log: PathBuf,
}

impl JoinedAgent {
    /// Stops the agent with SIGTERM (as systemd stops it) and waits for it.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent alone, as a Pi that only runs the agent: `k1s server --disable-agent`, and a
/// `k1s agent` that joins it over HTTPS with the server's token (the bootstrap, CSR and
/// Node-identity path of a real join). Figures: the agent's RSS idle with no pods and
/// with `--agent-join-pods` pods running, its embedded containerd's apart, its idle CPU
/// and disk writes. Leaves nothing behind.
pub async fn joined(args: &Args, dir: &Path, report: &mut Report) -> anyhow::Result<()> {
    let missing = missing();
    if !missing.is_empty() {
        bail!(
            "the agent-join part needs {}; run it as root on a machine with them",
            missing.join(", ")
        );
    }
    let images = test_images(args)?;
    let tag = format!("{:04x}", (std::process::id() + 1) % 0x1_0000);
    let node = format!("k1s-bench-join-{tag}");
    let bridge = format!("k1sj{tag}");
    let cidr = format!("10.{}.0.0/16", 200 + (std::process::id() + 1) % 50);
    let free_udp = || -> anyhow::Result<u16> {
        Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    };
    let dns_port = free_udp()?;
    let vxlan_port = free_udp()?;
    let work = dir.join("agent-join");
    let server_data = work.join("server");
    let agent_data = work.join("agent");
    let airgap = agent_data.join("agent").join("images");
    std::fs::create_dir_all(&airgap)?;
    std::fs::copy(images.join("busybox.tar"), airgap.join("busybox.tar"))
        .context("cannot copy the busybox test image into the airgap folder")?;
    std::fs::write(work.join("config.yaml"), "")?;
    let mut server = Server::new(&args.k1s, server_data.clone())?.with_args(&[
        "--cluster-cidr",
        &cidr,
        "--dns-listen",
        &format!("127.0.0.1:{dns_port}"),
    ]);
    eprintln!(
        "agent-join: node {node}, bridge {bridge}, pods on {cidr}, data in {}",
        work.display()
    );
    let result = async {
        server.start().await?;
        let token = std::fs::read_to_string(server_data.join("server").join("token"))
            .context("the server wrote no token")?;
        let log = work.join("agent.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(&args.k1s)
            .arg("agent")
            .args(["--server", &format!("https://127.0.0.1:{}", server.port())])
            .args(["--token", token.trim()])
            .arg("--data-dir")
            .arg(&agent_data)
            .args(["--node-name", &node, "--node-ip", "127.0.0.1"])
            .args(["--bridge-name", &bridge, "--cluster-cidr", &cidr])
            .args(["--kubelet-port", "0", "--vxlan-port", &vxlan_port.to_string()])
            .arg("--pod-log-dir")
            .arg(work.join("pod-logs"))
            // The host's /etc/k1s/config.yaml must not apply.
            .arg("--config")
            .arg(work.join("config.yaml"))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("cannot start k1s agent")?;
        let mut agent = JoinedAgent {
            child,
            data: agent_data.clone(),
            bridge: bridge.clone(),
            log,
        };
        let measured = measure_joined(args, &server, &mut agent, &node, report).await;
        agent.stop();
        if measured.is_err()
            && let Ok(log) = std::fs::read_to_string(&agent.log)
        {
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("agent-join: the agent log ends:");
            for l in tail.iter().rev() {
                eprintln!("  {l}");
            }
        }
        clean_up(&agent.data, &agent.bridge);
        // The agent's vxlan device and the Service proxy's table are named after the bridge.
        let _ = Command::new(&args.k1s)
            .arg("killall")
            .arg("--data-dir")
            .arg(&agent.data)
            .args(["--bridge-name", &agent.bridge])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        measured
    }
    .await;
    if let Err(e) = server.stop() {
        eprintln!("agent-join: {e}");
    }
    result
}

async fn measure_joined(
    args: &Args,
    server: &Server,
    agent: &mut JoinedAgent,
    node: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let section = "agent-join";
    let timeout = Duration::from_secs(args.agent_timeout);
    let client = server.client().await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let asked = Instant::now();
    loop {
        if let Some(status) = agent.child.try_wait()? {
            bail!("k1s agent exited with {status}");
        }
        let ready = nodes.get_opt(node).await?.is_some_and(|n| {
            n.status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        });
        if ready {
            break;
        }
        if asked.elapsed() > timeout {
            bail!("node {node} not Ready after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    report.add_ms(
        section,
        "agent_join.node_ready_ms",
        "agent exec → node Ready (join: CSRs, registration)",
        asked.elapsed(),
    );
    let pid = agent.child.id();
    crate::scenarios::ensure_namespace(&client, NS).await?;
    let settle = Duration::from_secs(args.idle_seconds);
    tokio::time::sleep(settle).await;
    let (containerd, _) = runtime_pids(&agent.data);
    report.add_mib(
        section,
        "agent_join.idle_rss_mib",
        "agent RSS, node Ready, no pods (target ≤ 40)",
        proc::memory(pid)?.rss,
    );
    report.add_mib(
        section,
        "agent_join.idle_containerd_rss_mib",
        "its containerd RSS, no pods",
        rss(&containerd),
    );

    let n = args.agent_join_pods;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    // Pods are admitted once the namespace's default ServiceAccount exists.
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), NS);
    while accounts.get_opt("default").await?.is_none() {
        if asked.elapsed() > timeout {
            bail!("no default ServiceAccount in {NS} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    deployments
        .create(&PostParams::default(), &deployment("joined", n)?)
        .await?;
    wait_pods(&pods, n, timeout).await?;
    eprintln!(
        "agent-join: {n} pods running; idle for {} s",
        settle.as_secs()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (containerd, shims) = runtime_pids(&agent.data);
    let written = || {
        proc::disk_written(pid)
            + containerd
                .iter()
                .map(|p| proc::disk_written(*p))
                .sum::<u64>()
    };
    let (written_before, idle_start) = (written(), Instant::now());
    let cpu = proc::cpu_share(pid, settle).await?;
    let write_rate = written().saturating_sub(written_before) as f64
        / idle_start.elapsed().as_secs_f64().max(0.001);
    report.add_mib(
        section,
        "agent_join.rss_mib",
        &format!(
            "agent RSS, {n} pods running (target ≤ 40; k3s, published: agent {K3S_AGENT_MB:.0} MB)"
        ),
        proc::memory(pid)?.rss,
    );
    report.add_mib(
        section,
        "agent_join.rss_file_mib",
        "  of which file-backed (the binary's code and data read from disk)",
        status_field(pid, "RssFile:"),
    );
    report.add_mib(
        section,
        "agent_join.containerd_rss_mib",
        &format!("its containerd RSS, {n} pods running"),
        rss(&containerd),
    );
    report.add_mib(
        section,
        "agent_join.shims_rss_mib",
        &format!("shims RSS ({} containerd-shim-runc-v2)", shims.len()),
        rss(&shims),
    );
    report.add(
        section,
        "agent_join.idle_cpu_pct",
        &format!("agent CPU, {n} pods running (% of one core)"),
        cpu * 100.0,
        "%",
    );
    report.add(
        section,
        "agent_join.idle_disk_kib_s",
        &format!("agent + containerd disk writes, {n} pods running, idle"),
        write_rate / 1024.0,
        "KiB/s",
    );
    report.add_mib(
        section,
        "agent_join.peak_rss_mib",
        "agent RSS peak (VmHWM)",
        proc::memory(pid)?.peak_rss,
    );
    deployments
        .delete("joined", &DeleteParams::default())
        .await?;
    if let Err(e) = wait_pods(&pods, 0, timeout).await {
        eprintln!("agent-join: {e}");
    }
    Ok(())
}

//! The measurements, in the order a run takes them.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};

use crate::etcd::Etcd;
use crate::load::{self, Budget, PhaseResult};
use crate::report::{Latencies, Report};
use crate::server::Server;
use crate::{Args, Part, proc};

/// Namespace of the throughput phases.
const NS_BENCH: &str = "bench";
/// Namespace holding the objects the list phase reads.
const NS_LIST: &str = "list-100";
/// Namespace holding the 10k-object list.
const NS_10K: &str = "list-10k";
/// Namespace holding the rest of the objects.
const NS_BULK: &str = "bulk";
/// Namespace of the watch fan-out.
const NS_FANOUT: &str = "fanout";
/// Objects per list in the lists/s phase.
const LIST_SIZE: u64 = 100;
/// Rounds of the watch fan-out (the median is reported).
const FANOUT_ROUNDS: usize = 3;
/// Leases and nodes churned by the storage phase.
const CHURNED: u64 = 100;
/// Samples of the storage phase.
const CHURN_SAMPLES: u64 = 20;

/// A ConfigMap of about the size of a typical one: five 64-byte values.
fn config_map(name: &str, n: u64) -> ConfigMap {
    let mut data = std::collections::BTreeMap::new();
    for k in 0..5 {
        data.insert(format!("key-{k}"), format!("{n:>64}"));
    }
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            labels: Some([("app".to_string(), "bench".to_string())].into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    }
}

pub(crate) async fn ensure_namespace(client: &kube::Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
    }))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create namespace {name}")),
    }
}

fn record_phase(report: &mut Report, key: &str, label: &str, r: PhaseResult) {
    record_phase_in(report, "api", key, label, r);
}

/// [`record_phase`] into another section of the report.
fn record_phase_in(report: &mut Report, section: &str, key: &str, label: &str, mut r: PhaseResult) {
    report.add(
        section,
        &format!("{key}.per_s"),
        &format!("{label}/s"),
        r.rate(),
        "ops/s",
    );
    let p50 = r.latencies.quantile(0.5);
    let p99 = r.latencies.quantile(0.99);
    report.add_ms(
        section,
        &format!("{key}.p50_ms"),
        &format!("{label} p50"),
        p50,
    );
    report.add_ms(
        section,
        &format!("{key}.p99_ms"),
        &format!("{label} p99"),
        p99,
    );
    if r.failed > 0 {
        report.add(
            section,
            &format!("{key}.failed"),
            &format!("{label} failed"),
            r.failed as f64,
            "requests",
        );
    }
}

/// Binary size, start-up, idle and loaded footprint, throughput, lists, fan-out, restart.
pub async fn server_and_api(args: &Args, dir: &Path, report: &mut Report) -> anyhow::Result<()> {
    if args.runs(Part::Footprint) {
        binary_size(args, dir, report)?;
    }
    let mut server = Server::new(&args.k1s, dir.join("k1s"))?;
    eprintln!("starting k1s on an empty data dir");
    let startup = server.start().await?;
    if args.runs(Part::Footprint) {
        report.add_ms(
            "startup",
            "startup.empty_ms",
            "exec to /readyz, empty data dir (creates the PKI)",
            startup,
        );
    }
    let client = server.client().await?;
    let pid = server.pid()?;
    if args.runs(Part::Footprint) {
        eprintln!("idle for {} s", args.idle_seconds);
        let cpu = proc::cpu_share(pid, Duration::from_secs(args.idle_seconds)).await?;
        let mem = proc::memory(pid)?;
        report.add_mib("footprint", "idle.rss_mib", "RSS idle, empty", mem.rss);
        report.add(
            "footprint",
            "idle.cpu_pct",
            "CPU idle, empty (% of one core)",
            cpu * 100.0,
            "%",
        );
    }
    for ns in [NS_BENCH, NS_LIST, NS_10K, NS_BULK, NS_FANOUT] {
        ensure_namespace(&client, ns).await?;
    }
    let mut held = 0u64;
    if args.runs(Part::Api) {
        held += throughput(args, &client, server.pid()?, report).await?;
    }
    held += fill(args, &client, held, report).await?;
    if args.runs(Part::Api) {
        lists(&client, report).await?;
    }
    let watchers = if args.watchers > 0 {
        Some(fan_out(args, &client, report).await?)
    } else {
        None
    };
    if args.runs(Part::Footprint) {
        eprintln!("idle for {} s holding {held} objects", args.idle_seconds);
        let cpu = proc::cpu_share(pid, Duration::from_secs(args.idle_seconds)).await?;
        let mem = proc::memory(pid)?;
        let with = format!("{held} objects, {} watches", args.watchers);
        report.add_mib(
            "footprint",
            "loaded.rss_mib",
            &format!("RSS idle, {with}"),
            mem.rss,
        );
        report.add(
            "footprint",
            "loaded.cpu_pct",
            &format!("CPU idle, {with} (% of one core)"),
            cpu * 100.0,
            "%",
        );
        report.add_mib(
            "footprint",
            "peak.rss_mib",
            "RSS peak over the whole run",
            mem.peak_rss,
        );
    }
    drop(watchers);
    drop(client);
    server.stop()?;
    if args.runs(Part::Footprint) {
        let (db, wal) = server.database_bytes();
        report.add_mib(
            "footprint",
            "disk.db_mib",
            &format!("database + WAL, {held} objects"),
            db + wal,
        );
        eprintln!("restarting k1s with {held} objects");
        let startup = server.start().await?;
        report.add_ms(
            "startup",
            "startup.full_ms",
            &format!("exec to /readyz, {held} objects"),
            startup,
        );
        let mem = proc::memory(server.pid()?)?;
        report.add_mib(
            "footprint",
            "restart.rss_mib",
            &format!("RSS after restart, {held} objects"),
            mem.rss,
        );
        server.stop()?;
    }
    Ok(())
}

fn binary_size(args: &Args, dir: &Path, report: &mut Report) -> anyhow::Result<()> {
    let size = std::fs::metadata(&args.k1s)?.len();
    report.add_mib("footprint", "binary.mib", "binary (release)", size);
    let stripped = dir.join("k1s.stripped");
    let status = std::process::Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&args.k1s)
        .status()
        .context("cannot run strip (binutils)")?;
    anyhow::ensure!(status.success(), "strip failed");
    let size = std::fs::metadata(&stripped)?.len();
    report.add_mib(
        "footprint",
        "binary_stripped.mib",
        "binary (release, stripped)",
        size,
    );
    Ok(())
}

/// `c` clients creating ConfigMaps `c{c}-{n}` for one phase, then replacing them (an
/// unconditional PUT without resourceVersion, as kubectl replace) for another: both
/// results and how many names the creates tried.
/// CPU time (user + system) used so far by each of `pids` (zero for a process gone).
fn cpu_times(pids: &[u32]) -> Vec<Duration> {
    pids.iter()
        .map(|&p| proc::cpu_time(p).unwrap_or_default())
        .collect()
}

/// CPU each of `pids` spent per successful operation of `r` since `before`, in µs.
fn cpu_per_op(pids: &[u32], before: &[Duration], r: &PhaseResult) -> Vec<f64> {
    cpu_times(pids)
        .iter()
        .zip(before)
        .map(|(after, before)| {
            after.saturating_sub(*before).as_secs_f64() * 1e6 / r.ok.max(1) as f64
        })
        .collect()
}

/// Records the CPU per operation of each named process (`names[i]` is `pids[i]`'s).
fn record_cpu(
    report: &mut Report,
    section: &str,
    key: &str,
    label: &str,
    names: &[&str],
    us: &[f64],
) {
    for (name, us) in names.iter().zip(us) {
        report.add(
            section,
            &format!("{key}.cpu_us.{name}"),
            &format!("{label}: {name} CPU per op"),
            *us,
            "µs",
        );
    }
}

/// ConfigMap creates for a phase, then replaces of the objects created; also the CPU
/// each of `pids` spent per create and per replace (µs).
async fn create_then_replace(
    args: &Args,
    api: &Api<ConfigMap>,
    c: usize,
    pids: &[u32],
) -> (PhaseResult, PhaseResult, u64, [Vec<f64>; 2]) {
    let a = api.clone();
    let before = cpu_times(pids);
    let created = load::run(c, Budget::Time(args.phase()), move |_, n| {
        let a = a.clone();
        async move {
            a.create(&PostParams::default(), &config_map(&format!("c{c}-{n}"), n))
                .await?;
            Ok(())
        }
    })
    .await;
    let create_cpu = cpu_per_op(pids, &before, &created);
    let made = (created.ok + created.failed).max(1);
    let a = api.clone();
    let before = cpu_times(pids);
    let replaced = load::run(c, Budget::Time(args.phase()), move |_, n| {
        let a = a.clone();
        async move {
            let name = format!("c{c}-{}", n % made);
            a.replace(&name, &PostParams::default(), &config_map(&name, n + 1))
                .await?;
            Ok(())
        }
    })
    .await;
    let update_cpu = cpu_per_op(pids, &before, &replaced);
    (created, replaced, made, [create_cpu, update_cpu])
}

/// Creates, updates, gets and lists at each concurrency; returns the objects created.
async fn throughput(
    args: &Args,
    client: &kube::Client,
    server_pid: u32,
    report: &mut Report,
) -> anyhow::Result<u64> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS_BENCH);
    let listed: Api<ConfigMap> = Api::namespaced(client.clone(), NS_LIST);
    let mut created = 0;
    for n in 0..LIST_SIZE {
        listed
            .create(&PostParams::default(), &config_map(&format!("item-{n}"), n))
            .await?;
        created += 1;
    }
    let sample = api
        .create(&PostParams::default(), &config_map("size-sample", 0))
        .await?;
    created += 1;
    report.add(
        "api",
        "object_bytes",
        "ConfigMap size as served (JSON)",
        serde_json::to_vec(&sample)?.len() as f64,
        "bytes",
    );
    for &c in &args.clients {
        eprintln!(
            "ConfigMaps with {c} client(s), {} s per phase",
            args.seconds
        );
        let pids = [server_pid];
        let (r, replaced, made, cpu) = create_then_replace(args, &api, c, &pids).await;
        record_cpu(
            report,
            "api",
            &format!("create.c{c}"),
            &format!("creates, {c} clients"),
            &["k1s"],
            &cpu[0],
        );
        record_cpu(
            report,
            "api",
            &format!("update.c{c}"),
            &format!("updates, {c} clients"),
            &["k1s"],
            &cpu[1],
        );
        created += r.ok;
        record_phase(
            report,
            &format!("create.c{c}"),
            &format!("creates, {c} clients"),
            r,
        );
        record_phase(
            report,
            &format!("update.c{c}"),
            &format!("updates, {c} clients"),
            replaced,
        );
        let a = api.clone();
        let r = load::run(c, Budget::Time(args.phase()), move |_, n| {
            let a = a.clone();
            async move {
                a.get(&format!("c{c}-{}", n % made)).await?;
                Ok(())
            }
        })
        .await;
        record_phase(
            report,
            &format!("get.c{c}"),
            &format!("gets, {c} clients"),
            r,
        );
        let l = listed.clone();
        let r = load::run(c, Budget::Time(args.phase()), move |_, _| {
            let l = l.clone();
            async move {
                // The namespace also holds its kube-root-ca.crt, published by a controller.
                let items = l
                    .list(&ListParams::default())
                    .await?
                    .items
                    .iter()
                    .filter(|cm| {
                        cm.metadata
                            .name
                            .as_deref()
                            .is_some_and(|n| n.starts_with("item-"))
                    })
                    .count() as u64;
                anyhow::ensure!(items == LIST_SIZE, "listed {items} of {LIST_SIZE}");
                Ok(())
            }
        })
        .await;
        record_phase(
            report,
            &format!("list.c{c}"),
            &format!("lists of {LIST_SIZE}, {c} clients"),
            r,
        );
    }
    Ok(created)
}

/// Creates objects until the server holds at least `args.objects`: 10k (or all, when
/// fewer) in one namespace for the 10k list, the rest in another. Returns how many it
/// created.
async fn fill(
    args: &Args,
    client: &kube::Client,
    held: u64,
    report: &mut Report,
) -> anyhow::Result<u64> {
    let ten_k = args.objects.min(10_000);
    let bulk = args.objects.saturating_sub(held + ten_k);
    eprintln!(
        "filling to {} objects ({} creates, 64 clients)",
        (held + ten_k + bulk).max(args.objects),
        ten_k + bulk
    );
    let started = Instant::now();
    let mut made = 0;
    for (ns, count) in [(NS_10K, ten_k), (NS_BULK, bulk)] {
        if count == 0 {
            continue;
        }
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let r = load::run(64, Budget::Ops(count), move |_, n| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &config_map(&format!("obj-{n}"), n))
                    .await?;
                Ok(())
            }
        })
        .await;
        anyhow::ensure!(r.failed == 0, "{} creates failed while filling", r.failed);
        made += r.ok;
    }
    if args.runs(Part::Api) && made > 0 {
        report.add(
            "api",
            "fill.per_s",
            &format!("creates/s filling to {} objects, 64 clients", held + made),
            made as f64 / started.elapsed().as_secs_f64(),
            "ops/s",
        );
    }
    Ok(made)
}

/// Times full lists of 10k objects and of every ConfigMap (median of three).
async fn lists(client: &kube::Client, report: &mut Report) -> anyhow::Result<()> {
    for (key, path) in [
        (
            "list_10k",
            format!("/api/v1/namespaces/{NS_10K}/configmaps"),
        ),
        ("list_all", "/api/v1/configmaps".to_string()),
    ] {
        let mut times = Latencies::default();
        let mut items = 0;
        for _ in 0..3 {
            let started = Instant::now();
            let body = client
                .request_text(http::Request::get(&path).body(Vec::new())?)
                .await?;
            times.push(started.elapsed());
            let list: serde_json::Value = serde_json::from_str(&body)?;
            items = list["items"].as_array().map_or(0, Vec::len);
        }
        report.add_ms(
            "api",
            &format!("{key}_ms"),
            &format!("list of {items} ConfigMaps (one request)"),
            times.quantile(0.5),
        );
    }
    Ok(())
}

/// Watchers kept open until dropped.
pub struct Watchers(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Watchers {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Opens `args.watchers` watches, then times how long one change takes to reach all.
async fn fan_out(
    args: &Args,
    client: &kube::Client,
    report: &mut Report,
) -> anyhow::Result<Watchers> {
    let count = args.watchers;
    eprintln!("opening {count} watches");
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS_FANOUT);
    let rv = api
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let ready = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let (api, rv, ready, tx) = (api.clone(), rv.clone(), ready.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(stream) = api.watch(&WatchParams::default().timeout(290), &rv).await else {
                return;
            };
            ready.fetch_add(1, Ordering::SeqCst);
            let mut stream = stream.boxed();
            while let Ok(Some(event)) = stream.try_next().await {
                if let WatchEvent::Added(cm) = event
                    && let Some(round) = cm
                        .metadata
                        .name
                        .as_deref()
                        .and_then(|n| n.strip_prefix("fanout-"))
                        .and_then(|r| r.parse().ok())
                {
                    let _ = tx.send((round, Instant::now()));
                }
            }
        }));
    }
    let watchers = Watchers(tasks);
    let deadline = Instant::now() + Duration::from_secs(120);
    while ready.load(Ordering::SeqCst) < count {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {count} watches opened in 120 s (raise `ulimit -n`?)",
            ready.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut all = Latencies::default();
    let mut each = Latencies::default();
    for round in 0..FANOUT_ROUNDS {
        let started = Instant::now();
        api.create(
            &PostParams::default(),
            &config_map(&format!("fanout-{round}"), 0),
        )
        .await?;
        let mut seen = 0;
        let mut last = Duration::ZERO;
        while seen < count {
            let (r, at) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
                .await
                .context("watchers stopped seeing events")?
                .context("every watcher ended")?;
            if r != round {
                continue;
            }
            seen += 1;
            let d = at.saturating_duration_since(started);
            each.push(d);
            last = last.max(d);
        }
        all.push(last);
    }
    report.add_ms(
        "api",
        "watch_fanout_all_ms",
        &format!("watch fan-out: one change seen by all {count} watchers"),
        all.quantile(0.5),
    );
    report.add_ms(
        "api",
        "watch_fanout_p50_ms",
        "watch fan-out: median watcher",
        each.quantile(0.5),
    );
    Ok(watchers)
}

/// etcd puts/s at each concurrency, and the k1s ÷ etcd ratios.
pub async fn etcd_comparison(args: &Args, dir: &Path, report: &mut Report) -> anyhow::Result<()> {
    eprintln!("starting etcd");
    let etcd = Etcd::start(&args.etcd, &dir.join("etcd")).await?;
    let client = etcd.client().await?;
    let size = report.get("object_bytes").unwrap_or(600.0) as usize;
    let value = vec![b'v'; size];
    for &c in &args.clients {
        eprintln!("etcd puts with {c} client(s)");
        let (kv, value) = (client.kv_client(), value.clone());
        let before = cpu_times(&[etcd.pid()]);
        let mut r = load::run(c, Budget::Time(args.phase()), move |_, n| {
            let (mut kv, value) = (kv.clone(), value.clone());
            async move {
                kv.put(format!("/registry/configmaps/bench/c{c}-{n}"), value, None)
                    .await?;
                Ok(())
            }
        })
        .await;
        let cpu = cpu_per_op(&[etcd.pid()], &before, &r);
        record_cpu(
            report,
            "etcd",
            &format!("put.c{c}"),
            &format!("etcd puts, {c} clients"),
            &["etcd"],
            &cpu,
        );
        let rate = r.rate();
        report.add(
            "etcd",
            &format!("put.c{c}.per_s"),
            &format!("etcd puts/s, {c} clients ({size} B values)"),
            rate,
            "ops/s",
        );
        report.add_ms(
            "etcd",
            &format!("put.c{c}.p50_ms"),
            &format!("etcd put p50, {c} clients"),
            r.latencies.quantile(0.5),
        );
        report.add_ms(
            "etcd",
            &format!("put.c{c}.p99_ms"),
            &format!("etcd put p99, {c} clients"),
            r.latencies.quantile(0.99),
        );
        for (op, what) in [("create", "creates"), ("update", "updates")] {
            if let Some(k1s) = report.get(&format!("{op}.c{c}.per_s")) {
                report.add(
                    "etcd",
                    &format!("ratio.{op}.c{c}"),
                    &format!("k1s API {what}/s / etcd puts/s, {c} clients"),
                    k1s / rate.max(1e-9),
                    "ratio",
                );
            }
        }
    }
    let mem = proc::memory(etcd.pid())?;
    report.add_mib("etcd", "etcd.rss_mib", "etcd RSS after the puts", mem.rss);
    Ok(())
}

/// k1s on etcd: creates and updates through a k1s server whose datastore is an etcd of its
/// own (the etcd comparison's is full of raw keys), beside the raw puts measured before.
pub async fn k1s_on_etcd(args: &Args, dir: &Path, report: &mut Report) -> anyhow::Result<()> {
    eprintln!("starting etcd and a k1s server on it");
    let etcd = Etcd::start(&args.etcd, &dir.join("etcd-k1s")).await?;
    let mut server = Server::new(&args.k1s, dir.join("k1s-etcd"))?
        .with_args(&["--datastore-endpoint", &etcd.endpoint]);
    server.start().await?;
    let client = server.client().await?;
    ensure_namespace(&client, NS_BENCH).await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS_BENCH);
    let section = "etcd_backend";
    for &c in &args.clients {
        eprintln!("k1s on etcd: ConfigMaps with {c} client(s)");
        let pids = [server.pid()?, etcd.pid()];
        let (created, replaced, _, cpu) = create_then_replace(args, &api, c, &pids).await;
        let names = ["k1s", "etcd"];
        record_cpu(
            report,
            section,
            &format!("etcd_backend.create.c{c}"),
            &format!("k1s on etcd: creates, {c} clients"),
            &names,
            &cpu[0],
        );
        record_cpu(
            report,
            section,
            &format!("etcd_backend.update.c{c}"),
            &format!("k1s on etcd: updates, {c} clients"),
            &names,
            &cpu[1],
        );
        record_phase_in(
            report,
            section,
            &format!("etcd_backend.create.c{c}"),
            &format!("k1s on etcd: creates, {c} clients"),
            created,
        );
        record_phase_in(
            report,
            section,
            &format!("etcd_backend.update.c{c}"),
            &format!("k1s on etcd: updates, {c} clients"),
            replaced,
        );
        for op in ["create", "update"] {
            let puts = report.get(&format!("put.c{c}.per_s"));
            let k1s = report.get(&format!("etcd_backend.{op}.c{c}.per_s"));
            if let (Some(puts), Some(k1s)) = (puts, k1s) {
                report.add(
                    section,
                    &format!("etcd_backend.ratio.{op}.c{c}"),
                    &format!(
                        "k1s on etcd {op}s/s / raw etcd puts/s, {c} clients (target ≥ 0.8 at 64)"
                    ),
                    k1s / puts.max(1e-9),
                    "ratio",
                );
            }
        }
    }
    drop(client);
    server.stop()?;
    drop(etcd);
    Ok(())
}

/// Leases renewed and node status written, `args.churn_writes` times in all: database and
/// WAL size against live data over time, and the slowest write.
pub async fn storage_churn(args: &Args, dir: &Path, report: &mut Report) -> anyhow::Result<()> {
    let mut server = Server::new(&args.k1s, dir.join("churn"))?;
    server.start().await?;
    let client = server.client().await?;
    ensure_namespace(&client, "churn").await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "churn");
    let nodes: Api<Node> = Api::all(client.clone());
    for i in 0..CHURNED {
        let lease: Lease = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("node-{i}")},
            "spec": {"holderIdentity": format!("node-{i}"), "leaseDurationSeconds": 40},
        }))?;
        leases.create(&PostParams::default(), &lease).await?;
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("node-{i}"), "labels": {"kubernetes.io/hostname": format!("node-{i}")}},
        }))?;
        nodes.create(&PostParams::default(), &node).await?;
    }
    eprintln!(
        "churn: {} lease renewals and node status updates, 8 clients",
        args.churn_writes
    );
    let chunk = (args.churn_writes / CHURN_SAMPLES).max(1);
    let mut done = 0;
    let mut worst = Duration::ZERO;
    let mut all = Latencies::default();
    let mut peak_disk = 0u64;
    let mut series = Vec::new();
    let started = Instant::now();
    while done < args.churn_writes {
        let this = chunk.min(args.churn_writes - done);
        let base = done;
        let (l, nd) = (leases.clone(), nodes.clone());
        let mut r = load::run(8, Budget::Ops(this), move |_, n| {
            let (l, nd) = (l.clone(), nd.clone());
            let n = base + n;
            async move {
                let name = format!("node-{}", (n / 2) % CHURNED);
                if n % 2 == 0 {
                    let renew = micro_time(n);
                    let patch = serde_json::json!({"spec": {"renewTime": renew}});
                    l.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                } else {
                    let patch = serde_json::json!({"status": {"conditions": [{
                        "type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": format!("heartbeat {n}"),
                        "lastHeartbeatTime": time(n),
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }]}});
                    nd.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                }
                Ok(())
            }
        })
        .await;
        anyhow::ensure!(r.failed == 0, "{} churn writes failed", r.failed);
        done += this;
        worst = worst.max(r.latencies.max());
        let p99 = r.latencies.quantile(0.99);
        all.extend(r.latencies);
        let (db, wal) = server.database_bytes();
        let live = live_bytes(&leases, &nodes).await?;
        peak_disk = peak_disk.max(db + wal);
        series.push(serde_json::json!({
            "writes": done, "db_bytes": db, "wal_bytes": wal, "live_bytes": live,
            "p99_ms": p99.as_secs_f64() * 1000.0,
        }));
        eprintln!(
            "  {done} writes: database {:.1} MiB + WAL {:.1} MiB, live {:.2} MiB, p99 {:.1} ms",
            db as f64 / 1048576.0,
            wal as f64 / 1048576.0,
            live as f64 / 1048576.0,
            p99.as_secs_f64() * 1000.0
        );
    }
    let elapsed = started.elapsed();
    let (db, wal) = server.database_bytes();
    let live = live_bytes(&leases, &nodes).await?;
    report.add(
        "storage",
        "churn.per_s",
        &format!("churn writes/s ({} writes)", args.churn_writes),
        args.churn_writes as f64 / elapsed.as_secs_f64(),
        "ops/s",
    );
    report.add_mib("storage", "churn.live_mib", "live data (200 objects)", live);
    report.add_mib("storage", "churn.db_mib", "database at the end", db);
    report.add_mib("storage", "churn.wal_mib", "WAL at the end", wal);
    report.add(
        "storage",
        "churn.db_over_live",
        "database / live data, end",
        db as f64 / live.max(1) as f64,
        "ratio",
    );
    report.add_mib(
        "storage",
        "churn.peak_disk_mib",
        "database + WAL, largest sample",
        peak_disk,
    );
    report.add(
        "storage",
        "churn.disk_over_live",
        "database + WAL / live data, end",
        (db + wal) as f64 / live.max(1) as f64,
        "ratio",
    );
    report.add_ms(
        "storage",
        "churn.p99_ms",
        "churn write p99",
        all.quantile(0.99),
    );
    report.add_ms("storage", "churn.worst_ms", "worst write stall", worst);
    report.series = series;
    server.stop()?;
    Ok(())
}

/// A Time (seconds) for write `n`: one write per second of a day.
fn time(n: u64) -> String {
    format!(
        "2026-01-01T{:02}:{:02}:{:02}Z",
        (n / 3600) % 24,
        (n / 60) % 60,
        n % 60
    )
}

/// A MicroTime that differs for every `n`.
fn micro_time(n: u64) -> String {
    format!("{}.{:06}Z", time(n).trim_end_matches('Z'), n % 1_000_000)
}

/// Bytes of the churned objects as served.
async fn live_bytes(leases: &Api<Lease>, nodes: &Api<Node>) -> anyhow::Result<u64> {
    let mut total = 0;
    for l in leases.list(&ListParams::default()).await?.items {
        total += serde_json::to_vec(&l)?.len() as u64;
    }
    for n in nodes.list(&ListParams::default()).await?.items {
        total += serde_json::to_vec(&n)?.len() as u64;
    }
    Ok(total)
}

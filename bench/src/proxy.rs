//! The network part's Service proxy figures: the time for the proxy (the `k1s-net` crate,
//! as `k1s server` runs it on its agent) to program 1000 and then 10 000 Services with
//! their EndpointSlices into a fresh nftables table, from its start to the transaction
//! applied, and the time for one endpoint's readiness change to reach the kernel with
//! 10 000 Services present, from the API write to the applied transaction. Needs root
//! (nftables); the table has a name of its own and is removed afterwards.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::report::{Latencies, Report};

/// Namespace of the benchmark's Services.
const NS: &str = "proxybench";
/// Readiness changes measured with 10 000 Services.
const CHANGES: usize = 10;

/// Whether this process may program nftables.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The slice of Service `i`: two endpoints, the second ready or not.
fn slice(i: usize, second_ready: bool) -> serde_json::Value {
    let ip = |net: u8| format!("10.{net}.{}.{}", i / 250, i % 250 + 1);
    serde_json::json!({
        "metadata": {"name": format!("svc-{i}-1"), "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [ip(200)], "conditions": {"ready": true}},
            {"addresses": [ip(201)], "conditions": {"ready": second_ready}}
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    })
}

/// Creates Services `from..to`, each with its slice, 16 requests at a time.
async fn create(client: &kube::Client, from: usize, to: usize) -> anyhow::Result<()> {
    let svcs: Api<Service> = Api::namespaced(client.clone(), NS);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(from..to)
        .map(|i| {
            let (svcs, slices) = (svcs.clone(), slices.clone());
            async move {
                let svc: Service = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("svc-{i}")},
                    "spec": {"ports": [{"name": "http", "port": 80}]}
                }))?;
                svcs.create(&PostParams::default(), &svc).await?;
                let s: EndpointSlice = serde_json::from_value(slice(i, true))?;
                slices.create(&PostParams::default(), &s).await?;
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

/// A proxy on its own table, stopped (and its table removed) when dropped.
struct Proxy {
    table: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    synced: UnboundedReceiver<k1s_net::proxy::Synced>,
}

impl Proxy {
    fn start(client: &kube::Client, table: &str) -> Self {
        let (tx, synced) = tokio::sync::mpsc::unbounded_channel();
        let mut config = k1s_net::proxy::ProxyConfig::new("10.42.0.0/16".parse().ok());
        config.table = table.to_owned();
        config.synced = Some(tx);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let client = client.clone();
        let task = tokio::spawn(async move {
            let done = async move {
                let _ = stopped.await;
            };
            if let Err(e) = k1s_net::proxy::run(client, config, done).await {
                eprintln!("network: the service proxy failed: {e}");
            }
        });
        Self {
            table: table.to_owned(),
            stop: Some(stop),
            task: Some(task),
            synced,
        }
    }

    /// The next sync, within `limit`.
    async fn next(&mut self, limit: Duration) -> anyhow::Result<k1s_net::proxy::Synced> {
        match tokio::time::timeout(limit, self.synced.recv()).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => bail!("the service proxy stopped"),
            Err(_) => bail!("the service proxy did not sync within {limit:?}"),
        }
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        k1s_net::proxy::cleanup(&self.table)
            .await
            .context("removing the benchmark's proxy table")
    }
}

/// Counts the elements of the table's `service-ips` map.
fn service_ips(table: &str) -> anyhow::Result<usize> {
    let out = std::process::Command::new("nft")
        .args(["list", "map", "ip", table, "service-ips"])
        .output()
        .context("nft")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .matches(" : goto ")
        .count())
}

/// Times a fresh proxy programming every Service now in the API: start to applied.
async fn program(
    client: &kube::Client,
    table: &str,
    n: usize,
) -> anyhow::Result<(Duration, Duration, Proxy)> {
    let started = Instant::now();
    let mut proxy = Proxy::start(client, table);
    let first = proxy.next(Duration::from_secs(300)).await?;
    let took = started.elapsed();
    anyhow::ensure!(first.full, "the first sync was not a full one");
    let have = service_ips(table)?;
    anyhow::ensure!(
        have >= n,
        "the table holds {have} Service addresses, not {n}"
    );
    Ok((took, first.elapsed, proxy))
}

/// The Service proxy figures, against the running benchmark server's `client`.
pub async fn service_proxy(client: &kube::Client, report: &mut Report) -> anyhow::Result<()> {
    if !is_root() {
        eprintln!("network: the service proxy figures are NOT taken: they need root (nftables)");
        return Ok(());
    }
    eprintln!("network: the service proxy programming 1000 and 10 000 Services");
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": NS}}))?,
    )
    .await?;
    let table = format!("k1s-bench-proxy-{}", std::process::id());
    create(client, 0, 1000).await?;
    let (t1k, nft1k, proxy) = program(client, &table, 1000).await?;
    proxy.stop().await?;
    create(client, 1000, 10_000).await?;
    let (t10k, nft10k, mut proxy) = program(client, &table, 10_000).await?;

    // Readiness changes of one endpoint, one at a time: API write to applied.
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    let mut lat = Latencies::default();
    let mut nft = Latencies::default();
    let result = async {
        for k in 0..CHANGES {
            let i = 4242 + k;
            tokio::time::sleep(Duration::from_millis(300)).await;
            while proxy.synced.try_recv().is_ok() {}
            let started = Instant::now();
            slices
                .patch(
                    &format!("svc-{i}-1"),
                    &PatchParams::default(),
                    &Patch::Merge(&slice(i, false)),
                )
                .await?;
            let s = proxy.next(Duration::from_secs(30)).await?;
            lat.push(started.elapsed());
            nft.push(s.elapsed);
            anyhow::ensure!(
                !s.full && s.services == 1,
                "a change synced {} Services",
                s.services
            );
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    proxy.stop().await?;
    result?;

    report.add_ms(
        "network",
        "network.proxy.program_1k_ms",
        "Service proxy: program 1000 Services (start to applied)",
        t1k,
    );
    report.add_ms(
        "network",
        "network.proxy.program_1k_nft_ms",
        "  of which the rules and nft transaction",
        nft1k,
    );
    report.add_ms(
        "network",
        "network.proxy.program_10k_ms",
        "Service proxy: program 10 000 Services (start to applied)",
        t10k,
    );
    report.add_ms(
        "network",
        "network.proxy.program_10k_nft_ms",
        "  of which the rules and nft transaction",
        nft10k,
    );
    report.add_ms(
        "network",
        "network.proxy.change_10k_p50_ms",
        "Service proxy: one endpoint change with 10 000 Services, API write to applied, p50",
        lat.quantile(0.5),
    );
    report.add_ms(
        "network",
        "network.proxy.change_10k_max_ms",
        "  the same, worst of 10",
        lat.max(),
    );
    report.add_ms(
        "network",
        "network.proxy.change_10k_nft_ms",
        "  of which the rules and nft transaction, p50",
        nft.quantile(0.5),
    );
    Ok(())
}

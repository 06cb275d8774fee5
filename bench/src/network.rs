//! The network part: cluster DNS queries/s and p99 with `dnsperf`, against `dnsmasq`
//! (the kube-dns of old) serving the same names from a hosts file, side by side on this
//! machine, one after the other with the same query file and load; then the ingress
//! against nginx (see [`crate::ingress`]) and the Service proxy (see [`crate::proxy`]).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::Api;
use kube::api::PostParams;

use crate::report::{Latencies, Report};
use crate::server::Server;
use crate::{Args, proc};

/// Namespace of the benchmark's Services.
const NS: &str = "dnsbench";

/// A loopback port free for UDP and TCP.
fn free_port() -> anyhow::Result<u16> {
    for _ in 0..50 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = udp.local_addr()?.port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port")
}

/// What one dnsperf run measured.
struct Run {
    per_s: f64,
    p50: Duration,
    p99: Duration,
    lost: u64,
}

/// Runs dnsperf against 127.0.0.1:`port` for `seconds`; latencies from its verbose lines.
fn dnsperf(queries: &Path, port: u16, seconds: u64) -> anyhow::Result<Run> {
    let out = Command::new("dnsperf")
        .args(["-s", "127.0.0.1", "-p", &port.to_string(), "-d"])
        .arg(queries)
        .args([
            "-l",
            &seconds.to_string(),
            "-c",
            "4",
            "-q",
            "64",
            "-t",
            "2",
            "-v",
        ])
        .stderr(Stdio::null())
        .output()
        .context("cannot run dnsperf (apt-get install dnsperf)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lat = Latencies::default();
    let mut per_s = None;
    let mut lost = 0;
    for line in text.lines() {
        // Verbose lines: `> NOERROR name A 0.000123`.
        if let Some(rest) = line.strip_prefix("> ") {
            if let Some(secs) = rest
                .split_whitespace()
                .last()
                .and_then(|s| s.parse::<f64>().ok())
            {
                lat.push(Duration::from_secs_f64(secs));
            }
        } else if let Some(v) = line.trim().strip_prefix("Queries per second:") {
            per_s = v.trim().parse::<f64>().ok();
        } else if let Some(v) = line.trim().strip_prefix("Queries lost:") {
            lost = v
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    let per_s = per_s.with_context(|| format!("dnsperf printed no rate:\n{text}"))?;
    Ok(Run {
        per_s,
        p50: lat.quantile(0.5),
        p99: lat.quantile(0.99),
        lost,
    })
}

/// Creates `n` ClusterIP Services; their names and cluster IPs.
async fn services(client: &kube::Client, n: usize) -> anyhow::Result<Vec<(String, String)>> {
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": NS}}))?;
    nss.create(&PostParams::default(), &ns).await?;
    let api: Api<Service> = Api::namespaced(client.clone(), NS);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("svc-{i}");
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}]}
        }))?;
        let made = api.create(&PostParams::default(), &svc).await?;
        let ip = made
            .spec
            .and_then(|s| s.cluster_ip)
            .context("Service without a cluster IP")?;
        out.push((name, ip));
    }
    Ok(out)
}

/// A started `k1s server` in memory under `scratch/name`, its cluster DNS on
/// 127.0.0.1:`dns_port`.
async fn start_server(
    args: &Args,
    scratch: &Path,
    name: &str,
    dns_port: u16,
) -> anyhow::Result<Server> {
    let mut server = Server::new(&args.k1s, scratch.join(name))?.with_args(&[
        "--datastore-endpoint",
        "memory://",
        "--dns-listen",
        &format!("127.0.0.1:{dns_port}"),
    ]);
    server.start().await?;
    Ok(server)
}

/// The network part's ingress figure alone, against a server of its own.
pub async fn ingress_only(args: &Args, scratch: &Path, report: &mut Report) -> anyhow::Result<()> {
    let mut server = start_server(args, scratch, "ingress", free_port()?).await?;
    let client = server.client().await?;
    let result =
        crate::ingress::ingress(&client, args.seconds, args.ingress_workers, scratch, report).await;
    server.stop()?;
    result
}

/// The network part.
pub async fn network(args: &Args, scratch: &Path, report: &mut Report) -> anyhow::Result<()> {
    for tool in ["dnsperf", "dnsmasq"] {
        if Command::new(tool).arg("--version").output().is_err() {
            bail!(
                "{tool} is missing: apt-get install dnsperf dnsmasq (scripts/bench does, as root)"
            );
        }
    }
    eprintln!(
        "network: cluster DNS against dnsmasq, dnsperf for {} s each",
        args.seconds
    );
    let k1s_port = free_port()?;
    let mut server = start_server(args, scratch, "network", k1s_port).await?;
    let client = server.client().await?;
    let svcs = services(&client, args.dns_services).await?;
    // Changes are answered within a second (tests/tests/dns.rs); leave two.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut queries = String::new();
    let mut hosts = String::new();
    for (name, ip) in &svcs {
        let fqdn = format!("{name}.{NS}.svc.cluster.local");
        let _ = writeln!(queries, "{fqdn} A");
        let _ = writeln!(hosts, "{ip} {fqdn}");
    }
    let dir = scratch.join("network-files");
    std::fs::create_dir_all(&dir)?;
    let queries_file = dir.join("queries.txt");
    let hosts_file = dir.join("hosts");
    std::fs::write(&queries_file, queries)?;
    std::fs::write(&hosts_file, hosts)?;

    let dnsmasq_port = free_port()?;
    let mut dnsmasq = Command::new("dnsmasq")
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--pid-file=",
            "--cache-size=10000",
            "--local-ttl=5",
        ])
        .arg(format!("--port={dnsmasq_port}"))
        .arg(format!("--addn-hosts={}", hosts_file.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start dnsmasq")?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let seconds = args.seconds.max(2);
    // Warm both (dnsperf's own start-up, dnsmasq's file read), then measure.
    let _ = dnsperf(&queries_file, k1s_port, 1)?;
    let _ = dnsperf(&queries_file, dnsmasq_port, 1)?;
    let pid = server.pid()?;
    let cpu_before = proc::cpu_time(pid)?;
    let k1s = dnsperf(&queries_file, k1s_port, seconds)?;
    let cpu = proc::cpu_time(pid)? - cpu_before;
    let theirs = dnsperf(&queries_file, dnsmasq_port, seconds)?;
    let _ = dnsmasq.kill();
    let _ = dnsmasq.wait();

    let n = svcs.len();
    report.add(
        "network",
        "network.dns.services",
        "DNS: Services (A queries spread over them)",
        n as f64,
        "count",
    );
    report.add(
        "network",
        "network.dns.k1s.per_s",
        "DNS k1s queries/s",
        k1s.per_s,
        "ops/s",
    );
    report.add_ms("network", "network.dns.k1s.p50_ms", "DNS k1s p50", k1s.p50);
    report.add_ms("network", "network.dns.k1s.p99_ms", "DNS k1s p99", k1s.p99);
    report.add(
        "network",
        "network.dns.k1s.cpu",
        "DNS k1s server CPU while loaded",
        cpu.as_secs_f64() / seconds as f64 * 100.0,
        "%",
    );
    report.add(
        "network",
        "network.dns.dnsmasq.per_s",
        "DNS dnsmasq queries/s",
        theirs.per_s,
        "ops/s",
    );
    report.add_ms(
        "network",
        "network.dns.dnsmasq.p50_ms",
        "DNS dnsmasq p50",
        theirs.p50,
    );
    report.add_ms(
        "network",
        "network.dns.dnsmasq.p99_ms",
        "DNS dnsmasq p99",
        theirs.p99,
    );
    report.add(
        "network",
        "network.dns.ratio.per_s",
        "DNS queries/s k1s / dnsmasq (target >= 1.0)",
        k1s.per_s / theirs.per_s.max(1.0),
        "ratio",
    );
    let p99_ratio = k1s.p99.as_secs_f64() / theirs.p99.as_secs_f64().max(1e-6);
    report.add(
        "network",
        "network.dns.ratio.p99",
        "DNS p99 k1s / dnsmasq",
        p99_ratio,
        "ratio",
    );
    if k1s.lost + theirs.lost > 0 {
        report.add(
            "network",
            "network.dns.lost",
            "DNS queries lost (k1s + dnsmasq)",
            (k1s.lost + theirs.lost) as f64,
            "count",
        );
    }
    let ingress =
        crate::ingress::ingress(&client, seconds, args.ingress_workers, scratch, report).await;
    let proxy = match ingress {
        Ok(()) => crate::proxy::service_proxy(&client, report).await,
        Err(e) => Err(e),
    };
    server.stop()?;
    proxy
}

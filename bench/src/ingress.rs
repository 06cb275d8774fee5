//! The network part's ingress figure: requests/s and p99 with `wrk` through the k1s
//! ingress controller, against Debian's nginx configured as the same reverse proxy (HTTP/1.1
//! keep-alive to the backend, the same forwarded headers), both in front of one nginx
//! backend on this host's address, one after the other with the same load (each twice,
//! alternating; the better run of each counts).
//!
//! The controller runs inside this driver (the `k1s-ingress` crate, as `k1s server` runs
//! it on its agent) against the benchmark's `k1s server`, which runs without an agent.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::PostParams;

use crate::proc;
use crate::report::Report;

/// Namespace of the benchmark's Ingress.
const NS: &str = "ingressbench";
/// The Host the Ingress rule and every request name.
const HOST: &str = "bench.example";

fn free_port(ip: IpAddr) -> anyhow::Result<u16> {
    Ok(TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// This host's address on its default route (EndpointSlices refuse loopback addresses).
fn host_address() -> anyhow::Result<IpAddr> {
    let probe = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    probe
        .connect((Ipv4Addr::new(192, 0, 2, 1), 9))
        .context("no route off this host for the ingress backend's address")?;
    let ip = probe.local_addr()?.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        bail!("this host has no address besides loopback for the ingress backend");
    }
    Ok(ip)
}

/// An nginx in the foreground with `http` as its `http {}` block, files under `dir`.
fn nginx(dir: &Path, name: &str, http: &str) -> anyhow::Result<Child> {
    let d = dir.display();
    let conf = format!(
        "worker_processes auto;\ndaemon off;\npid {d}/{name}.pid;\nerror_log {d}/{name}-error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/{name}-body;\n  proxy_temp_path {d}/{name}-proxy;\n  \
         fastcgi_temp_path {d}/{name}-fcgi;\n  uwsgi_temp_path {d}/{name}-uwsgi;\n  scgi_temp_path {d}/{name}-scgi;\n{http}\n}}\n"
    );
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, conf)?;
    Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start nginx (apt-get install nginx)")
}

/// Waits until a GET with the bench Host header answers 200 on `addr`.
async fn wait_ok(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            let req = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).await.is_ok() {
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out).await;
                if out.starts_with(b"HTTP/1.1 200") {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            bail!("{what} on {addr} did not answer 200 within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What one wrk run measured.
struct Run {
    per_s: f64,
    p50: Duration,
    p99: Duration,
    /// Requests answered in the run.
    requests: u64,
}

fn wrk_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// `wrk` (2 threads, 64 connections) against 127.0.0.1:`port` for `seconds`.
fn wrk(port: u16, seconds: u64) -> anyhow::Result<Run> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c64",
            &format!("-d{seconds}s"),
            "--latency",
            "-H",
            &format!("Host: {HOST}"),
            &format!("http://127.0.0.1:{port}/"),
        ])
        .stderr(Stdio::null())
        .output()
        .context("cannot run wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut per_s, mut p50, mut p99, mut requests) = (None, None, None, None);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let first = words.clone().next();
        // `  123456 requests in 5.00s, 17.2MB read`
        if line.contains(" requests in ") {
            requests = first.and_then(|n| n.parse::<u64>().ok());
        }
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(v)) => per_s = v.parse::<f64>().ok(),
            (Some("50%"), Some(v)) => p50 = wrk_duration(v),
            (Some("99%"), Some(v)) => p99 = wrk_duration(v),
            _ => {}
        }
    }
    if text.contains("Non-2xx") {
        bail!("wrk saw answers other than 2xx:\n{text}");
    }
    match (per_s, p50, p99, requests) {
        (Some(per_s), Some(p50), Some(p99), Some(requests)) => Ok(Run {
            per_s,
            p50,
            p99,
            requests,
        }),
        _ => bail!("wrk printed no rate or latencies:\n{text}"),
    }
}

/// CPU time (user + system) of `pid` and its child processes (nginx's workers).
fn tree_cpu(pid: u32) -> anyhow::Result<Duration> {
    let mut total = proc::cpu_time(pid)?;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // The parent's pid is the second field after the parenthesised command name.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            total += proc::cpu_time(child).unwrap_or_default();
        }
    }
    Ok(total)
}

/// A wrk run against `port` and the CPU time per request of the proxy whose CPU time so
/// far `cpu` reads (the backend's and wrk's own are left out: they are the same for both).
fn measured(
    port: u16,
    seconds: u64,
    cpu: &dyn Fn() -> anyhow::Result<Duration>,
) -> anyhow::Result<(Run, Duration)> {
    let before = cpu()?;
    let run = wrk(port, seconds)?;
    let used = cpu()?.saturating_sub(before);
    let per_request = used / u32::try_from(run.requests.max(1)).unwrap_or(u32::MAX);
    Ok((run, per_request))
}

/// The ingress figure, against the running benchmark server's `client`.
pub async fn ingress(
    client: &kube::Client,
    seconds: u64,
    workers: Option<usize>,
    scratch: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    for tool in ["wrk", "nginx"] {
        let ok = Command::new(tool)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !ok {
            bail!("{tool} is missing: apt-get install wrk nginx (scripts/bench does, as root)");
        }
    }
    eprintln!("network: ingress against nginx as a reverse proxy, wrk for {seconds} s each");
    let dir = scratch.join("ingress-files");
    std::fs::create_dir_all(&dir)?;
    let ip = host_address()?;
    let backend_port = free_port(ip)?;
    let backend = SocketAddr::new(ip, backend_port);
    let mut backend_nginx = Kill(nginx(
        &dir,
        "backend",
        &format!(
            "  server {{ listen {backend}; location / {{ return 200 \"hello from the backend\\n\"; }} }}"
        ),
    )?);

    let proxy_port = free_port(Ipv4Addr::LOCALHOST.into())?;
    let proxy_nginx_child = nginx(
        &dir,
        "proxy",
        &format!(
            "  upstream backend {{ server {backend}; keepalive 64; }}\n  \
             server {{ listen 127.0.0.1:{proxy_port};\n    location / {{\n      proxy_pass http://backend;\n      \
             proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_set_header Host $host;\n      \
             proxy_set_header X-Real-IP $remote_addr;\n      proxy_set_header X-Forwarded-For $remote_addr;\n      \
             proxy_set_header X-Forwarded-Proto $scheme;\n      proxy_set_header X-Forwarded-Host $host;\n      \
             proxy_set_header X-Forwarded-Port $server_port;\n    }}\n  }}"
        ),
    )?;
    let nginx_pid = proxy_nginx_child.id();
    let mut proxy_nginx = Kill(proxy_nginx_child);

    // The Ingress, a Service without a selector and its EndpointSlice: the backend.
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": NS}}))?,
    )
    .await?;
    let pp = PostParams::default();
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"ports": [{"name": "http", "port": 80}]}
    }))?;
    Api::<Service>::namespaced(client.clone(), NS)
        .create(&pp, &svc)
        .await?;
    let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": backend_port, "protocol": "TCP"}]
    }))?;
    Api::<EndpointSlice>::namespaced(client.clone(), NS)
        .create(&pp, &slice)
        .await?;
    let ing: Ingress = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"rules": [{"host": HOST, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
    }))?;
    Api::<Ingress>::namespaced(client.clone(), NS)
        .create(&pp, &ing)
        .await?;

    let mut config = k1s_ingress::Config::new(vec![ip]);
    config.http = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0);
    config.https = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0);
    if let Some(n) = workers {
        config.workers = n;
    }
    let listeners = k1s_ingress::Listeners::bind(&config).await?;
    let (http, _) = listeners.local_addrs()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(k1s_ingress::run(
        client.clone(),
        config,
        listeners,
        async move {
            let _ = stopped.await;
        },
    ));

    let result = async {
        wait_ok(backend, "the nginx backend").await?;
        wait_ok(
            SocketAddr::from((Ipv4Addr::LOCALHOST, proxy_port)),
            "nginx as a proxy",
        )
        .await?;
        wait_ok(http, "the k1s ingress").await?;
        let seconds = seconds.max(2);
        // Warm both (connections to the backend, the pools), then measure each twice,
        // alternating, and keep each one's better run: other load on a shared machine
        // weighs on whichever runs while it lasts.
        // CPU time per request is the figure load does not move much: on 2 shared cores
        // it decides the ratio of the rates.
        let own = std::process::id();
        let k1s_cpu = || proc::cpu_time(own);
        let nginx_cpu = || tree_cpu(nginx_pid);
        let _ = wrk(http.port(), 1)?;
        let _ = wrk(proxy_port, 1)?;
        let (mut k1s, mut k1s_cpu_req) = measured(http.port(), seconds, &k1s_cpu)?;
        let (mut theirs, mut theirs_cpu_req) = measured(proxy_port, seconds, &nginx_cpu)?;
        let (theirs2, theirs2_cpu_req) = measured(proxy_port, seconds, &nginx_cpu)?;
        let (k1s2, k1s2_cpu_req) = measured(http.port(), seconds, &k1s_cpu)?;
        if k1s2.per_s > k1s.per_s {
            k1s = k1s2;
        }
        if theirs2.per_s > theirs.per_s {
            theirs = theirs2;
        }
        k1s_cpu_req = k1s_cpu_req.min(k1s2_cpu_req);
        theirs_cpu_req = theirs_cpu_req.min(theirs2_cpu_req);
        Ok::<_, anyhow::Error>((k1s, theirs, k1s_cpu_req, theirs_cpu_req))
    }
    .await;
    let _ = stop.send(());
    let _ = controller.await;
    backend_nginx.kill();
    proxy_nginx.kill();
    let (k1s, theirs, k1s_cpu_req, theirs_cpu_req) = result?;

    report.add(
        "network",
        "network.ingress.k1s.per_s",
        "Ingress k1s requests/s",
        k1s.per_s,
        "ops/s",
    );
    report.add_ms(
        "network",
        "network.ingress.k1s.p50_ms",
        "Ingress k1s p50",
        k1s.p50,
    );
    report.add_ms(
        "network",
        "network.ingress.k1s.p99_ms",
        "Ingress k1s p99",
        k1s.p99,
    );
    report.add(
        "network",
        "network.ingress.nginx.per_s",
        "Ingress nginx requests/s",
        theirs.per_s,
        "ops/s",
    );
    report.add_ms(
        "network",
        "network.ingress.nginx.p50_ms",
        "Ingress nginx p50",
        theirs.p50,
    );
    report.add_ms(
        "network",
        "network.ingress.nginx.p99_ms",
        "Ingress nginx p99",
        theirs.p99,
    );
    report.add(
        "network",
        "network.ingress.k1s.cpu_us",
        "Ingress k1s CPU per request (the better of 2 runs)",
        k1s_cpu_req.as_secs_f64() * 1e6,
        "us",
    );
    report.add(
        "network",
        "network.ingress.nginx.cpu_us",
        "Ingress nginx CPU per request (master + workers, the better of 2 runs)",
        theirs_cpu_req.as_secs_f64() * 1e6,
        "us",
    );
    report.add(
        "network",
        "network.ingress.ratio.cpu",
        "Ingress CPU per request k1s / nginx",
        k1s_cpu_req.as_secs_f64() / theirs_cpu_req.as_secs_f64().max(1e-9),
        "ratio",
    );
    report.add(
        "network",
        "network.ingress.ratio.per_s",
        "Ingress requests/s k1s / nginx (target >= 0.9)",
        k1s.per_s / theirs.per_s.max(1.0),
        "ratio",
    );
    report.add(
        "network",
        "network.ingress.ratio.p99",
        "Ingress p99 k1s / nginx",
        k1s.p99.as_secs_f64() / theirs.p99.as_secs_f64().max(1e-6),
        "ratio",
    );
    Ok(())
}

/// A child process killed (and reaped) when dropped or asked.
struct Kill(Child);

impl Kill {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Kill {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_durations() {
        assert_eq!(wrk_duration("250.00us"), Some(Duration::from_micros(250)));
        assert_eq!(wrk_duration("1.50ms"), Some(Duration::from_micros(1500)));
        assert_eq!(wrk_duration("2.00s"), Some(Duration::from_secs(2)));
        assert_eq!(wrk_duration("x"), None);
    }
}

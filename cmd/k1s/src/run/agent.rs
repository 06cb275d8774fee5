//! `k1s agent`: join a server (run/bootstrap.rs), then run this node's parts against it over
//! HTTPS: the kubelet on the embedded containerd, the bridge pod network with the vxlan
//! overlay, and the Service proxy — what `k1s server` runs in-process for its own node.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::agent::AgentArgs;
use crate::run::node::{self, NodeSettings};

/// Most workers the agent's runtime gets: its work is watches, heartbeats and containerd
/// calls, not throughput, and every worker keeps a stack and an allocator heap of its own
/// (a Pi 4 would otherwise get four).
const MAX_WORKERS: usize = 2;

/// Runs the agent until SIGINT or SIGTERM.
pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        // Blocking threads (file I/O, image unpacking) go soon after their work.
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .enable_all()
        .thread_name("k1s-agent")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

/// The server's host and port from `--server`.
fn server_host(url: &str) -> anyhow::Result<(String, u16)> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("invalid --server {url:?}: expected https://HOST:PORT"))?;
    if uri.scheme_str() != Some("https") {
        bail!("invalid --server {url:?}: expected https://HOST:PORT");
    }
    let host = uri
        .host()
        .with_context(|| format!("invalid --server {url:?}: no host"))?
        .trim_matches(['[', ']'])
        .to_string();
    Ok((host, uri.port_u16().unwrap_or(6443)))
}

/// The address the kernel would use to reach the server (no packet is sent).
fn address_towards(host: &str, port: u16) -> Option<IpAddr> {
    let target = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .ok()?
        .find(|a| a.is_ipv4())?;
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect(target).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

fn token(args: &AgentArgs) -> anyhow::Result<String> {
    if let Some(t) = &args.token {
        return Ok(t.trim().to_string());
    }
    if let Some(path) = &args.token_file {
        return std::fs::read_to_string(path)
            .map(|t| t.trim().to_string())
            .with_context(|| format!("cannot read --token-file {}", path.display()));
    }
    bail!(
        "--token or --token-file is required to join a server (the server's <data-dir>/server/token)"
    )
}

async fn serve(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args
        .process
        .data_dir
        .clone()
        .unwrap_or_else(super::server::default_data_dir);
    super::server::prepare_data_dir(&data_dir)?;
    let token = token(&args)?;
    let (host, port) = server_host(&args.server)?;
    let node_name = args
        .node
        .node_name
        .clone()
        .unwrap_or_else(super::server::host_name);
    let node_ip = match args.node.node_ip {
        Some(ip) => ip,
        None => address_towards(&host, port)
            .with_context(|| format!("no route to the server {host}:{port}; give --node-ip"))?,
    };
    let IpAddr::V4(node_ipv4) = node_ip else {
        bail!("--node-ip must be an IPv4 address");
    };
    // Bad node flags are refused before joining.
    let settings = NodeSettings::from_flags(&args.node)?;

    let agent_dir = data_dir.join("agent");
    let creds =
        super::bootstrap::obtain(&args.server, &token, &agent_dir, &node_name, node_ip).await?;
    tracing::info!(server = %args.server, node = %node_name, "joined the cluster");

    let started = node::start_runtime(&args.node, &data_dir).await?;
    node::import_airgap_images(&started.runtime, &data_dir).await;

    let listener = node::bind_kubelet(args.node.kubelet_port).await?;
    let kubelet_port = listener.1;
    let ca_der = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(creds.ca_pem.as_bytes())
            .context("the server's CA is not a PEM certificate")?
    };
    let tls = k1s_pki::kubelet_server_tls_config(&ca_der, &creds.serving.0, &creds.serving.1)
        .context("cannot use the kubelet's serving certificate")?;
    let kubelet = node::Kubelet::new(
        &args.node, &settings, &node_name, node_ip, &data_dir, listener, tls,
    );

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = move || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut tasks = vec![kubelet.spawn(
        creds.node.clone(),
        started.runtime,
        &settings,
        &data_dir,
        wait(),
    )];
    if settings.overlay {
        tasks.push(node::spawn_overlay(
            creds.node.clone(),
            &args.node,
            &node_name,
            node_ipv4,
            wait(),
        ));
    }
    if !args.node.disable_kube_proxy {
        tasks.push(node::spawn_proxy(
            creds.proxy.clone(),
            &args.node,
            &node_name,
            Some(settings.cluster_cidr),
            wait(),
        ));
    }
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    }
    tracing::info!(node = %node_name, %node_ip, kubelet_port, "k1s agent is running");
    super::server::shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    for t in tasks {
        let _ = t.await;
    }
    if let Some(s) = started.supervisor {
        s.stop().await;
    }
    Ok(ExitCode::SUCCESS)
}

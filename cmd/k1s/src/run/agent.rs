//! `k1s agent`: join a server (run/bootstrap.rs), then run this node's parts against it over
//! HTTPS: the kubelet on the embedded containerd, the bridge pod network with the vxlan
//! overlay, and the Service proxy — what `k1s server` runs in-process for its own node.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::cli::agent::AgentArgs;

/// Runs the agent until SIGINT or SIGTERM.
pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
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
        .data_dir
        .clone()
        .unwrap_or_else(super::server::default_data_dir);
    super::server::prepare_data_dir(&data_dir)?;
    let token = token(&args)?;
    let (host, port) = server_host(&args.server)?;
    let node_name = args
        .node_name
        .clone()
        .unwrap_or_else(super::server::host_name);
    let node_ip = match args.node_ip {
        Some(ip) => ip,
        None => address_towards(&host, port)
            .with_context(|| format!("no route to the server {host}:{port}; give --node-ip"))?,
    };
    let IpAddr::V4(node_ipv4) = node_ip else {
        bail!("--node-ip must be an IPv4 address");
    };
    let cluster_cidr = match args.cluster_cidr {
        ipnet::IpNet::V4(net) => net,
        ipnet::IpNet::V6(_) => bail!("the agent needs an IPv4 --cluster-cidr"),
    };
    let bridge = args.bridge_name.clone();
    if bridge.is_empty() || bridge.len() > 15 {
        bail!("--bridge-name {bridge:?} must have 1 to 15 characters");
    }
    let eviction = k1s_kubelet::eviction::Config::k3s(&args.kubelet_arg)
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let agent_dir = data_dir.join("agent");
    let creds =
        super::bootstrap::obtain(&args.server, &token, &agent_dir, &node_name, node_ip).await?;
    tracing::info!(server = %args.server, node = %node_name, "joined the cluster");

    let endpoint = args
        .container_runtime_endpoint
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let started = k1s_kubelet::containerd::start(&data_dir, endpoint.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime = started.runtime;
    let images = k1s_kubelet::containerd::airgap_images_dir(&data_dir);
    let imported = k1s_kubelet::containerd::images::import_dir(&runtime, &images).await;
    if !imported.is_empty() {
        tracing::info!(images = ?imported, "imported airgap images");
    }

    let listener = tokio::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, args.kubelet_port))
        .await
        .with_context(|| format!("cannot listen on the kubelet port {}", args.kubelet_port))?;
    let kubelet_port = listener
        .local_addr()
        .context("the kubelet listener has no address")?
        .port();
    let ca_der = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(creds.ca_pem.as_bytes())
            .context("the server's CA is not a PEM certificate")?
    };
    let tls = k1s_pki::kubelet_server_tls_config(&ca_der, &creds.serving.0, &creds.serving.1)
        .context("cannot use the kubelet's serving certificate")?;

    let mut config = k1s_kubelet::Config::new(
        &node_name,
        node_ip,
        agent_dir.join("kubelet"),
        args.pod_log_dir.clone(),
    );
    config.cluster_dns = vec![args.cluster_dns];
    config.cluster_domain = args.cluster_domain.clone();
    config.kubelet_port = kubelet_port;
    config.eviction = eviction;
    if args.container_runtime_endpoint.is_none() {
        config.image_fs_dir = Some(agent_dir.join("containerd"));
    }
    let overlay = args.flannel_backend == "vxlan";
    let network = super::server::bridge_network_factory(
        bridge.clone(),
        cluster_cidr,
        agent_dir.join("net"),
        overlay,
    );
    let runtime: Arc<dyn k1s_kubelet::runtime::ContainerRuntime> = Arc::new(runtime);
    let stats = k1s_kubelet::summary::Sources {
        node_name: config.node_name.clone(),
        root_dir: config.root_dir.clone(),
        log_dir: config.log_dir.clone(),
        image_fs_dir: config.image_fs_dir.clone(),
    };
    let server = k1s_kubelet::server::serve_with_stats(
        k1s_kubelet::server::ServerConfig {
            listener,
            tls,
            authorizer: Default::default(),
        },
        runtime.clone(),
        Some(stats),
    );

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = move || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut tasks = Vec::new();
    let kubelet_client = creds.node.clone();
    let done = wait();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = k1s_kubelet::run(kubelet_client, config, runtime, network, done).await {
            tracing::error!(error = %e, "the kubelet failed");
        }
        server.abort();
    }));
    if overlay {
        let mut vx = k1s_net::vxlan::VxlanConfig::new(node_name.clone(), node_ipv4);
        vx.device = k1s_net::vxlan::device_for_bridge(&bridge);
        vx.port = args.vxlan_port;
        let client = creds.node.clone();
        let done = wait();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = k1s_net::vxlan::run(client, vx, done).await {
                tracing::error!(error = %e, "the vxlan overlay failed");
            }
        }));
    }
    if !args.disable_kube_proxy {
        let mut proxy = k1s_net::proxy::ProxyConfig::new(Some(cluster_cidr));
        proxy.node_name = Some(node_name.clone());
        proxy.table = k1s_net::cleanup::tables_for_bridge(&bridge).proxy;
        let client = creds.proxy.clone();
        let done = wait();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = k1s_net::proxy::run(client, proxy, done).await {
                tracing::error!(error = %e, "service proxy failed");
            }
        }));
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

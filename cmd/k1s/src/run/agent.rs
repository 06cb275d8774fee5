//! `k1s agent`: join a server (run/bootstrap.rs), then run this node's parts against it over
//! HTTPS: the kubelet on the embedded containerd, the bridge pod network with the vxlan
//! overlay, and the Service proxy — what `k1s server` runs in-process for its own node.
//! Every client goes through the API server load balancer ([`k1s_apiserver_lb`]), so the
//! node carries on through another server when the one it uses goes away.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;

use anyhow::{Context, bail};
use futures::StreamExt;
use k1s_apiserver_lb::ApiServerLoadBalancer;
use k8s_openapi::api::core::v1::Endpoints;

use crate::cli::agent::AgentArgs;
use crate::run::node::{self, NodeSettings};

/// Most workers the agent's runtime gets: its work is watches, heartbeats and containerd
/// calls, not throughput, and every worker keeps a stack and an allocator heap of its own
/// (a Pi 4 would otherwise get four).
const MAX_WORKERS: usize = 2;

/// mimalloc's `mi_option_purge_delay` (the `mi_option_e` order of its `mimalloc.h`, v2 and
/// v3 alike); libmimalloc-sys names only some of the options.
#[cfg(feature = "mimalloc")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps the agent's heap to what it uses: no transparent huge pages (a 2 MiB page is resident
/// whole), and freed memory given back to the kernel at once rather than after mimalloc's
/// default 1 s delay, which an agent that allocates in small bursts rarely reaches. Joined
/// agent, release build: anonymous memory 30 → 18 MiB with no pods and 34 → 22 MiB with
/// 10, peak RSS 92 → 64 MiB, idle CPU unchanged. Both are set before the first allocation
/// by `main.rs`'s start-up constructor on glibc targets (set from here, mimalloc's first
/// pages were huge already); this repeats them for the others. The server keeps the
/// defaults: its request load is what they are for (every process also starts with
/// mimalloc's arena eager commit off, see `main.rs`).
fn small_heap() {
    if let Err(e) =
        k1s_kubelet::containerd::supervisor::disable_own_thp(crate::started_thp_disabled())
    {
        tracing::debug!(error = %e, "cannot turn transparent huge pages off");
    }
    tune_allocator_for_agent();
}

/// mimalloc's purge delay 0 for the agent (see [`small_heap`]).
#[allow(unsafe_code)]
pub(crate) fn tune_allocator_for_agent() {
    // SAFETY: mi_option_set only stores the value; mimalloc reads the purge delay each time
    // it schedules a purge, so a change after start-up takes effect from then on.
    #[cfg(feature = "mimalloc")]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0)
    };
}

/// Runs the agent until SIGINT or SIGTERM.
pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    small_heap();
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

/// The servers the `kubernetes` Endpoints lists: every address at every port, `HOST:PORT`.
fn servers_from_endpoints(endpoints: &Endpoints) -> Vec<String> {
    let mut out = Vec::new();
    for subset in endpoints.subsets.iter().flatten() {
        for address in subset.addresses.iter().flatten() {
            let Ok(ip) = address.ip.parse::<IpAddr>() else {
                continue;
            };
            for port in subset.ports.iter().flatten() {
                let Ok(port) = u16::try_from(port.port) else {
                    continue;
                };
                out.push(SocketAddr::new(ip, port).to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Keeps `lb`'s server list to the `kubernetes` Endpoints in `default` (every live API
/// server), read through `client` (which itself goes through `lb`), until `done`.
async fn follow_endpoints(
    lb: ApiServerLoadBalancer,
    client: kube::Client,
    done: impl Future<Output = ()>,
) {
    use kube::runtime::{WatchStreamExt, watcher};
    let api: kube::Api<Endpoints> = kube::Api::namespaced(client, "default");
    let config = watcher::Config::default().fields("metadata.name=kubernetes");
    let stream = watcher(api, config).default_backoff().applied_objects();
    let mut stream = std::pin::pin!(stream);
    let mut done = std::pin::pin!(done);
    loop {
        tokio::select! {
            _ = &mut done => return,
            event = stream.next() => match event {
                Some(Ok(endpoints)) => lb.update(servers_from_endpoints(&endpoints)),
                Some(Err(e)) => tracing::debug!(error = %e, "watching the kubernetes Endpoints"),
                None => return,
            },
        }
    }
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
    // k3s's agent load balancer: every client, the join included, connects to it.
    let lb = ApiServerLoadBalancer::start(
        SocketAddr::new(Ipv4Addr::LOCALHOST.into(), args.lb_server_port),
        &args.server,
        Some(agent_dir.join("etc").join("k1s-agent-load-balancer.json")),
    )
    .await
    .context("cannot start the API server load balancer (--lb-server-port)")?;
    let creds = super::bootstrap::obtain(&lb.local_url(), &token, &agent_dir, &node_name, node_ip)
        .await
        .with_context(|| {
            format!(
                "cannot join through the load balancer {} (to {} and the servers it knows)",
                lb.local_url(),
                args.server
            )
        })?;
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
    // The Service proxy's identity may list the `kubernetes` Endpoints (system:node-proxier).
    let mut tasks = vec![tokio::spawn(follow_endpoints(
        lb.clone(),
        creds.proxy.clone(),
        wait(),
    ))];
    tasks.push(kubelet.spawn(
        creds.node.clone(),
        started.runtime,
        &settings,
        &data_dir,
        wait(),
    ));
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
    // Joining, image import and registration are done by now or run on without it.
    super::startup_pages::shed_soon();
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset};

    #[test]
    fn endpoints_give_every_address_at_every_port() {
        let subset = |ips: &[&str], port: i32| EndpointSubset {
            addresses: Some(
                ips.iter()
                    .map(|ip| EndpointAddress {
                        ip: ip.to_string(),
                        ..EndpointAddress::default()
                    })
                    .collect(),
            ),
            ports: Some(vec![EndpointPort {
                name: Some("https".into()),
                port,
                protocol: Some("TCP".into()),
                ..EndpointPort::default()
            }]),
            ..EndpointSubset::default()
        };
        let endpoints = Endpoints {
            subsets: Some(vec![
                subset(&["10.0.0.2", "10.0.0.1"], 6443),
                subset(&["127.0.0.1", "not an ip"], 7443),
                subset(&["fd00::1"], 6443),
            ]),
            ..Endpoints::default()
        };
        assert_eq!(
            servers_from_endpoints(&endpoints),
            vec![
                "10.0.0.1:6443",
                "10.0.0.2:6443",
                "127.0.0.1:7443",
                "[fd00::1]:6443"
            ]
        );
        assert!(servers_from_endpoints(&Endpoints::default()).is_empty());
    }
}

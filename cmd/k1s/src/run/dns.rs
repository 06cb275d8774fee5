//! The cluster DNS inside `k1s server`: the kube-dns Service, the address, the server.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use k1s_apiserver::ApiServer;
use k1s_apiserver::auth::UserInfo;

use crate::cli::server::ServerArgs;

/// The running DNS server and the address it put on the dummy interface.
pub(crate) struct Dns {
    running: k1s_dns::Running,
    address: Option<k1s_dns::iface::LocalAddress>,
}

/// Whether `--disable` names the cluster DNS (k3s's `coredns`, or `dns`).
pub(crate) fn disabled(args: &ServerArgs) -> bool {
    args.disable
        .iter()
        .any(|c| c.eq_ignore_ascii_case("coredns") || c.eq_ignore_ascii_case("dns"))
}

/// `IP` (port 53) or `IP:PORT`.
pub(crate) fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("invalid address {s:?}: expected IP or IP:PORT"))
}

/// Creates the kube-dns Service and starts serving, unless disabled. Where: the
/// `--dns-listen` addresses, or else (with the agent) `--cluster-dns`:53 on the dummy
/// interface k1s-dns0. A failure is logged: the rest of the server runs on.
pub(crate) async fn start(args: &ServerArgs, api: &Arc<ApiServer>) -> Option<Dns> {
    if disabled(args) {
        return None;
    }
    let client = k1s_apiserver::client::client(
        api.clone(),
        UserInfo::new("system:k1s-dns", ["system:masters".to_string()]),
    );
    if let Err(e) = k1s_dns::kube_dns::ensure(client.clone(), args.node.cluster_dns).await {
        tracing::error!(error = %e, "cannot create the kube-dns Service");
    }
    let mut address = None;
    let listen = if !args.dns_listen.is_empty() {
        args.dns_listen.clone()
    } else if args.disable_agent {
        // No node here: nothing to serve pods on unless addresses are named.
        tracing::info!("cluster DNS not served: no agent and no --dns-listen");
        return None;
    } else {
        match k1s_dns::iface::add_address(&args.dns_interface, args.node.cluster_dns).await {
            Ok(a) => address = Some(a),
            Err(e) => {
                tracing::error!(error = %e, "cluster DNS is off");
                return None;
            }
        }
        vec![SocketAddr::new(args.node.cluster_dns, 53)]
    };
    let mut config = k1s_dns::Config::new(listen);
    config.domain = args.node.cluster_domain.clone();
    config.dns_ip = Some(args.node.cluster_dns);
    match k1s_dns::start(client, config).await {
        Ok(running) => Some(Dns { running, address }),
        Err(e) => {
            tracing::error!(error = %e, "cluster DNS is off");
            if let Some(a) = address {
                a.remove().await;
            }
            None
        }
    }
}

impl Dns {
    /// Stops serving and takes the address off the interface.
    pub(crate) async fn stop(self) {
        self.running.shutdown().await;
        if let Some(a) = self.address {
            a.remove().await;
        }
    }
}

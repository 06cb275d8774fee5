//! k1s cluster DNS: what CoreDNS's `kubernetes` and `forward` plugins answer, as a
//! hickory DNS server fed by watches of Services and EndpointSlices.
//!
//! Names in the cluster zone (`cluster.local`) are answered from the watch cache
//! ([`index::Index`]); PTR queries for Service and endpoint addresses too; everything
//! else goes to the host's resolvers through a caching forwarder ([`forward`]).

pub mod forward;
pub mod iface;
pub mod index;
pub mod kube_dns;
mod server;
mod udp;
mod watch;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

pub use forward::Forwarder;
pub use index::{Answer, Index, Zone};

/// What can stop the DNS server from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster domain is not a DNS name.
    #[error("invalid cluster domain {0:?}: {1}")]
    Domain(String, String),
    /// A listen address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// No listen address was given.
    #[error("no address to listen on")]
    NoListenAddress,
    /// The dummy interface or its address could not be set up.
    #[error("cannot put {ip} on interface {interface}: {message}")]
    Interface {
        /// The interface.
        interface: String,
        /// The address.
        ip: IpAddr,
        /// What went wrong.
        message: String,
    },
}

/// Where the upstream resolvers come from.
#[derive(Debug, Clone)]
pub enum Upstreams {
    /// The `nameserver` lines of a resolv.conf (loopback ones skipped: they may be us).
    ResolvConf(std::path::PathBuf),
    /// These servers (port included).
    Servers(Vec<SocketAddr>),
}

/// How the DNS server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The cluster domain (`cluster.local`).
    pub domain: String,
    /// TTL of answers from the cluster zone (k3s's CoreDNS: 5 s).
    pub ttl: u32,
    /// The cluster DNS Service IP (answered for `ns.dns.<domain>`).
    pub dns_ip: Option<IpAddr>,
    /// Addresses to serve UDP and TCP on. Port 0: one free port, the same for both.
    pub listen: Vec<SocketAddr>,
    /// Where names outside the cluster zone are sent.
    pub upstreams: Upstreams,
}

impl Config {
    /// The defaults k3s's CoreDNS has: `cluster.local`, TTL 5 s, the host's resolv.conf.
    pub fn new(listen: Vec<SocketAddr>) -> Self {
        Self {
            domain: "cluster.local".into(),
            ttl: 5,
            dns_ip: None,
            listen,
            upstreams: Upstreams::ResolvConf("/etc/resolv.conf".into()),
        }
    }
}

/// A running DNS server; stops when dropped or at [`Running::shutdown`].
pub struct Running {
    index: Arc<RwLock<Index>>,
    addrs: Vec<SocketAddr>,
    synced: tokio::sync::watch::Receiver<bool>,
    server: Option<hickory_server::ServerFuture<server::Handler>>,
    udp: Vec<tokio::task::JoinHandle<()>>,
    watches: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The addresses it serves on (UDP and TCP), ports resolved.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The watch cache it answers from.
    pub fn index(&self) -> Arc<RwLock<Index>> {
        self.index.clone()
    }

    /// Waits until both watches delivered their initial lists; false on timeout.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let mut rx = self.synced.clone();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops serving and watching.
    pub async fn shutdown(mut self) {
        self.watches.abort();
        for task in &self.udp {
            task.abort();
        }
        if let Some(mut server) = self.server.take() {
            let _ = server.shutdown_gracefully().await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.watches.abort();
        for task in &self.udp {
            task.abort();
        }
        if let Some(server) = &self.server {
            server.shutdown_token().cancel();
        }
    }
}

/// Starts the DNS server: binds every listen address (UDP and TCP), starts the watches
/// of Services and EndpointSlices through `client`, and serves until shut down.
pub async fn start(client: kube::Client, config: Config) -> Result<Running, Error> {
    if config.listen.is_empty() {
        return Err(Error::NoListenAddress);
    }
    let zone = Zone::new(&config.domain, config.ttl, config.dns_ip)?;
    let index = Arc::new(RwLock::new(Index::new()));
    let upstreams = match &config.upstreams {
        Upstreams::Servers(s) => s.clone(),
        Upstreams::ResolvConf(path) => {
            let own: Vec<IpAddr> = config.listen.iter().map(|a| a.ip()).collect();
            let found = forward::resolv_conf_servers(path, &own);
            if found.is_empty() {
                tracing::warn!(
                    path = %path.display(),
                    "no usable nameserver for names outside the cluster: they answer SERVFAIL"
                );
            }
            found
        }
    };
    let forwarder = (!upstreams.is_empty()).then(|| Arc::new(Forwarder::new(&upstreams)));
    // TCP through hickory's server; UDP through the loops with the answer cache.
    let udp_handler = Arc::new(server::Handler::new(
        index.clone(),
        zone.clone(),
        forwarder.clone(),
    ));
    let cache = Arc::new(udp::AnswerCache::default());
    let handler = server::Handler::new(index.clone(), zone, forwarder);
    let mut srv = hickory_server::ServerFuture::new(handler);
    let mut addrs = Vec::new();
    let mut udp_tasks = Vec::new();
    let sockets = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    for addr in &config.listen {
        let (udp, tcp) = server::bind_pair(*addr, sockets).await?;
        addrs.push(tcp.local_addr().map_err(|e| Error::Bind(*addr, e))?);
        for socket in udp {
            udp_tasks.push(tokio::spawn(udp::serve(
                socket,
                udp_handler.clone(),
                cache.clone(),
            )));
        }
        srv.register_listener(tcp, Duration::from_secs(10));
    }
    let (synced_tx, synced) = tokio::sync::watch::channel(false);
    let watches = tokio::spawn(watch::run(client, index.clone(), synced_tx));
    tracing::info!(listen = ?addrs, upstreams = ?upstreams, domain = %config.domain, "cluster DNS serving");
    Ok(Running {
        index,
        addrs,
        synced,
        server: Some(srv),
        udp: udp_tasks,
        watches,
    })
}

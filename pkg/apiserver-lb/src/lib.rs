//! The agent's client-side load balancer over the API servers (k3s's agent load balancer).
//!
//! An agent's clients (kubelet, Service proxy, overlay) talk to `https://127.0.0.1:<port>`;
//! [`ApiServerLoadBalancer`] accepts there and forwards each TCP connection as it is to
//! one live server, so TLS stays end to end between the client and the server (whose
//! certificate carries 127.0.0.1). Which servers exist it is told by
//! [`ApiServerLoadBalancer::update`] (the agent follows the `kubernetes` Endpoints in
//! `default`, which list every live API server); the server the agent was started with
//! stays the last resort. Connections go to the current server
//! while it accepts them; when it refuses or times out, the next one is tried and becomes
//! current, and the connections still open to the failed one are closed so that their
//! clients (watches above all) reconnect through a live server. The list is saved to a
//! file so that a restarted agent finds the other servers when its `--server` is down.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// How long a connection to one server may take before the next server is tried.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of the load balancer.
#[derive(Debug, thiserror::Error)]
pub enum LbError {
    /// The local listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server URL is not `https://HOST[:PORT]`.
    #[error("invalid server URL {0:?}: expected https://HOST[:PORT]")]
    InvalidUrl(String),
    /// No server accepted a connection.
    #[error("no API server accepted a connection (tried {0})")]
    NoServer(String),
}

/// What is saved between runs, with k3s's field names (`agent/etc/…-load-balancer.json`).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct SavedState {
    #[serde(rename = "ServerURL")]
    server_url: String,
    #[serde(rename = "ServerAddresses")]
    server_addresses: Vec<String>,
}

/// One forwarded connection: the server it goes to and the way to close it.
struct Connection {
    server: String,
    /// Held only to be dropped: that ends the forwarding task's wait on its receiver.
    _close: oneshot::Sender<()>,
}

struct State {
    /// Known servers, `HOST:PORT`, sorted.
    servers: Vec<String>,
    /// The server new connections go to while it accepts them.
    current: Option<String>,
    connections: HashMap<u64, Connection>,
    next_id: u64,
}

struct Inner {
    server_url: String,
    /// `HOST:PORT` of the `--server` URL: tried last when it is not in the list.
    default_server: String,
    state_file: Option<PathBuf>,
    state: Mutex<State>,
}

/// A local TCP listener that forwards each connection to a live API server.
#[derive(Clone)]
pub struct ApiServerLoadBalancer {
    inner: Arc<Inner>,
    local: SocketAddr,
    _accept: Arc<AcceptTask>,
}

/// Stops accepting when the last handle of the balancer is dropped.
struct AcceptTask(tokio::task::AbortHandle);

impl Drop for AcceptTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `HOST:PORT` of an `https://HOST[:PORT][/…]` URL (port 6443 when absent).
pub fn server_address(url: &str) -> Result<String, LbError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| LbError::InvalidUrl(url.into()))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(LbError::InvalidUrl(url.into()));
    }
    // `[v6]:port`, `[v6]`, `host:port` or `host`.
    let has_port = match authority.rfind(']') {
        Some(close) => authority[close..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port {
        let (_, port) = authority.rsplit_once(':').unwrap_or_default();
        port.parse::<u16>()
            .map_err(|_| LbError::InvalidUrl(url.into()))?;
        Ok(authority.to_string())
    } else {
        Ok(format!("{authority}:6443"))
    }
}

impl ApiServerLoadBalancer {
    /// Listens on `listen` and forwards to the server of `server_url`, or to the servers
    /// saved in `state_file` by a run started with the same URL.
    pub async fn start(
        listen: SocketAddr,
        server_url: &str,
        state_file: Option<PathBuf>,
    ) -> Result<Self, LbError> {
        let default_server = server_address(server_url)?;
        let saved = state_file
            .as_deref()
            .and_then(load_state)
            .filter(|s| s.server_url == server_url && !s.server_addresses.is_empty());
        let mut servers = match saved {
            Some(s) => s.server_addresses,
            None => vec![default_server.clone()],
        };
        servers.sort();
        servers.dedup();
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| LbError::Listen {
                addr: listen,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| LbError::Listen {
            addr: listen,
            source,
        })?;
        let inner = Arc::new(Inner {
            server_url: server_url.to_string(),
            default_server,
            state_file,
            state: Mutex::new(State {
                servers,
                current: None,
                connections: HashMap::new(),
                next_id: 0,
            }),
        });
        let accept = tokio::spawn(accept_loop(listener, inner.clone())).abort_handle();
        tracing::info!(%local, servers = ?inner.state.lock().servers, "API server load balancer listening");
        Ok(ApiServerLoadBalancer {
            inner,
            local,
            _accept: Arc::new(AcceptTask(accept)),
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The URL clients use: `https://<local address>`.
    pub fn local_url(&self) -> String {
        format!("https://{}", self.local)
    }

    /// The servers known now, sorted.
    pub fn servers(&self) -> Vec<String> {
        self.inner.state.lock().servers.clone()
    }

    /// The server new connections go to, once one has been reached.
    pub fn current(&self) -> Option<String> {
        self.inner.state.lock().current.clone()
    }

    /// How many connections are being forwarded now.
    pub fn open_connections(&self) -> usize {
        self.inner.state.lock().connections.len()
    }

    /// Replaces the known servers (`HOST:PORT`). An empty list is ignored: a moment with
    /// no live server listed is no reason to forget them. Connections to servers no
    /// longer listed are closed.
    pub fn update(&self, servers: Vec<String>) {
        let mut servers = servers;
        servers.sort();
        servers.dedup();
        if servers.is_empty() {
            return;
        }
        {
            let mut state = self.inner.state.lock();
            if state.servers == servers {
                return;
            }
            tracing::info!(old = ?state.servers, new = ?servers, "API servers changed");
            state.servers = servers.clone();
            // The `--server` address stays usable (it may be a name or a load balancer's
            // address that the Endpoints do not list).
            let kept = |s: &String| servers.contains(s) || *s == self.inner.default_server;
            if state.current.as_ref().is_some_and(|c| !kept(c)) {
                state.current = None;
            }
            state.connections.retain(|_, c| kept(&c.server));
        }
        if let Some(path) = &self.inner.state_file {
            let saved = SavedState {
                server_url: self.inner.server_url.clone(),
                server_addresses: servers,
            };
            if let Err(e) = save_state(path, &saved) {
                tracing::warn!(path = %path.display(), error = %e, "cannot save the API server list");
            }
        }
    }
}

fn load_state(path: &Path) -> Option<SavedState> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable API server list");
            None
        }
    }
}

fn save_state(path: &Path, state: &SavedState) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)?;
    std::fs::rename(&tmp, path)
}

impl Inner {
    /// The order to try servers in: the current one, those after it in the list, those
    /// before it, and the `--server` one last when it is not listed (or first, when it is
    /// the current one).
    fn candidates(&self) -> Vec<String> {
        let state = self.state.lock();
        let start = state
            .current
            .as_ref()
            .and_then(|c| state.servers.iter().position(|s| s == c))
            .map(|i| i + 1)
            .unwrap_or(0);
        let mut out: Vec<String> = state.current.iter().cloned().collect();
        for s in state.servers[start..].iter().chain(&state.servers[..start]) {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        if !out.contains(&self.default_server) {
            out.push(self.default_server.clone());
        }
        out
    }

    /// A connection to the first server that accepts one, which becomes current.
    async fn dial(&self) -> Result<(TcpStream, String), LbError> {
        let candidates = self.candidates();
        for server in &candidates {
            let error = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(server)).await {
                Ok(Ok(stream)) => {
                    let mut state = self.state.lock();
                    if state.current.as_ref() != Some(server) {
                        tracing::info!(%server, previous = ?state.current, "API server load balancer now uses this server");
                        state.current = Some(server.clone());
                    }
                    return Ok((stream, server.clone()));
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {DIAL_TIMEOUT:?}"),
            };
            tracing::warn!(%server, %error, "API server unreachable, trying the next");
            // Connections still open to it are likely dead (a server that went away
            // without closing them): close them so their clients reconnect elsewhere.
            let mut state = self.state.lock();
            state.connections.retain(|_, c| &c.server != server);
            if state.current.as_ref() == Some(server) {
                state.current = None;
            }
        }
        Err(LbError::NoServer(candidates.join(", ")))
    }

    fn register(&self, server: String) -> (u64, oneshot::Receiver<()>) {
        let (close, closed) = oneshot::channel();
        let mut state = self.state.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.connections.insert(
            id,
            Connection {
                server,
                _close: close,
            },
        );
        (id, closed)
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "API server load balancer: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            forward(client, peer, inner).await;
        });
    }
}

async fn forward(mut client: TcpStream, peer: SocketAddr, inner: Arc<Inner>) {
    let (mut upstream, server) = match inner.dial().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "API server load balancer: dropping a connection");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (id, closed) = inner.register(server);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        // The sender dropped: the balancer closes this connection.
        _ = closed => {}
    }
    inner.state.lock().connections.remove(&id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers each connection with its name, then closes it.
    async fn named_server(name: &'static str) -> (String, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = s.write_all(name.as_bytes()).await;
                });
            }
        });
        (addr, task)
    }

    /// An address where nothing listens (connections are refused).
    async fn refused_address() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr").to_string()
    }

    async fn ask(lb: &ApiServerLoadBalancer) -> String {
        let mut s = TcpStream::connect(lb.local_addr()).await.expect("connect");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    async fn start(server: &str, state: Option<PathBuf>) -> ApiServerLoadBalancer {
        ApiServerLoadBalancer::start(
            "127.0.0.1:0".parse().expect("addr"),
            &format!("https://{server}"),
            state,
        )
        .await
        .expect("start")
    }

    #[test]
    fn server_addresses_from_urls() {
        assert_eq!(
            server_address("https://10.0.0.1:6443").ok(),
            Some("10.0.0.1:6443".into())
        );
        assert_eq!(
            server_address("https://server1/").ok(),
            Some("server1:6443".into())
        );
        assert_eq!(
            server_address("https://[fd00::1]:7443").ok(),
            Some("[fd00::1]:7443".into())
        );
        assert_eq!(
            server_address("https://[fd00::1]").ok(),
            Some("[fd00::1]:6443".into())
        );
        assert!(server_address("http://server1:6443").is_err());
        assert!(server_address("https://server1:port").is_err());
        assert!(server_address("https://").is_err());
    }

    #[tokio::test]
    async fn forwards_to_the_server_it_was_given() {
        let (a, _a) = named_server("a").await;
        let lb = start(&a, None).await;
        assert_eq!(ask(&lb).await, "a");
        assert_eq!(lb.current(), Some(a.clone()));
        assert_eq!(lb.servers(), vec![a]);
    }

    #[tokio::test]
    async fn a_refused_server_is_skipped_and_the_next_becomes_current() {
        let dead = refused_address().await;
        let (b, _b) = named_server("b").await;
        let lb = start(&dead, None).await;
        lb.update(vec![dead.clone(), b.clone()]);
        assert_eq!(ask(&lb).await, "b");
        assert_eq!(lb.current(), Some(b.clone()));
        // Sticky: the next connection goes straight to the current server.
        assert_eq!(ask(&lb).await, "b");
    }

    #[tokio::test]
    async fn fails_over_when_the_current_server_goes_away() {
        let (a, a_task) = named_server("a").await;
        let (b, _b) = named_server("b").await;
        let lb = start(&a, None).await;
        lb.update(vec![a.clone(), b.clone()]);
        // Whichever sorts first is tried first; make `a` current.
        lb.inner.state.lock().current = Some(a.clone());
        assert_eq!(ask(&lb).await, "a");
        a_task.abort();
        let _ = a_task.await;
        assert_eq!(ask(&lb).await, "b");
        assert_eq!(lb.current(), Some(b));
    }

    #[tokio::test]
    async fn the_given_server_is_the_last_resort_and_an_empty_list_is_ignored() {
        let (a, _a) = named_server("a").await;
        let dead = refused_address().await;
        let lb = start(&a, None).await;
        lb.update(vec![dead.clone()]);
        assert_eq!(lb.servers(), vec![dead.clone()]);
        assert_eq!(
            ask(&lb).await,
            "a",
            "the --server one is tried after the list"
        );
        lb.update(Vec::new());
        assert_eq!(lb.servers(), vec![dead]);
    }

    #[tokio::test]
    async fn an_unlisted_given_server_stays_current_while_it_accepts() {
        // Agents often join through a name or a load balancer's address that the
        // Endpoints do not list; while it accepts, the listed ones are not tried first.
        let (a, _a) = named_server("a").await;
        let dead = refused_address().await;
        let lb = start(&a, None).await;
        assert_eq!(ask(&lb).await, "a");
        lb.update(vec![dead.clone()]);
        assert_eq!(lb.current(), Some(a.clone()));
        assert_eq!(lb.inner.candidates(), vec![a.clone(), dead]);
        assert_eq!(ask(&lb).await, "a");
    }

    #[test]
    fn candidates_start_at_the_current_server_and_wrap_around() {
        let inner = Inner {
            server_url: "https://d:6443".into(),
            default_server: "d:6443".into(),
            state_file: None,
            state: Mutex::new(State {
                servers: vec!["a:1".into(), "b:1".into(), "c:1".into()],
                current: Some("b:1".into()),
                connections: HashMap::new(),
                next_id: 0,
            }),
        };
        assert_eq!(inner.candidates(), vec!["b:1", "c:1", "a:1", "d:6443"]);
        inner.state.lock().current = None;
        assert_eq!(inner.candidates(), vec!["a:1", "b:1", "c:1", "d:6443"]);
    }

    #[tokio::test]
    async fn no_live_server_drops_the_connection() {
        let dead = refused_address().await;
        let lb = start(&dead, None).await;
        assert_eq!(ask(&lb).await, "", "closed without data");
        assert_eq!(lb.current(), None);
    }

    #[tokio::test]
    async fn connections_to_a_server_no_longer_listed_are_closed() {
        // A server that keeps its connections open without writing.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let a = listener.local_addr().expect("addr").to_string();
        let _a = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let (b, _b) = named_server("b").await;
        let lb = start(&b, None).await;
        lb.update(vec![a.clone()]);
        let mut open = TcpStream::connect(lb.local_addr()).await.expect("connect");
        tokio::time::timeout(Duration::from_secs(5), async {
            while lb.open_connections() == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the connection is forwarded");
        assert_eq!(lb.current(), Some(a));
        lb.update(vec![b.clone()]);
        let mut buf = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), open.read_to_end(&mut buf))
            .await
            .expect("closed by the balancer")
            .expect("read");
        assert_eq!(n, 0);
        assert_eq!(ask(&lb).await, "b");
    }

    #[tokio::test]
    async fn the_server_list_is_saved_and_reused_for_the_same_url() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("etc").join("k1s-agent-load-balancer.json");
        let dead = refused_address().await;
        let (b, _b) = named_server("b").await;
        {
            let lb = start(&dead, Some(file.clone())).await;
            lb.update(vec![dead.clone(), b.clone()]);
        }
        let text = std::fs::read_to_string(&file).expect("saved");
        assert!(text.contains("ServerAddresses"), "{text}");
        // A restart with its --server down still reaches the other server.
        let lb = start(&dead, Some(file.clone())).await;
        let mut want = vec![dead.clone(), b.clone()];
        want.sort();
        assert_eq!(lb.servers(), want);
        assert_eq!(ask(&lb).await, "b");
        // Another --server URL: the saved list is of another cluster.
        let (c, _c) = named_server("c").await;
        let lb = start(&c, Some(file)).await;
        assert_eq!(lb.servers(), vec![c]);
    }
}

//! `portForward`: the client opens a pair of SPDY streams (`error` and `data`, sharing a
//! `requestid` and naming a `port`) per connection; each pair is spliced to a TCP
//! connection to that port on localhost inside the pod's network namespace.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::spdy::{self, Stream};

/// The SPDY protocol name of port forwarding.
pub const PROTOCOL: &str = "portforward.k8s.io";

/// How long to wait for a connection to the pod's port.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The pod the forwarding goes to.
#[derive(Debug, Clone)]
pub struct Target {
    /// `namespace/name`, for messages.
    pub pod: String,
    /// The pod's UID, for messages.
    pub uid: String,
    /// Its network namespace; `None` is the node's own (hostNetwork, or a test runtime).
    pub netns: Option<PathBuf>,
}

/// Serves port forwarding on an upgraded SPDY connection until the client closes it.
pub async fn serve<IO>(io: IO, target: Target)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let mut session = spdy::Session::start(io);
    let mut pending: HashMap<String, (Option<Stream>, Option<Stream>)> = HashMap::new();
    while let Some(stream) = session.streams.recv().await {
        let kind = spdy::header(&stream.headers, "streamtype").unwrap_or("").to_string();
        // Clients before request ids paired the streams by id (data = error + 2).
        let request = match spdy::header(&stream.headers, "requestid") {
            Some(r) => r.to_string(),
            None if kind == "data" => stream.id.saturating_sub(2).to_string(),
            None => stream.id.to_string(),
        };
        let entry = pending.entry(request.clone()).or_default();
        match kind.as_str() {
            "error" => entry.0 = Some(stream),
            "data" => entry.1 = Some(stream),
            other => {
                tracing::debug!(stream_type = other, "unexpected port-forward stream");
                continue;
            }
        }
        if matches!(pending.get(&request), Some((Some(_), Some(_))))
            && let Some((Some(error), Some(data))) = pending.remove(&request)
        {
            tokio::spawn(forward(error, data, target.clone()));
        }
    }
    session.close().await;
}

async fn forward(error: Stream, mut data: Stream, target: Target) {
    let port = spdy::header(&data.headers, "port")
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p > 0);
    let Some(port) = port else {
        let msg = format!(
            "error forwarding port to pod {}: invalid port {:?}",
            target.pod,
            spdy::header(&data.headers, "port")
        );
        error.sender.send(msg.as_bytes());
        error.sender.finish();
        data.sender.finish();
        return;
    };
    let tcp = match connect(target.netns.clone(), port).await {
        Ok(t) => t,
        Err(e) => {
            let msg = format!(
                "error forwarding port {port} to pod {}, uid {}: {e}",
                target.pod, target.uid
            );
            tracing::debug!("{msg}");
            error.sender.send(msg.as_bytes());
            error.sender.finish();
            data.sender.finish();
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let (mut rd, mut wr) = tcp.into_split();
    let to_pod = async {
        while let Some(bytes) = data.incoming.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    let sender = data.sender.clone();
    let from_pod = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !sender.send(&buf[..n]) {
                        break;
                    }
                }
            }
        }
        sender.finish();
    };
    tokio::join!(to_pod, from_pod);
    error.sender.finish();
}

/// Connects to `port` on localhost in `netns` (IPv4, then IPv6, as upstream tries
/// `localhost`).
pub async fn connect(netns: Option<PathBuf>, port: u16) -> std::io::Result<TcpStream> {
    let Some(netns) = netns else {
        return match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(("127.0.0.1", port)))
            .await
        {
            Ok(Ok(s)) => Ok(s),
            _ => {
                tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(("::1", port)))
                    .await
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
            }
        };
    };
    // A socket belongs to the network namespace of the thread that makes it: a fresh
    // thread enters the pod's, connects and ends, so no pooled thread is left in it.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("k1s-portforward".into())
        .spawn(move || {
            let _ = tx.send(connect_in(&netns, port));
        })?;
    let std = rx
        .await
        .map_err(|_| std::io::Error::other("port-forward connect thread failed"))??;
    std.set_nonblocking(true)?;
    TcpStream::from_std(std)
}

fn connect_in(netns: &std::path::Path, port: u16) -> std::io::Result<std::net::TcpStream> {
    let file = std::fs::File::open(netns)?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    match std::net::TcpStream::connect_timeout(&v4, CONNECT_TIMEOUT) {
        Ok(s) => Ok(s),
        Err(e4) => {
            let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
            std::net::TcpStream::connect_timeout(&v6, CONNECT_TIMEOUT).map_err(|_| e4)
        }
    }
}

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

/// WebSocket subprotocols: kubectl's SPDY tunnel, and the channel protocol (two channels
/// per port: data `2i`, error `2i+1`) the client libraries use.
pub const WS_PROTOCOLS: &[&str] = &[
    super::ws::PORT_FORWARD_TUNNEL,
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
];

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
        let kind = spdy::header(&stream.headers, "streamtype")
            .unwrap_or("")
            .to_string();
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

/// The `port` query parameters of the WebSocket channel protocol (repeated or
/// comma-separated), as upstream's kubelet reads them.
pub fn query_ports(query: &[(String, String)]) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for (_, v) in query.iter().filter(|(k, _)| k == "port") {
        for p in v.split(',') {
            match p.trim().parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n),
                _ => return Err(format!("unable to parse {p:?} as a port: invalid port")),
            }
        }
    }
    if ports.is_empty() {
        return Err("query parameter \"port\" is required".into());
    }
    Ok(ports)
}

/// Serves the WebSocket channel protocol: each port's channels start with the port (two
/// bytes, little endian); data is spliced to one connection per port.
pub async fn serve_ws<S>(
    socket: tokio_tungstenite::WebSocketStream<S>,
    protocol: &str,
    ports: Vec<u16>,
    target: Target,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = super::ws::channels(socket, protocol.contains("base64"));
    let out = conn.outgoing.clone();
    let mut data: HashMap<u8, tokio::sync::mpsc::UnboundedSender<bytes::Bytes>> = HashMap::new();
    for (i, port) in ports.iter().enumerate() {
        let (data_ch, error_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        for ch in [data_ch, error_ch] {
            let _ = out.send(super::ws::Outgoing::Data(
                ch,
                bytes::Bytes::copy_from_slice(&port.to_le_bytes()),
            ));
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        data.insert(data_ch, tx);
        tokio::spawn(forward_ws(
            *port,
            rx,
            out.clone(),
            data_ch,
            error_ch,
            target.clone(),
        ));
    }
    let mut incoming = conn.incoming;
    while let Some((ch, bytes)) = incoming.recv().await {
        if let Some(tx) = data.get(&ch) {
            let _ = tx.send(bytes);
        }
    }
    let _ = out.send(super::ws::Outgoing::Close);
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.done).await;
}

async fn forward_ws(
    port: u16,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<bytes::Bytes>,
    out: tokio::sync::mpsc::UnboundedSender<super::ws::Outgoing>,
    data_ch: u8,
    error_ch: u8,
    target: Target,
) {
    let tcp = match connect(target.netns.clone(), port).await {
        Ok(t) => t,
        Err(e) => {
            let msg = format!(
                "error forwarding port {port} to pod {}, uid {}: {e}",
                target.pod, target.uid
            );
            let _ = out.send(super::ws::Outgoing::Data(error_ch, msg.into_bytes().into()));
            return;
        }
    };
    let (mut rd, mut wr) = tcp.into_split();
    let to_pod = async {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    let from_pod = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let chunk = bytes::Bytes::copy_from_slice(&buf[..n]);
                    if out.send(super::ws::Outgoing::Data(data_ch, chunk)).is_err() {
                        break;
                    }
                }
            }
        }
    };
    tokio::join!(to_pod, from_pod);
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
            _ => tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(("::1", port)))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?,
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

#[cfg(test)]
mod tests {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;
    use crate::server::ws;

    /// Needs root and iproute2 (as CI has): a thread in a fresh network namespace listens
    /// on its loopback; `connect` reaches it through the namespace file, not the host's.
    #[tokio::test]
    async fn connect_enters_the_pods_network_namespace() {
        use std::io::{Read, Write};
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let setup = || -> Result<(String, std::net::TcpListener), String> {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("unshare(CLONE_NEWNET) needs root: {e}"))?;
                // A child forked from this thread starts in its network namespace.
                let up = std::process::Command::new("ip")
                    .args(["link", "set", "lo", "up"])
                    .status()
                    .map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?;
                if !up.success() {
                    return Err(format!("ip link set lo up: {up}"));
                }
                let me = std::fs::read_link("/proc/thread-self").map_err(|e| e.to_string())?;
                let listener =
                    std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
                Ok((format!("/proc/{}/ns/net", me.display()), listener))
            };
            match setup() {
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
                Ok((path, listener)) => {
                    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
                    let _ = tx.send(Ok((path, port)));
                    if let Ok((mut s, _)) = listener.accept() {
                        let mut buf = [0u8; 4];
                        if s.read_exact(&mut buf).is_ok() {
                            let _ = s.write_all(&buf);
                        }
                    }
                }
            }
        });
        let (path, port) = rx
            .recv()
            .expect("namespace thread")
            .unwrap_or_else(|e| panic!("{e}"));
        // Not reachable from the host's namespace on that port (nothing listens there).
        let mut s = connect(Some(PathBuf::from(&path)), port)
            .await
            .expect("connect in the namespace");
        s.write_all(b"ping").await.expect("write");
        let mut got = [0u8; 4];
        s.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ping");
    }

    #[test]
    fn ports_from_the_query() {
        let q = |v: &str| vec![("port".to_string(), v.to_string())];
        assert_eq!(query_ports(&q("80,8080")), Ok(vec![80, 8080]));
        assert!(query_ports(&q("x")).is_err());
        assert!(query_ports(&q("0")).is_err());
        assert!(query_ports(&[]).is_err());
    }

    #[tokio::test]
    async fn the_websocket_channel_protocol_reaches_the_port() {
        let echo = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let port = echo.local_addr().expect("addr").port();
        tokio::spawn(async move {
            if let Ok((mut s, _)) = echo.accept().await {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let target = Target {
            pod: "default/p".into(),
            uid: "u".into(),
            netns: None,
        };
        tokio::spawn(async move {
            let socket = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
            serve_ws(socket, "v4.channel.k8s.io", vec![port], target).await;
        });
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        // Each channel first says which port it is.
        for ch in [0u8, 1] {
            let m = client
                .next()
                .await
                .expect("message")
                .expect("ws")
                .into_data();
            assert_eq!(m.as_ref(), &ws::encode(ch, &port.to_le_bytes())[..]);
        }
        client
            .send(Message::binary(ws::encode(0, b"ping")))
            .await
            .expect("send");
        let mut got = Vec::new();
        while got.len() < 4 {
            let m = client
                .next()
                .await
                .expect("message")
                .expect("ws")
                .into_data();
            let (ch, d) = ws::decode(&m).expect("channel");
            assert_eq!(ch, 0);
            got.extend_from_slice(d);
        }
        assert_eq!(got, b"ping");
    }

    #[tokio::test]
    async fn an_unreachable_port_is_reported_on_the_error_stream() {
        let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = unused.local_addr().expect("addr").port();
        drop(unused);
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let target = Target {
            pod: "default/p".into(),
            uid: "u".into(),
            netns: None,
        };
        tokio::spawn(async move {
            let socket = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
            serve_ws(socket, "v4.channel.k8s.io", vec![port], target).await;
        });
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let mut error = String::new();
        while let Some(Ok(m)) = client.next().await {
            let m = m.into_data();
            if let Some((1, d)) = ws::decode(&m)
                && d.len() > 2
            {
                error = String::from_utf8_lossy(d).into_owned();
                break;
            }
        }
        assert!(
            error.starts_with(&format!(
                "error forwarding port {port} to pod default/p, uid u:"
            )),
            "{error}"
        );
    }
}

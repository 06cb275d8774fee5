//! WebSocket as Kubernetes streams over it: the channel protocols (`v5.channel.k8s.io` …
//! `channel.k8s.io`, each message one channel byte then data), and the byte tunnel of
//! `SPDY/3.1+portforward.k8s.io` (each binary message a run of the SPDY connection's bytes).
//! The WebSocket framing itself is tokio-tungstenite's.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Channel of stdin.
pub const STDIN: u8 = 0;
/// Channel of stdout.
pub const STDOUT: u8 = 1;
/// Channel of stderr.
pub const STDERR: u8 = 2;
/// Channel of the error (v4+: a `Status` as JSON).
pub const ERROR: u8 = 3;
/// Channel of terminal resizes (`{"Width":…,"Height":…}`).
pub const RESIZE: u8 = 4;
/// v5's close signal: its data is the channel whose writer is done.
pub const CLOSE: u8 = 255;

/// `SPDY/3.1+portforward.k8s.io`: kubectl ≥ 1.31 tunnels SPDY port-forwarding in binary
/// messages.
pub const PORT_FORWARD_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";

/// One channel message.
pub fn encode(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(data.len() + 1);
    m.push(channel);
    m.extend_from_slice(data);
    m
}

/// Splits a channel message into its channel and data; `None` for an empty message.
pub fn decode(message: &[u8]) -> Option<(u8, &[u8])> {
    let (channel, data) = message.split_first()?;
    Some((*channel, data))
}

/// The protocols a client offers in `Sec-WebSocket-Protocol` (comma-separated, any
/// number of headers).
pub fn offered_protocols(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The first protocol the client offers that the server supports (the client's
/// preference order, as upstream's handshake picks).
pub fn negotiate(offered: &[String], supported: &[&str]) -> Option<String> {
    offered
        .iter()
        .find(|p| supported.contains(&p.as_str()))
        .cloned()
}

/// Whether the request asks for a WebSocket upgrade.
pub fn is_websocket(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The 101 answer to a WebSocket upgrade choosing `protocol`.
pub fn switching_protocols(
    headers: &http::HeaderMap,
    protocol: &str,
) -> Option<http::response::Builder> {
    let key = headers.get(http::header::SEC_WEBSOCKET_KEY)?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    Some(
        http::Response::builder()
            .status(http::StatusCode::SWITCHING_PROTOCOLS)
            .header(http::header::CONNECTION, "Upgrade")
            .header(http::header::UPGRADE, "websocket")
            .header(http::header::SEC_WEBSOCKET_ACCEPT, accept)
            .header(http::header::SEC_WEBSOCKET_PROTOCOL, protocol),
    )
}

/// The WebSocket over an upgraded connection, server side.
pub async fn server(
    upgraded: hyper::upgrade::Upgraded,
) -> WebSocketStream<TokioIo<hyper::upgrade::Upgraded>> {
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await
}

/// What a channel connection hands the exec/attach code.
pub struct ChannelConn {
    /// Messages by channel as they arrive (channel, data); the v5 close signal included.
    pub incoming: tokio::sync::mpsc::UnboundedReceiver<(u8, Bytes)>,
    /// Sends one message on a channel.
    pub outgoing: tokio::sync::mpsc::UnboundedSender<Outgoing>,
    /// Ends when the writer has sent the close frame.
    pub done: tokio::task::JoinHandle<()>,
}

/// What the writer sends.
pub enum Outgoing {
    /// Data on a channel.
    Data(u8, Bytes),
    /// A normal close; nothing more is sent.
    Close,
}

/// Splits a WebSocket into channel messages in and out.
pub fn channels<S>(ws: WebSocketStream<S>, base64: bool) -> ChannelConn
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (in_tx, in_rx) = tokio::sync::mpsc::unbounded_channel();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<Outgoing>();
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            let data: Vec<u8> = match msg {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) if base64 => match decode_base64_message(t.as_str()) {
                    Some(m) => m,
                    None => continue,
                },
                Message::Close(_) => break,
                _ => continue,
            };
            if let Some((ch, d)) = decode(&data)
                && in_tx.send((ch, Bytes::copy_from_slice(d))).is_err()
            {
                break;
            }
        }
    });
    let done = tokio::spawn(async move {
        while let Some(o) = out_rx.recv().await {
            match o {
                Outgoing::Data(ch, data) => {
                    let msg = if base64 {
                        Message::text(encode_base64_message(ch, &data))
                    } else {
                        Message::binary(encode(ch, &data))
                    };
                    if sink.send(msg).await.is_err() {
                        break;
                    }
                }
                Outgoing::Close => {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code: CloseCode::Normal,
                            reason: "".into(),
                        })))
                        .await;
                    break;
                }
            }
        }
        let _ = sink.close().await;
        reader.abort();
    });
    ChannelConn {
        incoming: in_rx,
        outgoing: out_tx,
        done,
    }
}

/// `base64.channel.k8s.io`: the channel as an ASCII digit, then the data in base64.
fn encode_base64_message(channel: u8, data: &[u8]) -> String {
    use base64::Engine;
    let mut s = String::new();
    s.push(char::from(b'0'.wrapping_add(channel)));
    s.push_str(&base64::engine::general_purpose::STANDARD.encode(data));
    s
}

fn decode_base64_message(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let (first, rest) = text.as_bytes().split_first()?;
    let mut out = vec![first.wrapping_sub(b'0')];
    out.extend(
        base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?,
    );
    Some(out)
}

/// Turns a tunneling WebSocket into a byte stream: binary messages in are the bytes read,
/// every write goes out as one binary message.
pub fn tunnel<S>(ws: WebSocketStream<S>) -> tokio::io::DuplexStream
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (mut rd, mut wr) = tokio::io::split(theirs);
    let (mut sink, mut stream) = ws.split();
    tokio::spawn(async move {
        let inbound = async {
            while let Some(Ok(msg)) = stream.next().await {
                match msg {
                    Message::Binary(b) if wr.write_all(&b).await.is_err() => break,
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            let _ = wr.shutdown().await;
        };
        let outbound = async {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if sink.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = sink
                .send(Message::Close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                })))
                .await;
            let _ = sink.close().await;
        };
        // The connection ends when our side stops writing; reading alone keeps nothing
        // alive.
        tokio::select! {
            () = outbound => {}
            () = async { inbound.await; std::future::pending::<()>().await } => {}
        }
    });
    ours
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_messages_round_trip() {
        let m = encode(STDOUT, b"hi");
        assert_eq!(m, vec![1, b'h', b'i']);
        assert_eq!(decode(&m), Some((STDOUT, &b"hi"[..])));
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[CLOSE, STDIN]), Some((CLOSE, &[STDIN][..])));
    }

    #[test]
    fn negotiation_follows_the_clients_order() {
        let offered = vec![
            "v5.channel.k8s.io".to_string(),
            "v4.channel.k8s.io".to_string(),
        ];
        assert_eq!(
            negotiate(&offered, &["v4.channel.k8s.io", "v5.channel.k8s.io"]).as_deref(),
            Some("v5.channel.k8s.io")
        );
        assert_eq!(negotiate(&offered, &["channel.k8s.io"]), None);
        let mut h = http::HeaderMap::new();
        h.append(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static("v5.channel.k8s.io, v4.channel.k8s.io"),
        );
        h.append(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static("channel.k8s.io"),
        );
        assert_eq!(
            offered_protocols(&h),
            vec!["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"]
        );
    }

    #[test]
    fn base64_channel_messages() {
        assert_eq!(encode_base64_message(1, b"hello"), "1aGVsbG8=");
        assert_eq!(
            decode_base64_message("0aGVsbG8="),
            Some(vec![0, b'h', b'e', b'l', b'l', b'o'])
        );
    }
}

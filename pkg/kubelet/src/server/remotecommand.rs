//! `exec` and `attach` over SPDY or WebSocket: the channel protocols' versions, the streams
//! a request needs, and the pump between them and the runtime's [`StreamSession`].

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::spdy::{self, StreamSender};
use super::ws;
use crate::runtime::{RuntimeResult, StreamRequest, StreamSession, TerminalSize};

/// How long the client has to open every stream it needs (upstream's
/// `streamCreationTimeout` default).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The channel protocol versions, newest first, as offered in `X-Stream-Protocol-Version`
/// (SPDY) or `Sec-WebSocket-Protocol` (WebSocket).
pub const SPDY_PROTOCOLS: &[&str] = &[
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

/// WebSocket subprotocols for exec/attach.
pub const WS_PROTOCOLS: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];

/// A protocol version: what the error channel carries and whether resize and close exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// `channel.k8s.io`.
    V1,
    /// `v2.channel.k8s.io`.
    V2,
    /// `v3.channel.k8s.io`: terminal resize.
    V3,
    /// `v4.channel.k8s.io`: the error channel carries a `Status`.
    V4,
    /// `v5.channel.k8s.io`: the client can close stdin.
    V5,
}

impl Version {
    /// From the negotiated protocol name.
    pub fn of(protocol: &str) -> Version {
        match protocol {
            "v5.channel.k8s.io" => Version::V5,
            "v4.channel.k8s.io" | "v4.base64.channel.k8s.io" => Version::V4,
            "v3.channel.k8s.io" => Version::V3,
            "v2.channel.k8s.io" => Version::V2,
            _ => Version::V1,
        }
    }
}

/// The outcome reported on the error channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The command exited 0.
    Success,
    /// It exited with this code.
    Exit(i32),
    /// It could not be run (or the runtime failed).
    Error(String),
}

/// What the error channel carries for an outcome: v4+ a `Status` (kubectl exits with the
/// `ExitCode` cause), older versions the bare message on failure.
pub fn status_bytes(version: Version, outcome: &Outcome) -> Vec<u8> {
    if version < Version::V4 {
        return match outcome {
            Outcome::Success => Vec::new(),
            Outcome::Exit(code) => format!("command terminated with non-zero exit code: error executing command in container: command terminated with exit code {code}").into_bytes(),
            Outcome::Error(m) => m.clone().into_bytes(),
        };
    }
    let status: Value = match outcome {
        Outcome::Success => json!({"metadata": {}, "status": "Success"}),
        Outcome::Exit(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: command terminated with exit code {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Outcome::Error(m) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("Internal error occurred: {m}"),
            "reason": "InternalError",
            "details": {"causes": [{"message": m}]},
            "code": 500,
        }),
    };
    serde_json::to_vec(&status).unwrap_or_default()
}

/// One output channel of either transport.
#[derive(Clone)]
enum Out {
    Spdy(StreamSender),
    Ws(u8, mpsc::UnboundedSender<ws::Outgoing>),
}

impl Out {
    fn send(&self, data: &[u8]) -> bool {
        match self {
            Out::Spdy(s) => s.send(data),
            Out::Ws(ch, tx) => tx
                .send(ws::Outgoing::Data(*ch, Bytes::copy_from_slice(data)))
                .is_ok(),
        }
    }

    fn finish(&self) {
        if let Out::Spdy(s) = self {
            s.finish();
        }
    }
}

/// The client's side of a session, transport-independent.
struct Channels {
    stdin: Option<mpsc::UnboundedReceiver<Bytes>>,
    resize: Option<mpsc::UnboundedReceiver<Bytes>>,
    stdout: Option<Out>,
    stderr: Option<Out>,
    error: Out,
}

/// Starts the command (or attaches) once the streams are there.
pub type Starter = Box<
    dyn FnOnce(StreamRequest) -> futures::future::BoxFuture<'static, RuntimeResult<StreamSession>>
        + Send,
>;

/// Runs exec/attach over an upgraded SPDY connection.
pub async fn serve_spdy<IO>(io: IO, version: Version, request: StreamRequest, start: Starter)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let mut session = spdy::Session::start(io);
    let mut stdin = None;
    let mut stdout = None;
    let mut stderr = None;
    let mut error = None;
    let mut resize = None;
    let want_resize = request.tty && version >= Version::V3;
    let complete = |stdin: &Option<_>,
                    stdout: &Option<_>,
                    stderr: &Option<_>,
                    error: &Option<_>,
                    resize: &Option<_>| {
        error.is_some()
            && (!request.stdin || stdin.is_some())
            && (!request.stdout || stdout.is_some())
            && (!request.stderr || stderr.is_some())
            && (!want_resize || resize.is_some())
    };
    let deadline = tokio::time::Instant::now() + STREAM_CREATION_TIMEOUT;
    while !complete(&stdin, &stdout, &stderr, &error, &resize) {
        let stream = match tokio::time::timeout_at(deadline, session.streams.recv()).await {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(_) => {
                tracing::debug!("timed out waiting for the client's streams");
                session.close().await;
                return;
            }
        };
        match spdy::header(&stream.headers, "streamtype") {
            Some("stdin") => stdin = Some(stream),
            Some("stdout") => stdout = Some(stream),
            Some("stderr") => stderr = Some(stream),
            Some("error") => error = Some(stream),
            Some("resize") => resize = Some(stream),
            other => tracing::debug!(?other, "unexpected stream type"),
        }
    }
    let Some(error) = error else { return };
    let channels = Channels {
        stdin: stdin.map(|s| s.incoming),
        resize: resize.map(|s| s.incoming),
        stdout: stdout.map(|s| Out::Spdy(s.sender)),
        stderr: stderr.map(|s| Out::Spdy(s.sender)),
        error: Out::Spdy(error.sender),
    };
    run(channels, version, request, start).await;
    session.close().await;
}

/// Runs exec/attach over an upgraded WebSocket.
pub async fn serve_ws<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    protocol: &str,
    request: StreamRequest,
    start: Starter,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let version = Version::of(protocol);
    let conn = ws::channels(ws, protocol.contains("base64"));
    let out = conn.outgoing.clone();
    let (stdin_tx, stdin_rx) = mpsc::unbounded_channel();
    let (resize_tx, resize_rx) = mpsc::unbounded_channel();
    let mut incoming = conn.incoming;
    let stdin_wanted = request.stdin;
    tokio::spawn(async move {
        let mut stdin_tx = Some(stdin_tx);
        while let Some((ch, data)) = incoming.recv().await {
            match ch {
                ws::STDIN => {
                    if let Some(tx) = &stdin_tx {
                        let _ = tx.send(data);
                    }
                }
                ws::RESIZE => {
                    let _ = resize_tx.send(data);
                }
                ws::CLOSE if version >= Version::V5 && data.first() == Some(&ws::STDIN) => {
                    stdin_tx = None;
                }
                _ => {}
            }
        }
    });
    // The first message, on the lowest channel written, tells the client the session is up.
    let first = if request.stdout {
        ws::STDOUT
    } else if request.stderr {
        ws::STDERR
    } else {
        ws::ERROR
    };
    let _ = out.send(ws::Outgoing::Data(first, Bytes::new()));
    let channels = Channels {
        stdin: stdin_wanted.then_some(stdin_rx),
        resize: request.tty.then_some(resize_rx),
        stdout: request.stdout.then(|| Out::Ws(ws::STDOUT, out.clone())),
        stderr: request.stderr.then(|| Out::Ws(ws::STDERR, out.clone())),
        error: Out::Ws(ws::ERROR, out.clone()),
    };
    run(channels, version, request, start).await;
    let _ = out.send(ws::Outgoing::Close);
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.done).await;
}

/// Connects the channels to the session and reports how it ended.
async fn run(channels: Channels, version: Version, request: StreamRequest, start: Starter) {
    let session = match start(request).await {
        Ok(s) => s,
        Err(e) => {
            for o in [&channels.stdout, &channels.stderr].into_iter().flatten() {
                o.finish();
            }
            let message = format!("error executing command in container: {e}");
            channels
                .error
                .send(&status_bytes(version, &Outcome::Error(message)));
            channels.error.finish();
            return;
        }
    };
    let StreamSession {
        stdin,
        stdout,
        stderr,
        resize,
        exit,
    } = session;
    if let (Some(mut rx), Some(mut w)) = (channels.stdin, stdin) {
        tokio::spawn(async move {
            while let Some(data) = rx.recv().await {
                if w.write_all(&data).await.is_err() || w.flush().await.is_err() {
                    break;
                }
            }
            // Dropping the writer closes the process's stdin.
            let _ = w.shutdown().await;
        });
    }
    if let (Some(mut rx), Some(tx)) = (channels.resize, resize) {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(data) = rx.recv().await {
                buf.extend_from_slice(&data);
                let mut consumed = 0;
                let mut de = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
                while let Some(Ok(v)) = de.next() {
                    consumed = de.byte_offset();
                    let size = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0) as u16;
                    let _ = tx
                        .send(TerminalSize {
                            width: size("Width"),
                            height: size("Height"),
                        })
                        .await;
                }
                buf.drain(..consumed);
            }
        });
    }
    let copy = |reader: Option<std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>>,
                out: Option<Out>| {
        tokio::spawn(async move {
            let (Some(mut r), Some(out)) = (reader, out) else {
                return;
            };
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match tokio::io::AsyncReadExt::read(&mut r, &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if !out.send(&buf[..n]) {
                            break;
                        }
                    }
                }
            }
            out.finish();
        })
    };
    let out_task = copy(stdout, channels.stdout.clone());
    let err_task = copy(stderr, channels.stderr.clone());
    let outcome = match exit.await {
        Ok(0) => Outcome::Success,
        Ok(code) => Outcome::Exit(code),
        Err(e) => Outcome::Error(format!("error executing command in container: {e}")),
    };
    // Output written just before the exit still reaches the client before the status.
    let _ = out_task.await;
    let _ = err_task.await;
    for o in [&channels.stdout, &channels.stderr].into_iter().flatten() {
        o.finish();
    }
    let status = status_bytes(version, &outcome);
    if !status.is_empty() {
        channels.error.send(&status);
    }
    channels.error.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_become_upstreams_status() {
        let s: Value =
            serde_json::from_slice(&status_bytes(Version::V4, &Outcome::Exit(3))).expect("json");
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        let ok: Value =
            serde_json::from_slice(&status_bytes(Version::V5, &Outcome::Success)).expect("json");
        assert_eq!(ok["status"], "Success");
        assert!(status_bytes(Version::V2, &Outcome::Success).is_empty());
        let e: Value =
            serde_json::from_slice(&status_bytes(Version::V4, &Outcome::Error("boom".into())))
                .expect("json");
        assert_eq!(e["reason"], "InternalError");
        assert_eq!(e["code"], 500);
    }

    #[test]
    fn versions_from_protocols() {
        assert_eq!(Version::of("v5.channel.k8s.io"), Version::V5);
        assert_eq!(Version::of("v4.channel.k8s.io"), Version::V4);
        assert_eq!(Version::of("channel.k8s.io"), Version::V1);
        assert_eq!(Version::of(""), Version::V1);
        assert!(Version::V3 < Version::V4);
    }
}

#[cfg(test)]
mod session_tests {
    use bytes::BytesMut;
    use futures::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;
    use crate::server::spdy::{Codec, Frame};

    /// A "process" that upper-cases its stdin to stdout and exits 3 once stdin closes;
    /// the terminal sizes it is sent come out of the receiver.
    fn fake() -> (Starter, mpsc::Receiver<TerminalSize>) {
        let (resize_tx, resize_rx) = mpsc::channel(8);
        let start: Starter = Box::new(move |_req: StreamRequest| {
            Box::pin(async move {
                let (stdin_ours, mut stdin_theirs) = tokio::io::duplex(1024);
                let (mut stdout_theirs, stdout_ours) = tokio::io::duplex(1024);
                let (tx, rx) = tokio::sync::oneshot::channel();
                tokio::spawn(async move {
                    let mut input = Vec::new();
                    let _ = stdin_theirs.read_to_end(&mut input).await;
                    let _ = stdout_theirs.write_all(&input.to_ascii_uppercase()).await;
                    drop(stdout_theirs);
                    let _ = tx.send(3);
                });
                Ok(StreamSession {
                    stdin: Some(Box::pin(stdin_ours)),
                    stdout: Some(Box::pin(stdout_ours)),
                    stderr: None,
                    resize: Some(resize_tx),
                    exit: Box::pin(async move { Ok(rx.await.unwrap_or(1)) }),
                })
            })
        });
        (start, resize_rx)
    }

    fn request() -> StreamRequest {
        StreamRequest {
            command: vec!["sh".into()],
            tty: true,
            stdin: true,
            stdout: true,
            stderr: false,
        }
    }

    #[tokio::test]
    async fn websocket_v5_exec_with_stdin_close_resize_and_exit_code() {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let (start, mut resized) = fake();
        let server = tokio::spawn(async move {
            let ws = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
            serve_ws(ws, "v5.channel.k8s.io", request(), start).await;
        });
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        // The session is up: an empty message on stdout, the lowest channel written.
        let first = client.next().await.expect("message").expect("ws");
        assert_eq!(first.into_data().as_ref(), &[ws::STDOUT]);
        client
            .send(Message::binary(ws::encode(
                ws::RESIZE,
                br#"{"Width":120,"Height":40}"#,
            )))
            .await
            .expect("send");
        client
            .send(Message::binary(ws::encode(ws::STDIN, b"hello")))
            .await
            .expect("send");
        client
            .send(Message::binary(vec![ws::CLOSE, ws::STDIN]))
            .await
            .expect("send");
        assert_eq!(
            resized.recv().await,
            Some(TerminalSize {
                width: 120,
                height: 40
            })
        );
        let mut stdout = Vec::new();
        let mut status = Vec::new();
        while let Some(Ok(msg)) = client.next().await {
            let data = match msg {
                Message::Binary(b) => b.to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            match ws::decode(&data) {
                Some((ws::STDOUT, d)) => stdout.extend_from_slice(d),
                Some((ws::ERROR, d)) => status.extend_from_slice(d),
                _ => {}
            }
        }
        assert_eq!(stdout, b"HELLO");
        let status: Value = serde_json::from_slice(&status).expect("status");
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(status["details"]["causes"][0]["message"], "3");
        server.await.expect("server");
    }

    #[tokio::test]
    async fn spdy_v4_exec_over_client_opened_streams() {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let (start, mut resized) = fake();
        let server = tokio::spawn(serve_spdy(server_io, Version::V4, request(), start));
        let (mut rd, mut wr) = tokio::io::split(client_io);
        let mut codec = Codec::new();
        let mut wire = Vec::new();
        for (id, kind) in [(1, "error"), (3, "stdin"), (5, "stdout"), (7, "resize")] {
            codec
                .encode(
                    &Frame::SynStream {
                        stream_id: id,
                        headers: vec![("streamType".into(), kind.into())],
                        fin: false,
                    },
                    &mut wire,
                )
                .expect("encode");
        }
        for (id, data, fin) in [
            (7u32, &br#"{"Width":80,"Height":24}"#[..], false),
            (3, b"abc", true),
        ] {
            codec
                .encode(
                    &Frame::Data {
                        stream_id: id,
                        fin,
                        data: Bytes::copy_from_slice(data),
                    },
                    &mut wire,
                )
                .expect("encode");
        }
        wr.write_all(&wire).await.expect("write");
        assert_eq!(
            resized.recv().await,
            Some(TerminalSize {
                width: 80,
                height: 24
            })
        );
        let mut buf = BytesMut::new();
        let mut stdout = Vec::new();
        let mut status = Vec::new();
        let mut replies = 0;
        loop {
            match codec.decode(&mut buf).expect("decode") {
                Some(Frame::SynReply { .. }) => replies += 1,
                Some(Frame::Data {
                    stream_id: 5, data, ..
                }) => stdout.extend_from_slice(&data),
                Some(Frame::Data {
                    stream_id: 1, data, ..
                }) => status.extend_from_slice(&data),
                Some(Frame::GoAway { .. }) => break,
                Some(_) => {}
                None => {
                    if rd.read_buf(&mut buf).await.expect("read") == 0 {
                        break;
                    }
                }
            }
        }
        assert_eq!(replies, 4);
        assert_eq!(stdout, b"ABC");
        let status: Value = serde_json::from_slice(&status).expect("status");
        assert_eq!(status["details"]["causes"][0]["message"], "3");
        server.await.expect("server");
    }
}

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
pub type Starter =
    Box<dyn FnOnce(StreamRequest) -> futures::future::BoxFuture<'static, RuntimeResult<StreamSession>> + Send>;

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
    let complete = |stdin: &Option<_>, stdout: &Option<_>, stderr: &Option<_>, error: &Option<_>, resize: &Option<_>| {
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
pub async fn serve_ws(
    ws: tokio_tungstenite::WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>,
    protocol: &str,
    request: StreamRequest,
    start: Starter,
) {
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
        let e: Value = serde_json::from_slice(&status_bytes(
            Version::V4,
            &Outcome::Error("boom".into()),
        ))
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

//! Ten thousand malformed or hostile requests against a real `k1s server`, every byte
//! written by the test over TLS with the admin client certificate: oversized, endless and
//! lying bodies; 100k-deep JSON, YAML and protobuf; huge strings, numbers and key counts,
//! duplicate keys; invalid UTF-8 and percent-encoding garbage in paths, queries, headers
//! and bodies; very long URLs and headers; wrong media types, methods, paths and patch
//! types; random and truncated protobuf; garbage list/watch/write parameters; writes and
//! deletes that must fail on stored objects; malformed HTTP and non-TLS bytes. Meanwhile
//! hundreds of idle, slowloris and stalled-body connections are held open.
//!
//! The server must stay up and ready, keep its memory bounded, keep answering a
//! well-behaved client, drop the slow and idle connections, change nothing already
//! stored, and answer every request that reaches the API layer with a Kubernetes `Status`
//! carrying upstream's code and reason.
//!
//! Which layer refuses what:
//! - API layer (the bytes parsed as an HTTP/1.1 request): a `v1` `Status` with
//!   `status: Failure`, `code` equal to the HTTP code and upstream's reason
//!   (400 BadRequest, 404 NotFound, 405 MethodNotAllowed, 413 RequestEntityTooLarge,
//!   415 UnsupportedMediaType, 422 Invalid, 504 Timeout …). A 5xx other than an expected
//!   504 is always a failure.
//! - HTTP protocol layer (hyper): bytes that are not HTTP/1.1 get a bare 4xx without a
//!   body and the connection closes — 400 for a malformed request line, a raw non-ASCII
//!   request target, control characters in a header or an invalid Content-Length; 414
//!   for a request target over 64 KiB; 431 for more than 100 headers or a head over
//!   hyper's ~400 KiB buffer. When the bytes stop mid-head (the client closes) or the
//!   head is so large that the server closes while the client still writes, the
//!   connection just ends. Such answers are accepted only for these cases
//!   ([`Expect::Protocol`]).
//! - TLS layer: plain HTTP or garbage on the TLS port ends the connection (maybe after a
//!   TLS alert) before any HTTP is spoken ([`Expect::Closed`]).
//!
//! Every case is derived from the run's seed and its index, so a failure names a case that
//! `K1S_HOSTILE_SEED=<seed>` reproduces.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k1s_e2e::K1s;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

/// How many hostile requests one run sends (controls and slow connections come on top):
/// 10k, or `K1S_HOSTILE_REQUESTS` (`scripts/test --long` asks for 100k).
fn hostile_requests() -> usize {
    std::env::var("K1S_HOSTILE_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}
/// Concurrent request workers.
const WORKERS: usize = 12;
/// Upstream's request body limit (kube-apiserver's `MaxRequestBodyBytes`, 3 MiB).
const LIMIT: usize = 3 * 1024 * 1024;
/// The bound on the server's resident memory during the run.
const MAX_RSS_KIB: u64 = 512 * 1024;
/// How long any single answer may take before the case counts as a hang.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);
/// `--request-timeout` given to the server: stalled bodies end in 504 after it.
const REQUEST_TIMEOUT_S: u64 = 5;
/// Upstream's header read timeout (32 s); slow and idle connections must be gone by then
/// plus some slack.
const DROPPED_WITHIN: Duration = Duration::from_secs(32 + 10);
/// Idle connections held open during the run.
const IDLE_TLS: usize = 200;
/// Idle TCP connections that never start TLS.
const IDLE_TCP: usize = 100;
/// Clients sending their headers one byte a second.
const SLOWLORIS: usize = 20;
/// Clients that stop in the middle of their body.
const STALLED_BODIES: usize = 20;

const NS: &str = "hostile";
const CMS: &str = "/api/v1/namespaces/hostile/configmaps";

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

// === the client ===

/// Where and how to connect.
struct Target {
    addr: SocketAddr,
    tls: TlsConnector,
}

impl Target {
    fn new(k1s: &K1s) -> Self {
        let config = k1s.tls_client_config(&[]);
        Target {
            addr: k1s.addr(),
            tls: TlsConnector::from(config),
        }
    }

    async fn tcp(&self) -> std::io::Result<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }

    async fn connect(&self) -> std::io::Result<Tls> {
        let tcp = self.tcp().await?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        self.tls.connect(name, tcp).await
    }
}

/// What came back for one request.
#[derive(Debug)]
enum Outcome {
    /// An HTTP/1.1 response; `close` when the server will close the connection.
    Response {
        code: u16,
        head: String,
        body: Vec<u8>,
        close: bool,
    },
    /// The connection ended before a response head; whatever bytes came first.
    Closed(Vec<u8>),
    /// Nothing within the deadline.
    Hung,
}

impl Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::Response {
                code, head, body, ..
            } => format!(
                "HTTP {code}\n{}\n{}",
                head.lines().take(12).collect::<Vec<_>>().join("\n"),
                preview(body)
            ),
            Outcome::Closed(b) => {
                format!("connection closed after {} bytes: {}", b.len(), preview(b))
            }
            Outcome::Hung => format!("no answer within {ANSWER_WITHIN:?}"),
        }
    }
}

fn preview(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(400)]).into_owned();
    if b.len() > 400 { format!("{s}…") } else { s }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads one HTTP/1.1 response: the head, then a body by Content-Length, chunked, or until
/// the connection ends. With `head_only`, a 200 stops after the head (a watch stream).
async fn read_response<R: AsyncRead + Unpin>(r: &mut R, head_only: bool) -> Outcome {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1024 * 1024 {
            return Outcome::Closed(buf);
        }
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return Outcome::Closed(buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|l| {
            l.strip_prefix("HTTP/1.1 ")
                .or_else(|| l.strip_prefix("HTTP/1.0 "))
        })
        .and_then(|l| l.get(..3))
        .and_then(|c| c.parse::<u16>().ok());
    let Some(code) = code else {
        return Outcome::Closed(buf);
    };
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_ascii_lowercase())
        })
    };
    let close = header("connection").is_some_and(|c| c.contains("close"));
    let mut rest = buf.split_off(end);
    if head_only && code == 200 {
        return Outcome::Response {
            code,
            head,
            body: Vec::new(),
            close: true,
        };
    }
    let body = if let Some(len) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        while rest.len() < len {
            match r.read(&mut chunk).await {
                Ok(0) | Err(_) => return Outcome::Closed(rest),
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
            }
        }
        rest.truncate(len);
        rest
    } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        let mut body = Vec::new();
        loop {
            let Some(i) = find(&rest, b"\r\n") else {
                match r.read(&mut chunk).await {
                    Ok(0) | Err(_) => return Outcome::Closed(body),
                    Ok(n) => rest.extend_from_slice(&chunk[..n]),
                }
                continue;
            };
            let size = std::str::from_utf8(&rest[..i]).ok().and_then(|s| {
                usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok()
            });
            let Some(size) = size else {
                return Outcome::Closed(body);
            };
            while rest.len() < i + 2 + size + 2 {
                match r.read(&mut chunk).await {
                    Ok(0) | Err(_) => return Outcome::Closed(body),
                    Ok(n) => rest.extend_from_slice(&chunk[..n]),
                }
            }
            body.extend_from_slice(&rest[i + 2..i + 2 + size]);
            rest.drain(..i + 2 + size + 2);
            if size == 0 || body.len() > 32 * 1024 * 1024 {
                break body;
            }
        }
    } else if code == 204 || code == 304 || (100..200).contains(&code) {
        Vec::new()
    } else {
        // No length: the body runs to the end of the connection.
        loop {
            match r.read(&mut chunk).await {
                Ok(0) | Err(_) => break rest,
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
            }
        }
    };
    Outcome::Response {
        code,
        head,
        body,
        close,
    }
}

/// How a request body goes on the wire after the head.
enum Tail {
    /// Nothing more: everything is in the head bytes.
    None,
    /// `len` bytes of `fill`, written while the answer is read (the server may answer and
    /// close early), either as announced by the head or as chunks (`len: None` = endless).
    Stream {
        fill: u8,
        len: Option<usize>,
        chunked: bool,
    },
}

/// What a case must get back.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A `Status` with one of these codes.
    Status(&'static [u16]),
    /// A 2xx with a JSON body, or a `Status` with one of these codes.
    OkOr(&'static [u16]),
    /// Refused by hyper: a bare 4xx, or a closed connection; a `Status` answer is checked
    /// like any other.
    Protocol,
    /// Not TLS: the connection ends without an HTTP response.
    Closed,
}

/// One hostile request.
struct Case {
    name: String,
    /// Bytes written first (over TLS unless `raw`).
    bytes: Vec<u8>,
    tail: Tail,
    expect: Expect,
    /// Sent over plain TCP to the TLS port.
    raw: bool,
    /// A watch: a 200 head is enough, the stream is not awaited.
    head_only: bool,
    /// Close the write side after the bytes, so an incomplete head meets its end.
    half_close: bool,
    /// The connection may carry the next case.
    reuse: bool,
}

impl Case {
    fn new(name: impl Into<String>, bytes: Vec<u8>, expect: Expect) -> Self {
        Case {
            name: name.into(),
            bytes,
            tail: Tail::None,
            expect,
            raw: false,
            head_only: false,
            half_close: false,
            reuse: matches!(expect, Expect::Status(_) | Expect::OkOr(_)),
        }
    }

    /// Whether the connection may be reused afterwards.
    fn reusable(&self) -> bool {
        self.reuse && matches!(self.tail, Tail::None) && !self.raw
    }
}

/// Builds `METHOD target HTTP/1.1` with a Host, the headers and a Content-Length body.
fn request(method: &str, target: &[u8], headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(body.len() + 256);
    r.extend_from_slice(method.as_bytes());
    r.push(b' ');
    r.extend_from_slice(target);
    r.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: k1s-hostile\r\n");
    for (k, v) in headers {
        r.extend_from_slice(k.as_bytes());
        r.extend_from_slice(b": ");
        r.extend_from_slice(v);
        r.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        r.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

/// A head that announces its own body framing (no Content-Length added).
fn head(method: &str, target: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n").into_bytes();
    for (k, v) in headers {
        r.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r
}

fn json_req(method: &str, target: &str, body: &[u8]) -> Vec<u8> {
    request(
        method,
        target.as_bytes(),
        &[("Content-Type", b"application/json")],
        body,
    )
}

/// Sends one case on `conn` (or a fresh connection) and returns the outcome and the
/// connection if it can carry another request.
async fn exchange(target: &Target, conn: Option<Tls>, case: &Case) -> (Outcome, Option<Tls>) {
    if case.raw {
        let Ok(mut tcp) = target.tcp().await else {
            return (Outcome::Closed(Vec::new()), None);
        };
        let _ = tcp.write_all(&case.bytes).await;
        let out = tokio::time::timeout(ANSWER_WITHIN, read_all(&mut tcp)).await;
        return (out.unwrap_or(Outcome::Hung), None);
    }
    let fresh = conn.is_none();
    let stream = match conn {
        Some(c) => c,
        None => match target.connect().await {
            Ok(c) => c,
            Err(e) => {
                return (
                    Outcome::Closed(format!("TLS connect: {e}").into_bytes()),
                    None,
                );
            }
        },
    };
    let out = tokio::time::timeout(ANSWER_WITHIN, send(stream, case)).await;
    match out {
        Err(_) => (Outcome::Hung, None),
        // A kept-alive connection the server closed meanwhile: try once on a new one.
        Ok((Outcome::Closed(b), _)) if !fresh && b.is_empty() => {
            Box::pin(exchange(target, None, case)).await
        }
        Ok((out, stream)) => {
            let keep = matches!(&out, Outcome::Response { close: false, .. }) && case.reusable();
            (out, if keep { stream } else { None })
        }
    }
}

async fn read_all<R: AsyncRead + Unpin>(r: &mut R) -> Outcome {
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf).await;
    Outcome::Closed(buf)
}

async fn send(mut stream: Tls, case: &Case) -> (Outcome, Option<Tls>) {
    match case.tail {
        Tail::None => {
            if stream.write_all(&case.bytes).await.is_err() || stream.flush().await.is_err() {
                return (Outcome::Closed(Vec::new()), None);
            }
            if case.half_close {
                let _ = stream.shutdown().await;
            }
            let out = read_response(&mut stream, case.head_only).await;
            (out, Some(stream))
        }
        Tail::Stream { fill, len, chunked } => {
            let (mut rd, mut wr) = tokio::io::split(stream);
            let first = case.bytes.clone();
            let writer = tokio::spawn(async move {
                if wr.write_all(&first).await.is_err() {
                    return;
                }
                let piece = vec![fill; 64 * 1024];
                let mut left = len.unwrap_or(usize::MAX);
                while left > 0 {
                    let n = left.min(piece.len());
                    let ok = if chunked {
                        let mut c = format!("{n:x}\r\n").into_bytes();
                        c.extend_from_slice(&piece[..n]);
                        c.extend_from_slice(b"\r\n");
                        wr.write_all(&c).await
                    } else {
                        wr.write_all(&piece[..n]).await
                    };
                    if ok.is_err() {
                        return;
                    }
                    left -= n;
                }
                if chunked {
                    let _ = wr.write_all(b"0\r\n\r\n").await;
                }
                let _ = wr.flush().await;
                // Keep the write half open until the answer is read.
                std::future::pending::<()>().await;
            });
            let out = read_response(&mut rd, case.head_only).await;
            writer.abort();
            (out, None)
        }
    }
}

// === checking answers ===

/// Upstream's reason for each code a refusal may carry.
fn reason_for(code: u16) -> &'static [&'static str] {
    match code {
        400 => &["BadRequest"],
        401 => &["Unauthorized"],
        403 => &["Forbidden"],
        404 => &["NotFound"],
        405 => &["MethodNotAllowed"],
        406 => &["NotAcceptable"],
        409 => &["AlreadyExists", "Conflict"],
        410 => &["Gone", "Expired"],
        413 => &["RequestEntityTooLarge"],
        415 => &["UnsupportedMediaType"],
        422 => &["Invalid"],
        429 => &["TooManyRequests"],
        504 => &["Timeout"],
        _ => &[],
    }
}

/// Checks that `body` is the `Status` upstream would send with `code`.
fn check_status(code: u16, body: &[u8]) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("HTTP {code} without a JSON Status ({e}): {}", preview(body)))?;
    let field = |f: &str| v.get(f).and_then(Value::as_str).unwrap_or("");
    let reason = field("reason");
    if field("kind") != "Status"
        || field("apiVersion") != "v1"
        || field("status") != "Failure"
        || v.get("code").and_then(Value::as_u64) != Some(u64::from(code))
        || !reason_for(code).contains(&reason)
    {
        return Err(format!(
            "HTTP {code} with a body that is not upstream's Status"
        ));
    }
    Ok(())
}

/// Judges one outcome against what the case expects.
fn judge(case: &Case, out: &Outcome) -> Result<(), String> {
    match (case.expect, out) {
        (Expect::Closed, Outcome::Closed(b)) if !b.starts_with(b"HTTP/") => Ok(()),
        (Expect::Closed, _) => Err("expected the TLS port to drop a non-TLS client".into()),
        (_, Outcome::Hung) => Err("no answer (hang)".into()),
        (Expect::Protocol, Outcome::Closed(_)) => Ok(()),
        (_, Outcome::Closed(_)) => Err("connection closed without an answer".into()),
        (
            expect,
            Outcome::Response {
                code, head, body, ..
            },
        ) => {
            let code = *code;
            let json_body = head
                .to_ascii_lowercase()
                .contains("content-type: application/json");
            match expect {
                Expect::Protocol if !json_body && (400..500).contains(&code) => Ok(()),
                Expect::Protocol if (400..500).contains(&code) => check_status(code, body),
                Expect::Protocol => Err(format!("expected a protocol-level refusal, got {code}")),
                // A watch stream: only its head was read.
                Expect::OkOr(_) if code == 200 && case.head_only => Ok(()),
                Expect::OkOr(_) if (200..300).contains(&code) => {
                    serde_json::from_slice::<Value>(body)
                        .map(drop)
                        .map_err(|e| format!("HTTP {code} without JSON: {e}"))
                }
                Expect::Status(codes) | Expect::OkOr(codes) => {
                    check_status(code, body)?;
                    if codes.contains(&code) {
                        Ok(())
                    } else {
                        Err(format!("code {code}, expected one of {codes:?}"))
                    }
                }
                Expect::Closed => unreachable!("handled above"),
            }
        }
    }
}

// === the hostile cases ===

const BAD_REQUEST: &[u16] = &[400];
const NOT_FOUND: &[u16] = &[404];
const METHOD_NOT_ALLOWED: &[u16] = &[405];
const TOO_LARGE: &[u16] = &[413];
const UNSUPPORTED: &[u16] = &[415];
const INVALID: &[u16] = &[422];

fn nested(open: &str, close: &str, depth: usize) -> Vec<u8> {
    let mut b = open.repeat(depth).into_bytes();
    b.extend_from_slice(close.repeat(depth).as_bytes());
    b
}

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let mut b = vec![0u8; rng.random_range(1..=max)];
    rng.fill(&mut b[..]);
    b
}

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

fn pick_bytes(rng: &mut StdRng, xs: &[&'static [u8]]) -> &'static [u8] {
    xs[rng.random_range(0..xs.len())]
}

fn cm_json(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"k":"v"}}}}"#
    )
}

/// Appends a protobuf varint.
fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A `k8s\0` protobuf envelope: TypeMeta(apiVersion, kind), raw, content encoding.
fn proto_envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    fn field(n: u8, data: &[u8], out: &mut Vec<u8>) {
        out.push(n << 3 | 2);
        varint(data.len(), out);
        out.extend_from_slice(data);
    }
    let mut tm = Vec::new();
    field(1, api_version.as_bytes(), &mut tm);
    field(2, kind.as_bytes(), &mut tm);
    let mut out = b"k8s\0".to_vec();
    field(1, &tm, &mut out);
    field(2, raw, &mut out);
    out
}

/// Generates case `i` of the run: a generator drawn by weight, then its own choices.
fn case(seed: u64, i: usize) -> Case {
    let mut rng = StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let total: u32 = GENERATORS.iter().map(|(w, _)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (weight, generate) in GENERATORS {
        if roll < *weight {
            return generate(&mut rng);
        }
        roll -= weight;
    }
    unreachable!("the roll is below the total weight")
}

/// Makes one case from its random choices.
type Generator = fn(&mut StdRng) -> Case;

/// Every generator with its weight (out of about 1350); those costing the server
/// megabytes or a second of CPU each come a few times per run.
const GENERATORS: &[(u32, Generator)] = &[
    // --- sizes ---
    (6, announced_too_large),
    (1, chunked_just_above_limit),
    (1, chunked_endless),
    (1, limit_plus_one),
    (1, exactly_the_limit),
    // --- deep nesting: 100k levels ---
    (4, json_nested_arrays),
    (4, json_nested_objects),
    (4, yaml_nested_flow),
    (1, yaml_nested_blocks),
    (4, patch_nested),
    (1, yaml_alias_bomb),
    // --- huge strings, numbers, many and duplicate keys ---
    (4, huge_name),
    (24, huge_number),
    (12, long_number),
    (1, too_many_annotations),
    (24, duplicate_keys),
    // --- UTF-8 and percent-encoding ---
    (40, invalid_utf8_body),
    (40, invalid_utf8_path),
    (40, percent_garbage_path),
    (40, percent_garbage_query),
    (40, invalid_utf8_headers),
    (16, long_url),
    (8, long_headers),
    // --- media types, methods, unknown paths ---
    (80, unsupported_content_type),
    (80, unknown_patch_type),
    (80, wrong_method),
    (80, unknown_path),
    (40, unacceptable_accept),
    // --- protobuf ---
    (60, random_protobuf),
    (40, nested_protobuf),
    (60, bogus_protobuf),
    // --- query garbage ---
    (200, list_or_watch_parameters),
    (40, write_parameters),
    // --- writes to stored objects that must fail and change nothing ---
    (60, stored_object_write),
    (60, stored_object_delete),
    // --- protocol garbage over TLS, and non-TLS bytes ---
    (60, protocol_garbage),
    (60, ambiguous_framing),
    (24, not_tls),
];

/// Dry run: a create that slips through stores nothing.
const DRY: &str = "?dryRun=All";

/// One of the stored ConfigMaps.
fn stored(rng: &mut StdRng) -> String {
    format!("{CMS}/cm-{}", rng.random_range(0..3))
}

// === sizes ===

fn announced_too_large(rng: &mut StdRng) -> Case {
    // A Content-Length above the limit: upstream answers 413 from the header alone.
    let len: u64 = match rng.random_range(0..3) {
        0 => LIMIT as u64 + 1 + rng.random_range(0..1024 * 1024),
        1 => 64 * 1024 * 1024,
        _ => 10 * 1024 * 1024 * 1024,
    };
    let mut h = head(
        "POST",
        &format!("{CMS}{DRY}"),
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", &len.to_string()),
        ],
    );
    h.extend_from_slice(b"{\"apiVersion\":");
    Case::new(
        "content-length above the limit, short body",
        h,
        Expect::Status(TOO_LARGE),
    )
}

fn chunked_just_above_limit(rng: &mut StdRng) -> Case {
    let mut c = Case::new(
        "chunked body just above the limit",
        head(
            "POST",
            &format!("{CMS}{DRY}"),
            &[
                ("Content-Type", "application/json"),
                ("Transfer-Encoding", "chunked"),
            ],
        ),
        Expect::Status(TOO_LARGE),
    );
    c.tail = Tail::Stream {
        fill: b' ',
        len: Some(LIMIT + 1 + rng.random_range(0..4096)),
        chunked: true,
    };
    c
}

fn chunked_endless(rng: &mut StdRng) -> Case {
    let cm = stored(rng);
    let mut c = Case::new(
        "chunked body that never ends",
        head(
            "PUT",
            &cm,
            &[
                ("Content-Type", "application/yaml"),
                ("Transfer-Encoding", "chunked"),
            ],
        ),
        Expect::Status(TOO_LARGE),
    );
    c.tail = Tail::Stream {
        fill: b'#',
        len: None,
        chunked: true,
    };
    c
}

fn limit_plus_one(rng: &mut StdRng) -> Case {
    let cm = stored(rng);
    let len = LIMIT + 1;
    let mut c = Case::new(
        "body of exactly limit+1 bytes",
        head(
            "PATCH",
            &cm,
            &[
                ("Content-Type", "application/merge-patch+json"),
                ("Content-Length", &len.to_string()),
            ],
        ),
        Expect::Status(TOO_LARGE),
    );
    c.tail = Tail::Stream {
        fill: b' ',
        len: Some(len),
        chunked: false,
    };
    c
}

fn exactly_the_limit(_: &mut StdRng) -> Case {
    // Exactly at the limit is read, and is not JSON.
    let mut c = Case::new(
        "body of exactly the limit, not JSON",
        head(
            "POST",
            &format!("{CMS}{DRY}"),
            &[
                ("Content-Type", "application/json"),
                ("Content-Length", &LIMIT.to_string()),
            ],
        ),
        Expect::Status(BAD_REQUEST),
    );
    c.tail = Tail::Stream {
        fill: b'x',
        len: Some(LIMIT),
        chunked: false,
    };
    c
}

// === deep nesting: 100k levels ===

fn json_nested_arrays(_: &mut StdRng) -> Case {
    Case::new(
        "JSON nested 100k arrays",
        json_req("POST", &format!("{CMS}{DRY}"), &nested("[", "]", 100_000)),
        Expect::Status(BAD_REQUEST),
    )
}

fn json_nested_objects(_: &mut StdRng) -> Case {
    let mut b =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"data":"#.to_vec();
    b.extend(nested("{\"a\":", "}", 100_000));
    b.push(b'}');
    Case::new(
        "JSON nested 100k objects",
        json_req("POST", &format!("{CMS}{DRY}"), &b),
        Expect::Status(BAD_REQUEST),
    )
}

fn yaml_nested_flow(_: &mut StdRng) -> Case {
    Case::new(
        "YAML nested 100k flow sequences",
        request(
            "POST",
            format!("{CMS}{DRY}").as_bytes(),
            &[("Content-Type", b"application/yaml")],
            &nested("[", "]", 100_000),
        ),
        Expect::Status(BAD_REQUEST),
    )
}

fn yaml_nested_blocks(_: &mut StdRng) -> Case {
    // Block mappings: indentation makes depth quadratic in size; 1500 levels ≈ 2 MiB.
    let mut y = String::new();
    for d in 0..1500 {
        y.push_str(&" ".repeat(d));
        y.push_str("a:\n");
    }
    Case::new(
        "YAML nested 1500 block mappings",
        request(
            "POST",
            format!("{CMS}{DRY}").as_bytes(),
            &[("Content-Type", b"application/yaml")],
            y.as_bytes(),
        ),
        Expect::Status(BAD_REQUEST),
    )
}

fn patch_nested(rng: &mut StdRng) -> Case {
    let cm = stored(rng);
    let (ty, body): (&[u8], Vec<u8>) = match rng.random_range(0..4) {
        0 => (
            b"application/merge-patch+json",
            nested("{\"data\":", "}", 100_000),
        ),
        1 => (
            b"application/strategic-merge-patch+json",
            nested("{\"data\":", "}", 100_000),
        ),
        2 => {
            let mut b = br#"[{"op":"add","path":"/data/x","value":"#.to_vec();
            b.extend(nested("[", "]", 100_000));
            b.extend_from_slice(b"}]");
            (b"application/json-patch+json", b)
        }
        _ => (
            b"application/apply-patch+yaml",
            nested("{a: ", "}", 100_000),
        ),
    };
    Case::new(
        "patch nested 100k levels",
        request(
            "PATCH",
            format!("{cm}?fieldManager=hostile").as_bytes(),
            &[("Content-Type", ty)],
            &body,
        ),
        Expect::Status(BAD_REQUEST),
    )
}

fn yaml_alias_bomb(_: &mut StdRng) -> Case {
    // A billion laughs: aliases that expand to 10^12 nodes.
    let mut y = format!("l0: &l0 [{}]\n", ["x"; 10].join(","));
    for n in 1..12 {
        y.push_str(&format!(
            "l{n}: &l{n} [{}]\n",
            vec![format!("*l{}", n - 1); 10].join(",")
        ));
    }
    Case::new(
        "YAML alias bomb",
        request(
            "POST",
            format!("{CMS}{DRY}").as_bytes(),
            &[("Content-Type", b"application/yaml")],
            y.as_bytes(),
        ),
        Expect::Status(&[400, 422]),
    )
}

// === huge strings, numbers, many and duplicate keys ===

fn huge_name(rng: &mut StdRng) -> Case {
    let name = "a".repeat(rng.random_range(300..2_000_000));
    Case::new(
        "huge name",
        json_req("POST", &format!("{CMS}{DRY}"), cm_json(&name).as_bytes()),
        Expect::Status(INVALID),
    )
}

fn huge_number(rng: &mut StdRng) -> Case {
    let n = pick(
        rng,
        &[
            "1e999",
            "-1e999",
            "123456789012345678901234567890",
            "1.5",
            "-0",
            "99999999999999999999999999999999999999999e99999",
        ],
    )
    .to_string();
    let body = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"num","generation":{n}}}}}"#
    );
    Case::new(
        "huge or non-integer number",
        json_req("POST", &format!("{CMS}{DRY}"), body.as_bytes()),
        Expect::Status(BAD_REQUEST),
    )
}

fn long_number(rng: &mut StdRng) -> Case {
    let digits = "9".repeat(rng.random_range(1000..200_000));
    let body = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"num"}},"data":{{"k":{digits}}}}}"#
    );
    Case::new(
        "number with 100k digits",
        json_req("POST", &format!("{CMS}{DRY}"), body.as_bytes()),
        Expect::Status(BAD_REQUEST),
    )
}

fn too_many_annotations(rng: &mut StdRng) -> Case {
    // 256 KiB is upstream's limit on all annotations together.
    let n = rng.random_range(45_000..100_000);
    let ann: Vec<String> = (0..n).map(|k| format!(r#""k{k}":"v""#)).collect();
    let body = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"many","annotations":{{{}}}}}}}"#,
        ann.join(",")
    );
    Case::new(
        "annotations over 256 KiB",
        json_req("POST", &format!("{CMS}{DRY}"), body.to_string().as_bytes()),
        Expect::Status(INVALID),
    )
}

fn duplicate_keys(rng: &mut StdRng) -> Case {
    let body = match rng.random_range(0..2) {
        0 => r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup2"}}"#
            .to_string(),
        _ => {
            let mut b = String::from(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"#,
            );
            b.push_str(&vec![r#""k":"v""#; 20_000].join(","));
            b.push_str("}}");
            b
        }
    };
    Case::new(
        "duplicate keys (strict field validation)",
        json_req(
            "POST",
            &format!("{CMS}{DRY}&fieldValidation=Strict"),
            body.as_bytes(),
        ),
        Expect::Status(BAD_REQUEST),
    )
}

// === UTF-8 and percent-encoding ===

fn invalid_utf8_body(rng: &mut StdRng) -> Case {
    let mut body =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"k":""#.to_vec();
    body.extend_from_slice(pick_bytes(
        rng,
        &[
            &b"\xff\xfe"[..],
            b"\xc3\x28",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\x80",
        ],
    ));
    body.extend_from_slice(b"\"}}");
    let ty: &[u8] = pick_bytes(rng, &[&b"application/json"[..], b"application/yaml"]);
    // Go's decoder replaces invalid UTF-8 with U+FFFD (then the object may be
    // valid); serde refuses it. Either way nothing is stored (dry run).
    Case::new(
        "invalid UTF-8 in a body",
        request(
            "POST",
            format!("{CMS}{DRY}").as_bytes(),
            &[("Content-Type", ty)],
            &body,
        ),
        Expect::OkOr(&[400, 422]),
    )
}

fn invalid_utf8_path(rng: &mut StdRng) -> Case {
    // Raw bytes above 0x7f are not a valid request target: hyper refuses them (bare 400).
    let (what, target): (&str, &[u8]) = match rng.random_range(0..3) {
        0 => (
            "path",
            b"/api/v1/namespaces/hostile/configmaps/\xff\xfe\xc3",
        ),
        1 => (
            "query",
            b"/api/v1/namespaces/hostile/configmaps?labelSelector=\xff",
        ),
        _ => (
            "query name",
            b"/api/v1/namespaces/hostile/configmaps?\xc3\x28=1",
        ),
    };
    Case::new(
        format!("raw invalid UTF-8 in the {what}"),
        request("GET", target, &[], b""),
        Expect::Protocol,
    )
}

fn percent_garbage_path(rng: &mut StdRng) -> Case {
    let garbage = pick(
        rng,
        &[
            "%ff%fe",
            "%",
            "%zz",
            "%%%",
            "%00",
            "%2e%2e/%2e%2e/etc/passwd",
            "%c0%af",
            "a%2Fb",
            "%ed%a0%80",
        ],
    );
    let t = match rng.random_range(0..3) {
        0 => format!("{CMS}/{garbage}"),
        1 => format!("/api/v1/namespaces/{garbage}/configmaps/x"),
        _ => format!("/apis/{garbage}/v1/things"),
    };
    Case::new(
        "percent-encoded garbage in the path",
        request("GET", t.as_bytes(), &[], b""),
        Expect::OkOr(NOT_FOUND),
    )
}

fn percent_garbage_query(rng: &mut StdRng) -> Case {
    let (q, expect): (&str, Expect) = match rng.random_range(0..4) {
        0 => ("labelSelector=%ff%fe", Expect::Status(BAD_REQUEST)),
        1 => ("fieldSelector=%ff%fe%00", Expect::Status(BAD_REQUEST)),
        2 => ("limit=%ff", Expect::Status(BAD_REQUEST)),
        _ => ("%ff%fe=%zz&&&=&%", Expect::OkOr(BAD_REQUEST)),
    };
    Case::new(
        "percent-encoded garbage in the query",
        request("GET", format!("{CMS}?{q}").as_bytes(), &[], b""),
        expect,
    )
}

fn invalid_utf8_headers(rng: &mut StdRng) -> Case {
    let cm = stored(rng);
    let v: &[u8] = pick_bytes(
        rng,
        &[&b"application/json\xff"[..], b"\xc3\x28", b"text/\xfe\xff"],
    );
    match rng.random_range(0..3) {
        0 => Case::new(
            "invalid UTF-8 Content-Type",
            request(
                "POST",
                format!("{CMS}{DRY}").as_bytes(),
                &[("Content-Type", v)],
                cm_json("x").as_bytes(),
            ),
            Expect::Status(UNSUPPORTED),
        ),
        1 => Case::new(
            "invalid UTF-8 Accept",
            request("GET", cm.as_bytes(), &[("Accept", v)], b""),
            Expect::OkOr(&[406]),
        ),
        _ => Case::new(
            "invalid UTF-8 in other headers",
            request(
                "GET",
                cm.as_bytes(),
                &[("User-Agent", v), ("X-Junk", v)],
                b"",
            ),
            Expect::OkOr(&[]),
        ),
    }
}

fn long_url(rng: &mut StdRng) -> Case {
    let n = *pick(rng, &[8_000, 30_000, 60_000, 70_000, 200_000, 2_000_000]);
    let t = format!("{CMS}/{}", "n".repeat(n));
    // Up to 64 KiB the URL reaches the API (404); beyond, hyper refuses it.
    let expect = if n <= 60_000 {
        Expect::Status(NOT_FOUND)
    } else {
        Expect::Protocol
    };
    Case::new(
        "very long URL",
        request("GET", t.as_bytes(), &[], b""),
        expect,
    )
}

fn long_headers(rng: &mut StdRng) -> Case {
    let cm = stored(rng);
    let n = *pick(rng, &[10_000, 100_000, 1_000_000, 4_000_000]);
    let v = vec![b'h'; n];
    if rng.random_bool(0.5) {
        let expect = if n <= 100_000 {
            Expect::OkOr(&[])
        } else {
            Expect::Protocol
        };
        Case::new(
            "very long header",
            request("GET", cm.as_bytes(), &[("X-Junk", &v)], b""),
            expect,
        )
    } else {
        let names: Vec<String> = (0..rng.random_range(150..3000))
            .map(|k| format!("X-H{k}"))
            .collect();
        let hs: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"v"[..])).collect();
        Case::new(
            "thousands of headers",
            request("GET", cm.as_bytes(), &hs, b""),
            Expect::Protocol,
        )
    }
}

// === media types, methods, unknown paths ===

fn unsupported_content_type(rng: &mut StdRng) -> Case {
    let cm = stored(rng);
    let ty: &[u8] = pick_bytes(
        rng,
        &[
            &b"text/plain"[..],
            b"application/xml",
            b"application/json-patch+json",
            b"multipart/form-data; boundary=x",
            b"application/x-www-form-urlencoded",
            b"*/*",
            b"application/",
            b";;;",
            b"application/cbor",
        ],
    );
    let (m, t) = if rng.random_bool(0.5) {
        ("POST", format!("{CMS}{DRY}"))
    } else {
        ("PUT", format!("{cm}{DRY}"))
    };
    Case::new(
        format!(
            "unsupported Content-Type {} for a write",
            String::from_utf8_lossy(ty)
        ),
        request(
            m,
            t.as_bytes(),
            &[("Content-Type", ty)],
            cm_json("x").as_bytes(),
        ),
        Expect::Status(UNSUPPORTED),
    )
}

fn unknown_patch_type(rng: &mut StdRng) -> Case {
    let cm = stored(rng);
    let ty: &[&[u8]] = &[
        b"application/json",
        b"application/yaml",
        b"application/foo-patch+json",
        b"text/plain",
        b"application/vnd.kubernetes.protobuf",
    ];
    let hs: Vec<(&str, &[u8])> = if rng.random_bool(0.2) {
        vec![]
    } else {
        vec![("Content-Type", *pick(rng, ty))]
    };
    Case::new(
        "unknown or missing patch type",
        request(
            "PATCH",
            format!("{cm}{DRY}").as_bytes(),
            &hs,
            br#"{"data":{"k":"changed"}}"#,
        ),
        Expect::Status(UNSUPPORTED),
    )
}

fn wrong_method(rng: &mut StdRng) -> Case {
    let cm = stored(rng);
    let (m, t): (&str, String) = match rng.random_range(0..6) {
        0 => ("PUT", CMS.to_string()),
        1 => ("POST", cm.clone()),
        2 => ("PATCH", CMS.to_string()),
        3 => ("BREW", cm.clone()),
        4 => ("TRACE", cm.clone()),
        _ => ("OPTIONS", CMS.to_string()),
    };
    Case::new(
        "wrong method",
        json_req(m, &t, cm_json("cm-0").as_bytes()),
        Expect::Status(METHOD_NOT_ALLOWED),
    )
}

fn unknown_path(rng: &mut StdRng) -> Case {
    let t = pick(
        rng,
        &[
            "/foo",
            "/apis/unicorn.example.com/v1/horns",
            "/api/v2/pods",
            "/api/v1/namespaces/hostile/unicorns",
            "/apis/apps/v9/namespaces/hostile/deployments",
            "/api/v1/namespaces/hostile/configmaps/cm-0/bogus",
            "/api/v1/namespaces/hostile/configmaps/nope/status",
            "/apis/apps/v1/namespaces/hostile/deployments/nope/scale",
            "/api/v1/namespaces/hostile/configmaps/nope",
            "/apis/apps/v1/namespaces/hostile/unicorns/x",
            "/api/v1/namespaces/hostile/configmaps/a/b/c/d/e/f/g",
            "/openapi/v3/apis/unicorn/v1",
            "/apis/a/b/c/d/e/f/g/h/i",
        ],
    );
    let m = *pick(rng, &["GET", "POST", "PUT", "DELETE", "PATCH"]);
    let hs: &[(&str, &[u8])] = if m == "PATCH" {
        &[("Content-Type", b"application/merge-patch+json")]
    } else {
        &[("Content-Type", b"application/json")]
    };
    // A known resource with a wrong method for it is 405; an unknown path 404. A PUT of
    // `{}` to an object's path is refused before the object is looked up, because the
    // body does not name it (upstream's checkName): 400.
    let expect: &'static [u16] = if m == "PUT" && t.ends_with("/configmaps/nope") {
        &[400]
    } else {
        &[404, 405]
    };
    Case::new(
        "unknown group, version, resource or subresource",
        request(m, t.as_bytes(), hs, b"{}"),
        Expect::Status(expect),
    )
}

fn unacceptable_accept(rng: &mut StdRng) -> Case {
    let cm = stored(rng);
    let accept: &[u8] = pick_bytes(
        rng,
        &[
            &b"text/html"[..],
            b"application/xml",
            b"image/png",
            b"application/vnd.kubernetes.protobuf;q=1, text/plain",
        ],
    );
    Case::new(
        "unacceptable Accept",
        request("GET", cm.as_bytes(), &[("Accept", accept)], b""),
        Expect::Status(&[406]),
    )
}

// === protobuf ===

fn random_protobuf(rng: &mut StdRng) -> Case {
    let body = match rng.random_range(0..3) {
        0 => random_bytes(rng, 4096),
        1 => {
            let mut b = b"k8s\0".to_vec();
            b.extend(random_bytes(rng, 4096));
            b
        }
        _ => {
            let full = proto_envelope("v1", "ConfigMap", &random_bytes(rng, 512));
            let cut = rng.random_range(0..full.len());
            full[..cut].to_vec()
        }
    };
    Case::new(
        "random or truncated protobuf",
        request(
            "POST",
            format!("{CMS}{DRY}").as_bytes(),
            &[("Content-Type", b"application/vnd.kubernetes.protobuf")],
            &body,
        ),
        Expect::OkOr(&[400, 422]),
    )
}

fn nested_protobuf(rng: &mut StdRng) -> Case {
    let cm = stored(rng);
    // The ConfigMap's ObjectMeta (field 1) nested in itself, built inside out.
    let depth = rng.random_range(100..20_000);
    let mut prefixes: Vec<Vec<u8>> = Vec::with_capacity(depth);
    let mut len = 0;
    for _ in 0..depth {
        let mut p = vec![0x0a];
        varint(len, &mut p);
        len += p.len();
        prefixes.push(p);
    }
    let raw: Vec<u8> = prefixes.into_iter().rev().flatten().collect();
    let body = proto_envelope("v1", "ConfigMap", &raw);
    Case::new(
        "deeply nested protobuf",
        request(
            "PUT",
            cm.as_bytes(),
            &[("Content-Type", b"application/vnd.kubernetes.protobuf")],
            &body,
        ),
        Expect::Status(BAD_REQUEST),
    )
}

fn bogus_protobuf(rng: &mut StdRng) -> Case {
    let body = match rng.random_range(0..3) {
        0 => proto_envelope("v1", "Unicorn", b""),
        1 => {
            let mut b = b"k8s\0\x12".to_vec();
            b.extend_from_slice(&[0xff; 10]);
            b
        }
        _ => {
            let mut b = b"k8s\0\x12\xff\xff\xff\xff\x0f".to_vec();
            b.extend_from_slice(b"short");
            b
        }
    };
    Case::new(
        "protobuf with an unknown kind or bogus lengths",
        request(
            "POST",
            format!("{CMS}{DRY}").as_bytes(),
            &[("Content-Type", b"application/vnd.kubernetes.protobuf")],
            &body,
        ),
        Expect::Status(BAD_REQUEST),
    )
}

// === query garbage ===

fn list_or_watch_parameters(rng: &mut StdRng) -> Case {
    // Upstream decodes list options strictly (integers must parse, 400) but reads
    // any boolean other than "false"/"0" as true, then validates them (422).
    const LIST: &[(&str, &[u16])] = &[
        ("resourceVersion=abc", &[400, 422]),
        ("resourceVersion=-5", &[400, 422]),
        ("limit=abc", BAD_REQUEST),
        ("limit=99999999999999999999999", BAD_REQUEST),
        ("continue=garbage", BAD_REQUEST),
        (
            "continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6LTEsInN0YXJ0IjoiLi4vLi4ifQ",
            BAD_REQUEST,
        ),
        ("limit=1&continue=%ff", BAD_REQUEST),
        ("fieldSelector=metadata.name%3D%3D%3Dx%3D", BAD_REQUEST),
        ("fieldSelector=spec.unknown%3Dx", BAD_REQUEST),
        ("labelSelector=!!!", BAD_REQUEST),
        ("labelSelector=a%20in%20(b", BAD_REQUEST),
        ("labelSelector=a%3D%3D%3Db", BAD_REQUEST),
        ("timeoutSeconds=abc", BAD_REQUEST),
        ("resourceVersionMatch=Bogus&resourceVersion=1", INVALID),
        (
            "resourceVersion=1&resourceVersionMatch=Exact&continue=x",
            INVALID,
        ),
        ("allowWatchBookmarks=perhaps", &[]),
        ("watch=maybe", &[]),
    ];
    const WATCH: &[(&str, &[u16])] = &[
        (
            "watch=1&timeoutSeconds=99999999999999999999999",
            BAD_REQUEST,
        ),
        ("watch=1&timeoutSeconds=-1x", BAD_REQUEST),
        ("watch=true&resourceVersion=abc", &[400, 422]),
        ("watch=1&labelSelector=((", BAD_REQUEST),
        ("watch=1&fieldSelector=a%3Db%3Dc", BAD_REQUEST),
        ("watch=1&sendInitialEvents=maybe", INVALID),
        ("watch=1&sendInitialEvents=true", INVALID),
        ("watch=1&allowWatchBookmarks=perhaps", &[]),
    ];
    let list = rng.random_bool(0.5);
    let (q, codes) = *pick(rng, if list { LIST } else { WATCH });
    let expect = if codes.is_empty() {
        Expect::OkOr(&[])
    } else {
        Expect::Status(codes)
    };
    let mut c = Case::new(
        format!("garbage list/watch parameter {q}"),
        request("GET", format!("{CMS}?{q}").as_bytes(), &[], b""),
        expect,
    );
    // A query that turns out to be a valid watch streams: its head is enough.
    c.head_only = true;
    c
}

fn write_parameters(rng: &mut StdRng) -> Case {
    let long_manager = format!("dryRun=All&fieldManager={}", "m".repeat(300));
    let q = pick(
        rng,
        &[
            "dryRun=Maybe",
            "dryRun=All&fieldValidation=Loose",
            &long_manager,
            "dryRun=Nope&dryRun=All",
        ],
    )
    .to_string();
    Case::new(
        "garbage write parameters",
        json_req("POST", &format!("{CMS}?{q}"), cm_json("qp").as_bytes()),
        Expect::Status(&[400, 422]),
    )
}

// === writes to stored objects that must fail and change nothing ===

fn stored_object_write(rng: &mut StdRng) -> Case {
    const JSON: &str = "application/json";
    const JSON_PATCH: &str = "application/json-patch+json";
    const MERGE: &str = "application/merge-patch+json";
    // (method, content type, body, query, codes)
    const WRITES: &[(&str, &str, &str, &str, &[u16])] = &[
        (
            "PUT",
            JSON,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other-name"}}"#,
            "",
            BAD_REQUEST,
        ),
        (
            "PUT",
            JSON,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-0","resourceVersion":"1"},"data":{"k":"changed"}}"#,
            "",
            &[400, 409],
        ),
        (
            "PUT",
            JSON,
            r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"cm-0"}}"#,
            "",
            BAD_REQUEST,
        ),
        (
            "PATCH",
            JSON_PATCH,
            r#"[{"op":"test","path":"/data/k","value":"nope"},{"op":"replace","path":"/data/k","value":"changed"}]"#,
            "",
            INVALID,
        ),
        (
            "PATCH",
            JSON_PATCH,
            r#"[{"op":"explode","path":"/data"}]"#,
            "",
            &[400, 422],
        ),
        (
            "PATCH",
            MERGE,
            r#"{"metadata":{"name":"renamed"}}"#,
            "",
            &[400, 422],
        ),
        (
            "PATCH",
            "application/strategic-merge-patch+json",
            "[1,2,3]",
            "",
            &[400, 422],
        ),
        (
            "PATCH",
            "application/apply-patch+yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cm-0\n",
            "?fieldManager=hostile",
            &[400, 422],
        ),
    ];
    let cm = stored(rng);
    let (method, ty, body, query, codes) = *pick(rng, WRITES);
    Case::new(
        "hostile write to a stored object",
        request(
            method,
            format!("{cm}{query}").as_bytes(),
            &[("Content-Type", ty.as_bytes())],
            body.as_bytes(),
        ),
        Expect::Status(codes),
    )
}

fn stored_object_delete(rng: &mut StdRng) -> Case {
    let cm = stored(rng);
    let (t, body, expect): (String, &[u8], Expect) = match rng.random_range(0..6) {
        0 => (
            format!("{cm}?gracePeriodSeconds=abc"),
            b"",
            Expect::Status(BAD_REQUEST),
        ),
        1 => (
            format!("{cm}?propagationPolicy=Sideways"),
            b"",
            Expect::Status(&[400, 422]),
        ),
        2 => (
            format!("{cm}?dryRun=Maybe"),
            b"",
            Expect::Status(BAD_REQUEST),
        ),
        3 => (
            cm.clone(),
            br#"{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"wrong"}}"#,
            Expect::Status(&[409]),
        ),
        4 => (cm.clone(), b"{{{ not json", Expect::Status(BAD_REQUEST)),
        _ => (
            format!("{CMS}?labelSelector=!!!"),
            b"",
            Expect::Status(BAD_REQUEST),
        ),
    };
    Case::new("hostile delete", json_req("DELETE", &t, body), expect)
}

// === protocol garbage over TLS, and non-TLS bytes ===

fn protocol_garbage(rng: &mut StdRng) -> Case {
    const POST: &str = "POST /api/v1/namespaces/hostile/configmaps?dryRun=All HTTP/1.1\r\nHost: x";
    let bytes: Vec<u8> = match rng.random_range(0..10) {
        0 => random_bytes(rng, 2048),
        1 => b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        2 => b"GET /api HTTP/1.1\r\nNo-Colon-Here\r\n\r\n".to_vec(),
        3 => b"GET /api HTTP/1.1\r\nHost: x\r\nX-Ctl: a\x01b\r\n\r\n".to_vec(),
        4 => format!("{POST}\r\nContent-Length: -1\r\n\r\n").into_bytes(),
        5 => format!("{POST}\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello").into_bytes(),
        6 => format!("{POST}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
            .into_bytes(),
        7 => b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\xff\xff\xff\xff\xff\xffjunk".to_vec(),
        8 => b"\r\n\r\n\r\n\r\n\r\n\r\n".repeat(1000),
        _ => b"GET\x00/api HTTP/1.1\r\n\r\n".to_vec(),
    };
    let mut c = Case::new("protocol garbage over TLS", bytes, Expect::Protocol);
    // The bytes end where the client closes: an unfinished head must not wait for more.
    c.half_close = true;
    c
}

fn ambiguous_framing(rng: &mut StdRng) -> Case {
    let t = format!("{CMS}?dryRun=All");
    let mut c = match rng.random_range(0..3) {
        // Both framings: hyper refuses, or reads the chunked body (400: no kind).
        0 => Case::new(
            "Content-Length and Transfer-Encoding together",
            format!(
                "POST {t} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\
                 Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            )
            .into_bytes(),
            Expect::Protocol,
        ),
        1 => Case::new(
            "HTTP/1.0 without Host",
            format!("GET {t} HTTP/1.0\r\n\r\n").into_bytes(),
            Expect::OkOr(&[]),
        ),
        _ => Case::new(
            "pipelined dry-run delete and garbage",
            format!(
                "DELETE {CMS}/cm-0?dryRun=All HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n\
                 GET /junk HTTP/1.1\r\n\r\n"
            )
            .into_bytes(),
            Expect::OkOr(&[]),
        ),
    };
    c.reuse = false;
    c
}

fn not_tls(rng: &mut StdRng) -> Case {
    let bytes = match rng.random_range(0..3) {
        0 => b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(),
        1 => random_bytes(rng, 4096),
        _ => {
            // A TLS record header announcing a huge handshake message, then junk.
            let mut b = vec![0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0xff, 0xff, 0xff];
            b.extend(random_bytes(rng, 512));
            b
        }
    };
    let mut c = Case::new("non-TLS bytes on the TLS port", bytes, Expect::Closed);
    c.raw = true;
    c
}

// === slow and idle clients ===

/// Connections that must be gone before the run ends.
struct Lingering {
    name: &'static str,
    done: tokio::task::JoinHandle<Result<(), String>>,
}

/// Idle TLS connections: handshake, then silence; the server must close them.
fn idle_tls(target: &Arc<Target>, started: Instant) -> Lingering {
    let target = target.clone();
    Lingering {
        name: "idle TLS connection",
        done: tokio::spawn(async move {
            let mut conn = target
                .connect()
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let mut b = [0u8; 64];
            match tokio::time::timeout_at((started + DROPPED_WITHIN).into(), conn.read(&mut b))
                .await
            {
                Ok(_) => Ok(()),
                Err(_) => Err("still open".into()),
            }
        }),
    }
}

/// Idle TCP connections that never start TLS.
fn idle_tcp(target: &Arc<Target>, started: Instant) -> Lingering {
    let target = target.clone();
    Lingering {
        name: "idle TCP connection",
        done: tokio::spawn(async move {
            let mut tcp = target.tcp().await.map_err(|e| format!("connect: {e}"))?;
            let mut b = [0u8; 64];
            match tokio::time::timeout_at((started + DROPPED_WITHIN).into(), tcp.read(&mut b)).await
            {
                Ok(_) => Ok(()),
                Err(_) => Err("still open".into()),
            }
        }),
    }
}

/// A client sending its headers one byte a second, forever.
fn slowloris(target: &Arc<Target>, started: Instant) -> Lingering {
    let target = target.clone();
    Lingering {
        name: "slowloris (headers one byte a second)",
        done: tokio::spawn(async move {
            let conn = target
                .connect()
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let (mut rd, mut wr) = tokio::io::split(conn);
            let writer = tokio::spawn(async move {
                let mut bytes =
                    b"GET /api/v1/namespaces/hostile/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        .to_vec();
                bytes.extend(b"X-Slow: a\r\n".repeat(1000));
                for b in bytes {
                    if wr.write_all(&[b]).await.is_err() || wr.flush().await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
            let mut b = [0u8; 1024];
            let r =
                tokio::time::timeout_at((started + DROPPED_WITHIN).into(), rd.read(&mut b)).await;
            writer.abort();
            match r {
                Ok(_) => Ok(()),
                Err(_) => Err("still open".into()),
            }
        }),
    }
}

/// A client that stops in the middle of its body: once the request timeout passes the
/// server answers 504 Timeout (and closes, the body being unread).
fn stalled_body(target: &Arc<Target>, started: Instant, chunked: bool) -> Lingering {
    let target = target.clone();
    Lingering {
        name: if chunked {
            "chunked body that stalls"
        } else {
            "body that stops mid-way"
        },
        done: tokio::spawn(async move {
            let mut conn = target
                .connect()
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let framing = if chunked {
                ("Transfer-Encoding", "chunked".to_string())
            } else {
                ("Content-Length", "1000".to_string())
            };
            let mut bytes = head(
                "POST",
                &format!("{CMS}?dryRun=All"),
                &[
                    ("Content-Type", "application/json"),
                    (framing.0, &framing.1),
                ],
            );
            bytes.extend_from_slice(if chunked {
                b"a\r\n{\"apiVersi\r\n"
            } else {
                b"{\"apiVersi"
            });
            conn.write_all(&bytes)
                .await
                .map_err(|e| format!("write: {e}"))?;
            conn.flush().await.map_err(|e| format!("flush: {e}"))?;
            let out = tokio::time::timeout_at(
                (started + DROPPED_WITHIN).into(),
                read_response(&mut conn, false),
            )
            .await;
            match out {
                Err(_) => Err("still open".into()),
                Ok(Outcome::Response {
                    code: 504, body, ..
                }) => check_status(504, &body),
                Ok(other) => Err(format!("unexpected answer: {}", other.describe())),
            }
        }),
    }
}

// === fixtures and checks ===

/// A one-off request on a fresh connection.
async fn call(target: &Target, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let bytes = match body {
        Some(b) => json_req(method, path, b.to_string().as_bytes()),
        None => request(method, path.as_bytes(), &[], b""),
    };
    let case = Case::new("fixture", bytes, Expect::OkOr(&[]));
    let (out, _) = exchange(target, None, &case).await;
    match out {
        Outcome::Response { code, body, .. } => {
            (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
        }
        other => panic!("{method} {path}: {}", other.describe()),
    }
}

/// CPU time `pid` has used so far.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which ends with the last ')'.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn seed() -> u64 {
    match std::env::var("K1S_HOSTILE_SEED") {
        Ok(s) => s.parse().expect("K1S_HOSTILE_SEED must be a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

#[test]
fn ten_thousand_hostile_requests_leave_the_server_up_bounded_and_unchanged() {
    // A server must survive whatever a network peer sends; one panic, hang or leak here
    // is a denial of service for every client of the cluster.
    let seed = seed();
    println!("hostile: seed {seed} (rerun with K1S_HOSTILE_SEED={seed})");
    let k1s = K1s::start_with(&["--request-timeout", &format!("{REQUEST_TIMEOUT_S}s")]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let failures = runtime.block_on(run(&k1s, seed));
    if !failures.is_empty() {
        // One line per kind of failure, with its first example.
        let mut kinds = std::collections::BTreeMap::<&str, (usize, &str)>::new();
        for (what, example) in &failures {
            kinds.entry(what).or_insert((0, example)).0 += 1;
        }
        let report: Vec<String> = kinds
            .iter()
            .map(|(what, (n, example))| format!("{n} × {what}\n    e.g. {example}"))
            .collect();
        panic!(
            "seed {seed}: {} failures:\n{}",
            failures.len(),
            report.join("\n")
        );
    }
}

/// What the request workers share.
struct Shared {
    target: Arc<Target>,
    seed: u64,
    /// How many cases to send.
    total: usize,
    /// The next case to send.
    next: AtomicUsize,
    failures: Mutex<Vec<Failure>>,
    /// Per case and outcome: how many, and how long they took together.
    stats: Mutex<std::collections::BTreeMap<String, (usize, Duration)>>,
}

/// Sends cases until all are sent, keeping a connection while answers allow it.
async fn worker(shared: Arc<Shared>) {
    let mut conn: Option<Tls> = None;
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= shared.total {
            return;
        }
        let c = case(shared.seed, i);
        let began = Instant::now();
        let (out, kept) = exchange(&shared.target, conn.take(), &c).await;
        conn = kept;
        let key = match &out {
            Outcome::Response { code, .. } => format!("{} → {code}", c.name),
            Outcome::Closed(_) => format!("{} → closed", c.name),
            Outcome::Hung => format!("{} → HUNG", c.name),
        };
        let mut stats = shared.stats.lock().await;
        let entry = stats.entry(key).or_default();
        *entry = (entry.0 + 1, entry.1 + began.elapsed());
        drop(stats);
        if let Err(e) = judge(&c, &out) {
            let example = format!("case {i}: {}", out.describe());
            shared
                .failures
                .lock()
                .await
                .push((format!("{}: {e}", c.name), example));
        }
        if i.is_multiple_of(50) {
            let (out, kept) = exchange(&shared.target, conn.take(), &control()).await;
            conn = kept;
            if !control_ok(&out) {
                let what = format!("control GET after case {i} failed: {}", out.describe());
                shared.failures.lock().await.push(failure(what));
            }
        }
    }
}

/// A well-behaved request interleaved with the hostile ones.
fn control() -> Case {
    let get = request("GET", format!("{CMS}/cm-1").as_bytes(), &[], b"");
    Case::new("control", get, Expect::OkOr(&[]))
}

fn control_ok(out: &Outcome) -> bool {
    let Outcome::Response {
        code: 200, body, ..
    } = out
    else {
        return false;
    };
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v.pointer("/data/k") == Some(&json!("v1"))
}

/// A failure: what went wrong (grouped on) and one example.
type Failure = (String, String);

fn failure(what: String) -> Failure {
    (what.clone(), what)
}

async fn run(k1s: &K1s, seed: u64) -> Vec<Failure> {
    let started = Instant::now();
    let target = Arc::new(Target::new(k1s));
    let pid = k1s.pid();
    let mut failures: Vec<Failure> = Vec::new();

    // Objects that nothing below may change.
    let (code, _) = call(
        &target,
        "POST",
        "/api/v1/namespaces",
        Some(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})),
    )
    .await;
    assert_eq!(code, 201, "create namespace");
    let mut fixtures = Vec::new();
    for n in 0..3 {
        let cm = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{n}"), "labels": {"n": n.to_string()}},
            "data": {"k": format!("v{n}")},
        });
        let (code, body) = call(&target, "POST", CMS, Some(&cm)).await;
        assert_eq!(code, 201, "create cm-{n}: {body}");
        fixtures.push((format!("{CMS}/cm-{n}"), body));
    }
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s-0"},
        "stringData": {"password": "hunter2"},
    });
    let secrets = "/api/v1/namespaces/hostile/secrets";
    let (code, body) = call(&target, "POST", secrets, Some(&secret)).await;
    assert_eq!(code, 201, "create secret: {body}");
    fixtures.push(("/api/v1/namespaces/hostile/secrets/s-0".to_string(), body));

    // Memory: sampled all along.
    let max_rss = Arc::new(AtomicU64::new(0));
    let sampling = {
        let max_rss = max_rss.clone();
        tokio::spawn(async move {
            loop {
                if let Some(kib) = rss_kib(pid) {
                    max_rss.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // Slow and idle clients, held while everything else runs.
    let mut lingering = Vec::new();
    for _ in 0..IDLE_TCP {
        lingering.push(idle_tcp(&target, started));
    }
    for _ in 0..IDLE_TLS {
        lingering.push(idle_tls(&target, started));
    }
    for _ in 0..SLOWLORIS {
        lingering.push(slowloris(&target, started));
    }
    for n in 0..STALLED_BODIES {
        lingering.push(stalled_body(&target, started, n % 2 == 0));
    }

    // The hostile requests, with a control request every 50 to show others are served.
    let shared = Arc::new(Shared {
        target: target.clone(),
        seed,
        total: hostile_requests(),
        next: AtomicUsize::new(0),
        failures: Mutex::new(Vec::new()),
        stats: Mutex::new(std::collections::BTreeMap::new()),
    });
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| tokio::spawn(worker(shared.clone())))
        .collect();
    for w in workers {
        if let Err(e) = w.await {
            failures.push(failure(format!("a worker panicked: {e}")));
        }
    }
    let sent = started.elapsed();
    for l in lingering {
        match l.done.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(failure(format!("{}: {e}", l.name))),
            Err(e) => failures.push(failure(format!("{}: task failed: {e}", l.name))),
        }
    }
    sampling.abort();
    failures.extend(shared.failures.lock().await.drain(..));

    // Still up, still ready, nothing changed.
    let (code, _) = call(&target, "GET", "/readyz", None).await;
    if code != 200 {
        failures.push(failure(format!("/readyz answered {code} at the end")));
    }
    for (path, before) in &fixtures {
        let (code, now) = call(&target, "GET", path, None).await;
        if code != 200 || &now != before {
            failures.push(failure(format!(
                "{path} changed:\nbefore {before}\nnow ({code}) {now}"
            )));
        }
    }
    let (_, list) = call(&target, "GET", CMS, None).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i.pointer("/metadata/name")?.as_str())
        .collect();
    for name in &names {
        if !["cm-0", "cm-1", "cm-2", "kube-root-ca.crt"].contains(name) {
            failures.push(failure(format!(
                "a hostile request stored configmap {name}"
            )));
        }
    }
    let max = max_rss.load(Ordering::Relaxed);
    if max > MAX_RSS_KIB {
        failures.push(failure(format!(
            "server RSS reached {max} KiB (bound {MAX_RSS_KIB} KiB)"
        )));
    }
    let mut summary = String::new();
    for (k, (n, took)) in shared.stats.lock().await.iter() {
        summary.push_str(&format!("  {n:>5} {:>7.1?}  {k}\n", *took / (*n as u32)));
    }
    println!(
        "hostile: {} requests in {sent:?}, all checks after {:?}; server CPU {:?}, \
         max RSS {} MiB\n{summary}",
        shared.total,
        started.elapsed(),
        cpu_time(pid).unwrap_or_default(),
        max / 1024
    );
    failures
}

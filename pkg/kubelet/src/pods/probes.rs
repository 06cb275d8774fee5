//! Liveness, readiness and startup probes (exec through the runtime, httpGet, tcpSocket,
//! grpc), with every timing field, and the lifecycle hooks (postStart, preStop) that share
//! their handlers — upstream's `prober/` and `lifecycle/`.
//!
//! One task per running container and probe kind; results land in a map the pod's worker
//! reads, and a change wakes it (readiness drives `Ready`; a liveness or startup failure
//! has the worker restart the container with an `Unhealthy` event before it).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container as SpecContainer, HTTPGetAction, LifecycleHandler, Pod, Probe,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::Ctx;
use super::status::{ProbeState, name_of};
use crate::events::EventType;
use crate::runtime::{Container, ContainerState, StreamRequest};

/// Probe output kept for messages.
const MAX_OUTPUT: usize = 10 * 1024;

#[derive(Debug, Clone, Default)]
struct Entry {
    state: ProbeState,
    /// Why the container must be restarted (liveness or startup failure).
    restart: Option<String>,
}

/// The probes of one pod's containers.
pub(crate) struct Probes {
    ctx: Arc<Ctx>,
    notify: Arc<Notify>,
    shared: Arc<Mutex<HashMap<String, Entry>>>,
    tasks: HashMap<String, Vec<JoinHandle<()>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Liveness,
    Readiness,
    Startup,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }
}

impl Probes {
    /// No probes running yet; results wake `notify`.
    pub(crate) fn new(ctx: Arc<Ctx>, notify: Arc<Notify>) -> Self {
        Self {
            ctx,
            notify,
            shared: Arc::new(Mutex::new(HashMap::new())),
            tasks: HashMap::new(),
        }
    }

    /// Results by container id.
    pub(crate) fn states(&self) -> HashMap<String, ProbeState> {
        self.shared
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.state))
            .collect()
    }

    /// The Killing note when container `id` failed its liveness or startup probe.
    pub(crate) fn liveness_failure(&self, id: &str) -> Option<String> {
        self.shared.lock().get(id).and_then(|e| e.restart.clone())
    }

    /// Stops probing container `id` and forgets its results.
    pub(crate) fn forget(&mut self, id: &str) {
        if let Some(tasks) = self.tasks.remove(id) {
            for t in tasks {
                t.abort();
            }
        }
        self.shared.lock().remove(id);
    }

    /// Stops every probe.
    pub(crate) fn stop_all(&mut self) {
        let ids: Vec<String> = self.tasks.keys().cloned().collect();
        for id in ids {
            self.forget(&id);
        }
    }

    /// Probes every running container of the pod that has probes, and stops probing
    /// the others.
    pub(crate) fn sync(&mut self, pod: &Pod, containers: &[Container], pod_ips: Vec<IpAddr>) {
        let running: Vec<&Container> = containers
            .iter()
            .filter(|c| c.state == ContainerState::Running)
            .collect();
        let gone: Vec<String> = self
            .tasks
            .keys()
            .filter(|id| !running.iter().any(|c| c.id == **id))
            .cloned()
            .collect();
        for id in gone {
            self.forget(&id);
        }
        let spec = pod.spec.clone().unwrap_or_default();
        for rc in running {
            if self.tasks.contains_key(&rc.id) {
                continue;
            }
            let Some(c) = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|c| c.name == name_of(rc))
            else {
                continue;
            };
            let init = spec
                .init_containers
                .iter()
                .flatten()
                .any(|i| i.name == c.name);
            let mut tasks = Vec::new();
            for (kind, probe) in [
                (Kind::Startup, &c.startup_probe),
                (Kind::Liveness, &c.liveness_probe),
                (Kind::Readiness, &c.readiness_probe),
            ] {
                let Some(probe) = probe.clone() else {
                    continue;
                };
                tasks.push(tokio::spawn(probe_loop(ProbeTask {
                    ctx: self.ctx.clone(),
                    notify: self.notify.clone(),
                    shared: self.shared.clone(),
                    pod: pod.clone(),
                    container: c.clone(),
                    init,
                    id: rc.id.clone(),
                    started_at: rc.started_at,
                    kind,
                    probe,
                    has_startup: c.startup_probe.is_some(),
                    pod_ips: pod_ips.clone(),
                })));
            }
            self.tasks.insert(rc.id.clone(), tasks);
        }
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        self.stop_all();
    }
}

struct ProbeTask {
    ctx: Arc<Ctx>,
    notify: Arc<Notify>,
    shared: Arc<Mutex<HashMap<String, Entry>>>,
    pod: Pod,
    container: SpecContainer,
    init: bool,
    id: String,
    started_at: Option<std::time::SystemTime>,
    kind: Kind,
    probe: Probe,
    has_startup: bool,
    pod_ips: Vec<IpAddr>,
}

fn secs(v: Option<i32>, default: i32, min: i32) -> Duration {
    Duration::from_secs(u64::try_from(v.unwrap_or(default).max(min)).unwrap_or(0))
}

async fn probe_loop(t: ProbeTask) {
    let p = &t.probe;
    let period = secs(p.period_seconds, 10, 1);
    let timeout = secs(p.timeout_seconds, 1, 1);
    let success_threshold = p.success_threshold.unwrap_or(1).max(1);
    let failure_threshold = p.failure_threshold.unwrap_or(3).max(1);
    let delay = secs(p.initial_delay_seconds, 0, 0);
    let since_start = t
        .started_at
        .and_then(|s| std::time::SystemTime::now().duration_since(s).ok())
        .unwrap_or_default();
    if let Some(wait) = delay.checked_sub(since_start) {
        tokio::time::sleep(wait).await;
    }
    let (mut successes, mut failures) = (0, 0);
    let field_path = if t.init {
        format!("spec.initContainers{{{}}}", t.container.name)
    } else {
        format!("spec.containers{{{}}}", t.container.name)
    };
    loop {
        let started = t
            .shared
            .lock()
            .get(&t.id)
            .and_then(|e| e.state.started)
            .unwrap_or(false);
        let waits_for_startup = t.kind != Kind::Startup && t.has_startup && !started;
        if t.kind == Kind::Startup && started {
            return;
        }
        if !waits_for_startup {
            let result = run_probe(&t, timeout).await;
            match result {
                Ok(()) => {
                    successes += 1;
                    failures = 0;
                }
                Err(msg) => {
                    // A container that just ended fails its probes; that is its exit, not
                    // an unhealthy container (the worker reports the exit).
                    let running = t.ctx.runtime.list_containers().await.is_ok_and(|cs| {
                        cs.iter()
                            .any(|c| c.id == t.id && c.state == ContainerState::Running)
                    });
                    if !running {
                        tokio::time::sleep(period).await;
                        continue;
                    }
                    failures += 1;
                    successes = 0;
                    t.ctx.recorder.pod(
                        &t.pod,
                        Some(field_path.clone()),
                        EventType::Warning,
                        "Unhealthy",
                        format!("{} probe failed: {msg}", t.kind.word()),
                    );
                }
            }
            let changed = {
                let mut map = t.shared.lock();
                let e = map.entry(t.id.clone()).or_default();
                let before = e.clone().state;
                match t.kind {
                    Kind::Readiness => {
                        if successes >= success_threshold {
                            e.state.ready = Some(true);
                        } else if failures >= failure_threshold || e.state.ready.is_none() {
                            e.state.ready = Some(false);
                        }
                    }
                    Kind::Startup => {
                        if successes >= 1 {
                            e.state.started = Some(true);
                        } else if failures >= failure_threshold {
                            e.restart = Some(format!(
                                "Container {} failed startup probe, will be restarted",
                                t.container.name
                            ));
                        }
                    }
                    Kind::Liveness => {
                        if failures >= failure_threshold {
                            e.restart = Some(format!(
                                "Container {} failed liveness probe, will be restarted",
                                t.container.name
                            ));
                        }
                    }
                }
                before != e.state || e.restart.is_some()
            };
            if changed {
                t.notify.notify_one();
            }
            if t.shared
                .lock()
                .get(&t.id)
                .is_some_and(|e| e.restart.is_some())
            {
                return;
            }
        }
        tokio::time::sleep(period).await;
    }
}

async fn run_probe(t: &ProbeTask, timeout: Duration) -> Result<(), String> {
    let p = &t.probe;
    if let Some(exec) = &p.exec {
        let command = exec.command.clone().unwrap_or_default();
        return exec_command(&t.ctx, &t.id, command, timeout).await;
    }
    if let Some(http) = &p.http_get {
        return http_get(http, &t.container, &t.pod_ips, timeout).await;
    }
    if let Some(tcp) = &p.tcp_socket {
        let port = resolve_port(&tcp.port, &t.container)?;
        let host = tcp
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .or_else(|| t.pod_ips.first().map(ToString::to_string))
            .unwrap_or_else(|| "127.0.0.1".into());
        return tcp_connect(&host, port, timeout).await;
    }
    if let Some(grpc) = &p.grpc {
        let port =
            u16::try_from(grpc.port).map_err(|_| format!("invalid port number: {}", grpc.port))?;
        let host = t
            .pod_ips
            .first()
            .map(ToString::to_string)
            .unwrap_or_else(|| "127.0.0.1".into());
        let service = grpc.service.clone().unwrap_or_default();
        return grpc_check(&host, port, &service, timeout).await;
    }
    Err("probe has no handler".into())
}

fn resolve_port(port: &IntOrString, c: &SpecContainer) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port number: {n}")),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Ok(n);
            }
            c.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("couldn't find port: {name} in {}", c.name))
        }
    }
}

async fn tcp_connect(host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    let addr = format_host_port(host, port);
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("dial tcp {addr}: connect: {}", io_text(&e))),
        Err(_) => Err(format!("dial tcp {addr}: i/o timeout")),
    }
}

fn format_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}

/// Go's `time.Duration` text of a probe timeout (`1s`, `1.5s`, `500ms`).
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms.is_multiple_of(1000) {
        return super::worker::go_seconds(d);
    }
    let secs = format!("{}.{:03}", ms / 1000, ms % 1000);
    format!("{}s", secs.trim_end_matches('0'))
}

/// A `grpc.health.v1.Health/Check` over plaintext HTTP/2, as upstream's gRPC prober does
/// it (insecure, user agent `kube-probe/…`, connecting until the timeout): succeeds only
/// when the service answers `SERVING`; the messages are upstream's.
pub(crate) async fn grpc_check(
    host: &str,
    port: u16,
    service: &str,
    timeout: Duration,
) -> Result<(), String> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let addr = format_host_port(host, port);
    let deadline = tokio::time::Instant::now() + timeout;
    let within = go_duration(timeout);
    let connect_timeout = || {
        format!(
            "timeout: failed to connect service {addr:?} within {within}: context deadline exceeded"
        )
    };
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("error: failed to connect service at {addr:?}: {e}"))?
        .user_agent("kube-probe/1.35")
        .map_err(|e| format!("error: failed to connect service at {addr:?}: {e}"))?;
    // Go's blocking dial keeps trying a refused connection until its deadline.
    let channel = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(connect_timeout());
        }
        match tokio::time::timeout(left, endpoint.connect()).await {
            Ok(Ok(channel)) => break channel,
            Ok(Err(_)) => {
                let pause = Duration::from_millis(100)
                    .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                tokio::time::sleep(pause).await;
            }
            Err(_) => return Err(connect_timeout()),
        }
    };
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let mut client = HealthClient::new(channel);
    let request = HealthCheckRequest {
        service: service.to_string(),
    };
    let answer = match tokio::time::timeout(left, client.check(request)).await {
        Err(_) => {
            return Err(format!(
                "timeout: health rpc did not complete within {within}"
            ));
        }
        Ok(Err(status)) => {
            return Err(match status.code() {
                tonic::Code::Unimplemented => format!(
                    "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                    status.message()
                ),
                tonic::Code::DeadlineExceeded => {
                    format!("timeout: health rpc did not complete within {within}")
                }
                code => format!(
                    "error: health rpc probe failed: rpc error: code = {code:?} desc = {}",
                    status.message()
                ),
            });
        }
        Ok(Ok(answer)) => answer.into_inner(),
    };
    let status = ServingStatus::try_from(answer.status).unwrap_or(ServingStatus::Unknown);
    if status == ServingStatus::Serving {
        Ok(())
    } else {
        Err(format!(
            "service unhealthy (responded with {:?})",
            status.as_str_name()
        ))
    }
}

/// A GET as upstream's HTTP prober sends it; 200–399 succeeds.
async fn http_get(
    h: &HTTPGetAction,
    c: &SpecContainer,
    pod_ips: &[IpAddr],
    timeout: Duration,
) -> Result<(), String> {
    let scheme = h.scheme.clone().unwrap_or_else(|| "HTTP".into());
    let port = resolve_port(&h.port, c)?;
    let host = h
        .host
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| pod_ips.first().map(ToString::to_string))
        .unwrap_or_else(|| "127.0.0.1".into());
    let path = h
        .path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".into());
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let addr = format_host_port(&host, port);
    let url = format!("{}://{addr}{path}", scheme.to_lowercase());
    let tls = scheme.eq_ignore_ascii_case("HTTPS");
    let mut headers = String::new();
    let mut host_header = addr.clone();
    let mut user_agent = "kube-probe/1.35".to_string();
    let mut accept = "*/*".to_string();
    for hd in h.http_headers.iter().flatten() {
        match hd.name.to_ascii_lowercase().as_str() {
            "host" => host_header = hd.value.clone(),
            "user-agent" => user_agent = hd.value.clone(),
            "accept" => accept = hd.value.clone(),
            _ => headers.push_str(&format!("{}: {}\r\n", hd.name, hd.value)),
        }
    }
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {user_agent}\r\nAccept: {accept}\r\n{headers}Connection: close\r\n\r\n"
    );
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("Get \"{url}\": dial tcp {addr}: connect: {}", io_text(&e)))?;
        let code = if tls {
            // As upstream's prober: TLS without verifying the container's certificate.
            let server_name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| format!("Get \"{url}\": {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(insecure_tls_config())
                .connect(server_name, stream)
                .await
                .map_err(|e| format!("Get \"{url}\": {e}"))?;
            http_exchange(stream, &request, &url).await?
        } else {
            http_exchange(stream, &request, &url).await?
        };
        if (200..400).contains(&code) {
            Ok(())
        } else {
            Err(format!("HTTP probe failed with statuscode: {code}"))
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
    }
}

/// Sends `request` on `stream` and answers the response's status code.
async fn http_exchange<S>(mut stream: S, request: &str, url: &str) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("Get \"{url}\": {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // A TLS server closing without close_notify after its answer is common.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => 0,
            Err(e) => return Err(format!("Get \"{url}\": {e}")),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_OUTPUT || buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    head.lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("Get \"{url}\": malformed HTTP response"))
}

/// The TLS client of HTTPS probes: upstream's prober sets `InsecureSkipVerify`, so any
/// certificate the container serves is accepted (signatures are still checked).
fn insecure_tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(AcceptAnyCertificate(provider.clone()));
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| {
                    b.dangerous()
                        .with_custom_certificate_verifier(verifier.clone())
                        .with_no_client_auth()
                })
                .unwrap_or_else(|_| {
                    rustls::ClientConfig::builder()
                        .dangerous()
                        .with_custom_certificate_verifier(verifier)
                        .with_no_client_auth()
                });
            Arc::new(config)
        })
        .clone()
}

/// Accepts every server certificate (upstream's probes skip verification).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Runs `command` in container `id`; success is exit code 0.
async fn exec_command(
    ctx: &Ctx,
    id: &str,
    command: Vec<String>,
    timeout: Duration,
) -> Result<(), String> {
    let request = StreamRequest {
        command: command.clone(),
        tty: false,
        stdin: false,
        stdout: true,
        stderr: true,
    };
    let run = async {
        let mut session = ctx
            .runtime
            .exec(id, &request)
            .await
            .map_err(|e| e.to_string())?;
        let mut output = Vec::new();
        if let Some(mut out) = session.stdout.take() {
            let _ = (&mut out)
                .take(MAX_OUTPUT as u64)
                .read_to_end(&mut output)
                .await;
        }
        if let Some(mut err) = session.stderr.take() {
            let _ = (&mut err)
                .take(MAX_OUTPUT as u64)
                .read_to_end(&mut output)
                .await;
        }
        let code = session.exit.await.map_err(|e| e.to_string())?;
        if code == 0 {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&output).trim_end().to_string();
            if text.is_empty() {
                Err(format!("command {command:?} exited with {code}"))
            } else {
                Err(text)
            }
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "command timed out: {:?} timed out after {}s",
            command.join(" "),
            timeout.as_secs()
        )),
    }
}

/// Runs a lifecycle hook (postStart or preStop) for container `id`.
pub(crate) async fn run_handler(
    ctx: &Ctx,
    pod: &Pod,
    id: &str,
    handler: &LifecycleHandler,
    pod_ips: Option<&[IpAddr]>,
) -> Result<(), String> {
    if let Some(exec) = &handler.exec {
        let command = exec.command.clone().unwrap_or_default();
        // Hooks run as long as the grace allows; the caller bounds them.
        return exec_command(ctx, id, command, Duration::from_secs(3600)).await;
    }
    if let Some(http) = &handler.http_get {
        let container = pod
            .spec
            .as_ref()
            .and_then(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
                    .find(|c| c.ports.is_some())
                    .cloned()
            })
            .unwrap_or_default();
        return http_get(
            http,
            &container,
            pod_ips.unwrap_or_default(),
            Duration::from_secs(30),
        )
        .await;
    }
    if let Some(sleep) = &handler.sleep {
        tokio::time::sleep(Duration::from_secs(
            u64::try_from(sleep.seconds).unwrap_or(0),
        ))
        .await;
        return Ok(());
    }
    Err("lifecycle handler has no action".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_health::ServingStatus;

    /// A gRPC health server on loopback: `""` and `app` serving, `down` not.
    async fn health_server() -> u16 {
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        reporter
            .set_service_status("app", ServingStatus::Serving)
            .await;
        reporter
            .set_service_status("down", ServingStatus::NotServing)
            .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(async move {
            let _keep = reporter;
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        port
    }

    /// An HTTPS server on loopback with a self-signed certificate: `/ok` answers 200,
    /// anything else 500.
    async fn https_server() -> u16 {
        let cert =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
        let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())
            .expect("key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    let n = tls.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]).to_string();
                    let answer = if head.starts_with("GET /ok ") {
                        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                    } else {
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
                    };
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn https_probes_skip_certificate_verification_as_upstream() {
        let port = https_server().await;
        let action = |path: &str, scheme: &str| HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(i32::from(port)),
            scheme: Some(scheme.into()),
            host: Some("127.0.0.1".into()),
            ..Default::default()
        };
        let c = SpecContainer::default();
        let t = Duration::from_secs(5);
        assert_eq!(http_get(&action("/ok", "HTTPS"), &c, &[], t).await, Ok(()));
        assert_eq!(
            http_get(&action("/bad", "HTTPS"), &c, &[], t).await,
            Err("HTTP probe failed with statuscode: 500".into())
        );
        // Plain HTTP to a TLS port reads no HTTP answer.
        assert!(http_get(&action("/ok", "HTTP"), &c, &[], t).await.is_err());
    }

    #[tokio::test]
    async fn grpc_probes_read_the_health_protocol() {
        let port = health_server().await;
        let t = Duration::from_secs(2);
        assert_eq!(grpc_check("127.0.0.1", port, "", t).await, Ok(()));
        assert_eq!(grpc_check("127.0.0.1", port, "app", t).await, Ok(()));
        assert_eq!(
            grpc_check("127.0.0.1", port, "down", t).await,
            Err("service unhealthy (responded with \"NOT_SERVING\")".into())
        );
        assert_eq!(
            grpc_check("127.0.0.1", port, "nope", t).await,
            Err("error: health rpc probe failed: rpc error: code = NotFound desc = service not registered".into())
        );
    }

    #[tokio::test]
    async fn grpc_probe_of_nothing_times_out_as_upstream_says() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let got = grpc_check("127.0.0.1", port, "", Duration::from_millis(300)).await;
        assert_eq!(
            got,
            Err(format!(
                "timeout: failed to connect service \"127.0.0.1:{port}\" within 300ms: context deadline exceeded"
            ))
        );
    }

    #[tokio::test]
    async fn grpc_probe_of_a_server_without_health_is_unimplemented() {
        // A gRPC server without the Health service answers Unimplemented.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_routes(tonic::service::Routes::default())
                .serve_with_incoming(incoming)
                .await;
        });
        let got = grpc_check("127.0.0.1", port, "", Duration::from_secs(2)).await;
        assert!(
            got.as_ref().is_err_and(|e| e.starts_with(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health)"
            )),
            "{got:?}"
        );
    }
}

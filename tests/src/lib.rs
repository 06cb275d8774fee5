//! Harness of the end-to-end tests: starts a real `k1s server` on a free port with a
//! temporary data dir and runs real kubectl binaries against it.

use std::io::Write;

pub mod lan;

use base64::Engine as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to become ready before a test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The k1s binary under test: `$K1S_BIN`, else the debug build in the target dir.
pub fn k1s_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("K1S_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug").join("k1s")
}

/// Folder of the test tools: the versioned kubectl binaries (`kubectl.1.27` …), as
/// scripts/install-kubectl fills it, and the fuzzer's virtual environment (`schemathesis/`),
/// as scripts/install-schemathesis fills it. `$K1S_TOOLS_DIR`, else `~/.cache/k1s-tools`.
pub fn tools_dir() -> PathBuf {
    match std::env::var_os("K1S_TOOLS_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/k1s-tools")
        }
    }
}

/// Five hex digits unlikely to be another running test's (pid, time and a counter).
fn unique_tag() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = std::process::id()
        .wrapping_mul(2_654_435_761)
        .wrapping_add(nanos)
        .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919));
    format!("{:05x}", n & 0xf_ffff)
}

/// A fingerprint of `scripts/build-test-images` and its library, so images built by an older script are
/// never reused (FNV-1a over its bytes).
fn script_fingerprint() -> u64 {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts");
    ["build-test-images", "lib/oci-image.sh"]
        .iter()
        .flat_map(|f| std::fs::read(scripts.join(f)).unwrap_or_default())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// Folder holding the test images `busybox.tar` and `nginx.tar`: `$K1S_TEST_IMAGES`, else
/// `~/.cache/k1s-images/out-<fingerprint of the script>`, built there by
/// `scripts/build-test-images` when missing.
pub fn test_images() -> PathBuf {
    let dir = match std::env::var_os("K1S_TEST_IMAGES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/k1s-images")
            .join(format!("out-{:016x}", script_fingerprint())),
    };
    let ready = |d: &Path| d.join("busybox.tar").exists() && d.join("nginx.tar").exists();
    if ready(&dir) {
        return dir;
    }
    // Built aside and renamed, so parallel tests never read a half-written image.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-test-images");
    let parent = dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    let work = tempfile::tempdir_in(&parent).unwrap_or_else(|e| panic!("temp dir: {e}"));
    let out = Command::new(&script)
        .arg(work.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/build-test-images failed (the agent tests need its busybox and nginx images):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if !ready(&dir) {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::rename(work.path(), &dir);
    }
    assert!(ready(&dir), "no test images in {}", dir.display());
    dir
}

/// One kubectl binary.
#[derive(Debug, Clone)]
pub struct Kubectl {
    /// Minor version (27 for 1.27); 0 for the unversioned `kubectl` on PATH.
    pub minor: u32,
    /// Path of the binary.
    pub path: PathBuf,
}

impl std::fmt::Display for Kubectl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.minor == 0 {
            write!(f, "kubectl")
        } else {
            write!(f, "kubectl 1.{}", self.minor)
        }
    }
}

/// Every installed kubectl from 1.27 up; names the missing ones on stderr (a missing
/// version is reported, never silently passed).
pub fn kubectl_versions() -> Vec<Kubectl> {
    let dir = tools_dir();
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for minor in 27..=35 {
        let path = dir.join(format!("kubectl.1.{minor}"));
        if path.exists() {
            found.push(Kubectl { minor, path });
        } else {
            missing.push(format!("1.{minor}"));
        }
    }
    if !missing.is_empty() {
        eprintln!(
            "NOTE: kubectl {} not installed in {} (run scripts/install-kubectl); not tested",
            missing.join(", "),
            dir.display()
        );
    }
    if found.is_empty() {
        found.push(Kubectl {
            minor: 0,
            path: PathBuf::from("kubectl"),
        });
    }
    found
}

/// The newest installed kubectl.
pub fn newest_kubectl() -> Kubectl {
    kubectl_versions()
        .pop()
        .unwrap_or_else(|| panic!("no kubectl available"))
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The command, for messages.
    pub command: String,
}

impl Run {
    fn from_output(command: String, out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            command,
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "`{}` failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.command, self.code, self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts failure and returns stderr.
    #[track_caller]
    pub fn fails(&self) -> &str {
        assert_ne!(
            self.code, 0,
            "`{}` should have failed:\nstdout:\n{}",
            self.command, self.stdout
        );
        &self.stderr
    }
}

/// Kills the etcd processes a failed test leaves on its data dirs (a SIGKILLed k1s cannot
/// stop its etcd child); the passing path stops the servers cleanly.
pub struct EtcdReaper(pub Vec<PathBuf>);

impl Drop for EtcdReaper {
    fn drop(&mut self) {
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains("etcd ")
                && self
                    .0
                    .iter()
                    .any(|d| cmdline.contains(&*d.to_string_lossy()))
            {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// A running `k1s server --disable-agent`, killed on drop.
pub struct K1s {
    child: Option<Child>,
    dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    extra_args: Vec<String>,
    /// Runs the agent (kubelet, containerd, pod network) instead of `--disable-agent`.
    agent: bool,
    /// The `--bind-address` (127.0.0.1 unless a test's other hosts must reach it).
    bind: String,
}

/// PEM files of the admin identity from the kubeconfig the server wrote, for tests that
/// speak HTTPS themselves.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The cluster CA (certificate-authority-data).
    pub ca: PathBuf,
    /// The admin client certificate (client-certificate-data).
    pub cert: PathBuf,
    /// The admin client key (client-key-data).
    pub key: PathBuf,
}

/// A port free on 127.0.0.1 now (for a server flag that needs a known port).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

impl K1s {
    /// Starts a server on a fresh data dir and waits until `/readyz` answers ok.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Like [`K1s::start`], with extra `k1s server` flags (kept across restarts).
    pub fn start_with(extra_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let data = dir.path().join("data");
        Self::launch(dir, data, extra_args)
    }

    /// Starts a server whose data dir is `data` (e.g. on a small tmpfs); logs, kubeconfig
    /// and scratch files stay in `dir`.
    pub fn start_with_data_dir(dir: tempfile::TempDir, data: PathBuf) -> Self {
        Self::launch(dir, data, &[])
    }

    /// Like [`K1s::start_with`], listening on `bind` (an address other hosts — network
    /// namespaces of a multi-node test — reach it at).
    pub fn start_on(bind: &str, extra_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let data = dir.path().join("data");
        Self::launch_on(bind, dir, data, extra_args)
    }

    fn launch(dir: tempfile::TempDir, data: PathBuf, extra_args: &[&str]) -> Self {
        Self::launch_on("127.0.0.1", dir, data, extra_args)
    }

    fn launch_on(bind: &str, dir: tempfile::TempDir, data: PathBuf, extra_args: &[&str]) -> Self {
        let mut k = K1s {
            child: None,
            dir,
            data,
            port: free_port(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            agent: false,
            bind: bind.to_string(),
        };
        k.spawn();
        k
    }

    /// Starts a server with its agent: a kubelet on the embedded containerd, with names
    /// of its own (node, bridge, cluster CIDR, kubelet and ingress ports, pod logs) so servers of
    /// parallel tests do not meet, and the test images (see [`test_images`]) in its
    /// airgap folder. Needs root, containerd and runc; fails saying so otherwise.
    pub fn start_with_agent(extra_args: &[&str]) -> Self {
        Self::start_with_agent_on("127.0.0.1", extra_args)
    }

    /// [`K1s::start_with_agent`] listening on `bind` (an address other hosts — network
    /// namespaces of a multi-node test — reach it at).
    pub fn start_with_agent_on(bind: &str, extra_args: &[&str]) -> Self {
        let images = test_images();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let data = dir.path().join("data");
        let airgap = data.join("agent").join("images");
        std::fs::create_dir_all(&airgap).unwrap_or_else(|e| panic!("airgap dir: {e}"));
        for name in ["busybox.tar", "nginx.tar"] {
            std::fs::copy(images.join(name), airgap.join(name))
                .unwrap_or_else(|e| panic!("cannot copy test image {name}: {e}"));
        }
        let tag = unique_tag();
        let mut args: Vec<String> = vec![
            "--node-name".into(),
            format!("k1s-e2e-{tag}"),
            "--bridge-name".into(),
            format!("k1s{tag}"),
            "--cluster-cidr".into(),
            format!(
                "10.{}.0.0/16",
                100 + (u32::from_str_radix(&tag, 16).unwrap_or(0) % 100)
            ),
            "--kubelet-port".into(),
            "0".into(),
            "--pod-log-dir".into(),
            dir.path().join("pod-logs").to_string_lossy().into_owned(),
        ];
        // The ingress controller would take the node's ports 80 and 443: any free ones,
        // unless the test names its own.
        for flag in ["--ingress-http-port", "--ingress-https-port"] {
            if !extra_args.contains(&flag) {
                args.extend([flag.to_string(), "0".to_string()]);
            }
        }
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let mut k = K1s {
            child: None,
            dir,
            data,
            port: free_port(),
            extra_args: args,
            agent: true,
            bind: bind.to_string(),
        };
        k.spawn();
        k
    }

    /// The node name of a server started with [`K1s::start_with_agent`].
    pub fn node_name(&self) -> Option<String> {
        let i = self.extra_args.iter().position(|a| a == "--node-name")?;
        self.extra_args.get(i + 1).cloned()
    }

    /// The --cluster-cidr of a server started with [`K1s::start_with_agent`].
    pub fn cluster_cidr(&self) -> Option<String> {
        let i = self.extra_args.iter().position(|a| a == "--cluster-cidr")?;
        self.extra_args.get(i + 1).cloned()
    }

    /// The pod bridge of a server started with [`K1s::start_with_agent`].
    pub fn bridge_name(&self) -> Option<String> {
        let i = self.extra_args.iter().position(|a| a == "--bridge-name")?;
        self.extra_args.get(i + 1).cloned()
    }

    /// The server's --data-dir.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Kills the server with SIGKILL (no chance to flush or clean up) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data dir and port after `kill` or `stop`.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        self.spawn();
    }

    /// Starts the server on its data dir expecting it to refuse to start: returns its
    /// exit code and what it printed during this attempt.
    pub fn start_expecting_failure(&mut self) -> (i32, String) {
        assert!(self.child.is_none(), "the server is still running");
        let before = self.log().len();
        let mut child = self
            .command()
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start k1s: {e}"));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = self.log();
                return (
                    status.code().unwrap_or(-1),
                    log[before.min(log.len())..].to_string(),
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("k1s server kept running:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `k1s datastore check` on the data dir (the server should be stopped).
    pub fn datastore_check(&self) -> Run {
        let mut cmd = Command::new(k1s_binary());
        cmd.args(["datastore", "check", "--data-dir"])
            .arg(&self.data);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run k1s datastore check: {e}"));
        Run::from_output("k1s datastore check".into(), out)
    }

    /// The HTTPS port the server listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's address.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The server's URL, as the kubeconfig names it.
    pub fn url(&self) -> String {
        format!("https://{}:{}", self.bind, self.port)
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .unwrap_or_else(|| panic!("k1s server is not running"))
    }

    /// Writes the CA, admin certificate and admin key embedded in the kubeconfig to PEM
    /// files in the temp dir and returns their paths.
    pub fn tls_files(&self) -> TlsFiles {
        let config = std::fs::read_to_string(self.kubeconfig())
            .unwrap_or_else(|e| panic!("read kubeconfig: {e}"));
        let pem = |field: &str, file: &str| {
            let data = config
                .lines()
                .find_map(|l| l.trim().strip_prefix(field)?.strip_prefix(':'))
                .unwrap_or_else(|| panic!("kubeconfig has no {field}:\n{config}"));
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .unwrap_or_else(|e| panic!("kubeconfig {field}: {e}"));
            let path = self.dir.path().join(file);
            std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {file}: {e}"));
            path
        };
        TlsFiles {
            ca: pem("certificate-authority-data", "ca.crt"),
            cert: pem("client-certificate-data", "admin.crt"),
            key: pem("client-key-data", "admin.key"),
        }
    }

    /// A `kube` client of the server as the admin, with short timeouts so that requests
    /// to a killed server end.
    pub async fn client(&self) -> kube::Client {
        // kube's TLS needs a process-wide crypto provider; k1s itself uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kubeconfig = kube::config::Kubeconfig::read_from(self.kubeconfig())
            .unwrap_or_else(|e| panic!("kubeconfig: {e}"));
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap_or_else(|e| panic!("client config: {e}"));
        config.connect_timeout = Some(Duration::from_secs(2));
        config.read_timeout = Some(Duration::from_secs(10));
        config.write_timeout = Some(Duration::from_secs(10));
        kube::Client::try_from(config).unwrap_or_else(|e| panic!("client: {e}"))
    }

    /// A TLS client configuration that trusts the cluster CA and presents the admin
    /// certificate, offering the ALPN protocols `alpn` (none when empty).
    pub fn tls_client_config(&self, alpn: &[&[u8]]) -> std::sync::Arc<rustls::ClientConfig> {
        let files = self.tls_files();
        let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("read PEM: {e}"));
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut &read(&files.ca)[..]) {
            let c = c.unwrap_or_else(|e| panic!("CA PEM: {e}"));
            roots.add(c).unwrap_or_else(|e| panic!("add CA: {e}"));
        }
        let certs: Vec<_> = rustls_pemfile::certs(&mut &read(&files.cert)[..])
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("client cert PEM: {e}"));
        let key = rustls_pemfile::private_key(&mut &read(&files.key)[..])
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no client key in {}", files.key.display()));
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|e| panic!("TLS versions: {e}"))
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .unwrap_or_else(|e| panic!("client auth: {e}"));
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        std::sync::Arc::new(config)
    }

    /// The kubeconfig the server wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }

    /// The temp folder of this server (data dir and scratch files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn command(&self) -> Command {
        let bin = k1s_binary();
        assert!(
            bin.exists(),
            "k1s binary {} not found: run `cargo build -p k1s` or set K1S_BIN",
            bin.display()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("log file: {e}"));
        let err = log.try_clone().unwrap_or_else(|e| panic!("log file: {e}"));
        let mut cmd = Command::new(&bin);
        cmd.arg("server");
        if !self.agent {
            cmd.arg("--disable-agent");
        }
        cmd.args(["--bind-address", &self.bind])
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--write-kubeconfig")
            .arg(self.kubeconfig())
            .arg("--https-listen-port")
            .arg(self.port.to_string())
            .args(&self.extra_args)
            .stdout(log)
            .stderr(err);
        cmd
    }

    fn spawn(&mut self) {
        let child = self
            .command()
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start k1s: {e}"));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let k = newest_kubectl();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("k1s server exited with {status}:\n{}", self.log());
            }
            if self.kubeconfig().exists() {
                let r = self.kubectl(&k, &["get", "--raw", "/readyz"]);
                if r.code == 0 && r.stdout.trim() == "ok" {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "k1s server not ready after {READY_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM) and starts it again on the same data dir.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Stops the server with SIGTERM (a clean shutdown), killing it after 10 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs kubectl against this server.
    pub fn kubectl(&self, k: &Kubectl, args: &[&str]) -> Run {
        self.kubectl_with(k, args, None, &[])
    }

    /// Runs kubectl in one namespace (`-n ns` before `args`).
    pub fn kubectl_in(&self, k: &Kubectl, ns: &str, args: &[&str]) -> Run {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        self.kubectl(k, &all)
    }

    /// Runs kubectl with `stdin` and extra environment variables.
    pub fn kubectl_with(
        &self,
        k: &Kubectl,
        args: &[&str],
        stdin: Option<&str>,
        env: &[(&str, &str)],
    ) -> Run {
        let mut cmd = Command::new(&k.path);
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            // A cache per server and version: discovery of one run never leaks into another.
            .arg("--cache-dir")
            .arg(self.dir.path().join(format!("cache-{}", k.minor)))
            .args(args)
            .envs(env.iter().copied())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let command = format!("{k} {}", args.join(" "));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", k.path.display()));
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(input.as_bytes());
        }
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("{command}: {e}"));
        Run::from_output(command, out)
    }

    /// Spawns a long-running kubectl (e.g. `get -w`) whose stdout is piped.
    pub fn kubectl_spawn(&self, k: &Kubectl, args: &[&str]) -> Child {
        Command::new(&k.path)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", k.path.display()))
    }

    /// Writes a scratch file in the server's temp dir and returns its path.
    pub fn write_file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }
}

impl Drop for K1s {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- k1s server log ----\n{}", self.log());
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.agent {
            self.clean_up_agent();
        }
    }
}

impl K1s {
    /// What an agent leaves behind once its server is gone (containers keep running
    /// without it, as k3s's do): the containerd and shims serving this data dir, the
    /// mounts under it, the bridge and its nftables table.
    fn clean_up_agent(&self) {
        let data = self.data.to_string_lossy().into_owned();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for p in procs.flatten() {
                let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                // Container processes have their root in a rootfs under the data dir.
                let root = std::fs::read_link(p.path().join("root"))
                    .map(|r| r.to_string_lossy().starts_with(&data))
                    .unwrap_or(false);
                let ours = root
                    || (cmdline.contains(&data)
                        && (cmdline.contains("containerd-shim")
                            || cmdline.starts_with("containerd ")));
                if ours {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut points: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|mp| {
                    mp.starts_with(&data) || mp.starts_with(&*self.dir.path().to_string_lossy())
                })
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = Command::new("umount").args(["-l", p]).status();
            }
        }
        if let Some(bridge) = self.bridge_name() {
            // The bridge and the vxlan overlay's device beside it (made once a second node
            // joined).
            for link in [bridge.clone(), format!("{bridge}.1")] {
                let _ = Command::new("ip")
                    .args(["link", "del", &link])
                    .stderr(Stdio::null())
                    .status();
            }
            // The pod network's table, the Service proxy's and the NetworkPolicy one, all
            // named after the bridge.
            for table in [
                bridge.clone(),
                format!("{bridge}-proxy"),
                format!("{bridge}-netpol"),
            ] {
                // The NetworkPolicy table is `inet`; the others `ip`.
                for family in ["ip", "inet"] {
                    let _ = Command::new("nft")
                        .args(["delete", "table", family, &table])
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        // A cluster DNS address the test chose is this server's alone (the default one is
        // shared by every server on the host, and stays).
        if let Some(i) = self.extra_args.iter().position(|a| a == "--cluster-dns")
            && let Some(ip) = self.extra_args.get(i + 1)
        {
            for dev in ["lo", self.arg("--dns-interface").unwrap_or("k1s-dns0")] {
                let _ = Command::new("ip")
                    .args(["addr", "del", &format!("{ip}/32"), "dev", dev])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }

    fn arg(&self, flag: &str) -> Option<&str> {
        let i = self.extra_args.iter().position(|a| a == flag)?;
        self.extra_args.get(i + 1).map(String::as_str)
    }
}

/// Polls `f` every 50 ms until it returns `Some`, failing the test after `timeout`.
#[track_caller]
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One raw API request through `client`: the status code, the body as JSON (Null when it
/// is not JSON) and the response headers.
pub async fn request(
    client: &kube::Client,
    method: &str,
    uri: &str,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value, http::HeaderMap) {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    request_bytes(client, method, uri, "application/json", bytes).await
}

/// Like [`request`] with a body of any bytes and content type.
pub async fn request_bytes(
    client: &kube::Client,
    method: &str,
    uri: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value, http::HeaderMap) {
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(kube::client::Body::from(body))
        .unwrap_or_else(|e| panic!("{method} {uri}: {e}"));
    let resp = client
        .send(req)
        .await
        .unwrap_or_else(|e| panic!("{method} {uri}: {e}"));
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_else(|e| panic!("{method} {uri}: reading the answer: {e}"));
    (
        code,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        headers,
    )
}

/// One request a [`TlsTestServer`] received.
#[derive(Debug, Clone)]
pub struct TestRequest {
    /// The request path (no query).
    pub path: String,
    /// The request headers.
    pub headers: http::HeaderMap,
    /// The body as JSON (Null when empty or not JSON).
    pub body: serde_json::Value,
}

/// A small HTTPS server a test starts (an admission webhook, an extension API server):
/// a self-signed certificate for the given names, an optional client-certificate CA, and
/// a handler answering each request with a status and a JSON body. It runs on the given
/// runtime until the runtime is dropped.
#[derive(Debug, Clone)]
pub struct TlsTestServer {
    /// The port it listens on.
    pub port: u16,
    /// Its certificate (PEM): the CA clients must trust.
    pub ca_pem: String,
}

impl TlsTestServer {
    /// Starts one on `ip` (a free port) with a certificate for `names` (DNS names or IPs).
    /// With `client_ca` (PEM), clients must present a certificate it signed.
    pub fn start<F, Fut>(
        rt: &tokio::runtime::Runtime,
        ip: std::net::IpAddr,
        names: &[&str],
        client_ca: Option<&str>,
        handler: F,
    ) -> TlsTestServer
    where
        F: Fn(TestRequest) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = (u16, serde_json::Value)> + Send + 'static,
    {
        use std::sync::Arc;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let generated = rcgen::generate_simple_self_signed(names).expect("test certificate");
        let ca_pem = generated.cert.pem();
        let chain = vec![generated.cert.der().clone()];
        let key = rustls::pki_types::PrivateKeyDer::try_from(generated.signing_key.serialize_der())
            .expect("test key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocols");
        let builder = match client_ca {
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
                    roots.add(cert.expect("client CA")).expect("add client CA");
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder.with_single_cert(chain, key).expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = rt
            .block_on(tokio::net::TcpListener::bind((ip, 0)))
            .expect("bind the test server");
        let port = listener.local_addr().expect("test server address").port();
        rt.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let handler = handler.clone();
                            async move {
                                let path = req.uri().path().to_string();
                                let headers = req.headers().clone();
                                let body = http_body_util::BodyExt::collect(req.into_body())
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let body = serde_json::from_slice(&body)
                                    .unwrap_or(serde_json::Value::Null);
                                let (code, answer) = handler(TestRequest {
                                    path,
                                    headers,
                                    body,
                                })
                                .await;
                                Ok::<_, std::convert::Infallible>(
                                    http::Response::builder()
                                        .status(code)
                                        .header("content-type", "application/json")
                                        .body(http_body_util::Full::new(bytes::Bytes::from(
                                            answer.to_string(),
                                        )))
                                        .expect("test response"),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsTestServer { port, ca_pem }
    }
}

//! The embedded containerd: k1s writes its config, starts it as a child, waits until it
//! answers, restarts it when it dies and stops it on shutdown, as k3s does.
//!
//! The shims containerd starts put themselves in their own process groups and outlive
//! containerd, so containers keep running while k1s (and with it containerd) restarts; the
//! next containerd re-adopts them from its state directory. containerd itself gets
//! `PR_SET_PDEATHSIG` so a SIGKILLed k1s leaves no containerd holding the socket, and the
//! transparent-huge-page flag k1s started with (see [`disable_own_thp`]).

use std::fs;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::ContainerdError;

/// How long a fresh containerd may take to answer before start-up fails.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping containerd gets after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The `PR_GET_THP_DISABLE` flag this process had before [`disable_own_thp`] set it.
static INHERITED_THP_DISABLED: OnceLock<bool> = OnceLock::new();

/// Turns transparent huge pages off for this process only (`PR_SET_THP_DISABLE`): with them,
/// the allocator's arena is backed by 2 MiB pages that stay resident whole however little of
/// them is in use (the joined agent: 10 MiB of its 29 MiB heap). The flag is inherited over
/// fork and exec, so the containerd started here afterwards, and the shims and pods under it,
/// get back the flag this process had: the agent's allocator choice is not theirs.
/// `started_with` is that flag where something turned THP off earlier (k1s's start-up
/// constructor, before the first allocation); None reads it now.
pub fn disable_own_thp(started_with: Option<bool>) -> nix::Result<()> {
    let inherited = match started_with {
        Some(disabled) => disabled,
        None => nix::sys::prctl::get_thp_disable()?,
    };
    INHERITED_THP_DISABLED.get_or_init(|| inherited);
    nix::sys::prctl::set_thp_disable(true)
}

/// Where and how to run the embedded containerd.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// The directory holding its config, root, state, sockets and log
    /// (k3s: `<data-dir>/agent/containerd`).
    pub dir: PathBuf,
    /// The `containerd` binary (looked up in `PATH` when bare).
    pub binary: PathBuf,
    /// containerd's own log level (`info` unless set).
    pub log_level: Option<String>,
}

impl SupervisorConfig {
    /// The default for a data dir: everything under `<data-dir>/agent/containerd`.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        SupervisorConfig {
            dir: data_dir.join("agent").join("containerd"),
            binary: PathBuf::from("containerd"),
            log_level: None,
        }
    }

    /// The gRPC socket the embedded containerd listens on.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }
}

/// A running embedded containerd, restarted when it dies; stopped by [`Supervisor::stop`] or
/// on drop.
#[derive(Debug)]
pub struct Supervisor {
    socket: PathBuf,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    stopping: AtomicBool,
    child_pid: Mutex<Option<i32>>,
}

/// Finds `binary` on `PATH` (or checks it when it has a slash).
pub fn find_binary(binary: &Path) -> Option<PathBuf> {
    if binary.components().count() > 1 {
        return binary.is_file().then(|| binary.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
}

/// The one line a node without containerd gets.
fn missing(what: &str) -> ContainerdError {
    ContainerdError::Missing(format!(
        "{what} not found in PATH: the k1s agent runs containers with containerd and runc; install them with `apt-get install containerd runc` (or pass --container-runtime-endpoint)"
    ))
}

/// containerd's config (version 2, as containerd 1.6 reads it): everything under `dir`, the
/// CRI plugin off (k1s speaks containerd's own API), overlayfs, the runc v2 shim.
pub fn render_config(dir: &Path) -> String {
    let q = |p: PathBuf| toml_string(&p.to_string_lossy());
    format!(
        r#"# Written by k1s at every start; edits are overwritten.
version = 2
root = {root}
state = {state}
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = {grpc}

[ttrpc]
  address = {ttrpc}

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}

[plugins."io.containerd.runtime.v2.task"]
  platforms = ["linux/amd64"]

[plugins."io.containerd.service.v1.diff-service"]
  default = ["walking"]
"#,
        root = q(dir.join("root")),
        state = q(dir.join("state")),
        grpc = q(dir.join("containerd.sock")),
        ttrpc = q(dir.join("containerd.sock.ttrpc")),
        opt = q(dir.join("opt")),
    )
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Supervisor {
    /// Writes the config, starts containerd and returns once it answers on its socket.
    pub async fn start(config: SupervisorConfig) -> Result<Supervisor, ContainerdError> {
        let binary =
            find_binary(&config.binary).ok_or_else(|| missing(&config.binary.to_string_lossy()))?;
        if find_binary(Path::new("runc")).is_none() {
            return Err(missing("runc"));
        }
        if find_binary(Path::new("containerd-shim-runc-v2")).is_none() {
            return Err(missing("containerd-shim-runc-v2"));
        }
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let config_path = dir.join("config.toml");
        fs::write(&config_path, render_config(&dir)).map_err(|e| io_err(&config_path, e))?;
        let socket = config.socket();
        if socket.as_os_str().len() >= 108 {
            return Err(ContainerdError::Config(format!(
                "containerd's socket path {} is longer than a unix socket allows (107 bytes); use a shorter data dir",
                socket.display()
            )));
        }
        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            child_pid: Mutex::new(None),
        });
        let mut args = vec![
            "--config".to_string(),
            config_path.to_string_lossy().into_owned(),
        ];
        if let Some(level) = &config.log_level {
            args.push("--log-level".into());
            args.push(level.clone());
        }
        let log_path = dir.join("containerd.log");
        // The first start happens here so a failing binary is reported to the caller.
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), ContainerdError>>();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("containerd-supervisor".into())
            .spawn(move || supervise(binary, args, log_path, thread_shared, tx))
            .map_err(|e| {
                ContainerdError::Start(format!("cannot start the supervisor thread: {e}"))
            })?;
        let started = tokio::task::spawn_blocking(move || rx.recv())
            .await
            .map_err(|e| ContainerdError::Start(e.to_string()))?
            .map_err(|_| ContainerdError::Start("the containerd supervisor ended".into()))?;
        let mut supervisor = Supervisor {
            socket: socket.clone(),
            shared,
            thread: Some(thread),
        };
        if let Err(e) = started {
            supervisor.stop_blocking();
            return Err(e);
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match super::connect(&socket).await {
                Ok(channel) => {
                    let mut version =
                        containerd_client::services::v1::version_client::VersionClient::new(
                            channel,
                        );
                    if version.version(()).await.is_ok() {
                        break;
                    }
                }
                Err(_) if Instant::now() < deadline => {}
                Err(e) => {
                    supervisor.stop_blocking();
                    return Err(ContainerdError::Start(format!(
                        "containerd did not answer on {} within {}s ({e}); see {}",
                        socket.display(),
                        READY_TIMEOUT.as_secs(),
                        dir.join("containerd.log").display()
                    )));
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::info!(socket = %socket.display(), "containerd is running");
        Ok(supervisor)
    }

    /// The gRPC socket to connect to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The running containerd's pid, if one runs now.
    pub fn pid(&self) -> Option<i32> {
        self.shared.child_pid.lock().ok().and_then(|pid| *pid)
    }

    /// Stops containerd (SIGTERM, then SIGKILL after a grace period); the shims and their
    /// containers keep running.
    pub async fn stop(mut self) {
        let _ = tokio::task::spawn_blocking(move || self.stop_blocking()).await;
    }

    fn stop_blocking(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop_blocking();
        }
    }
}

fn io_err(path: &Path, e: std::io::Error) -> ContainerdError {
    ContainerdError::Config(format!("{}: {e}", path.display()))
}

/// Spawns containerd with a parent-death signal; must run on the thread that lives as long
/// as the child (the signal follows the spawning thread).
fn spawn(binary: &Path, args: &[String], log_path: &Path) -> std::io::Result<Child> {
    let mut log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    let _ = writeln!(log, "--- k1s starts containerd");
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a terminal's Ctrl-C goes to k1s, which stops containerd
        // in order.
        .process_group(0);
    set_pdeathsig(&mut command);
    command.spawn()
}

#[allow(unsafe_code)]
fn set_pdeathsig(command: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    // Read here, before the fork: the child only copies the value.
    let restore_thp = INHERITED_THP_DISABLED.get().copied();
    // SAFETY: the closure runs between fork and exec and only makes prctl system calls,
    // which are async-signal-safe; it reads no memory of the parent but its own copy.
    unsafe {
        command.pre_exec(move || {
            if let Some(disabled) = restore_thp {
                nix::sys::prctl::set_thp_disable(disabled).map_err(std::io::Error::from)?;
            }
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}

fn supervise(
    binary: PathBuf,
    args: Vec<String>,
    log_path: PathBuf,
    shared: Arc<Shared>,
    started: std::sync::mpsc::Sender<Result<(), ContainerdError>>,
) {
    let mut first = Some(started);
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut child = match spawn(&binary, &args, &log_path) {
            Ok(child) => child,
            Err(e) => {
                let message = format!("cannot run {}: {e}", binary.display());
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(ContainerdError::Start(message)));
                    return;
                }
                tracing::error!("{message}");
                if sleep_unless_stopping(&shared, backoff) {
                    return;
                }
                continue;
            }
        };
        let pid = i32::try_from(child.id()).ok();
        if let Ok(mut slot) = shared.child_pid.lock() {
            *slot = pid;
        }
        if let Some(tx) = first.take() {
            let _ = tx.send(Ok(()));
        }
        let began = Instant::now();
        if shared.stopping.load(Ordering::SeqCst) {
            let _ = child.kill();
        }
        let status = wait_with_stop(&mut child, &shared);
        if let Ok(mut slot) = shared.child_pid.lock() {
            *slot = None;
        }
        if shared.stopping.load(Ordering::SeqCst) {
            tracing::info!("containerd stopped");
            return;
        }
        tracing::warn!(?status, log = %log_path.display(), "containerd exited; restarting it");
        if began.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(500);
        } else {
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
        if sleep_unless_stopping(&shared, backoff) {
            return;
        }
    }
}

/// Waits for the child; once stopping is asked, gives it the grace period, then SIGKILL.
fn wait_with_stop(child: &mut Child, shared: &Shared) -> Option<std::process::ExitStatus> {
    let mut stop_asked: Option<Instant> = None;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        if shared.stopping.load(Ordering::SeqCst) {
            let asked = *stop_asked.get_or_insert_with(Instant::now);
            if asked.elapsed() > STOP_GRACE {
                let _ = child.kill();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sleep_unless_stopping(shared: &Shared, total: Duration) -> bool {
    let until = Instant::now() + total;
    while Instant::now() < until {
        if shared.stopping.load(Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    shared.stopping.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keeps_everything_under_the_dir() {
        let text = render_config(Path::new("/d/agent/containerd"));
        assert!(text.contains("root = \"/d/agent/containerd/root\""));
        assert!(text.contains("address = \"/d/agent/containerd/containerd.sock\""));
        assert!(text.contains("io.containerd.grpc.v1.cri"));
    }

    /// The `THP_enabled:` line of a process's status: 1 unless THP is disabled for it.
    fn thp_enabled(status: &str) -> Option<&str> {
        status
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:"))
            .map(str::trim)
    }

    #[test]
    fn containerd_keeps_the_thp_flag_k1s_started_with() {
        let own = || std::fs::read_to_string("/proc/self/status").expect("own status");
        let before = thp_enabled(&own())
            .expect("a kernel with THP_enabled")
            .to_string();
        disable_own_thp(None).expect("prctl");
        assert_eq!(thp_enabled(&own()), Some("0"));
        let mut child = Command::new("cat");
        child.arg("/proc/self/status");
        set_pdeathsig(&mut child);
        let out = child.output().expect("cat runs");
        let status = String::from_utf8_lossy(&out.stdout);
        assert_eq!(thp_enabled(&status), Some(before.as_str()), "{status}");
    }

    #[tokio::test]
    async fn a_node_without_containerd_is_told_what_to_install() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = SupervisorConfig {
            dir: dir.path().to_path_buf(),
            binary: PathBuf::from("containerd-not-installed"),
            log_level: None,
        };
        let e = Supervisor::start(config)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with("containerd-not-installed not found in PATH"),
            "{e}"
        );
        assert!(e.contains("apt-get install containerd runc"), "{e}");
    }

    #[test]
    fn missing_binary_says_what_to_install() {
        let e = missing("containerd").to_string();
        assert!(e.contains("apt-get install containerd runc"), "{e}");
        assert!(!e.contains('\n'));
    }
}

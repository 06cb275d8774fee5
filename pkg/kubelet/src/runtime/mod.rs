//! The container runtime contract the kubelet's pod workers drive.
//!
//! Shaped after upstream's CRI (`RuntimeService` and `ImageService`) because the kubelet's
//! logic (which container to start, restart, kill, what status to report) is written against
//! those verbs upstream, and containerd's CRI plugin shows how each maps onto containerd's
//! raw API. k1s talks to containerd's own gRPC services (no CRI plugin needed) and builds the
//! OCI runtime specs itself; tests use a fake.
//!
//! A pod is one *sandbox* (the namespaces its containers share: network, IPC, UTS, held open
//! as bind-mounted files so no pause process is needed) plus its containers. The network
//! namespace is wired by `k1s-net` after [`ContainerRuntime::run_sandbox`] made it.
//! Everything the kubelet needs to find again after a restart is kept in the runtime as
//! labels ([`labels`]), never only in memory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

/// Label keys the kubelet puts on sandboxes and containers, as upstream's kubelet does.
pub mod labels {
    /// The pod's name.
    pub const POD_NAME: &str = "io.kubernetes.pod.name";
    /// The pod's namespace.
    pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
    /// The pod's UID.
    pub const POD_UID: &str = "io.kubernetes.pod.uid";
    /// The container's name in the pod spec.
    pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
    /// How many times this container of the pod was started before (0 the first time).
    pub const CONTAINER_ATTEMPT: &str = "io.kubernetes.container.restartCount";
}

/// What went wrong in the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// `imagePullPolicy: Never` and the image is not in the node's store.
    #[error("image {0} is not present with pull policy of Never")]
    ImageNeverPull(String),
    /// A pull failed: the registry said no, was unreachable, or the image does not exist.
    #[error("failed to pull image {image}: {message}")]
    Pull {
        /// The image as the pod names it.
        image: String,
        /// Why, in the registry's or the transport's words.
        message: String,
    },
    /// The name is not a valid image reference.
    #[error("invalid image name {0:?}")]
    InvalidImageName(String),
    /// No sandbox, container or image with this id.
    #[error("{0} not found")]
    NotFound(String),
    /// Anything else the runtime reported.
    #[error("{0}")]
    Runtime(String),
}

/// Results of runtime calls.
pub type RuntimeResult<T> = Result<T, RuntimeError>;

/// Name and version, for the Node's `containerRuntimeVersion` (`containerd://1.6.20`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    /// `containerd`.
    pub name: String,
    /// The runtime's version, e.g. `1.6.20`.
    pub version: String,
}

/// `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull every time a container starts.
    Always,
    /// Pull only when the image is absent.
    IfNotPresent,
    /// Never pull; fail when absent.
    Never,
}

/// A registry credential taken from an `imagePullSecrets` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCredential {
    /// The registry host (and optional path prefix) the credential is for.
    pub server: String,
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

/// The parts of an image's config the kubelet needs to build a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`, as `NAME=value`.
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: String,
    /// `User`.
    pub user: String,
}

/// An image in the node's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The image id: the digest of its config (`sha256:…`), as `imageID` reports it.
    pub id: String,
    /// Names it is known by, normalized (`docker.io/library/nginx:latest`).
    pub repo_tags: Vec<String>,
    /// `name@sha256:…` of its manifest, when known.
    pub repo_digests: Vec<String>,
    /// Unpacked size in bytes.
    pub size: u64,
    /// Its config.
    pub config: ImageConfig,
}

/// What a pod's sandbox is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// The pod's name.
    pub pod_name: String,
    /// The pod's namespace.
    pub pod_namespace: String,
    /// The pod's UID.
    pub pod_uid: String,
    /// The pod's hostname (set in its UTS namespace).
    pub hostname: String,
    /// Share the node's network namespace (`hostNetwork`).
    pub host_network: bool,
    /// Share the node's IPC namespace (`hostIPC`).
    pub host_ipc: bool,
    /// Share the node's PID namespace (`hostPID`).
    pub host_pid: bool,
    /// The pod's cgroup parent, under which each container gets its own cgroup.
    pub cgroup_parent: String,
    /// Labels kept with the sandbox ([`labels`] and anything else).
    pub labels: BTreeMap<String, String>,
}

/// A pod sandbox as the runtime knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// The runtime's id for it.
    pub id: String,
    /// The labels it was made with.
    pub labels: BTreeMap<String, String>,
    /// The pod's network namespace as a file to `setns` into; `None` with `hostNetwork`.
    pub netns: Option<PathBuf>,
    /// Whether it is still usable (its namespaces exist).
    pub ready: bool,
    /// When it was made.
    pub created_at: SystemTime,
}

/// A bind mount into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it appears in the container.
    pub container_path: PathBuf,
    /// What is mounted there from the node.
    pub host_path: PathBuf,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Linux specifics of a container: resources and security context, already resolved from
/// the pod spec (pod-level values folded into container-level ones).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinuxConfig {
    /// CPU shares (cgroup v1 `cpu.shares`; converted to `cpu.weight` on v2).
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per `cpu_period`.
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    pub cpu_period: Option<u64>,
    /// Memory limit in bytes.
    pub memory_limit: Option<i64>,
    /// `oom_score_adj` from the pod's QoS class.
    pub oom_score_adj: Option<i32>,
    /// `runAsUser`; the image's `User` otherwise.
    pub run_as_user: Option<i64>,
    /// `runAsGroup`.
    pub run_as_group: Option<i64>,
    /// `supplementalGroups` and `fsGroup`.
    pub supplemental_groups: Vec<i64>,
    /// `privileged`.
    pub privileged: bool,
    /// Capabilities added to the runtime's default set (`CAP_`-prefixed).
    pub capabilities_add: Vec<String>,
    /// Capabilities dropped from it (`ALL` drops every one).
    pub capabilities_drop: Vec<String>,
    /// `readOnlyRootFilesystem`.
    pub readonly_rootfs: bool,
    /// `allowPrivilegeEscalation: false` (sets `no_new_privileges`).
    pub no_new_privileges: bool,
    /// `seccompProfile: RuntimeDefault`.
    pub seccomp_runtime_default: bool,
}

/// Everything needed to create one container of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerConfig {
    /// The container's name in the pod spec.
    pub name: String,
    /// How many times it was started before.
    pub attempt: u32,
    /// The image id ([`Image::id`]) it runs.
    pub image: String,
    /// The image as the pod names it (reported back as `image`).
    pub image_ref: String,
    /// The full argv: `command`/`args` already merged with the image's entrypoint and cmd.
    pub argv: Vec<String>,
    /// Environment, in order, image's `Env` included.
    pub env: Vec<(String, String)>,
    /// Working directory (the image's when the pod sets none).
    pub working_dir: String,
    /// Bind mounts (volumes, `/etc/hosts`, `/etc/resolv.conf`, the termination log).
    pub mounts: Vec<Mount>,
    /// Allocate a terminal.
    pub tty: bool,
    /// Keep stdin open.
    pub stdin: bool,
    /// Close stdin after the first attach detaches.
    pub stdin_once: bool,
    /// The file its output goes to in the CRI log format (`<RFC3339Nano> <stream> <P|F>
    /// <line>`), which `kubectl logs` reads back.
    pub log_path: PathBuf,
    /// Resources and security.
    pub linux: LinuxConfig,
    /// Labels kept with the container ([`labels`] and anything else).
    pub labels: BTreeMap<String, String>,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    /// Made, not started.
    Created,
    /// Its process runs.
    Running,
    /// Its process ended.
    Exited,
    /// The runtime cannot tell.
    Unknown,
}

/// A container as the runtime knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// The runtime's id for it.
    pub id: String,
    /// The sandbox it belongs to.
    pub sandbox_id: String,
    /// The labels it was made with.
    pub labels: BTreeMap<String, String>,
    /// The image id it runs.
    pub image: String,
    /// The image as the pod named it.
    pub image_ref: String,
    /// Its state.
    pub state: ContainerState,
    /// When it was made.
    pub created_at: SystemTime,
    /// When its process started.
    pub started_at: Option<SystemTime>,
    /// When its process ended.
    pub finished_at: Option<SystemTime>,
    /// The exit code once exited (128 + signal when killed by one).
    pub exit_code: Option<i32>,
    /// Why it ended, as upstream reports it: `Completed`, `Error`, `OOMKilled`.
    pub reason: Option<String>,
    /// Its log file.
    pub log_path: PathBuf,
}

/// A running container's resource usage, read from its cgroup (what upstream's CRI
/// `ContainerStats` carries and cadvisor computes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerStats {
    /// When it was read.
    pub timestamp: SystemTime,
    /// CPU time used since the container started, in nanoseconds (cumulative).
    pub cpu_usage_ns: u64,
    /// Memory in use less the inactive file cache, in bytes (the working set).
    pub memory_working_set_bytes: u64,
    /// Memory in use, page cache included, in bytes.
    pub memory_usage_bytes: u64,
    /// Anonymous memory and swap cache, in bytes.
    pub memory_rss_bytes: u64,
    /// Page faults, cumulative.
    pub page_faults: u64,
    /// Major page faults, cumulative.
    pub major_page_faults: u64,
    /// The memory limit, in bytes; `None` when unlimited.
    pub memory_limit_bytes: Option<u64>,
}

/// The size of a terminal, sent when the client's window changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
}

/// What an exec or attach asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    /// The command to run (exec only; ignored by attach).
    pub command: Vec<String>,
    /// Allocate (exec) or use (attach) a terminal; stdout and stderr are then one stream.
    pub tty: bool,
    /// Connect stdin.
    pub stdin: bool,
    /// Connect stdout.
    pub stdout: bool,
    /// Connect stderr (never with `tty`).
    pub stderr: bool,
}

/// The streams of a running exec or attach. Dropping it detaches.
pub struct StreamSession {
    /// Writes to the process's stdin; dropping it closes stdin.
    pub stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    /// The process's stdout (and stderr with a terminal).
    pub stdout: Option<Pin<Box<dyn AsyncRead + Send>>>,
    /// The process's stderr.
    pub stderr: Option<Pin<Box<dyn AsyncRead + Send>>>,
    /// Terminal size changes, with a terminal.
    pub resize: Option<tokio::sync::mpsc::Sender<TerminalSize>>,
    /// Resolves with the exit code when the exec'd process ends (attach: when the
    /// container's does).
    pub exit: Pin<Box<dyn std::future::Future<Output = RuntimeResult<i32>> + Send>>,
}

impl std::fmt::Debug for StreamSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSession")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("resize", &self.resize.is_some())
            .finish_non_exhaustive()
    }
}

/// The runtime: images, sandboxes, containers, and streams into them.
///
/// Every method is idempotent where CRI's is: stopping a stopped container or removing a
/// removed one succeeds.
#[async_trait]
pub trait ContainerRuntime: Send + Sync + 'static {
    /// The runtime's name and version.
    async fn version(&self) -> RuntimeResult<RuntimeVersion>;

    /// Makes `image` present per `policy`, pulling with `credentials` when needed; answers
    /// the image as stored.
    async fn ensure_image(
        &self,
        image: &str,
        policy: PullPolicy,
        credentials: &[RegistryCredential],
    ) -> RuntimeResult<Image>;
    /// Every image in the node's store.
    async fn list_images(&self) -> RuntimeResult<Vec<Image>>;
    /// Removes an image by id or name.
    async fn remove_image(&self, image: &str) -> RuntimeResult<()>;

    /// Makes a pod's sandbox (its shared namespaces).
    async fn run_sandbox(&self, config: &SandboxConfig) -> RuntimeResult<Sandbox>;
    /// Stops every container of the sandbox (killing what still runs) and frees its namespaces.
    async fn stop_sandbox(&self, sandbox_id: &str) -> RuntimeResult<()>;
    /// Forgets a stopped sandbox.
    async fn remove_sandbox(&self, sandbox_id: &str) -> RuntimeResult<()>;
    /// Every sandbox the runtime holds for this kubelet.
    async fn list_sandboxes(&self) -> RuntimeResult<Vec<Sandbox>>;

    /// Creates a container in a sandbox (not started).
    async fn create_container(
        &self,
        sandbox: &Sandbox,
        config: &ContainerConfig,
    ) -> RuntimeResult<String>;
    /// Starts a created container.
    async fn start_container(&self, container_id: &str) -> RuntimeResult<()>;
    /// Sends SIGTERM (or the image's stop signal), waits up to `grace_seconds`, then SIGKILL;
    /// returns once the process is gone.
    async fn stop_container(&self, container_id: &str, grace_seconds: i64) -> RuntimeResult<()>;
    /// Removes a stopped container.
    async fn remove_container(&self, container_id: &str) -> RuntimeResult<()>;
    /// Every container the runtime holds for this kubelet, with its current state (what a
    /// relist compares against the pods).
    async fn list_containers(&self) -> RuntimeResult<Vec<Container>>;
    /// The sandboxes and containers of one pod (labelled [`labels::POD_UID`] `pod_uid`),
    /// what a pod worker reads on each sync: a runtime that can filter by label should
    /// (reading every pod's on each sync is quadratic in the pods of the node). By
    /// default the full lists, filtered.
    async fn list_pod(&self, pod_uid: &str) -> RuntimeResult<(Vec<Sandbox>, Vec<Container>)> {
        let (sandboxes, containers) =
            tokio::try_join!(self.list_sandboxes(), self.list_containers())?;
        let ours = |l: &std::collections::BTreeMap<String, String>| {
            l.get(labels::POD_UID).map(String::as_str) == Some(pod_uid)
        };
        Ok((
            sandboxes.into_iter().filter(|s| ours(&s.labels)).collect(),
            containers.into_iter().filter(|c| ours(&c.labels)).collect(),
        ))
    }

    /// Runs a command in a running container.
    async fn exec(
        &self,
        container_id: &str,
        request: &StreamRequest,
    ) -> RuntimeResult<StreamSession>;
    /// Connects to a running container's own stdio.
    async fn attach(
        &self,
        container_id: &str,
        request: &StreamRequest,
    ) -> RuntimeResult<StreamSession>;

    /// A running container's resource usage; `None` where the runtime cannot tell (the
    /// container is not running, or the runtime keeps no stats).
    async fn container_stats(&self, container_id: &str) -> RuntimeResult<Option<ContainerStats>> {
        let _ = container_id;
        Ok(None)
    }
}
pub mod fake;

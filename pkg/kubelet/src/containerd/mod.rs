//! [`ContainerRuntime`] on containerd's own gRPC services (no CRI plugin), as k3s embeds it.
//!
//! - [`supervisor`]: the embedded containerd child (config, start, restart, stop).
//! - [`images`]: the image store: local lookups, `k1s image import` of OCI-layout and
//!   docker-archive tarballs (content store, image record, layers unpacked into overlayfs
//!   through the diff service, since containerd 1.6 has no transfer service), airgap imports.
//! - [`sandbox`]: a pod's namespaces, made in-process and pinned as bind-mounted files.
//! - [`spec`]: the OCI runtime spec of a container, with containerd's defaults.
//! - [`io`]: container output into CRI-format log files, attach and exec streams over FIFOs
//!   that a restarted k1s opens again.
//!
//! Everything a restarted kubelet needs is kept in containerd: sandboxes and containers are
//! container records labelled with [`KIND_LABEL`]; exit codes, times and reasons are written
//! into the record's labels once the task ends, and the task is then deleted.

pub mod images;
pub mod io;
pub mod pull;
pub mod reference;
pub mod sandbox;
mod seccomp;
pub mod spec;
pub mod supervisor;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use containerd_client::services::v1 as pb;
use containerd_client::types::v1::Status as TaskStatus;
use tonic::transport::Channel;

use crate::runtime::{
    Container, ContainerConfig, ContainerRuntime, ContainerState, Image, PullPolicy,
    RegistryCredential, RuntimeError, RuntimeResult, RuntimeVersion, Sandbox, SandboxConfig,
    StreamRequest, StreamSession,
};

pub use supervisor::{Supervisor, SupervisorConfig};

/// The containerd namespace k1s keeps its pods and images in (as the CRI plugin does).
pub const NAMESPACE: &str = "k8s.io";
/// The snapshotter every container and image uses.
pub const SNAPSHOTTER: &str = "overlayfs";
/// The runtime (shim) containers run under.
pub const RUNTIME: &str = "io.containerd.runc.v2";
/// Label telling k1s's sandbox records (`sandbox`) from its container records (`container`).
pub const KIND_LABEL: &str = "io.k1s.kind";
/// Label of a container record naming its sandbox (upstream's label key).
pub const SANDBOX_ID_LABEL: &str = "io.kubernetes.sandbox.id";

pub(crate) const LABEL_IMAGE_REF: &str = "io.k1s.image-ref";
pub(crate) const LABEL_LOG_PATH: &str = "io.k1s.log-path";
pub(crate) const LABEL_STARTED: &str = "io.k1s.started-at";
pub(crate) const LABEL_FINISHED: &str = "io.k1s.finished-at";
pub(crate) const LABEL_EXIT_CODE: &str = "io.k1s.exit-code";
pub(crate) const LABEL_REASON: &str = "io.k1s.reason";
pub(crate) const LABEL_STOP_SIGNAL: &str = "io.k1s.stop-signal";
pub(crate) const LABEL_CGROUP: &str = "io.k1s.cgroup";
pub(crate) const LABEL_TTY: &str = "io.k1s.tty";
pub(crate) const LABEL_STDIN: &str = "io.k1s.stdin";
pub(crate) const LABEL_STDIN_ONCE: &str = "io.k1s.stdin-once";

/// What can go wrong starting or reaching containerd.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    /// A binary k1s needs is not installed (the message says what to install).
    #[error("{0}")]
    Missing(String),
    /// The config or a directory could not be written.
    #[error("containerd config: {0}")]
    Config(String),
    /// containerd did not start or answer.
    #[error("containerd: {0}")]
    Start(String),
    /// The endpoint could not be reached.
    #[error("cannot connect to containerd at {endpoint}: {message}")]
    Connect {
        /// The socket.
        endpoint: String,
        /// Why.
        message: String,
    },
}

/// Connects to containerd's gRPC socket (`/run/containerd/containerd.sock` or
/// `unix:///run/containerd/containerd.sock`, as `--container-runtime-endpoint` takes it).
pub async fn connect(endpoint: impl AsRef<Path>) -> Result<Channel, ContainerdError> {
    let raw = endpoint.as_ref().to_string_lossy().into_owned();
    let path = raw.strip_prefix("unix://").unwrap_or(&raw).to_string();
    containerd_client::connect(&path)
        .await
        .map_err(|e| ContainerdError::Connect {
            endpoint: raw.clone(),
            message: format!(
                "{e}: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            ),
        })
}

/// How the runtime stores what it makes besides containerd's records.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// The containerd namespace ([`NAMESPACE`]).
    pub namespace: String,
    /// The directory for sandboxes' namespace files, hostname files, shm and container FIFOs
    /// (`<data-dir>/agent/containerd/k1s`; must outlive k1s restarts, not reboots).
    pub state_dir: PathBuf,
    /// Where `registries.yaml` (mirrors, insecure registries, auth) is read from.
    pub registries: Option<PathBuf>,
}

impl RuntimeOptions {
    /// The defaults for a data dir.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        RuntimeOptions {
            namespace: NAMESPACE.to_string(),
            state_dir: data_dir.join("agent").join("containerd").join("k1s"),
            registries: Some(data_dir.join("registries.yaml")),
        }
    }
}

/// The kubelet's runtime on a containerd gRPC socket.
#[derive(Clone)]
pub struct ContainerdRuntime {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) channel: Channel,
    pub(crate) namespace: String,
    pub(crate) state_dir: PathBuf,
    pub(crate) registries: Option<PathBuf>,
    /// Live output copiers and attach hubs, by container id.
    pub(crate) ios: Mutex<HashMap<String, Arc<io::ContainerIo>>>,
    /// Content already read (immutable by digest).
    pub(crate) blobs: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    /// Output copiers and exit watchers, ended by [`ContainerdRuntime::close`].
    pub(crate) background: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Serializes finishing a container (reading OOM, recording the exit, deleting its task).
    pub(crate) finishing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ContainerdRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerdRuntime")
            .field("namespace", &self.inner.namespace)
            .field("state_dir", &self.inner.state_dir)
            .finish_non_exhaustive()
    }
}

/// Maps a gRPC status onto the contract's errors.
pub(crate) fn status_err(what: &str, status: tonic::Status) -> RuntimeError {
    match status.code() {
        tonic::Code::NotFound => RuntimeError::NotFound(format!("{what}: {}", status.message())),
        _ => RuntimeError::Runtime(format!("{what}: {}", status.message())),
    }
}

pub(crate) fn is_not_found(e: &tonic::Status) -> bool {
    e.code() == tonic::Code::NotFound
}

pub(crate) fn rt_err(what: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Runtime(what.to_string())
}

pub(crate) fn to_system_time(ts: &prost_types::Timestamp) -> SystemTime {
    let secs = u64::try_from(ts.seconds).unwrap_or(0);
    let nanos = u32::try_from(ts.nanos).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
}

pub(crate) fn time_label(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

pub(crate) fn parse_time_label(s: &str) -> Option<SystemTime> {
    let (secs, nanos) = s.split_once('.').unwrap_or((s, "0"));
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs.parse().ok()?, nanos.parse().ok()?))
}

/// A fresh id: 64 hex characters, as containerd's clients make them.
pub(crate) fn new_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl ContainerdRuntime {
    /// Connects to containerd at `endpoint` and re-attaches to the output of the containers
    /// still running there (a restarted k1s picks their logs up where they were).
    pub async fn connect(
        endpoint: impl AsRef<Path>,
        options: RuntimeOptions,
    ) -> Result<Self, ContainerdError> {
        let channel = connect(endpoint).await?;
        Ok(Self::with_channel(channel, options).await)
    }

    /// Like [`ContainerdRuntime::connect`] over an open channel.
    pub async fn with_channel(channel: Channel, options: RuntimeOptions) -> Self {
        let runtime = ContainerdRuntime {
            inner: Arc::new(Inner {
                channel,
                namespace: options.namespace,
                state_dir: options.state_dir,
                registries: options.registries,
                ios: Mutex::new(HashMap::new()),
                blobs: Mutex::new(HashMap::new()),
                background: Mutex::new(Vec::new()),
                finishing: tokio::sync::Mutex::new(()),
            }),
        };
        if let Err(e) = std::fs::create_dir_all(&runtime.inner.state_dir) {
            tracing::warn!(dir = %runtime.inner.state_dir.display(), "cannot create the runtime's state dir: {e}");
        }
        if let Err(e) = runtime.reattach().await {
            tracing::warn!("cannot re-attach to running containers: {e}");
        }
        runtime
    }

    /// Stops following containers (output copiers, exit watchers) so another runtime
    /// instance on the same state dir can take over, as a restarted k1s does. The containers
    /// keep running.
    pub fn close(&self) {
        if let Ok(mut handles) = self.inner.background.lock() {
            for handle in handles.drain(..) {
                handle.abort();
            }
        }
        if let Ok(mut ios) = self.inner.ios.lock() {
            ios.clear();
        }
    }

    /// Keeps a background task's handle for [`ContainerdRuntime::close`].
    pub(crate) fn track(&self, handle: tokio::task::JoinHandle<()>) {
        if let Ok(mut handles) = self.inner.background.lock() {
            handles.retain(|h| !h.is_finished());
            handles.push(handle.abort_handle());
        }
    }

    /// A request in k1s's containerd namespace.
    pub(crate) fn req<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(ns) = self.inner.namespace.parse() {
            request.metadata_mut().insert("containerd-namespace", ns);
        }
        request
    }

    /// A request in k1s's namespace under a lease (content and snapshots it makes are safe
    /// from garbage collection until the lease ends).
    pub(crate) fn leased<T>(&self, message: T, lease: &str) -> tonic::Request<T> {
        let mut request = self.req(message);
        if let Ok(value) = lease.parse() {
            request.metadata_mut().insert("containerd-lease", value);
        }
        request
    }

    pub(crate) fn containers(&self) -> pb::containers_client::ContainersClient<Channel> {
        pb::containers_client::ContainersClient::new(self.inner.channel.clone())
    }
    pub(crate) fn tasks(&self) -> pb::tasks_client::TasksClient<Channel> {
        pb::tasks_client::TasksClient::new(self.inner.channel.clone())
    }
    pub(crate) fn images_client(&self) -> pb::images_client::ImagesClient<Channel> {
        pb::images_client::ImagesClient::new(self.inner.channel.clone())
    }
    pub(crate) fn content(&self) -> pb::content_client::ContentClient<Channel> {
        pb::content_client::ContentClient::new(self.inner.channel.clone())
    }
    pub(crate) fn snapshots(&self) -> pb::snapshots::snapshots_client::SnapshotsClient<Channel> {
        pb::snapshots::snapshots_client::SnapshotsClient::new(self.inner.channel.clone())
    }
    pub(crate) fn diff(&self) -> pb::diff_client::DiffClient<Channel> {
        pb::diff_client::DiffClient::new(self.inner.channel.clone())
    }
    pub(crate) fn leases(&self) -> pb::leases_client::LeasesClient<Channel> {
        pb::leases_client::LeasesClient::new(self.inner.channel.clone())
    }

    /// The container records of one kind (`sandbox` or `container`).
    pub(crate) async fn records(&self, kind: &str) -> RuntimeResult<Vec<pb::Container>> {
        self.records_filtered(format!("labels.\"{KIND_LABEL}\"=={kind}"))
            .await
    }

    /// The container records of one kind (`sandbox` or `container`) of one pod.
    async fn pod_records(&self, kind: &str, pod_uid: &str) -> RuntimeResult<Vec<pb::Container>> {
        // A quoted value: containerd's filter syntax takes any UID that way.
        let uid = pod_uid.replace('\\', "\\\\").replace('"', "\\\"");
        let records = self
            .records_filtered(format!(
                "labels.\"{KIND_LABEL}\"=={kind},labels.\"{}\"==\"{uid}\"",
                crate::runtime::labels::POD_UID
            ))
            .await?;
        Ok(records
            .into_iter()
            .filter(|r| {
                r.labels
                    .get(crate::runtime::labels::POD_UID)
                    .map(String::as_str)
                    == Some(pod_uid)
            })
            .collect())
    }

    async fn records_filtered(&self, filter: String) -> RuntimeResult<Vec<pb::Container>> {
        let response = self
            .containers()
            .list(self.req(pb::ListContainersRequest {
                filters: vec![filter],
            }))
            .await
            .map_err(|e| status_err("list containers", e))?;
        Ok(response.into_inner().containers)
    }

    pub(crate) async fn record(&self, id: &str) -> RuntimeResult<pb::Container> {
        let response = self
            .containers()
            .get(self.req(pb::GetContainerRequest { id: id.to_string() }))
            .await
            .map_err(|e| status_err(&format!("container {id}"), e))?;
        response
            .into_inner()
            .container
            .ok_or_else(|| RuntimeError::NotFound(id.to_string()))
    }

    /// Merges `labels` into a record's labels.
    pub(crate) async fn set_labels(
        &self,
        id: &str,
        labels: &[(&str, String)],
    ) -> RuntimeResult<()> {
        let mut record = self.record(id).await?;
        for (k, v) in labels {
            record.labels.insert((*k).to_string(), v.clone());
        }
        let paths = labels.iter().map(|(k, _)| format!("labels.{k}")).collect();
        self.containers()
            .update(self.req(pb::UpdateContainerRequest {
                container: Some(record),
                update_mask: Some(prost_types::FieldMask { paths }),
            }))
            .await
            .map_err(|e| status_err(&format!("update container {id}"), e))?;
        Ok(())
    }

    /// The task of a container, if it has one.
    pub(crate) async fn task(
        &self,
        id: &str,
    ) -> RuntimeResult<Option<containerd_client::types::v1::Process>> {
        match self
            .tasks()
            .get(self.req(pb::GetRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            }))
            .await
        {
            Ok(response) => Ok(response.into_inner().process),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(status_err(&format!("task {id}"), e)),
        }
    }

    /// After a restart: starts output copiers and exit watchers for running containers and
    /// records the exits that happened while k1s was away.
    async fn reattach(&self) -> RuntimeResult<()> {
        let records = self.records("container").await?;
        let tasks = self.task_map().await?;
        for record in records {
            if record.labels.contains_key(LABEL_EXIT_CODE) {
                continue;
            }
            match tasks.get(&record.id).map(|t| t.status()) {
                Some(TaskStatus::Running)
                | Some(TaskStatus::Paused)
                | Some(TaskStatus::Pausing) => {
                    let io = io::ContainerIo::open(self, &record, true);
                    self.inner
                        .ios
                        .lock()
                        .map_err(rt_err)?
                        .insert(record.id.clone(), io.clone());
                    self.watch_exit(record.id.clone());
                }
                Some(TaskStatus::Stopped) => {
                    self.finish(&record.id).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub(crate) async fn task_map(
        &self,
    ) -> RuntimeResult<HashMap<String, containerd_client::types::v1::Process>> {
        let response = self
            .tasks()
            .list(self.req(pb::ListTasksRequest {
                filter: String::new(),
            }))
            .await
            .map_err(|e| status_err("list tasks", e))?;
        Ok(response
            .into_inner()
            .tasks
            .into_iter()
            .map(|t| {
                // containerd names a task's container in `id` (and leaves `container_id` empty).
                let key = if t.container_id.is_empty() {
                    t.id.clone()
                } else {
                    t.container_id.clone()
                };
                (key, t)
            })
            .collect())
    }

    /// Watches a running container's task in the background and finishes it once it exits.
    pub(crate) fn watch_exit(&self, id: String) {
        let runtime = self.clone();
        let handle = tokio::spawn(async move {
            loop {
                let waited = runtime
                    .tasks()
                    .wait(runtime.req(pb::WaitRequest {
                        container_id: id.clone(),
                        exec_id: String::new(),
                    }))
                    .await;
                match waited {
                    Ok(_) => break,
                    Err(e) if is_not_found(&e) => break,
                    Err(e) => {
                        // containerd restarting: wait for it to come back.
                        tracing::debug!(container = %id, "waiting on the task failed: {e}; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        if matches!(runtime.record(&id).await, Err(RuntimeError::NotFound(_))) {
                            return;
                        }
                    }
                }
            }
            if let Err(e) = runtime.finish(&id).await {
                tracing::warn!(container = %id, "cannot record the container's exit: {e}");
            }
        });
        self.track(handle);
    }

    /// Records a stopped task's exit (code, time, reason with OOM read from its cgroup) into
    /// the container's labels, deletes the task and ends the output copiers.
    pub(crate) async fn finish(&self, id: &str) -> RuntimeResult<()> {
        let _guard = self.inner.finishing.lock().await;
        let record = match self.record(id).await {
            Ok(r) => r,
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if record.labels.contains_key(LABEL_EXIT_CODE) {
            return Ok(());
        }
        let Some(task) = self.task(id).await? else {
            return Ok(());
        };
        if task.status() != TaskStatus::Stopped {
            return Ok(());
        }
        let code = i32::try_from(task.exit_status).unwrap_or(255);
        let oom = record
            .labels
            .get(LABEL_CGROUP)
            .is_some_and(|cg| spec::oom_killed(cg));
        let reason = if oom {
            "OOMKilled"
        } else if code == 0 {
            "Completed"
        } else {
            "Error"
        };
        let finished = task
            .exited_at
            .as_ref()
            .map(to_system_time)
            .unwrap_or_else(SystemTime::now);
        self.set_labels(
            id,
            &[
                (LABEL_EXIT_CODE, code.to_string()),
                (LABEL_FINISHED, time_label(finished)),
                (LABEL_REASON, reason.to_string()),
            ],
        )
        .await?;
        match self
            .tasks()
            .delete(self.req(pb::DeleteTaskRequest {
                container_id: id.to_string(),
            }))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => tracing::warn!(container = %id, "cannot delete the task: {e}"),
        }
        let io = self.inner.ios.lock().map_err(rt_err)?.get(id).cloned();
        if let Some(io) = io {
            io.exited(code).await;
        }
        Ok(())
    }

    fn container_from(
        &self,
        record: &pb::Container,
        task: Option<&containerd_client::types::v1::Process>,
    ) -> Container {
        let labels: BTreeMap<String, String> = record.labels.clone().into_iter().collect();
        let created_at = record
            .created_at
            .as_ref()
            .map(to_system_time)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let started_at = labels.get(LABEL_STARTED).and_then(|s| parse_time_label(s));
        let mut container = Container {
            id: record.id.clone(),
            sandbox_id: labels.get(SANDBOX_ID_LABEL).cloned().unwrap_or_default(),
            image: record
                .labels
                .get("io.k1s.image-id")
                .cloned()
                .unwrap_or_else(|| record.image.clone()),
            image_ref: labels
                .get(LABEL_IMAGE_REF)
                .cloned()
                .unwrap_or_else(|| record.image.clone()),
            state: ContainerState::Created,
            created_at,
            started_at,
            finished_at: None,
            exit_code: None,
            reason: None,
            log_path: labels
                .get(LABEL_LOG_PATH)
                .map(PathBuf::from)
                .unwrap_or_default(),
            labels: labels.clone(),
        };
        for key in [
            KIND_LABEL,
            LABEL_IMAGE_REF,
            LABEL_LOG_PATH,
            LABEL_STARTED,
            LABEL_FINISHED,
            LABEL_EXIT_CODE,
            LABEL_REASON,
            LABEL_STOP_SIGNAL,
            LABEL_CGROUP,
            LABEL_TTY,
            LABEL_STDIN,
            LABEL_STDIN_ONCE,
            "io.k1s.image-id",
        ] {
            container.labels.remove(key);
        }
        if let Some(code) = labels.get(LABEL_EXIT_CODE).and_then(|c| c.parse().ok()) {
            container.state = ContainerState::Exited;
            container.exit_code = Some(code);
            container.finished_at = labels.get(LABEL_FINISHED).and_then(|s| parse_time_label(s));
            container.reason = labels.get(LABEL_REASON).cloned();
            return container;
        }
        match task.map(|t| (t.status(), t)) {
            Some((TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing, _)) => {
                container.state = ContainerState::Running;
            }
            Some((TaskStatus::Stopped, t)) => {
                // Exited while nobody watched; finish() records it on the next pass.
                let code = i32::try_from(t.exit_status).unwrap_or(255);
                container.state = ContainerState::Exited;
                container.exit_code = Some(code);
                container.finished_at = t.exited_at.as_ref().map(to_system_time);
                let oom = labels
                    .get(LABEL_CGROUP)
                    .is_some_and(|cg| spec::oom_killed(cg));
                container.reason = Some(
                    if oom {
                        "OOMKilled"
                    } else if code == 0 {
                        "Completed"
                    } else {
                        "Error"
                    }
                    .to_string(),
                );
                let runtime = self.clone();
                let id = record.id.clone();
                tokio::spawn(async move {
                    let _ = runtime.finish(&id).await;
                });
            }
            Some((TaskStatus::Created, _)) => container.state = ContainerState::Created,
            Some(_) => container.state = ContainerState::Unknown,
            None if started_at.is_some() => {
                // Started, but its task is gone without a recorded exit (containerd lost it).
                container.state = ContainerState::Exited;
                container.exit_code = Some(255);
                container.reason = Some("Unknown".to_string());
            }
            None => {}
        }
        container
    }
}

#[async_trait]
impl ContainerRuntime for ContainerdRuntime {
    async fn version(&self) -> RuntimeResult<RuntimeVersion> {
        let mut client = pb::version_client::VersionClient::new(self.inner.channel.clone());
        let response = client
            .version(())
            .await
            .map_err(|e| status_err("version", e))?
            .into_inner();
        Ok(RuntimeVersion {
            name: "containerd".to_string(),
            version: response.version.trim_start_matches('v').to_string(),
        })
    }

    async fn ensure_image(
        &self,
        image: &str,
        policy: PullPolicy,
        credentials: &[RegistryCredential],
    ) -> RuntimeResult<Image> {
        images::ensure_image(self, image, policy, credentials).await
    }

    async fn list_images(&self) -> RuntimeResult<Vec<Image>> {
        images::list_images(self).await
    }

    async fn remove_image(&self, image: &str) -> RuntimeResult<()> {
        images::remove_image(self, image).await
    }

    async fn run_sandbox(&self, config: &SandboxConfig) -> RuntimeResult<Sandbox> {
        sandbox::run_sandbox(self, config).await
    }

    async fn stop_sandbox(&self, sandbox_id: &str) -> RuntimeResult<()> {
        sandbox::stop_sandbox(self, sandbox_id).await
    }

    async fn remove_sandbox(&self, sandbox_id: &str) -> RuntimeResult<()> {
        sandbox::remove_sandbox(self, sandbox_id).await
    }

    async fn list_sandboxes(&self) -> RuntimeResult<Vec<Sandbox>> {
        sandbox::list_sandboxes(self).await
    }

    async fn create_container(
        &self,
        sandbox: &Sandbox,
        config: &ContainerConfig,
    ) -> RuntimeResult<String> {
        spec::create_container(self, sandbox, config).await
    }

    async fn start_container(&self, container_id: &str) -> RuntimeResult<()> {
        let record = self.record(container_id).await?;
        let mounts = self
            .snapshots()
            .mounts(self.req(pb::snapshots::MountsRequest {
                snapshotter: record.snapshotter.clone(),
                key: record.snapshot_key.clone(),
            }))
            .await
            .map_err(|e| status_err("snapshot mounts", e))?
            .into_inner()
            .mounts;
        let container_io = io::ContainerIo::open(self, &record, false);
        self.inner
            .ios
            .lock()
            .map_err(rt_err)?
            .insert(container_id.to_string(), container_io.clone());
        let paths = container_io.paths();
        let created = self
            .tasks()
            .create(self.req(pb::CreateTaskRequest {
                container_id: container_id.to_string(),
                rootfs: mounts,
                stdin: paths.stdin.clone(),
                stdout: paths.stdout.clone(),
                stderr: paths.stderr.clone(),
                terminal: paths.terminal,
                ..Default::default()
            }))
            .await;
        if let Err(e) = created {
            container_io.abort();
            self.inner.ios.lock().map_err(rt_err)?.remove(container_id);
            return Err(status_err(&format!("create task for {container_id}"), e));
        }
        let started = self
            .tasks()
            .start(self.req(pb::StartRequest {
                container_id: container_id.to_string(),
                exec_id: String::new(),
            }))
            .await;
        if let Err(e) = started {
            let _ = self
                .tasks()
                .delete(self.req(pb::DeleteTaskRequest {
                    container_id: container_id.to_string(),
                }))
                .await;
            container_io.abort();
            self.inner.ios.lock().map_err(rt_err)?.remove(container_id);
            return Err(status_err(&format!("start {container_id}"), e));
        }
        self.set_labels(
            container_id,
            &[(LABEL_STARTED, time_label(SystemTime::now()))],
        )
        .await?;
        self.watch_exit(container_id.to_string());
        Ok(())
    }

    async fn stop_container(&self, container_id: &str, grace_seconds: i64) -> RuntimeResult<()> {
        let record = match self.record(container_id).await {
            Ok(r) => r,
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let running = |t: &Option<containerd_client::types::v1::Process>| {
            t.as_ref()
                .is_some_and(|t| t.status() != TaskStatus::Stopped)
        };
        if running(&self.task(container_id).await?) && grace_seconds > 0 {
            let signal = record
                .labels
                .get(LABEL_STOP_SIGNAL)
                .and_then(|s| spec::parse_signal(s))
                .unwrap_or(libc::SIGTERM);
            self.kill(container_id, signal, false).await?;
            let deadline = tokio::time::Instant::now()
                + Duration::from_secs(u64::try_from(grace_seconds).unwrap_or(0));
            while tokio::time::Instant::now() < deadline && running(&self.task(container_id).await?)
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if running(&self.task(container_id).await?) {
            self.kill(container_id, libc::SIGKILL, true).await?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while running(&self.task(container_id).await?) {
                if tokio::time::Instant::now() > deadline {
                    return Err(rt_err(format!(
                        "container {container_id} did not die after SIGKILL"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.finish(container_id).await
    }

    async fn remove_container(&self, container_id: &str) -> RuntimeResult<()> {
        let record = match self.record(container_id).await {
            Ok(r) => r,
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if self.task(container_id).await?.is_some() {
            self.stop_container(container_id, 0).await?;
            match self
                .tasks()
                .delete(self.req(pb::DeleteTaskRequest {
                    container_id: container_id.to_string(),
                }))
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(status_err("delete task", e)),
            }
        }
        if let Some(io) = self.inner.ios.lock().map_err(rt_err)?.remove(container_id) {
            io.abort();
        }
        match self
            .containers()
            .delete(self.req(pb::DeleteContainerRequest {
                id: container_id.to_string(),
            }))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(status_err("delete container", e)),
        }
        match self
            .snapshots()
            .remove(self.req(pb::snapshots::RemoveSnapshotRequest {
                snapshotter: record.snapshotter.clone(),
                key: record.snapshot_key.clone(),
            }))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => tracing::warn!(container = %container_id, "cannot remove the snapshot: {e}"),
        }
        let _ = std::fs::remove_dir_all(io::container_dir(self, container_id));
        Ok(())
    }

    async fn list_containers(&self) -> RuntimeResult<Vec<Container>> {
        let records = self.records("container").await?;
        let tasks = self.task_map().await?;
        Ok(records
            .iter()
            .map(|r| self.container_from(r, tasks.get(&r.id)))
            .collect())
    }

    async fn list_pod(&self, pod_uid: &str) -> RuntimeResult<(Vec<Sandbox>, Vec<Container>)> {
        // Only this pod's records, and the tasks of its containers one by one: a sync
        // costs the same whether the node runs one pod or a hundred.
        let (sandboxes, records) = tokio::try_join!(
            self.pod_records("sandbox", pod_uid),
            self.pod_records("container", pod_uid)
        )?;
        let tasks = futures::future::try_join_all(records.iter().map(|r| async {
            // An exit already recorded needs no task (it is deleted by then).
            if r.labels.contains_key(LABEL_EXIT_CODE) {
                return Ok(None);
            }
            self.task(&r.id).await
        }))
        .await?;
        Ok((
            sandboxes.iter().map(sandbox::to_sandbox).collect(),
            records
                .iter()
                .zip(tasks)
                .map(|(r, t)| self.container_from(r, t.as_ref()))
                .collect(),
        ))
    }

    async fn exec(
        &self,
        container_id: &str,
        request: &StreamRequest,
    ) -> RuntimeResult<StreamSession> {
        io::exec(self, container_id, request).await
    }

    async fn attach(
        &self,
        container_id: &str,
        request: &StreamRequest,
    ) -> RuntimeResult<StreamSession> {
        io::attach(self, container_id, request).await
    }

    async fn container_stats(
        &self,
        container_id: &str,
    ) -> RuntimeResult<Option<crate::runtime::ContainerStats>> {
        // Read from the container's cgroup: containerd 1.6's task metrics come as cgroups
        // protobufs that containerd-client does not carry, and the files are what they
        // are made from.
        let record = match self.record(container_id).await {
            Ok(r) => r,
            Err(RuntimeError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if record.labels.contains_key(LABEL_EXIT_CODE) {
            return Ok(None);
        }
        Ok(record
            .labels
            .get(LABEL_CGROUP)
            .and_then(|cg| crate::stats::cgroup_stats(cg)))
    }
}

impl ContainerdRuntime {
    pub(crate) async fn kill(&self, id: &str, signal: i32, all: bool) -> RuntimeResult<()> {
        match self
            .tasks()
            .kill(self.req(pb::KillRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
                signal: u32::try_from(signal).unwrap_or(9),
                all,
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // "process already finished"
            Err(e) if e.code() == tonic::Code::FailedPrecondition => Ok(()),
            Err(e) => Err(status_err(&format!("kill {id}"), e)),
        }
    }
}

/// The runtime the agent runs on, and the embedded containerd behind it when k1s started one.
#[derive(Debug)]
pub struct Started {
    /// The runtime.
    pub runtime: ContainerdRuntime,
    /// The embedded containerd (stop it at shutdown); `None` with an external endpoint.
    pub supervisor: Option<Supervisor>,
}

/// Starts the agent's runtime as k3s does: without `endpoint` an embedded containerd under
/// `<data-dir>/agent/containerd/`, with it the containerd listening there
/// (`--container-runtime-endpoint`).
pub async fn start(data_dir: &Path, endpoint: Option<&str>) -> Result<Started, ContainerdError> {
    let options = RuntimeOptions::for_data_dir(data_dir);
    match endpoint.filter(|e| !e.is_empty()) {
        Some(endpoint) => {
            let runtime = ContainerdRuntime::connect(endpoint, options).await?;
            // Fail now, in one line, rather than at the first pod.
            runtime
                .version()
                .await
                .map_err(|e| ContainerdError::Connect {
                    endpoint: endpoint.to_string(),
                    message: e.to_string(),
                })?;
            Ok(Started {
                runtime,
                supervisor: None,
            })
        }
        None => {
            let supervisor = Supervisor::start(SupervisorConfig::for_data_dir(data_dir)).await?;
            let runtime = ContainerdRuntime::connect(supervisor.socket(), options).await?;
            Ok(Started {
                runtime,
                supervisor: Some(supervisor),
            })
        }
    }
}

/// k3s's airgap images dir: every tarball there is imported when the agent starts
/// ([`images::import_dir`]).
pub fn airgap_images_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("agent").join("images")
}

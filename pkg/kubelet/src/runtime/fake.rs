//! An in-memory [`ContainerRuntime`] and [`PodNetwork`] for tests of the pod logic.
//!
//! Deterministic: a started container runs until a test tells it to exit
//! ([`FakeRuntime::exit_container`]) or it is stopped, except that a container whose argv
//! ends in `exit N` exits with `N` as soon as it starts (a crashing or completing command).
//! Nothing touches the machine.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use k1s_net::{NetError, PodAddresses, PodNetwork, PodRef};
use parking_lot::Mutex;

use super::{
    Container, ContainerConfig, ContainerRuntime, ContainerState, Image, ImageConfig, PullPolicy,
    RegistryCredential, RuntimeError, RuntimeResult, RuntimeVersion, Sandbox, SandboxConfig,
    StreamRequest, StreamSession, labels,
};

/// One container the fake holds, with the config it was made from.
#[derive(Debug, Clone)]
pub struct FakeContainer {
    /// What [`ContainerRuntime::list_containers`] answers.
    pub container: Container,
    /// The config it was created with.
    pub config: ContainerConfig,
}

#[derive(Default)]
struct State {
    images: BTreeMap<String, Image>,
    pull_failures: HashMap<String, String>,
    sandboxes: BTreeMap<String, Sandbox>,
    containers: BTreeMap<String, FakeContainer>,
    exec_results: HashMap<String, i32>,
    next: u64,
    starts: u64,
    pulls: Vec<String>,
}

/// The fake runtime; cheap to clone (clones share the state).
#[derive(Clone, Default)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRuntime").finish_non_exhaustive()
    }
}

/// Exit code of a command whose argv ends in `exit N`.
fn exits_at_once(argv: &[String]) -> Option<i32> {
    let last = argv.last()?;
    let n = last.trim().strip_prefix("exit ")?;
    n.trim().parse().ok()
}

/// The name containerd would store `image` under (the real runtime's normalization); a
/// name that does not parse is kept as given.
fn normalize(image: &str) -> String {
    crate::containerd::reference::ImageReference::parse(image)
        .map_or_else(|_| image.to_string(), |r| r.to_string())
}

impl FakeRuntime {
    /// An empty runtime: no images, no pods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts an image in the store under `name` (normalized as containerd names it).
    pub fn add_image(&self, name: &str, config: ImageConfig) {
        let name = normalize(name);
        let mut st = self.state.lock();
        st.next += 1;
        let id = format!("sha256:{:064x}", st.next);
        let repo = name.rsplit_once(':').map(|(n, _)| n).unwrap_or(&name);
        let image = Image {
            id,
            repo_tags: vec![name.clone()],
            repo_digests: vec![format!("{repo}@sha256:{:064x}", st.next + 1000)],
            size: 1_000_000,
            config,
        };
        st.images.insert(name, image);
    }

    /// Makes pulls of `image` (as absent images) fail with `message`.
    pub fn fail_pull(&self, image: &str, message: &str) {
        self.state
            .lock()
            .pull_failures
            .insert(normalize(image), message.to_string());
    }

    /// Lets pulls of `image` succeed again.
    pub fn allow_pull(&self, image: &str) {
        self.state.lock().pull_failures.remove(&normalize(image));
    }

    /// Images pulled so far (not those found present), in order.
    pub fn pulls(&self) -> Vec<String> {
        self.state.lock().pulls.clone()
    }

    /// How many containers were started so far.
    pub fn starts(&self) -> u64 {
        self.state.lock().starts
    }

    /// Every container held, with its config.
    pub fn containers(&self) -> Vec<FakeContainer> {
        self.state.lock().containers.values().cloned().collect()
    }

    /// The running container `name` of the pod named `pod`, if any.
    pub fn running(&self, pod: &str, name: &str) -> Option<FakeContainer> {
        self.state
            .lock()
            .containers
            .values()
            .find(|c| {
                c.container.state == ContainerState::Running
                    && c.container.labels.get(labels::POD_NAME).map(String::as_str) == Some(pod)
                    && c.container
                        .labels
                        .get(labels::CONTAINER_NAME)
                        .map(String::as_str)
                        == Some(name)
            })
            .cloned()
    }

    /// Ends the running container `name` of pod `pod` with `code`; false when none runs.
    pub fn exit_container(&self, pod: &str, name: &str, code: i32) -> bool {
        let Some(c) = self.running(pod, name) else {
            return false;
        };
        let mut st = self.state.lock();
        if let Some(c) = st.containers.get_mut(&c.container.id) {
            finish(&mut c.container, code, None);
        }
        true
    }

    /// Ends the running container `name` of pod `pod` as the kernel's OOM killer would.
    pub fn oom_kill(&self, pod: &str, name: &str) -> bool {
        let Some(c) = self.running(pod, name) else {
            return false;
        };
        let mut st = self.state.lock();
        if let Some(c) = st.containers.get_mut(&c.container.id) {
            finish(&mut c.container, 137, Some("OOMKilled"));
        }
        true
    }

    /// The exit code execs in containers named `name` answer (0 unless set).
    pub fn set_exec_result(&self, name: &str, code: i32) {
        self.state
            .lock()
            .exec_results
            .insert(name.to_string(), code);
    }

    /// Every sandbox held.
    pub fn sandboxes(&self) -> Vec<Sandbox> {
        self.state.lock().sandboxes.values().cloned().collect()
    }
}

fn finish(c: &mut Container, code: i32, reason: Option<&str>) {
    if c.state == ContainerState::Exited {
        return;
    }
    c.state = ContainerState::Exited;
    c.finished_at = Some(SystemTime::now());
    if c.started_at.is_none() {
        c.started_at = c.finished_at;
    }
    c.exit_code = Some(code);
    c.reason = Some(
        reason
            .unwrap_or(if code == 0 { "Completed" } else { "Error" })
            .to_string(),
    );
}

#[async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn version(&self) -> RuntimeResult<RuntimeVersion> {
        Ok(RuntimeVersion {
            name: "fake".into(),
            version: "0.0.1".into(),
        })
    }

    async fn ensure_image(
        &self,
        image: &str,
        policy: PullPolicy,
        _credentials: &[RegistryCredential],
    ) -> RuntimeResult<Image> {
        if image.is_empty() || image.contains(' ') {
            return Err(RuntimeError::InvalidImageName(image.to_string()));
        }
        let name = normalize(image);
        let mut st = self.state.lock();
        let present = st.images.get(&name).cloned();
        match (policy, present) {
            (PullPolicy::Never | PullPolicy::IfNotPresent, Some(img)) => Ok(img),
            (PullPolicy::Never, None) => Err(RuntimeError::ImageNeverPull(image.to_string())),
            (_, present) => {
                if let Some(message) = st.pull_failures.get(&name) {
                    return Err(RuntimeError::Pull {
                        image: image.to_string(),
                        message: message.clone(),
                    });
                }
                let Some(img) = present else {
                    return Err(RuntimeError::Pull {
                        image: image.to_string(),
                        message: format!("{name}: not found"),
                    });
                };
                st.pulls.push(name);
                Ok(img)
            }
        }
    }

    async fn list_images(&self) -> RuntimeResult<Vec<Image>> {
        Ok(self.state.lock().images.values().cloned().collect())
    }

    async fn remove_image(&self, image: &str) -> RuntimeResult<()> {
        let mut st = self.state.lock();
        let name = normalize(image);
        st.images.retain(|k, v| *k != name && v.id != image);
        Ok(())
    }

    async fn run_sandbox(&self, config: &SandboxConfig) -> RuntimeResult<Sandbox> {
        let mut st = self.state.lock();
        st.next += 1;
        let id = format!("sandbox{:04}", st.next);
        let sandbox = Sandbox {
            id: id.clone(),
            labels: config.labels.clone(),
            netns: (!config.host_network).then(|| PathBuf::from(format!("/fake/netns/{id}"))),
            ready: true,
            created_at: SystemTime::now(),
        };
        st.sandboxes.insert(id, sandbox.clone());
        Ok(sandbox)
    }

    async fn stop_sandbox(&self, sandbox_id: &str) -> RuntimeResult<()> {
        let mut st = self.state.lock();
        if let Some(s) = st.sandboxes.get_mut(sandbox_id) {
            s.ready = false;
        }
        for c in st.containers.values_mut() {
            if c.container.sandbox_id == sandbox_id {
                finish(&mut c.container, 137, None);
            }
        }
        Ok(())
    }

    async fn remove_sandbox(&self, sandbox_id: &str) -> RuntimeResult<()> {
        let mut st = self.state.lock();
        st.sandboxes.remove(sandbox_id);
        st.containers
            .retain(|_, c| c.container.sandbox_id != sandbox_id);
        Ok(())
    }

    async fn list_sandboxes(&self) -> RuntimeResult<Vec<Sandbox>> {
        Ok(self.state.lock().sandboxes.values().cloned().collect())
    }

    async fn create_container(
        &self,
        sandbox: &Sandbox,
        config: &ContainerConfig,
    ) -> RuntimeResult<String> {
        let mut st = self.state.lock();
        if !st.sandboxes.get(&sandbox.id).is_some_and(|s| s.ready) {
            return Err(RuntimeError::NotFound(format!("sandbox {}", sandbox.id)));
        }
        st.next += 1;
        let id = format!("{:064x}", st.next);
        let container = Container {
            id: id.clone(),
            sandbox_id: sandbox.id.clone(),
            labels: config.labels.clone(),
            image: config.image.clone(),
            image_ref: config.image_ref.clone(),
            state: ContainerState::Created,
            created_at: SystemTime::now(),
            started_at: None,
            finished_at: None,
            exit_code: None,
            reason: None,
            log_path: config.log_path.clone(),
        };
        st.containers.insert(
            id.clone(),
            FakeContainer {
                container,
                config: config.clone(),
            },
        );
        Ok(id)
    }

    async fn start_container(&self, container_id: &str) -> RuntimeResult<()> {
        let mut st = self.state.lock();
        st.starts += 1;
        let Some(c) = st.containers.get_mut(container_id) else {
            return Err(RuntimeError::NotFound(format!("container {container_id}")));
        };
        if c.container.state != ContainerState::Created {
            return Err(RuntimeError::Runtime(format!(
                "container {container_id} is not in created state"
            )));
        }
        c.container.state = ContainerState::Running;
        c.container.started_at = Some(SystemTime::now());
        if let Some(code) = exits_at_once(&c.config.argv) {
            finish(&mut c.container, code, None);
        }
        Ok(())
    }

    async fn stop_container(&self, container_id: &str, _grace_seconds: i64) -> RuntimeResult<()> {
        let mut st = self.state.lock();
        if let Some(c) = st.containers.get_mut(container_id) {
            // As a process that dies of SIGTERM.
            finish(&mut c.container, 143, None);
        }
        Ok(())
    }

    async fn remove_container(&self, container_id: &str) -> RuntimeResult<()> {
        self.state.lock().containers.remove(container_id);
        Ok(())
    }

    async fn list_containers(&self) -> RuntimeResult<Vec<Container>> {
        Ok(self
            .state
            .lock()
            .containers
            .values()
            .map(|c| c.container.clone())
            .collect())
    }

    async fn exec(
        &self,
        container_id: &str,
        _request: &StreamRequest,
    ) -> RuntimeResult<StreamSession> {
        let st = self.state.lock();
        let Some(c) = st.containers.get(container_id) else {
            return Err(RuntimeError::NotFound(format!("container {container_id}")));
        };
        if c.container.state != ContainerState::Running {
            return Err(RuntimeError::Runtime(format!(
                "container {container_id} is not running"
            )));
        }
        let name = c
            .container
            .labels
            .get(labels::CONTAINER_NAME)
            .cloned()
            .unwrap_or_default();
        let code = st.exec_results.get(&name).copied().unwrap_or(0);
        Ok(StreamSession {
            stdin: None,
            stdout: Some(Box::pin(tokio::io::empty())),
            stderr: Some(Box::pin(tokio::io::empty())),
            resize: None,
            exit: Box::pin(async move { Ok(code) }),
        })
    }

    async fn attach(
        &self,
        _container_id: &str,
        _request: &StreamRequest,
    ) -> RuntimeResult<StreamSession> {
        Err(RuntimeError::Runtime(
            "the fake runtime does not attach".into(),
        ))
    }
}

/// A pod network that hands out 10.42.0.2, .3, … by pod UID and touches nothing.
#[derive(Clone, Default)]
pub struct FakeNetwork {
    state: Arc<Mutex<BTreeMap<String, IpAddr>>>,
}

impl std::fmt::Debug for FakeNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeNetwork").finish_non_exhaustive()
    }
}

impl FakeNetwork {
    /// No pods wired.
    pub fn new() -> Self {
        Self::default()
    }

    /// The address of each wired pod, by UID.
    pub fn attached(&self) -> BTreeMap<String, IpAddr> {
        self.state.lock().clone()
    }
}

#[async_trait]
impl PodNetwork for FakeNetwork {
    async fn attach(
        &self,
        pod: &PodRef,
        _netns: &Path,
        _host_ports: &[k1s_net::HostPort],
    ) -> Result<PodAddresses, NetError> {
        let mut st = self.state.lock();
        if let Some(ip) = st.get(&pod.uid) {
            return Ok(PodAddresses { ips: vec![*ip] });
        }
        let ip = (2u8..=254)
            .map(|i| IpAddr::V4(Ipv4Addr::new(10, 42, 0, i)))
            .find(|ip| !st.values().any(|used| used == ip))
            .ok_or_else(|| NetError::RangeFull("10.42.0.0/24".into()))?;
        st.insert(pod.uid.clone(), ip);
        Ok(PodAddresses { ips: vec![ip] })
    }

    async fn detach(&self, pod: &PodRef) -> Result<(), NetError> {
        self.state.lock().remove(&pod.uid);
        Ok(())
    }

    async fn reconcile(&self, live_pod_uids: &[String]) -> Result<(), NetError> {
        self.state
            .lock()
            .retain(|uid, _| live_pod_uids.contains(uid));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_named_as_containerd_names_them() {
        assert_eq!(normalize("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(normalize("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(normalize("me/app"), "docker.io/me/app:latest");
        assert_eq!(normalize("localhost:5000/app:v1"), "localhost:5000/app:v1");
        assert_eq!(
            exits_at_once(&["sh".into(), "-c".into(), "exit 3".into()]),
            Some(3)
        );
        assert_eq!(exits_at_once(&["sleep".into(), "9".into()]), None);
    }
}

//! Pod sandboxes: the network, IPC and UTS namespaces a pod's containers share, made by a
//! short-lived thread of k1s (`unshare`, `sethostname`) and pinned by bind-mounting the
//! thread's namespace files, so no pause process is needed. The sandbox itself is a
//! containerd container record (no task) labelled `io.k1s.kind=sandbox`, which is how a
//! restarted kubelet finds it again.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use containerd_client::services::v1 as pb;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use super::{
    ContainerdRuntime, KIND_LABEL, RUNTIME, SANDBOX_ID_LABEL, is_not_found, new_id, rt_err,
    status_err, to_system_time,
};
use crate::runtime::{ContainerRuntime as _, RuntimeError, RuntimeResult, Sandbox, SandboxConfig};

pub(crate) const LABEL_NETNS: &str = "io.k1s.netns";
pub(crate) const LABEL_IPCNS: &str = "io.k1s.ipcns";
pub(crate) const LABEL_UTSNS: &str = "io.k1s.utsns";
pub(crate) const LABEL_SHM: &str = "io.k1s.shm";
pub(crate) const LABEL_HOSTNAME_FILE: &str = "io.k1s.hostname-file";
pub(crate) const LABEL_HOST_PID: &str = "io.k1s.host-pid";
pub(crate) const LABEL_CGROUP_PARENT: &str = "io.k1s.cgroup-parent";
pub(crate) const LABEL_STATE: &str = "io.k1s.state";

const SHM_SIZE: &str = "size=65536k";

pub(crate) fn sandbox_dir(rt: &ContainerdRuntime, id: &str) -> PathBuf {
    rt.inner.state_dir.join("sandboxes").join(id)
}

/// Makes new namespaces in a dedicated thread and bind-mounts them onto `files`
/// (`(kind, path)`, kind being `net`, `ipc` or `uts`).
fn pin_namespaces(
    files: Vec<(&'static str, PathBuf)>,
    hostname: Option<String>,
) -> RuntimeResult<()> {
    let mut flags = CloneFlags::empty();
    for (kind, path) in &files {
        flags |= match *kind {
            "net" => CloneFlags::CLONE_NEWNET,
            "ipc" => CloneFlags::CLONE_NEWIPC,
            _ => CloneFlags::CLONE_NEWUTS,
        };
        std::fs::File::create(path).map_err(|e| rt_err(format!("{}: {e}", path.display())))?;
    }
    if flags.is_empty() {
        return Ok(());
    }
    // The thread owns the new namespaces (unshare acts on the calling thread for these
    // kinds); the bind mounts keep them alive after it ends.
    std::thread::spawn(move || -> RuntimeResult<()> {
        nix::sched::unshare(flags).map_err(|e| rt_err(format!("unshare namespaces: {e}")))?;
        if let Some(hostname) = hostname {
            nix::unistd::sethostname(&hostname)
                .map_err(|e| rt_err(format!("sethostname {hostname}: {e}")))?;
        }
        // Loopback stays down here: the pod network's attach, which follows at once, brings
        // it up with eth0 (as CNI's loopback plugin does), over netlink. Forking `ip` from
        // this thread cost a fork of the whole server per pod.
        for (kind, path) in &files {
            let source = format!("/proc/thread-self/ns/{kind}");
            nix::mount::mount(
                Some(source.as_str()),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| rt_err(format!("pin {kind} namespace on {}: {e}", path.display())))?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| rt_err("the namespace thread panicked"))?
}

fn unmount(path: &Path) {
    if path.exists() {
        // Repeated until nothing is mounted there (a file may have been pinned twice).
        while nix::mount::umount2(path, MntFlags::MNT_DETACH).is_ok() {}
    }
}

fn is_pinned(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

pub(crate) async fn run_sandbox(
    rt: &ContainerdRuntime,
    config: &SandboxConfig,
) -> RuntimeResult<Sandbox> {
    let id = new_id();
    let dir = sandbox_dir(rt, &id);
    let made = {
        let dir = dir.clone();
        let config = config.clone();
        tokio::task::spawn_blocking(move || make_sandbox_files(&dir, &config))
            .await
            .map_err(rt_err)?
    };
    let mut labels: HashMap<String, String> = match made {
        Ok(labels) => labels,
        Err(e) => {
            teardown_files(&dir);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    labels.extend(config.labels.clone());
    labels.insert(KIND_LABEL.to_string(), "sandbox".to_string());
    labels.insert(
        LABEL_CGROUP_PARENT.to_string(),
        config.cgroup_parent.clone(),
    );
    labels.insert(LABEL_STATE.to_string(), "ready".to_string());
    if config.host_pid {
        labels.insert(LABEL_HOST_PID.to_string(), "true".to_string());
    }
    let record = pb::Container {
        id: id.clone(),
        labels,
        image: String::new(),
        runtime: Some(pb::container::Runtime {
            name: RUNTIME.to_string(),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".to_string(),
            value: b"{}".to_vec(),
        }),
        ..Default::default()
    };
    let created = rt
        .containers()
        .create(rt.req(pb::CreateContainerRequest {
            container: Some(record),
        }))
        .await;
    match created {
        Ok(r) => {
            let record = r
                .into_inner()
                .container
                .ok_or_else(|| rt_err("create sandbox: empty answer"))?;
            Ok(to_sandbox(&record))
        }
        Err(e) => {
            teardown_files(&dir);
            let _ = std::fs::remove_dir_all(&dir);
            Err(status_err("create sandbox", e))
        }
    }
}

/// The sandbox's files: pinned namespaces, hostname file, /dev/shm tmpfs; answers the labels
/// naming them.
fn make_sandbox_files(
    dir: &Path,
    config: &SandboxConfig,
) -> RuntimeResult<HashMap<String, String>> {
    std::fs::create_dir_all(dir).map_err(|e| rt_err(format!("{}: {e}", dir.display())))?;
    let mut labels = HashMap::new();
    let mut files = Vec::new();
    let host = |path: &Path| path.to_string_lossy().into_owned();
    if !config.host_network {
        let net = dir.join("net");
        labels.insert(LABEL_NETNS.to_string(), host(&net));
        files.push(("net", net));
        // A pod on the node's network has the node's hostname too (UTS follows network).
        let uts = dir.join("uts");
        labels.insert(LABEL_UTSNS.to_string(), host(&uts));
        files.push(("uts", uts));
    }
    if !config.host_ipc {
        let ipc = dir.join("ipc");
        labels.insert(LABEL_IPCNS.to_string(), host(&ipc));
        files.push(("ipc", ipc));
        let shm = dir.join("shm");
        std::fs::create_dir_all(&shm).map_err(|e| rt_err(format!("{}: {e}", shm.display())))?;
        nix::mount::mount(
            Some("shm"),
            &shm,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some(format!("mode=1777,{SHM_SIZE}").as_str()),
        )
        .map_err(|e| {
            rt_err(format!(
                "mount the pod's /dev/shm on {}: {e}",
                shm.display()
            ))
        })?;
        labels.insert(LABEL_SHM.to_string(), host(&shm));
    }
    let hostname = if config.host_network {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        config.hostname.clone()
    };
    let hostname_file = dir.join("hostname");
    std::fs::write(&hostname_file, format!("{hostname}\n"))
        .map_err(|e| rt_err(format!("{}: {e}", hostname_file.display())))?;
    labels.insert(LABEL_HOSTNAME_FILE.to_string(), host(&hostname_file));
    let set_hostname = (!config.host_network).then(|| config.hostname.clone());
    pin_namespaces(files, set_hostname)?;
    Ok(labels)
}

fn teardown_files(dir: &Path) {
    for name in ["net", "ipc", "uts", "shm"] {
        let path = dir.join(name);
        unmount(&path);
        if name == "shm" {
            let _ = std::fs::remove_dir(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}

pub(crate) fn to_sandbox(record: &pb::Container) -> Sandbox {
    let netns = record.labels.get(LABEL_NETNS).map(PathBuf::from);
    let pinned = [LABEL_NETNS, LABEL_IPCNS, LABEL_UTSNS]
        .iter()
        .filter_map(|l| record.labels.get(*l))
        .all(|p| is_pinned(Path::new(p)));
    let ready = record.labels.get(LABEL_STATE).map(String::as_str) == Some("ready") && pinned;
    let labels: BTreeMap<String, String> = record
        .labels
        .iter()
        .filter(|(k, _)| !k.starts_with("io.k1s."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Sandbox {
        id: record.id.clone(),
        labels,
        netns,
        ready,
        created_at: record
            .created_at
            .as_ref()
            .map(to_system_time)
            .unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

pub(crate) async fn list_sandboxes(rt: &ContainerdRuntime) -> RuntimeResult<Vec<Sandbox>> {
    Ok(rt
        .records("sandbox")
        .await?
        .iter()
        .map(to_sandbox)
        .collect())
}

async fn sandbox_containers(rt: &ContainerdRuntime, id: &str) -> RuntimeResult<Vec<String>> {
    Ok(rt
        .records("container")
        .await?
        .into_iter()
        .filter(|c| c.labels.get(SANDBOX_ID_LABEL).map(String::as_str) == Some(id))
        .map(|c| c.id)
        .collect())
}

pub(crate) async fn stop_sandbox(rt: &ContainerdRuntime, id: &str) -> RuntimeResult<()> {
    let record = match rt.record(id).await {
        Ok(r) => r,
        Err(RuntimeError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    for container in sandbox_containers(rt, id).await? {
        rt.stop_container(&container, 0).await?;
    }
    let dir = sandbox_dir(rt, id);
    tokio::task::spawn_blocking(move || teardown_files(&dir))
        .await
        .map_err(rt_err)?;
    if record.labels.get(LABEL_STATE).map(String::as_str) != Some("notready") {
        rt.set_labels(id, &[(LABEL_STATE, "notready".to_string())])
            .await?;
    }
    Ok(())
}

pub(crate) async fn remove_sandbox(rt: &ContainerdRuntime, id: &str) -> RuntimeResult<()> {
    stop_sandbox(rt, id).await?;
    for container in sandbox_containers(rt, id).await? {
        rt.remove_container(&container).await?;
    }
    match rt
        .containers()
        .delete(rt.req(pb::DeleteContainerRequest { id: id.to_string() }))
        .await
    {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(status_err("remove sandbox", e)),
    }
    let dir = sandbox_dir(rt, id);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

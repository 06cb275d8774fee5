//! A container's OCI runtime spec, with containerd's defaults (mounts, capabilities, masked
//! paths, rlimits) and what the kubelet resolved from the pod spec; and container creation.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use containerd_client::services::v1 as pb;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};
use serde_json::Value;

use super::sandbox::{
    LABEL_CGROUP_PARENT, LABEL_HOST_PID, LABEL_HOSTNAME_FILE, LABEL_IPCNS, LABEL_NETNS, LABEL_SHM,
    LABEL_UTSNS,
};
use super::{
    ContainerdRuntime, KIND_LABEL, LABEL_CGROUP, LABEL_IMAGE_REF, LABEL_LOG_PATH, LABEL_STDIN,
    LABEL_STDIN_ONCE, LABEL_STOP_SIGNAL, LABEL_TTY, RUNTIME, SANDBOX_ID_LABEL, SNAPSHOTTER,
    is_not_found, new_id, rt_err, status_err,
};
use crate::runtime::{ContainerConfig, LinuxConfig, RuntimeError, RuntimeResult, Sandbox};

/// The label holding the image id a container was made from.
pub(crate) const LABEL_IMAGE_ID: &str = "io.k1s.image-id";

/// containerd's default capability set.
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The lowest `oom_score_adj` a container may be given here: none where this process
/// holds CAP_SYS_RESOURCE, else its own score, since the kernel refuses anything lower
/// and runc then fails the whole start (`failed to update /proc/self/oom_score_adj:
/// Permission denied`). Containerd's `restrict_oom_score_adj` does the same in
/// containers, LXC guests and VMs that drop the capability: a Guaranteed or critical
/// pod (-997) must still run there, only less protected from the OOM killer.
static OOM_SCORE_ADJ_FLOOR: std::sync::LazyLock<Option<i32>> = std::sync::LazyLock::new(|| {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let own = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    let floor = oom_score_adj_floor(&status, &own);
    if let Some(floor) = floor {
        tracing::info!(
            floor,
            "no CAP_SYS_RESOURCE: containers' oom_score_adj is kept at or above this process's"
        );
    }
    floor
});

/// CAP_SYS_RESOURCE's bit in the capability sets.
const CAP_SYS_RESOURCE: u32 = 24;

/// The floor for `oom_score_adj` given `/proc/self/status` and `/proc/self/oom_score_adj`.
fn oom_score_adj_floor(status: &str, own: &str) -> Option<i32> {
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())?;
    if effective & (1 << CAP_SYS_RESOURCE) != 0 {
        return None;
    }
    Some(own.trim().parse().unwrap_or(0))
}

/// `adj`, raised to `floor` when there is one.
fn restrict_oom_score_adj(adj: i32, floor: Option<i32>) -> i32 {
    floor.map_or(adj, |floor| adj.max(floor))
}

fn spec_err(e: impl std::fmt::Display) -> RuntimeError {
    rt_err(format!("building the OCI spec: {e}"))
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> RuntimeResult<Mount> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_err)
}

fn default_mounts(privileged: bool) -> RuntimeResult<Vec<Mount>> {
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &[
                "nosuid",
                "noexec",
                "nodev",
                if privileged { "rw" } else { "ro" },
            ],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &[
                "nosuid",
                "noexec",
                "nodev",
                "relatime",
                if privileged { "rw" } else { "ro" },
            ],
        )?,
    ])
}

fn bind(dest: &Path, source: &Path, read_only: bool) -> RuntimeResult<Mount> {
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(source)
        .options(vec![
            "rbind".to_string(),
            "rprivate".to_string(),
            if read_only { "ro" } else { "rw" }.to_string(),
        ])
        .build()
        .map_err(spec_err)
}

fn capability(name: &str) -> Option<Capability> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    serde_json::from_value(Value::String(full)).ok()
}

fn capabilities(linux: &LinuxConfig) -> HashSet<Capability> {
    let all = || -> HashSet<Capability> {
        // Every capability oci-spec knows; runc drops what the kernel lacks.
        serde_json::from_value::<Vec<Capability>>(serde_json::json!([
            "CAP_AUDIT_CONTROL",
            "CAP_AUDIT_READ",
            "CAP_AUDIT_WRITE",
            "CAP_BLOCK_SUSPEND",
            "CAP_BPF",
            "CAP_CHECKPOINT_RESTORE",
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_DAC_READ_SEARCH",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_IPC_LOCK",
            "CAP_IPC_OWNER",
            "CAP_KILL",
            "CAP_LEASE",
            "CAP_LINUX_IMMUTABLE",
            "CAP_MAC_ADMIN",
            "CAP_MAC_OVERRIDE",
            "CAP_MKNOD",
            "CAP_NET_ADMIN",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_BROADCAST",
            "CAP_NET_RAW",
            "CAP_PERFMON",
            "CAP_SETGID",
            "CAP_SETFCAP",
            "CAP_SETPCAP",
            "CAP_SETUID",
            "CAP_SYS_ADMIN",
            "CAP_SYS_BOOT",
            "CAP_SYS_CHROOT",
            "CAP_SYS_MODULE",
            "CAP_SYS_NICE",
            "CAP_SYS_PACCT",
            "CAP_SYS_PTRACE",
            "CAP_SYS_RAWIO",
            "CAP_SYS_RESOURCE",
            "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG",
            "CAP_SYSLOG",
            "CAP_WAKE_ALARM"
        ]))
        .map(|v| v.into_iter().collect())
        .unwrap_or_default()
    };
    if linux.privileged {
        return all();
    }
    let mut caps: HashSet<Capability> = DEFAULT_CAPS.iter().filter_map(|c| capability(c)).collect();
    if linux
        .capabilities_add
        .iter()
        .any(|c| c.eq_ignore_ascii_case("ALL"))
    {
        caps = all();
    } else {
        caps.extend(linux.capabilities_add.iter().filter_map(|c| capability(c)));
    }
    if linux
        .capabilities_drop
        .iter()
        .any(|c| c.eq_ignore_ascii_case("ALL"))
    {
        caps.clear();
        caps.extend(linux.capabilities_add.iter().filter_map(|c| capability(c)));
    } else {
        for c in linux.capabilities_drop.iter().filter_map(|c| capability(c)) {
            caps.remove(&c);
        }
    }
    caps
}

/// The rootfs's directories, top layer first, for reading files like /etc/passwd without
/// mounting it.
fn rootfs_dirs(mounts: &[containerd_client::types::Mount]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for m in mounts {
        if m.r#type == "bind" {
            dirs.push(PathBuf::from(&m.source));
        } else if m.r#type == "overlay" {
            for o in &m.options {
                if let Some(upper) = o.strip_prefix("upperdir=") {
                    dirs.insert(0, PathBuf::from(upper));
                }
            }
            for o in &m.options {
                if let Some(lower) = o.strip_prefix("lowerdir=") {
                    dirs.extend(lower.split(':').map(PathBuf::from));
                }
            }
        }
    }
    dirs
}

fn read_rootfs_file(dirs: &[PathBuf], path: &str) -> Option<String> {
    dirs.iter()
        .find_map(|d| std::fs::read_to_string(d.join(path.trim_start_matches('/'))).ok())
}

/// (uid, gid, additional gids) as containerd resolves a user: numeric or named, group from
/// /etc/passwd, supplementary groups from /etc/group.
fn resolve_user(
    dirs: &[PathBuf],
    image_user: &str,
    linux: &LinuxConfig,
) -> RuntimeResult<(u32, u32, Vec<u32>)> {
    let passwd = read_rootfs_file(dirs, "etc/passwd").unwrap_or_default();
    let group = read_rootfs_file(dirs, "etc/group").unwrap_or_default();
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let (user_part, group_part) = match linux.run_as_user {
        Some(uid) => (uid.to_string(), None),
        None => match image_user.split_once(':') {
            Some((u, g)) => (u.to_string(), Some(g.to_string())),
            None => (image_user.to_string(), None),
        },
    };
    let (uid, mut gid, name) = if user_part.is_empty() {
        (0, 0, Some("root".to_string()))
    } else if let Ok(uid) = user_part.parse::<u32>() {
        let entry = entries.iter().find(|f| f[2] == uid.to_string());
        (
            uid,
            entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
            entry.map(|f| f[0].to_string()),
        )
    } else {
        let entry = entries.iter().find(|f| f[0] == user_part).ok_or_else(|| {
            rt_err(format!(
                "no users found matching {user_part:?} in the image's /etc/passwd"
            ))
        })?;
        (
            entry[2].parse().unwrap_or(0),
            entry[3].parse().unwrap_or(0),
            Some(user_part.clone()),
        )
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    rt_err(format!(
                        "no groups found matching {g:?} in the image's /etc/group"
                    ))
                })?,
        };
    }
    if let Some(g) = linux.run_as_group {
        gid = u32::try_from(g).map_err(|_| rt_err(format!("runAsGroup {g} is out of range")))?;
    }
    let mut additional = vec![gid];
    if let Some(name) = name {
        for f in group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4)
        {
            if f[3].split(',').any(|m| m == name)
                && let Ok(g) = f[2].parse::<u32>()
            {
                additional.push(g);
            }
        }
    }
    additional.extend(
        linux
            .supplemental_groups
            .iter()
            .filter_map(|g| u32::try_from(*g).ok()),
    );
    additional.sort_unstable();
    additional.dedup();
    Ok((uid, gid, additional))
}

/// The cgroup (cgroupfs path) a container runs in.
fn cgroup_path(parent: &str, id: &str) -> String {
    let parent = parent.trim_end_matches('/');
    if parent.is_empty() {
        format!("/k8s.io/{id}")
    } else if parent.starts_with('/') {
        format!("{parent}/{id}")
    } else {
        format!("/{parent}/{id}")
    }
}

fn cgroup_v1_memory() -> Option<PathBuf> {
    let p = PathBuf::from("/sys/fs/cgroup/memory");
    p.join("memory.limit_in_bytes").exists().then_some(p)
}

/// Whether `root` is the unified (v2) hierarchy itself, not a hybrid's v1 controllers.
fn cgroup_v2_unified(root: &Path) -> bool {
    root.join("cgroup.controllers").exists()
}

/// Whether the node can limit containers' swap, as upstream's kubelet asks before it turns
/// swap off for a container: v1's `memory.memsw.*` files, or on v2 `memory.swap.max` in
/// this process's own cgroup (the root has none). `self_cgroup` is `/proc/self/cgroup`.
fn swap_controller_available(root: &Path, self_cgroup: &str) -> bool {
    if cgroup_v2_unified(root) {
        let own = self_cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or("/")
            .trim()
            .trim_start_matches('/');
        return root.join(own).join("memory.swap.max").exists();
    }
    root.join("memory")
        .join("memory.memsw.limit_in_bytes")
        .exists()
}

/// The memory resources of a container with `limit` bytes: swap limited to the same
/// (no swap, upstream's default) where the node can limit swap.
fn memory_resources(
    limit: i64,
    root: &Path,
    self_cgroup: &str,
) -> RuntimeResult<oci_spec::runtime::LinuxMemory> {
    let mut memory = LinuxMemoryBuilder::default().limit(limit);
    if swap_controller_available(root, self_cgroup) {
        memory = memory.swap(limit);
    }
    memory.build().map_err(spec_err)
}

/// Whether the kernel OOM-killed a process in this cgroup (v1 `memory.oom_control`, v2
/// `memory.events`).
pub(crate) fn oom_killed(cgroup: &str) -> bool {
    let rel = cgroup.trim_start_matches('/');
    let counter = |text: String| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
            .is_some_and(|n| n > 0)
    };
    if let Some(v1) = cgroup_v1_memory() {
        return std::fs::read_to_string(v1.join(rel).join("memory.oom_control")).is_ok_and(counter);
    }
    std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(rel).join("memory.events"))
        .is_ok_and(counter)
}

/// A signal by name (`SIGTERM`, `TERM`) or number.
pub(crate) fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

/// Everything about the sandbox a container needs, from its record's labels.
pub(crate) struct SandboxPaths {
    pub(crate) netns: Option<String>,
    pub(crate) ipcns: Option<String>,
    pub(crate) utsns: Option<String>,
    pub(crate) shm: Option<String>,
    pub(crate) hostname_file: Option<String>,
    pub(crate) host_pid: bool,
    pub(crate) cgroup_parent: String,
}

impl SandboxPaths {
    fn from_labels(labels: &HashMap<String, String>) -> Self {
        SandboxPaths {
            netns: labels.get(LABEL_NETNS).cloned(),
            ipcns: labels.get(LABEL_IPCNS).cloned(),
            utsns: labels.get(LABEL_UTSNS).cloned(),
            shm: labels.get(LABEL_SHM).cloned(),
            hostname_file: labels.get(LABEL_HOSTNAME_FILE).cloned(),
            host_pid: labels.get(LABEL_HOST_PID).is_some_and(|v| v == "true"),
            cgroup_parent: labels.get(LABEL_CGROUP_PARENT).cloned().unwrap_or_default(),
        }
    }
}

/// Builds the OCI runtime spec of a container.
pub(crate) fn build_spec(
    config: &ContainerConfig,
    sandbox: &SandboxPaths,
    user: (u32, u32, Vec<u32>),
    cgroup: &str,
) -> RuntimeResult<Spec> {
    let linux = &config.linux;
    let caps = capabilities(linux);
    let seccomp = if linux.seccomp_runtime_default && !linux.privileged {
        Some(super::seccomp::runtime_default(&caps)?)
    } else {
        None
    };
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(spec_err)?;
    let mut env: Vec<String> = config.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !config.env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if config.tty && !config.env.iter().any(|(k, _)| k == "TERM") {
        env.push("TERM=xterm".to_string());
    }
    if config.argv.is_empty() {
        return Err(rt_err(
            "no command specified: the image has no entrypoint or cmd and the pod sets no command",
        ));
    }
    let (uid, gid, additional) = user;
    let mut process = ProcessBuilder::default()
        .terminal(config.tty)
        .user(
            UserBuilder::default()
                .uid(uid)
                .gid(gid)
                .additional_gids(additional)
                .build()
                .map_err(spec_err)?,
        )
        .args(config.argv.clone())
        .env(env)
        .cwd(if config.working_dir.is_empty() {
            "/".to_string()
        } else {
            config.working_dir.clone()
        })
        .capabilities(capabilities)
        .rlimits(vec![
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .hard(1024u64)
                .soft(1024u64)
                .build()
                .map_err(spec_err)?,
        ])
        .no_new_privileges(linux.no_new_privileges)
        .build()
        .map_err(spec_err)?;
    if let Some(adj) = linux.oom_score_adj {
        process.set_oom_score_adj(Some(restrict_oom_score_adj(adj, *OOM_SCORE_ADJ_FLOOR)));
    }

    let mut mounts = default_mounts(linux.privileged)?;
    let user_dests: HashSet<PathBuf> = config
        .mounts
        .iter()
        .map(|m| m.container_path.clone())
        .collect();
    if let Some(shm) = &sandbox.shm
        && let Some(m) = mounts
            .iter_mut()
            .find(|m| m.destination() == Path::new("/dev/shm"))
    {
        *m = bind(Path::new("/dev/shm"), Path::new(shm), false)?;
    }
    mounts.retain(|m| !user_dests.contains(m.destination()));
    if let Some(file) = &sandbox.hostname_file
        && !user_dests.contains(Path::new("/etc/hostname"))
    {
        mounts.push(bind(
            Path::new("/etc/hostname"),
            Path::new(file),
            linux.readonly_rootfs,
        )?);
    }
    let mut user_mounts = config.mounts.clone();
    // Parents before children, as upstream orders them.
    user_mounts.sort_by_key(|m| m.container_path.components().count());
    for m in &user_mounts {
        if !m.host_path.exists() {
            std::fs::create_dir_all(&m.host_path)
                .map_err(|e| rt_err(format!("{}: {e}", m.host_path.display())))?;
        }
        mounts.push(bind(&m.container_path, &m.host_path, m.read_only)?);
    }

    let ns = |typ: LinuxNamespaceType, path: Option<&String>| {
        let mut b = LinuxNamespaceBuilder::default().typ(typ);
        if let Some(p) = path {
            b = b.path(PathBuf::from(p));
        }
        b.build().map_err(spec_err)
    };
    let mut namespaces = vec![ns(LinuxNamespaceType::Mount, None)?];
    if !sandbox.host_pid {
        namespaces.push(ns(LinuxNamespaceType::Pid, None)?);
    }
    if let Some(p) = &sandbox.netns {
        namespaces.push(ns(LinuxNamespaceType::Network, Some(p))?);
    }
    if let Some(p) = &sandbox.ipcns {
        namespaces.push(ns(LinuxNamespaceType::Ipc, Some(p))?);
    }
    if let Some(p) = &sandbox.utsns {
        namespaces.push(ns(LinuxNamespaceType::Uts, Some(p))?);
    }

    let mut resources = LinuxResourcesBuilder::default().devices(vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(linux.privileged)
            .access("rwm")
            .build()
            .map_err(spec_err)?,
    ]);
    let cgroup_root = Path::new("/sys/fs/cgroup");
    if let Some(limit) = linux.memory_limit.filter(|l| *l > 0) {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        resources = resources.memory(memory_resources(limit, cgroup_root, &own)?);
    }
    if cgroup_v2_unified(cgroup_root) {
        // On v2 an OOM kill takes the whole container (every process of its cgroup), as
        // upstream's kubelet asks unless singleProcessOOMKill is set; v1 cannot.
        resources = resources.unified(HashMap::from([(
            "memory.oom.group".to_string(),
            "1".to_string(),
        )]));
    }
    let mut cpu = LinuxCpuBuilder::default();
    let mut any_cpu = false;
    if let Some(shares) = linux.cpu_shares {
        cpu = cpu.shares(shares);
        any_cpu = true;
    }
    if let Some(quota) = linux.cpu_quota.filter(|q| *q > 0) {
        cpu = cpu.quota(quota);
        any_cpu = true;
    }
    if let Some(period) = linux.cpu_period.filter(|p| *p > 0) {
        cpu = cpu.period(period);
        any_cpu = true;
    }
    if any_cpu {
        resources = resources.cpu(cpu.build().map_err(spec_err)?);
    }
    let mut linux_builder = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(cgroup))
        .resources(resources.build().map_err(spec_err)?);
    if let Some(seccomp) = seccomp {
        linux_builder = linux_builder.seccomp(seccomp);
    }
    if !linux.privileged {
        linux_builder = linux_builder
            .masked_paths(
                MASKED_PATHS
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>(),
            )
            .readonly_paths(
                READONLY_PATHS
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>(),
            );
    } else {
        linux_builder = linux_builder
            .masked_paths(Vec::<String>::new())
            .readonly_paths(Vec::<String>::new());
    }
    let mut spec = SpecBuilder::default()
        .version("1.0.2-dev")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(linux.readonly_rootfs)
                .build()
                .map_err(spec_err)?,
        )
        .process(process)
        .mounts(mounts)
        .linux(linux_builder.build().map_err(spec_err)?)
        .build()
        .map_err(spec_err)?;
    // The hostname belongs to the sandbox's UTS namespace, set once when it was made.
    spec.set_hostname(None);
    Ok(spec)
}

pub(crate) async fn create_container(
    rt: &ContainerdRuntime,
    sandbox: &Sandbox,
    config: &ContainerConfig,
) -> RuntimeResult<String> {
    let sandbox_record = rt.record(&sandbox.id).await?;
    let paths = SandboxPaths::from_labels(&sandbox_record.labels);
    let resolved = match rt.find_image(&config.image).await? {
        Some(r) => r,
        None => rt
            .find_image(&config.image_ref)
            .await?
            .ok_or_else(|| RuntimeError::NotFound(format!("image {:?}", config.image)))?,
    };
    let chain = rt.unpack(&resolved).await?;
    let id = new_id();
    let lease = rt.lease().await?;
    let result = create_leased(
        rt,
        &id,
        &chain,
        &resolved,
        &paths,
        &sandbox.id,
        config,
        &lease,
    )
    .await;
    rt.end_lease(&lease).await;
    if result.is_err() {
        let _ = rt
            .snapshots()
            .remove(rt.req(pb::snapshots::RemoveSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: id.clone(),
            }))
            .await;
    }
    result.map(|()| id)
}

#[allow(clippy::too_many_arguments)]
async fn create_leased(
    rt: &ContainerdRuntime,
    id: &str,
    chain: &str,
    resolved: &super::images::Resolved,
    paths: &SandboxPaths,
    sandbox_id: &str,
    config: &ContainerConfig,
    lease: &str,
) -> RuntimeResult<()> {
    let mounts = rt
        .snapshots()
        .prepare(rt.leased(
            pb::snapshots::PrepareSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: id.to_string(),
                parent: chain.to_string(),
                labels: HashMap::new(),
            },
            lease,
        ))
        .await
        .map_err(|e| status_err("prepare the container's rootfs", e))?
        .into_inner()
        .mounts;
    let image_config = resolved.config_json();
    let image_user = image_config
        .pointer("/config/User")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let dirs = rootfs_dirs(&mounts);
    let user = resolve_user(&dirs, &image_user, &config.linux)?;
    if config.linux.run_as_user.is_none() && user.0 != 0 {
        // runAsNonRoot is checked by the kubelet against the image's user; nothing to do here.
    }
    let cgroup = cgroup_path(&paths.cgroup_parent, id);
    let spec = build_spec(config, paths, user, &cgroup)?;
    let spec_json = serde_json::to_vec(&spec).map_err(spec_err)?;
    let mut labels: HashMap<String, String> = config.labels.clone().into_iter().collect();
    labels.insert(KIND_LABEL.into(), "container".into());
    labels.insert(SANDBOX_ID_LABEL.into(), sandbox_id.to_string());
    labels.insert(LABEL_IMAGE_REF.into(), config.image_ref.clone());
    labels.insert(LABEL_IMAGE_ID.into(), resolved.config_digest.clone());
    labels.insert(
        LABEL_LOG_PATH.into(),
        config.log_path.to_string_lossy().into_owned(),
    );
    labels.insert(LABEL_CGROUP.into(), cgroup);
    if let Some(signal) = image_config
        .pointer("/config/StopSignal")
        .and_then(Value::as_str)
    {
        labels.insert(LABEL_STOP_SIGNAL.into(), signal.to_string());
    }
    if config.tty {
        labels.insert(LABEL_TTY.into(), "true".into());
    }
    if config.stdin {
        labels.insert(LABEL_STDIN.into(), "true".into());
    }
    if config.stdin_once {
        labels.insert(LABEL_STDIN_ONCE.into(), "true".into());
    }
    let record = pb::Container {
        id: id.to_string(),
        labels,
        image: resolved.name.clone(),
        runtime: Some(pb::container::Runtime {
            name: RUNTIME.to_string(),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".to_string(),
            value: spec_json,
        }),
        snapshotter: SNAPSHOTTER.to_string(),
        snapshot_key: id.to_string(),
        ..Default::default()
    };
    match rt
        .containers()
        .create(rt.req(pb::CreateContainerRequest {
            container: Some(record),
        }))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Err(status_err("create container", e)),
        Err(e) => Err(status_err("create container", e)),
    }
}

/// The process spec an exec runs: the container's, with another command and terminal.
pub(crate) fn exec_process(
    container_spec: &[u8],
    command: &[String],
    tty: bool,
) -> RuntimeResult<Vec<u8>> {
    let spec: Spec = serde_json::from_slice(container_spec)
        .map_err(|e| rt_err(format!("the container's spec: {e}")))?;
    let mut process = spec
        .process()
        .clone()
        .ok_or_else(|| rt_err("the container's spec has no process"))?;
    process.set_args(Some(command.to_vec()));
    process.set_terminal(Some(tty));
    let mut env = process.env().clone().unwrap_or_default();
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_string());
    }
    process.set_env(Some(env));
    serde_json::to_vec(&process).map_err(|e| rt_err(format!("the exec's process spec: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_score_adj_is_raised_only_without_cap_sys_resource() {
        let full = "Name:\tk1s\nCapEff:\t000001ffffffffff\n";
        let without = "Name:\tk1s\nCapEff:\t000001fffeffffff\n";
        assert_eq!(oom_score_adj_floor(full, "0\n"), None);
        assert_eq!(oom_score_adj_floor(without, "0\n"), Some(0));
        assert_eq!(oom_score_adj_floor(without, "-500\n"), Some(-500));
        assert_eq!(oom_score_adj_floor("garbage", "0"), None);
        assert_eq!(restrict_oom_score_adj(-997, None), -997);
        assert_eq!(restrict_oom_score_adj(-997, Some(0)), 0);
        assert_eq!(restrict_oom_score_adj(1000, Some(0)), 1000);
    }

    #[test]
    fn swap_is_limited_where_the_node_can_limit_it() {
        let limit = 64 << 20;
        // v1 with swap accounting (memsw), and without.
        let v1 = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(v1.path().join("memory")).expect("memory");
        let mem = memory_resources(limit, v1.path(), "4:memory:/\n").expect("memory");
        assert_eq!(mem.swap(), None);
        std::fs::write(v1.path().join("memory/memory.memsw.limit_in_bytes"), "").expect("memsw");
        let mem = memory_resources(limit, v1.path(), "4:memory:/\n").expect("memory");
        assert_eq!((mem.limit(), mem.swap()), (Some(limit), Some(limit)));
        // v2: memory.swap.max is looked for in this process's own cgroup.
        let v2 = tempfile::tempdir().expect("tempdir");
        std::fs::write(v2.path().join("cgroup.controllers"), "memory pids").expect("v2");
        std::fs::create_dir_all(v2.path().join("system.slice/k1s.service")).expect("own");
        let own = "0::/system.slice/k1s.service\n";
        assert!(!swap_controller_available(v2.path(), own));
        std::fs::write(
            v2.path().join("system.slice/k1s.service/memory.swap.max"),
            "max",
        )
        .expect("swap");
        assert!(swap_controller_available(v2.path(), own));
        let mem = memory_resources(limit, v2.path(), own).expect("memory");
        assert_eq!(mem.swap(), Some(limit));
    }

    #[test]
    fn users_resolve_from_passwd_and_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("etc")).expect("etc");
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:33:34::/:/bin/false\n",
        )
        .expect("passwd");
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nweb:x:34:\nextra:x:50:web\n",
        )
        .expect("group");
        let dirs = vec![dir.path().to_path_buf()];
        let linux = LinuxConfig::default();
        assert_eq!(resolve_user(&dirs, "", &linux).ok(), Some((0, 0, vec![0])));
        assert_eq!(
            resolve_user(&dirs, "web", &linux).ok(),
            Some((33, 34, vec![34, 50]))
        );
        assert_eq!(
            resolve_user(&dirs, "33", &linux).ok(),
            Some((33, 34, vec![34, 50]))
        );
        assert_eq!(
            resolve_user(&dirs, "1000:7", &linux).ok(),
            Some((1000, 7, vec![7]))
        );
        let linux = LinuxConfig {
            run_as_user: Some(5),
            run_as_group: Some(6),
            supplemental_groups: vec![9],
            ..Default::default()
        };
        assert_eq!(
            resolve_user(&dirs, "web", &linux).ok(),
            Some((5, 6, vec![6, 9]))
        );
        assert!(resolve_user(&dirs, "nobody-here", &LinuxConfig::default()).is_err());
    }

    #[test]
    fn capabilities_add_and_drop() {
        let linux = LinuxConfig {
            capabilities_add: vec!["NET_ADMIN".into()],
            capabilities_drop: vec!["CAP_KILL".into()],
            ..Default::default()
        };
        let caps = capabilities(&linux);
        assert!(caps.contains(&Capability::NetAdmin));
        assert!(!caps.contains(&Capability::Kill));
        assert!(caps.contains(&Capability::Chown));
        let none = capabilities(&LinuxConfig {
            capabilities_drop: vec!["ALL".into()],
            ..Default::default()
        });
        assert!(none.is_empty());
    }

    #[test]
    fn signals_parse() {
        assert_eq!(parse_signal("SIGQUIT"), Some(libc::SIGQUIT));
        assert_eq!(parse_signal("TERM"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("9"), Some(9));
    }
}
